"""Symbolic tensors and graph nodes: what ``Input`` returns and calling a layer on it."""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.base import as_sample_shape, shape_fits
from loopkit.typing import Shape

__all__ = [
    "Input",
    "KerasTensor",
    "Node",
    "add_node",
    "arithmetic",
    "bind_inputs",
    "call_layer",
    "flatten_structure",
    "unique_name",
]


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
        index: Which output of ``node`` it is (0 unless the call has several).
    """

    shape: tuple[int | None, ...]
    dtype: str = "float32"
    name: str | None = None
    node: Node | None = field(default=None, repr=False)
    input_layer: Any = field(default=None, repr=False)
    """For an ``Input``: the ``InputLayer`` that stands for it in ``model.layers``."""
    index: int = field(default=0, kw_only=True)

    @property
    def sample_shape(self) -> Shape:
        """The shape of one sample (no batch axis)."""
        return as_sample_shape(self.shape[1:])

    @property
    def ndim(self) -> int:
        """The number of axes, the batch axis included."""
        return len(self.shape)

    __array_ufunc__ = None  # ``array + tensor``: NumPy defers to ``__radd__``

    def __add__(self, other: Any) -> Any:
        return arithmetic("+", self, other)

    def __radd__(self, other: Any) -> Any:
        return arithmetic("+", other, self)

    def __sub__(self, other: Any) -> Any:
        return arithmetic("-", self, other)

    def __rsub__(self, other: Any) -> Any:
        return arithmetic("-", other, self)

    def __mul__(self, other: Any) -> Any:
        return arithmetic("*", self, other)

    def __rmul__(self, other: Any) -> Any:
        return arithmetic("*", other, self)

    def __truediv__(self, other: Any) -> Any:
        return arithmetic("/", self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return arithmetic("/", other, self)

    def __neg__(self) -> Any:
        return arithmetic("*", self, -1.0)

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"A symbolic tensor {self.name!r} of shape {self.shape} has no values: it "
            "stands for data that the model will see. Call layers on it to build a "
            "graph, then loopkit.Model(inputs, outputs) and fit/predict with arrays."
        )


def arithmetic(op: str, a: Any, b: Any) -> Any:
    """``a <op> b`` with a symbolic tensor on either side, as layer calls.

    Two tensors of one shape give ``Add``, ``Subtract`` or ``Multiply``; a tensor
    and a number (or an array broadcasting to one sample) give ``Rescaling``: Keras 3
    applies the same operations to its symbolic tensors (``x + attention``).

    Raises:
        TypeError: division by a tensor, or an operand that is neither a tensor, a
            number nor an array.
    """
    from loopkit.layers.merging import Add, Multiply, Subtract
    from loopkit.layers.preprocessing import Rescaling

    if isinstance(a, KerasTensor) and isinstance(b, KerasTensor):
        merges = {"+": Add, "-": Subtract, "*": Multiply}
        if op not in merges:
            raise TypeError(
                f"A symbolic tensor {op} a symbolic tensor is not supported: loopkit "
                "has no division layer. Multiply by a tensor, or divide by a number."
            )
        return merges[op]()([a, b])
    tensor, const = (a, b) if isinstance(a, KerasTensor) else (b, a)
    if isinstance(const, bool) or not isinstance(
        const, (int, float, np.integer, np.floating, np.ndarray)
    ):
        raise TypeError(
            f"Symbolic tensor {tensor.name!r} {op} {type(const).__name__}: expected a "
            "symbolic tensor, a number, or an array broadcasting to one sample. "
            "Call a layer on the tensor for anything else."
        )
    if op == "/" and tensor is b:
        raise TypeError(
            f"A number divided by the symbolic tensor {tensor.name!r} is not supported; "
            "loopkit has no reciprocal layer."
        )
    value = np.asarray(const, np.float64)
    number: Any = float(value) if value.ndim == 0 else value.tolist()
    if op == "+":
        return Rescaling(1.0, offset=number)(tensor)
    if op == "-":  # x - c, or c - x
        if tensor is a:
            return Rescaling(1.0, offset=(-value).tolist() if value.ndim else -number)(a)
        return Rescaling(-1.0, offset=number)(tensor)
    if op == "*":
        return Rescaling(number)(tensor)
    return Rescaling((1.0 / value).tolist() if value.ndim else 1.0 / number)(tensor)


@define(eq=False)
class Node:
    """One call of a layer (or a nested model) in a graph.

    Args:
        layer: The layer called.
        inputs: The symbolic tensors it was called on, in call order.
        multi_input: Whether the call passes a list (merge layers, nested models with
            several inputs, a layer whose ``call_arguments`` made a list).
        options: The call's options from ``call_arguments`` (plain JSON-able values),
            passed as keywords to ``forward``, ``compute_output_shape`` and
            ``compute_mask``.
        multi_output: Whether the call returns a list (``compute_output_shape``
            gave a list of shapes).
        training: The call's ``training=`` (Keras's ``layer(x, training=False)``):
            that mode always, in fit as in predict; None follows the model's mode.
    """

    layer: Any
    inputs: list[KerasTensor]
    multi_input: bool = False
    options: dict[str, Any] = field(factory=dict)
    multi_output: bool = False
    training: bool | None = field(default=None, kw_only=True)
    outputs: list[KerasTensor] = field(init=False, factory=list, repr=False)

    @property
    def output(self) -> KerasTensor:
        """The (first) output tensor of the call."""
        return self.outputs[0]

    @output.setter
    def output(self, tensor: KerasTensor) -> None:
        self.outputs = [tensor]


_FIRST_CALLS: weakref.WeakKeyDictionary[Any, Node] = weakref.WeakKeyDictionary()
"""Each layer's first call on symbolic tensors: what ``layer.input``/``output`` read."""


