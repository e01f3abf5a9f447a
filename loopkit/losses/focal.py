"""Cross-entropies that reweight examples: focal losses, generalized cross-entropy."""

from __future__ import annotations

import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError
from loopkit.losses.base import EPSILON, ElementwiseLoss, JointGradient, Loss
from loopkit.losses.crossentropy import (
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
)
from loopkit.typing import Array, FloatArray
from loopkit.validators import boolean, in_closed_range, non_negative

__all__ = [
    "BinaryFocalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CategoricalGeneralizedCrossEntropy",
]

_unit = in_closed_range(0.0, 1.0)


def _modulation(q: FloatArray, gamma: float) -> tuple[FloatArray, FloatArray]:
    """Return ``q**gamma`` and its derivative ``gamma q**(gamma - 1)`` for ``q >= 0``.

    At ``q = 0`` the derivative is taken as its limit from above: 0 for
    ``gamma > 1``, 1 for ``gamma = 1`` and 0 (not infinity) for ``gamma < 1``.
    """
    factor = np.power(q, gamma)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(q > 0, gamma * np.power(q, gamma - 1), float(gamma == 1))
    return factor, slope


def _sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (np.tanh(0.5 * z) + 1.0)  # no overflow for any z
    return out


@define(eq=False)
class BinaryFocalCrossentropy(ElementwiseLoss):
    """Binary focal cross-entropy (Lin et al., 2017), averaged over ``axis``, as Keras's.

    ``(1 - p_t)^gamma * bce`` with ``p_t = y p + (1 - y)(1 - p)`` and ``bce`` the
    binary cross-entropy of probabilities clipped to ``[1e-7, 1 - 1e-7]``; with
    ``apply_class_balancing``, times ``alpha`` for positives and ``1 - alpha`` for
    negatives. ``gamma = 0`` is binary cross-entropy.

    Args:
        apply_class_balancing: Weight positives by ``alpha``, negatives by ``1 - alpha``.
        alpha: Weight of the positive class, in [0, 1].
        gamma: Focusing parameter, >= 0.
        from_logits: Whether ``y_pred`` holds logits (a sigmoid is applied first).
        label_smoothing: In [0, 1]; targets become ``y (1 - ls) + 0.5 ls``.
        axis: The axis averaged over.
    """

    apply_class_balancing: bool = field(default=False, validator=boolean)
    alpha: float = field(default=0.25, validator=_unit)
    gamma: float = field(default=2.0, validator=non_negative)
    from_logits: bool = field(default=False, validator=boolean)
    label_smoothing: float = field(default=0.0, validator=_unit)
    axis: int = -1

    def _values_and_grad(
        self, y_true: FloatArray, y_pred: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        t = y_true * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        p = _sigmoid(y_pred) if self.from_logits else y_pred
        pc = np.clip(p, EPSILON, 1 - EPSILON)
        bce = -(t * np.log(pc) + (1 - t) * np.log(1 - pc))
        factor, slope = _modulation(1 - (t * p + (1 - t) * (1 - p)), self.gamma)
        inside = (p >= EPSILON) & (p <= 1 - EPSILON)
        dbce = np.where(inside, (1 - t) / (1 - pc) - t / pc, 0.0)
        values, grad = factor * bce, slope * (1 - 2 * t) * bce + factor * dbce
        if self.apply_class_balancing:
            weight = t * self.alpha + (1 - t) * (1 - self.alpha)
            values, grad = values * weight, grad * weight
        if self.from_logits:
            grad = grad * p * (1 - p)
        return values, grad

    def elementwise(self, y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
        return self._values_and_grad(y_true, y_pred)[0]

    def elementwise_and_grad(
        self, y_true: FloatArray, y_pred: FloatArray, out: FloatArray, grad: FloatArray
    ) -> None:
        values, derivative = self._values_and_grad(y_true, y_pred)
        np.copyto(out, values, casting="same_kind")
        np.copyto(grad, derivative, casting="same_kind")


@define(eq=False)
class CategoricalFocalCrossentropy(JointGradient, CategoricalCrossentropy):
    """Categorical focal cross-entropy (Lin et al., 2017) over the class axis, as Keras's.

    ``sum(alpha (1 - o)^gamma * -y log(o))`` where ``o`` is ``y_pred`` renormalised to
    sum to one and clipped to ``[1e-7, 1 - 1e-7]`` (after a softmax when
    ``from_logits``). ``gamma = 0`` and ``alpha = 1`` give categorical cross-entropy.

    Args:
        alpha: Weight of every class term, >= 0.
        gamma: Focusing parameter, >= 0.
        from_logits: Whether ``y_pred`` holds logits.
        label_smoothing: In [0, 1], as for CategoricalCrossentropy.
        axis: The class axis.
    """

    alpha: float = field(default=0.25, validator=non_negative)
    gamma: float = field(default=2.0, validator=non_negative)
    from_logits: bool = field(default=False, validator=boolean)
    label_smoothing: float = field(default=0.0, validator=_unit)
    axis: int = -1

    @property
    def fuses_with(self) -> str | None:
        return None

    def values_and_grad(
        self, y_true: Array, y_pred: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        t = self._smooth(y_true)
        if self.from_logits:
            shifted = np.exp(y_pred - y_pred.max(axis=-1, keepdims=True))
            p = shifted / shifted.sum(axis=-1, keepdims=True)
        else:
            p = y_pred
        total = p.sum(axis=-1, keepdims=True)
        o = p / total
        oc = np.clip(o, EPSILON, 1 - EPSILON)
        log_o = np.log(oc)
        factor, slope = _modulation(1 - oc, self.gamma)
        values = self.alpha * np.sum(factor * -t * log_o, axis=-1)
        d_oc = self.alpha * (slope * t * log_o - factor * t / oc)
        d_o = np.where((o >= EPSILON) & (o <= 1 - EPSILON), d_oc, 0.0)
        d_p = (d_o - np.sum(d_o * o, axis=-1, keepdims=True)) / total
        if self.from_logits:
            d_p = p * (d_p - np.sum(d_p * p, axis=-1, keepdims=True))
        return values, d_p


@define(eq=False)
class CategoricalGeneralizedCrossEntropy(JointGradient, SparseCategoricalCrossentropy):
    """Generalized cross-entropy (Zhang & Sabuncu, 2018) of integer labels, as Keras's.

    ``(1 - p[label]^q) / q``: near cross-entropy as ``q`` goes to 0, near the mean
    absolute error at ``q = 1``, more robust to noisy labels in between. ``y_pred``
    holds probabilities, used as given (no clipping, as in Keras).

    Args:
        q: The noise parameter, in (0, 1).
    """

    q: float = field(default=0.5)
    from_logits: bool = field(init=False, default=False)
    ignore_class: int | None = field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.q, bool) or not isinstance(self.q, (int, float)):
            raise TypeError(
                f"CategoricalGeneralizedCrossEntropy got q={self.q!r} of type "
                f"{type(self.q).__name__}; expected a number in (0, 1), such as 0.5."
            )
        if not 0 < self.q < 1:
            raise ConfigError(
                f"CategoricalGeneralizedCrossEntropy got q={self.q!r}; expected a number "
                "in (0, 1) (near 0 acts as cross-entropy, near 1 as mean absolute error)."
            )

    @property
    def fuses_with(self) -> str | None:
        return None

    def values_and_grad(
        self, y_true: Array, y_pred: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        index = y_true.astype(np.intp)[..., None]
        p = np.take_along_axis(y_pred, index, axis=-1)[..., 0]
        grad = np.zeros_like(y_pred)
        with np.errstate(divide="ignore"):
            np.put_along_axis(grad, index, -np.power(p, self.q - 1)[..., None], axis=-1)
        return (1 - np.power(p, self.q)) / self.q, grad

    def _logits_and_grad(
        self, y_true: Array, logits: FloatArray, grad: FloatArray
    ) -> tuple[FloatArray, float]:
        return Loss._logits_and_grad(self, y_true, logits, grad)  # takes no logits
