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


def test_a_layer_written_the_keras_way_says_what_loopkit_needs() -> None:
    from attrs import define

    from loopkit.layers import Layer

    @define(eq=False, slots=False)
    class Scale(Layer):
        def call(self, x: Any) -> Any:
            return 2 * x

    layer = Scale()
    with pytest.raises(
        NotImplementedError,
        match=r"^Scale defines Keras's call\(\), which loopkit does not run: .* Scale must "
        r"implement forward\(x, training=False\)\. .*loopkit\.layers\.Layer docstring",
    ):
        layer.forward(np.zeros((1, 2)))
    with pytest.raises(NotImplementedError, match=r"Scale must implement backward\(dy\)"):
        layer.backward(np.zeros((1, 2)))


def test_a_keras_call_layer_in_a_graph_fails_where_it_is_called() -> None:
    # keras.io's TransformerBlock: call() composes built-in layers. Before, the graph
    # took the block's output shape for its input's and failed later, at the pooling
    # layer, with a shape error that did not name the block.
    import loopkit as lk
    from loopkit.layers import Dense, Layer

    class TransformerBlock(Layer):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.ffn = Dense(4)

        def call(self, inputs: Any) -> Any:
            return self.ffn(inputs)

    inputs = lk.Input(shape=(20,))
    with pytest.raises(
        NotImplementedError,
        match=r"^TransformerBlock\('TransformerBlock'\)\(\.\.\.\): TransformerBlock "
        r"defines Keras's call\(\).* can be a Python function instead",
    ):
        TransformerBlock()(inputs)
