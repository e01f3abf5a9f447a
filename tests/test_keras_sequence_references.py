"""Sequence layers against Keras 3: outputs and one SGD step from known weights.

The reference numbers in ``keras_sequence_references.py`` were produced with Keras 3
on JAX by ``make_keras_sequence_references.py`` (its docstring says how to re-run
it); the weights and inputs are the formula ``known`` in both places, so only
Keras's results are stored. CI does not need Keras.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from keras_sequence_references import REFERENCES

from loopkit import Sequential
from loopkit.layers import (
    GRU,
    LSTM,
    AveragePooling1D,
    Bidirectional,
    Conv1D,
    GlobalAveragePooling1D,
    Layer,
    MaxPooling1D,
    SimpleRNN,
    UpSampling1D,
)
from loopkit.optimizers import SGD

BATCH, STEPS, FEATURES, UNITS = 2, 5, 3, 2
MASK = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1]], bool)


def known(shape: tuple[int, ...], k: float) -> np.ndarray:
    """The generator's formula: ``0.6 sin(0.7 i + k)`` in C order, as float32."""
    n = int(np.prod(shape))
    return (0.6 * np.sin(0.7 * np.arange(n) + k)).reshape(shape).astype(np.float32)


SEQ = (STEPS, FEATURES)
CASES: dict[str, tuple[Callable[[], list[Layer]], tuple[int, int]]] = {
    "lstm": (lambda: [LSTM(UNITS, return_sequences=True, input_shape=SEQ)], SEQ),
    "gru": (lambda: [GRU(UNITS, return_sequences=True, input_shape=SEQ)], SEQ),
    "gru_reset_before": (
        lambda: [GRU(UNITS, reset_after=False, go_backwards=True, input_shape=SEQ)],
        SEQ,
    ),
    "simple_rnn": (
        lambda: [
            SimpleRNN(UNITS, return_sequences=True, go_backwards=True, input_shape=SEQ)
        ],
        SEQ,
    ),
    "bidirectional_lstm": (
        lambda: [Bidirectional(LSTM(UNITS, return_sequences=True), input_shape=SEQ)],
        SEQ,
    ),
    "bidirectional_gru_sum": (
        lambda: [Bidirectional(GRU(UNITS), merge_mode="sum", input_shape=SEQ)],
        SEQ,
    ),
    "conv1d_stack": (
        lambda: [
            Conv1D(
                4,
                3,
                padding="causal",
                dilation_rate=2,
                activation="tanh",
                input_shape=(9, FEATURES),
            ),
            Conv1D(3, 2, strides=2, padding="same"),
            MaxPooling1D(2, padding="same"),
            UpSampling1D(2),
            AveragePooling1D(2, strides=1),
            GlobalAveragePooling1D(),
        ],
        (9, FEATURES),
    ),
}


def _model(name: str) -> tuple[Sequential, np.ndarray]:
    make, shape = CASES[name]
    model = Sequential(make())
    model.set_weights([known(w.shape, 1.0 + i) for i, w in enumerate(model.weights)])
    return model, known((BATCH, *shape), 0.5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_outputs_match_keras_for_the_same_weights(name: str) -> None:
    model, x = _model(name)
    np.testing.assert_allclose(
        model.predict_on_batch(x), REFERENCES[name]["output"], rtol=1e-5, atol=2e-6
    )


@pytest.mark.parametrize("name", sorted(set(CASES) - {"conv1d_stack"}))
def test_masked_outputs_match_keras_for_the_same_weights(name: str) -> None:
    model, x = _model(name)
    layer = model.layers[0]
    y = layer.forward(x, training=False, mask=MASK)  # type: ignore[call-arg]
    np.testing.assert_allclose(y, REFERENCES[name]["masked_output"], rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_sgd_step_matches_keras_train_on_batch(name: str) -> None:
    model, x = _model(name)
    reference = REFERENCES[name]
    model.compile(optimizer=SGD(learning_rate=0.5), loss="mse")
    model.train_on_batch(x, known(reference["output"].shape, 7.0))
    trained = reference["trained"]
    assert len(model.weights) == len(trained)
    for param, expected in zip(model.weights, trained, strict=True):
        np.testing.assert_allclose(
            param.value, expected, rtol=1e-5, atol=2e-6, err_msg=param.name
        )
