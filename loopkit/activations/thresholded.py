"""Piecewise activations Keras 3 added: hard tanh/shrink/SiLU, soft shrink, sparse ones."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
from attrs import field, frozen

from loopkit.activations.base import ActivationFunction
from loopkit.typing import FloatArray
from loopkit.validators import non_negative

__all__ = [
    "HardShrink",
    "HardSilu",
    "HardTanh",
    "SoftShrink",
    "SparsePlus",
    "SparseSigmoid",
    "Threshold",
]


def _real(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{type(instance).__name__} got {attribute.name}={value!r} of type "
            f"{type(value).__name__}; expected a number."
        )


def _indicator(condition: np.ndarray, out: FloatArray) -> FloatArray:
    """Write 1 where ``condition`` holds, else 0, into ``out``."""
    np.copyto(out, condition, casting="unsafe")
    return out


@frozen
class HardTanh(ActivationFunction):
    """``clip(x, -1, 1)``; gradient 1 inside (-1, 1), else 0."""

    name: ClassVar[str] = "hard_tanh"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        return np.clip(x, -1.0, 1.0, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        return _indicator(np.abs(x) < 1, out)


@frozen
class HardShrink(ActivationFunction):
    """``x`` where ``|x| > threshold``, else 0.

    Args:
        threshold: >= 0.
    """

    name: ClassVar[str] = "hard_shrink"
    threshold: float = field(default=0.5, validator=non_negative)

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        keep = np.abs(x) > self.threshold
        return np.multiply(x, keep, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        return _indicator(np.abs(x) > self.threshold, out)


@frozen
class SoftShrink(HardShrink):
    """``x - t`` above ``t``, ``x + t`` below ``-t``, else 0 (``t`` the threshold).

    Args:
        threshold: >= 0.
    """

    name: ClassVar[str] = "soft_shrink"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        t = self.threshold
        np.copyto(out, x - np.clip(x, -t, t))
        return out


@frozen
class Threshold(ActivationFunction):
    """``x`` where ``x > threshold``, else ``default_value``, as Keras's ``threshold``.

    Keras's function has no defaults; here both are 0 (ReLU), so the name alone works.

    Args:
        threshold: The value ``x`` must exceed to pass.
        default_value: What replaces ``x`` at or below the threshold.
    """

    name: ClassVar[str] = "threshold"
    threshold: float = field(default=0.0, validator=_real)
    default_value: float = field(default=0.0, validator=_real)

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        np.copyto(out, np.where(x > self.threshold, x, self.default_value))
        return out

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        return _indicator(x > self.threshold, out)


@frozen
class SparseSigmoid(ActivationFunction):
    """``clip((x + 1) / 2, 0, 1)``: 0 at or below -1, 1 at or above 1, linear between."""

    name: ClassVar[str] = "sparse_sigmoid"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        np.add(x, 1.0, out=out)
        out *= 0.5
        return np.clip(out, 0.0, 1.0, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        _indicator(np.abs(x) < 1, out)
        out *= 0.5
        return out


@frozen
class SparsePlus(ActivationFunction):
    """0 at or below -1, ``(x + 1)^2 / 4`` on (-1, 1), ``x`` at or above 1."""

    name: ClassVar[str] = "sparse_plus"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        middle = np.square(np.clip(x, -1.0, 1.0) + 1) / 4
        np.copyto(out, np.where(x >= 1, x, middle))
        return out

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.copyto(out, (np.clip(x, -1.0, 1.0) + 1) / 2)
        return out


@frozen
class HardSilu(ActivationFunction):
    """Hard SiLU (hard swish): ``x * relu6(x + 3) / 6``, as in Keras 3."""

    name: ClassVar[str] = "hard_silu"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        gate = np.clip((x + 3) / 6, 0.0, 1.0)
        return np.multiply(x, gate, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        gate = np.clip((x + 3) / 6, 0.0, 1.0)
        slope = np.where(np.abs(x) < 3, x / 6, 0.0)
        np.add(gate, slope, out=out)
        return out
