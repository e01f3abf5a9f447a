"""Initializers that draw a weight: normal, truncated normal, uniform, orthogonal."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from attrs import field, frozen

from loopkit.errors import ConfigError, ShapeError
from loopkit.initializers.base import (
    Initializer,
    check_real,
    check_seed,
    draw_normal,
    draw_uniform,
    to_float,
)
from loopkit.typing import Array, Shape
from loopkit.validators import non_negative

__all__ = ["Orthogonal", "RandomNormal", "RandomUniform", "TruncatedNormal"]


@frozen
class RandomNormal(Initializer):
    """Draws from the normal distribution N(mean, stddev**2).

    Args:
        mean: Mean of the distribution.
        stddev: Its standard deviation, >= 0.
        seed: None draws from the ``rng`` passed to each call; an int makes every call
            return the same values, as in Keras 3.
    """

    mean: float = field(default=0.0, converter=to_float, validator=check_real)
    stddev: float = field(
        default=0.05, converter=to_float, validator=[check_real, non_negative]
    )
    seed: int | None = field(default=None, validator=check_seed)

    def _generate(self, shape: Shape, dtype: np.dtype[Any], rng: Any) -> Array:
        return draw_normal(rng, shape, dtype, self.mean, self.stddev)


@frozen
class TruncatedNormal(Initializer):
    """Draws from N(mean, stddev**2), redrawing values over 2 stddevs from the mean.

    The result's standard deviation is therefore about ``0.88 * stddev``.

    Args:
        mean: Mean of the distribution.
        stddev: Standard deviation before truncation, >= 0.
        seed: As for RandomNormal.
    """

    mean: float = field(default=0.0, converter=to_float, validator=check_real)
    stddev: float = field(
        default=0.05, converter=to_float, validator=[check_real, non_negative]
    )
    seed: int | None = field(default=None, validator=check_seed)

    def _generate(self, shape: Shape, dtype: np.dtype[Any], rng: Any) -> Array:
        return draw_normal(rng, shape, dtype, self.mean, self.stddev, truncated=True)


@frozen
class RandomUniform(Initializer):
    """Draws from the uniform distribution on ``[minval, maxval)``.

    Args:
        minval: Lower bound.
        maxval: Upper bound, >= ``minval`` (Keras does not check; loopkit does).
        seed: As for RandomNormal.
    """

    minval: float = field(default=-0.05, converter=to_float, validator=check_real)
    maxval: float = field(default=0.05, converter=to_float, validator=check_real)
    seed: int | None = field(default=None, validator=check_seed)

    def __attrs_post_init__(self) -> None:
        if self.maxval < self.minval:
            raise ConfigError(
                f"RandomUniform(minval={self.minval!r}, maxval={self.maxval!r}): maxval "
                "must be >= minval; swap them."
            )

    def _generate(self, shape: Shape, dtype: np.dtype[Any], rng: Any) -> Array:
        return draw_uniform(rng, shape, dtype, self.minval, self.maxval)


@frozen
class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times ``gain``, from the QR factors of a normal draw.

    A weight of more than two dimensions is flattened to ``(prod(shape[:-1]),
    shape[-1])``. Signs are fixed by ``diag(R)``, so the result is uniformly (Haar)
    distributed (Mezzadri, 2007).

    Args:
        gain: Multiplicative factor.
        seed: As for RandomNormal.
    """

    gain: float = field(default=1.0, converter=to_float, validator=check_real)
    seed: int | None = field(default=None, validator=check_seed)

    def _generate(self, shape: Shape, dtype: np.dtype[Any], rng: Any) -> Array:
        if len(shape) < 2:
            raise ShapeError(
                f"Orthogonal()(shape={shape}): needs a weight of at least 2 dimensions "
                "such as (in, out); use 'zeros' or another initializer for vectors."
            )
        rows, cols = math.prod(shape[:-1]), shape[-1]
        q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return np.ascontiguousarray(self.gain * q, dtype).reshape(shape)  # C order
