"""Overlap losses for segmentation: Dice and Tversky, over the axes a caller picks."""

from __future__ import annotations

from typing import Any

import numpy as np
from attrs import define, field

from loopkit.losses.base import EPSILON, JointGradient, Loss
from loopkit.typing import Array, FloatArray
from loopkit.validators import non_negative

__all__ = ["Dice", "Tversky"]


def _axes(value: Any) -> Any:
    """Turn a list of axes into a tuple (converter); None and ints stay as they are."""
    return tuple(int(a) for a in value) if isinstance(value, (list, tuple)) else value


def _sums(x: FloatArray, axis: Any) -> FloatArray:
    out: FloatArray = np.sum(x, axis=axis, keepdims=True)
    return out


def _drop_summed(values: FloatArray, axis: Any) -> FloatArray:
    """Drop the summed axes kept for broadcasting: a scalar when ``axis`` is None."""
    out: FloatArray = values.reshape(()) if axis is None else np.squeeze(values, axis=axis)
    return out


@define(eq=False)
class Tversky(JointGradient, Loss):
    """Tversky loss (Salehi et al., 2017) as in Keras: ``1 - TP / (TP + a FP + b FN)``.

    With ``TP = sum(y p)``, ``FP = sum((1 - y) p)``, ``FN = sum(y (1 - p))`` over
    ``axis`` (plus 1e-7 in the denominator). ``axis=None`` sums over every axis, the
    batch included, so the loss is one number for the batch, as in Keras;
    ``axis=(1, 2, 3)`` gives one value per sample of an image batch.

    Args:
        alpha: Weight of false positives, >= 0.
        beta: Weight of false negatives, >= 0.
        axis: None, an int or a tuple of axes to sum over.
    """

    alpha: float = field(default=0.5, validator=non_negative)
    beta: float = field(default=0.5, validator=non_negative)
    axis: int | tuple[int, ...] | None = field(default=None, converter=_axes)

    def values_and_grad(
        self, y_true: Array, y_pred: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        t, p, axis = y_true, y_pred, self.axis
        tp = _sums(t * p, axis)
        fp, fn = _sums((1 - t) * p, axis), _sums(t * (1 - p), axis)
        denominator = tp + self.alpha * fp + self.beta * fn + EPSILON
        d_denominator = t + self.alpha * (1 - t) - self.beta * t
        grad = -(t * denominator - tp * d_denominator) / denominator**2
        values = 1 - tp / denominator
        return _drop_summed(values, axis), grad


@define(eq=False)
class Dice(Tversky):
    """Dice loss as in Keras: ``1 - 2 sum(y p) / (sum(y) + sum(p))`` over ``axis``.

    Tversky with ``alpha = beta = 0.5`` (1e-7 in the denominator, as in Keras).

    Args:
        axis: None (every axis, the batch included: one number per batch), an int
            or a tuple of axes to sum over.
    """

    alpha: float = field(init=False, default=0.5)
    beta: float = field(init=False, default=0.5)
    axis: int | tuple[int, ...] | None = field(default=None, converter=_axes)

    def values_and_grad(
        self, y_true: Array, y_pred: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        t, p, axis = y_true, y_pred, self.axis
        overlap = _sums(t * p, axis)
        total = _sums(t, axis) + _sums(p, axis) + EPSILON
        values = 1 - 2 * overlap / total
        grad = -2 * t / total + 2 * overlap / total**2
        return _drop_summed(values, axis), grad
