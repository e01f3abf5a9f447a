"""Tracing a Keras-style layer's ``call()`` once into graphs of loopkit layers."""

from __future__ import annotations

from typing import Any

import numpy as np

from loopkit._training.traced.record import (
    Slot,
    Trace,
    default_template,
    describe,
    fill,
    is_traced_layer,
    takes,
)
from loopkit.errors import ShapeError

__all__ = [
    "held_layers",
    "refuse_own_weights",
    "setup_traced",
    "traced_output_shape",
]


def refuse_own_weights(layer: Any, names: list[str]) -> NotImplementedError:
    """The error for a Keras-style layer that makes weights of its own."""
    kind = type(layer).__name__
    return NotImplementedError(
        f"{describe(layer)}: {kind} creates weights of its own ({names}) with "
        "add_weight() and computes with them in call(); loopkit has no automatic "
        "differentiation, so it cannot derive their gradients from call(). Make the "
        "computation from loopkit layers held as attributes (Dense, Embedding, ...; "
        "they carry their own gradients), or implement forward(x, training) and "
        "backward(dy) for the layer (see the loopkit.layers.Layer docstring)."
    )


def setup_traced(layer: Any, input_shape: Any, dtype: Any, rng: Any) -> Any:
    """``layer.setup`` for a traced layer: trace ``call()`` once; return the output shape.

    Set up again (a model of another dtype), it converts the layers it holds.

    Raises:
        ShapeError: set up again for another input shape.
        NotImplementedError: the layer makes weights of its own.
        TypeError: ``call()`` does something symbolic tensors cannot (NumPy on them).
    """
    from loopkit.layers.base import Layer, as_sample_shape, shape_fits

    multi = isinstance(input_shape, list)
    shapes: Any = (
        [as_sample_shape(s) for s in input_shape] if multi else as_sample_shape(input_shape)
    )
    if layer._trace is not None:
        if not shape_fits(layer.built_input_shape, shapes):
            raise ShapeError(
                f"{describe(layer)} was traced for inputs of shape "
                f"{layer.built_input_shape} and is now set up for {shapes}. Use another "
                "instance of the layer for the other shape."
            )
        if np.dtype(dtype) != layer.dtype:
            for _, inner in layer._trace.tracked:
                _convert(inner, np.dtype(dtype))
            layer.dtype = np.dtype(dtype)
        return _output_shape(layer._trace)
    layer.dtype = np.dtype(dtype)
    layer.rng = rng if rng is not None else _new_rng()
    if layer.name is None:
        layer.name = layer.default_name
    layer.built_input_shape = shapes
    if type(layer).build is not Layer.build:  # Keras's build(): batch axis first
        batch: Any = [(None, *s) for s in shapes] if multi else (None, *shapes)
        type(layer).build(layer, batch)
    if layer._parameters:
        raise refuse_own_weights(layer, [p.name for p in layer._parameters])
    trace = _trace(layer, shapes if multi else [shapes], multi)
    object.__setattr__(layer, "_trace", trace)
    layer.built = True
    for graph in trace.graphs:
        graph.refresh_sharing()
        graph.refresh_gradient_flags(True)
    return _output_shape(trace)


def _new_rng() -> Any:
    from loopkit.random import new_generator

    return new_generator()


def _output_shape(trace: Trace) -> Any:
    shapes = [t.sample_shape for t in trace.graph.outputs]
    return shapes if trace.multi_output else shapes[0]


def _trace(layer: Any, shapes: list[Any], multi: bool) -> Trace:
    from loopkit._training.symbolic import flatten_structure

    template = getattr(layer, "_call_template", None)
    slots = [v for v in flatten_structure(template) if isinstance(v, Slot)]
    if template is None or len(slots) != len(shapes):  # set up without a call
        template = default_template(layer, len(shapes), multi)
    takes_training = "training" not in template[1] and takes(layer, "training")
    # training=None: the layers call() calls follow the model's mode.
    graph = _record(layer, template, shapes, None, takes_training)
    tracked = _tracked(layer, graph)
    modes: dict[bool, Any] = {}
    if takes_training:  # does call() branch on training in Python? Run both ways.
        held = {id(inner) for _, inner in tracked}
        modes = {on: _record(layer, template, shapes, on, True) for on in (True, False)}
        if _structure(modes[True], held) == _structure(modes[False], held):
            modes = {}
        else:
            tracked = _tracked(layer, modes[True], modes[False])
            made = [inner for path, inner in tracked if path.startswith("call_")]
            if any(inner.parameters for inner in made):
                raise TypeError(
                    f"{describe(layer)}(...): {type(layer).__name__}.call() takes "
                    "another path when training than at inference, and makes layers "
                    "with weights inside call(); each path would get its own weights. "
                    "Create those layers in __init__ (self.dense = Dense(...)) and call "
                    "them in call()."
                )
    return Trace(
        graph=graph,
        template=template,
        multi_input=multi,
        multi_output=len(graph.outputs) > 1,
        tracked=tracked,
        modes=modes,
    )


