"""The Initializer base: argument checks, seeding, configs, and the draws it shares."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import numpy as np
from attrs import frozen

from loopkit.errors import ConfigError, ShapeError
from loopkit.random import new_generator
from loopkit.typing import Array, FloatArray, Shape

__all__ = [
    "Initializer",
    "check_real",
    "check_seed",
    "compute_fans",
    "draw_normal",
    "draw_uniform",
    "to_float",
]


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


def to_float(value: Any) -> Any:
    """Turn real numbers (NumPy scalars too) into float, so configs stay JSON-ready."""
    is_real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return float(value) if is_real else value


def check_real(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept a float, as ``to_float`` leaves a real number (attrs validator)."""
    if not isinstance(value, float):
        raise TypeError(
            f"{type(instance).__name__} got {attribute.name}={value!r} of type "
            f"{type(value).__name__}; expected a number."
        )


def check_seed(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept None or an int >= 0 (attrs validator for ``seed``)."""
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


def draw_normal(
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


def draw_uniform(
    rng: np.random.Generator, shape: Shape, dtype: Any, low: float, high: float
) -> FloatArray:
    """Draw from U(low, high)."""
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
