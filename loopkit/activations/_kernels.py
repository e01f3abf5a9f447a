"""Compiled single-pass ReLU kernels (numba): bias+ReLU forward, ReLU backward.

They use IEEE arithmetic only (no fastmath, no fused multiply-add), in the
buffers' own dtype, with the operations in the order of the NumPy code they
replace, so results are bitwise identical. Scalars must be passed in the arrays'
dtype (``p.dtype.type(c)``): a Python float would be a float64 in numba.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["bias_relu", "relu_backward", "relu_backward_bias"]

_jit = numba.njit(nogil=True, cache=True, error_model="numpy", fastmath=False)


@_jit
def bias_relu(z: Any, bias: Any, out: Any) -> None:
    """``z += bias`` (per column) and ``out = maximum(z, 0)`` in one pass over ``z``.

    ``z`` and ``out`` are C-contiguous ``(rows, columns)``; NaN and -0.0 come out as
    ``np.maximum`` gives them.
    """
    rows, cols = z.shape
    for i in range(rows):
        for j in range(cols):
            zij = z[i, j] + bias[j]
            z[i, j] = zij
            out[i, j] = zij if (zij >= 0 or zij != zij) else 0


@_jit
def relu_backward(dy: Any, x: Any, out: Any) -> None:
    """``out = dy * (x > 0)`` over flat arrays, without the boolean temporary.

    Multiplying (rather than selecting) keeps NumPy's result where ``dy`` is NaN.
    """
    one = dy.dtype.type(1)
    zero = dy.dtype.type(0)
    for i in range(dy.shape[0]):
        out[i] = dy[i] * (one if x[i] > 0 else zero)


@_jit
def relu_backward_bias(dy: Any, x: Any, out: Any, bias_grad: Any) -> None:
    """``out = dy * (x > 0)`` and ``bias_grad = out.sum(axis=0)`` in one pass.

    ``dy``, ``x`` and ``out`` are C-contiguous ``(rows, columns)``. The column sums
    accumulate in float64 and are rounded once, so they are at least as accurate as
    NumPy's pairwise float32 sum (not bitwise equal to it).
    """
    rows, cols = dy.shape
    one = dy.dtype.type(1)
    zero = dy.dtype.type(0)
    acc = np.zeros(cols, np.float64)
    for i in range(rows):
        for j in range(cols):
            v = dy[i, j] * (one if x[i, j] > 0 else zero)
            out[i, j] = v
            acc[j] += v
    for j in range(cols):
        bias_grad[j] = acc[j]
