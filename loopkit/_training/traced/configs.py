"""Configs of Keras-style layers: Keras 3's auto-config and ``from_config``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["auto_config", "from_keras_config", "recording_init"]


def recording_init(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a Keras-style ``__init__`` to keep its arguments for ``get_config``.

    Only the outermost ``__init__`` of a call records (a subclass's, not its base's).
    The record is None when an argument is not plain data.
    """
    if getattr(init, "_records_config", False):
        return init

    @functools.wraps(init)
    def record(self: Any, *args: Any, **kwargs: Any) -> None:
        if "_init_config" not in vars(self):
            object.__setattr__(
                self, "_init_config", _bound_arguments(init, self, args, kwargs)
            )
        init(self, *args, **kwargs)

    record._records_config = True  # type: ignore[attr-defined]
    return record


def _bound_arguments(
    init: Callable[..., None], layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any] | None:
    try:
        bound = inspect.signature(init).bind(layer, *args, **kwargs)
    except TypeError:
        return None  # __init__ itself raises the error for these arguments
    config: dict[str, Any] = {}
    for name, value in list(bound.arguments.items())[1:]:
        kind = inspect.signature(init).parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            config.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                return None
        else:
            config[name] = value
    return config if all(_plain(v) for v in config.values()) else None


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def auto_config(layer: Any, base: dict[str, Any]) -> dict[str, Any]:
    """Keras 3's config of a layer without ``get_config``: its ``__init__`` arguments.

    The base layer's keys (``name``, ``trainable``, ...) are kept too, for the
    model's graph to find the layer by name; ``Layer.from_config`` sets those
    ``__init__`` does not take on the new layer.

    Raises:
        NotImplementedError: an argument was not plain data.
    """
    recorded = vars(layer).get("_init_config")
    kind = type(layer).__name__
    params = inspect.signature(type(layer).__init__).parameters
    if recorded is None:
        taken = [n for n in list(params)[1:] if n not in ("args", "kwargs")]
        raise NotImplementedError(
            f"{kind}.get_config(): layer {layer.name or kind!r} was made with arguments "
            f"{taken} that are not all plain data (numbers, strings, lists, dicts), so "
            f"they cannot be saved as they are. Override get_config() in {kind} to "
            "return the arguments that rebuild it (and from_config() if they need "
            "converting back), as Keras asks."
        )
    return {**base, **recorded, "name": layer.name}


def from_keras_config(cls: type[Any], config: Mapping[str, Any]) -> Any:
    """Make a Keras-style layer from its config; base keys ``__init__`` lacks set after.

    Raises:
        ConfigError: a key is neither an ``__init__`` argument nor a base one.
    """
    import attrs

    from loopkit.layers.base import Layer
    from loopkit.validators import construct_from_config

    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return construct_from_config(cls, config)
    base = {a.alias or a.name for a in attrs.fields(Layer) if a.init}
    later = {k: v for k, v in config.items() if k in base and k not in params}
    layer = construct_from_config(cls, {k: v for k, v in config.items() if k not in later})
    for key, value in later.items():
        if key == "trainable":
            layer.trainable = bool(value)
        elif key == "name" or value is not None:
            setattr(layer, key, value)
    return layer