def record_call(node: Node, replace: bool = False) -> None:
    """Remember ``node`` as its layer's first call (or as the call, with ``replace``)."""
    if replace or node.layer not in _FIRST_CALLS:
        _FIRST_CALLS[node.layer] = node


def first_call(layer: Any, attribute: str) -> Node:
    """Return ``layer``'s first call on symbolic tensors, for ``layer.<attribute>``.

    Raises:
        AttributeError: the layer was never called on one (as Keras raises).
    """
    node = _FIRST_CALLS.get(layer)
    if node is None:
        raise AttributeError(
            f"Layer {getattr(layer, 'name', None)!r} has never been called on a "
            f"symbolic tensor, so it has no {attribute}. Call it on loopkit.Input(...) "
            "or another layer's output first, or put it in a built model."
        )
    return node


def Input(
    shape: Sequence[int | None] | int | None = None,
    batch_size: int | None = None,
    dtype: Any = None,
    sparse: bool | None = None,
    batch_shape: Sequence[int | None] | None = None,
    name: str | None = None,
) -> KerasTensor:
    """Return a symbolic input of samples of ``shape`` (no batch axis), as ``keras.Input``.

    The arguments are Keras 3's, in its order.

    Args:
        shape: Shape of one sample, e.g. ``(784,)`` or ``(8, 8, 1)``; None for an
            axis of any length, e.g. ``(None,)`` for token ids of sequences of any
            length: each batch may then have its own length.
        batch_size: The batch axis of the tensor's ``shape`` (and of the tensors
            computed from it), as in Keras; data may still come in batches of any
            size.
        dtype: ``"float32"`` (default), or an integer dtype for token ids.
        sparse: None or False: inputs are dense arrays.
        batch_shape: Keras's alternative to ``shape`` and ``batch_size``:
            ``(batch_size, *shape)`` (as a stateful RNN's model declares it).
        name: Name of the input, the key of its data when ``x`` is a dict.

    Raises:
        ConfigError: a non-positive or non-integer axis (other than None), no shape,
            ``shape`` and ``batch_shape`` that disagree, or ``sparse=True``.
    """
    if sparse:
        raise ConfigError(
            "Input(sparse=True): loopkit's inputs are dense arrays; leave sparse out "
            "and pass dense data (e.g. scipy's matrix.toarray())."
        )
    if batch_shape is not None:
        sample = tuple(batch_shape)[1:]
        given = (shape,) if isinstance(shape, (int, np.integer)) else shape
        if given is not None and tuple(given) != sample:
            raise ConfigError(
                f"Input(shape={shape!r}, batch_shape={tuple(batch_shape)!r}): the two "
                "disagree; pass only one of them."
            )
        shape = sample
        batch_size = next(iter(batch_shape))
    if shape is None:
        raise ConfigError(
            "Input() needs shape= (one sample's shape, e.g. Input(shape=(784,))) or "
            "batch_shape= (with the batch axis first)."
        )
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if any(
        d is not None
        and (isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d <= 0)
        for d in dims
    ):
        raise ConfigError(
            f"Input(shape={shape!r}): every axis of a sample must be a positive int, or "
            "None for an axis of any length (no batch axis), e.g. Input(shape=(784,)) "
            "or Input(shape=(None, 8)) for sequences of any length."
        )
    from loopkit.layers.input_layer import InputLayer

    shape_ = as_sample_shape(dims)
    layer = InputLayer(shape=shape_, name=name or unique_name("input_layer"))
    return KerasTensor(
        (None if batch_size is None else int(batch_size), *shape_),
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


def _symbolic_output_shape(
    layer: Any, shapes: Any, options: Mapping[str, Any], call: str
) -> Any:
    """Build ``layer`` for ``shapes`` if needed, check it fits, and return its output.

    Returns a shape, or a list of shapes for a call with several outputs.
    """
    if not layer.built:
        layer.setup(shapes)
    elif not _fits(layer, shapes):
        raise ShapeError(
            f"{call}: layer {layer.name!r} was built for inputs of shape "
            f"{_batched(layer.built_input_shape)} and is now called on "
            f"{_batched(shapes)}. A shared layer must see the same shape on every call; "
            "use another layer instance for the other shape."
        )
    out = layer.compute_output_shape(shapes, **options)
    if isinstance(out, list):
        return [as_sample_shape(s) for s in out]
    return as_sample_shape(out)


def _fits(layer: Any, shapes: Any) -> bool:
    """Whether ``shapes`` are what ``layer`` was built for.

    A one-input layer called with extra tensors (an RNN's ``initial_state``) is
    built for its first input alone. An axis built as None fits any length.
    """
    built = layer.built_input_shape
    if built == shapes or shape_fits(built, shapes):  # None fits any length
        return True
    return (
        isinstance(shapes, list)
        and not getattr(layer, "multi_input", False)
        and not isinstance(built, list)
        and shape_fits(built, shapes[0])
    )


def _batched(shapes: Any) -> Any:
    if isinstance(shapes, list):
        return [_batched(s) for s in shapes]
    return (None, *shapes)


def bind_inputs(layer: Any, inputs: Any) -> Any:
    """The default binding of ``layer(inputs)``: one tensor, or a list for merge layers.

    Returns the tensor, or a list of them for a layer that takes a list (merge
    layers, nested models with several inputs). Keras's one-tensor list is
    unwrapped for a one-input layer.

    Raises:
        TypeError: several tensors for a one-input layer, or one tensor for a layer
            that merges a list.
    """
    name = getattr(layer, "name", None) or type(layer).__name__
    call = f"{type(layer).__name__}({name!r})(...)"
    takes_list = bool(getattr(layer, "multi_input", False))
    if isinstance(inputs, (list, tuple, Mapping)):
        leaves = flatten_structure(inputs)
        if takes_list:
            return leaves
        if len(leaves) == 1:
            return leaves[0]  # Keras unwraps a one-tensor list for one-input layers
        raise TypeError(
            f"{call} got {len(leaves)} tensors, but {type(layer).__name__} takes one "
            "input. Merge them first, e.g. loopkit.layers.Concatenate()([a, b])."
        )
    if takes_list and getattr(layer, "requires_list", False):
        raise TypeError(
            f"{call} got one tensor; {type(layer).__name__} merges a list of "
            "tensors: call it as layer([a, b])."
        )
    return inputs


def _bind(layer: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], call: str) -> Any:
    """Run ``layer.call_arguments`` (the default binding for models); name bad calls.

    A layer written Keras's way (``call()``) takes the arguments its ``call`` does.
    """
    from loopkit._training.traced import bind_call, is_traced_layer

    if is_traced_layer(layer):
        return bind_call(layer, args, kwargs)
    bind = getattr(layer, "call_arguments", None)
    if bind is None:
        if len(args) != 1 or kwargs:
            raise TypeError(
                f"{call} takes its inputs as one argument (a tensor, a list or a dict), "
                f"got {len(args)} positional and the keyword argument(s) {sorted(kwargs)}."
            )
        return bind_inputs(layer, args[0]), {}
    try:
        return bind(*args, **kwargs)
    except TypeError as err:
        if "call_arguments()" not in str(err):
            raise
        raise TypeError(
            f"{call}: the call's arguments do not fit {type(layer).__name__}: {err}. "
            "Layers are called on their inputs (plus training= and the arguments the "
            "layer documents, e.g. initial_state= for RNNs)."
        ) from err


