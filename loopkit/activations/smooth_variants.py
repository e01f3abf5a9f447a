"""Smooth activations Keras 3 added: CELU, softsign, squareplus, tanh shrink, log forms."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from attrs import field, frozen

from loopkit.activations.base import ActivationFunction, scratch
from loopkit.activations.smooth import axes, check_axes
from loopkit.typing import FloatArray
from loopkit.validators import non_negative, positive

__all__ = ["CELU", "LogSigmoid", "LogSoftmax", "Softsign", "Squareplus", "TanhShrink"]


@frozen
class CELU(ActivationFunction):
    """Continuously differentiable ELU: ``max(x, 0) + alpha expm1(min(x, 0) / alpha)``.

    Args:
        alpha: > 0.
    """

    name: ClassVar[str] = "celu"
    alpha: float = field(default=1.0, validator=positive)

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        negative = self.alpha * np.expm1(np.minimum(x, 0.0) / self.alpha)
        np.copyto(out, np.maximum(x, 0.0) + negative)
        return out

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.copyto(out, np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0) / self.alpha)))
        return out


@frozen
class Softsign(ActivationFunction):
    """``x / (1 + |x|)``."""

    name: ClassVar[str] = "softsign"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        np.copyto(out, x / (1 + np.abs(x)))
        return out

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.copyto(out, 1 / np.square(1 + np.abs(x)))
        return out


@frozen
class Squareplus(ActivationFunction):
    """``(x + sqrt(x^2 + b)) / 2``, a smooth ReLU (So, 2021).

    Args:
        b: >= 0; 0 is ReLU.
    """

    name: ClassVar[str] = "squareplus"
    b: float = field(default=4.0, validator=non_negative)

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        np.copyto(out, (x + np.sqrt(np.square(x) + self.b)) / 2)
        return out

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        root = np.sqrt(np.square(x) + self.b)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(root > 0, x / root, np.sign(x))
        np.copyto(out, (1 + ratio) / 2)
        return out


@frozen
class TanhShrink(ActivationFunction):
    """``x - tanh(x)``."""

    name: ClassVar[str] = "tanh_shrink"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        np.copyto(out, x - np.tanh(x))
        return out

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        return np.square(np.tanh(x), out=out)


@frozen
class LogSigmoid(ActivationFunction):
    """``log(sigmoid(x)) = -softplus(-x)``, exact for any ``x``."""

    name: ClassVar[str] = "log_sigmoid"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        np.copyto(out, -np.logaddexp(0.0, -x))
        return out

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.copyto(out, np.exp(-np.logaddexp(0.0, x)))  # sigmoid(-x), stable
        return out


@frozen
class LogSoftmax(ActivationFunction):
    """``x - log(sum(exp(x)))`` along ``axis``, shifted by the maximum against overflow.

    Args:
        axis: The axis normalized over, or a tuple of axes normalized together.
    """

    name: ClassVar[str] = "log_softmax"
    axis: int | tuple[int, ...] = field(default=-1, converter=axes, validator=check_axes)

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        shifted: FloatArray = x - np.max(x, axis=self.axis, keepdims=True)
        total = np.log(np.sum(np.exp(shifted), axis=self.axis, keepdims=True))
        np.subtract(shifted, total, out=out)
        return out

    def backward(
        self, dy: FloatArray, x: FloatArray, y: FloatArray, out: FloatArray
    ) -> FloatArray:
        # dx = dy - softmax(x) * sum(dy), with softmax(x) = exp(y).
        total: FloatArray = np.sum(dy, axis=self.axis, keepdims=True)
        probabilities: FloatArray = np.exp(y, out=scratch(out, dy, y))
        probabilities *= total
        return np.subtract(dy, probabilities, out=out)
