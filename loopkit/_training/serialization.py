"""A model's architecture as plain data, and back: ``get_config``/``from_config``.

A functional model's config lists its layers (each with its own config; a nested
model recursively) and its calls in order, each naming the layer and the tensors it
was called on as ``[layer, call, output]`` (the output index is 0 unless the call
has several outputs), with the call's ``options`` when it has any; replaying the
calls rebuilds the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from loopkit import layers as _layers
from loopkit._registry import with_global_custom_objects
from loopkit.errors import ConfigError

if TYPE_CHECKING:
    from loopkit._training.model import Model

__all__ = [
    "functional_config",
    "functional_from_config",
    "jsonable",
    "layer_config",
    "layer_from_config",
]


def jsonable(value: Any) -> Any:
    """Return ``value`` as JSON-ready data: lists, numbers, and configs for objects."""
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    if hasattr(value, "get_config"):
        return {"class_name": type(value).__name__, "config": jsonable(value.get_config())}
    return value


def layer_config(layer: Any) -> dict[str, Any]:
    """Return ``{"class_name", "config"}`` for a layer or a nested model."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def layer_from_config(
    entry: Mapping[str, Any], custom_objects: Mapping[str, Any] | None = None
) -> Any:
    """Rebuild a layer (or nested model) from ``layer_config``'s output.

    Raises:
        ConfigError: the class is unknown; pass it in ``custom_objects``.
    """
    from loopkit._training.model import Model
    from loopkit._training.sequential import Sequential

    models: dict[str, Any] = {"Model": Model, "Functional": Model, "Sequential": Sequential}
    cls = (with_global_custom_objects(custom_objects) or {}).get(
        str(entry.get("class_name"))
    ) or models.get(str(entry.get("class_name")))
    if isinstance(cls, type) and _is_model(cls):
        config = dict(entry.get("config") or {})
        return cls.from_config(config, custom_objects=custom_objects)  # type: ignore[attr-defined]
    return _layers.deserialize(dict(entry), custom_objects)


def _is_model(cls: type) -> bool:
    from loopkit._training.model import Model

    return issubclass(cls, Model)


def functional_config(model: Model) -> dict[str, Any]:
    """Return the architecture of a functional ``model`` as plain data."""
    graph = model.graph
    assert graph is not None
    calls: dict[int, int] = {}
    where: dict[int, list[Any]] = {}
    for tensor in graph.inputs:
        where[id(tensor)] = [tensor.name, 0, 0]
    nodes = []
    for node in graph.nodes:
        index = calls.get(id(node.layer), 0)
        calls[id(node.layer)] = index + 1
        entry: dict[str, Any] = {
            "layer": node.layer.name,
            "inbound": [where[id(t)] for t in node.inputs],
        }
        if node.multi_input != _default_list(node.layer, len(node.inputs)):
            entry["multi_input"] = node.multi_input
        if node.options:
            entry["options"] = dict(node.options)
        if node.training is not None:
            entry["training"] = node.training
        nodes.append(entry)
        for k, tensor in enumerate(node.outputs):
            where[id(tensor)] = [node.layer.name, index, k]

    def structure(tensors: list[Any], keys: list[str] | None) -> Any:
        refs = [where[id(t)] for t in tensors]
        return dict(zip(keys, refs, strict=True)) if keys is not None else refs

    return {
        "name": model.name,
        "dtype": str(model.dtype),
        "trainable": model.trainable,
        "input_layers": [
            {"name": t.name, "shape": list(t.sample_shape), "dtype": t.dtype}
            for t in graph.inputs
        ],
        "layers": [layer_config(layer) for layer in graph.layers],
        "nodes": nodes,
        "inputs": structure(graph.inputs, model._input_keys),
        "outputs": structure(graph.outputs, model._output_keys),
    }


def _default_list(layer: Any, n_inputs: int) -> bool:
    """Whether a call on ``n_inputs`` tensors passes a list, unless the config says."""
    return n_inputs > 1 or bool(getattr(layer, "multi_input", False))


def _ref(ref: Any) -> tuple[str, int, int]:
    return (str(ref[0]), int(ref[1]), int(ref[2]) if len(ref) > 2 else 0)


def functional_from_config(
    cls: type[Model],
    config: Mapping[str, Any],
    custom_objects: Mapping[str, Any] | None,
    make_layer: Callable[[int, Mapping[str, Any]], Any] | None = None,
) -> Model:
    """Rebuild a functional model from ``functional_config``'s output (fresh weights).

    ``make_layer(i, entry)``, if given, makes the ``i``-th layer of ``config["layers"]``
    instead of ``layer_from_config`` (``clone_model(clone_function=...)``); calls
    still find it under the name in its entry.

    Raises:
        ConfigError: an unknown layer class, or a call naming a missing layer.
    """
    from loopkit._training.symbolic import Input, add_node

    layers = {}
    for i, entry in enumerate(config["layers"]):
        if make_layer is None:
            layer = layer_from_config(entry, custom_objects)
            layers[layer.name] = layer
        else:
            layers[str(entry["config"]["name"])] = make_layer(i, entry)
    produced: dict[tuple[str, int, int], Any] = {}
    for spec in config["input_layers"]:
        tensor = Input(
            shape=tuple(spec["shape"]), name=spec["name"], dtype=spec.get("dtype")
        )
        produced[(spec["name"], 0, 0)] = tensor
    calls: dict[str, int] = {}
    for node in config["nodes"]:
        name = node["layer"]
        if name not in layers:
            raise ConfigError(
                f"from_config(): a call names layer {name!r}, which the config's layers "
                f"do not define (it defines {sorted(layers)})."
            )
        inbound = [produced[_ref(ref)] for ref in node["inbound"]]
        layer = layers[name]
        several = bool(node.get("multi_input", _default_list(layer, len(inbound))))
        out = add_node(
            layer,
            inbound if several else inbound[0],
            node.get("options"),
            training=node.get("training"),
        )
        index = calls.get(name, 0)
        for k, tensor in enumerate(out if isinstance(out, list) else [out]):
            produced[(name, index, k)] = tensor
        calls[name] = index + 1

    def rebuild(spec: Any) -> Any:
        if isinstance(spec, Mapping):
            return {key: produced[_ref(ref)] for key, ref in spec.items()}
        refs = [produced[_ref(ref)] for ref in spec]
        return refs[0] if len(refs) == 1 else refs

    return cls(
        rebuild(config["inputs"]),
        rebuild(config["outputs"]),
        name=config.get("name"),
        dtype=config.get("dtype", "float32"),
        trainable=bool(config.get("trainable", True)),
    )
