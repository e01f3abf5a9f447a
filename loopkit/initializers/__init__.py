"""Weight initializers by Keras's names, and their lookup: get and serialize."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias, cast, overload

from loopkit._registry import Registry
from loopkit.initializers.base import Initializer, compute_fans
from loopkit.initializers.constant_initializers import Constant, Ones, Zeros
from loopkit.initializers.random_initializers import (
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
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
from loopkit.typing import Array

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
    if callable(identifier) and not isinstance(identifier, (Initializer, type)):
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
