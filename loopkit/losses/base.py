"""The Loss base class: per-sample values, Keras's reduction, weights, gradient buffers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs
import numpy as np
import numpy.typing as npt
from attrs import define, field

from loopkit._naming import snake_case
from loopkit.errors import ConfigError, ShapeError
from loopkit.typing import Array, FloatArray, Shape
from loopkit.validators import construct_from_config, dtype_name, float_dtype, one_of

__all__ = ["EPSILON", "REDUCTIONS", "ElementwiseLoss", "JointGradient", "Loss"]

EPSILON = 1e-7
"""Keras's ``backend.epsilon()``, the clipping bound of probabilities and denominators."""

_Kernel = Callable[[Array, FloatArray, FloatArray], tuple[FloatArray, float]]
REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", None, "none")
"""Keras 3's reductions: ``"mean"`` is ``"sum_over_batch_size"``, ``"none"`` is None."""


def _default_name(loss: Loss) -> str:
    return snake_case(type(loss).__name__)


@define(eq=False)
class Loss:
    """Base class of every loss: per-sample values, Keras's reduction, and the gradient.

    The reduced loss is by default Keras 3's ``"sum_over_batch_size"``:
    ``sum(per_sample * sample_weight) / per_sample.size``. The divisor counts values,
    not weights: weights summing to something other than the batch size scale the loss.
    ``sample_weight`` is ``(batch,)`` (broadcast over the other per-sample axes) or has
    the per-sample shape. A 1-D ``y_pred`` holds one value per sample (Keras would
    average the whole batch into one value, which no weight can reach).

    ``value_and_grad`` returns dL/dy_pred in a loss-owned buffer that the next call
    overwrites, so steady-state training allocates no gradient: copy what you keep.

    To write a loss, subclass with ``@define(eq=False)`` and implement ``call`` (the
    per-sample values, as in Keras) and ``call_and_grad``; ``ElementwiseLoss`` does
    the averaging for element-wise formulas.

    Args:
        name: Keras's snake-case name; defaults to the class name in snake case.
        reduction: ``"sum_over_batch_size"`` (or its synonym ``"mean"``) divides the
            weighted sum by the number of per-sample values, ``"sum"`` does not
            divide, ``"mean_with_sample_weight"`` divides by the sum of the weights,
            and None (or ``"none"``) returns the weighted per-sample values, which
            ``__call__`` gives but training cannot use.
        dtype: Compute in this float dtype (``"float32"`` or ``"float64"``); None
            keeps the predictions' float dtype.
    """

    name: str = field(kw_only=True, default=attrs.Factory(_default_name, takes_self=True))
    reduction: str | None = field(
        default="sum_over_batch_size", kw_only=True, validator=one_of(*REDUCTIONS)
    )
    dtype: str | None = field(
        default=None, kw_only=True, converter=dtype_name, validator=float_dtype
    )
    _buffers: dict[str, FloatArray] = field(init=False, factory=dict, repr=False)
    _min_ndim: ClassVar[int] = 1

    @property
    def fuses_with(self) -> str | None:
        """Activation whose logits ``value_and_grad_from_logits`` takes; None if none."""
        return None

    # --- the subclass contract -------------------------------------------------------

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        """Return the unreduced loss, ``y_pred.shape[:-1]`` (Keras's ``Loss.call``).

        ``y_true`` has ``y_pred``'s shape and dtype (integer labels for sparse losses).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement call()")

    def call_and_grad(
        self, y_true: Array, y_pred: FloatArray, grad: FloatArray
    ) -> tuple[FloatArray, float]:
        """Return ``call``'s values; write their derivative w.r.t. ``y_pred`` into ``grad``.

        Also returns a factor the derivative still needs (``1 / width`` for means over
        the last axis); the reduction folds it into its own scaling, saving a pass.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no gradient: implement call_and_grad() to "
            "train with it."
        )

    def _logits_and_grad(
        self, y_true: Array, logits: FloatArray, grad: FloatArray
    ) -> tuple[FloatArray, float]:
        """``call_and_grad`` of ``activation(logits)``, w.r.t. the logits."""
        raise TypeError(
            f"{type(self).__name__} takes no logits (its fuses_with is None); call "
            "value_and_grad() with the predictions instead."
        )

    # --- public interface ------------------------------------------------------------

    def per_sample(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> FloatArray:
        """Return the unreduced loss, of shape ``y_pred.shape[:-1]`` (Keras style)."""
        return self.call(*self._prepare(y_true, y_pred))

    def __call__(
        self,
        y_true: npt.ArrayLike,
        y_pred: npt.ArrayLike,
        sample_weight: npt.ArrayLike | None = None,
    ) -> Any:
        """Return the loss reduced by ``reduction``: a float, or per-sample values.

        Args:
            y_true: Targets of ``y_pred``'s shape (a missing trailing axis of size 1 is
                fine); integer labels ``(batch, ...)`` for sparse losses.
            y_pred: ``(batch, ..., features)`` predictions.
            sample_weight: ``(batch,)`` or per-sample-shaped weights, or None.

        Returns:
            A float; with ``reduction=None``, the weighted per-sample values.
        """
        y_true, y_pred = self._prepare(y_true, y_pred)
        values = self.call(y_true, y_pred)
        if self.reduction in (None, "none"):
            if sample_weight is None:
                return values
            return values * self._weights(sample_weight, values.shape, values.dtype)
        return self._reduce(values, sample_weight, self._count(y_true, values))

    def value_and_grad(
        self,
        y_true: npt.ArrayLike,
        y_pred: npt.ArrayLike,
        sample_weight: npt.ArrayLike | None = None,
    ) -> tuple[float, FloatArray]:
        """Return the reduced loss and dL/dy_pred, of ``y_pred``'s shape and dtype.

        Arguments as for ``__call__``. Both come from one vectorized pass; the gradient
        lives in a loss-owned buffer that the next call overwrites.
        """
        return self._value_and_grad(y_true, y_pred, sample_weight, self.call_and_grad)

    def value_and_grad_from_logits(
        self,
        y_true: npt.ArrayLike,
        logits: npt.ArrayLike,
        sample_weight: npt.ArrayLike | None = None,
    ) -> tuple[float, FloatArray]:
        """Return the loss of ``activation(logits)`` and dL/dlogits (see ``fuses_with``).

        The model calls this when its last layer applies the activation named by
        ``fuses_with`` and the loss takes probabilities: predictions stay
        probabilities, but training takes loss and gradient (``softmax(z) - y``,
        ``sigmoid(z) - y``, scaled by weights and reduction) stably from the logits, so
        saturated outputs give the exact, finite loss. Keras instead clips probabilities
        to ``[1e-7, 1 - 1e-7]``, capping the loss near 16.1 and zeroing the gradient of
        confidently wrong predictions. Arguments as for ``value_and_grad``.

        Raises:
            TypeError: ``fuses_with`` is None for this loss.
        """
        return self._value_and_grad(y_true, logits, sample_weight, self._logits_and_grad)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Any:
        """Make a loss from ``get_config()``'s output, as in Keras.

        Raises:
            ConfigError: the config has a key the constructor does not take.
        """
        return construct_from_config(cls, config)

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments (``name`` included) as JSON-ready values."""
        return {a.alias: getattr(self, a.name) for a in attrs.fields(type(self)) if a.init}

    # --- helpers ---------------------------------------------------------------------

    def _value_and_grad(
        self,
        y_true: npt.ArrayLike,
        y_pred: npt.ArrayLike,
        sample_weight: npt.ArrayLike | None,
        kernel: _Kernel,
    ) -> tuple[float, FloatArray]:
        if self.reduction in (None, "none"):
            raise ConfigError(
                f"{type(self).__name__}(reduction={self.reduction!r}) gives per-sample "
                "values, not the one number training needs. Use reduction="
                "'sum_over_batch_size' (the default) or 'sum' to train with it."
            )
        yt, yp = self._prepare(y_true, y_pred)
        grad = self._buffer("grad", yp.shape, yp.dtype)
        values, factor = kernel(yt, yp, grad)
        value = self._reduce(values, sample_weight, self._count(yt, values), grad, factor)
        return value, self._layout(grad)

    @staticmethod
    def _as_float(y_pred: npt.ArrayLike) -> FloatArray:
        """Return ``y_pred`` as a float32/float64 array, converting only when needed."""
        y = np.asarray(y_pred)
        return y if y.dtype.kind == "f" and y.dtype.itemsize >= 4 else y.astype(np.float32)

    def _prepare(
        self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike
    ) -> tuple[Array, FloatArray]:
        """Convert once; give ``y_true`` the shape and dtype of ``y_pred``."""
        yp = self._as_float(y_pred)
        if self.dtype is not None and yp.dtype != self.dtype:
            yp = yp.astype(self.dtype)
        yt = np.asarray(y_true, dtype=yp.dtype)
        if yt.shape != yp.shape:
            trailing_one = (yt.shape[:-1] == yp.shape and yt.shape[-1:] == (1,)) or (
                yp.shape[:-1] == yt.shape and yp.shape[-1:] == (1,)
            )
            if not trailing_one:
                raise ShapeError(
                    f"{type(self).__name__}(): y_true has shape {yt.shape} but y_pred has "
                    f"shape {yp.shape}; they must match, up to a trailing axis of size 1. "
                    "Pass targets shaped like the model's output."
                )
            yt = yt.reshape(yp.shape)
        self._check_ndim(yp)
        return yt, yp

    def _check_ndim(self, y_pred: FloatArray) -> None:
        if y_pred.ndim < self._min_ndim:
            expected = "(batch, ..., classes)" if self._min_ndim > 1 else "(batch, ...)"
            raise ShapeError(
                f"{type(self).__name__}(): y_pred has shape {y_pred.shape}; expected "
                f"{expected}. Add the missing axis, e.g. y_pred.reshape(len(y_pred), -1)."
            )

    def _layout(self, grad: FloatArray) -> FloatArray:
        """Undo an axis move made by ``_prepare`` (CategoricalCrossentropy's ``axis``)."""
        return grad

    def _count(self, y_true: Array, values: FloatArray) -> int:
        """The divisor of ``sum_over_batch_size``: the number of per-sample values."""
        return int(values.size)

    def _weights(self, sample_weight: npt.ArrayLike, shape: Shape, dtype: Any) -> Array:
        """Return ``sample_weight`` shaped to broadcast against values of ``shape``."""
        w = np.asarray(sample_weight, dtype=dtype)
        if w.shape == shape or w.ndim == 0:
            return w
        if w.shape == (*shape, 1):
            return w.reshape(shape)
        if w.ndim == 1 and len(shape) > 1 and w.shape[0] == shape[0]:
            return w.reshape((-1,) + (1,) * (len(shape) - 1))  # one weight per sample
        if w.ndim == len(shape) and all(
            a in (1, b) for a, b in zip(w.shape, shape, strict=True)
        ):
            return w
        raise ShapeError(
            f"{type(self).__name__}(): sample_weight has shape {w.shape} but the "
            f"per-sample losses have shape {shape}; pass weights of shape {shape[:1]} "
            f"(one per sample) or {shape}."
        )

    def _reduce(
        self,
        values: FloatArray,
        sample_weight: npt.ArrayLike | None,
        count: float,
        grad: FloatArray | None = None,
        factor: float = 1.0,
    ) -> float:
        """Return ``sum(values * weights) / divisor``; scale ``grad`` to match.

        The divisor is ``count`` for the averaging reductions, 1 for ``"sum"``, and
        the sum of the weights for ``"mean_with_sample_weight"`` given weights.
        """
        w = None
        if sample_weight is not None:
            w = self._weights(sample_weight, values.shape, values.dtype)
        if self.reduction == "sum":
            count = 1
        elif self.reduction == "mean_with_sample_weight" and w is not None:
            count = float(np.sum(w))
        if count == 0:  # an empty batch, or every label ignored: Keras's divide_no_nan
            if grad is not None:
                grad.fill(0)
            return 0.0
        if w is None:
            if grad is not None:
                grad *= factor / count
            return float(values.sum()) / count
        if grad is not None:
            scale = w * (factor / count)
            grad *= scale.reshape(scale.shape + (1,) * (grad.ndim - scale.ndim))
        return float(np.sum(values * w)) / count

    def _buffer(self, key: str, shape: Shape, dtype: Any) -> FloatArray:
        """Return a loss-owned array, grown once and viewed for shorter batches."""
        buf = self._buffers.get(key)
        if (
            buf is None
            or buf.dtype != dtype
            or buf.shape[1:] != shape[1:]
            or len(buf) < shape[0]
        ):
            buf = np.empty(shape, dtype)
            self._buffers[key] = buf
        return buf[: shape[0]]


@define(eq=False)
class ElementwiseLoss(Loss):
    """A loss averaging an element-wise formula over the last axis, as Keras's do.

    Subclasses implement ``elementwise`` (the formula) and ``elementwise_and_grad`` (the
    formula into ``out`` and its derivative into ``grad``, without temporaries).
    """

    def elementwise(self, y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
        """Return the loss of each element; ``y_true`` and ``y_pred`` share a shape."""
        raise NotImplementedError(f"{type(self).__name__} must implement elementwise()")

    def elementwise_and_grad(
        self, y_true: FloatArray, y_pred: FloatArray, out: FloatArray, grad: FloatArray
    ) -> None:
        """Write the element-wise losses into ``out`` and their derivative into ``grad``."""
        raise NotImplementedError(
            f"{type(self).__name__} has no gradient: implement elementwise_and_grad()."
        )

    @property
    def mean_axis(self) -> int:
        """The axis the element-wise values are averaged over: ``axis`` if set, else -1."""
        axis = getattr(self, "axis", -1)
        return axis if isinstance(axis, int) else -1

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        values = self.elementwise(y_true, y_pred)
        return values if values.ndim == 1 else values.mean(axis=self.mean_axis)

    def call_and_grad(
        self, y_true: Array, y_pred: FloatArray, grad: FloatArray
    ) -> tuple[FloatArray, float]:
        return self._mean_and_grad(y_true, y_pred, grad, self.elementwise_and_grad)

    def _mean_and_grad(
        self,
        y_true: Array,
        y_pred: FloatArray,
        grad: FloatArray,
        fill: Callable[[FloatArray, FloatArray, FloatArray, FloatArray], None],
    ) -> tuple[FloatArray, float]:
        out = self._buffer("elementwise", y_pred.shape, y_pred.dtype)
        fill(y_true, y_pred, out, grad)
        if out.ndim == 1:  # one value per sample: nothing to average
            return out, 1.0
        axis = self.mean_axis
        return out.mean(axis=axis), 1.0 / out.shape[axis]


class JointGradient:
    """Mixin for a Loss whose values and gradient come from one formula.

    The subclass implements ``values_and_grad(y_true, y_pred)``, returning the
    per-sample values and dvalues/dy_pred together; ``call`` and ``call_and_grad``
    follow. For formulas where sharing the intermediate terms is simplest
    (normalizations, focal factors, overlaps).
    """

    def values_and_grad(
        self, y_true: Array, y_pred: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Return the per-sample values and their derivative w.r.t. ``y_pred``."""
        raise NotImplementedError(f"{type(self).__name__} must implement values_and_grad()")

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        return self.values_and_grad(y_true, y_pred)[0]

    def call_and_grad(
        self, y_true: Array, y_pred: FloatArray, grad: FloatArray
    ) -> tuple[FloatArray, float]:
        values, derivative = self.values_and_grad(y_true, y_pred)
        np.copyto(grad, derivative, casting="same_kind")
        return values, 1.0
