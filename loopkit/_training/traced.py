"""Layers written Keras's way: ``call()`` traced once into a graph of loopkit layers.

A ``Layer`` subclass that defines ``call()`` and no ``forward`` (keras.io's
``TransformerBlock``) is run once, when it is first called (on symbolic tensors or on
arrays), on fresh symbolic inputs of the call's shapes: the layers ``call()`` calls
and the ``+ - *`` it applies record a graph, and from then on the layer runs that
graph forward and backward, as a nested model does. Its weights are those of the
layers it holds, in Keras's tracking order (the order its attributes were assigned,
then layers made inside ``call()``). ``training`` reaches ``call()`` as None, so the
layers it calls follow the model's mode (``fit`` trains, ``predict`` does not).
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from attrs import define, evolve, field

from loopkit.errors import ShapeError
from loopkit.typing import FloatArray

__all__ = [
    "Trace",
    "auto_config",
    "from_keras_config",
    "bind_call",
    "clone_traced",
    "held_layers",
    "is_traced_layer",
    "nested_graphs",
    "recording_init",
    "refuse_own_weights",
    "setup_traced",
    "traced_backward",
    "traced_forward",
    "traced_output_shape",
    "traced_parameters",
    "traced_trainable_parameters",
    "traced_weight_paths",
]


@define(eq=False)
class _Slot:
    """Where the ``index``-th tensor of a call sits among its arguments."""

    index: int

    def __repr__(self) -> str:
        return "<tensor>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Slot) and other.index == self.index

    def __hash__(self) -> int:
        return hash(("slot", self.index))


@define(eq=False)
class Trace:
    """The graph recorded from one run of a layer's ``call()``.

    Args:
        graph: The graph from the fresh inputs to the outputs of ``call()``.
        template: The call's ``(args, kwargs)``, tensors replaced by ``_Slot``s.
        multi_input: The call took several tensors (``forward`` gets a list).
        multi_output: ``call()`` returned several tensors (``forward`` returns a list).
        tracked: ``(path, layer)`` for every layer the block holds, in Keras's
            tracking order, then the layers made inside ``call()``.
        modes: For a ``call()`` that takes another path when ``training`` is True
            (a Python ``if training:``), the graph of each mode; empty otherwise.
    """

    graph: Any
    template: tuple[tuple[Any, ...], dict[str, Any]]
    multi_input: bool
    multi_output: bool
    tracked: list[tuple[str, Any]]
    modes: dict[bool, Any] = field(factory=dict)
    last: Any = None
    """The graph of the last forward pass, which backward runs back through."""

    @property
    def graphs(self) -> list[Any]:
        """Every graph that runs: one, or one per mode."""
        return list(self.modes.values()) if self.modes else [self.graph]


def is_traced_layer(layer: Any) -> bool:
    """Whether ``layer`` is written Keras's way: a ``call()`` and no ``forward``."""
    from loopkit.layers.base import Layer

    kind = type(layer)
    return (
        isinstance(layer, Layer)
        and callable(getattr(kind, "call", None))
        and kind.forward is Layer.forward
    )


def nested_graphs(layer: Any) -> list[Any]:
    """The graphs inside ``layer``: a nested model's, a traced layer's, or none."""
    trace = getattr(layer, "_trace", None)
    if trace is not None:
        return trace.graphs  # type: ignore[no-any-return]
    graph = getattr(layer, "graph", None)
    return [] if graph is None else [graph]


def _describe(layer: Any) -> str:
    return f"{type(layer).__name__}({(layer.name or type(layer).__name__)!r})"


# --- binding a call ------------------------------------------------------------------


