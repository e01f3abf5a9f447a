"""Lookup by name or config: Keras's ``get``/``serialize`` for one kind of object."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar, cast

import attrs
from attrs import field, frozen

from loopkit.errors import ConfigError
from loopkit.validators import check_config_keys, suggest

__all__ = ["Registry", "from_class_config", "to_config"]

T = TypeVar("T")


def to_config(obj: Any) -> dict[str, Any]:
    """Return ``{"class_name": ..., "config": obj.get_config()}``, as Keras writes it."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def _by_class_name(classes: Iterable[type[T]]) -> dict[str, type[T]]:
    return {cls.__name__: cls for cls in classes}


@frozen
class Registry(Generic[T]):
    """The objects of one kind by name, and Keras's ``get``/``serialize`` for them.

    ``get`` takes None, a name (``"relu"``), an instance of ``base`` or a config dict
    ``{"class_name": ..., "config": {...}}``; ``serialize`` writes the bare name when
    the object is what its name gives, else the config dict. A class that defines
    ``from_config`` is built with it, any other with ``cls(**config)``.

    Args:
        kind: What the objects are, for messages: ``"activation"``.
        module: The module whose ``get`` the user called: ``"activations"``.
        base: The class every object is an instance of.
        names: The names ``get`` takes and ``serialize`` writes, each with a
            function that makes the default object (a class, or ``l1_l2``).
        classes: The classes a config's ``class_name`` may name.
        instead: What else to pass, closing the unknown-name message:
            ``"an ActivationFunction"``.
        accepts: The kinds ``get`` takes, for its TypeError: ``"None, a name ..."``.
        aliases: More names ``get`` takes but ``serialize`` never writes
            (``"silu"`` for ``"swish"``).
        config_names: Whether a config's ``class_name`` may be a name as well as a
            class name; False where a name gives no class (``"l1_l2"``).
    """

    kind: str
    module: str
    base: type[T]
    names: Mapping[str, Callable[[], T]]
    classes: Mapping[str, type[T]] = field(converter=_by_class_name)
    instead: str
    accepts: str
    aliases: Mapping[str, Callable[[], T]] = field(factory=dict)
    config_names: bool = True

    def lookup(self, name: str, call: str) -> Callable[[], T]:
        """Return what makes the object ``name`` names (a name, alias or class name).

        Args:
            name: The name to look up.
            call: The user's call, to start the message: ``"activations.get('rleu')"``.

        Raises:
            ConfigError: ``name`` is unknown; lists the names, suggests the closest.
        """
        found = self.names.get(name) or self.aliases.get(name) or self.classes.get(name)
        if found is None:
            raise ConfigError(
                f"{call}: unknown {self.kind} {name!r}; expected one of "
                f"{sorted(self.names)}. Pass one of those names or {self.instead}."
                f"{suggest(name.lower(), self.names)}"
            )
        return found

    def from_config(self, identifier: Mapping[str, Any]) -> T:
        """Build the object of a ``{"class_name": ..., "config": {...}}`` dict.

        Raises:
            ConfigError: The class name is unknown, or the config has a key its
                constructor does not take.
        """
        call = f"{self.module}.get({dict(identifier)!r})"
        name = identifier["class_name"]
        cls: Any = self.lookup(name, call) if self.config_names else self.classes.get(name)
        if cls is None:
            raise ConfigError(
                f"{call}: unknown class_name {name!r}; expected one of "
                f"{sorted(self.classes)}. Fix the config.{suggest(name, self.classes)}"
            )
        config = identifier.get("config") or {}
        check_config_keys(call, cls, config)
        build = getattr(cls, "from_config", None)
        return cast(T, build(config) if build is not None else cls(**config))

    def get(self, identifier: Any) -> T | None:
        """Return the object an identifier names; see the class docstring.

        Raises:
            ConfigError: The name is unknown, or the config has an unknown key.
            TypeError: The identifier is of another kind.
        """
        if identifier is None or isinstance(identifier, self.base):
            return identifier
        if isinstance(identifier, str):
            return self.lookup(identifier, f"{self.module}.get({identifier!r})")()
        if (
            isinstance(identifier, Mapping)
            and isinstance(identifier.get("class_name"), str)
            and isinstance(identifier.get("config") or {}, Mapping)
        ):
            return self.from_config(identifier)
        raise TypeError(
            f"{self.module}.get() got {identifier!r} of type "
            f"{type(identifier).__name__}; expected {self.accepts}."
        )

    def serialize(self, obj: T | None) -> str | dict[str, Any] | None:
        """Return a JSON-ready identifier that ``get`` turns back into ``obj``.

        That is the bare name when ``obj`` is what the name gives, else
        ``{"class_name": ..., "config": {...}}``; None stays None.

        Raises:
            TypeError: ``obj`` is not an instance of ``base``.
        """
        if obj is None:
            return None
        if not isinstance(obj, self.base):
            raise TypeError(
                f"{self.module}.serialize() got {obj!r} of type {type(obj).__name__}; "
                f"expected {self.instead}. To save a custom {self.kind}, subclass "
                f"{self.base.__name__} and give it a get_config()."
            )
        for name, make in self.names.items():
            default = make()
            if type(default) is type(obj) and default == obj:
                return name
        return to_config(obj)


def from_class_config(
    call: str, identifier: Mapping[str, Any], classes: Mapping[str, type[T]]
) -> T:
    """Build the object of a ``{"class_name": ..., "config": {...}}`` dict.

    For losses and metrics, whose messages list the constructor's arguments by their
    attrs alias and every unknown key at once.

    Args:
        call: The user's call, to start the messages: ``"metrics.deserialize()"``.
        identifier: The dict.
        classes: The classes by the names ``class_name`` may take.

    Raises:
        ConfigError: The class name is unknown, or the config has keys its
            constructor does not take.
    """
    class_name = identifier.get("class_name")
    cls = classes.get(class_name) if isinstance(class_name, str) else None
    if cls is None:
        listed = sorted({c.__name__ for c in classes.values()})
        raise ConfigError(
            f"{call} got class_name={class_name!r}; expected one of {listed}."
            f"{suggest(class_name, classes)} Pass a dict made by serialize()."
        )
    config = dict(identifier.get("config") or {})
    accepted = sorted(a.alias for a in attrs.fields(cast(Any, cls)) if a.init)
    unknown = sorted(set(config) - set(accepted))
    if unknown:
        raise ConfigError(
            f"{call} got config keys {unknown} for {cls.__name__}, which takes "
            f"{accepted}. Remove or rename them."
        )
    return cls(**config)
