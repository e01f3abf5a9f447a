"""Smooth activations: sigmoid, tanh, softmax, softplus, exponential, GELU, Swish, Mish."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import attrs
import numpy as np
from attrs import field, frozen

from loopkit.activations._special import normal_cdf
from loopkit.activations.base import ActivationFunction, scratch
from loopkit.typing import FloatArray
from loopkit.validators import one_of

__all__ = [
    "GELU",
    "Exponential",
    "Mish",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Swish",
    "Tanh",
    "axes",
    "check_axes",
]


def axes(value: Any) -> Any:
    """Turn a list of axes into a tuple (converter); anything else stays as it is."""
    return tuple(value) if isinstance(value, list) else value


def check_axes(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept an int axis or a non-empty tuple of them (attrs validator)."""
    items = value if isinstance(value, tuple) and value else (value,)
    if any(isinstance(a, bool) or not isinstance(a, int) for a in items):
        raise TypeError(
            f"{type(instance).__name__} got {attribute.name}={value!r} of type "
            f"{type(value).__name__}; expected an int such as -1, or a tuple of them "
            "such as (-2, -1)."
        )


def _sigmoid(x: FloatArray, out: FloatArray) -> FloatArray:
    # 1 / (1 + exp(-x)) keeps full relative precision in both tails; where exp(-x)
    # overflows to inf the result is the exact limit 0.
    np.negative(x, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


@frozen
class Sigmoid(ActivationFunction):
    """Logistic sigmoid ``1 / (1 + exp(-x))``.

    Full relative precision in both tails, and exactly 0 where ``exp(-x)`` overflows,
    at a fraction of the cost of ``exp(-softplus(-x))``.
    """

    name: ClassVar[str] = "sigmoid"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        return _sigmoid(x, out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.subtract(1.0, y, out=out)
        out *= y
        return out


@frozen
class Tanh(ActivationFunction):
    """Hyperbolic tangent."""

    name: ClassVar[str] = "tanh"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        return np.tanh(x, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.square(y, out=out)
        return np.subtract(1.0, out, out=out)


@frozen
class Softmax(ActivationFunction):
    """``exp(x) / sum(exp(x))`` along ``axis``, shifted by the maximum against overflow.

    Args:
        axis: The axis that sums to 1, or a tuple of axes that sum to 1 together.
    """

    name: ClassVar[str] = "softmax"
    axis: int | tuple[int, ...] = field(default=-1, converter=axes, validator=check_axes)

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        # the ufuncs' own reductions: np.max and np.sum, without their Python wrappers
        np.subtract(x, np.maximum.reduce(x, axis=self.axis, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= np.add.reduce(out, axis=self.axis, keepdims=True)
        return out

    def backward(
        self, dy: FloatArray, x: FloatArray, y: FloatArray, out: FloatArray
    ) -> FloatArray:
        # dx = y * (dy - sum(dy * y)); einsum forms the row sums without a full product.
        axis = self.axis
        rows: FloatArray
        if isinstance(axis, tuple):
            rows = np.sum(dy * y, axis=axis, keepdims=True)
        else:
            rows = np.expand_dims(
                np.einsum(
                    "...i,...i->...", np.moveaxis(dy, axis, -1), np.moveaxis(y, axis, -1)
                ),
                axis,
            )
        d: FloatArray = np.subtract(dy, rows, out=scratch(out, y))
        return np.multiply(d, y, out=out)


@frozen
class GELU(ActivationFunction):
    """Gaussian error linear unit (Hendrycks and Gimpel, 2016), ``x * Phi(x)``.

    The exact form evaluates the normal CDF ``Phi`` through its own vectorized erfc
    (NumPy has none), so float64 gradient checks hold tightly: relative error below
    5e-14 for ``|x| <= 10`` in float64. In float32 the error is within about one float32
    rounding of ``max(1, |x|)``; deep in the negative tail (``Phi`` below 1e-6) the
    relative error grows to 1e-5, from rounding ``x**2`` in float32.
    ``approximate=True`` uses ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))``.

    Args:
        approximate: Use the tanh approximation instead of the exact erf form.
    """

    name: ClassVar[str] = "gelu"
    approximate: bool = field(default=False, validator=one_of(False, True))

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        phi = scratch(out, x)
        if self.approximate:
            np.square(x, out=phi)
            phi *= 0.044715
            phi += 1.0
            phi *= x
            phi *= math.sqrt(2.0 / math.pi)
            np.tanh(phi, out=phi)
            phi += 1.0
            phi *= 0.5
        else:
            normal_cdf(x, phi)
        return np.multiply(x, phi, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        k = math.sqrt(2.0 / math.pi)
        if self.approximate:  # 0.5 (1 + T) + 0.5 x (1 - T^2) k (1 + 3a x^2)
            np.square(x, out=out)
            inner = np.multiply(out, 3.0 * 0.044715)
            inner += 1.0
            out *= 0.044715
            out += 1.0
            out *= x
            out *= k
            np.tanh(out, out=out)
            inner *= 0.5 * k
            inner *= x
            sech2 = np.square(out)
            inner *= np.subtract(1.0, sech2, out=sech2)
            out += 1.0
            out *= 0.5
            out += inner
            return out
        density = np.square(x)  # Phi(x) + x phi(x)
        density *= -0.5
        np.exp(density, out=density)
        density *= x
        density *= 0.5 * k  # 1 / sqrt(2 pi)
        normal_cdf(x, out)
        out += density
        return out


@frozen
class Softplus(ActivationFunction):
    """``log(1 + exp(x))``, computed without overflow as ``logaddexp(0, x)``."""

    name: ClassVar[str] = "softplus"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        return np.logaddexp(0.0, x, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.subtract(x, y, out=out)  # sigmoid(x) = exp(x - softplus(x)), exponent <= 0
        return np.exp(out, out=out)


@frozen
class Swish(ActivationFunction):
    """Swish / SiLU, ``x * sigmoid(x)`` (Ramachandran et al., 2017); ``"silu"`` too."""

    name: ClassVar[str] = "swish"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        s = _sigmoid(x, scratch(out, x))
        return np.multiply(x, s, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        _sigmoid(x, out)  # s + x s (1 - s) = s (1 + x (1 - s))
        factor = np.subtract(1.0, out)
        factor *= x
        factor += 1.0
        out *= factor
        return out


@frozen
class Mish(ActivationFunction):
    """``x * tanh(softplus(x))`` (Misra, 2019)."""

    name: ClassVar[str] = "mish"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        t = np.logaddexp(0.0, x, out=scratch(out, x))
        np.tanh(t, out=t)
        return np.multiply(x, t, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.logaddexp(0.0, x, out=out)  # T + x sigmoid(x) (1 - T^2), T = tanh(softplus(x))
        s = np.subtract(x, out)
        np.exp(s, out=s)  # sigmoid(x)
        np.tanh(out, out=out)
        s *= x
        sech2 = np.square(out)
        s *= np.subtract(1.0, sech2, out=sech2)
        out += s
        return out


@frozen
class Exponential(ActivationFunction):
    """``exp(x)``."""

    name: ClassVar[str] = "exponential"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        return np.exp(x, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.copyto(out, y)
        return out
