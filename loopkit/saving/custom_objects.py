"""Keras's global custom objects: register a class once, load files that use it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from loopkit._registry import GLOBAL_CUSTOM_OBJECTS
from loopkit.errors import ConfigError

__all__ = ["custom_object_scope", "get_custom_objects", "register_keras_serializable"]

T = TypeVar("T")


def register_keras_serializable(
    package: str = "Custom", name: str | None = None
) -> Callable[[T], T]:
    """Register a class (or function) so files naming it load without custom_objects.

    As ``keras.saving.register_keras_serializable``: it is found under its name and
    under Keras's ``"<package>><name>"``.

    Raises:
        ConfigError: ``package`` contains ``">"``.
    """
    if ">" in package:
        raise ConfigError(
            f"register_keras_serializable(package={package!r}): the package may not "
            "contain '>', which separates it from the name. Pick another package."
        )

    def register(obj: T) -> T:
        key = name or getattr(obj, "__name__", None)
        if not key:
            raise ConfigError(
                f"register_keras_serializable() got {obj!r}, which has no __name__; "
                "pass name=."
            )
        GLOBAL_CUSTOM_OBJECTS[key] = obj
        GLOBAL_CUSTOM_OBJECTS[f"{package}>{key}"] = obj
        return obj

    return register


def get_custom_objects() -> dict[str, Any]:
    """Return the global custom objects (the dict itself, to edit, as Keras's)."""
    return GLOBAL_CUSTOM_OBJECTS


@contextlib.contextmanager
def custom_object_scope(*scopes: Mapping[str, Any] | None) -> Iterator[None]:
    """Make the objects of ``scopes`` global inside a ``with`` block, as Keras's."""
    saved = dict(GLOBAL_CUSTOM_OBJECTS)
    try:
        for scope in scopes:
            GLOBAL_CUSTOM_OBJECTS.update(scope or {})
        yield
    finally:
        GLOBAL_CUSTOM_OBJECTS.clear()
        GLOBAL_CUSTOM_OBJECTS.update(saved)
