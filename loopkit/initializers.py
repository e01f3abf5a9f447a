"""Weight initializers with Keras's names, arguments and fan rules."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, TypeAlias, cast, overload

import attrs
import numpy as np
from attrs import field, frozen

from loopkit.errors import ConfigError, ShapeError
from loopkit.random import new_generator
from loopkit.typing import Array, FloatArray, Shape
from loopkit.validators import non_negative, one_of, positive, suggest

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

_Mode: TypeAlias = Literal["fan_in", "fan_out", "fan_avg"]
_Distribution: TypeAlias = Literal["truncated_normal", "untruncated_normal", "uniform"]
_TRUNCATED_STDDEV = 0.87962566103423978
"""Standard deviation of a unit normal truncated to [-2, 2]; Keras divides by it."""


def compute_fans(shape: Shape) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a weight of ``shape``, as Keras computes them.

    ``()`` gives (1, 1); ``(n,)`` gives (n, n); ``(in, out)`` gives (in, out); a
    convolution kernel ``(*spatial, in, out)`` gives ``(in * r, out * r)`` where
    ``r = prod(spatial)`` is the receptive field size.
    """
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _to_float(value: Any) -> Any:
    """Turn real numbers (NumPy scalars too) into float, so configs stay JSON-ready."""
    is_real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return float(value) if is_real else value


def _real(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, float):
        raise TypeError(
            f"{type(instance).__name__} got {attribute.name}={value!r} of type "
            f"{type(value).__name__}; expected a number."
        )


def _seed(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{type(instance).__name__} got seed={value!r} of type {type(value).__name__}; "
            "expected None or a non-negative int such as 42."
        )
    if value < 0:
        raise ConfigError(
            f"{type(instance).__name__} got seed={value!r}; expected None or a "
            "non-negative int such as 42."
        )


def _prepare(
    init: Initializer, shape: Any, dtype: Any, floating: bool
) -> tuple[Shape, Any]:
    """Return ``shape`` as a tuple of ints and ``dtype`` as a NumPy dtype, or raise."""
    who = f"{type(init).__name__}()(shape={shape!r})"
    if not isinstance(shape, (tuple, list)) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape
    ):
        raise TypeError(f"{who}: expected a tuple of ints such as (784, 128).")
    if any(d < 0 for d in shape):
        raise ShapeError(f"{who}: dimensions must be >= 0, e.g. (784, 128).")
    dt = np.dtype(dtype)
    if floating and not np.issubdtype(dt, np.floating):
        raise TypeError(
            f"{type(init).__name__}() got dtype={dt.name!r}; random initializers need a "
            "float dtype such as 'float32'."
        )
    return tuple(int(d) for d in shape), dt


def _normal(
    rng: np.random.Generator,
    shape: Shape,
    dtype: Any,
    mean: float,
    stddev: float,
    truncated: bool = False,
) -> FloatArray:
    """Draw N(mean, stddev**2), redrawing beyond two stddevs when ``truncated``."""
    native = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)
    x = np.asarray(rng.standard_normal(shape, dtype=native))
    if truncated:
        flat = x.reshape(-1)
        bad = np.flatnonzero(np.abs(flat) > 2.0)
        while bad.size:  # each round redraws the 4.6% that fell outside again
            flat[bad] = rng.standard_normal(bad.size, dtype=native)
            bad = bad[np.abs(flat[bad]) > 2.0]
    x *= stddev
    x += mean
    return x.astype(dtype, copy=False)


def _uniform(
    rng: np.random.Generator, shape: Shape, dtype: Any, low: float, high: float
) -> FloatArray:
    native = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)
    x = np.asarray(rng.random(shape, dtype=native))
    x *= high - low
    x += low
    return x.astype(dtype, copy=False)


