"""A float32 tanh as one rational function: what the fused LSTM step computes.

``tanh(x) = x * P(x^2) / Q(x^2)`` on ``|x| <= 9`` (beyond, ``x`` is clamped to 9:
float32's tanh is 1 there to within an ulp), with ``P`` of degree 6 and ``Q`` of
degree 3 in ``x^2``. The coefficients are a relative-error minimax fit in float64
(iteratively reweighted least squares), rounded to float32; evaluated in float32 as
written here, the result is within 6 ulp of the exact tanh over the whole line
(``np.tanh`` is within 2), and ``tests/test_recurrent_tanh.py`` measures it. Only
multiplications, additions, one division and two comparisons: LLVM vectorizes it
inside a numba loop, which it cannot do with ``np.tanh``'s libm counterpart.

``rational_tanh`` is the NumPy equation the compiled kernels are checked against,
bitwise: each operation in the same order and the same float32 rounding.
"""

from __future__ import annotations

import numpy as np

from loopkit.typing import FloatArray

__all__ = ["CLAMP", "DENOMINATOR", "NUMERATOR", "rational_tanh"]

CLAMP = np.float32(9.0)
NUMERATOR = tuple(
    np.float32(c)
    for c in (
        1.0,
        0.13084007799625397,
        0.0031039537861943245,
        1.1154282219649758e-05,
        -2.0225110475280417e-08,
        5.277889583710227e-11,
        -8.488554911062485e-14,
    )
)
"""``P``'s coefficients, lowest power of ``x^2`` first."""
DENOMINATOR = tuple(
    np.float32(c)
    for c in (1.0, 0.4641733467578888, 0.024495169520378113, 0.00025461416225880384)
)
"""``Q``'s coefficients, lowest power of ``x^2`` first."""


def rational_tanh(x: FloatArray) -> FloatArray:
    """Return the rational tanh of a float32 array (NaN stays NaN)."""
    x = np.where(x > CLAMP, CLAMP, x)
    x = np.where(x < -CLAMP, -CLAMP, x).astype(np.float32)
    s = x * x
    p = NUMERATOR
    numerator = (((((p[6] * s + p[5]) * s + p[4]) * s + p[3]) * s + p[2]) * s + p[1]) * s
    numerator = numerator + p[0]
    q = DENOMINATOR
    denominator = (((q[3] * s + q[2]) * s + q[1]) * s) + q[0]
    return (x * numerator) / denominator
