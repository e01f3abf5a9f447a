"""Network: a graph of layers over one flat parameter buffer, with its loss and one step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from attrs import define, field
from attrs.setters import NO_OP

from loopkit._training.flat_parameters import FlatParameters
from loopkit._training.graph import Graph
from loopkit._training.heads import Head
from loopkit._training.loop_state import LoopState
from loopkit._training.summary import format_summary
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.base import Parameter
from loopkit.random import new_generator
from loopkit.saving.weights import weight_keys
from loopkit.typing import Array, FloatArray, Shape

if TYPE_CHECKING:
    from loopkit.losses import Loss
    from loopkit.metrics import Metric
    from loopkit.optimizers import Optimizer

__all__ = ["Network"]

_DTYPES = ("float32", "float64")


def as_dtype(value: Any) -> np.dtype[Any]:
    """Return ``value`` as float32 or float64; ConfigError for anything else."""
    dtype: np.dtype[Any] | None
    try:
        dtype = np.dtype(value)
    except TypeError:
        dtype = None
    if dtype is None or str(dtype) not in _DTYPES:
        shown = str(dtype) if dtype is not None else value
        raise ConfigError(
            f"Model(dtype={shown!r}): expected one of {list(_DTYPES)}; float32 is "
            "the default, float64 is for gradient checks."
        )
    return dtype


def _set_trainable(instance: Any, attribute: Any, value: Any) -> bool:
    """Give every layer the model's new ``trainable`` flag (attrs on_setattr hook)."""
    flag = bool(value)
    for layer in instance.layers:
        layer.trainable = flag
    return flag


