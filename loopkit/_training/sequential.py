"""Sequential: a model that is a plain stack of layers, built from its first batch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attrs import define, field

from loopkit._training.graph import Graph
from loopkit._training.model import Model
from loopkit._training.serialization import layer_config, layer_from_config
from loopkit._training.symbolic import KerasTensor, Node, record_call
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.base import Layer, as_sample_shape, shape_fits
from loopkit.layers.input_layer import InputLayer

__all__ = ["Sequential"]


@define(eq=False, slots=False, init=False)
class Sequential(Model):
    """A linear stack of layers, trained with ``compile`` then ``fit``, as in Keras.

    Every weight lives in one contiguous buffer (``flat_weights``) and every
    gradient in a second (``flat_gradients``); layers see views of them, so an
    optimizer step costs a few vectorized calls however deep the model is.

    Args:
        layers: Layers to stack, first to last; more can be added with ``add``. The
            first may be ``loopkit.Input(shape)`` or an ``InputLayer``, as in Keras.
        name: The model's name, shown by ``summary``.
        dtype: ``"float32"`` (default) or ``"float64"`` for every weight and buffer.
        trainable: False freezes every layer.
    """

    _stack: list[Layer | Model] = field(init=False, factory=list, repr=False)
    _input_layer: InputLayer | None = field(init=False, default=None, repr=False)

    def __init__(
        self,
        layers: Iterable[Any] | None = None,
        name: str = "sequential",
        dtype: Any = "float32",
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self) -> list[Any]:
        """The stacked layers, first to last."""
        return list(self._stack)

    def add(self, layer: Any) -> None:
        """Append ``layer``; build the model now if the input shape is known.

        As in Keras, the first entry may be ``loopkit.Input(shape)`` or an
        ``InputLayer(shape=...)``: it fixes the input shape and is not listed in
        ``layers``.

        Raises:
            TypeError: ``layer`` is not a loopkit Layer, or a tensor not from ``Input``.
            ConfigError: only the first layer may declare an input shape, or the name
                is taken.
        """
        if isinstance(layer, KerasTensor):
            if layer.node is not None or layer.input_layer is None:
                raise TypeError(
                    f"Sequential.add() got the symbolic tensor {layer.name!r}, the "
                    "output of a layer call; a Sequential model takes layers (and "
                    "loopkit.Input(...) first). Use loopkit.Model(inputs, outputs) "
                    "for a graph of layer calls."
                )
            layer = layer.input_layer
        if isinstance(layer, InputLayer):
            self._add_input_layer(layer)
            return
        if not isinstance(layer, Layer) and not isinstance(layer, Model):
            raise TypeError(
                f"Sequential.add() got {layer!r} of type {type(layer).__name__}; expected "
                "a loopkit layer such as loopkit.layers.Dense(10)."
            )
        if (
            getattr(layer, "input_shape", None) is not None
            and self._stack
            and isinstance(layer, Layer)
        ):
            raise ConfigError(
                f"Sequential.add(): layer {type(layer).__name__} got input_shape="
                f"{layer.input_shape}, but only the first layer may declare one."
            )
        taken = {lay.name for lay in self._stack}
        if layer.name is None:
            stem, n = layer.default_name, 0
            layer.name = stem
            while layer.name in taken:
                n += 1
                layer.name = f"{stem}_{n}"
        elif layer.name in taken:
            raise ConfigError(
                f"Sequential.add(): a layer named {layer.name!r} is already in model "
                f"{self.name!r}; layer names must be unique. Pass another name=."
            )
        self._stack.append(layer)
        if self.built:  # extend the built stack: existing weights are kept
            assert self.output_shape is not None
            self.output_shape = _setup(layer, self.output_shape, self)
            self._chain()
            self._pack()
        elif len(self._stack) == 1:
            shape = self._declared_input_shape(layer)
            if shape is not None:
                self.build((None, *shape))

    def _add_input_layer(self, layer: InputLayer) -> None:
        if self._stack or self._input_layer is not None:
            where = (
                f"has an input layer of shape {self._input_layer.shape}"
                if self._input_layer is not None
                else f"already has {len(self._stack)} layers"
            )
            raise ConfigError(
                f"Sequential.add() got InputLayer {layer.name!r} of shape "
                f"{layer.shape}, but model {self.name!r} {where}; an input may only "
                "come first. Pass it first: Sequential([loopkit.Input(shape), ...])."
            )
        self._input_layer = layer

    def _declared_input_shape(self, first: Any) -> Any:
        """The sample shape from the InputLayer or the first layer's input_shape."""
        declared = getattr(first, "input_shape", None)
        if self._input_layer is None:
            return declared
        shape = self._input_layer.shape
        if declared is not None and tuple(declared) != shape:
            raise ConfigError(
                f"Sequential {self.name!r}: layer {first.name!r} got input_shape="
                f"{tuple(declared)}, but the model's input has shape {shape}. Drop "
                "input_shape= from the layer: the input fixes it."
            )
        return shape

    def pop(self) -> Layer | Model:
        """Remove and return the last layer (its weights leave the model).

        Raises:
            ConfigError: the model has no layers.
        """
        if not self._stack:
            raise ConfigError(
                f"Sequential {self.name!r}.pop(): there is no layer to remove."
            )
        layer = self._stack.pop()
        if self.built:
            if self._stack:
                last = self._stack[-1]
                assert last.built_input_shape is not None
                self.output_shape = last.compute_output_shape(last.built_input_shape)
                self._chain()
                self._pack()
            else:
                self.graph, self._flat = None, None
                self.input_shape = self.output_shape = None
        return layer

    def build(self, input_shape: Sequence[int | None] | None = None) -> None:
        """Create every layer's weights for inputs of ``input_shape`` (batch axis first).

        Args:
            input_shape: E.g. ``(None, 784)``, as in Keras; the batch size is ignored.
                None (as Keras allows) uses the ``Input`` or the first layer's
                ``input_shape=``; a model built already is left as it is.
        """
        if not self._stack:
            raise ConfigError(
                f"Sequential {self.name!r} has no layers to build; add some with "
                "model.add(layer) or Sequential([...])."
            )
        if input_shape is None:
            if self.built:
                return
            declared = self._declared_input_shape(self._stack[0])
            if declared is None:
                raise ConfigError(
                    f"Sequential {self.name!r}.build() got no input_shape, and the model "
                    "has no Input and no input_shape= on its first layer to take it "
                    "from. Pass the shape with the batch axis first, e.g. "
                    "model.build((None, 784)), or start with loopkit.Input((784,))."
                )
            input_shape = (None, *declared)
        shape = as_sample_shape(tuple(input_shape)[1:])
        if any(d is not None and d <= 0 for d in shape):
            raise ShapeError(
                f"Sequential.build() got input_shape={tuple(input_shape)}; every axis "
                "after the batch axis must be a positive size, or None for any length."
            )
        self.input_shape = shape
        for layer in self._stack:
            shape = _setup(layer, shape, self)
        self.output_shape = shape
        self._chain()
        self._pack()

    def setup(self, input_shape: Any, dtype: Any = None, rng: Any = None) -> Any:
        """Build from the first call on a tensor, as Keras builds a nested Sequential.

        ``Sequential([Dense(32), Dense(8)])(x)`` in a functional graph, or a model
        without an input shape stacked in another Sequential, takes its input shape
        from ``x``; a model built already checks the shape instead.
        """
        if not self.built and self._stack and not isinstance(input_shape, list):
            self.build((None, *input_shape))
        return super().setup(input_shape, dtype, rng)

    def get_config(self) -> dict[str, Any]:
        """Return the architecture as plain data (``from_config`` rebuilds it)."""
        shape = self.input_shape
        if shape is None and self._input_layer is not None:  # Input given, no layers yet
            shape = self._input_layer.shape
        return {
            "name": self.name,
            "dtype": str(self.dtype),
            "trainable": self.trainable,
            "input_shape": None if shape is None else list(shape),
            "layers": [layer_config(layer) for layer in self._stack],
        }

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], custom_objects: Mapping[str, Any] | None = None
    ) -> Sequential:
        """Rebuild (and build, when the input shape is known) from ``get_config()``.

        Raises:
            ConfigError: an unknown layer class; pass it in ``custom_objects``.
        """
        layers = [layer_from_config(entry, custom_objects) for entry in config["layers"]]
        model = cls(
            layers,
            name=config.get("name", "sequential"),
            dtype=config.get("dtype", "float32"),
            trainable=bool(config.get("trainable", True)),
        )
        shape = config.get("input_shape")
        if not model.built and shape is not None:
            if model.layers:
                model.build((None, *shape))
            else:  # an input and no layers yet: the next add builds
                model.add(InputLayer(shape=shape))
        return model

    def _chain(self) -> None:
        """Make the graph of the stack: each layer called on the previous one's output."""
        assert self.input_shape is not None
        entry = self._input_layer
        if entry is None or entry.shape != tuple(self.input_shape):
            entry = InputLayer(shape=tuple(self.input_shape), name="input_layer")
        # an input tensor like Input()'s: Model(seq.inputs, [l.output ...]) works
        tensor = KerasTensor((None, *self.input_shape), name=entry.name, input_layer=entry)
        first, nodes = tensor, []
        for layer in self._stack:
            node = Node(layer, [tensor])
            assert layer.built_input_shape is not None
            shape = layer.compute_output_shape(layer.built_input_shape)
            node.output = KerasTensor((None, *shape), name=layer.name, node=node)
            record_call(node, replace=True)  # the stack's graph: its layers' inputs
            nodes.append(node)
            tensor = node.output
        self.graph = Graph([first], [tensor], nodes)


def _setup(layer: Any, shape: Any, model: Sequential) -> Any:
    """Build ``layer`` for ``shape`` with the model's dtype and generator."""
    if isinstance(layer, Model):
        if isinstance(layer, Sequential) and not layer.built and layer.layers:
            layer.build((None, *shape))  # a nested stack without an input shape
        if layer.input_shape is None or not shape_fits(layer.input_shape, tuple(shape)):
            raise ShapeError(
                f"Sequential {model.name!r}: the nested model {layer.name!r} takes "
                f"samples of shape {layer.input_shape}, but gets {tuple(shape)}."
            )
        assert layer.output_shape is not None
        return layer.output_shape
    out = layer.setup(shape, model.dtype, model.rng)
    if isinstance(out, list):
        raise ConfigError(
            f"Sequential {model.name!r}: layer {layer.name!r} ({type(layer).__name__}) "
            f"returns {len(out)} outputs; a Sequential model carries one array from layer "
            "to layer. Build the model with the functional API (loopkit.Model(inputs, "
            "outputs)), or drop the setting that adds outputs (return_state=True, "
            "merge_mode=None)."
        )
    return out