def call_layer(layer: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """``layer(*args, **kwargs)``: add a node on symbolic tensors, or compute on arrays.

    ``training=`` and ``mask=`` are taken here; the rest goes to the layer's
    ``call_arguments``, which returns the call's inputs (a list makes the call
    multi-input) and its options.

    Raises:
        TypeError: a mix of symbolic tensors and arrays, or call arguments the layer
            does not take.
    """
    name = getattr(layer, "name", None) or type(layer).__name__
    call = f"{type(layer).__name__}({name!r})(...)"
    rest = dict(kwargs)
    training = rest.pop("training", None)
    mask = rest.pop("mask", None)
    inputs, options = _bind(layer, args, rest, call)
    multi = isinstance(inputs, list)
    leaves = inputs if multi else [inputs]
    symbolic = [isinstance(t, KerasTensor) for t in leaves]
    if any(symbolic):
        if not all(symbolic):
            raise TypeError(
                f"{call} got a mix of symbolic tensors and arrays; call a layer on the "
                "outputs of loopkit.Input(...) and other layers, or on arrays alone."
            )
        if mask is not None:
            raise TypeError(
                f"{call} got mask= on symbolic tensors; in a graph masks are made from "
                "the data by Embedding(mask_zero=True) or Masking and passed on by the "
                "model. Add one of those layers instead."
            )
        fixed = None if training is None else bool(training)
        return add_node(layer, inputs, options, call, training=fixed)
    return layer.call_eagerly(inputs, bool(training), mask=mask, **options)


def add_node(
    layer: Any,
    inputs: Any,
    options: Mapping[str, Any] | None = None,
    call: str = "",
    training: bool | None = None,
) -> Any:
    """Add the call of ``layer`` on ``inputs`` (a tensor or a list) to the graph.

    ``training`` fixes the call's mode (True or False), None follows the model's.

    Returns the output tensor, or a list of them for a call with several outputs.
    """
    multi = isinstance(inputs, list)
    leaves: list[KerasTensor] = inputs if multi else [inputs]
    shapes: Any = [t.sample_shape for t in leaves] if multi else leaves[0].sample_shape
    if layer.name is None:
        layer.name = unique_name(layer.default_name)
    call = call or f"{type(layer).__name__}({layer.name!r})(...)"
    opts = dict(options or {})
    out_shape = _symbolic_output_shape(layer, shapes, opts, call)
    several = isinstance(out_shape, list)
    batches = {t.shape[0] for t in leaves}  # Keras's: a batch size all inputs declare
    batch = batches.pop() if len(batches) == 1 else None
    node = Node(
        layer,
        leaves,
        multi_input=multi,
        options=opts,
        multi_output=several,
        training=training,
    )
    record_call(node)
    shapes_out = out_shape if several else [out_shape]
    node.outputs = [
        KerasTensor(
            (batch, *shape),
            "float32",
            layer.name if k == 0 else f"{layer.name}_output_{k}",
            node,
            index=k,
        )
        for k, shape in enumerate(shapes_out)
    ]
    return list(node.outputs) if several else node.outputs[0]
