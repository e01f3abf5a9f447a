"""Variance scaling and its fixed cases: Glorot, He and LeCun, uniform and normal."""

from __future__ import annotations

import math
from typing import Any, Literal, TypeAlias

import numpy as np
from attrs import field, frozen

from loopkit.initializers.base import (
    Initializer,
    check_real,
    check_seed,
    compute_fans,
    draw_normal,
    draw_uniform,
    to_float,
)
from loopkit.typing import Array, Shape
from loopkit.validators import one_of, positive

__all__ = [
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "LecunNormal",
    "LecunUniform",
    "VarianceScaling",
]

_Mode: TypeAlias = Literal["fan_in", "fan_out", "fan_avg"]
_Distribution: TypeAlias = Literal["truncated_normal", "untruncated_normal", "uniform"]
_TRUNCATED_STDDEV = 0.87962566103423978
"""Standard deviation of a unit normal truncated to [-2, 2]; Keras divides by it."""


@frozen
class VarianceScaling(Initializer):
    """Draws with variance ``scale / n``, ``n`` being the fan that ``mode`` picks.

    ``n`` is fan_in, fan_out or their mean (see ``compute_fans``), at least 1.
    ``"truncated_normal"`` draws from a normal truncated at two standard deviations whose
    stddev is ``sqrt(scale / n) / 0.8796``, so the draws keep variance ``scale / n``;
    ``"untruncated_normal"`` draws from N(0, scale / n); ``"uniform"`` from
    U(-limit, limit) with ``limit = sqrt(3 scale / n)``.

    Args:
        scale: Positive scaling factor.
        mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
        distribution: ``"truncated_normal"``, ``"untruncated_normal"`` or ``"uniform"``.
        seed: As for RandomNormal.
    """

    scale: float = field(default=1.0, converter=to_float, validator=[check_real, positive])
    mode: _Mode = field(default="fan_in", validator=one_of("fan_in", "fan_out", "fan_avg"))
    distribution: _Distribution = field(
        default="truncated_normal",
        validator=one_of("truncated_normal", "untruncated_normal", "uniform"),
    )
    seed: int | None = field(default=None, validator=check_seed)

    def _generate(self, shape: Shape, dtype: np.dtype[Any], rng: Any) -> Array:
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
        variance = self.scale / max(1.0, fan[self.mode])
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return draw_uniform(rng, shape, dtype, -limit, limit)
        truncated = self.distribution == "truncated_normal"
        stddev = math.sqrt(variance) / (_TRUNCATED_STDDEV if truncated else 1.0)
        return draw_normal(rng, shape, dtype, 0.0, stddev, truncated)


# Keras's fixed-argument VarianceScaling cases: only ``seed`` is a constructor argument.


@frozen
class GlorotUniform(VarianceScaling):
    """Glorot (Xavier) uniform: U(-l, l) with ``l = sqrt(6 / (fan_in + fan_out))``.

    Args:
        seed: As for RandomNormal.
    """

    scale: float = field(default=1.0, init=False)
    mode: _Mode = field(default="fan_avg", init=False)
    distribution: _Distribution = field(default="uniform", init=False)
    seed: int | None = field(default=None, validator=check_seed)


@frozen
class GlorotNormal(VarianceScaling):
    """Glorot normal: truncated normal of variance ``2 / (fan_in + fan_out)``.

    Args:
        seed: As for RandomNormal.
    """

    scale: float = field(default=1.0, init=False)
    mode: _Mode = field(default="fan_avg", init=False)
    distribution: _Distribution = field(default="truncated_normal", init=False)
    seed: int | None = field(default=None, validator=check_seed)


@frozen
class HeUniform(VarianceScaling):
    """He uniform (He et al., 2015): U(-l, l) with ``l = sqrt(6 / fan_in)``.

    Args:
        seed: As for RandomNormal.
    """

    scale: float = field(default=2.0, init=False)
    mode: _Mode = field(default="fan_in", init=False)
    distribution: _Distribution = field(default="uniform", init=False)
    seed: int | None = field(default=None, validator=check_seed)


@frozen
class HeNormal(VarianceScaling):
    """He normal (He et al., 2015): truncated normal of variance ``2 / fan_in``.

    Args:
        seed: As for RandomNormal.
    """

    scale: float = field(default=2.0, init=False)
    mode: _Mode = field(default="fan_in", init=False)
    distribution: _Distribution = field(default="truncated_normal", init=False)
    seed: int | None = field(default=None, validator=check_seed)


@frozen
class LecunUniform(VarianceScaling):
    """LeCun uniform: U(-l, l) with ``l = sqrt(3 / fan_in)``.

    Args:
        seed: As for RandomNormal.
    """

    scale: float = field(default=1.0, init=False)
    mode: _Mode = field(default="fan_in", init=False)
    distribution: _Distribution = field(default="uniform", init=False)
    seed: int | None = field(default=None, validator=check_seed)


@frozen
class LecunNormal(VarianceScaling):
    """LeCun normal: truncated normal of variance ``1 / fan_in``.

    Args:
        seed: As for RandomNormal.
    """

    scale: float = field(default=1.0, init=False)
    mode: _Mode = field(default="fan_in", init=False)
    distribution: _Distribution = field(default="truncated_normal", init=False)
    seed: int | None = field(default=None, validator=check_seed)