def _record(
    layer: Any,
    template: tuple[tuple[Any, ...], dict[str, Any]],
    shapes: list[Any],
    training: bool | None,
    pass_training: bool,
) -> Any:
    """Run ``call()`` once on fresh symbolic inputs; return the graph it made."""
    from loopkit._training.graph import Graph, collect_nodes
    from loopkit._training.symbolic import Input, KerasTensor, flatten_structure

    inputs = [Input(shape=s) for s in shapes]
    args, kwargs = fill(template, inputs)
    if pass_training:
        kwargs["training"] = training
    call = f"{describe(layer)}(...)"
    try:
        result = type(layer).call(layer, *args, **kwargs)
    except (TypeError, AttributeError, IndexError) as err:
        raise TypeError(
            f"{call}: loopkit records {type(layer).__name__}.call() by running it "
            f"once on symbolic tensors of shapes {[(None, *s) for s in shapes]}, and "
            f"it failed: {type(err).__name__}: {err}. In call(), compute only by "
            "calling layers (held as attributes or made in call()) and with + - * on "
            "tensors; NumPy functions, indexing and Python branches on a tensor's "
            "values cannot be recorded. Use layers for those steps (e.g. Reshape, "
            "Permute, Activation), or give the layer forward() and backward()."
        ) from err
    outputs = flatten_structure(result)
    if not outputs or not all(isinstance(t, KerasTensor) for t in outputs):
        raise TypeError(
            f"{call}: {type(layer).__name__}.call() returned {result!r}; expected the "
            "symbolic tensor(s) made by calling layers on its inputs."
        )
    nodes = collect_nodes(inputs, outputs, f"{type(layer).__name__}.call()")
    graph = Graph(inputs, outputs, nodes)
    for inner in graph.layers:
        if inner is layer:
            raise TypeError(f"{call}: call() calls the layer itself; it cannot recurse.")
    return graph


def _structure(graph: Any, held: set[int]) -> list[Any]:
    """What a graph computes, for comparing two traces: held layers by identity."""
    return [
        (
            id(node.layer) if id(node.layer) in held else type(node.layer).__name__,
            ins,
            node.options,
        )
        for node, ins in zip(graph.nodes, graph.in_slots, strict=True)
    ] + [graph.output_slots]


_BOOKKEEPING = frozenset({"_call_template", "_init_config"})


def _tracked(layer: Any, *graphs: Any) -> list[tuple[str, Any]]:
    """Layers held by ``layer`` in attribute order (Keras's tracking), then the rest."""
    import attrs

    from loopkit.layers.base import Layer

    fields = {a.name for a in attrs.fields(Layer)}
    found: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def visit(path: str, value: Any) -> None:
        if isinstance(value, Layer) or is_model(value):
            if id(value) not in seen:
                seen.add(id(value))
                found.append((path, value))
            return
        if isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                visit(f"{path}/{i}", v)
        elif isinstance(value, dict):
            for k, v in value.items():
                visit(f"{path}/{k}", v)

    for key, value in vars(layer).items():
        if key not in fields and key not in _BOOKKEEPING:
            visit(key.lstrip("_") or key, value)
    made = 0
    for inner in [inner for graph in graphs for inner in graph.layers]:
        if id(inner) not in seen:
            seen.add(id(inner))
            found.append((f"call_{made}", inner))
            made += 1
    return found


def held_layers(layer: Any) -> list[Any]:
    """The layers (and models) ``layer`` holds: traced ones, or its attributes' before."""
    if not is_traced_layer(layer):
        return []
    if layer._trace is not None:
        return [inner for _, inner in layer._trace.tracked]
    return [inner for _, inner in _tracked(layer)]


def is_model(value: Any) -> bool:
    from loopkit._training.network import Network

    return isinstance(value, Network)


def _convert(inner: Any, dtype: np.dtype[Any]) -> None:
    """Rebuild a held layer (or a nested model's layers) in ``dtype``, keeping weights."""
    from loopkit._training.functional import convert_layer

    if not getattr(inner, "built", False):
        return
    if is_model(inner):
        if inner.dtype == dtype:
            return
        for sub in inner.layers:
            if getattr(sub, "built", False) and sub.dtype != dtype:
                _convert(sub, dtype)
        inner.dtype = dtype
        inner._pack()
        return
    if inner.dtype != dtype:
        convert_layer(inner, dtype)


def traced_output_shape(layer: Any, input_shape: Any) -> Any:
    """The output shape(s) of the recorded graph for inputs of ``input_shape``.

    Inputs of the traced shape give the traced outputs; a known length where the
    trace had None is carried through each layer's ``compute_output_shape``.
    """
    trace: Trace = layer._trace
    if input_shape == layer.built_input_shape:
        return _output_shape(trace)
    given = input_shape if trace.multi_input else [input_shape]
    found = trace.graph.output_shapes(given)
    return found if trace.multi_output else found[0]
