"""Weight constraints (MaxNorm, NonNeg, UnitNorm, MinMaxNorm), applied after each step."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias, cast

import attrs
import numpy as np
from attrs import field, frozen

from loopkit._registry import Registry
from loopkit.errors import ConfigError
from loopkit.typing import FloatArray
from loopkit.validators import in_closed_range, non_negative

__all__ = [
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "deserialize",
    "get",
    "max_norm",
    "min_max_norm",
    "non_neg",
    "serialize",
    "unit_norm",
]

_EPSILON = 1e-7  # Keras's backend.epsilon() in the norm divisions


def _axis(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    items = value if isinstance(value, (list, tuple)) else (value,)
    if not items or any(isinstance(a, bool) or not isinstance(a, int) for a in items):
        raise TypeError(
            f"{type(instance).__name__} got axis={value!r}; expected an int or a list of "
            "ints: 0 for Dense kernels (rows), [0, 1, 2] for Conv2D kernels."
        )


def _axes(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@frozen
class Constraint:
    """Base of every constraint: ``constraint(w)`` returns the projected weight.

    The model applies each parameter's constraint after every optimizer step,
    writing the result back in place (``Layer.apply_constraints``).
    """

    def __call__(self, w: FloatArray) -> FloatArray:
        """Return ``w`` projected onto the constraint's set."""
        return w

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as JSON-ready values."""
        return {a.name: getattr(self, a.name) for a in attrs.fields(type(self)) if a.init}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Constraint:
        """Build the constraint ``get_config`` describes."""
        return cls(**config)


def _norms(w: FloatArray, axis: Any) -> FloatArray:
    axes = tuple(axis) if isinstance(axis, list) else axis
    out: FloatArray = np.sqrt(np.sum(np.square(w), axis=axes, keepdims=True))
    return out


def _rescaled(w: FloatArray, norms: FloatArray, desired: FloatArray) -> FloatArray:
    out: FloatArray = (w * (desired / (_EPSILON + norms))).astype(w.dtype, copy=False)
    return out


@frozen
class MaxNorm(Constraint):
    """Rescale each slice along ``axis`` whose L2 norm exceeds ``max_value`` to it.

    Args:
        max_value: The largest norm allowed, >= 0.
        axis: Axis or axes the norm is taken over (0: each output unit of a Dense
            kernel ``(in, out)``; ``[0, 1, 2]``: each filter of a Conv2D kernel).
    """

    max_value: float = field(default=2.0, validator=non_negative)
    axis: int | list[int] = field(default=0, converter=_axes, validator=_axis)

    def __call__(self, w: FloatArray) -> FloatArray:
        norms = _norms(w, self.axis)
        return _rescaled(w, norms, np.clip(norms, 0, self.max_value))


@frozen
class NonNeg(Constraint):
    """Set negative weights to zero."""

    def __call__(self, w: FloatArray) -> FloatArray:
        out: FloatArray = w * (w >= 0)
        return out


@frozen
class UnitNorm(Constraint):
    """Scale each slice along ``axis`` to unit L2 norm.

    Args:
        axis: As for MaxNorm.
    """

    axis: int | list[int] = field(default=0, converter=_axes, validator=_axis)

    def __call__(self, w: FloatArray) -> FloatArray:
        norms = _norms(w, self.axis)
        return _rescaled(w, norms, np.ones_like(norms))


@frozen
class MinMaxNorm(Constraint):
    """Move each slice's norm toward ``[min_value, max_value]`` at ``rate``.

    The new norm is ``rate * clip(norm, min_value, max_value) + (1 - rate) * norm``.

    Args:
        min_value: Smallest norm, >= 0.
        max_value: Largest norm, >= ``min_value``.
        rate: In [0, 1]; 1 enforces the bounds at once.
        axis: As for MaxNorm.
    """

    min_value: float = field(default=0.0, validator=non_negative)
    max_value: float = field(default=1.0, validator=non_negative)
    rate: float = field(default=1.0, validator=in_closed_range(0.0, 1.0))
    axis: int | list[int] = field(default=0, converter=_axes, validator=_axis)

    def __attrs_post_init__(self) -> None:
        if self.max_value < self.min_value:
            raise ConfigError(
                f"MinMaxNorm(min_value={self.min_value!r}, max_value={self.max_value!r}): "
                "max_value must be >= min_value; swap them."
            )

    def __call__(self, w: FloatArray) -> FloatArray:
        norms = _norms(w, self.axis)
        clipped = np.clip(norms, self.min_value, self.max_value)
        return _rescaled(w, norms, self.rate * clipped + (1 - self.rate) * norms)


max_norm = MaxNorm
min_max_norm = MinMaxNorm
non_neg = NonNeg
unit_norm = UnitNorm

_CLASSES: tuple[type[Constraint], ...] = (MaxNorm, MinMaxNorm, NonNeg, UnitNorm)
_REGISTRY = Registry(
    kind="constraint",
    module="constraints",
    base=Constraint,
    names={"max_norm": MaxNorm, "min_max_norm": MinMaxNorm, "non_neg": NonNeg,
           "unit_norm": UnitNorm},
    classes=_CLASSES,
    instead="a Constraint such as MaxNorm(3.0), or a function w -> projected w",
    accepts="None, a constraint name such as 'non_neg', a Constraint, a function "
    "w -> projected w, or a dict {'class_name': 'MaxNorm', 'config': {...}}",
)  # fmt: skip

ConstraintLike: TypeAlias = Constraint | Callable[[FloatArray], FloatArray]


def get(identifier: Any) -> ConstraintLike | None:
    """Return the constraint an identifier names (``keras.constraints.get``).

    Args:
        identifier: None; a name (``"max_norm"``, ``"non_neg"``, ``"unit_norm"``,
            ``"min_max_norm"``) or class name; a Constraint or Constraint class; any
            other callable ``w -> projected w`` (returned as is); or ``{"class_name":
            ..., "config": {...}}`` as ``serialize`` writes.

    Raises:
        ConfigError: The name is unknown, or the config has an unknown key.
        TypeError: The identifier is of another kind.
    """
    if callable(identifier) and not isinstance(identifier, (Constraint, type)):
        return cast(ConstraintLike, identifier)
    return _REGISTRY.get(identifier)


def serialize(constraint: Constraint | None) -> str | dict[str, Any] | None:
    """Return a JSON-ready identifier that ``get`` turns back into ``constraint``."""
    return _REGISTRY.serialize(constraint)


def deserialize(config: Any, custom_objects: Any = None) -> Constraint:
    """Return the constraint a ``serialize`` result describes."""
    return _REGISTRY.deserialize(config, custom_objects)
