"""Layers by class name: Keras's ``layers.serialize``/``deserialize``, and ``get``."""

from __future__ import annotations

import functools
from typing import Any

from loopkit._registry import Registry
from loopkit.layers.base import Layer

__all__ = ["deserialize", "get", "serialize"]


@functools.cache
def _registry() -> Registry[Layer]:
    """The registry of every layer class ``loopkit.layers`` exports, built on first use."""
    from loopkit import layers  # the package imports this module: read it once complete

    exported = (getattr(layers, name) for name in layers.__all__)
    return Registry(
        kind="layer",
        module="layers",
        base=Layer,
        names={},
        classes=[
            cls
            for cls in exported
            if isinstance(cls, type) and issubclass(cls, Layer) and cls is not Layer
        ],
        instead="a Layer instance; for a layer of your own, pass its class as "
        "custom_objects={'MyLayer': MyLayer}",
        accepts="None, a Layer, a layer class name such as 'Flatten', or a dict "
        "{'class_name': 'Dense', 'config': {...}} from layers.serialize()",
        write_names=False,
    )


def get(identifier: Any, custom_objects: Any = None) -> Layer | None:
    """Return the layer an identifier names: None, a Layer, a class name or a config.

    A class name (``"Flatten"``) builds the layer with its defaults; a config dict
    ``{"class_name": "Dense", "config": {...}}`` (as ``serialize`` writes) with its
    arguments. Custom layer classes are passed by class name in ``custom_objects``.

    Raises:
        ConfigError: The class name is unknown, or the config has an unknown key.
        TypeError: The identifier is of another kind.
    """
    if identifier is None or isinstance(identifier, Layer):
        return identifier
    return deserialize(identifier, custom_objects)


def serialize(layer: Layer) -> dict[str, Any]:
    """Return ``{"class_name": ..., "config": layer.get_config()}``.

    The config holds the constructor arguments as given (activation, initializer
    and regularizer objects included); ``model.save`` turns them into JSON, and
    ``deserialize`` takes either form.

    Raises:
        TypeError: ``layer`` is not a Layer.
    """
    return _registry().config_of(layer)


def deserialize(config: Any, custom_objects: Any = None) -> Layer:
    """Build the layer of a ``serialize`` dict, or of a class name with its defaults.

    Args:
        config: ``{"class_name": ..., "config": {...}}`` or a class name.
        custom_objects: Layer classes by class name, tried before loopkit's.

    Raises:
        ConfigError: The class name is unknown, or the config has an unknown key.
        TypeError: ``config`` is neither a dict nor a class name.
    """
    return _registry().deserialize(config, custom_objects)
