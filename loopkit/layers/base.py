"""The layer contract: parameters, build, forward beside backward, owned buffers."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import numpy as np
from attrs import define, field
from attrs.setters import NO_OP

from loopkit._naming import snake_case
from loopkit.errors import ConfigError, ShapeError
from loopkit.random import new_generator
from loopkit.typing import FloatArray, Shape

if TYPE_CHECKING:
    from loopkit.activations import ActivationFunction
    from loopkit.regularizers import Regularizer

__all__ = [
    "ActivatedLayer",
    "Layer",
    "Parameter",
    "activation_or_none",
    "as_sample_shape",
    "shape_fits",
    "variable_axes",
]


@define(eq=False)
class Parameter:
    """One named weight of a layer and its gradient, of the same shape.

    Once a model is built, ``value`` and ``grad`` are views into the model's two flat
    buffers: write into them in place (``p.value[...] = w``), never rebind them.

    Args:
        name: Name within its layer, e.g. ``"kernel"``.
        value: The weight array.
        grad: dL/dvalue, overwritten by each backward pass.
        trainable: False for state the optimizer never updates (moving statistics).
        regularizer: Adds a penalty on ``value`` to the loss, and its gradient to ``grad``.
        constraint: Projects ``value`` after each optimizer step (``MaxNorm`` ...).
    """

    name: str
    value: FloatArray = field(repr=False)
    grad: FloatArray = field(repr=False)
    trainable: bool = True
    regularizer: Regularizer | None = None
    constraint: Any = None

    @property
    def shape(self) -> Shape:
        """The weight's shape."""
        return tuple(self.value.shape)

    @property
    def size(self) -> int:
        """The number of scalars in the weight."""
        return int(self.value.size)

    def numpy(self) -> FloatArray:
        """Return a copy of the value (Keras's ``variable.numpy()``)."""
        return self.value.copy()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> FloatArray:
        """``np.asarray(weight)``: the values (a copy), as a Keras variable gives."""
        return np.array(self.value, dtype=dtype, copy=True)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The weight's dtype."""
        return self.value.dtype

    def assign(self, value: Any) -> None:
        """Copy ``value`` into the weight in place (Keras's ``variable.assign``).

        Raises:
            ShapeError: ``value`` does not have the weight's shape.
        """
        array = np.asarray(value)
        if array.shape != self.value.shape:
            raise ShapeError(
                f"assign(): weight {self.name!r} has shape {self.shape}, got an array "
                f"of shape {array.shape}. Pass an array of the weight's shape."
            )
        self.value[...] = array


def _as_shape(value: Iterable[Any]) -> Shape:
    """Return ``input_shape=`` as ints, None kept for an axis of any length."""
    return as_sample_shape(value)


def as_sample_shape(value: Iterable[Any]) -> Shape:
    """Return a sample shape as ints, keeping None (an axis of any length, as Keras's).

    Typed ``Shape`` for brevity: only symbolic shapes (``Input``, ``build``,
    ``compute_output_shape``) hold None; arrays never do.
    """
    return tuple(None if d is None else int(d) for d in value)  # type: ignore[misc]


def variable_axes(shape: Any) -> bool:
    """Whether a sample shape (or a list of them) has an axis of any length (None)."""
    if isinstance(shape, list):
        return any(variable_axes(s) for s in shape)
    return any(d is None for d in shape)


def shape_fits(built: Any, actual: Any) -> bool:
    """Whether ``actual`` is ``built`` with each None axis of any length."""
    if isinstance(built, list) or isinstance(actual, list):
        return (
            isinstance(built, list)
            and isinstance(actual, list)
            and len(built) == len(actual)
            and all(shape_fits(b, a) for b, a in zip(built, actual, strict=True))
        )
    return len(built) == len(actual) and all(
        b is None or b == a for b, a in zip(built, actual, strict=True)
    )


