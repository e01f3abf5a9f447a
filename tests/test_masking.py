"""Masks: Masking, Embedding(mask_zero=True), the propagation rules, masked pipelines."""

from __future__ import annotations

import numpy as np
import pytest

from loopkit import losses
from loopkit.errors import ShapeError
from loopkit.layers import (
    LSTM,
    Bidirectional,
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAveragePooling1D,
    Layer,
    Masking,
    TimeDistributed,
)
from loopkit.layers.masking import call_forward, output_mask


def run(layers: list[Layer], x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Drive ``layers`` as a model would: masks computed and passed along."""
    shape, mask = x.shape[1:], None
    for i, layer in enumerate(layers):
        shape = layer.setup(shape, np.float64, np.random.default_rng(i))
    for layer in layers:
        next_mask = output_mask(layer, x, mask)
        x = call_forward(layer, x, False, mask)
        mask = next_mask
    return x, mask


def test_masking_masks_steps_whose_features_all_equal_the_value_and_zeros_them() -> None:
    x = np.array([[[1.0, -1.0], [-1.0, -1.0], [0.0, -1.0]]])
    layer = Masking(mask_value=-1.0)
    layer.setup((3, 2), np.float64)
    np.testing.assert_array_equal(layer.compute_mask(x, None), [[True, False, True]])
    np.testing.assert_array_equal(layer.forward(x), [[[1.0, -1.0], [0, 0], [0.0, -1.0]]])
    np.testing.assert_array_equal(layer.backward(np.ones((1, 3, 2)))[0, :, 0], [1, 0, 1])


def test_embedding_with_mask_zero_masks_index_zero_only() -> None:
    layer = Embedding(5, 3, mask_zero=True)
    ids = np.array([[3, 1, 0, 0]])
    np.testing.assert_array_equal(
        layer.compute_mask(ids, None), [[True, True, False, False]]
    )
    assert Embedding(5, 3).compute_mask(ids, None) is None


def test_masks_pass_through_per_step_layers_and_stop_at_the_others() -> None:
    mask = np.array([[True, False]])
    x = np.zeros((1, 2, 3))
    assert output_mask(Dense(2), x, mask) is mask
    assert output_mask(Dropout(0.5), x, mask) is mask
    assert output_mask(TimeDistributed(Dense(2)), x, mask) is mask
    assert output_mask(Flatten(), x, mask) is None
    assert output_mask(Conv1D(2, 1), x, mask) is None
    assert output_mask(LSTM(2), x, mask) is None
    assert output_mask(LSTM(2, return_sequences=True), x, mask) is mask
    assert output_mask(GlobalAveragePooling1D(), x, mask) is None


def test_a_masked_classifier_ignores_padding_tokens() -> None:
    def layers() -> list[Layer]:
        return [
            Embedding(10, 4, mask_zero=True),
            Bidirectional(LSTM(3, return_sequences=True)),
            GlobalAveragePooling1D(),
            Dense(2),
        ]

    tokens = np.array([[4, 2, 7], [1, 9, 3]])
    short, _ = run(layers(), tokens)
    padded, mask = run(layers(), np.concatenate([tokens, np.zeros((2, 4), int)], axis=1))
    assert mask is None
    np.testing.assert_allclose(padded, short, rtol=1e-12)


def test_masked_bidirectional_outputs_zeros_at_padded_steps_when_returning_sequences() -> (
    None
):
    x = np.random.default_rng(0).standard_normal((1, 4, 2))
    x[0, 2:] = 0.0
    y, mask = run([Masking(), Bidirectional(LSTM(3, return_sequences=True))], x)
    np.testing.assert_array_equal(mask, [[True, True, False, False]])
    np.testing.assert_array_equal(y[0, 2:], 0.0)
    assert np.all(y[0, :2] != 0.0)


def test_a_mask_of_the_wrong_shape_fails_before_any_step() -> None:
    layer = GlobalAveragePooling1D()
    layer.setup((4, 2))
    with pytest.raises(ShapeError, match=r"mask of shape \(2, 3\) .* expected .* \(2, 4\)"):
        layer.forward(np.zeros((2, 4, 2), np.float32), mask=np.ones((2, 3), bool))


def test_a_masked_embedding_lstm_classifier_learns_on_mixed_lengths() -> None:
    rng = np.random.default_rng(0)

    def data(n: int, steps: int = 8) -> tuple[np.ndarray, np.ndarray]:
        lengths = rng.integers(2, steps + 1, n)
        tokens = rng.integers(1, 10, (n, steps))
        tokens[np.arange(steps) >= lengths[:, None]] = 0
        return tokens, (tokens == 7).any(axis=1).astype(np.int64)  # holds a 7?

    layers: list[Layer] = [
        Embedding(10, 8, mask_zero=True),
        LSTM(16),
        Dense(2, activation="softmax"),
    ]
    shape: tuple[int, ...] = (8,)
    for i, layer in enumerate(layers):
        shape = layer.setup(shape, rng=np.random.default_rng(i))
    layers[0].input_grad_needed = False
    loss = losses.get("sparse_categorical_crossentropy")

    def forward(tokens: np.ndarray, training: bool) -> np.ndarray:
        mask, h = None, tokens
        for layer in layers:
            mask, h = output_mask(layer, h, mask), call_forward(layer, h, training, mask)
        return h

    x, y = data(1024)
    for _ in range(15):  # plain SGD by hand: the layers alone, no model
        for start in range(0, len(x), 32):
            _, grad = loss.value_and_grad(
                y[start : start + 32], forward(x[start : start + 32], True), None
            )
            d: np.ndarray | None = grad
            for layer in reversed(layers):
                d = layer.backward(d) if d is not None else None
            for layer in layers:
                for p in layer.parameters:
                    p.value -= 0.5 * p.grad
    x_test, y_test = data(500)
    predictions = forward(x_test, False).copy()
    assert np.mean(predictions.argmax(axis=1) == y_test) > 0.95
    padded = np.concatenate([x_test, np.zeros((500, 4), np.int64)], axis=1)
    np.testing.assert_allclose(forward(padded, False), predictions, rtol=1e-6, atol=1e-7)


def test_compute_mask_takes_the_inputs_alone_as_in_keras() -> None:
    """Keras's signature is ``compute_mask(inputs, mask=None)``."""
    ids = np.array([[3, 1, 0, 0], [2, 0, 0, 0]])
    np.testing.assert_array_equal(
        Embedding(5, 2, mask_zero=True).compute_mask(ids), ids != 0
    )
    x = np.array([[[1.0], [0.0]], [[0.0], [0.0]]], np.float32)
    np.testing.assert_array_equal(
        Masking(mask_value=0.0).compute_mask(x), [[True, False], [False, False]]
    )
    assert LSTM(2, return_sequences=True).compute_mask(x) is None
