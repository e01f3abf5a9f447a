"""Symbolic tensors and graph nodes: what ``Input`` returns and calling a layer on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError, ShapeError
from loopkit.typing import Shape

__all__ = ["Input", "KerasTensor", "Node", "call_layer", "flatten_structure", "unique_name"]


@define(eq=False)
class KerasTensor:
    """A symbolic batch: its shape (batch axis first, ``None``) and the node making it.

    Calling a layer on one builds the graph instead of computing; ``Model(inputs,
    outputs)`` then trains the graph between them.

    Args:
        shape: ``(None, *sample_shape)``, as in Keras.
        dtype: The dtype the data will have (``"float32"`` by default).
        name: The input's name (for ``Input``) or the producing layer's name.
        node: The call that produced it; None for an ``Input``.
    """

    shape: tuple[int | None, ...]
    dtype: str = "float32"
    name: str | None = None
    node: Node | None = field(default=None, repr=False)
    input_layer: Any = field(default=None, repr=False)
    """For an ``Input``: the ``InputLayer`` that stands for it in ``model.layers``."""

    @property
    def sample_shape(self) -> Shape:
        """The shape of one sample (no batch axis)."""
        return tuple(int(d) for d in self.shape[1:])  # type: ignore[arg-type]

    @property
    def ndim(self) -> int:
        """The number of axes, the batch axis included."""
        return len(self.shape)

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"A symbolic tensor {self.name!r} of shape {self.shape} has no values: it "
            "stands for data that the model will see. Call layers on it to build a "
            "graph, then loopkit.Model(inputs, outputs) and fit/predict with arrays."
        )


@define(eq=False)
class Node:
    """One call of a layer (or a nested model) in a graph.

    Args:
        layer: The layer called.
        inputs: The symbolic tensors it was called on, in call order.
        output: The symbolic tensor the call produced.
        multi_input: Whether the layer takes a list (merge layers, nested models with
            several inputs).
    """

    layer: Any
    inputs: list[KerasTensor]
    output: KerasTensor = field(init=False, repr=False)
    multi_input: bool = False


def Input(
    shape: Sequence[int] | int,
    name: str | None = None,
    dtype: Any = None,
    batch_size: int | None = None,
) -> KerasTensor:
    """Return a symbolic input of samples of ``shape`` (no batch axis), as ``keras.Input``.

    Args:
        shape: Shape of one sample, e.g. ``(784,)`` or ``(8, 8, 1)``.
        name: Name of the input, the key of its data when ``x`` is a dict.
        dtype: ``"float32"`` (default), or an integer dtype for token ids.
        batch_size: Accepted for Keras compatibility; batches may have any size.

    Raises:
        ConfigError: a non-positive or non-integer axis.
    """
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if any(
        d is None or isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d <= 0
        for d in dims
    ):
        raise ConfigError(
            f"Input(shape={shape!r}): every axis of a sample must be a positive int "
            "(no batch axis, no None), e.g. Input(shape=(784,))."
        )
    from loopkit.layers.input_layer import InputLayer

    shape_ = tuple(int(d) for d in dims)
    layer = InputLayer(shape=shape_, name=name or unique_name("input_layer"))
    return KerasTensor(
        (None, *shape_),
        "float32" if dtype is None else str(np.dtype(dtype)),
        layer.name,
        input_layer=layer,
    )


_TAKEN: dict[str, int] = {}


def unique_name(stem: str) -> str:
    """Return ``stem``, then ``stem_1``, ``stem_2``... per process, as Keras does."""
    n = _TAKEN.get(stem, 0)
    _TAKEN[stem] = n + 1
    return stem if n == 0 else f"{stem}_{n}"


def flatten_structure(value: Any) -> list[Any]:
    """Return the leaves of a tensor, a list/tuple of them, or a dict (in key order)."""
    if isinstance(value, Mapping):
        return [leaf for v in value.values() for leaf in flatten_structure(v)]
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in flatten_structure(v)]
    return [value]


def _symbolic_output_shape(layer: Any, shapes: Any, call: str) -> Shape:
    """Build ``layer`` for ``shapes`` if needed, check it fits, and return its output."""
    if not layer.built:
        layer.setup(shapes)
    elif layer.built_input_shape != shapes:
        raise ShapeError(
            f"{call}: layer {layer.name!r} was built for inputs of shape "
            f"{_batched(layer.built_input_shape)} and is now called on "
            f"{_batched(shapes)}. A shared layer must see the same shape on every call; "
            "use another layer instance for the other shape."
        )
    out = layer.compute_output_shape(shapes)
    return tuple(int(d) for d in out)


def _batched(shapes: Any) -> Any:
    if isinstance(shapes, list):
        return [_batched(s) for s in shapes]
    return (None, *shapes)


def call_layer(layer: Any, inputs: Any, kwargs: Mapping[str, Any]) -> Any:
    """``layer(inputs)``: add a node on symbolic tensors, or compute eagerly on arrays.

    Raises:
        TypeError: a mix of symbolic tensors and arrays, or unknown call arguments.
    """
    name = getattr(layer, "name", None) or type(layer).__name__
    call = f"{type(layer).__name__}({name!r})(...)"
    options = dict(kwargs)
    training = options.pop("training", None)
    if options:
        raise TypeError(
            f"{call} got the keyword argument(s) {sorted(options)}; loopkit layers are "
            "called on their inputs alone (and training=, for eager calls)."
        )
    leaves = flatten_structure(inputs)
    symbolic = [isinstance(t, KerasTensor) for t in leaves]
    multi = isinstance(inputs, (list, tuple, Mapping))
    if any(symbolic):
        if not all(symbolic):
            raise TypeError(
                f"{call} got a mix of symbolic tensors and arrays; call a layer on the "
                "outputs of loopkit.Input(...) and other layers, or on arrays alone."
            )
        if multi and not getattr(layer, "multi_input", False) and len(leaves) == 1:
            multi = False  # Keras unwraps a one-tensor list for single-input layers
        if multi and not getattr(layer, "multi_input", False):
            raise TypeError(
                f"{call} got {len(leaves)} tensors, but {type(layer).__name__} takes one "
                "input. Merge them first, e.g. loopkit.layers.Concatenate()([a, b])."
            )
        if getattr(layer, "multi_input", False) and not multi:
            leaves_in: list[KerasTensor] = leaves
            shapes: Any = leaves[0].sample_shape
            if getattr(layer, "requires_list", False):
                raise TypeError(
                    f"{call} got one tensor; {type(layer).__name__} merges a list of "
                    "tensors: call it as layer([a, b])."
                )
        else:
            leaves_in = leaves
            shapes = [t.sample_shape for t in leaves] if multi else leaves[0].sample_shape
        if layer.name is None:
            layer.name = unique_name(layer.default_name)
        out_shape = _symbolic_output_shape(layer, shapes, call)
        node = Node(layer, leaves_in, multi_input=multi)
        node.output = KerasTensor((None, *out_shape), "float32", layer.name, node)
        return node.output
    return layer.call_eagerly(inputs if multi else leaves[0], bool(training))
