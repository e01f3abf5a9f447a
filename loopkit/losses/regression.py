"""Regression, hinge and divergence losses: every built-in loss but the cross-entropies."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from attrs import define, field

from loopkit.losses.base import EPSILON, ElementwiseLoss, Loss
from loopkit.typing import Array, FloatArray
from loopkit.validators import positive

__all__ = [
    "CategoricalHinge",
    "CosineSimilarity",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "SquaredHinge",
]

_LOG2 = math.log(2.0)


def _rowdot(a: FloatArray, b: FloatArray) -> FloatArray:
    out: FloatArray = np.einsum("...i,...i->...", a, b)
    return out


@define(eq=False)
class MeanSquaredError(ElementwiseLoss):
    """Mean squared error over the last axis: ``mean((y_true - y_pred) ** 2)``."""

    def elementwise(self, y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
        out: FloatArray = np.square(y_pred - y_true)
        return out

    def elementwise_and_grad(
        self, y_true: FloatArray, y_pred: FloatArray, out: FloatArray, grad: FloatArray
    ) -> None:
        np.subtract(y_pred, y_true, out=grad)
        np.square(grad, out=out)
        grad *= 2


@define(eq=False)
class MeanAbsoluteError(ElementwiseLoss):
    """Mean absolute error over the last axis: ``mean(|y_true - y_pred|)``.

    The gradient where ``y_pred == y_true`` is 0 (a subgradient).
    """

    def elementwise(self, y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
        out: FloatArray = np.abs(y_pred - y_true)
        return out

    def elementwise_and_grad(
        self, y_true: FloatArray, y_pred: FloatArray, out: FloatArray, grad: FloatArray
    ) -> None:
        np.subtract(y_pred, y_true, out=grad)
        np.abs(grad, out=out)
        np.sign(grad, out=grad)


@define(eq=False)
class MeanAbsolutePercentageError(ElementwiseLoss):
    """Keras's MAPE: ``100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7))``."""

    def elementwise(self, y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
        out: FloatArray = 100 * np.abs(
            (y_true - y_pred) / np.maximum(np.abs(y_true), EPSILON)
        )
        return out

    def elementwise_and_grad(
        self, y_true: FloatArray, y_pred: FloatArray, out: FloatArray, grad: FloatArray
    ) -> None:
        scale = self._buffer("scale", y_pred.shape, y_pred.dtype)
        np.abs(y_true, out=scale)
        np.maximum(scale, EPSILON, out=scale)
        np.divide(100, scale, out=scale)
        np.subtract(y_pred, y_true, out=grad)
        np.abs(grad, out=out)
        out *= scale
        np.sign(grad, out=grad)
        grad *= scale


@define(eq=False)
class MeanSquaredLogarithmicError(ElementwiseLoss):
    """Keras's MSLE: ``mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))**2)``.

    ``eps = 1e-7``; the gradient is zero where ``y_pred < eps`` (the clipped region).
    """

    def elementwise(self, y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
        first = np.log1p(np.maximum(y_pred, EPSILON))
        out: FloatArray = np.square(first - np.log1p(np.maximum(y_true, EPSILON)))
        return out

    def elementwise_and_grad(
        self, y_true: FloatArray, y_pred: FloatArray, out: FloatArray, grad: FloatArray
    ) -> None:
        diff = self._buffer("diff", y_pred.shape, y_pred.dtype)
        np.maximum(y_pred, EPSILON, out=grad)
        np.log1p(grad, out=diff)
        grad += 1  # max(y_pred, eps) + 1, the derivative's denominator
        np.maximum(y_true, EPSILON, out=out)
        np.log1p(out, out=out)
        diff -= out
        np.square(diff, out=out)
        np.divide(diff, grad, out=grad)
        grad *= 2
        np.copyto(grad, 0, where=y_pred < EPSILON)


@define(eq=False)
class Poisson(ElementwiseLoss):
    """Keras's Poisson loss: ``mean(y_pred - y_true * log(y_pred + 1e-7))``.

    Expects positive predictions (e.g. from an ``exponential`` or ``softplus`` output).
    """

    def elementwise(self, y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
        out: FloatArray = y_pred - y_true * np.log(y_pred + EPSILON)
        return out

    def elementwise_and_grad(
        self, y_true: FloatArray, y_pred: FloatArray, out: FloatArray, grad: FloatArray
    ) -> None:
        np.add(y_pred, EPSILON, out=grad)
        np.log(grad, out=out)
        out *= y_true
        np.subtract(y_pred, out, out=out)
        np.divide(y_true, grad, out=grad)
        np.subtract(1, grad, out=grad)


@define(eq=False)
class LogCosh(ElementwiseLoss):
    """Mean of ``log(cosh(y_pred - y_true))``, computed as ``logaddexp(x, -x) - log 2``.

    That form never overflows; the gradient is ``tanh(y_pred - y_true)``.
    """

    def elementwise(self, y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
        x = y_pred - y_true
        out: FloatArray = np.logaddexp(x, -x) - _LOG2
        return out

    def elementwise_and_grad(
        self, y_true: FloatArray, y_pred: FloatArray, out: FloatArray, grad: FloatArray
    ) -> None:
        np.subtract(y_pred, y_true, out=grad)
        np.negative(grad, out=out)
        np.logaddexp(grad, out, out=out)
        out -= _LOG2
        np.tanh(grad, out=grad)


@define(eq=False)
class Huber(ElementwiseLoss):
    """Huber loss: ``0.5 x**2`` where ``|x| <= delta``, else ``delta (|x| - 0.5 delta)``.

    ``x = y_pred - y_true``, averaged over the last axis; the gradient is
    ``clip(x, -delta, delta)``.

    Args:
        delta: Where the loss turns from quadratic to linear; > 0.
    """

    delta: float = field(default=1.0, validator=positive)
    name: str = field(default="huber_loss", kw_only=True)

    def elementwise(self, y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
        x = y_pred - y_true
        a = np.abs(x)
        out: FloatArray = np.where(
            a <= self.delta, 0.5 * x * x, self.delta * a - 0.5 * self.delta**2
        )
        return out

    def elementwise_and_grad(
        self, y_true: FloatArray, y_pred: FloatArray, out: FloatArray, grad: FloatArray
    ) -> None:
        np.subtract(y_pred, y_true, out=out)
        np.clip(out, -self.delta, self.delta, out=grad)  # c = clip(x): the derivative
        out *= 2  # the loss is c (2x - c) / 2 on both branches
        out -= grad
        out *= grad
        out *= 0.5


def _hinge_labels(y_true: FloatArray) -> FloatArray:
    """Map 0/1 labels to -1/1, as Keras does when every label is 0 or 1."""
    if np.all((y_true == 0) | (y_true == 1)):
        return 2 * y_true - 1
    return y_true


@define(eq=False)
class Hinge(ElementwiseLoss):
    """Hinge loss ``mean(max(1 - y_true * y_pred, 0))``; 0/1 labels become -1/1."""

    def elementwise(self, y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
        out: FloatArray = np.maximum(1 - _hinge_labels(y_true) * y_pred, 0)
        return out

    def elementwise_and_grad(
        self, y_true: FloatArray, y_pred: FloatArray, out: FloatArray, grad: FloatArray
    ) -> None:
        y = _hinge_labels(y_true)
        np.multiply(y, y_pred, out=out)
        np.subtract(1, out, out=out)
        np.maximum(out, 0, out=out)
        np.sign(out, out=grad)  # 1 where the hinge is active, else 0
        grad *= y
        np.negative(grad, out=grad)


@define(eq=False)
class SquaredHinge(ElementwiseLoss):
    """Squared hinge ``mean(max(1 - y_true * y_pred, 0) ** 2)``; 0/1 labels become -1/1."""

    def elementwise(self, y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
        out: FloatArray = np.square(np.maximum(1 - _hinge_labels(y_true) * y_pred, 0))
        return out

    def elementwise_and_grad(
        self, y_true: FloatArray, y_pred: FloatArray, out: FloatArray, grad: FloatArray
    ) -> None:
        y = _hinge_labels(y_true)
        np.multiply(y, y_pred, out=out)
        np.subtract(1, out, out=out)
        np.maximum(out, 0, out=out)
        np.multiply(out, y, out=grad)
        grad *= -2
        np.square(out, out=out)


@define(eq=False)
class CategoricalHinge(Loss):
    """Keras's categorical hinge ``max(neg - pos + 1, 0)`` per sample.

    ``pos = sum(y_true * y_pred)`` and ``neg = max((1 - y_true) * y_pred)`` over the
    last axis. On ties the gradient takes the first arg max.
    """

    _min_ndim: ClassVar[int] = 2

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        pos = np.sum(y_true * y_pred, axis=-1)
        neg = np.max((1 - y_true) * y_pred, axis=-1)
        out: FloatArray = np.maximum(neg - pos + 1, 0)
        return out

    def call_and_grad(
        self, y_true: Array, y_pred: FloatArray, grad: FloatArray
    ) -> tuple[FloatArray, float]:
        np.subtract(1, y_true, out=grad)
        grad *= y_pred
        index = grad.argmax(axis=-1)[..., None]
        neg = np.take_along_axis(grad, index, axis=-1)[..., 0]
        values: FloatArray = np.maximum(neg - _rowdot(y_true, y_pred) + 1, 0)
        np.negative(y_true, out=grad)  # d(-pos); d(neg) adds 1 - y at the arg max
        np.put_along_axis(grad, index, 2 * np.take_along_axis(grad, index, -1) + 1, -1)
        grad *= (values > 0)[..., None]
        return values, 1.0


@define(eq=False)
class KLDivergence(Loss):
    """Kullback-Leibler divergence ``sum(y_true * log(y_true / y_pred))``, last axis.

    Both are clipped to ``[1e-7, 1]`` as in Keras; the gradient is zero where
    ``y_pred`` lies outside that range.
    """

    _min_ndim: ClassVar[int] = 2

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        yt, yp = np.clip(y_true, EPSILON, 1), np.clip(y_pred, EPSILON, 1)
        out: FloatArray = np.sum(yt * np.log(yt / yp), axis=-1)
        return out

    def call_and_grad(
        self, y_true: Array, y_pred: FloatArray, grad: FloatArray
    ) -> tuple[FloatArray, float]:
        yt = self._buffer("y_true", y_pred.shape, y_pred.dtype)
        np.clip(y_true, EPSILON, 1, out=yt)
        np.clip(y_pred, EPSILON, 1, out=grad)
        np.divide(yt, grad, out=grad)
        logs = np.log(grad, out=self._buffer("elementwise", y_pred.shape, y_pred.dtype))
        values = _rowdot(yt, logs)
        np.negative(grad, out=grad)  # d/dp of yt log(yt / p) is -yt / p
        np.copyto(grad, 0, where=(y_pred < EPSILON) | (y_pred > 1))
        return values, 1.0


@define(eq=False)
class CosineSimilarity(Loss):
    """Negative cosine similarity along ``axis``, as Keras's: ``-sum(l2n(y) * l2n(p))``.

    ``l2n(x) = x / sqrt(max(sum(x^2), 1e-14))`` (Keras's ``normalize``), so a zero
    vector gives 0. Values lie in [-1, 1]; -1 is a perfect match.

    Args:
        axis: The axis the vectors lie along.
    """

    axis: int = -1

    def _normalized(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Return ``l2n(x)``, ``1 / norm`` and where the norm was not clamped."""
        squared = np.sum(np.square(x), axis=self.axis, keepdims=True)
        inverse = 1 / np.sqrt(np.maximum(squared, EPSILON * EPSILON))
        return x * inverse, inverse, squared > EPSILON * EPSILON

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        true_n = self._normalized(y_true)[0]
        out: FloatArray = -np.sum(true_n * self._normalized(y_pred)[0], axis=self.axis)
        return out

    def call_and_grad(
        self, y_true: Array, y_pred: FloatArray, grad: FloatArray
    ) -> tuple[FloatArray, float]:
        true_n = self._normalized(y_true)[0]
        pred_n, inverse, unclamped = self._normalized(y_pred)
        cosine = np.sum(true_n * pred_n, axis=self.axis, keepdims=True)
        derivative = -inverse * (true_n - np.where(unclamped, cosine * pred_n, 0.0))
        np.copyto(grad, derivative, casting="same_kind")
        return -np.squeeze(cosine, axis=self.axis), 1.0
