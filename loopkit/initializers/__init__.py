"""Weight initializers by Keras's names: constants, random draws, orthogonal; lookup."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, TypeAlias, cast, overload

import numpy as np
from attrs import field, frozen

from loopkit._registry import Registry
from loopkit.errors import ConfigError, ShapeError
from loopkit.initializers.base import (
    Initializer,
    check_real,
    check_seed,
    compute_fans,
    draw_normal,
    draw_uniform,
    to_float,
)
from loopkit.initializers.variance_scaling import (
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    LecunNormal,
    LecunUniform,
    VarianceScaling,
)
from loopkit.typing import Array, Shape
from loopkit.validators import non_negative

__all__ = [
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Initializer",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "Zeros",
    "compute_fans",
    "get",
    "serialize",
]


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
        return (self.gain * q).reshape(shape).astype(dtype)


_NAMES: dict[str, type[Initializer]] = {
    "constant": Constant,
    "glorot_normal": GlorotNormal,
    "glorot_uniform": GlorotUniform,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "lecun_normal": LecunNormal,
    "lecun_uniform": LecunUniform,
    "ones": Ones,
    "orthogonal": Orthogonal,
    "random_normal": RandomNormal,
    "random_uniform": RandomUniform,
    "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling,
    "zeros": Zeros,
}
_REGISTRY = Registry(
    kind="initializer",
    module="initializers",
    base=Initializer,
    names=_NAMES,
    classes=_NAMES.values(),
    instead="an Initializer",
    accepts="None, a name such as 'glorot_uniform', an Initializer, a callable "
    "f(shape, dtype, rng), or a dict {'class_name': ..., 'config': {...}}",
    aliases={"normal": RandomNormal, "one": Ones, "uniform": RandomUniform, "zero": Zeros},
)

_InitializerLike: TypeAlias = Initializer | Callable[..., Array]


@overload
def get(identifier: None) -> None: ...
@overload
def get(identifier: object) -> _InitializerLike: ...
def get(identifier: Any) -> _InitializerLike | None:
    """Return the initializer an identifier names (``keras.initializers.get``).

    Args:
        identifier: None; a name such as ``"glorot_uniform"`` or ``"GlorotUniform"``; an
            Initializer (returned as is) or Initializer class (instantiated); any other
            callable ``f(shape, dtype, rng)`` (returned as is); or ``{"class_name": ...,
            "config": {...}}`` as ``serialize`` (or Keras) writes.

    Raises:
        ConfigError: The name is unknown, or the config has an unknown key.
        TypeError: The identifier is of another kind.
    """
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier) and not isinstance(identifier, Initializer):
        return cast(_InitializerLike, identifier)
    return _REGISTRY.get(identifier)


def serialize(initializer: Initializer | None) -> str | dict[str, Any] | None:
    """Return a JSON-ready identifier that ``get`` turns back into ``initializer``.

    That is the bare name (``"glorot_uniform"``) when ``initializer`` is what the name
    gives, else ``{"class_name": "GlorotUniform", "config": {...}}``; None stays None.

    Raises:
        TypeError: ``initializer`` is not an Initializer (plain functions have no config).
    """
    return _REGISTRY.serialize(initializer)
