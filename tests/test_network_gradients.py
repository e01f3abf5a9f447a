"""Whole-model gradients (all layers, fused losses, penalties) vs finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import loopkit as lk
from loopkit.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Flatten,
    LayerNormalization,
    MaxPooling2D,
)
from loopkit.testing import numerical_gradient


def check_model_gradients(model: lk.Sequential, x: np.ndarray, y: np.ndarray) -> None:
    """Compare flat_gradients after one compute_gradients with d(loss)/d(flat_weights)."""
    loss = model.compute_gradients(x, y)
    analytic = model.flat_gradients.copy()

    def total_loss() -> float:
        model.forward(x, training=True)
        return model.test_loss(y, None)

    assert total_loss() == pytest.approx(loss, rel=1e-12)
    spans = model.trainable_spans
    numeric = numerical_gradient(total_loss, model.flat_weights)
    for span in spans:
        np.testing.assert_allclose(analytic[span], numeric[span], rtol=1e-5, atol=1e-7)


def test_dense_stack_with_fused_softmax_and_l2_matches_finite_differences(rng) -> None:
    model = lk.Sequential(
        [
            Dense(6, activation="tanh", input_dim=4, kernel_regularizer="l2"),
            LayerNormalization(),
            Dense(
                5, activation="gelu", kernel_regularizer=lk.regularizers.L1L2(0.01, 0.02)
            ),
            Dense(3, activation="softmax"),
        ],
        dtype="float64",
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert model.layers[
        -1
    ].fuse_output_activation  # the fused logits path is the one tested
    x = rng.standard_normal((7, 4))
    y = rng.integers(0, 3, 7)
    check_model_gradients(model, x, y)


def test_sigmoid_output_fused_with_binary_crossentropy_matches_finite_differences(
    rng,
) -> None:
    model = lk.Sequential(
        [Dense(5, activation="elu", input_dim=3), Dense(1), Activation("sigmoid")],
        dtype="float64",
    )
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    assert model.layers[-1].fuse_output_activation
    x = rng.standard_normal((6, 3))
    y = rng.integers(0, 2, (6, 1)).astype(np.float64)
    check_model_gradients(model, x, y)


def test_conv_net_with_batch_norm_matches_finite_differences(rng) -> None:
    model = lk.Sequential(
        [
            Conv2D(3, 3, padding="same", activation="relu", input_shape=(6, 6, 2)),
            BatchNormalization(),
            MaxPooling2D(),
            Conv2D(4, 2, strides=1, activation="swish"),
            AveragePooling2D(pool_size=2),
            Flatten(),
            Dense(3, activation="softmax"),
        ],
        dtype="float64",
    )
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = (
        rng.permutation(4 * 6 * 6 * 2).reshape(4, 6, 6, 2) / 50.0 - 1.0
    )  # no ties for max pool
    y = np.eye(3)[rng.integers(0, 3, 4)]
    check_model_gradients(model, x, y)


def test_frozen_first_layer_gets_no_gradient_and_no_input_gradient_work(rng) -> None:
    model = lk.Sequential(
        [Dense(4, activation="relu", input_dim=3), Dense(2)], dtype="float64"
    )
    model.compile(optimizer="sgd", loss="mse")
    model.layers[0].trainable = False
    model.flat_gradients[:] = 7.0  # sentinel: a frozen layer's gradient is never written
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    check_model_gradients(model, x, y)
    frozen = model.layers[0]
    assert all(np.all(p.grad == 7.0) for p in frozen.parameters)
    assert not model.layers[1].input_grad_needed  # nothing below it trains
    before = model.flat_weights.copy()
    model.apply_gradients()
    kernel = slice(0, frozen.count_params())
    np.testing.assert_array_equal(model.flat_weights[kernel], before[kernel])
    assert not np.array_equal(model.flat_weights[kernel.stop :], before[kernel.stop :])


def test_metrics_see_probabilities_when_training_skips_the_fused_softmax(rng) -> None:
    model = lk.Sequential([Dense(4, activation="softmax", input_dim=3)])
    model.compile(
        optimizer="sgd",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", "sparse_categorical_crossentropy"],
    )
    x = rng.standard_normal((16, 3)).astype(np.float32)
    y = rng.integers(0, 4, 16)
    probabilities = model.predict_on_batch(x)  # the weights before the step
    loss, accuracy, crossentropy = model.train_on_batch(x, y)
    expected = -np.log(probabilities[np.arange(16), y]).mean()
    assert accuracy == pytest.approx(np.mean(probabilities.argmax(axis=1) == y))
    assert crossentropy == pytest.approx(expected, rel=1e-5)  # logits would differ
    assert loss == pytest.approx(expected, rel=1e-5)
