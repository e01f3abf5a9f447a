"""Bidirectional and TimeDistributed: merging, weights, gradients, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loopkit import Sequential
from loopkit.errors import ConfigError
from loopkit.layers import (
    GRU,
    LSTM,
    Bidirectional,
    Conv1D,
    Dense,
    SimpleRNN,
    TimeDistributed,
)
from loopkit.testing import check_layer_gradients, numerical_gradient

MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 1, 1, 0, 1]], bool)


@pytest.mark.parametrize("sequences", [True, False])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_bidirectional_backward_matches_finite_differences(
    merge_mode: str, sequences: bool
) -> None:
    layer = Bidirectional(LSTM(3, return_sequences=sequences), merge_mode=merge_mode)
    check_layer_gradients(layer, (4, 2))


def test_masked_bidirectional_backward_matches_finite_differences() -> None:
    layer = Bidirectional(GRU(3, return_sequences=True))
    rng = np.random.default_rng(0)
    layer.setup((5, 2), np.float64, rng)
    x, dy = rng.standard_normal((3, 5, 2)), rng.standard_normal((3, 5, 6))

    def loss() -> float:
        return float(np.sum(layer.forward(x, mask=MASK) * dy))

    loss()
    dx = layer.backward(dy).copy()
    grads = {p.name: p.grad.copy() for p in layer.parameters}
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-5, atol=1e-7)
    for p in layer.parameters:
        np.testing.assert_allclose(
            grads[p.name], numerical_gradient(loss, p.value), atol=1e-7
        )


def test_bidirectional_concatenates_forward_and_time_ordered_backward_outputs() -> None:
    layer = Bidirectional(SimpleRNN(2, return_sequences=True))
    rng = np.random.default_rng(0)
    layer.setup((4, 3), np.float64, rng)
    x = rng.standard_normal((1, 4, 3))
    y = layer.forward(x).copy()
    backward = SimpleRNN(2, return_sequences=True)
    backward.setup((4, 3), np.float64)
    for mine, theirs in zip(backward.parameters, layer.parameters[3:], strict=True):
        mine.value[...] = theirs.value
    np.testing.assert_allclose(
        y[:, :, 2:], backward.forward(x[:, ::-1])[:, ::-1], rtol=1e-12
    )


def test_bidirectional_names_each_directions_weights_and_keeps_keras_order() -> None:
    model = Sequential([Bidirectional(LSTM(2), input_shape=(3, 4))])
    assert [p.name for p in model.weights] == [
        "forward_lstm/kernel",
        "forward_lstm/recurrent_kernel",
        "forward_lstm/bias",
        "backward_lstm/kernel",
        "backward_lstm/recurrent_kernel",
        "backward_lstm/bias",
    ]
    assert model.output_shape == (4,)
    model.predict(np.zeros((2, 3, 4), np.float32), verbose=0)
    assert [s.shape for s in model.layers[0].final_states] == [(2, 2)] * 4  # h, c twice


def test_bidirectional_refuses_what_a_sequential_model_cannot_carry() -> None:
    with pytest.raises(ConfigError, match=r"returns 2 outputs; a Sequential model"):
        Sequential([Bidirectional(LSTM(2), merge_mode=None, input_shape=(3, 4))])
    with pytest.raises(ConfigError, match=r"returns 3 outputs; .*return_state=True"):
        Sequential([LSTM(2, return_state=True, input_shape=(3, 4))])
    with pytest.raises(ConfigError, match=r"merge_mode='max'; expected one of"):
        Bidirectional(LSTM(2), merge_mode="max")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"got Dense; expected a recurrent layer"):
        Bidirectional(Dense(2))
    with pytest.raises(TypeError, match=r"expected a loopkit layer"):
        TimeDistributed("dense")  # type: ignore[arg-type]


def test_time_distributed_applies_one_layer_to_every_step() -> None:
    layer = TimeDistributed(Dense(3, activation="tanh"))
    assert layer.setup((5, 4)) == (5, 3)
    x = np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32)
    y = layer.forward(x).copy()
    inner = layer.layer
    np.testing.assert_allclose(y[:, 2], np.tanh(x[:, 2] @ inner.kernel.value), rtol=1e-6)


def test_time_distributed_backward_matches_finite_differences() -> None:
    check_layer_gradients(TimeDistributed(Conv1D(2, 2, activation="tanh")), (3, 4, 2))


def test_time_distributed_softmax_fuses_with_the_loss_in_a_model() -> None:
    model = Sequential(
        [TimeDistributed(Dense(3, activation="softmax"), input_shape=(4, 2))]
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((8, 4, 2)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 3, (8, 4))
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=20, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(-1), 1.0, rtol=1e-5)


def test_models_with_wrappers_save_and_load_with_the_same_predictions(
    tmp_path: Path,
) -> None:
    from loopkit import load_model

    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)
    for layer in (
        Bidirectional(GRU(4, return_sequences=True), merge_mode="ave", input_shape=(5, 3)),
        TimeDistributed(Dense(2, activation="tanh"), input_shape=(5, 3)),
    ):
        model = Sequential([layer])
        model.compile("adam", "mse")
        model.save(str(tmp_path / "model.npz"))
        loaded = load_model(str(tmp_path / "model.npz"))
        np.testing.assert_array_equal(
            loaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )


def test_bidirectional_runs_a_given_backward_layer_and_checks_its_direction() -> None:
    layer = Bidirectional(
        LSTM(3), backward_layer=GRU(3, go_backwards=True, name="gru_back")
    )
    check_layer_gradients(layer, (4, 2))
    assert [p.name for p in layer.parameters][3:] == [
        "gru_back/kernel",
        "gru_back/recurrent_kernel",
        "gru_back/bias",
    ]
    with pytest.raises(ConfigError, match=r"backward_layer with go_backwards=False; pass"):
        Bidirectional(LSTM(3), backward_layer=GRU(3))