@define(eq=False, slots=False)
class Network:
    """Weights, compiling and one training step in parts, over a graph of layers.

    Every parameter of the model lives in one contiguous buffer (``flat_weights``) and
    every gradient in a second (``flat_gradients``); layers see views of them, so an
    optimizer step costs a few vectorized calls however deep the model is. Subclasses
    (``Model``, ``Sequential``) make ``graph``; a model also acts as a layer, so it
    can be called on tensors inside another model.
    """

    name: str = field(default="model", kw_only=True)
    dtype: np.dtype[Any] = field(default="float32", converter=as_dtype, kw_only=True)
    trainable: bool = field(default=True, kw_only=True, on_setattr=_set_trainable)
    """False freezes every layer of the model (Keras's ``model.trainable = False``).

    Setting it sets every layer's ``trainable`` (nested models too), as Keras does:
    ``model.trainable = True`` unfreezes layers frozen one by one as well."""
    graph: Graph | None = field(init=False, default=None, repr=False)
    rng: np.random.Generator = field(init=False, factory=new_generator, repr=False)
    """Draws initial weights and dropout masks; its state is saved with checkpoints."""
    shuffle_seed: int = field(init=False, repr=False)
    """With the epoch index, fixes each epoch's sample order (data.epoch_permutation)."""
    state: LoopState = field(init=False, factory=LoopState, repr=False)
    """The loop counters, kept across fit calls and passed to every hook."""
    stop_training: bool = field(init=False, default=False, repr=False)
    """Set True (from a plugin) to end ``fit`` after the current batch, as in Keras."""
    stop_evaluating: bool = field(init=False, default=False, repr=False)
    """Set True (from a plugin) to end ``evaluate`` after the current batch."""
    stop_predicting: bool = field(init=False, default=False, repr=False)
    """Set True (from a plugin) to end ``predict`` after the current batch."""
    optimizer: Optimizer | None = field(init=False, default=None, repr=False)
    heads: list[Head] = field(init=False, factory=list, repr=False)
    """One per output: its loss, loss weight and metrics (set by ``compile``)."""
    metrics: list[Metric] = field(init=False, factory=list, repr=False)
    """Every compiled metric, output by output."""
    input_shape: Shape | None = field(init=False, default=None, repr=False)
    output_shape: Shape | None = field(init=False, default=None, repr=False)
    input_grad_needed: bool = field(init=False, default=True, repr=False)
    fuse_output_activation: bool = field(init=False, default=False, repr=False)
    steps_per_execution: int = field(init=False, default=1, repr=False)
    """Batch hooks run every this many steps (Keras's ``compile(steps_per_execution=)``)."""
    loss_terms: list[float] = field(init=False, factory=list, repr=False)
    """Each output's loss in the last step, before its loss weight (as Keras logs it)."""
    _flat: FlatParameters | None = field(init=False, default=None, repr=False)
    _compile_args: tuple[Any, ...] | None = field(init=False, default=None, repr=False)
    _trainable_key: tuple[bool, ...] | None = field(init=False, default=None, repr=False)
    _trainable_spans: list[slice] = field(init=False, factory=list, repr=False)
    _regularized: list[Parameter] = field(init=False, factory=list, repr=False)
    _constrained: list[Parameter] = field(init=False, factory=list, repr=False)
    _outputs: list[FloatArray] = field(
        init=False, factory=list, repr=False, on_setattr=NO_OP
    )
    _fused: list[bool] = field(init=False, factory=list, repr=False)
    _logits_pending: list[bool] = field(init=False, factory=list, repr=False)
    _output_grads: list[FloatArray] = field(init=False, factory=list, repr=False)

    def __attrs_post_init__(self) -> None:
        self.shuffle_seed = int(self.rng.integers(2**63 - 1))

    # --- the graph --------------------------------------------------------------------

    @property
    def layers(self) -> list[Any]:
        """The model's layers (nested models count as one), in call order."""
        return [] if self.graph is None else self.graph.layers

    @property
    def built(self) -> bool:
        """Whether weights exist (after ``build``, or the first batch seen)."""
        return self._flat is not None

    @property
    def output_names(self) -> list[str]:
        """The names of the outputs: the layers producing them, as in Keras."""
        return [] if self.graph is None else [t.name for t in self.graph.outputs]

    @property
    def input_names(self) -> list[str]:
        """The names of the inputs."""
        return [] if self.graph is None else [t.name for t in self.graph.inputs]

    @property
    def loss(self) -> Loss | None:
        """The loss of a one-output model (the first output's otherwise)."""
        return self.heads[0].loss if self.heads else None

    @property
    def loss_weight(self) -> float:
        """The loss weight of a one-output model (the first output's otherwise)."""
        return self.heads[0].weight if self.heads else 1.0

    @property
    def loss_term_names(self) -> list[str]:
        """Log keys of each output's loss: ``<output>_loss``, for several outputs.

        An output compiled without a loss (``loss=[None, ...]``) has none, as in Keras.
        """
        if len(self.heads) < 2:
            return []
        return [f"{h.name}_loss" for h in self.heads if h.loss is not None]

    def _pack(self) -> None:
        """Move every parameter into fresh flat buffers (values are copied over)."""
        assert self.graph is not None
        params = [p for layer in self.layers for p in layer.parameters]
        self._check_held_once()
        self._flat = FlatParameters.pack(params, self.dtype)
        self._regularized = [p for p in params if p.regularizer is not None]
        self.graph.refresh_sharing()
        self._trainable_key = None
        n = len(self.graph.outputs)
        self._fused, self._logits_pending = [False] * n, [False] * n
        if self.optimizer is not None:
            self._resolve_compiled()

    def _check_held_once(self) -> None:
        """Raise ConfigError if two of the model's layers hold one weight.

        That happens when a layer a Keras-style layer (``call()``) or a nested model
        holds is also called in the model directly: both calls would share one set
        of buffers, and the weight would be counted twice.
        """
        owners: dict[int, str] = {}
        for layer in self.layers:
            for p in layer.parameters:
                other = owners.setdefault(id(p), str(layer.name))
                if other != layer.name:
                    raise ConfigError(
                        f"Model {self.name!r}: layers {other!r} and {layer.name!r} both "
                        f"hold the weight {p.name!r}: a layer held by one of them is "
                        "also called in the model directly (or held by both). Call it "
                        "in one place only, e.g. only inside the layer that holds it."
                    )

    def ensure_built(self, x: Any) -> None:
        """Build from the shape of the batch ``x`` if the model is not built yet."""
        if self._flat is None:
            self.build(np.shape(x))

    def build(self, input_shape: Any) -> None:
        """Create the weights (a functional model has them from its graph)."""
        if self._flat is None:
            self._pack()

    # --- parameters ---------------------------------------------------------------------

    @property
    def _flat_or_raise(self) -> FlatParameters:
        flat = self._flat
        if flat is None:
            raise ConfigError(
                f"Model {self.name!r} has no weights yet: give the first layer "
                "input_shape=, call model.build((None, *sample_shape)), or fit it first."
            )
        if flat.parameters and flat.parameters[0].value.base is not flat.values:
            self._pack()  # another model sharing these layers packed them: reclaim
            flat = self._flat
            assert flat is not None
        return flat

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
        if not self.trainable:
            return []
        return [p for layer in self.layers for p in layer.trainable_parameters]

    @property
    def non_trainable_weights(self) -> list[Parameter]:
        """Parameters the optimizer never updates."""
        trainable = {id(p) for p in self.trainable_weights}
        return [p for p in self.weights if id(p) not in trainable]

    @property
    def losses(self) -> list[float]:
        """Each regularized weight's penalty at its current value, in weight order.

        As Keras's ``model.losses``: one scalar per regularizer term, ``[]`` without
        regularizers (or before the model is built); their sum is what training adds
        to the loss.
        """
        return [float(p.regularizer.penalty(p.value)) for p in self._regularized]  # type: ignore[union-attr]

    @property
    def trainable_spans(self) -> list[slice]:
        """Slices of ``flat_weights`` the optimizer updates, merged where adjacent.

        Recomputed when a layer's ``trainable`` flag changes; plugins that act on
        gradients (clipping, accumulation) touch only these.
        """
        layers = () if self.graph is None else self.graph.distinct_layers
        key = (self.trainable, *[layer.trainable for layer in layers])
        if key != self._trainable_key:
            self._refresh_trainable(key)
        return self._trainable_spans

    def _refresh_trainable(self, key: tuple[bool, ...]) -> None:
        flat = self._flat_or_raise
        self._trainable_key = key
        trainable = self.trainable_weights
        self._trainable_spans = flat.spans_of(trainable)
        assert self.graph is not None
        self.graph.refresh_gradient_flags()  # dL/dx only below something trainable
        self._constrained = [p for p in trainable if p.constraint is not None]
        if self.optimizer is not None:
            chosen = {id(p) for p in trainable}
            pairs = [
                (p, s)
                for p, s in zip(flat.parameters, flat.slices, strict=True)
                if id(p) in chosen
            ]
            keys = dict(
                zip((id(p) for p in flat.parameters), weight_keys(self), strict=True)
            )
            self.optimizer.build(
                flat.values.size,
                self.dtype,
                [s for _, s in pairs],
                names=[
                    keys[id(p)] for p, _ in pairs
                ],  # exclude_from_weight_decay, Adafactor
                shapes=[p.shape for p, _ in pairs],
            )

    def count_params(self) -> int:
        """Return the number of scalars in every weight."""
        if self._flat is None:
            self._flat_or_raise  # noqa: B018 - raises the "no weights yet" error
        return sum(p.size for layer in self.layers for p in layer.parameters)

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

    def _resolve_compiled(self) -> None:
        """Fit the compiled objective to the built graph (``Objective`` does the work)."""
