"""Lookup by name or config: Keras's get, serialize and deserialize for every kind."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar, cast

import attrs
from attrs import field, frozen

from loopkit.errors import ConfigError
from loopkit.validators import check_config_keys, suggest

__all__ = ["GLOBAL_CUSTOM_OBJECTS", "Registry", "to_config", "with_global_custom_objects"]

T = TypeVar("T")

GLOBAL_CUSTOM_OBJECTS: dict[str, Any] = {}
"""Keras's global custom objects: classes registered by ``register_keras_serializable``
or a ``custom_object_scope``, found by every lookup after the ``custom_objects=`` given
to the call."""


def with_global_custom_objects(
    custom_objects: Mapping[str, Any] | None,
) -> Mapping[str, Any] | None:
    """The global custom objects overlaid by a call's ``custom_objects``."""
    if not GLOBAL_CUSTOM_OBJECTS:
        return custom_objects
    return {**GLOBAL_CUSTOM_OBJECTS, **(custom_objects or {})}


def to_config(obj: Any) -> dict[str, Any]:
    """Return ``{"class_name": ..., "config": obj.get_config()}``, as Keras writes it."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def _by_class_name(
    classes: Iterable[type[T]] | Mapping[str, type[T]],
) -> dict[str, type[T]]:
    if isinstance(classes, Mapping):
        return dict(classes)
    return {cls.__name__: cls for cls in classes}


def _closest(name: Any, choices: Iterable[str]) -> str | None:
    """Return the choice closest to ``name`` ignoring case (``"Relu"`` -> ``"relu"``)."""
    lowered = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(str(name).lower(), list(lowered), n=1)
    return lowered[close[0]] if close else None


@frozen
class Registry(Generic[T]):
    """The objects of one kind by name, and Keras's ``get``/``serialize`` for them.

    Activations, initializers, regularizers, losses, metrics, optimizers and layers
    each have one, so an unknown name gets one message shape everywhere: the call,
    the name received, the valid names, how to fix it and the closest name.

    ``get`` takes None, a name (``"relu"``), an instance of ``base``, a subclass of
    ``base`` (instantiated with its defaults) or a config dict ``{"class_name": ...,
    "config": {...}}``; ``serialize`` writes the bare name when ``write_names`` is set
    and the object is what its name gives, else the config dict. A class that defines
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
        ignore_case: Look names up in lower case (``"Adam"`` is ``"adam"``), as
            Keras's optimizers do.
        write_names: Whether ``serialize`` writes a bare name for a default object;
            False where Keras always writes the config (losses, optimizers, layers).
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
    ignore_case: bool = False
    write_names: bool = True

    # --- lookup -----------------------------------------------------------------------

    def valid_names(self) -> list[str]:
        """Return the names listed in messages: the names, or the class names if none."""
        return sorted(self.names) if self.names else sorted(self.classes)

    def unknown(
        self, name: Any, call: str, valid: Iterable[str] | None = None
    ) -> ConfigError:
        """Return the error for an unknown name: the one message shape of every kind.

        Args:
            name: The name received.
            call: The user's call, to start the message: ``"activations.get('rleu')"``.
            valid: The names to list and suggest from; ``valid_names()`` by default.
        """
        listed = sorted(valid) if valid is not None else self.valid_names()
        close = _closest(name, listed) or _closest(name, self.classes)
        hint = f" Did you mean {close!r}?" if close else ""
        return ConfigError(
            f"{call}: unknown {self.kind} {name!r}; expected one of {listed}. "
            f"Pass one of those names or {self.instead}.{hint}"
        )

    def find(
        self, name: str, custom_objects: Mapping[str, Any] | None = None
    ) -> Callable[[], T] | None:
        """Return what makes the object ``name`` names, or None: custom objects first."""
        custom_objects = with_global_custom_objects(custom_objects)
        if custom_objects and name in custom_objects:
            return cast(Callable[[], T], custom_objects[name])
        key = name.lower() if self.ignore_case else name
        return self.names.get(key) or self.aliases.get(key) or self.classes.get(name)

    def lookup(self, name: str, call: str) -> Callable[[], T]:
        """Return what makes the object ``name`` names (a name, alias or class name).

        Args:
            name: The name to look up.
            call: The user's call, to start the message: ``"activations.get('rleu')"``.

        Raises:
            ConfigError: ``name`` is unknown; lists the names, suggests the closest.
        """
        found = self.find(name)
        if found is None:
            raise self.unknown(name, call)
        return found

    # --- building -----------------------------------------------------------------------

    def from_config(
        self,
        identifier: Mapping[str, Any],
        custom_objects: Mapping[str, Any] | None = None,
        call: str | None = None,
    ) -> T:
        """Build the object of a ``{"class_name": ..., "config": {...}}`` dict.

        Args:
            identifier: The dict.
            custom_objects: Classes by class name, tried before the built-in ones.
            call: The user's call; ``"<module>.get({...})"`` by default.

        Raises:
            ConfigError: The class name is unknown, or the config has a key its
                constructor does not take.
        """
        call = call or f"{self.module}.get({dict(identifier)!r})"
        name = identifier["class_name"]
        custom_objects = with_global_custom_objects(custom_objects)
        if self.config_names:
            cls: Any = self.find(name, custom_objects)
            if cls is None:
                raise self.unknown(name, call)
        else:
            cls = (custom_objects or {}).get(name) or self.classes.get(name)
        if cls is None:
            raise ConfigError(
                f"{call}: unknown class_name {name!r}; expected one of "
                f"{sorted(self.classes)}. Fix the config.{suggest(name, self.classes)}"
            )
        config = identifier.get("config") or {}
        keras_style = "__init__" in vars(cls) and callable(getattr(cls, "call", None))
        if attrs.has(cls) and not keras_style:  # Keras-style: from_config checks
            check_config_keys(call, cls, config)
        build = getattr(cls, "from_config", None)
        return build(config) if build is not None else cls(**config)  # type: ignore[no-any-return]

    @staticmethod
    def is_config(identifier: Any) -> bool:
        """Whether ``identifier`` is a ``{"class_name": str, "config": dict}`` dict."""
        return (
            isinstance(identifier, Mapping)
            and isinstance(identifier.get("class_name"), str)
            and isinstance(identifier.get("config") or {}, Mapping)
        )

    def get(self, identifier: Any) -> T | None:
        """Return the object an identifier names; see the class docstring.

        Raises:
            ConfigError: The name is unknown, or the config has an unknown key.
            TypeError: The identifier is of another kind.
        """
        if identifier is None or isinstance(identifier, self.base):
            return identifier
        if isinstance(identifier, type) and issubclass(identifier, self.base):
            return identifier()
        if isinstance(identifier, str):
            return self.lookup(identifier, f"{self.module}.get({identifier!r})")()
        if self.is_config(identifier):
            return self.from_config(identifier)
        raise self.wrong_kind("get", identifier)

    def wrong_kind(self, function: str, identifier: Any) -> TypeError:
        """Return the TypeError for an identifier of a kind ``function`` cannot take."""
        return TypeError(
            f"{self.module}.{function}() got {identifier!r} of type "
            f"{type(identifier).__name__}; expected {self.accepts}."
        )

    def deserialize(
        self, config: Any, custom_objects: Mapping[str, Any] | None = None
    ) -> T:
        """Return the object a ``serialize`` result (a name or a config dict) describes.

        Raises:
            ConfigError: The name or class name is unknown, or a config key is.
            TypeError: ``config`` is neither a name nor a config dict.
        """
        if isinstance(config, str):
            call = f"{self.module}.deserialize({config!r})"
            found = self.find(config, custom_objects)
            if found is None:
                raise self.unknown(config, call)
            return found()
        if self.is_config(config):
            call = f"{self.module}.deserialize({dict(config)!r})"
            return self.from_config(config, custom_objects, call)
        raise self.wrong_kind("deserialize", config)

    def config_of(self, obj: T) -> dict[str, Any]:
        """Return ``{"class_name": ..., "config": {...}}`` for ``obj``, never a name.

        Raises:
            TypeError: ``obj`` is not an instance of ``base`` (None included).
        """
        if not isinstance(obj, self.base):
            raise TypeError(
                f"{self.module}.serialize() got {obj!r} of type {type(obj).__name__}; "
                f"expected {self.instead}. To save a custom {self.kind}, subclass "
                f"{self.base.__name__} and give it a get_config()."
            )
        return to_config(obj)

    def serialize(self, obj: T | None) -> str | dict[str, Any] | None:
        """Return a JSON-ready identifier that ``get`` turns back into ``obj``.

        That is the bare name when ``write_names`` is set and ``obj`` is what the
        name gives, else ``{"class_name": ..., "config": {...}}``; None stays None.

        Raises:
            TypeError: ``obj`` is not an instance of ``base``.
        """
        if obj is None:
            return None
        if self.write_names and isinstance(obj, self.base):
            for name, make in self.names.items():
                default = make()
                if type(default) is type(obj) and default == obj:
                    return name
        return self.config_of(obj)
