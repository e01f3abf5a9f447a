"""Recording a Keras-style call: the trace record, and binding a call's arguments."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
from attrs import define, field

__all__ = [
    "Slot",
    "Trace",
    "bind_call",
    "default_template",
    "describe",
    "fill",
    "is_traced_layer",
    "nested_graphs",
    "takes",
]


@define(eq=False)
class Slot:
    """Where the ``index``-th tensor of a call sits among its arguments."""

    index: int

    def __repr__(self) -> str:
        return "<tensor>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Slot) and other.index == self.index

    def __hash__(self) -> int:
        return hash(("slot", self.index))


@define(eq=False)
class Trace:
    """The graph recorded from one run of a layer's ``call()``.

    Args:
        graph: The graph from the fresh inputs to the outputs of ``call()``.
        template: The call's ``(args, kwargs)``, tensors replaced by ``Slot``s.
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


def describe(layer: Any) -> str:
    return f"{type(layer).__name__}({(layer.name or type(layer).__name__)!r})"


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
            return Slot(len(leaves) - 1)
        if isinstance(value, (list, tuple)):
            return type(value)(swap(v) for v in value)
        if isinstance(value, Mapping):
            return {k: swap(v) for k, v in value.items()}
        return value

    template = (tuple(swap(a) for a in args), {k: swap(v) for k, v in kwargs.items()})
    if not leaves:
        raise TypeError(
            f"{describe(layer)} got no tensor or array among its arguments; call it on "
            "the output of loopkit.Input(...) or another layer, or on a NumPy array."
        )
    trace = getattr(layer, "_trace", None)
    if trace is not None and trace.template != template:
        raise TypeError(
            f"{describe(layer)} was traced for calls shaped like "
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


def fill(value: Any, tensors: list[Any]) -> Any:
    if isinstance(value, Slot):
        return tensors[value.index]
    if isinstance(value, (list, tuple)):
        return type(value)(fill(v, tensors) for v in value)
    if isinstance(value, dict):
        return {k: fill(v, tensors) for k, v in value.items()}
    return value


def default_template(layer: Any, n: int, multi: bool) -> Any:
    """How to pass ``n`` tensors to ``call()`` when no call recorded it (a config).

    Positionally when ``call`` takes that many positional arguments besides
    ``training`` and ``mask`` (``call(self, query, value)``), else as one list.
    """
    if not multi:
        return ((Slot(0),), {})
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
        return (tuple(Slot(i) for i in range(n)), {})
    return (([Slot(i) for i in range(n)],), {})


def takes(layer: Any, argument: str) -> bool:
    try:
        params = inspect.signature(type(layer).call).parameters
    except (TypeError, ValueError):
        return False
    return argument in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )
