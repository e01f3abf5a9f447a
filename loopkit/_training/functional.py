"""Building a model's graph from ``Input`` tensors and layer calls (the functional API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from loopkit._training.graph import Graph, collect_nodes
from loopkit._training.symbolic import flatten_structure
from loopkit.errors import ConfigError

__all__ = ["build_graph", "convert_layer"]


def build_graph(inputs: Any, outputs: Any, call: str) -> Graph:
    """Return the graph from ``inputs`` to ``outputs`` (each a tensor, list or dict).

    Raises:
        ConfigError: an output not computed from the inputs, an input given twice,
            or two different layers (or inputs) sharing a name.
        TypeError: something other than symbolic tensors.
    """
    ins = flatten_structure(inputs)
    outs = flatten_structure(outputs)
    if not ins or not outs:
        raise ConfigError(f"{call} got no inputs or no outputs; pass at least one of each.")
    if len({id(t) for t in ins}) != len(ins):
        raise ConfigError(f"{call} got the same input tensor twice in inputs=.")
    if isinstance(inputs, Mapping):
        for key, tensor in inputs.items():
            if tensor.name is not None and tensor.name != key:
                raise ConfigError(
                    f"{call}: inputs= has the key {key!r} for the Input named "
                    f"{tensor.name!r}; use the Input's name as its key."
                )
            tensor.name = key
    nodes = collect_nodes(ins, outs, call)
    if isinstance(outputs, Mapping) and any(t.name != key for key, t in outputs.items()):
        raise ConfigError(
            f"{call}: outputs= is a dict whose keys {list(outputs)} differ from the names "
            f"of the layers making them {[t.name for t in outs]}; key each output by the "
            "name of its layer (pass name= to that layer)."
        )
    _check_names(ins, nodes, call)
    return Graph(ins, outs, nodes)


def _check_names(inputs: list[Any], nodes: list[Any], call: str) -> None:
    owners: dict[str, Any] = {}
    for tensor in inputs:
        layer = tensor.input_layer
        _claim(owners, layer.name, layer, call)
    for node in nodes:
        _claim(owners, node.layer.name, node.layer, call)


def _claim(owners: dict[str, Any], name: str, layer: Any, call: str) -> None:
    other = owners.setdefault(name, layer)
    if other is not layer:
        raise ConfigError(
            f"{call}: two layers are named {name!r} ({type(other).__name__} and "
            f"{type(layer).__name__}); layer names must be unique in a model. Pass "
            "another name= to one of them."
        )


def convert_layer(layer: Any, dtype: np.dtype[Any]) -> None:
    """Rebuild ``layer`` in ``dtype`` (float64 for gradient checks), keeping its weights."""
    if not hasattr(layer, "setup") or getattr(layer, "graph", None) is not None:
        raise ConfigError(
            f"Model(dtype={str(dtype)!r}) contains the nested model {layer.name!r} of "
            f"dtype {layer.dtype}; build the nested model in {dtype} too."
        )
    values = [p.value.copy() for p in layer.parameters]
    layer.setup(layer.built_input_shape, dtype, layer.rng)
    for param, value in zip(layer.parameters, values, strict=True):
        param.value[...] = value
