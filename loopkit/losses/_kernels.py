"""Compiled fused softmax and sparse cross-entropy (numba), one pass per row.

They use IEEE arithmetic only (no fastmath, no fused multiply-add), in the
buffers' own dtype, with the operations in the order of the NumPy code they
replace, so results are bitwise identical. Scalars must be passed in the arrays'
dtype (``p.dtype.type(c)``): a Python float would be a float64 in numba.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["sparse_softmax_crossentropy"]

_jit = numba.njit(nogil=True, cache=True, error_model="numpy", fastmath=False)


@_jit
def sparse_softmax_crossentropy(z: Any, labels: Any, grad: Any, scale: Any) -> Any:
    """Fused softmax and sparse cross-entropy over the rows of ``z``.

    Per row: loss ``log(sum(exp(z - max))) - (z[label] - max)``; gradient
    ``(softmax(z) - one_hot(label)) * scale`` into ``grad``.

    Returns ``(sum of the losses as float64, index of the first out-of-range label or
    -1)``; on a bad label nothing further is computed.
    """
    rows, cols = z.shape
    total = 0.0
    for i in range(rows):
        label = labels[i]
        if label < 0 or label >= cols:
            return total, i
        top = z[i, 0]
        for j in range(1, cols):
            if z[i, j] > top or z[i, j] != z[i, j]:
                top = z[i, j]
        s = z.dtype.type(0)
        for j in range(cols):
            e = np.exp(z[i, j] - top)
            grad[i, j] = e
            s += e
        total += np.log(s) - (z[i, label] - top)
        for j in range(cols):
            grad[i, j] = grad[i, j] / s * scale
        grad[i, label] -= scale
    return total, -1
