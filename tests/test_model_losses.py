"""model.losses: the regularization penalties of the weights, as Keras lists them."""

from __future__ import annotations

import numpy as np
import pytest

import loopkit as keras
from loopkit.regularizers import L2


def test_losses_lists_each_regularized_weights_penalty_at_its_current_value() -> None:
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(2, kernel_regularizer=L2(0.01)),
            keras.layers.Dense(1),
        ]
    )
    kernel = model.layers[0].get_weights()[0].astype(np.float64)
    expected = 0.01 * float(np.sum(kernel**2))  # Keras's L2: l2 * sum(w ** 2)
    assert model.losses == [pytest.approx(expected, rel=1e-6)]
    assert all(type(v) is float for v in model.losses)

    new_kernel = np.arange(6, dtype=np.float32).reshape(3, 2)  # 0 + 1 + 4 + ... + 25 = 55
    model.layers[0].set_weights([new_kernel, np.zeros(2, np.float32)])
    assert model.losses == [pytest.approx(0.01 * 55.0, rel=1e-6)]


def test_losses_is_one_scalar_per_regularized_weight_in_weight_order() -> None:
    inputs = keras.Input((2,))
    hidden = keras.layers.Dense(2, kernel_regularizer=L2(1.0), bias_regularizer=L2(2.0))
    out = keras.layers.Dense(1, kernel_regularizer=L2(3.0))
    model = keras.Model(inputs, out(hidden(inputs)))
    k1, b1 = (np.full((2, 2), 1.0, np.float32), np.full(2, 0.5, np.float32))
    k2, b2 = (np.full((2, 1), 2.0, np.float32), np.zeros(1, np.float32))
    hidden.set_weights([k1, b1])
    out.set_weights([k2, b2])
    assert model.losses == pytest.approx([1.0 * 4.0, 2.0 * 0.5, 3.0 * 8.0])


def test_a_model_without_regularizers_has_no_losses() -> None:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert model.losses == []
