"""SimpleRNN, LSTM and GRU: float64 gradients, masks, dropout, states, errors, learning."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import loopkit
from loopkit import Sequential
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers import GRU, LSTM, Dense, SimpleRNN
from loopkit.layers.recurrent import Recurrent
from loopkit.optimizers import Adam
from loopkit.testing import check_layer_gradients, numerical_gradient

MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 1, 1, 0, 1]], bool)

LAYERS: dict[str, Any] = {
    "simple_rnn": lambda **kw: SimpleRNN(3, **kw),
    "lstm": lambda **kw: LSTM(3, **kw),
    "lstm_numpy_cell": lambda **kw: LSTM(3, activation="gelu", **kw),
    "gru": lambda **kw: GRU(3, **kw),
    "gru_reset_before": lambda **kw: GRU(3, reset_after=False, **kw),
}
OPTIONS: dict[str, dict[str, Any]] = {
    "last_output": {},
    "sequences": {"return_sequences": True},
    "backwards_sequences": {"go_backwards": True, "return_sequences": True},
    "backwards_last": {"go_backwards": True},
    "no_bias": {"use_bias": False},
    "zero_output_for_mask": {"return_sequences": True, "zero_output_for_mask": True},
}


def masked_gradients(
    layer: Recurrent, x: np.ndarray, mask: np.ndarray | None, training: bool = False
) -> None:
    """Assert backward matches central differences of ``sum(forward(x, mask) * dy)``.

    With ``training`` the layer's generator is reset before every forward, so each
    evaluation draws the same dropout masks.
    """
    rng = np.random.default_rng(3)
    dy = rng.standard_normal((x.shape[0], *layer.compute_output_shape(x.shape[1:])))

    def loss() -> float:
        if training:
            layer.rng = np.random.default_rng(11)
        return float(np.sum(layer.forward(x, training=training, mask=mask) * dy))

    loss()
    dx = np.array(layer.backward(dy), copy=True)
    analytic = {p.name: p.grad.copy() for p in layer.parameters}
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-5, atol=1e-7)
    for p in layer.parameters:
        numeric = numerical_gradient(loss, p.value)
        np.testing.assert_allclose(analytic[p.name], numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_backward_matches_finite_differences(kind: str, option: str) -> None:
    check_layer_gradients(LAYERS[kind](**OPTIONS[option]), (4, 2), atol=1e-7)


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_backward_with_a_mask_matches_finite_differences(kind: str, option: str) -> None:
    layer = LAYERS[kind](**OPTIONS[option])
    rng = np.random.default_rng(0)
    layer.setup((5, 2), np.float64, rng)
    masked_gradients(layer, rng.standard_normal((3, 5, 2)), MASK)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_backward_with_dropout_matches_finite_differences(kind: str) -> None:
    layer = LAYERS[kind](return_sequences=True, dropout=0.3, recurrent_dropout=0.4)
    rng = np.random.default_rng(0)
    layer.setup((5, 2), np.float64, rng)
    masked_gradients(layer, rng.standard_normal((3, 5, 2)), MASK, training=True)


def test_backward_skips_input_and_weight_gradients_when_not_needed() -> None:
    layer = LSTM(3)
    rng = np.random.default_rng(0)
    layer.setup((4, 2), np.float64, rng)
    layer.input_grad_needed, layer.trainable = False, False
    for p in layer.parameters:
        p.grad.fill(7.0)
    layer.forward(rng.standard_normal((2, 4, 2)))
    assert layer.backward(np.ones((2, 3))) is None
    assert all(np.all(p.grad == 7.0) for p in layer.parameters)


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
def test_padding_a_masked_sequence_leaves_its_output_unchanged(kind: str) -> None:
    short, long = LAYERS[kind](), LAYERS[kind]()
    short.setup((3, 2), np.float64, np.random.default_rng(1))
    long.setup((7, 2), np.float64, np.random.default_rng(1))  # the same weights
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 2))
    padded = np.concatenate([x, rng.standard_normal((2, 4, 2))], axis=1)
    mask = np.tile(np.arange(7) < 3, (2, 1))
    np.testing.assert_allclose(
        long.forward(padded, mask=mask), short.forward(x), rtol=1e-12
    )


def test_masked_steps_repeat_the_last_output_and_carry_the_state() -> None:
    layer = GRU(2, return_sequences=True)
    rng = np.random.default_rng(2)
    layer.setup((4, 3), np.float64, rng)
    x = rng.standard_normal((1, 4, 3))
    y = layer.forward(x, mask=np.array([[True, False, True, False]])).copy()
    np.testing.assert_array_equal(y[0, 1], y[0, 0])
    np.testing.assert_array_equal(y[0, 3], y[0, 2])
    np.testing.assert_array_equal(layer.final_states[0], y[:, 2])
    # the unmasked steps give what the sequence without the masked steps gives
    layer.setup((2, 3), np.float64, np.random.default_rng(2))
    np.testing.assert_allclose(layer.forward(x[:, [0, 2]])[0, 1], y[0, 2], rtol=1e-12)


def test_lstm_final_states_are_the_last_output_and_cell() -> None:
    layer = LSTM(3, return_state=True)
    rng = np.random.default_rng(0)
    layer.setup((4, 2), np.float64, rng)
    y, h_out, c_out = layer.forward(rng.standard_normal((2, 4, 2)))  # Keras's order
    h, c = layer.final_states
    np.testing.assert_array_equal(h, y)
    np.testing.assert_array_equal(h_out, h)
    np.testing.assert_array_equal(c_out, c)
    assert c.shape == (2, 3)
    assert not np.allclose(c, h)


def test_initial_state_gradient_is_the_first_steps_gradient_through_the_recurrence() -> (
    None
):
    layer = SimpleRNN(2)
    rng = np.random.default_rng(0)
    layer.setup((1, 3), np.float64, rng)
    x, dy = rng.standard_normal((4, 1, 3)), rng.standard_normal((4, 2))
    h1 = layer.forward(x).copy()
    layer.backward(dy)
    # h1 = tanh(x0 W + b + h0 U): dL/dh0 = (dy * (1 - h1**2)) @ U.T
    expected = (dy * (1 - h1**2)) @ layer.recurrent_kernel.value.T
    np.testing.assert_allclose(layer.initial_state_gradients[0], expected, rtol=1e-12)


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru", "gru_reset_before"])
def test_given_initial_states_get_gradients_matching_finite_differences(kind: str) -> None:
    layer = LAYERS[kind](return_sequences=True)
    rng = np.random.default_rng(0)
    layer.setup((5, 2), np.float64, rng)
    x, dy = rng.standard_normal((3, 5, 2)), rng.standard_normal((3, 5, 3))
    states = [rng.standard_normal((3, 3)) for _ in layer.state_names]

    def loss() -> float:
        return float(np.sum(layer.forward(x, mask=MASK, initial_state=states) * dy))

    loss()
    layer.backward(dy)
    for state, grad in zip(states, layer.initial_state_gradients, strict=True):
        np.testing.assert_allclose(
            grad, numerical_gradient(loss, state), rtol=1e-5, atol=1e-7
        )


def test_initial_states_of_the_wrong_shape_are_refused_before_any_step() -> None:
    layer = LSTM(3)
    layer.setup((5, 2))
    with pytest.raises(
        ShapeError, match=r"initial states of shapes \[\(2, 3\)\]; expected 2 \(h, c\)"
    ):
        layer.forward(np.zeros((2, 5, 2), np.float32), initial_state=[np.zeros((2, 3))])


def test_lstm_starts_the_forget_bias_at_one_and_uses_keras_shapes() -> None:
    layer = LSTM(4)
    layer.setup((7, 3))
    assert [p.shape for p in layer.parameters] == [(3, 16), (4, 16), (16,)]
    np.testing.assert_array_equal(layer.parameters[2].value[4:8], 1.0)
    np.testing.assert_array_equal(layer.parameters[2].value[:4], 0.0)
    q = layer.recurrent_kernel.value
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=1e-5)  # orthonormal rows


def test_gru_bias_has_two_rows_with_reset_after_and_one_without() -> None:
    after, before = GRU(2), GRU(2, reset_after=False)
    after.setup((3, 5))
    before.setup((3, 5))
    assert [p.shape for p in after.parameters] == [(5, 6), (2, 6), (2, 6)]
    assert [p.shape for p in before.parameters] == [(5, 6), (2, 6), (6,)]


def test_layers_rebuild_from_their_config() -> None:
    layer = LSTM(5, return_sequences=True, go_backwards=True, recurrent_activation="relu")
    copy = LSTM(**layer.get_config())
    assert copy.get_config() == layer.get_config()
    assert copy.recurrent_activation.name == "relu"


@pytest.mark.parametrize("kind", [SimpleRNN, LSTM, GRU])
def test_keras_constraints_project_each_weight_after_each_step(kind: Any, tmp_path) -> None:
    from loopkit.constraints import MaxNorm

    layer = kind(
        4,
        kernel_constraint=MaxNorm(0.1),
        recurrent_constraint="non_neg",
        bias_constraint="non_neg",
        use_cudnn=False,  # Keras 3's argument: accepted, nothing to choose here
        input_shape=(5, 3),
    )
    model = Sequential([layer, Dense(1)])
    model.compile(Adam(0.5), "mse")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 5, 3)), rng.standard_normal((16, 1))
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    kernel, recurrent, bias = layer.get_weights()
    assert np.linalg.norm(kernel, axis=0).max() <= 0.1 + 1e-6  # per output column
    assert recurrent.min() >= 0 and bias.min() >= 0
    model.save(str(tmp_path / "m.npz"))
    loaded = loopkit.load_model(str(tmp_path / "m.npz"))
    assert isinstance(loaded.layers[0].kernel.constraint, MaxNorm)
    assert loaded.layers[0].use_cudnn is False


def test_use_cudnn_takes_keras_choices_only() -> None:
    for choice in ("auto", True, False):
        GRU(2, use_cudnn=choice)
    with pytest.raises(ConfigError, match=r"use_cudnn='yes'; expected 'auto', True"):
        LSTM(2, use_cudnn="yes")


def test_a_two_dimensional_input_fails_at_build_with_the_fix() -> None:
    model = Sequential([LSTM(4)])
    model.compile("adam", "mse")
    with pytest.raises(ShapeError, match=r"expects sequences .* got input_shape=\(32,\)"):
        model.fit(np.zeros((8, 32), np.float32), np.zeros((8, 4)), epochs=1, verbose=0)
    assert model.state.global_step == 0  # no step was taken
    with pytest.raises(ShapeError, match=r"add Reshape\(\(32, 1\)\)"):
        Sequential([LSTM(4, input_shape=(32,))])
    built = Sequential([LSTM(4, input_shape=(5, 3))])
    built.compile("adam", "mse")
    with pytest.raises(ShapeError, match=r"got x of shape \(8, 3\); the model expects"):
        built.fit(np.zeros((8, 3), np.float32), np.zeros((8, 4)), verbose=0)
    assert built.state.global_step == 0


def test_a_mask_of_the_wrong_length_fails_with_both_shapes() -> None:
    layer = GRU(2)
    layer.setup((5, 3))
    with pytest.raises(ShapeError, match=r"mask of shape \(2, 4\) for inputs of shape"):
        layer.forward(np.zeros((2, 5, 3), np.float32), mask=np.ones((2, 4), bool))


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_a_stateful_layer_continues_each_sample_across_batches(kind: str) -> None:
    rng = np.random.default_rng(0)
    whole = LAYERS[kind](return_sequences=True)
    whole.setup((8, 2), np.float64, rng)
    parts = LAYERS[kind](return_sequences=True, stateful=True)
    parts.setup((8, 2), np.float64, rng)
    parts.set_weights(whole.get_weights())
    x = rng.standard_normal((4, 8, 2))
    expected = whole.forward(x).copy()
    first = parts.forward(x[:, :5]).copy()
    second = parts.forward(x[:, 5:]).copy()
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), expected)
    np.testing.assert_allclose(parts.states[0], expected[:, -1])
    parts.reset_states()
    assert all(not s.any() for s in parts.states)
    np.testing.assert_allclose(parts.forward(x[:, :5]), expected[:, :5])
    parts.reset_states()
    parts.forward(x[:2, :5])  # after a reset, a batch of another size is fine
    with pytest.raises(
        ShapeError, match=r"states for batches of 2 samples and got a batch of 4"
    ):
        parts.forward(x[:, 5:])


def test_a_stateful_layer_stops_gradients_at_the_batch_boundary() -> None:
    rng = np.random.default_rng(1)
    layer = LSTM(3, stateful=True)
    layer.setup((4, 2), np.float64, rng)
    layer.forward(rng.standard_normal((3, 4, 2)))  # states carried into the next batch
    carried = [s.copy() for s in layer.states]
    x, dy = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 3))

    def loss() -> float:
        layer.states = [s.copy() for s in carried]  # each evaluation from the same states
        return float(np.sum(layer.forward(x) * dy))

    loss()
    dx = np.array(layer.backward(dy), copy=True)  # only dx: the states are constants
    analytic = {p.name: p.grad.copy() for p in layer.parameters}
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-5, atol=1e-7)
    for p in layer.parameters:
        numeric = numerical_gradient(loss, p.value)
        np.testing.assert_allclose(analytic[p.name], numeric, rtol=1e-5, atol=1e-7)


def test_keras_rnn_guide_stateful_snippets_run() -> None:
    # keras.io "Working with RNNs": cross-batch statefulness and RNN state reuse
    paragraph1 = np.random.default_rng(0).random((20, 10, 50)).astype(np.float32)
    paragraph2 = np.random.default_rng(0).random((20, 10, 50)).astype(np.float32)
    paragraph3 = np.random.default_rng(0).random((20, 10, 50)).astype(np.float32)
    lstm_layer = LSTM(64, stateful=True)
    lstm_layer(paragraph1)
    lstm_layer(paragraph2)
    existing_state = lstm_layer.states
    assert [s.shape for s in existing_state] == [(20, 64), (20, 64)]
    new_output = LSTM(64)(paragraph3, initial_state=existing_state)
    assert new_output.shape == (20, 64)
    lstm_layer.reset_states()
    assert LSTM(4).states is None  # not stateful: nothing carried, as in Keras


def test_a_stateful_bidirectional_model_trains_with_fixed_batches() -> None:
    from loopkit.layers import Bidirectional

    rng = np.random.default_rng(2)
    layer = Bidirectional(GRU(3, stateful=True))
    model = Sequential([loopkit.Input((6, 2)), layer, Dense(1)])
    model.compile("adam", "mse")
    x, y = rng.standard_normal((16, 6, 2)), rng.standard_normal((16, 1))
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert [s.shape for s in layer.states] == [(4, 3), (4, 3)]
    layer.reset_states()
    assert not any(s.any() for s in layer.states)
    with pytest.raises(ShapeError, match="batches of 4 samples and got a batch of 3"):
        model.predict(x[:7], batch_size=4, verbose=0)  # 4, then 3


def test_fit_carries_a_stateful_layers_states_from_batch_to_batch() -> None:
    from loopkit.optimizers import SGD

    rng = np.random.default_rng(4)
    layer = LSTM(3, stateful=True)
    model = Sequential([loopkit.Input((6, 2)), layer, Dense(1)])
    model.compile(SGD(0.0), "mse")  # weights fixed: the states alone change
    x, y = rng.standard_normal((16, 6, 2)), rng.standard_normal((16, 1))
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    # sample i of each batch continues sample i of the batch before it
    joined = np.concatenate([x[k : k + 4] for k in range(0, 16, 4)], axis=1)
    whole = LSTM(3)
    whole.setup((24, 2))
    whole.set_weights(layer.get_weights())
    np.testing.assert_allclose(layer.states[0], whole.forward(joined), atol=1e-5)


def test_bad_rates_are_refused_at_construction() -> None:
    with pytest.raises(ConfigError, match=r"dropout=1.0; expected a number in \[0.0"):
        GRU(3, dropout=1.0)


def test_an_lstm_learns_the_adding_problem() -> None:
    loopkit.set_random_seed(0)
    rng = np.random.default_rng(0)

    def data(n: int, steps: int = 50) -> tuple[np.ndarray, np.ndarray]:
        values, marks = rng.random((n, steps)), np.zeros((n, steps))
        rows = np.arange(n)
        marks[rows, rng.integers(0, steps // 2, n)] = 1.0
        marks[rows, rng.integers(steps // 2, steps, n)] = 1.0
        x = np.stack([values, marks], axis=-1).astype(np.float32)
        return x, (values * marks).sum(axis=1, keepdims=True).astype(np.float32)

    x, y = data(2000)
    x_test, y_test = data(500)
    model = Sequential([LSTM(16, input_shape=(50, 2)), Dense(1)])
    model.compile(Adam(learning_rate=0.01), "mse")
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    # predicting the mean sum (1.0) scores about 0.17
    assert model.evaluate(x_test, y_test, verbose=0) < 0.01


@pytest.mark.parametrize(
    ("cell", "layer"), [("SimpleRNNCell", SimpleRNN), ("LSTMCell", LSTM), ("GRUCell", GRU)]
)
def test_rnn_of_a_built_in_cell_is_the_equal_layer(cell: str, layer: Any) -> None:
    # keras.io "Working with RNNs": RNN(LSTMCell(units)) computes what LSTM(units) does
    from loopkit import layers

    made = layers.RNN(
        getattr(layers, cell)(4, dropout=0.1, kernel_initializer="he_normal"),
        return_sequences=True,
        return_state=True,
        go_backwards=True,
        input_shape=(5, 3),
        name="rnn",
    )
    assert type(made) is layer and made.name == "rnn"
    assert made.return_sequences and made.return_state and made.go_backwards
    assert made.dropout == 0.1 and made.kernel_initializer == "he_normal"
    direct = layer(4, return_sequences=True, input_shape=(5, 3))
    model = Sequential([direct, Dense(1)])
    via_cell = Sequential(
        [
            layers.RNN(getattr(layers, cell)(4), return_sequences=True, input_shape=(5, 3)),
            Dense(1),
        ]
    )
    via_cell.set_weights(model.get_weights())
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        via_cell.predict(x, verbose=0), model.predict(x, verbose=0)
    )


def test_cells_check_their_arguments_and_refuse_what_loopkit_cannot_run() -> None:
    from loopkit import layers

    cell = layers.LSTMCell(6, recurrent_dropout=0.2)
    assert cell.state_size == [6, 6] and cell.output_size == 6
    assert layers.GRUCell(3).state_size == 3
    assert cell.get_config() == {"units": 6, "recurrent_dropout": 0.2}
    with pytest.raises(ConfigError, match="relux"):
        layers.GRUCell(3, activation="relux")  # checked when the cell is written
    with pytest.raises(TypeError, match=r"arguments of the RNN layer.*return_sequences"):
        layers.SimpleRNNCell(3, return_sequences=True)
    with pytest.raises(ConfigError, match=r"StackedRNNCells.*return_sequences=True"):
        layers.RNN([layers.LSTMCell(3), layers.LSTMCell(3)])
    with pytest.raises(TypeError, match="takes SimpleRNNCell, LSTMCell or GRUCell"):
        layers.RNN(Dense(3))
    with pytest.raises(TypeError, match="cannot be called one step at a time"):
        cell(np.zeros((2, 3)), [np.zeros((2, 6))] * 2)
