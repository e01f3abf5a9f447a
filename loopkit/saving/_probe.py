"""The weight shapes an architecture would create, found without allocating a weight.

A file's architecture is data: ``Dense(16000)`` on 16000 inputs declares a gigabyte.
Building it to find out would allocate that gigabyte (twice, with gradients). Each
layer is instead set up on a copy whose ``add_weight`` records the shape and hands
back a zero-stride view, so loaders compare the shapes with the stored arrays'
headers, and refuse a mismatch, before anything is built.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from loopkit.errors import CheckpointError
from loopkit.layers.base import Layer, Parameter, as_sample_shape

__all__ = ["MAX_SAMPLE_ELEMENTS", "planned_graph_weight_shapes", "planned_weight_shapes"]

MAX_SAMPLE_ELEMENTS = 1 << 26
"""Largest sample (input or any layer's output) a file may declare: 64 Mi values."""


def _sample_shape(value: Any, what: str, where: str) -> tuple[int, ...]:
    if (
        not isinstance(value, (list, tuple))
        or not 0 < len(value) <= 8
        or any(
            d is not None and (isinstance(d, bool) or not isinstance(d, int) or d <= 0)
            for d in value
        )
    ):
        raise CheckpointError(
            f"{what}: the file declares {where} {value!r}; expected a list of 1 to 8 "
            "positive ints or nulls (any length). The file is damaged or crafted."
        )
    shape = as_sample_shape(value)
    size = math.prod(d for d in shape if d is not None)  # per step for any length
    if size > MAX_SAMPLE_ELEMENTS:
        raise CheckpointError(
            f"{what}: the file declares {where} {shape}, {size} values per "
            f"sample; loopkit refuses more than {MAX_SAMPLE_ELEMENTS} before allocating."
        )
    return shape


def _plan_layer(
    layer: Layer, shape: Any, dtype: Any, what: str, options: Any = None
) -> tuple[list[tuple[str, tuple[int, ...]]], Any]:
    """Set up a copy of ``layer`` for ``shape``; return its weights' shapes and output.

    The output is a shape, or a list of shapes for a call with several outputs.
    """
    from loopkit._training.traced import is_traced_layer, traced_weight_paths

    if is_traced_layer(layer):  # its weights are its layers': build a fresh copy
        try:
            fresh = type(layer).from_config(layer.get_config())
            out = fresh.setup(shape, dtype, np.random.default_rng(0))
        except (ValueError, TypeError, KeyError, IndexError) as err:
            raise CheckpointError(
                f"{what}: layer {layer.name!r} cannot be built for samples of shape "
                f"{shape} ({type(err).__name__}: {err}). The file is damaged."
            ) from err
        keys = traced_weight_paths(fresh)
        planned = [
            (f"{fresh.name}/{k}", p.shape)
            for k, p in zip(keys, fresh.parameters, strict=True)
        ]
        return planned, out
    probe = copy.copy(layer)
    zero = np.zeros((), dtype)

    def add_weight(
        name: Any = None,
        shape: Any = None,
        initializer: Any = None,
        *,
        dtype: Any = None,
        trainable: bool = True,
        regularizer: Any = None,
        constraint: Any = None,
    ) -> Parameter:
        name, dims, _ = probe.weight_arguments(name, shape, initializer, dtype)
        # Writable (build may set values, as LSTM's forget bias), yet one scalar.
        view = np.lib.stride_tricks.as_strided(zero, dims, (0,) * len(dims))
        param = Parameter(name=name, value=view, grad=view, trainable=trainable)
        probe._parameters.append(param)
        return param

    setattr(probe, "add_weight", add_weight)  # noqa: B010 - on this copy only
    try:
        out = probe.setup(shape, dtype, np.random.default_rng(0))
        if options:
            out = probe.compute_output_shape(shape, **options)
    except (ValueError, TypeError, KeyError, IndexError) as err:
        raise CheckpointError(
            f"{what}: layer {layer.name!r} cannot be built for samples of shape "
            f"{shape} ({type(err).__name__}: {err}). The file is damaged."
        ) from err
    planned = [(f"{probe.name}/{p.name}", p.shape) for p in probe.parameters]
    where = f"layer {layer.name!r} an output shape"
    if isinstance(out, list) and out and isinstance(out[0], (list, tuple)):
        return planned, [_sample_shape(list(o), what, where) for o in out]
    return planned, _sample_shape(list(out), what, where)


def planned_weight_shapes(
    layers: Sequence[Layer], input_shape: Any, dtype: Any, what: str
) -> list[tuple[str, tuple[int, ...]]]:
    """Return ``("layer/param", shape)`` for each weight ``layers`` would create.

    The layers themselves are left as they were (each is set up as a copy).

    Raises:
        CheckpointError: the input shape or a layer's output is not a sane sample
            shape, or a layer refuses the shape it would get.
    """
    shape = _sample_shape(input_shape, what, "the input shape")
    planned: list[tuple[str, tuple[int, ...]]] = []
    for layer in layers:
        weights, shape = _plan_layer(layer, shape, dtype, what)
        planned.extend(weights)
    return planned


_MODELS = ("Sequential", "Functional", "Model")


def _plan_entry(
    entry: Mapping[str, Any],
    shape: Any,
    custom_objects: Any,
    what: str,
    dtype: Any,
    options: Any = None,
) -> tuple[str, list[tuple[str, tuple[int, ...]]], Any]:
    """Plan one layer entry of a config (a nested model recursively)."""
    from loopkit._training.serialization import layer_from_config

    config = entry.get("config") or {}
    if entry.get("class_name") in _MODELS:
        name = str(config.get("name"))
        if "nodes" in config:
            weights, out = _plan_graph(config, custom_objects, what)
        else:
            layers = [layer_from_config(e, custom_objects) for e in config["layers"]]
            weights, out = [], _sample_shape(config.get("input_shape"), what, "an input")
            for layer in layers:
                more, out = _plan_layer(layer, out, np.dtype(config["dtype"]), what)
                weights.extend(more)
        return name, [(f"{name}/{k}", s) for k, s in weights], out
    layer = layer_from_config(entry, custom_objects)
    weights, out = _plan_layer(layer, shape, dtype, what, options)
    return str(layer.name), weights, out


def _plan_graph(
    config: Mapping[str, Any], custom_objects: Any, what: str
) -> tuple[list[tuple[str, tuple[int, ...]]], tuple[int, ...]]:
    dtype = np.dtype(config.get("dtype", "float32"))
    entries = {str((e.get("config") or {}).get("name")): e for e in config["layers"]}
    produced: dict[tuple[str, int, int], tuple[int, ...]] = {
        (str(spec["name"]), 0, 0): _sample_shape(spec["shape"], what, "an input shape")
        for spec in config["input_layers"]
    }
    planned: list[tuple[str, tuple[int, ...]]] = []
    calls: dict[str, int] = {}
    for node in config["nodes"]:
        name = str(node["layer"])
        shapes = [produced[_ref(ref)] for ref in node["inbound"]]
        entry = entries[name]
        several = len(shapes) > 1 or entry.get("class_name") in _multi_input_classes()
        several = bool(node.get("multi_input", several))
        shape: Any = [tuple(s) for s in shapes] if several else shapes[0]
        _, weights, out = _plan_entry(
            entry, shape, custom_objects, what, dtype, node.get("options")
        )
        if name not in calls:  # a shared layer's weights exist once
            planned.extend(weights)
        index = calls.get(name, 0)
        several_out = isinstance(out, list)
        for k, o in enumerate(out if several_out else [out]):
            produced[(name, index, k)] = o
        calls[name] = index + 1
    refs = config["outputs"]
    first = next(iter(refs.values())) if isinstance(refs, Mapping) else refs[0]
    return planned, produced[_ref(first)]


def _ref(ref: Any) -> tuple[str, int, int]:
    return (str(ref[0]), int(ref[1]), int(ref[2]) if len(ref) > 2 else 0)


def _multi_input_classes() -> set[str]:
    from loopkit import layers

    return {
        n
        for n in layers.__all__
        if getattr(getattr(layers, n), "multi_input", False) is True
    }


def planned_graph_weight_shapes(
    config: Mapping[str, Any], custom_objects: Any, what: str
) -> list[tuple[str, tuple[int, ...]]]:
    """Return ``("layer/param", shape)`` for each weight a functional config would create.

    Raises:
        CheckpointError: a declared shape is not sane, or a layer refuses its input.
    """
    try:
        return _plan_graph(config, custom_objects, what)[0]
    except (KeyError, IndexError, TypeError) as err:
        raise CheckpointError(
            f"{what}: the file's functional architecture is malformed "
            f"({type(err).__name__}: {err}). Save the model again."
        ) from err
