"""Cross-entropy losses and their kernels, from logits (stable) or probabilities (clipped).

The kernels put classes on the last axis. Each returns the per-sample (binary:
per-element) loss and, given a ``grad`` array of the input's shape, writes the
derivative of those values into it, using it as scratch space on the way.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt
from attrs import define, field

from loopkit.errors import ShapeError
from loopkit.losses import _kernels as kernels
from loopkit.losses.base import EPSILON, ElementwiseLoss, Loss
from loopkit.typing import Array, FloatArray, IntArray
from loopkit.validators import in_closed_range

__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy_from_probabilities",
    "categorical_crossentropy_from_probabilities",
    "sigmoid_crossentropy",
    "softmax_crossentropy",
    "sparse_categorical_crossentropy_from_probabilities",
    "sparse_softmax_crossentropy",
]

_HIGH = 1.0 - EPSILON


def _rowdot(a: FloatArray, b: FloatArray) -> FloatArray:
    """Return ``sum(a * b, axis=-1)`` without materialising the product."""
    out: FloatArray = np.einsum("...i,...i->...", a, b)
    return out


def _rowsum(a: FloatArray) -> FloatArray:
    """Return ``sum(a, axis=-1, keepdims=True)``; einsum beats ``sum`` on short rows."""
    out: FloatArray = np.einsum("...i->...", a)[..., None]
    return out


def _outside(p: FloatArray) -> npt.NDArray[np.bool_]:
    return (p < EPSILON) | (p > _HIGH)


# --- kernels ------------------------------------------------------------------------------


def softmax_crossentropy(
    y: FloatArray, z: FloatArray, grad: FloatArray | None = None
) -> FloatArray:
    """Return ``-sum(y * log_softmax(z))`` per sample; write dL/dz into ``grad``.

    ``log_softmax(z) = s - log(sum(exp(s)))`` with ``s = z - max(z)`` is finite for
    any logits. The gradient is ``softmax(z) * sum(y) - y`` (``softmax(z) - y`` for
    targets summing to one).

    Args:
        y: ``(..., classes)`` targets, one-hot or soft.
        z: ``(..., classes)`` logits of ``y``'s dtype.
        grad: ``(..., classes)`` output for dL/dz, or None for the value only.
    """
    s = np.subtract(z, z.max(axis=-1, keepdims=True), out=grad)  # max(s) == 0
    target_dot_s = _rowdot(y, s)
    np.exp(s, out=s)
    total = _rowsum(s)  # in [1, classes]: its log is safe
    target_sum = _rowsum(y)
    loss: FloatArray = target_sum[..., 0] * np.log(total[..., 0]) - target_dot_s
    if grad is not None:
        grad *= target_sum / total
        grad -= y
    return loss


def sparse_softmax_crossentropy(
    labels: IntArray, z: FloatArray, grad: FloatArray | None = None
) -> FloatArray:
    """Return ``-log_softmax(z)[label]`` per sample; write dL/dz into ``grad``.

    The gradient is ``softmax(z) - one_hot(label)``.

    Args:
        labels: ``(...)`` integer class indices, each in ``[0, classes)``.
        z: ``(..., classes)`` logits.
        grad: ``(..., classes)`` output for dL/dz, or None for the value only.
    """
    index = labels[..., None]
    s = np.subtract(z, z.max(axis=-1, keepdims=True), out=grad)
    picked = np.take_along_axis(s, index, axis=-1)[..., 0]
    np.exp(s, out=s)
    total = _rowsum(s)
    loss: FloatArray = np.log(total[..., 0]) - picked
    if grad is not None:
        grad /= total
        label_probability = np.exp(picked)[..., None] / total  # == grad at the label
        np.put_along_axis(grad, index, label_probability - 1, axis=-1)
    return loss


def sigmoid_crossentropy(
    y: FloatArray,
    z: FloatArray,
    out: FloatArray | None = None,
    grad: FloatArray | None = None,
) -> FloatArray:
    """Return the element-wise ``-(y log sigmoid(z) + (1 - y) log(1 - sigmoid(z)))``.

    Computed as ``softplus(z) - z y`` with ``softplus(z) = logaddexp(0, z)``, finite for
    any logit. The gradient ``sigmoid(z) - y`` uses ``sigmoid(z) = (1 + tanh(z/2)) / 2``,
    which never overflows.

    Args:
        y: Targets in ``[0, 1]``, of ``z``'s shape.
        z: Logits.
        out: Output for the element-wise losses, or None to allocate it.
        grad: Output for dL/dz, or None for the value only.
    """
    loss: FloatArray = np.logaddexp(0, z, out=out)
    if grad is None:
        loss -= z * y
        return loss
    np.multiply(z, y, out=grad)
    loss -= grad
    np.multiply(z, 0.5, out=grad)
    np.tanh(grad, out=grad)
    grad += 1
    grad *= 0.5
    grad -= y
    return loss


def binary_crossentropy_from_probabilities(
    y: FloatArray,
    p: FloatArray,
    out: FloatArray | None = None,
    grad: FloatArray | None = None,
) -> FloatArray:
    """Return the element-wise binary cross-entropy of probabilities clipped as Keras does.

    With ``pc = clip(p, 1e-7, 1 - 1e-7)`` the loss is ``-(y log pc + (1-y) log(1-pc))``
    and its derivative ``(pc - y) / (pc (1 - pc))``; zero where ``p`` is clipped (the
    clipped formula is flat there). Arguments as for ``sigmoid_crossentropy``.
    """
    pc = np.clip(p, EPSILON, _HIGH)
    log_not = np.log1p(-pc)
    loss: FloatArray = np.log(pc, out=out)
    loss -= log_not
    loss *= y
    loss += log_not
    np.negative(loss, out=loss)
    if grad is not None:
        np.subtract(1, pc, out=log_not)
        log_not *= pc  # pc (1 - pc), reusing the array
        np.subtract(pc, y, out=grad)
        grad /= log_not
        np.copyto(grad, 0, where=_outside(p))
    return loss


def categorical_crossentropy_from_probabilities(
    y: FloatArray, p: FloatArray, grad: FloatArray | None = None
) -> FloatArray:
    """Return ``-sum(y log(clip(p / sum(p))))`` per sample, as Keras computes it.

    Keras renormalises ``p`` to sum to one and clips to ``[1e-7, 1 - 1e-7]``. With
    ``q = p / S`` and ``g = -y / clip(q)`` (zero where ``q`` is clipped), the gradient
    through the normalisation is ``(g - sum(g q)) / S``. Arguments as for
    ``softmax_crossentropy``, with probabilities for logits.
    """
    total = p.sum(axis=-1, keepdims=True)
    q = p / total
    qc = np.clip(q, EPSILON, _HIGH)
    loss: FloatArray = -_rowdot(y, np.log(qc))
    if grad is not None:
        np.divide(y, qc, out=grad)
        np.negative(grad, out=grad)
        np.copyto(grad, 0, where=_outside(q))
        grad -= _rowdot(grad, q)[..., None]
        grad /= total
    return loss


def sparse_categorical_crossentropy_from_probabilities(
    labels: IntArray, p: FloatArray, grad: FloatArray | None = None
) -> FloatArray:
    """Return ``-log(clip(p[label] / sum(p)))`` per sample, as Keras computes it.

    By the rule in ``categorical_crossentropy_from_probabilities`` the gradient is
    ``1 / S`` on every class plus ``-1 / (q S)`` on the label, ``q = p[label] / S``;
    zero where ``q`` is clipped. Arguments as for ``sparse_softmax_crossentropy``.
    """
    index = labels[..., None]
    total = p.sum(axis=-1, keepdims=True)
    q = np.take_along_axis(p, index, axis=-1) / total
    qc = np.clip(q, EPSILON, _HIGH)
    loss: FloatArray = -np.log(qc[..., 0])
    if grad is not None:
        scale = ~_outside(q) / total
        grad[...] = scale
        np.put_along_axis(grad, index, scale * (1 - 1 / qc), axis=-1)
    return loss


# --- losses -------------------------------------------------------------------------------


@define(eq=False)
class BinaryCrossentropy(ElementwiseLoss):
    """Binary cross-entropy, averaged over the last axis.

    With ``from_logits=True`` the loss is ``softplus(z) - z y``, exact for any logit.
    Otherwise probabilities are clipped to ``[1e-7, 1 - 1e-7]`` as in Keras, with a
    zero gradient outside that range. A model ending in a sigmoid trains through
    ``value_and_grad_from_logits`` instead (see ``fuses_with``): loss and gradient
    ``sigmoid(z) - y`` come stably from the logits, finite and exact even where the
    output saturates and Keras's clipping would cap the loss and zero the gradient.

    Args:
        from_logits: Whether ``y_pred`` holds logits rather than probabilities.
        label_smoothing: In ``[0, 1]``; targets become ``y (1 - ls) + 0.5 ls``.
        axis: The axis averaged over, as in Keras.
    """

    from_logits: bool = False
    label_smoothing: float = field(default=0.0, validator=in_closed_range(0.0, 1.0))
    axis: int = -1

    @property
    def fuses_with(self) -> str | None:
        return None if self.from_logits else "sigmoid"

    def _smooth(self, y_true: FloatArray) -> FloatArray:
        ls = self.label_smoothing
        return y_true * (1 - ls) + 0.5 * ls if ls else y_true

    def elementwise(self, y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
        if self.from_logits:
            return sigmoid_crossentropy(self._smooth(y_true), y_pred)
        return binary_crossentropy_from_probabilities(self._smooth(y_true), y_pred)

    def elementwise_and_grad(
        self, y_true: FloatArray, y_pred: FloatArray, out: FloatArray, grad: FloatArray
    ) -> None:
        if self.from_logits:
            sigmoid_crossentropy(self._smooth(y_true), y_pred, out, grad)
        else:
            binary_crossentropy_from_probabilities(self._smooth(y_true), y_pred, out, grad)

    def _sigmoid_and_grad(
        self, y_true: FloatArray, logits: FloatArray, out: FloatArray, grad: FloatArray
    ) -> None:
        sigmoid_crossentropy(self._smooth(y_true), logits, out, grad)

    def _logits_and_grad(
        self, y_true: Array, logits: FloatArray, grad: FloatArray
    ) -> tuple[FloatArray, float]:
        return self._mean_and_grad(y_true, logits, grad, self._sigmoid_and_grad)


@define(eq=False)
class CategoricalCrossentropy(Loss):
    """Categorical cross-entropy ``-sum(y_true * log(p))`` over the class axis.

    With ``from_logits=True``, ``log p`` is ``log_softmax(y_pred)``, exact for any
    logit. Otherwise, as in Keras, ``y_pred`` is renormalised to sum to one and clipped
    to ``[1e-7, 1 - 1e-7]``, with a zero gradient where clipped. A model ending in a
    softmax trains through ``value_and_grad_from_logits`` instead (see ``fuses_with``):
    loss and gradient ``softmax(z) - y`` come stably from the logits (log-sum-exp),
    finite and exact even where the output saturates.

    Args:
        from_logits: Whether ``y_pred`` holds logits rather than probabilities.
        label_smoothing: In ``[0, 1]``; targets become ``y (1 - ls) + ls / classes``
            (``classes`` along ``axis``; Keras takes the last axis whatever ``axis`` is).
        axis: The class axis. Fusion with a softmax output needs the default, -1.
    """

    from_logits: bool = False
    label_smoothing: float = field(default=0.0, validator=in_closed_range(0.0, 1.0))
    axis: int = -1
    _min_ndim: ClassVar[int] = 2

    @property
    def fuses_with(self) -> str | None:
        return None if self.from_logits or self.axis != -1 else "softmax"

    def _prepare(
        self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike
    ) -> tuple[Array, FloatArray]:
        yt, yp = super()._prepare(y_true, y_pred)
        if self.axis in (-1, yp.ndim - 1):
            return yt, yp
        if not -yp.ndim <= self.axis < yp.ndim:
            raise ShapeError(
                f"CategoricalCrossentropy(axis={self.axis}): y_pred has shape {yp.shape}, "
                f"with no axis {self.axis}. Pass the class axis, -1 for the last."
            )
        return np.moveaxis(yt, self.axis, -1), np.moveaxis(yp, self.axis, -1)

    def _layout(self, grad: FloatArray) -> FloatArray:
        if self.axis in (-1, grad.ndim - 1):
            return grad
        return np.moveaxis(grad, -1, self.axis)

    def _smooth(self, y_true: FloatArray) -> FloatArray:
        ls = self.label_smoothing
        return y_true * (1 - ls) + ls / y_true.shape[-1] if ls else y_true

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        if self.from_logits:
            return softmax_crossentropy(self._smooth(y_true), y_pred)
        return categorical_crossentropy_from_probabilities(self._smooth(y_true), y_pred)

    def call_and_grad(
        self, y_true: Array, y_pred: FloatArray, grad: FloatArray
    ) -> tuple[FloatArray, float]:
        if self.from_logits:
            return self._logits_and_grad(y_true, y_pred, grad)
        y = self._smooth(y_true)
        return categorical_crossentropy_from_probabilities(y, y_pred, grad), 1.0

    def _logits_and_grad(
        self, y_true: Array, logits: FloatArray, grad: FloatArray
    ) -> tuple[FloatArray, float]:
        return softmax_crossentropy(self._smooth(y_true), logits, grad), 1.0


@define(eq=False)
class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy of integer labels, ``-log(p[label])``, classes on the last axis.

    Labels are ints (or integral floats) of shape ``y_pred.shape[:-1]``, optionally
    with a trailing axis of size 1. Probabilities are renormalised and clipped as in
    ``CategoricalCrossentropy``; logits, given (``from_logits=True``) or fused with a
    softmax output (``value_and_grad_from_logits``), use log-sum-exp.

    Args:
        from_logits: Whether ``y_pred`` holds logits rather than probabilities.
        ignore_class: A label value (e.g. -1 or 255) that adds no loss and no gradient;
            as in Keras, the loss is then averaged over the other entries only.
    """

    from_logits: bool = False
    ignore_class: int | None = None
    _min_ndim: ClassVar[int] = 2

    @property
    def fuses_with(self) -> str | None:
        return None if self.from_logits else "softmax"

    def _prepare(
        self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike
    ) -> tuple[Array, FloatArray]:
        yp = self._as_float(y_pred)
        self._check_ndim(yp)
        labels = np.asarray(y_true)
        if labels.shape != yp.shape[:-1]:
            if labels.shape != (*yp.shape[:-1], 1):
                raise ShapeError(
                    f"{type(self).__name__}(): y_true has shape {labels.shape} but "
                    f"y_pred has shape {yp.shape}; expected integer labels of shape "
                    f"{yp.shape[:-1]} or {(*yp.shape[:-1], 1)}. For one-hot targets use "
                    "CategoricalCrossentropy."
                )
            labels = labels.reshape(yp.shape[:-1])
        if labels.dtype.kind not in "iu":
            labels = labels.astype(np.intp)
        classes = yp.shape[-1]
        kept = labels if self.ignore_class is None else labels[labels != self.ignore_class]
        bad = kept[(kept < 0) | (kept >= classes)]
        if bad.size:
            raise ValueError(
                f"{type(self).__name__}(): y_true holds the label {int(bad[0])}, "
                f"outside [0, {classes}) for y_pred with {classes} classes. Use labels "
                f"0..{classes - 1}, or ignore_class={int(bad[0])} to skip it."
            )
        return labels, yp

    def _count(self, y_true: Array, values: FloatArray) -> int:
        if self.ignore_class is None:
            return int(values.size)
        return int(np.count_nonzero(y_true != self.ignore_class))

    def _run(
        self, labels: IntArray, y_pred: FloatArray, grad: FloatArray | None, logits: bool
    ) -> FloatArray:
        keep = None if self.ignore_class is None else labels != self.ignore_class
        if keep is not None:
            labels = np.where(keep, labels, 0)  # any valid index; zeroed below
        if logits:
            values = sparse_softmax_crossentropy(labels, y_pred, grad)
        else:
            values = sparse_categorical_crossentropy_from_probabilities(
                labels, y_pred, grad
            )
        if keep is not None:
            values[~keep] = 0
            if grad is not None:
                grad *= keep[..., None]
        return values

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        return self._run(y_true, y_pred, None, self.from_logits)

    def call_and_grad(
        self, y_true: Array, y_pred: FloatArray, grad: FloatArray
    ) -> tuple[FloatArray, float]:
        return self._run(y_true, y_pred, grad, self.from_logits), 1.0

    def _logits_and_grad(
        self, y_true: Array, logits: FloatArray, grad: FloatArray
    ) -> tuple[FloatArray, float]:
        return self._run(y_true, logits, grad, True), 1.0

    def value_and_grad_from_logits(
        self,
        y_true: npt.ArrayLike,
        logits: npt.ArrayLike,
        sample_weight: npt.ArrayLike | None = None,
    ) -> tuple[float, FloatArray]:
        # The training step's common case (a batch of int labels, 2-D logits, no
        # weights) runs as one compiled pass; everything else, and any bad label
        # (for the error message), takes the general path.
        if (
            sample_weight is None
            and type(self) is SparseCategoricalCrossentropy  # subclasses change the loss
            and self.reduction in ("sum_over_batch_size", "mean", "mean_with_sample_weight")
            and self.dtype is None
            and self.ignore_class is None
            and type(y_true) is np.ndarray
            and type(logits) is np.ndarray
            and y_true.ndim == 1
            and y_true.dtype.kind in "iu"
            and logits.ndim == 2
            and logits.dtype.kind == "f"
            and logits.flags.c_contiguous
            and len(y_true) == len(logits) > 0
        ):
            grad = self._buffer("grad", logits.shape, logits.dtype)
            n = len(logits)
            total, bad = kernels.sparse_softmax_crossentropy(
                logits, y_true, grad, logits.dtype.type(1.0 / n)
            )
            if bad < 0:
                return float(total) / n, grad
        return super().value_and_grad_from_logits(y_true, logits, sample_weight)
