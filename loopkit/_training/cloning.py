"""Keras's ``models.clone_model`` and ``models.model_from_json``: architectures copied."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from loopkit._registry import with_global_custom_objects
from loopkit._training.model import Model
from loopkit._training.sequential import Sequential
from loopkit._training.serialization import functional_from_config
from loopkit.errors import ConfigError
from loopkit.validators import suggest

__all__ = ["clone_model", "model_from_json"]


def _clone_layer(layer: Any) -> Any:
    """Keras's default ``clone_function``: the same configuration, new weights."""
    if isinstance(layer, Model):
        return clone_model(layer)
    return type(layer).from_config(layer.get_config())


def clone_model(
    model: Model,
    clone_function: Callable[[Any], Any] | None = None,
    recursive: bool = False,
) -> Model:
    """Return a model of the same architecture with new weights, as Keras's.

    A Sequential model is rebuilt from clones of its layers (with its input shape, so
    it is built if ``model`` was); a functional model replays its calls on clones of
    its layers. Nothing is shared with ``model``: new weights (freshly initialized),
    no compile state.

    Args:
        model: A ``Sequential`` or functional ``Model``.
        clone_function: Makes each new layer from an old one; by default
            ``type(layer).from_config(layer.get_config())``. It may return the layer
            itself to share it.
        recursive: Accepted for Keras compatibility: nested models are always
            cloned through ``clone_function`` (new weights either way).

    Raises:
        TypeError: ``model`` is not a loopkit model, or ``clone_function`` returns
            something other than a layer.
    """
    if not isinstance(model, Model):
        raise TypeError(
            f"clone_model() got {model!r} of type {type(model).__name__}; expected a "
            "loopkit.Sequential or loopkit.Model."
        )
    make = clone_function or _clone_layer

    def clone(layer: Any) -> Any:
        new = make(layer)
        if not hasattr(new, "get_config") or not hasattr(new, "compute_output_shape"):
            raise TypeError(
                f"clone_model(): clone_function returned {new!r} for layer "
                f"{layer.name!r}; it must return a layer (a new one, or the same one "
                "to share it)."
            )
        return new

    if isinstance(model, Sequential):
        config = model.get_config()
        clone_ = type(model)(
            [clone(layer) for layer in model.layers],
            name=model.name,
            dtype=model.dtype,
            trainable=model.trainable,
        )
        if not clone_.built and config["input_shape"] is not None:
            clone_.build((None, *config["input_shape"]))
        return clone_
    assert model.graph is not None
    originals = model.graph.layers
    return functional_from_config(
        type(model),
        model.get_config(),
        None,
        make_layer=lambda i, entry: clone(originals[i]),
    )


def model_from_json(
    json_string: str, custom_objects: Mapping[str, Any] | None = None
) -> Model:
    """Rebuild a model from ``model.to_json()``, with fresh weights, as Keras's.

    Args:
        json_string: ``{"class_name": ..., "config": {...}}`` as ``to_json`` writes.
        custom_objects: Your layer (or model) classes by name.

    Raises:
        ConfigError: the string is not JSON of that form, or names an unknown class.
    """
    try:
        data = json.loads(json_string)
    except (TypeError, json.JSONDecodeError) as err:
        raise ConfigError(
            f"model_from_json() got a string that is not JSON ({err}); pass what "
            "model.to_json() returns."
        ) from err
    if not isinstance(data, Mapping) or "class_name" not in data or "config" not in data:
        raise ConfigError(
            "model_from_json() expects {'class_name': ..., 'config': {...}} as "
            "model.to_json() writes; got JSON without those keys."
        )
    known: dict[str, Any] = {"Sequential": Sequential, "Model": Model, "Functional": Model}
    known.update(with_global_custom_objects(custom_objects) or {})
    name = str(data["class_name"])
    cls = known.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise ConfigError(
            f"model_from_json(): unknown model class {name!r}.{suggest(name, known)} "
            f"Pass your class as custom_objects={{{name!r}: YourModel}}."
        )
    return cls.from_config(data["config"], custom_objects=custom_objects)
