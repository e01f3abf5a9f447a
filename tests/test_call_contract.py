"""The call contract: call arguments, per-call options and several outputs per call."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from attrs import define

import loopkit as lk
from loopkit import ConfigError, ShapeError
from loopkit.layers import GRU, LSTM, Bidirectional, Dense, Layer, SimpleRNN
from loopkit.testing import check_model_gradients


def encoder_decoder(dtype: str = "float64") -> lk.Model:
    source = lk.Input(shape=(5, 3), name="source")
    target = lk.Input(shape=(4, 2), name="target")
    _, h, c = LSTM(3, return_state=True, name="encoder")(source)
    decoded = LSTM(3, return_sequences=True, name="decoder")(target, initial_state=[h, c])
    out = Dense(2, name="head")(decoded)
    return lk.Model([source, target], out, dtype=dtype)


def test_lstm_return_state_gives_output_h_and_c_in_a_graph_and_eagerly(rng) -> None:
    x = lk.Input(shape=(5, 3))
    layer = LSTM(8, return_state=True)
    out, h, c = layer(x)
    assert [t.shape for t in (out, h, c)] == [(None, 8)] * 3
    assert [t.index for t in (out, h, c)] == [0, 1, 2]
    assert out.node is h.node is c.node
    arrays = layer(rng.standard_normal((2, 5, 3)).astype(np.float32))
    assert [a.shape for a in arrays] == [(2, 8)] * 3
    np.testing.assert_array_equal(arrays[0], arrays[1])  # the output is the last h
    seq, h_seq, c_seq = LSTM(8, return_state=True, return_sequences=True)(x)
    assert seq.shape == (None, 5, 8) and h_seq.shape == c_seq.shape == (None, 8)


def test_initial_state_called_eagerly_matches_forward_with_initial_state(rng) -> None:
    layer = LSTM(4)
    x = rng.standard_normal((3, 6, 2)).astype(np.float32)
    h0, c0 = (rng.standard_normal((3, 4)).astype(np.float32) for _ in range(2))
    y = layer(x, initial_state=[h0, c0])
    np.testing.assert_array_equal(y, layer.forward(x, initial_state=[h0, c0]))
    assert not np.allclose(y, layer(x))  # the states matter


def test_an_encoder_decoder_with_states_matches_finite_differences(rng) -> None:
    model = encoder_decoder()
    model.compile("sgd", "mse")
    x = [rng.standard_normal((4, 5, 3)), rng.standard_normal((4, 4, 2))]
    check_model_gradients(model, x, rng.standard_normal((4, 4, 2)))


@pytest.mark.parametrize("kind", [SimpleRNN, GRU])
def test_one_state_layers_pass_their_state_on_and_match_finite_differences(
    rng, kind
) -> None:
    inputs = lk.Input(shape=(4, 2))
    seq, h = kind(3, return_state=True, return_sequences=True)(inputs)
    out = kind(3)(seq, initial_state=h)  # one state may be given bare, as in Keras
    model = lk.Model(inputs, [Dense(1)(out), Dense(2)(h)], dtype="float64")
    model.compile("sgd", ["mse", "mse"])
    y = [rng.standard_normal((3, 1)), rng.standard_normal((3, 2))]
    check_model_gradients(model, rng.standard_normal((3, 4, 2)), y)


def test_unused_states_and_a_state_as_a_model_output_match_finite_differences(
    rng,
) -> None:
    inputs = lk.Input(shape=(5, 2))
    out, h, _c = LSTM(3, return_state=True, name="lstm")(inputs)  # c feeds nothing
    model = lk.Model(inputs, [Dense(2, name="head")(out), h], dtype="float64")
    assert model.output_names == ["head", "lstm_output_1"]
    model.compile("sgd", ["mse", "mse"])
    y = [rng.standard_normal((3, 2)), rng.standard_normal((3, 3))]
    check_model_gradients(model, rng.standard_normal((3, 5, 2)), y)


def test_bidirectional_without_merging_returns_both_directions(rng) -> None:
    inputs = lk.Input(shape=(4, 3))
    forward, backward = Bidirectional(LSTM(2, return_sequences=True), merge_mode=None)(
        inputs
    )
    assert forward.shape == backward.shape == (None, 4, 2)
    model = lk.Model(inputs, lk.layers.Concatenate()([forward, backward]), dtype="float64")
    concat = lk.Model(
        inputs,
        Bidirectional(LSTM(2, return_sequences=True), name="concat")(inputs),
        dtype="float64",
    )
    concat.set_weights(model.get_weights())
    x = rng.standard_normal((2, 4, 3))
    np.testing.assert_allclose(
        model.predict(x, verbose=0), concat.predict(x, verbose=0), rtol=1e-12
    )


def test_bidirectional_merge_none_matches_finite_differences(rng) -> None:
    inputs = lk.Input(shape=(4, 3))
    forward, backward = Bidirectional(GRU(2), merge_mode=None)(inputs)
    model = lk.Model(inputs, Dense(1)(lk.layers.Multiply()([forward, backward])))
    model = lk.Model.from_config(model.get_config())
    model = lk.Model(model.inputs, model.outputs, dtype="float64")
    model.compile("sgd", "mse")
    check_model_gradients(
        model, rng.standard_normal((3, 4, 3)), rng.standard_normal((3, 1))
    )


def test_bidirectional_states_in_and_out_match_finite_differences(rng) -> None:
    source, target = lk.Input(shape=(4, 3)), lk.Input(shape=(3, 2))
    encoded, *states = Bidirectional(LSTM(2, return_state=True))(source)
    assert [t.shape for t in [encoded, *states]] == [(None, 4)] + [(None, 2)] * 4
    decoded = Bidirectional(LSTM(2), merge_mode="sum")(target, initial_state=states)
    model = lk.Model([source, target], Dense(1)(decoded), dtype="float64")
    model.compile("sgd", "mse")
    x = [rng.standard_normal((3, 4, 3)), rng.standard_normal((3, 3, 2))]
    check_model_gradients(model, x, rng.standard_normal((3, 1)))


def test_a_model_with_states_saves_and_loads_with_the_same_predictions(
    rng, tmp_path
) -> None:
    model = encoder_decoder("float32")
    model.compile("adam", "mse")
    x = [rng.standard_normal((4, 5, 3)), rng.standard_normal((4, 4, 2))]
    model.fit(x, rng.standard_normal((4, 4, 2)), epochs=1, verbose=0)
    expected = model.predict(x, verbose=0)
    path = tmp_path / "seq2seq.keras"
    model.save(str(path))
    loaded = lk.saving.load_model(str(path))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    config = model.get_config()
    decoder_call = next(n for n in config["nodes"] if n["layer"] == "decoder")
    assert decoder_call["inbound"] == [
        ["target", 0, 0],
        ["encoder", 0, 1],
        ["encoder", 0, 2],
    ]
    rebuilt = lk.Model.from_config(config)
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_array_equal(rebuilt.predict(x, verbose=0), expected)


def test_merge_none_and_states_round_trip_through_save_and_load(rng, tmp_path) -> None:
    inputs = lk.Input(shape=(4, 3))
    forward, backward, *states = Bidirectional(
        LSTM(2, return_state=True, return_sequences=True), merge_mode=None
    )(inputs)
    model = lk.Model(inputs, [forward, backward, states[3]])
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    model.save(str(tmp_path / "m.keras"))
    loaded = lk.saving.load_model(str(tmp_path / "m.keras"))
    for mine, theirs in zip(loaded.predict(x, verbose=0), expected, strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_summary_names_each_output_of_a_call_in_connected_to() -> None:
    lines: list[str] = []
    encoder_decoder().summary(print_fn=lines.append)
    text = lines[0]
    assert "[(None, 3), (None, 3)," in text  # the encoder's three outputs
    decoder = text[text.index("decoder (LSTM)") :]
    assert "encoder[0][1]" in decoder and "encoder[0][2]" in decoder


@define(eq=False, slots=False)
class Scale(Layer):
    """A test layer with a call option: ``scale(x, factor=2.0)`` returns ``factor * x``."""

    def call_arguments(
        self, inputs: Any, factor: float = 2.0
    ) -> tuple[Any, dict[str, Any]]:
        x, _ = super().call_arguments(inputs)
        return x, {"factor": float(factor)}

    def compute_output_shape(self, input_shape: Any, factor: float = 2.0) -> Any:
        return input_shape

    def forward(self, x: Any, training: bool = False, factor: float = 2.0) -> Any:
        self._factor = factor
        return np.multiply(x, factor, out=self.buffer("y", x.shape))

    def backward(self, dy: Any) -> Any:
        return np.multiply(dy, self._factor, out=self.buffer("dx", dy.shape))


def test_options_are_per_call_and_survive_get_config_and_save(rng, tmp_path) -> None:
    inputs = lk.Input(shape=(3,))
    scale = Scale()
    out = Dense(2)(lk.layers.Add()([scale(inputs, factor=3.0), scale(inputs)]))
    model = lk.Model(inputs, out, dtype="float64")
    assert [n.options for n in model.graph.nodes[:2]] == [{"factor": 3.0}, {"factor": 2.0}]
    x = rng.standard_normal((4, 3))
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(model.predict(x, verbose=0), 5.0 * x @ kernel + bias)
    model.compile("sgd", "mse")
    check_model_gradients(model, x, rng.standard_normal((4, 2)))
    rebuilt = lk.Model.from_config(model.get_config(), custom_objects={"Scale": Scale})
    assert [n.options for n in rebuilt.graph.nodes[:2]] == [
        {"factor": 3.0},
        {"factor": 2.0},
    ]
    model.save(str(tmp_path / "m.keras"))
    loaded = lk.saving.load_model(
        str(tmp_path / "m.keras"), custom_objects={"Scale": Scale}
    )
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_bad_calls_fail_when_the_graph_is_built() -> None:
    x = lk.Input(shape=(5, 3))
    with pytest.raises(ConfigError, match=r"got 1 initial state\(s\); it takes 2 \(h, c\)"):
        LSTM(4)(x, initial_state=[lk.Input(shape=(4,))])
    with pytest.raises(
        ShapeError, match=r"initial states of sample shapes \[\(3,\), \(4,\)\]"
    ):
        LSTM(4)(x, initial_state=[lk.Input(shape=(3,)), lk.Input(shape=(4,))])
    with pytest.raises(TypeError, match=r"do not fit Dense: .*unexpected keyword"):
        Dense(2)(x, initial_state=[x])
    with pytest.raises(TypeError, match=r"mask= on symbolic tensors"):
        LSTM(4)(x, mask=x)
    with pytest.raises(ConfigError, match=r"takes 4: the forward layer's"):
        Bidirectional(LSTM(2))(x, initial_state=[lk.Input(shape=(2,))])
