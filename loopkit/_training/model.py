"""Model: a graph of layers from inputs to outputs, trained as in Keras."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from attrs import define, field

from loopkit._data.datasets import (
    as_array,
)
from loopkit._naming import snake_case
from loopkit._training.functional import build_graph, convert_layer
from loopkit._training.graph import Graph, share_layer
from loopkit._training.serialization import (
    functional_config,
    functional_from_config,
    jsonable,
)
from loopkit._training.symbolic import call_layer, unique_name
from loopkit._training.trainer import Trainer
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.base import shape_fits
from loopkit.validators import suggest

__all__ = ["Model"]


@define(eq=False, slots=False, init=False)
class Model(Trainer):
    """A graph of layers from ``inputs`` to ``outputs``, trained as in Keras.

    Build it with the functional API: ``x = loopkit.Input(shape=(784,))``, call
    layers on tensors (``h = Dense(64, activation="relu")(x)``), then
    ``Model(inputs=x, outputs=Dense(10)(h))``. ``inputs`` and ``outputs`` may be one
    tensor, a list, or a dict keyed by name; data is then passed the same way. Every
    weight lives in one contiguous buffer (``flat_weights``) and every gradient in a
    second (``flat_gradients``), so an optimizer step costs a few vectorized calls.

    Args:
        inputs: The ``loopkit.Input`` tensor(s) the model takes.
        outputs: The tensor(s) it returns, computed from ``inputs`` by layer calls.
        name: The model's name, shown by ``summary``.
        dtype: ``"float32"`` (default) or ``"float64"`` for every weight and buffer.
        trainable: False freezes every layer.

    Raises:
        ConfigError: an output not computed from the inputs, or two layers with one
            name; TypeError: something other than tensors.
    """

    _checked_targets: tuple[Any, ...] | None = field(init=False, default=None, repr=False)

    def __init__(
        self,
        inputs: Any = None,
        outputs: Any = None,
        name: str | None = None,
        dtype: Any = "float32",
        trainable: bool = True,
    ) -> None:
        if name is None:
            name = unique_name(snake_case(type(self).__name__, split_after_digit=False))
            name = name.replace("model", "functional", 1) if type(self) is Model else name
        self.__attrs_init__(name=name, dtype=dtype, trainable=trainable)
        if inputs is None and outputs is None and type(self) is not Model:
            return  # a subclass (Model) makes its own graph
        self._init_graph(inputs, outputs)

    def _init_graph(self, inputs: Any, outputs: Any) -> None:
        call = f"Model(name={self.name!r})"
        if inputs is None or outputs is None:
            raise ConfigError(
                f"{call} needs inputs= and outputs=: build them with the functional API, "
                "e.g. x = loopkit.Input(shape=(4,)); y = Dense(1)(x); Model(x, y)."
            )
        self._input_keys = list(inputs) if isinstance(inputs, Mapping) else None
        self._output_keys = list(outputs) if isinstance(outputs, Mapping) else None
        self.graph = build_graph(inputs, outputs, call)
        ins = self.graph.inputs
        self.input_shape = ins[0].sample_shape if len(ins) == 1 else None
        outs = self.graph.outputs
        self.output_shape = outs[0].sample_shape if len(outs) == 1 else None
        for layer in self.layers:
            if layer.dtype != self.dtype:
                convert_layer(layer, self.dtype)
        self._pack()

    @property
    def layers(self) -> list[Any]:
        """The model's layers with its InputLayers, in Keras's order (by depth)."""
        if self.graph is None:
            return []
        return list(self.graph.ordered_layers)

    # --- a model is a layer of the models it is called in --------------------------------

    @property
    def default_name(self) -> str:
        """The name stem used when the model is nested without a name."""
        return snake_case(type(self).__name__, split_after_digit=False)

    @property
    def multi_input(self) -> bool:
        """Whether the model takes several inputs (it is then called on a list)."""
        return len(self.inputs) > 1

    @property
    def built_input_shape(self) -> Any:
        """The sample shape(s) the model takes, as a layer's ``built_input_shape``."""
        shapes = [t.sample_shape for t in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def setup(self, input_shape: Any, dtype: Any = None, rng: Any = None) -> Any:
        """Check a nested call's input shape(s); return the output shape."""
        if not self.built or not shape_fits(self.built_input_shape, input_shape):
            raise ShapeError(
                f"Model {self.name!r} takes inputs of shape {self.built_input_shape} and "
                f"was called on {input_shape}."
            )
        return self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        """The sample shape of the (single) output, for inputs of ``input_shape``.

        A model built for any length (None) and called on a known length gives the
        output for that length, as Keras does.
        """
        if len(self.outputs) != 1:
            raise ConfigError(
                f"Model {self.name!r} has {len(self.outputs)} outputs; a model nested in "
                "another must have one output. Call its layers on the tensors instead."
            )
        if input_shape == self.built_input_shape:
            return self.outputs[0].sample_shape
        return self._output_shapes_for(input_shape)[0]

    def _output_shapes_for(self, input_shape: Any) -> list[Any]:
        """Run shape inference over the graph for inputs of ``input_shape``."""
        assert self.graph is not None
        given = input_shape if isinstance(input_shape, list) else [input_shape]
        return self.graph.output_shapes(given)

    @property
    def parameters(self) -> list[Any]:
        """Every weight of the model's layers, in layer order."""
        return [p for layer in self.layers for p in layer.parameters]

    @property
    def trainable_parameters(self) -> list[Any]:
        """The weights an optimizer updates: none when the model is frozen."""
        if not self.trainable:
            return []
        return [p for layer in self.layers for p in layer.trainable_parameters]

    @property
    def output_activation(self) -> Any:
        """A nested model's output activation is never fused with the outer loss."""
        return None

    def clone_for_sharing(self) -> tuple[Any, list[tuple[Any, Any]]]:
        """A copy for a second call in one graph: shared weights, own buffers."""
        assert self.graph is not None
        clone = copy.copy(self)
        graph = Graph(self.graph.inputs, self.graph.outputs, self.graph.nodes)
        pairs: list[tuple[Any, Any]] = []
        for i, runner in enumerate(self.graph.runners):
            graph.runners[i], twins = share_layer(runner)
            pairs.extend(twins)
        graph.output_runners = [
            graph.runners[self.graph.runners.index(r)] if r is not None else None
            for r in self.graph.output_runners
        ]
        clone.graph = graph
        clone._outputs = []
        return clone, pairs

    # --- one batch, no plugins: cheap enough for a custom loop ---------------------------

    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: Mapping[int, float] | None = None,
        return_dict: bool = False,
    ) -> Any:
        """Run one training step on one batch; return its loss (and metrics).

        Runs no plugin: it is the building block of custom loops. The metrics returned
        are those of this batch alone (Keras 3 returns running means since the last
        ``reset_metrics()``, which hides what the batch did).
        """
        call = "train_on_batch()"
        self._check_compiled(call)
        xb, yb, wb = self._batch(x, y, sample_weight, class_weight, call)
        if isinstance(yb, np.ndarray):
            key = (id(self.loss), yb.shape[1:], yb.dtype.str)
            if key != self._checked_targets:  # once per target shape: keeps the loop cheap
                self.check_targets(xb, yb, call)
                self._checked_targets = key
        self.reset_metrics()
        loss = self.compute_gradients(xb, yb, wb)
        self.apply_gradients()
        self.update_metrics(yb, wb)
        self.state.global_step += 1
        return self._batch_result(loss, return_dict)

    def _batch_result(self, loss: float, return_dict: bool) -> Any:
        logs = {"loss": float(loss)}
        if len(self.heads) > 1:
            logs.update(zip(self.loss_term_names, self.loss_terms, strict=True))
        for metric in self.metrics:
            logs[metric.name] = float(metric.result())
        return self._keras_result(logs, return_dict)

    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> Any:
        """Return the loss (and metrics) of one batch, without training."""
        call = "test_on_batch()"
        self._check_compiled(call)
        xb, yb, wb = self._batch(x, y, sample_weight, None, call)
        self.reset_metrics()
        self.forward(xb, training=False)
        loss = self.test_loss(yb, wb)
        self.update_metrics(yb, wb)
        return self._batch_result(loss, return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        """Return the outputs for one batch (new arrays, shaped like ``outputs``)."""
        call = "predict_on_batch()"
        if len(self.inputs) > 1 or self._input_keys is not None:
            xs = self._inputs_dataset(x, None, None, call).xs
            out = self.forward(xs, training=False)
        else:
            if type(x) is not np.ndarray or x.dtype != self.dtype:
                x = as_array(x, self.dtype, "x", call)
            if not self.built or x.shape[1:] != self.input_shape:
                self.ensure_built(x)
                self.check_inputs(x, call)
            out = self.forward(x, training=False)
        outs = [out] if isinstance(out, np.ndarray) else out
        return self._structure_outputs([o.copy() for o in outs])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the model as a layer: on symbolic tensors (nesting) or on arrays."""
        return call_layer(self, args, kwargs)

    def call_eagerly(self, inputs: Any, training: bool, mask: Any = None) -> Any:
        """``model(x)`` on arrays: the outputs for ``x`` (training mode if asked).

        A mask passed in is not used: the model makes its own from the data.
        """
        if not training:
            return self.predict_on_batch(inputs)
        out = self.forward(inputs, training=True)
        outs = [out] if isinstance(out, np.ndarray) else out
        return self._structure_outputs([o.copy() for o in outs])

    def get_config(self) -> dict[str, Any]:
        """Return the architecture as plain data (``Model.from_config`` rebuilds it)."""
        return functional_config(self)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], custom_objects: Mapping[str, Any] | None = None
    ) -> Model:
        """Rebuild a model from ``get_config()``'s output, with fresh weights.

        Raises:
            ConfigError: an unknown layer class; pass it in ``custom_objects``.
        """
        return functional_from_config(cls, config, custom_objects)

    def to_json(self, **kwargs: Any) -> str:
        """Return ``{"class_name", "config"}`` of the architecture as a JSON string."""
        return json.dumps(
            jsonable({"class_name": type(self).__name__, "config": self.get_config()}),
            **kwargs,
        )

    def get_layer(self, name: str | None = None, index: int | None = None) -> Any:
        """Return the layer called ``name`` or at position ``index``, as in Keras.

        Raises:
            ValueError: no such layer, or neither or both arguments given.
        """
        if (name is None) == (index is None):
            raise ConfigError(
                f"get_layer(name={name!r}, index={index!r}): pass exactly one of name= "
                "or index=."
            )
        layers = self.layers
        if index is not None:
            if not -len(layers) <= index < len(layers):
                raise ConfigError(
                    f"get_layer(index={index}): the model has {len(layers)} layers; pass "
                    f"an index from 0 to {len(layers) - 1}."
                )
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        names = [layer.name for layer in layers]
        raise ConfigError(
            f"get_layer(name={name!r}): model {self.name!r} has no such layer."
            f"{suggest(str(name), names)} Its layers: {names}."
        )

    # --- saving -----------------------------------------------------------------------

    def save(self, filepath: str) -> None:
        """Write architecture, weights, compile config and optimizer state; no pickle."""
        from loopkit.saving.model_files import save_model

        save_model(self, filepath)  # type: ignore[arg-type]
