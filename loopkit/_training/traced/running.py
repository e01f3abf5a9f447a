"""A traced layer's weights, forward and backward passes, and its clones for sharing."""

from __future__ import annotations

import copy
from typing import Any

from attrs import evolve

from loopkit._training.traced.record import Trace
from loopkit._training.traced.tracing import is_model
from loopkit.typing import FloatArray

__all__ = [
    "clone_traced",
    "traced_backward",
    "traced_forward",
    "traced_parameters",
    "traced_trainable_parameters",
    "traced_weight_paths",
]


def _owned(trace: Trace) -> list[Any]:
    return [inner for _, inner in trace.tracked]


def traced_parameters(layer: Any) -> list[Any]:
    """Every weight of the layers a traced layer holds, in tracking order."""
    return [p for inner in _owned(layer._trace) for p in inner.parameters]


def traced_trainable_parameters(layer: Any) -> list[Any]:
    """The weights the optimizer updates: none when the layer is frozen."""
    if not layer.trainable:
        return []
    return [p for inner in _owned(layer._trace) for p in inner.trainable_parameters]


def traced_weight_paths(layer: Any) -> list[str]:
    """``attribute/.../param`` for every weight, in ``parameters`` order.

    Paths follow the attributes (``att/query/kernel``, ``ffn/0/kernel`` for the first
    layer of a nested Sequential), so they are the same in every process, as Keras's
    weight paths are.
    """
    paths: list[str] = []
    for path, inner in layer._trace.tracked:
        paths.extend(f"{path}/{key}" for key in _inner_paths(inner))
    return paths


def _inner_paths(inner: Any) -> list[str]:
    if getattr(inner, "_trace", None) is not None:
        return traced_weight_paths(inner)
    if is_model(inner):
        return [
            f"{i}/{key}" for i, sub in enumerate(inner.layers) for key in _inner_paths(sub)
        ]
    return [p.name for p in inner.parameters]


def traced_forward(layer: Any, x: Any, training: bool) -> Any:
    """Run the traced graph on ``x`` (a list for several inputs)."""
    trace: Trace = layer._trace
    graph = trace.modes[bool(training)] if trace.modes else trace.graph
    trace.last = graph
    outs = graph.forward(x if trace.multi_input else [x], training)
    return list(outs) if trace.multi_output else outs[0]


def traced_backward(layer: Any, dy: Any) -> Any:
    """Backpropagate through the traced graph; return dL/d(inputs)."""
    trace: Trace = layer._trace
    graph = trace.last if trace.last is not None else trace.graph
    dxs: list[FloatArray | None] = graph.backward(dy if trace.multi_output else [dy])
    return dxs if trace.multi_input else dxs[0]


def clone_traced(layer: Any) -> tuple[Any, list[tuple[Any, Any]]]:
    """A copy for a second call in one graph: shared weights, its own buffers.

    Returns the clone and the ``(weight, clone's weight)`` pairs whose gradients the
    outer graph adds up. A layer called twice inside ``call()`` is cloned from the
    clone of its first call, and the clone's graph adds those gradients itself.
    """
    trace: Trace = layer._trace
    pairs: list[tuple[Any, Any]] = []
    firsts: dict[int, Any] = {}  # each layer's clone, one for every graph
    graph = _clone_graph(trace.graph, firsts, pairs, layer.input_grad_needed)
    modes = {
        on: _clone_graph(g, firsts, pairs, layer.input_grad_needed)
        for on, g in trace.modes.items()
    }
    clone = copy.copy(layer)
    tracked = [(path, firsts.get(id(inner), inner)) for path, inner in trace.tracked]
    new = evolve(trace, graph=graph, tracked=tracked, modes=modes, last=None)
    object.__setattr__(clone, "_trace", new)
    object.__setattr__(clone, "_buffers", {})
    return clone, pairs


def _clone_graph(
    old: Any, firsts: dict[int, Any], pairs: list[tuple[Any, Any]], grad_needed: bool
) -> Any:
    """A copy of ``old`` running the clones in ``firsts`` (made as they are needed)."""
    from loopkit._training.graph import Graph, share_layer

    graph = Graph(old.inputs, old.outputs, old.nodes)
    here: set[int] = set()
    for i, node in enumerate(old.nodes):
        key = id(node.layer)
        if key not in firsts:
            firsts[key], twins = share_layer(node.layer)
            pairs.extend(twins)
        if key not in here:
            here.add(key)
            graph.runners[i] = firsts[key]
        else:  # called again inside call(): this graph adds its gradients
            graph.runners[i], twins = share_layer(firsts[key])
            graph.shared_pairs.extend(twins)
    graph.output_runners = [None] * len(graph.outputs)
    graph.refresh_gradient_flags(grad_needed)
    return graph
