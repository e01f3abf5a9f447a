"""SeparableConv2D against outputs recorded from Keras 3."""

from __future__ import annotations

import numpy as np
import pytest
from keras_separable_references import INPUT_SHAPE, SEPARABLE, SEPARABLE_REFERENCES

from loopkit.layers import SeparableConv2D


def known(shape: tuple[int, ...], k: float) -> np.ndarray:
    """The formula tests/make_keras_separable_references.py gave Keras."""
    n = int(np.prod(shape))
    return (0.6 * np.sin(0.7 * np.arange(n) + k)).reshape(shape).astype(np.float32)


@pytest.mark.parametrize("name", sorted(SEPARABLE))
def test_separable_conv2d_matches_keras(name: str) -> None:
    shape, values = SEPARABLE_REFERENCES[name]
    layer = SeparableConv2D(**SEPARABLE[name])
    assert layer.setup(INPUT_SHAPE) == tuple(shape[1:])
    # Keras's weights in Keras's order and shapes load as they are.
    layer.set_weights([known(w.shape, 1.0 + i) for i, w in enumerate(layer.weights)])
    y = layer.forward(known((2, *INPUT_SHAPE), 0.5))
    np.testing.assert_allclose(y, values.reshape(shape), rtol=1e-5, atol=1e-5)