def _set_trainable(instance: Any, attribute: Any, value: Any) -> Any:
    """Keras's ``layer.trainable = flag``: a change reaches the layers it holds too.

    Only layers written Keras's way (``call()``) hold layers this way; setting the
    flag it already has changes nothing, so a held layer frozen alone stays frozen.
    """
    keras_style = callable(getattr(type(instance), "call", None))
    if keras_style and bool(value) != instance.trainable:
        from loopkit._training.traced import held_layers

        for inner in held_layers(instance):
            inner.trainable = bool(value)
    return value


@define(eq=False, slots=False)
class Layer:
    """Base class of every layer.

    A subclass implements ``build`` (create parameters with ``add_weight``),
    ``compute_output_shape``, ``forward`` and ``backward``. ``forward``/``backward``
    return views of layer-owned buffers (from ``buffer``) that the next call
    overwrites: copy what you keep. Read parameters through ``param.value`` on every
    call: the model moves them into its flat buffer after ``build``.

    An input shape may hold None for an axis of any length (``Input(shape=(None,
    8))``): weights must not depend on it, ``compute_output_shape`` passes None on
    where the output's size follows it, and ``forward`` reads each batch's length
    from ``x.shape``.

    A call may take several tensors (``multi_input``, or a list from
    ``call_arguments``: ``forward`` gets a list, ``backward`` returns one, None
    where an input needs no gradient) and give several outputs
    (``compute_output_shape`` returns a list of shapes: ``forward`` returns a list,
    ``backward`` gets one, None for an output nothing needs a gradient of, to be
    read as zeros).

    Args:
        name: Unique name within the model; the model picks ``dense``, ``dense_1`` ...
            when left out.
        trainable: False freezes the layer: the optimizer skips its parameters and
            backward skips their gradients.
        input_shape: Shape of one sample (no batch axis), on the first layer only;
            None for an axis of any length, e.g. ``(None, 8)``.
        input_dim: Shorthand for ``input_shape=(input_dim,)``.
    """

    name: str | None = field(default=None, kw_only=True)
    trainable: bool = field(default=True, kw_only=True, on_setattr=_set_trainable)
    input_shape: Shape | None = field(
        default=None,
        kw_only=True,
        converter=attrs.converters.optional(_as_shape),
    )
    input_dim: int | None = field(default=None, kw_only=True)
    dtype: np.dtype[Any] = field(init=False, default=np.dtype(np.float32), repr=False)
    rng: np.random.Generator | None = field(init=False, default=None, repr=False)
    built: bool = field(init=False, default=False, repr=False)
    built_input_shape: Shape | None = field(init=False, default=None, repr=False)
    input_grad_needed: bool = field(init=False, default=True, repr=False)
    """False on the first layer: backward may then skip dL/dx and return None."""
    _parameters: list[Parameter] = field(init=False, factory=list, repr=False)
    _buffers: dict[str, FloatArray] = field(init=False, factory=dict, repr=False)
    _trace: Any = field(init=False, default=None, repr=False)
    """For a layer written Keras's way (``call()``): the graph its call recorded."""
    multi_input: ClassVar[bool] = False
    """True for layers called on a list of tensors (merge layers): ``forward`` then
    takes a list of arrays, ``backward`` returns a list, and ``build`` and
    ``compute_output_shape`` get a list of shapes. A layer whose
    ``call_arguments`` returns a list is multi-input for that call alone."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Record the arguments of a Keras-style ``__init__`` (Keras 3's auto-config)."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and callable(getattr(cls, "call", None)):
            from loopkit._training.traced import recording_init

            cls.__init__ = recording_init(init)  # type: ignore[method-assign]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the layer: on symbolic tensors it adds to the graph; on arrays it computes.

        ``layer(loopkit.Input(shape=(4,)))`` returns a symbolic tensor for the
        functional API; ``layer(np_array)`` builds the layer if needed and returns the
        output for that batch (a new array), as in Keras. ``training=`` and ``mask=``
        are taken by the call machinery; the other arguments go to
        ``call_arguments``.
        """
        from loopkit._training.symbolic import call_layer

        return call_layer(self, args, kwargs)

    def call_arguments(self, inputs: Any) -> tuple[Any, dict[str, Any]]:
        """Bind a call's arguments: return ``(inputs, options)``.

        The default takes one positional argument: a tensor, or a list of tensors
        for layers with ``multi_input`` (a one-tensor list is unwrapped for the
        others). A layer that takes more (an RNN's ``initial_state=``) overrides
        this: tensor arguments become extra entries of a list of inputs (in an
        order the layer documents), and the other arguments become ``options``,
        plain JSON-able values passed as keywords to ``forward``,
        ``compute_output_shape`` and ``compute_mask`` of that call.
        """
        from loopkit._training.symbolic import bind_inputs

        return bind_inputs(self, inputs), {}

    def call_eagerly(
        self, inputs: Any, training: bool, mask: Any = None, **options: Any
    ) -> Any:
        """Return the output for a batch of arrays (building the layer if needed).

        ``inputs`` is an array, or a list of arrays for a multi-input call; the
        result is a new array, or a list of them for a call with several outputs.

        Raises:
            ShapeError: ``mask`` is not ``(batch, timesteps)`` of its input.
        """
        from loopkit.layers.masking import call_forward, check_mask_shape

        multi = isinstance(inputs, list)
        xs = inputs if multi else [inputs]
        arrays = [np.asarray(a, self.dtype if self.built else np.float32) for a in xs]
        shapes: Any = [tuple(a.shape[1:]) for a in arrays]
        if not multi:
            shapes = shapes[0]
        if not self.built:
            self.setup(shapes)
        if mask is not None:
            masks = mask if isinstance(mask, list) else [mask]
            for x, m in zip(arrays, masks, strict=False):
                if m is not None:
                    check_mask_shape(self, x, np.asarray(m))
        out = call_forward(self, arrays if multi else arrays[0], training, mask, **options)
        if isinstance(out, list):
            return [None if o is None else np.array(o, copy=True) for o in out]
        return np.array(out, copy=True)

    def __attrs_post_init__(self) -> None:
        self.check_components()
        if self.input_dim is not None:
            if self.input_shape is not None and self.input_shape != (self.input_dim,):
                raise ConfigError(
                    f"{type(self).__name__}(input_dim={self.input_dim}, input_shape="
                    f"{self.input_shape}): the two disagree; pass only one of them."
                )
            self.input_shape = (int(self.input_dim),)

    def check_components(self) -> None:
        """Resolve every ``*_initializer``/``_regularizer``/``_constraint`` argument once.

        An unknown name then fails where the layer is written, not at the first fit.
        """
        from loopkit import constraints, initializers, regularizers

        lookups = {
            "_initializer": initializers.get,
            "_regularizer": regularizers.get,
            "_constraint": constraints.get,
        }
        for a in attrs.fields(type(self)):
            suffix = a.name[a.name.rfind("_") :]
            if a.init and suffix in lookups:
                lookups[suffix](getattr(self, a.name))

    # --- building -------------------------------------------------------------------

    @property
    def default_name(self) -> str:
        """The name stem the model numbers when ``name`` is not given (``dense``)."""
        return snake_case(type(self).__name__, split_after_digit=False)

    def setup(
        self,
        input_shape: Shape,
        dtype: Any = np.float32,
        rng: np.random.Generator | None = None,
    ) -> Shape:
        """Build the layer for samples of ``input_shape``; return the output shape.

        Args:
            input_shape: Shape of one sample, without the batch axis.
            dtype: float32 (default) or float64 (for gradient checks).
            rng: Generator for initializers and dropout; a fresh seeded one if None.
        """
        from loopkit._training.traced import is_traced_layer, setup_traced

        if is_traced_layer(self):
            return setup_traced(self, input_shape, dtype, rng)  # type: ignore[no-any-return]
        self.dtype = np.dtype(dtype)
        self.rng = rng if rng is not None else new_generator()
        if self.name is None:
            self.name = self.default_name
        if self.multi_input or isinstance(input_shape, list):
            input_shape = [as_sample_shape(s) for s in input_shape]  # type: ignore[assignment, arg-type]
        else:
            input_shape = as_sample_shape(input_shape)
        self._parameters = []
        self._buffers = {}
        self.built_input_shape = input_shape  # build's errors may name it
        if not variable_axes(input_shape):
            self.build(input_shape)
            self.built = True
            return self.compute_output_shape(input_shape)
        try:
            self.build(input_shape)
            self.built = True
            return self.compute_output_shape(input_shape)
        except TypeError as err:  # arithmetic on None: this layer needs every size
            raise ShapeError(
                f"{type(self).__name__} layer {self.name!r} got samples of shape "
                f"{input_shape}, where None is an axis of any length, and it needs "
                f"the size of every axis ({err}). Give the size in Input(shape=...), "
                "or put the layer where the length is gone (after "
                "GlobalAveragePooling1D or an RNN without return_sequences)."
            ) from err

    def build(self, input_shape: Shape) -> None:
        """Create the parameters for samples of ``input_shape``; none by default."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """Return the shape of one output sample; the input shape by default.

        A layer with several outputs returns a list of shapes (one per output);
        a layer with ``call_arguments`` options takes them as keywords here. A layer
        written Keras's way gives the shape its recorded ``call()`` computes.
        """
        if self._trace is not None:
            from loopkit._training.traced import traced_output_shape

            return traced_output_shape(self, input_shape)  # type: ignore[no-any-return]
        return input_shape

    def add_weight(
        self,
        name: Any = None,
        shape: Any = None,
        initializer: Any = None,
        *,
        dtype: Any = None,
        trainable: bool = True,
        regularizer: Any = None,
        constraint: Any = None,
    ) -> Parameter:
        """Create, initialize and register a parameter of this layer.

        Takes loopkit's ``add_weight(name, shape, initializer)`` and Keras 3's
        ``add_weight(shape=..., initializer=..., name=...)`` (also positionally,
        shape first); as in Keras, ``initializer`` defaults to ``"glorot_uniform"``
        and a weight left unnamed is called ``variable`` (``variable_1``, ...).

        Raises:
            ConfigError: no shape, or a non-float ``dtype`` (weights take the
                model's float dtype).
        """
        from loopkit import constraints, initializers, regularizers

        name, shape, initializer = self.weight_arguments(name, shape, initializer, dtype)
        init = initializers.get(initializer)
        if self.rng is None and callable(getattr(type(self), "call", None)):
            from loopkit._training.traced import is_traced_layer, refuse_own_weights

            if is_traced_layer(self):
                raise refuse_own_weights(self, [name])
        if self.rng is None:  # build() called by hand, as Keras code may
            raise ConfigError(
                f"{type(self).__name__} layer {self.name!r}: build() was called "
                "directly; loopkit builds a layer through setup(), which also gives it "
                "its dtype and random generator. Call layer.setup(sample_shape) (no "
                "batch axis, e.g. (4,)), call the layer on data, or put it in a model."
            )
        value = np.asarray(init(tuple(shape), self.dtype, self.rng), dtype=self.dtype)
        param = Parameter(
            name=name,
            value=value,
            grad=np.zeros_like(value),
            trainable=trainable,
            regularizer=regularizers.get(regularizer),
            constraint=constraints.get(constraint),
        )
        self._parameters.append(param)
        return param

    def weight_arguments(
        self, name: Any, shape: Any, initializer: Any, dtype: Any = None
    ) -> tuple[str, Shape, Any]:
        """Resolve ``add_weight``'s arguments, given loopkit's way or Keras's."""
        if name is not None and not isinstance(name, str):  # Keras: shape first
            name, shape, initializer = (
                None,
                name,
                shape if initializer is None else initializer,
            )
        call = f"Layer {self.name!r} ({type(self).__name__}).add_weight()"
        if shape is None:
            raise ConfigError(f"{call} needs shape=, e.g. add_weight(shape=(4, 2)).")
        if dtype is not None and not np.issubdtype(np.dtype(dtype), np.floating):
            raise ConfigError(
                f"{call} got dtype={dtype!r}; loopkit weights are floats in the model's "
                "dtype. Leave dtype out, or keep integer state in a plain attribute."
            )
        if name is None:
            taken = {p.name for p in self._parameters}
            name, k = "variable", 0
            while name in taken:
                k += 1
                name = f"variable_{k}"
        dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if any(d is None for d in dims):
            raise ShapeError(
                f"{call} asked for weight {name!r} of shape {dims}: its size would "
                "depend on an axis of any length (None) in the layer's input shape "
                f"{self.built_input_shape or 'being built'}, and weights cannot change "
                "with the sequence length. Remove the length before this layer (e.g. "
                "GlobalAveragePooling1D, GlobalMaxPooling1D or an RNN without "
                "return_sequences instead of Flatten), or give the length in "
                "Input(shape=(100, ...))."
            )
        init = "glorot_uniform" if initializer is None else initializer
        return name, tuple(int(d) for d in dims), init

    def apply_constraints(self) -> None:
        """Project each trainable parameter with a constraint onto it, in place.

        Keras applies constraints after every optimizer step; the model calls this
        then. Frozen layers and non-trainable parameters are left alone.
        """
        if not self.trainable:
            return
        for param in self.parameters:
            if param.constraint is not None and param.trainable:
                param.value[...] = param.constraint(param.value)

    @property
    def parameters(self) -> list[Parameter]:
        """Every parameter of the layer, trainable first within creation order.

        A layer written Keras's way has the weights of the layers it holds, in
        Keras's tracking order.
        """
        if self._trace is not None:
            from loopkit._training.traced import traced_parameters

            return traced_parameters(self)
        return list(self._parameters)

    @property
    def input(self) -> Any:
        """The symbolic input of the layer's first call in a graph, as Keras's.

        A list for a call on several tensors. Raises AttributeError before any call.
        """
        from loopkit._training.symbolic import first_call

        node = first_call(self, "input")
        return list(node.inputs) if node.multi_input else node.inputs[0]

    @property
    def output(self) -> Any:
        """The symbolic output of the layer's first call in a graph, as Keras's.

        ``Model(model.inputs, [layer.output for layer in model.layers[1:]])`` extracts
        features. A list for a call with several outputs. Raises AttributeError
        before any call.
        """
        from loopkit._training.symbolic import first_call

        node = first_call(self, "output")
        return list(node.outputs) if node.multi_output else node.outputs[0]

    @property
    def trainable_parameters(self) -> list[Parameter]:
        """Parameters the optimizer updates: none when the layer is frozen."""
        if self._trace is not None:
            from loopkit._training.traced import traced_trainable_parameters

            return traced_trainable_parameters(self)
        if not self.trainable:
            return []
        return [p for p in self._parameters if p.trainable]

    def count_params(self) -> int:
        """Return the number of scalars in the layer's parameters."""
        return sum(p.size for p in self.parameters)

    # --- Keras's weights API ----------------------------------------------------------

    @property
    def weights(self) -> list[Parameter]:
        """Every weight of the layer (Keras's ``layer.weights``); [] before build.

        Inside a built model each ``value`` is a view of the model's flat buffer.
        """
        return self.parameters

    @property
    def trainable_weights(self) -> list[Parameter]:
        """The weights the optimizer updates: none when the layer is frozen."""
        return self.trainable_parameters

    @property
    def non_trainable_weights(self) -> list[Parameter]:
        """The weights the optimizer leaves alone: all of them when frozen."""
        chosen = {id(p) for p in self.trainable_parameters}
        return [p for p in self.parameters if id(p) not in chosen]

    def get_weights(self) -> list[FloatArray]:
        """Return a copy of every weight array, in ``weights`` order; [] before build."""
        return [p.value.copy() for p in self.parameters]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Copy ``weights`` (as from ``get_weights``) into the layer, in place.

        Inside a built model the values land in its flat buffer, so the next
        ``fit``/``predict`` uses them, as in Keras.

        Raises:
            ShapeError: the number of arrays or a shape differs from the layer's
                weights; nothing is changed then.
        """
        params = self.parameters
        call = f"Layer {self.name!r} ({type(self).__name__}).set_weights()"
        if len(weights) != len(params):
            hint = (
                " The layer is not built yet: build it first (use it in a built model, "
                "or call layer.setup(input_shape))."
                if not self.built
                else " Pass the list layer.get_weights() returns."
            )
            raise ShapeError(
                f"{call} got {len(weights)} arrays; the layer has {len(params)} "
                f"weights {[p.name for p in params]}.{hint}"
            )
        arrays = [np.asarray(w) for w in weights]
        for param, array in zip(params, arrays, strict=True):
            if array.shape != param.shape:
                raise ShapeError(
                    f"{call}: weight {param.name!r} has shape {param.shape}, got an "
                    f"array of shape {array.shape}. Pass arrays shaped like "
                    "layer.get_weights()."
                )
        for param, array in zip(params, arrays, strict=True):
            param.value[...] = array

    # --- running --------------------------------------------------------------------

    def buffer(self, key: str, shape: Shape) -> FloatArray:
        """Return a layer-owned array of ``shape``, reused across calls.

        The array grows (once) when a larger batch arrives; smaller batches get a view
        of its leading rows, so steady-state training allocates nothing. A batch of
        another sequence length (an axis built as None) gets the old memory viewed
        in its shape when it fits, so alternating lengths allocate only for the
        longest.
        """
        buf = self._buffers.get(key)
        if buf is None or buf.shape[1:] != shape[1:] or buf.shape[0] < shape[0]:
            buf = self._reshaped_buffer(buf, shape)
            self._buffers[key] = buf
        return buf[: shape[0]] if buf.shape[0] != shape[0] else buf

    def _reshaped_buffer(self, old: FloatArray | None, shape: Shape) -> FloatArray:
        """A C-contiguous array of ``shape`` on ``old``'s memory if it is big enough.

        Every buffer is a view of a flat array (its ``base``), so its memory can be
        viewed in any shape of at most its size.
        """
        size = math.prod(shape)
        flat = None if old is None else old.base
        if flat is None or flat.ndim != 1 or flat.dtype != self.dtype or flat.size < size:
            flat = np.empty(max(size, 1), self.dtype)
        return flat[:size].reshape(shape)

    def add_bias(self, outputs: int) -> Parameter | None:
        """With ``use_bias``, add and return ``bias`` of ``outputs`` entries, else None.

        Reads the layer's ``use_bias`` and ``bias_initializer``/``_regularizer``/
        ``_constraint`` arguments, as every Keras layer with a bias names them.
        """
        arg = functools.partial(getattr, self)
        if not arg("use_bias"):
            return None
        return self.add_weight(
            "bias",
            (outputs,),
            arg("bias_initializer"),
            regularizer=arg("bias_regularizer"),
            constraint=arg("bias_constraint"),
        )

    def check_input(self, x: FloatArray) -> None:
        """Raise ShapeError unless ``x`` is a batch of the shape the layer was built for."""
        if not self.built:
            raise ConfigError(
                f"Layer {self.name!r} is not built; call layer.setup(input_shape) "
                "or use it inside a model, which builds it."
            )
        if tuple(x.shape[1:]) != self.built_input_shape and not shape_fits(
            self.built_input_shape, tuple(x.shape[1:])
        ):
            assert self.built_input_shape is not None  # set by setup, with built
            raise ShapeError(
                f"Layer {self.name!r} ({type(self).__name__}) expects samples of shape "
                f"{self.built_input_shape} (batches of {(None, *self.built_input_shape)}), "
                f"got an array of shape {tuple(x.shape)}. Reshape the input or build "
                "the model for the new shape."
            )

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return the layer's output for the batch ``x``; cache what backward needs.

        A layer written Keras's way runs the graph its ``call()`` recorded (recording
        it now, for the shape of ``x``, if it was never called).
        """
        from loopkit._training.traced import is_traced_layer, traced_forward

        if is_traced_layer(self):
            if self._trace is None:
                shapes: Any = (
                    [tuple(a.shape[1:]) for a in x]
                    if isinstance(x, list)
                    else tuple(x.shape[1:])
                )
                self.setup(shapes)
            return traced_forward(self, x, training)  # type: ignore[no-any-return]
        raise NotImplementedError(self._missing("forward(x, training=False)"))

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Write dL/dparam into each parameter's ``grad``; return dL/dx.

        Called after ``forward`` with ``dy`` = dL/d(output). Returns None when
        ``input_grad_needed`` is False. Skips parameter gradients when frozen.
        """
        if self._trace is not None:
            from loopkit._training.traced import traced_backward

            return traced_backward(self, dy)  # type: ignore[no-any-return]
        raise NotImplementedError(self._missing("backward(dy)"))

    def _missing(self, method: str) -> str:
        """The message for a subclass that lacks ``method``, Keras's ``call`` noted."""
        kind = type(self).__name__
        keras_style = callable(getattr(type(self), "call", None))
        if keras_style and type(self).forward is Layer.forward:
            return (
                f"{kind} defines Keras's call(), which loopkit records when the layer is "
                f"first called (on loopkit.Input(...) tensors or on arrays); {kind} "
                f"{self.name!r} has not been called yet, so it has no {method}. Call "
                "the layer, or put it in a model, first."
            )
        keras = (
            f"{kind} defines Keras's call(), which loopkit does not run: loopkit has no "
            "automatic differentiation, so a layer computes its output in forward() "
            "and its gradients in backward(). "
            if callable(getattr(type(self), "call", None))
            else ""
        )
        return (
            f"{keras}{kind} must implement {method}. Write forward(x, training) "
            "returning the output and backward(dy) writing each parameter's grad and "
            "returning dL/dx; see the loopkit.layers.Layer docstring and Dense in "
            "loopkit/layers/core.py for an example."
        )

    # --- output activation fusion ----------------------------------------------------

    @property
    def output_activation(self) -> ActivationFunction | None:
        """The activation this layer applies last, if any (for loss fusion)."""
        return None

    fuse_output_activation: bool = field(init=False, default=False, repr=False)
    """Set by the model when the loss takes the pre-activation: backward then treats
    ``dy`` as dL/d(pre-activation) and skips the activation's derivative, and forward
    in training may return the pre-activation (the model applies the activation only
    when something reads the predictions)."""

    @property
    def pre_activation(self) -> FloatArray:
        """The last forward's input to ``output_activation`` (logits)."""
        raise NotImplementedError(f"{type(self).__name__} has no output activation")

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments (``model.save`` turns them into JSON).

        A layer written Keras's way that does not override ``get_config`` gets the
        arguments its ``__init__`` was called with, as Keras 3's auto-config does.

        Raises:
            NotImplementedError: such a layer took arguments that are not plain
                data (numbers, strings, lists, dicts): override ``get_config``.
        """
        config = {
            a.alias or a.name: getattr(self, a.name)
            for a in attrs.fields(type(self))
            if a.init and a.name != "input_dim"  # folded into input_shape
        }
        if type(self).get_config is Layer.get_config and "_init_config" in vars(self):
            from loopkit._training.traced import auto_config

            return auto_config(self, config)
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Any:
        """Make a layer from ``get_config()``'s output (new weights), as in Keras.

        Raises:
            ConfigError: the config has a key the constructor does not take.
        """
        from loopkit.validators import construct_from_config

        if "__init__" in vars(cls) and callable(getattr(cls, "call", None)):
            from loopkit._training.traced import from_keras_config

            return from_keras_config(cls, config)  # name= without **kwargs, as Keras
        return construct_from_config(cls, config)


def activation_or_none(identifier: Any) -> ActivationFunction | None:
    """Resolve an ``activation`` argument: None and ``"linear"`` give None (converter)."""
    from loopkit import activations

    fn = activations.get(identifier)
    if fn is not None:
        fn.require_same_shape("A layer")
    return None if fn is None or fn.name == "linear" else fn


@define(eq=False, slots=False)
class ActivatedLayer(Layer):
    """A layer whose output is ``activation(z + bias)``, the loss may fuse with.

    Dense and Conv2D compute ``z``, Activation takes it as its input; this class
    does the rest in one place: the bias and the activation in one pass where the
    activation can (ReLU), their backward, and the logits the model hands a fused
    loss (``fuse_output_activation``). A subclass declares ``activation`` (an
    ActivationFunction or None for linear) and, if it has one, sets ``bias``.
    """

    activation: ActivationFunction | None = field(init=False, default=None)
    bias: Parameter | None = field(init=False, default=None, repr=False)
    _z: FloatArray = field(init=False, repr=False, on_setattr=NO_OP)

    @property
    def output_activation(self) -> ActivationFunction | None:
        return self.activation

    @property
    def pre_activation(self) -> FloatArray:
        return self._z

    def add_kernel_and_bias(
        self, kernel_shape: Shape, outputs: int | None = None
    ) -> Parameter:
        """Add ``kernel`` and, with ``use_bias``, ``bias`` of ``outputs`` entries.

        ``outputs`` defaults to the kernel's last axis (Dense, Conv2D); a transposed
        convolution's kernel keeps its outputs on the third axis. Reads the layer's
        ``kernel_*``/``bias_*`` initializer, regularizer and constraint arguments,
        and ``use_bias``. Returns the kernel.
        """
        arg = functools.partial(getattr, self)
        kernel = self.add_weight(
            "kernel",
            kernel_shape,
            arg("kernel_initializer"),
            regularizer=arg("kernel_regularizer"),
            constraint=arg("kernel_constraint"),
        )
        self.bias = self.add_bias(kernel_shape[-1] if outputs is None else outputs)
        return kernel

    def activate(self, z: FloatArray, training: bool) -> FloatArray:
        """Return ``activation(z + bias)``, adding the bias to ``z`` in place.

        In training with ``fuse_output_activation`` set, return ``z + bias``: the
        loss reads the logits, and the model applies the activation only if a metric
        needs the probabilities (``Network.update_metrics``).
        """
        object.__setattr__(self, "_z", z)  # per step: skips attrs' setattr hook
        bias = None if self.bias is None else self.bias.value
        if self.activation is None or (training and self.fuse_output_activation):
            if bias is not None:
                z += bias
            return z
        y = self.buffer("y", self.activation.output_shape(z.shape))
        if bias is not None:  # one pass for both where the activation can fuse
            return self.activation.forward_with_bias(z, bias, y)
        return self.activation.forward(z, y)

    def backward_activation(self, dy: FloatArray) -> tuple[FloatArray, FloatArray | None]:
        """Return dL/dz and the bias gradient still to write (None if none is).

        Where the activation can, its backward writes the bias gradient in the same
        pass; the second value is then None, else the layer's ``bias.grad`` still to
        fill (None too without a trainable bias).
        """
        bias_grad = self.bias.grad if self.trainable and self.bias is not None else None
        if self.activation is None or self.fuse_output_activation:
            return dy, bias_grad
        y, dz = self._buffers["y"][: len(dy)], self.buffer("dz", self._z.shape)
        if bias_grad is None:
            return self.activation.backward(dy, self._z, y, dz), None
        return self.activation.backward_with_bias_grad(dy, self._z, y, dz, bias_grad), None