def bind_call(
    layer: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """Bind ``layer(*args, **kwargs)`` for a traced layer: its tensors and no options.

    Every tensor (or array) in the arguments, nested lists and dicts included, is an
    input of the call; the rest are constants of the trace. Returns one tensor, or a
    list of them for a call on several.

    Raises:
        TypeError: a later call whose arguments differ in structure or constants
            from the call that was traced.
    """
    from loopkit._training.symbolic import KerasTensor

    leaves: list[Any] = []

    def swap(value: Any) -> Any:
        if isinstance(value, (KerasTensor, np.ndarray)) or _is_array_like(value):
            leaves.append(value)
            return _Slot(len(leaves) - 1)
        if isinstance(value, (list, tuple)):
            return type(value)(swap(v) for v in value)
        if isinstance(value, Mapping):
            return {k: swap(v) for k, v in value.items()}
        return value

    template = (tuple(swap(a) for a in args), {k: swap(v) for k, v in kwargs.items()})
    if not leaves:
        raise TypeError(
            f"{_describe(layer)} got no tensor or array among its arguments; call it on "
            "the output of loopkit.Input(...) or another layer, or on a NumPy array."
        )
    trace = getattr(layer, "_trace", None)
    if trace is not None and trace.template != template:
        raise TypeError(
            f"{_describe(layer)} was traced for calls shaped like "
            f"{_show(trace.template)} and is now called as {_show(template)}. loopkit "
            "records call() once, for the arguments of the first call: call the layer "
            "the same way each time, or use another instance for the other call."
        )
    object.__setattr__(layer, "_call_template", template)
    return (leaves if len(leaves) > 1 else leaves[0]), {}


def _is_array_like(value: Any) -> bool:
    return hasattr(value, "__array__") and not isinstance(value, (str, bytes, type))


def _show(template: tuple[tuple[Any, ...], dict[str, Any]]) -> str:
    args, kwargs = template
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"call({', '.join(shown)})"


def _fill(value: Any, tensors: list[Any]) -> Any:
    if isinstance(value, _Slot):
        return tensors[value.index]
    if isinstance(value, (list, tuple)):
        return type(value)(_fill(v, tensors) for v in value)
    if isinstance(value, dict):
        return {k: _fill(v, tensors) for k, v in value.items()}
    return value


# --- tracing -------------------------------------------------------------------------


def refuse_own_weights(layer: Any, names: list[str]) -> NotImplementedError:
    """The error for a Keras-style layer that makes weights of its own."""
    kind = type(layer).__name__
    return NotImplementedError(
        f"{_describe(layer)}: {kind} creates weights of its own ({names}) with "
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
                f"{_describe(layer)} was traced for inputs of shape "
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
    slots = [v for v in flatten_structure(template) if isinstance(v, _Slot)]
    if template is None or len(slots) != len(shapes):  # set up without a call
        template = _default_template(layer, len(shapes), multi)
    takes_training = "training" not in template[1] and _takes(layer, "training")
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
                    f"{_describe(layer)}(...): {type(layer).__name__}.call() takes "
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
    args, kwargs = _fill(template, inputs)
    if pass_training:
        kwargs["training"] = training
    call = f"{_describe(layer)}(...)"
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


def _default_template(layer: Any, n: int, multi: bool) -> Any:
    """How to pass ``n`` tensors to ``call()`` when no call recorded it (a config).

    Positionally when ``call`` takes that many positional arguments besides
    ``training`` and ``mask`` (``call(self, query, value)``), else as one list.
    """
    if not multi:
        return ((_Slot(0),), {})
    try:
        params = list(inspect.signature(type(layer).call).parameters.values())[1:]
    except (TypeError, ValueError):
        params = []
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.name not in ("training", "mask")
    ]
    if len(positional) >= n > 1:
        return (tuple(_Slot(i) for i in range(n)), {})
    return (([_Slot(i) for i in range(n)],), {})


def _takes(layer: Any, argument: str) -> bool:
    try:
        params = inspect.signature(type(layer).call).parameters
    except (TypeError, ValueError):
        return False
    return argument in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


_BOOKKEEPING = frozenset({"_call_template", "_init_config"})


def _tracked(layer: Any, *graphs: Any) -> list[tuple[str, Any]]:
    """Layers held by ``layer`` in attribute order (Keras's tracking), then the rest."""
    import attrs

    from loopkit.layers.base import Layer

    fields = {a.name for a in attrs.fields(Layer)}
    found: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def visit(path: str, value: Any) -> None:
        if isinstance(value, Layer) or _is_model(value):
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


def _is_model(value: Any) -> bool:
    from loopkit._training.network import Network

    return isinstance(value, Network)


def _convert(inner: Any, dtype: np.dtype[Any]) -> None:
    """Rebuild a held layer (or a nested model's layers) in ``dtype``, keeping weights."""
    from loopkit._training.functional import convert_layer

    if not getattr(inner, "built", False):
        return
    if _is_model(inner):
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


# --- weights -------------------------------------------------------------------------


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
    if _is_model(inner):
        return [
            f"{i}/{key}" for i, sub in enumerate(inner.layers) for key in _inner_paths(sub)
        ]
    return [p.name for p in inner.parameters]


# --- running -------------------------------------------------------------------------


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


def traced_output_shape(layer: Any, input_shape: Any) -> Any:
    """The output shape(s) of the recorded graph for inputs of ``input_shape``.

    Inputs of the traced shape give the traced outputs; a known length where the
    trace had None is carried through each layer's ``compute_output_shape``.
    """
    from loopkit.layers.base import as_sample_shape

    trace: Trace = layer._trace
    if input_shape == layer.built_input_shape:
        return _output_shape(trace)
    given = input_shape if trace.multi_input else [input_shape]
    graph = trace.graph
    shapes = {id(t): as_sample_shape(s) for t, s in zip(graph.inputs, given, strict=True)}
    for node in graph.nodes:
        ins = [shapes[id(t)] for t in node.inputs]
        out = node.layer.compute_output_shape(
            ins if node.multi_input else ins[0], **node.options
        )
        outs = out if node.multi_output else [out]
        for tensor, shape in zip(node.outputs, outs, strict=True):
            shapes[id(tensor)] = as_sample_shape(shape)
    found = [shapes[id(t)] for t in graph.outputs]
    return found if trace.multi_output else found[0]


# --- configs -------------------------------------------------------------------------


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
