"""Network: a stack of layers over one flat parameter buffer, with its loss and one step."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from attrs import define, field

from loopkit import losses as _losses
from loopkit import metrics as _metrics
from loopkit import optimizers as _optimizers
from loopkit._training.flat_parameters import FlatParameters
from loopkit._training.loop_state import LoopState
from loopkit._training.summary import format_summary
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.base import Layer, Parameter
from loopkit.random import new_generator
from loopkit.typing import Array, FloatArray, Shape

if TYPE_CHECKING:
    from loopkit.losses import Loss
    from loopkit.metrics import Metric
    from loopkit.optimizers import Optimizer

__all__ = ["Network"]

_DTYPES = ("float32", "float64")


def _as_dtype(value: Any) -> np.dtype[Any]:
    dtype: np.dtype[Any] | None
    try:
        dtype = np.dtype(value)
    except TypeError:
        dtype = None
    if dtype is None or str(dtype) not in _DTYPES:
        shown = str(dtype) if dtype is not None else value
        raise ConfigError(
            f"Sequential(dtype={shown!r}): expected one of {list(_DTYPES)}; float32 is "
            "the default, float64 is for gradient checks."
        )
    return dtype


@define(eq=False, slots=False)
class Network:
    """A linear stack of layers: building, weights, compiling, and one step in parts.

    Every parameter of the model lives in one contiguous buffer (``flat_weights``) and
    every gradient in a second (``flat_gradients``); layers see views of them, so an
    optimizer step costs a few vectorized calls however deep the model is.

    Args:
        layers: Layers to stack, first to last; more can be added with ``add``.
        name: The model's name, shown by ``summary``.
        dtype: ``"float32"`` (default) or ``"float64"`` for every weight and buffer.
    """

    layers: list[Layer] = field(factory=list, converter=list)
    name: str = "sequential"
    dtype: np.dtype[Any] = field(default="float32", converter=_as_dtype)
    rng: np.random.Generator = field(init=False, factory=new_generator, repr=False)
    """Draws initial weights and dropout masks; its state is saved with checkpoints."""
    shuffle_seed: int = field(init=False, repr=False)
    """With the epoch index, fixes each epoch's sample order (data.epoch_permutation)."""
    state: LoopState = field(init=False, factory=LoopState, repr=False)
    """The loop counters, kept across fit calls and passed to every hook."""
    stop_training: bool = field(init=False, default=False, repr=False)
    """Set True (from a plugin) to end ``fit`` after the current batch, as in Keras."""
    optimizer: Optimizer | None = field(init=False, default=None, repr=False)
    loss: Loss | None = field(init=False, default=None, repr=False)
    loss_weight: float = field(init=False, default=1.0, repr=False)
    metrics: list[Metric] = field(init=False, factory=list, repr=False)
    input_shape: Shape | None = field(init=False, default=None, repr=False)
    output_shape: Shape | None = field(init=False, default=None, repr=False)
    _flat: FlatParameters | None = field(init=False, default=None, repr=False)
    _metric_identifiers: list[Any] = field(init=False, factory=list, repr=False)
    _trainable_key: tuple[bool, ...] | None = field(init=False, default=None, repr=False)
    _trainable_spans: list[slice] = field(init=False, factory=list, repr=False)
    _regularized: list[Parameter] = field(init=False, factory=list, repr=False)
    _fused_output: bool = field(init=False, default=False, repr=False)
    _output: FloatArray | None = field(init=False, default=None, repr=False)
    _output_is_logits: bool = field(init=False, default=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.shuffle_seed = int(self.rng.integers(2**63 - 1))
        layers, self.layers = self.layers, []
        for layer in layers:
            self.add(layer)

    # --- building ---------------------------------------------------------------------

    def add(self, layer: Layer) -> None:
        """Append ``layer``; build the model now if the first layer knows its input shape.

        Raises:
            TypeError: ``layer`` is not a loopkit Layer.
            ConfigError: the model is already built, or the name is taken.
        """
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Sequential.add() got {layer!r} of type {type(layer).__name__}; expected "
                "a loopkit layer such as loopkit.layers.Dense(10)."
            )
        if layer.input_shape is not None and self.layers:
            raise ConfigError(
                f"Sequential.add(): layer {type(layer).__name__} got input_shape="
                f"{layer.input_shape}, but only the first layer may declare one."
            )
        taken = {lay.name for lay in self.layers}
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
        self.layers.append(layer)
        if self.built:  # extend the built stack: existing weights are kept
            assert self.output_shape is not None
            self.output_shape = layer.setup(self.output_shape, self.dtype, self.rng)
            self._pack()
        elif len(self.layers) == 1 and layer.input_shape is not None:
            self.build((None, *layer.input_shape))

    @property
    def built(self) -> bool:
        """Whether weights exist (after ``build``, or the first batch seen)."""
        return self._flat is not None

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Create every layer's weights for inputs of ``input_shape`` (batch axis first).

        Args:
            input_shape: E.g. ``(None, 784)``, as in Keras; the batch size is ignored.
        """
        if not self.layers:
            raise ConfigError(
                f"Sequential {self.name!r} has no layers to build; add some with "
                "model.add(layer) or Sequential([...])."
            )
        shape = tuple(int(d) for d in tuple(input_shape)[1:])  # type: ignore[arg-type]
        if any(d <= 0 for d in shape):
            raise ShapeError(
                f"Sequential.build() got input_shape={tuple(input_shape)}; every axis "
                "after the batch axis must be a positive size."
            )
        self.input_shape = shape
        for layer in self.layers:
            shape = layer.setup(shape, self.dtype, self.rng)
        self.output_shape = shape
        self._pack()

    def _pack(self) -> None:
        """Move every parameter into fresh flat buffers (values are copied over)."""
        params = [p for layer in self.layers for p in layer.parameters]
        self._flat = FlatParameters.pack(params, self.dtype)
        self._regularized = [p for p in params if p.regularizer is not None]
        self._trainable_key = None
        if self.optimizer is not None:
            self._resolve_compiled()

    def ensure_built(self, x: Array) -> None:
        """Build from the shape of the batch ``x`` if the model is not built yet."""
        if self._flat is None:
            self.build(np.shape(x))

    # --- parameters ---------------------------------------------------------------------

    @property
    def _flat_or_raise(self) -> FlatParameters:
        if self._flat is None:
            raise ConfigError(
                f"Model {self.name!r} has no weights yet: give the first layer "
                "input_shape=, call model.build((None, *sample_shape)), or fit it first."
            )
        return self._flat

    @property
    def flat_weights(self) -> FloatArray:
        """Every weight, in layer order, as one 1-D array (writes reach the layers)."""
        return self._flat_or_raise.values

    @property
    def flat_gradients(self) -> FloatArray:
        """Every gradient, at the same offsets as ``flat_weights``."""
        return self._flat_or_raise.grads

    @property
    def weights(self) -> list[Parameter]:
        """Every parameter, in layer order (Keras's ``model.weights``)."""
        return list(self._flat_or_raise.parameters)

    @property
    def trainable_weights(self) -> list[Parameter]:
        """Parameters the optimizer updates: trainable ones of unfrozen layers."""
        return [p for layer in self.layers for p in layer.trainable_parameters]

    @property
    def non_trainable_weights(self) -> list[Parameter]:
        """Parameters the optimizer never updates."""
        trainable = {id(p) for p in self.trainable_weights}
        return [p for p in self.weights if id(p) not in trainable]

    @property
    def trainable_spans(self) -> list[slice]:
        """Slices of ``flat_weights`` the optimizer updates, merged where adjacent.

        Recomputed when a layer's ``trainable`` flag changes; plugins that act on
        gradients (clipping, accumulation) touch only these.
        """
        key = tuple(layer.trainable for layer in self.layers)
        if key != self._trainable_key:
            self._refresh_trainable(key)
        return self._trainable_spans

    def _refresh_trainable(self, key: tuple[bool, ...]) -> None:
        flat = self._flat_or_raise
        self._trainable_key = key
        trainable = self.trainable_weights
        self._trainable_spans = flat.spans_of(trainable)
        seen_trainable = False
        for layer in self.layers:  # dL/dx is needed only above a trainable layer
            layer.input_grad_needed = seen_trainable
            seen_trainable = seen_trainable or bool(layer.trainable_parameters)
        if self.optimizer is not None:
            chosen = {id(p) for p in trainable}
            per_param = [
                s
                for p, s in zip(flat.parameters, flat.slices, strict=True)
                if id(p) in chosen
            ]
            self.optimizer.build(flat.values.size, self.dtype, per_param)

    def count_params(self) -> int:
        """Return the number of scalars in every weight."""
        return int(self.flat_weights.size)

    def get_weights(self) -> list[FloatArray]:
        """Return a copy of every weight array, in layer order."""
        return [p.value.copy() for p in self.weights]

    def set_weights(self, weights: Sequence[Array]) -> None:
        """Copy ``weights`` (as from ``get_weights``) into the model.

        Raises:
            ShapeError: the count or a shape differs; names the layer and both shapes.
        """
        params = self.weights
        if len(weights) != len(params):
            raise ShapeError(
                f"set_weights() got {len(weights)} arrays; model {self.name!r} has "
                f"{len(params)} weights. Pass the list model.get_weights() returns."
            )
        owners = {id(p): layer.name for layer in self.layers for p in layer.parameters}
        arrays = [np.asarray(w) for w in weights]
        for param, array in zip(params, arrays, strict=True):
            if array.shape != param.shape:
                raise ShapeError(
                    f"set_weights(): weight {param.name!r} of layer {owners[id(param)]!r} "
                    f"has shape {param.shape}, got an array of shape {array.shape}."
                )
        for param, array in zip(params, arrays, strict=True):
            param.value[...] = array

    def save_weights(self, filepath: str) -> None:
        """Write every weight to ``filepath`` (``.weights.npz``, no pickle), atomically."""
        from loopkit.saving.weights import save_weights

        save_weights(self, filepath)

    def load_weights(self, filepath: str) -> None:
        """Read weights written by ``save_weights``; check every name and shape first.

        Raises:
            CheckpointError: the file is missing, not a weights file, or does not fit
                this model; nothing is changed then.
        """
        from loopkit.saving.weights import load_weights

        load_weights(self, filepath)

    def summary(self, print_fn: Callable[[str], Any] | None = None) -> None:
        """Print the Keras-style table: layer, output shape, parameter count, totals."""
        (print_fn or print)(format_summary(self))

    # --- compiling ------------------------------------------------------------------------

    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Iterable[Any] | None = None,
        loss_weights: float | Sequence[float] | None = None,
    ) -> None:
        """Choose the optimizer, loss and metrics (names or objects), as in Keras.

        Args:
            optimizer: Optimizer name (``"adam"``) or object.
            loss: Loss name (``"binary_crossentropy"``) or object; needed to ``fit``.
            metrics: Metric names or objects; ``"accuracy"`` resolves from the loss.
            loss_weights: A scalar (or a one-element list) multiplying the loss.

        Raises:
            ConfigError: an unknown name, listing the valid ones.
        """
        if isinstance(metrics, (str, bytes)):
            raise TypeError(
                f"compile() got metrics={metrics!r}; expected a list such as "
                f"metrics=[{metrics!r}]."
            )
        # Resolve and check everything before changing anything: a failed compile
        # leaves the model (and its optimizer's state) as it was.
        new_optimizer = _optimizers.get(optimizer)
        new_loss = _losses.get(loss) if loss is not None else None
        identifiers = list(metrics or [])
        loss_weight = _scalar_loss_weight(loss_weights)
        self._resolve_metrics(identifiers, new_loss)  # unknown or repeated names raise
        self.optimizer, self.loss, self.loss_weight = new_optimizer, new_loss, loss_weight
        self._metric_identifiers = identifiers
        self.metrics = []
        if self.built:
            self._resolve_compiled()

    def _resolve_metrics(self, identifiers: list[Any], loss: Loss | None) -> list[Metric]:
        """Return the metrics ``identifiers`` name; ConfigError on unknown or repeated keys.

        Before the model is built ``"accuracy"`` resolves without the output shape;
        ``_resolve_compiled`` resolves again once it is known.
        """
        resolved = [
            _metrics.get(m, loss=loss, output_shape=self.output_shape) for m in identifiers
        ]
        names = [m.name for m in resolved]
        duplicates = sorted(
            {n for n in names if names.count(n) > 1} | ({"loss"} & set(names))
        )
        if duplicates:
            raise ConfigError(
                f"compile(metrics={identifiers!r}) logs the key(s) {duplicates} twice "
                "(or as 'loss'); give each metric a distinct name."
            )
        return resolved

    def _resolve_compiled(self) -> None:
        """Resolve metrics against the output shape, fuse the loss, build the optimizer."""
        assert self.output_shape is not None
        self.metrics = self._resolve_metrics(self._metric_identifiers, self.loss)
        for layer in self.layers[:-1]:
            layer.fuse_output_activation = False
        last = self.layers[-1]
        activation = last.output_activation
        fuses_with = getattr(self.loss, "fuses_with", None)
        self._fused_output = bool(
            activation is not None
            and fuses_with is not None
            and activation.name == fuses_with
            and getattr(activation, "axis", -1) == -1  # the fused losses use the last axis
        )
        last.fuse_output_activation = self._fused_output
        self._trainable_key = None  # rebuilds the optimizer over the trainable spans

    @property
    def compiled(self) -> bool:
        """Whether ``compile`` has been called."""
        return self.optimizer is not None

    # --- one step, in parts the loop interleaves with hooks ------------------------------

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Run every layer on the batch ``x``; return a view valid until the next call."""
        for layer in self.layers:
            x = layer.forward(x, training)
        self._output = x
        # With a fused loss, training returns logits: probabilities are made on demand.
        self._output_is_logits = training and self._fused_output
        return x

    def loss_and_output_gradient(
        self, y: Array, sample_weight: FloatArray | None
    ) -> tuple[float, FloatArray]:
        """Return the loss of the last ``forward`` and dL/d(last layer output).

        When the last activation is fused with its cross-entropy, the gradient is
        with respect to the pre-activation (logits) and taken from them stably.
        """
        assert self.loss is not None and self._output is not None
        if self._fused_output:
            logits = self.layers[-1].pre_activation
            value, grad = self.loss.value_and_grad_from_logits(y, logits, sample_weight)
        else:
            value, grad = self.loss.value_and_grad(y, self._output, sample_weight)
        if self.loss_weight != 1.0:
            value, grad = value * self.loss_weight, grad * self.loss_weight
        return value, grad

    def backward(self, output_gradient: FloatArray) -> None:
        """Backpropagate ``output_gradient``; overwrite every trainable gradient."""
        dy: FloatArray | None = output_gradient
        for layer in reversed(self.layers):
            if dy is None:
                break
            dy = layer.backward(dy)

    def check_targets(self, x: Array, y: Array, call: str) -> None:
        """Raise ShapeError now if the targets ``y`` do not fit the model's output.

        Runs the model and the loss on the first sample at inference, which changes
        no state (no batch-norm statistic moves, no dropout mask is drawn): bad
        targets then fail before the first training step, not after its forward pass.

        Args:
            x: Inputs (at least one sample); only ``x[:1]`` is used.
            y: Targets of the same samples; only ``y[:1]`` is used.
            call: The user's call, for the message.
        """
        if self.loss is None or len(y) == 0:
            return
        self.forward(np.asarray(x[:1], self.dtype), training=False)
        try:
            self.test_loss(y[:1], None)
        except ShapeError as err:
            assert self.output_shape is not None
            raise ShapeError(
                f"{call} got y of shape {tuple(np.shape(y))}, which does not fit the "
                f"model's output of shape {(None, *self.output_shape)} under loss "
                f"{self.loss.name!r}. Pass targets shaped like the output, or integer "
                "class ids of shape (n,) for a sparse loss."
            ) from err

    def regularization_loss(self, add_gradients: bool) -> float:
        """Return the sum of every kernel penalty; optionally add their gradients."""
        total = 0.0
        for param in self._regularized:
            assert param.regularizer is not None
            total += float(param.regularizer.penalty(param.value))
            if add_gradients:
                param.regularizer.add_gradient(param.value, param.grad)
        return total

    def compute_gradients(
        self, x: FloatArray, y: Array, sample_weight: FloatArray | None = None
    ) -> float:
        """Forward, loss and backward for one batch; return the loss (with penalties).

        Afterwards ``flat_gradients`` holds dL/dweights for the batch.
        """
        self.trainable_spans  # noqa: B018 - refresh frozen-layer flags before backward
        self.forward(x, training=True)
        value, grad = self.loss_and_output_gradient(y, sample_weight)
        self.backward(grad)
        if self._regularized:
            value += self.regularization_loss(add_gradients=True)
        return value

    def apply_gradients(self) -> None:
        """Take one optimizer step with ``flat_gradients`` on the trainable spans."""
        assert self.optimizer is not None
        self.trainable_spans  # noqa: B018 - rebuilds the optimizer if flags changed
        self.optimizer.apply(self.flat_weights, self.flat_gradients)

    def test_loss(self, y: Array, sample_weight: FloatArray | None) -> float:
        """Return the loss of the last ``forward`` (with penalties), without backward."""
        value, _ = self.loss_and_output_gradient(y, sample_weight)
        if self._regularized:
            value += self.regularization_loss(add_gradients=False)
        return value

    def update_metrics(self, y: Array, sample_weight: FloatArray | None) -> None:
        """Add the last ``forward``'s predictions to every compiled metric."""
        assert self._output is not None
        if not self.metrics:
            return
        if self._output_is_logits:
            last = self.layers[-1]
            activation = last.output_activation
            assert activation is not None
            z = self._output
            self._output = activation.forward(z, last.buffer("y", z.shape))
            self._output_is_logits = False
        for metric in self.metrics:
            metric.update_state(y, self._output, sample_weight)

    def reset_metrics(self) -> None:
        """Reset every compiled metric's state."""
        for metric in self.metrics:
            metric.reset_state()


def _scalar_loss_weight(loss_weights: float | Sequence[float] | None) -> float:
    if loss_weights is None:
        return 1.0
    if isinstance(loss_weights, (int, float)) and not isinstance(loss_weights, bool):
        return float(loss_weights)
    if isinstance(loss_weights, Sequence) and len(loss_weights) == 1:
        return float(loss_weights[0])
    raise ConfigError(
        f"compile() got loss_weights={loss_weights!r}; a Sequential model has one "
        "output, so pass a number (or a one-element list)."
    )
