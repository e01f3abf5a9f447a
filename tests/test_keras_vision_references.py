"""DepthwiseConv2D, ZeroPadding2D and Cropping2D against outputs recorded from Keras 3."""

from __future__ import annotations

import numpy as np
import pytest
from keras_vision_references import (
    CROPPING,
    CROPPING_REFERENCES,
    DEPTHWISE,
    DEPTHWISE_REFERENCES,
    INPUT_SHAPE,
    PADDING,
    PADDING_REFERENCES,
)

from loopkit.layers import Cropping2D, DepthwiseConv2D, ZeroPadding2D


def known(shape: tuple[int, ...], k: float) -> np.ndarray:
    """The formula tests/make_keras_vision_references.py gave Keras."""
    n = int(np.prod(shape))
    return (0.6 * np.sin(0.7 * np.arange(n) + k)).reshape(shape).astype(np.float32)


@pytest.mark.parametrize("name", sorted(DEPTHWISE))
def test_depthwise_conv2d_matches_keras(name: str) -> None:
    shape, values = DEPTHWISE_REFERENCES[name]
    layer = DepthwiseConv2D(**DEPTHWISE[name])
    assert layer.setup(INPUT_SHAPE) == tuple(shape[1:])
    # Keras's weights in Keras's order and shapes load as they are.
    layer.set_weights([known(w.shape, 1.0 + i) for i, w in enumerate(layer.weights)])
    y = layer.forward(known((2, *INPUT_SHAPE), 0.5))
    np.testing.assert_allclose(y, values.reshape(shape), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(PADDING))
def test_zero_padding2d_matches_keras(name: str) -> None:
    shape, values = PADDING_REFERENCES[name]
    layer = ZeroPadding2D(PADDING[name])
    assert layer.setup(INPUT_SHAPE) == tuple(shape[1:])
    y = layer.forward(known((2, *INPUT_SHAPE), 0.5))
    # The stored values keep 8 digits, so equal up to that rounding.
    np.testing.assert_allclose(y, values.reshape(shape), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(CROPPING))
def test_cropping2d_matches_keras(name: str) -> None:
    shape, values = CROPPING_REFERENCES[name]
    layer = Cropping2D(CROPPING[name])
    assert layer.setup(INPUT_SHAPE) == tuple(shape[1:])
    y = layer.forward(known((2, *INPUT_SHAPE), 0.5))
    # The stored values keep 8 digits, so equal up to that rounding.
    np.testing.assert_allclose(y, values.reshape(shape), rtol=1e-6, atol=1e-7)
