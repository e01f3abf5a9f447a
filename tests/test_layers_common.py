"""Checks every layer shares: arguments resolved at construction."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loopkit import ConfigError
from loopkit.layers import BatchNormalization, Conv2D, Dense, Embedding


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: Dense(3, kernel_initializer="glorot"), r"'glorot'.*glorot_uniform"),
        (lambda: Dense(3, bias_initializer="zeroes"), r"'zeroes'"),
        (lambda: Dense(3, kernel_regularizer="l3"), r"'l3'"),
        (lambda: Conv2D(2, 3, kernel_initializer="he"), r"'he'"),
        (lambda: BatchNormalization(gamma_initializer="onez"), r"'onez'"),
        (lambda: Embedding(10, 4, embeddings_initializer="unifrom"), r"'unifrom'"),
    ],
)
def test_unknown_initializer_or_regularizer_fails_when_the_layer_is_written(
    make, pattern
) -> None:
    with pytest.raises(ConfigError, match=pattern):
        make()


def test_a_keras_style_layer_traces_call_when_forward_is_called_first() -> None:
    from attrs import define

    from loopkit.layers import Layer

    @define(eq=False, slots=False)
    class Scale(Layer):
        def call(self, x: Any) -> Any:
            return 2 * x

    layer = Scale()
    with pytest.raises(
        NotImplementedError,
        match=r"^Scale defines Keras's call\(\), which loopkit records when the layer is "
        r"first called .*has not been called yet, so it has no backward\(dy\)",
    ):
        layer.backward(np.zeros((1, 2)))
    np.testing.assert_array_equal(layer.forward(np.ones((1, 2), np.float32)), [[2.0, 2.0]])
    np.testing.assert_array_equal(layer.backward(np.ones((1, 2), np.float32)), [[2.0, 2.0]])
