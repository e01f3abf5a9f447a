"""SeparableConv2D and SeparableConv1D against outputs recorded from Keras 3."""

from __future__ import annotations

import numpy as np
import pytest
from keras_separable_references import (
    INPUT_SHAPE,
    INPUT_SHAPE_1D,
    SEPARABLE,
    SEPARABLE_1D,
    SEPARABLE_1D_REFERENCES,
    SEPARABLE_REFERENCES,
)

from loopkit.layers import SeparableConv1D, SeparableConv2D


def known(shape: tuple[int, ...], k: float) -> np.ndarray:
    """The formula tests/make_keras_separable_references.py gave Keras."""
    n = int(np.prod(shape))
    return (0.6 * np.sin(0.7 * np.arange(n) + k)).reshape(shape).astype(np.float32)


@pytest.mark.parametrize(
    ("layer_class", "arguments", "references", "input_shape"),
    [
        pytest.param(
            SeparableConv2D,
            SEPARABLE[name],
            SEPARABLE_REFERENCES[name],
            INPUT_SHAPE,
            id=name,
        )
        for name in sorted(SEPARABLE)
    ]
    + [
        pytest.param(
            SeparableConv1D,
            SEPARABLE_1D[name],
            SEPARABLE_1D_REFERENCES[name],
            INPUT_SHAPE_1D,
            id=f"1d-{name}",
        )
        for name in sorted(SEPARABLE_1D)
    ],
)
def test_separable_convolutions_match_keras(
    layer_class: type, arguments: dict, references: tuple, input_shape: tuple[int, ...]
) -> None:
    shape, values = references
    layer = layer_class(**arguments)
    assert layer.setup(input_shape) == tuple(shape[1:])
    # Keras's weights in Keras's order and shapes load as they are.
    layer.set_weights([known(w.shape, 1.0 + i) for i, w in enumerate(layer.weights)])
    y = layer.forward(known((2, *input_shape), 0.5))
    np.testing.assert_allclose(y, values.reshape(shape), rtol=1e-5, atol=1e-5)