@frozen
class Initializer:
    """Base of every initializer: ``init(shape, dtype, rng)`` returns a new array.

    A subclass overrides ``__call__``; ``get_config`` returns its constructor
    arguments. Any callable with that signature also works where an initializer is
    expected, but only ``Initializer`` objects can be serialized.
    """

    random: ClassVar[bool] = True
    """Whether the values are drawn (then ``dtype`` must be a float dtype)."""

    def __call__(
        self,
        shape: Shape,
        dtype: Any = np.float32,
        rng: np.random.Generator | None = None,
    ) -> Array:
        """Return a new array of ``shape`` and ``dtype``.

        Args:
            shape: Shape of the weight, e.g. ``(in_features, units)``.
            dtype: Its dtype; random initializers need a float dtype.
            rng: Source of randomness. An initializer built with ``seed`` ignores it
                and uses ``np.random.default_rng(seed)``, so every call gives the same
                values, as in Keras 3. None: a generator from ``loopkit.random``.

        Raises:
            TypeError: ``shape`` is not a tuple of ints, or ``dtype`` is not a float
                dtype for a random initializer.
            ShapeError: ``shape`` has a negative dimension, or the wrong rank.
        """
        shape, dt = _prepare(self, shape, dtype, floating=self.random)
        seed = getattr(self, "seed", None)
        if seed is not None:
            rng = np.random.default_rng(seed)
        elif rng is None and self.random:
            rng = new_generator()
        return self._generate(shape, dt, rng)

    def _generate(self, shape: Shape, dtype: np.dtype[Any], rng: Any) -> Array:
        raise NotImplementedError(f"{type(self).__name__} must override __call__().")

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as JSON-ready values."""
        return {a.name: getattr(self, a.name) for a in attrs.fields(type(self)) if a.init}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Initializer:
        """Build the initializer ``get_config`` describes."""
        return cls(**config)


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
    value: float = field(default=0.0, converter=_to_float, validator=_real)

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

    mean: float = field(default=0.0, converter=_to_float, validator=_real)
    stddev: float = field(
        default=0.05, converter=_to_float, validator=[_real, non_negative]
    )
    seed: int | None = field(default=None, validator=_seed)

    def _generate(self, shape: Shape, dtype: np.dtype[Any], rng: Any) -> Array:
        return _normal(rng, shape, dtype, self.mean, self.stddev)


@frozen
class TruncatedNormal(Initializer):
    """Draws from N(mean, stddev**2), redrawing values over 2 stddevs from the mean.

    The result's standard deviation is therefore about ``0.88 * stddev``.

    Args:
        mean: Mean of the distribution.
        stddev: Standard deviation before truncation, >= 0.
        seed: As for RandomNormal.
    """

    mean: float = field(default=0.0, converter=_to_float, validator=_real)
    stddev: float = field(
        default=0.05, converter=_to_float, validator=[_real, non_negative]
    )
    seed: int | None = field(default=None, validator=_seed)

    def _generate(self, shape: Shape, dtype: np.dtype[Any], rng: Any) -> Array:
        return _normal(rng, shape, dtype, self.mean, self.stddev, truncated=True)


@frozen
class RandomUniform(Initializer):
    """Draws from the uniform distribution on ``[minval, maxval)``.

    Args:
        minval: Lower bound.
        maxval: Upper bound, >= ``minval`` (Keras does not check; loopkit does).
        seed: As for RandomNormal.
    """

    minval: float = field(default=-0.05, converter=_to_float, validator=_real)
    maxval: float = field(default=0.05, converter=_to_float, validator=_real)
    seed: int | None = field(default=None, validator=_seed)

    def __attrs_post_init__(self) -> None:
        if self.maxval < self.minval:
            raise ConfigError(
                f"RandomUniform(minval={self.minval!r}, maxval={self.maxval!r}): maxval "
                "must be >= minval; swap them."
            )

    def _generate(self, shape: Shape, dtype: np.dtype[Any], rng: Any) -> Array:
        return _uniform(rng, shape, dtype, self.minval, self.maxval)


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

    scale: float = field(default=1.0, converter=_to_float, validator=[_real, positive])
    mode: _Mode = field(default="fan_in", validator=one_of("fan_in", "fan_out", "fan_avg"))
    distribution: _Distribution = field(
        default="truncated_normal",
        validator=one_of("truncated_normal", "untruncated_normal", "uniform"),
    )
    seed: int | None = field(default=None, validator=_seed)

    def _generate(self, shape: Shape, dtype: np.dtype[Any], rng: Any) -> Array:
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
        variance = self.scale / max(1.0, fan[self.mode])
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return _uniform(rng, shape, dtype, -limit, limit)
        truncated = self.distribution == "truncated_normal"
        stddev = math.sqrt(variance) / (_TRUNCATED_STDDEV if truncated else 1.0)
        return _normal(rng, shape, dtype, 0.0, stddev, truncated)


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
    seed: int | None = field(default=None, validator=_seed)


@frozen
class GlorotNormal(VarianceScaling):
    """Glorot normal: truncated normal of variance ``2 / (fan_in + fan_out)``.

    Args:
        seed: As for RandomNormal.
    """

    scale: float = field(default=1.0, init=False)
    mode: _Mode = field(default="fan_avg", init=False)
    distribution: _Distribution = field(default="truncated_normal", init=False)
    seed: int | None = field(default=None, validator=_seed)


@frozen
class HeUniform(VarianceScaling):
    """He uniform (He et al., 2015): U(-l, l) with ``l = sqrt(6 / fan_in)``.

    Args:
        seed: As for RandomNormal.
    """

    scale: float = field(default=2.0, init=False)
    mode: _Mode = field(default="fan_in", init=False)
    distribution: _Distribution = field(default="uniform", init=False)
    seed: int | None = field(default=None, validator=_seed)


@frozen
class HeNormal(VarianceScaling):
    """He normal (He et al., 2015): truncated normal of variance ``2 / fan_in``.

    Args:
        seed: As for RandomNormal.
    """

    scale: float = field(default=2.0, init=False)
    mode: _Mode = field(default="fan_in", init=False)
    distribution: _Distribution = field(default="truncated_normal", init=False)
    seed: int | None = field(default=None, validator=_seed)


@frozen
class LecunUniform(VarianceScaling):
    """LeCun uniform: U(-l, l) with ``l = sqrt(3 / fan_in)``.

    Args:
        seed: As for RandomNormal.
    """

    scale: float = field(default=1.0, init=False)
    mode: _Mode = field(default="fan_in", init=False)
    distribution: _Distribution = field(default="uniform", init=False)
    seed: int | None = field(default=None, validator=_seed)


@frozen
class LecunNormal(VarianceScaling):
    """LeCun normal: truncated normal of variance ``1 / fan_in``.

    Args:
        seed: As for RandomNormal.
    """

    scale: float = field(default=1.0, init=False)
    mode: _Mode = field(default="fan_in", init=False)
    distribution: _Distribution = field(default="truncated_normal", init=False)
    seed: int | None = field(default=None, validator=_seed)


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

    gain: float = field(default=1.0, converter=_to_float, validator=_real)
    seed: int | None = field(default=None, validator=_seed)

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


_BY_NAME: dict[str, type[Initializer]] = {
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
_NAME_OF = {cls: name for name, cls in _BY_NAME.items()}
_ALIASES = {"normal": RandomNormal, "one": Ones, "uniform": RandomUniform, "zero": Zeros}
_KNOWN = {**_BY_NAME, **_ALIASES, **{cls.__name__: cls for cls in _NAME_OF}}

_InitializerLike: TypeAlias = Initializer | Callable[..., Array]


def _lookup(name: str, call: str) -> type[Initializer]:
    cls = _KNOWN.get(name)
    if cls is None:
        raise ConfigError(
            f"{call}: unknown initializer {name!r}; expected one of {sorted(_BY_NAME)}. "
            f"Pass one of those names or an Initializer.{suggest(name.lower(), _BY_NAME)}"
        )
    return cls


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
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier, f"initializers.get({identifier!r})")()
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if (
        isinstance(identifier, Mapping)
        and isinstance(identifier.get("class_name"), str)
        and isinstance(identifier.get("config") or {}, Mapping)
    ):
        call = f"initializers.get({dict(identifier)!r})"
        cls = _lookup(identifier["class_name"], call)
        config = identifier.get("config") or {}
        known = [a.name for a in attrs.fields(cls) if a.init]
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise ConfigError(
                f"{call}: {cls.__name__} takes no argument {unknown[0]!r}; it takes "
                f"{known}. Fix the config.{suggest(unknown[0], known)}"
            )
        return cls.from_config(config)
    if callable(identifier):
        return cast(_InitializerLike, identifier)
    raise TypeError(
        f"initializers.get() got {identifier!r} of type {type(identifier).__name__}; "
        "expected None, a name such as 'glorot_uniform', an Initializer, a callable "
        "f(shape, dtype, rng), or a dict {'class_name': ..., 'config': {...}}."
    )


def serialize(initializer: Initializer | None) -> str | dict[str, Any] | None:
    """Return a JSON-ready identifier that ``get`` turns back into ``initializer``.

    That is the bare name (``"glorot_uniform"``) when ``initializer`` is what the name
    gives, else ``{"class_name": "GlorotUniform", "config": {...}}``; None stays None.

    Raises:
        TypeError: ``initializer`` is not an Initializer (plain functions have no config).
    """
    if initializer is None:
        return None
    if not isinstance(initializer, Initializer):
        raise TypeError(
            f"initializers.serialize() got {initializer!r} of type "
            f"{type(initializer).__name__}; expected an Initializer. To save a custom "
            "initializer, subclass Initializer and give it a get_config()."
        )
    name = _NAME_OF.get(type(initializer))
    if name is not None and initializer == type(initializer)():
        return name
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}
