"""Activations over a whole axis: GLU (halves it) and sparsemax (onto the simplex)."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
from attrs import field, frozen

from loopkit.activations.base import ActivationFunction
from loopkit.activations.smooth import Sigmoid
from loopkit.errors import ShapeError
from loopkit.typing import FloatArray, Shape

__all__ = ["GLU", "Sparsemax"]


def _int_axis(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{type(instance).__name__} got {attribute.name}={value!r} of type "
            f"{type(value).__name__}; expected an int axis such as -1."
        )


@frozen
class GLU(ActivationFunction):
    """Gated linear unit ``a * sigmoid(b)``, ``a``/``b`` the halves of ``x`` on ``axis``.

    Dauphin et al., 2017, "Language Modeling with Gated Convolutional Networks". The
    output has half the size of ``x`` along ``axis`` (Keras's ``activations.glu``), so
    it is used as ``Activation("glu")`` or ``activations.glu(x)``, not as a layer's
    ``activation=``.

    Args:
        axis: The axis split in two; its size must be even.
    """

    name: ClassVar[str] = "glu"
    same_shape: ClassVar[bool] = False
    axis: int = field(default=-1, validator=_int_axis)

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = list(input_shape)
        if not shape or not -len(shape) <= self.axis < len(shape):
            raise ShapeError(
                f"glu(axis={self.axis}) got an input of shape {tuple(input_shape)}, "
                "which has no such axis. Pass an axis of the input."
            )
        size = shape[self.axis]
        if size % 2:
            raise ShapeError(
                f"glu(axis={self.axis}) splits that axis in two halves, but it has odd "
                f"size {size} (input shape {tuple(input_shape)}). Give it an even size."
            )
        shape[self.axis] = size // 2
        return tuple(shape)

    def _halves(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        self.output_shape(x.shape)
        a, b = np.split(x, 2, axis=self.axis)
        return a, b

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        a, b = self._halves(x)
        gate = Sigmoid().forward(b, np.empty_like(b))
        return np.multiply(a, gate, out=out)

    def backward(
        self, dy: FloatArray, x: FloatArray, y: FloatArray, out: FloatArray
    ) -> FloatArray:
        # d/da = sigmoid(b); d/db = a * sigmoid(b) * (1 - sigmoid(b)).
        a, b = self._halves(x)
        gate = Sigmoid().forward(b, np.empty_like(b))
        da, db = np.split(out, 2, axis=self.axis)  # views: written in place
        np.multiply(dy, a, out=db)
        db *= gate
        db *= 1 - gate
        np.multiply(dy, gate, out=da)
        return out


@frozen
class Sparsemax(ActivationFunction):
    """Euclidean projection of ``x`` onto the probability simplex along ``axis``.

    ``max(x - tau, 0)`` with ``tau`` chosen so the outputs sum to 1 (Martins and
    Astudillo, 2016, "From Softmax to Sparsemax", Algorithm 1): like softmax, but
    exact zeros for the low entries.

    Args:
        axis: The axis that sums to 1.
    """

    name: ClassVar[str] = "sparsemax"
    axis: int = field(default=-1, validator=_int_axis)

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        z = np.moveaxis(x, self.axis, -1)
        ranked = -np.sort(-z, axis=-1)  # descending
        cumulative = np.cumsum(ranked, axis=-1)
        k = np.arange(1, z.shape[-1] + 1, dtype=x.dtype)
        support = 1 + k * ranked > cumulative  # a prefix of the ranked entries
        count = np.sum(support, axis=-1, keepdims=True)
        tau = (np.take_along_axis(cumulative, count - 1, axis=-1) - 1) / count
        result = np.maximum(z - tau, 0.0)
        np.copyto(out, np.moveaxis(result, -1, self.axis))
        return out

    def backward(
        self, dy: FloatArray, x: FloatArray, y: FloatArray, out: FloatArray
    ) -> FloatArray:
        # Jacobian diag(s) - s s^T / |S|, s the support indicator (y > 0): dx is dy
        # minus its mean over the support, on the support, and 0 elsewhere.
        inside = (y > 0).astype(dy.dtype)
        mean = np.sum(dy * inside, axis=self.axis, keepdims=True) / np.sum(
            inside, axis=self.axis, keepdims=True
        )
        np.subtract(dy, mean, out=out)
        out *= inside
        return out
