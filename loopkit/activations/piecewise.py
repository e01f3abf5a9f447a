"""Piecewise activations: the ReLU family, ELU and SELU, hard sigmoid, and linear."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
from attrs import field, frozen

from loopkit.activations import _kernels as kernels
from loopkit.activations.base import ActivationFunction
from loopkit.typing import FloatArray
from loopkit.validators import non_negative

__all__ = ["ELU", "SELU", "HardSigmoid", "LeakyReLU", "Linear", "ReLU", "ReLU6"]


def _fusable(*arrays: FloatArray) -> bool:
    """Whether the compiled kernels can take ``arrays``: C-contiguous, one float dtype."""
    dtype = arrays[0].dtype
    return all(a.flags.c_contiguous and a.dtype == dtype for a in arrays) and (
        dtype.kind == "f"
    )


@frozen
class ReLU(ActivationFunction):
    """Rectified linear unit, ``max(x, 0)`` with the defaults.

    In general ``f(x) = min(x, max_value)`` for ``x > threshold`` and
    ``negative_slope * (x - threshold)`` otherwise, as Keras documents it. At a kink the
    derivative is the flatter side's (0 at ``x = 0`` for the plain ReLU).

    Args:
        negative_slope: Slope below the threshold, >= 0.
        max_value: Largest output, >= 0; None for no limit.
        threshold: Inputs at or below it get the ``negative_slope`` piece, >= 0.
    """

    name: ClassVar[str] = "relu"
    negative_slope: float = field(default=0.0, validator=non_negative)
    max_value: float | None = field(
        default=None, validator=attrs.validators.optional(non_negative)
    )
    threshold: float = field(default=0.0, validator=non_negative)

    @property
    def _plain(self) -> bool:
        return not self.negative_slope and self.max_value is None and not self.threshold

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        if self._plain:
            return np.maximum(x, 0.0, out=out)
        above = x > self.threshold
        high = x if self.max_value is None else np.minimum(x, self.max_value)
        low = (x - self.threshold) * self.negative_slope
        np.copyto(out, np.where(above, high, low))
        return out

    def forward_with_bias(
        self, z: FloatArray, bias: FloatArray, out: FloatArray
    ) -> FloatArray:
        if self._plain and _fusable(z, out) and bias.shape == z.shape[-1:]:
            cols = z.shape[-1]
            kernels.bias_relu(z.reshape(-1, cols), bias, out.reshape(-1, cols))
            return out
        return super().forward_with_bias(z, bias, out)

    def backward(
        self, dy: FloatArray, x: FloatArray, y: FloatArray, out: FloatArray
    ) -> FloatArray:
        if self._plain and _fusable(dy, x, out):
            kernels.relu_backward(dy.reshape(-1), x.reshape(-1), out.reshape(-1))
            return out
        return super().backward(dy, x, y, out)

    def backward_with_bias_grad(
        self,
        dy: FloatArray,
        x: FloatArray,
        y: FloatArray,
        out: FloatArray,
        bias_grad: FloatArray,
    ) -> FloatArray:
        if (
            self._plain
            and _fusable(dy, x, out, bias_grad)
            and bias_grad.shape == dy.shape[-1:]
        ):
            cols = dy.shape[-1]
            kernels.relu_backward_bias(
                dy.reshape(-1, cols), x.reshape(-1, cols), out.reshape(-1, cols), bias_grad
            )
            return out
        return super().backward_with_bias_grad(dy, x, y, out, bias_grad)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        if self._plain:
            return np.greater(x, 0.0, out=out)
        high: Any = 1.0 if self.max_value is None else x < self.max_value
        np.copyto(out, np.where(x > self.threshold, high, self.negative_slope))
        return out


@frozen
class LeakyReLU(ActivationFunction):
    """``x`` for ``x > 0``, ``negative_slope * x`` otherwise.

    Args:
        negative_slope: Slope for negative inputs, >= 0 (Keras 3 default 0.2).
    """

    name: ClassVar[str] = "leaky_relu"
    negative_slope: float = field(default=0.2, validator=non_negative)

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        negative = x < 0.0
        if out is not x:
            np.copyto(out, x)
        return np.multiply(out, self.negative_slope, out=out, where=negative)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.greater(x, 0.0, out=out)
        out *= 1.0 - self.negative_slope
        out += self.negative_slope
        return out


@frozen
class ELU(ActivationFunction):
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise.

    Args:
        alpha: Scale of the negative part, >= 0.
    """

    name: ClassVar[str] = "elu"
    alpha: float = field(default=1.0, validator=non_negative)

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        return _elu(x, out, self.alpha, 1.0)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        return _elu_derivative(x, y, out, self.alpha, 1.0)


def _elu(x: FloatArray, out: FloatArray, alpha: float, scale: float) -> FloatArray:
    negative = x <= 0.0
    if out is not x:
        np.copyto(out, x)
    np.expm1(out, out=out, where=negative)
    np.multiply(out, alpha, out=out, where=negative)
    if scale != 1.0:
        out *= scale
    return out


def _elu_derivative(
    x: FloatArray, y: FloatArray, out: FloatArray, alpha: float, scale: float
) -> FloatArray:
    np.add(y, scale * alpha, out=out)  # d/dx scale*alpha*(e^x - 1) = y + scale*alpha
    np.copyto(out, scale, where=x > 0.0)
    return out


@frozen
class SELU(ActivationFunction):
    """Scaled ELU, ``scale * elu(x, alpha)`` with Klambauer et al. (2017)'s constants."""

    name: ClassVar[str] = "selu"
    alpha: ClassVar[float] = 1.6732632423543772848170429916717
    scale: ClassVar[float] = 1.0507009873554804934193349852946

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        return _elu(x, out, self.alpha, self.scale)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        return _elu_derivative(x, y, out, self.alpha, self.scale)


@frozen
class Linear(ActivationFunction):
    """The identity, ``x``: what ``activation=None`` means."""

    name: ClassVar[str] = "linear"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        if out is not x:
            np.copyto(out, x)
        return out

    def backward(
        self, dy: FloatArray, x: FloatArray, y: FloatArray, out: FloatArray
    ) -> FloatArray:
        return self.forward(dy, out)


@frozen
class HardSigmoid(ActivationFunction):
    """Keras 3's piecewise-linear sigmoid, ``relu6(x + 3) / 6``: 0 below -3, 1 above 3."""

    name: ClassVar[str] = "hard_sigmoid"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        np.multiply(x, 1.0 / 6.0, out=out)
        out += 0.5
        return np.clip(out, 0.0, 1.0, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.abs(x, out=out)
        np.less(out, 3.0, out=out)
        out *= 1.0 / 6.0
        return out


@frozen
class ReLU6(ActivationFunction):
    """``min(max(x, 0), 6)``."""

    name: ClassVar[str] = "relu6"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        return np.clip(x, 0.0, 6.0, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.subtract(x, 3.0, out=out)  # 1 on (0, 6): |x - 3| < 3
        np.abs(out, out=out)
        return np.less(out, 3.0, out=out)
