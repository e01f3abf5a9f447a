"""Initializers that fill a weight with one number: zeros, ones, a constant."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from attrs import field, frozen

from loopkit.initializers.base import Initializer, check_real, to_float
from loopkit.typing import Array, Shape

__all__ = ["Constant", "Ones", "Zeros"]


@frozen
class Zeros(Initializer):
    """All zeros."""

    random: ClassVar[bool] = False

    def _generate(self, shape: Shape, dtype: np.dtype[Any], rng: Any) -> Array:
        return np.zeros(shape, dtype)


@frozen
class Ones(Initializer):
    """All ones."""

    random: ClassVar[bool] = False

    def _generate(self, shape: Shape, dtype: np.dtype[Any], rng: Any) -> Array:
        return np.ones(shape, dtype)


@frozen
class Constant(Initializer):
    """Every entry equal to ``value``.

    Args:
        value: The number to fill with.
    """

    random: ClassVar[bool] = False
    value: float = field(default=0.0, converter=to_float, validator=check_real)

    def _generate(self, shape: Shape, dtype: np.dtype[Any], rng: Any) -> Array:
        return np.full(shape, self.value, dtype)
