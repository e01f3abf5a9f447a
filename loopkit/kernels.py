"""Compiled single-pass optimizer updates (numba), bitwise equal to their NumPy equations.

NumPy spends a dozen passes over memory on one Adam update (one per ufunc); these
kernels read each element of the gradient and slots once and write it once, which
is 5-6x faster on a flat parameter buffer. They use IEEE arithmetic only (no
fastmath, no fused multiply-add), in the buffers' own dtype, with the operations
in the order of the NumPy code they replace, so results are bitwise identical.
Scalars must be passed in the arrays' dtype (``p.dtype.type(c)``): a Python float
would be a float64 in numba and change the rounding.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = [
    "adam",
    "adam_amsgrad",
    "bias_relu",
    "relu_backward",
    "relu_backward_bias",
    "sparse_softmax_crossentropy",
]

_jit = numba.njit(nogil=True, cache=True, error_model="numpy", fastmath=False)


@_jit
def adam(p: Any, g: Any, m: Any, v: Any, c1: Any, c2: Any, alpha: Any, eps: Any) -> None:
    """Keras's Adam step, element by element, in place.

    ``m += (g - m) c1``, ``v += (g^2 - v) c2``, ``p -= alpha m / (sqrt(v) + eps)``.
    """
    for i in range(p.shape[0]):
        gi = g[i]
        mi = m[i] + (gi - m[i]) * c1
        vi = v[i] + (gi * gi - v[i]) * c2
        m[i] = mi
        v[i] = vi
        p[i] -= mi / (np.sqrt(vi) + eps) * alpha


@_jit
def adam_amsgrad(
    p: Any, g: Any, m: Any, v: Any, v_hat: Any, c1: Any, c2: Any, alpha: Any, eps: Any
) -> None:
    """``adam`` with AMSGrad: the step divides by ``sqrt(max(v_hat, v))``."""
    for i in range(p.shape[0]):
        gi = g[i]
        mi = m[i] + (gi - m[i]) * c1
        vi = v[i] + (gi * gi - v[i]) * c2
        hi = max(v_hat[i], vi)
        m[i] = mi
        v[i] = vi
        v_hat[i] = hi
        p[i] -= mi / (np.sqrt(hi) + eps) * alpha


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
