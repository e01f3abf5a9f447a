"""Network: a graph of layers over one flat parameter buffer, with its loss and one step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from attrs import define, field

from loopkit import optimizers as _optimizers
from loopkit._training.flat_parameters import FlatParameters
from loopkit._training.graph import Graph
from loopkit._training.heads import Head, resolve_heads
from loopkit._training.loop_state import LoopState
from loopkit._training.summary import format_summary
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.base import Parameter
from loopkit.random import new_generator
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
    trainable: bool = field(default=True, kw_only=True)
    """False freezes every layer of the model (Keras's ``model.trainable = False``)."""
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
    loss_terms: list[float] = field(init=False, factory=list, repr=False)
    """Each output's loss in the last step, before its loss weight (as Keras logs it)."""
    _flat: FlatParameters | None = field(init=False, default=None, repr=False)
    _compile_args: tuple[Any, Any, Any] | None = field(init=False, default=None, repr=False)
    _trainable_key: tuple[bool, ...] | None = field(init=False, default=None, repr=False)
    _trainable_spans: list[slice] = field(init=False, factory=list, repr=False)
    _regularized: list[Parameter] = field(init=False, factory=list, repr=False)
    _outputs: list[FloatArray] = field(init=False, factory=list, repr=False)
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
        """Log keys of each output's loss: ``<output>_loss``, for several outputs."""
        if len(self.heads) < 2:
            return []
        return [f"{h.name}_loss" for h in self.heads]

    def _pack(self) -> None:
        """Move every parameter into fresh flat buffers (values are copied over)."""
        assert self.graph is not None
        params = [p for layer in self.layers for p in layer.parameters]
        self._flat = FlatParameters.pack(params, self.dtype)
        self._regularized = [p for p in params if p.regularizer is not None]
        self.graph.refresh_sharing()
        self._trainable_key = None
        n = len(self.graph.outputs)
        self._fused, self._logits_pending = [False] * n, [False] * n
        if self.optimizer is not None:
            self._resolve_compiled()

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
    def trainable_spans(self) -> list[slice]:
        """Slices of ``flat_weights`` the optimizer updates, merged where adjacent.

        Recomputed when a layer's ``trainable`` flag changes; plugins that act on
        gradients (clipping, accumulation) touch only these.
        """
        key = (self.trainable, *(layer.trainable for layer in self.layers))
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

    # --- compiling ------------------------------------------------------------------------

    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Any = None,
        loss_weights: Any = None,
        **keras_options: Any,
    ) -> None:
        """Choose the optimizer, loss and metrics (names or objects), as in Keras.

        Args:
            optimizer: Optimizer name (``"adam"``) or object.
            loss: Loss name or object, or (several outputs) a list in output order or
                a dict keyed by output name; needed to ``fit``.
            metrics: Metric names or objects: a list for every output, or a list of
                lists / dict per output; ``"accuracy"`` resolves from the loss.
            loss_weights: Numbers multiplying each output's loss (one, a list, a dict).
            **keras_options: Keras's ``run_eagerly``, ``jit_compile``,
                ``steps_per_execution`` and ``weighted_metrics`` are accepted; loopkit
                always runs eagerly on NumPy.

        Raises:
            ConfigError: an unknown name, listing the valid ones, or a structure that
                does not match the outputs.
        """
        unknown = sorted(set(keras_options) - _KERAS_COMPILE_OPTIONS)
        if unknown:
            raise TypeError(
                f"compile() got unexpected keyword argument(s) {unknown}; it takes "
                "optimizer, loss, metrics, loss_weights and Keras's "
                f"{sorted(_KERAS_COMPILE_OPTIONS)}."
            )
        # Resolve and check everything before changing anything: a failed compile
        # leaves the model (and its optimizer's state) as it was.
        new_optimizer = _optimizers.get(optimizer)
        heads = self._heads_for(loss, metrics, loss_weights)
        self.optimizer = new_optimizer
        self._compile_args = (loss, metrics, loss_weights)
        self.heads = heads
        self.metrics = [m for h in heads for m in h.metrics]
        if self.built:
            self._resolve_compiled()

    def _heads_for(self, loss: Any, metrics: Any, loss_weights: Any) -> list[Head]:
        names = self.output_names or [self.name]
        shapes: list[Shape | None] = (
            [t.sample_shape for t in self.graph.outputs]
            if self.graph is not None and self.built
            else [None] * len(names)
        )
        return resolve_heads(
            loss, metrics, loss_weights, names, shapes, type(self).__name__
        )

    def _resolve_compiled(self) -> None:
        """Resolve metrics for the output shapes, fuse the losses, build the optimizer."""
        assert self.graph is not None and self._compile_args is not None
        self.heads = self._heads_for(*self._compile_args)
        self.metrics = [m for h in self.heads for m in h.metrics]
        consumed = {id(t) for node in self.graph.nodes for t in node.inputs}
        for runner in self.graph.runners:
            runner.fuse_output_activation = False
        for i, (head, tensor) in enumerate(
            zip(self.heads, self.graph.outputs, strict=True)
        ):
            runner = self.graph.output_runners[i]
            activation = None if runner is None else runner.output_activation
            fuses_with = getattr(head.loss, "fuses_with", None)
            self._fused[i] = bool(
                runner is not None
                and id(tensor) not in consumed  # logits must not flow into other layers
                and activation is not None
                and fuses_with is not None
                and activation.name == fuses_with
                and getattr(activation, "axis", -1) == -1  # fused losses use the last axis
            )
            if self._fused[i]:
                assert runner is not None
                runner.fuse_output_activation = True
        self._trainable_key = None  # rebuilds the optimizer over the trainable spans

    @property
    def compiled(self) -> bool:
        """Whether ``compile`` has been called."""
        return self.optimizer is not None

    # --- one step, in parts the loop interleaves with hooks ------------------------------

    def forward(self, x: Any, training: bool = False) -> Any:
        """Run the graph on the batch ``x`` (an array, or a list for several inputs).

        Returns the output (a list of outputs for several), views valid until the
        next call. With a fused loss, training leaves logits in place of
        probabilities; ``update_metrics`` makes the probabilities when needed.
        """
        assert self.graph is not None
        xs = [x] if isinstance(x, np.ndarray) else x
        outs = self.graph.forward(xs, training)
        self._outputs = outs
        for i, fused in enumerate(self._fused):
            self._logits_pending[i] = training and fused
        return outs[0] if len(outs) == 1 else outs

    def loss_and_output_gradient(
        self, y: Any, sample_weight: Any
    ) -> tuple[float, list[FloatArray]]:
        """Return the loss of the last ``forward`` and dL/d(each output).

        Where an output's activation is fused with its cross-entropy, the gradient is
        with respect to the pre-activation (logits) and taken from them stably.
        """
        ys = [y] if len(self.heads) == 1 else y
        ws = (
            [sample_weight] * len(self.heads)
            if not isinstance(sample_weight, list)
            else sample_weight
        )
        total, grads, terms = 0.0, [], []
        assert self.graph is not None
        for i, head in enumerate(self.heads):
            out = self._outputs[i]
            if head.loss is None:
                grads.append(self._zeros_like_output(i, out))
                terms.append(0.0)
                continue
            if self._fused[i]:
                runner = self.graph.output_runners[i]
                assert runner is not None
                value, grad = head.loss.value_and_grad_from_logits(
                    ys[i], runner.pre_activation, ws[i]
                )
            else:
                value, grad = head.loss.value_and_grad(ys[i], out, ws[i])
            terms.append(float(value))  # Keras logs each output's loss unweighted
            if head.weight != 1.0:
                value, grad = value * head.weight, grad * head.weight
            total += value
            grads.append(grad)
        self.loss_terms = terms
        return total, grads

    def _zeros_like_output(self, i: int, out: FloatArray) -> FloatArray:
        while len(self._output_grads) <= i:
            self._output_grads.append(np.zeros(0, self.dtype))
        buf = self._output_grads[i]
        if buf.shape[1:] != out.shape[1:] or len(buf) < len(out):
            buf = np.zeros(out.shape, self.dtype)
            self._output_grads[i] = buf
        return buf[: len(out)]

    def backward(self, output_gradients: Any) -> Any:
        """Backpropagate dL/d(outputs); overwrite every trainable gradient.

        Returns dL/d(input) (a list for several inputs), None where not needed.
        """
        assert self.graph is not None
        dys = (
            [output_gradients]
            if isinstance(output_gradients, np.ndarray)
            else output_gradients
        )
        dxs = self.graph.backward(dys)
        return dxs[0] if len(dxs) == 1 else dxs

    def check_batch(self, x: Any, y: Any, call: str) -> None:
        """Build from the batch if needed; raise now if ``x`` or ``y`` do not fit the model.

        Runs the model and the loss on the first sample at inference, which changes
        no state (no batch-norm statistic moves, no dropout mask is drawn): bad
        targets then fail before the first training step, not after its forward pass.
        """
        self.ensure_built(x)
        self.check_inputs(x, call)
        if y is not None:
            self.check_targets(x, y, call)

    def check_inputs(self, x: Any, call: str) -> None:
        """Raise ShapeError when the samples of ``x`` do not fit the model's inputs."""
        assert self.graph is not None
        xs = [x] if isinstance(x, np.ndarray) else list(x)
        for tensor, array in zip(self.graph.inputs, xs, strict=True):
            expected = tensor.sample_shape
            if tuple(np.shape(array)[1:]) != expected:
                where = "x" if len(xs) == 1 else f"input {tensor.name!r}"
                raise ShapeError(
                    f"{call} got {where} of shape {tuple(np.shape(array))}; the model "
                    f"expects samples of shape {expected} (batches of {(None, *expected)})."
                    f" Reshape {where}, or build a model for this input shape."
                )

    def check_targets(self, x: Any, y: Any, call: str) -> None:
        """Raise ShapeError now if the targets ``y`` do not fit the model's outputs."""
        if not self.heads or (self.loss is None and len(self.heads) == 1):
            return
        ys = [y] if len(self.heads) == 1 else list(y)
        if any(len(t) == 0 for t in ys):
            return
        head_x = x[:1] if isinstance(x, np.ndarray) else [a[:1] for a in x]
        head_x = (
            np.asarray(head_x, self.dtype)
            if isinstance(head_x, np.ndarray)
            else [np.asarray(a, self.dtype) for a in head_x]
        )
        self.forward(head_x, training=False)
        head_y = ys[0][:1] if len(ys) == 1 else [t[:1] for t in ys]
        try:
            self.test_loss(head_y, None)
        except ShapeError as err:
            assert self.graph is not None
            shapes = [(None, *t.sample_shape) for t in self.graph.outputs]
            if len(ys) == 1:
                raise ShapeError(
                    f"{call} got y of shape {tuple(np.shape(ys[0]))}, which does not fit "
                    f"the model's output of shape {shapes[0]} under loss "
                    f"{self.heads[0].loss.name!r}. Pass targets shaped like the output, "  # type: ignore[union-attr]
                    "or integer class ids of shape (n,) for a sparse loss."
                ) from err
            raise ShapeError(
                f"{call} got y of shape(s) {[tuple(np.shape(t)) for t in ys]}, which do "
                f"not fit the model's output(s) of shape {shapes} under loss(es) "
                f"{[h.loss.name if h.loss else None for h in self.heads]}. Pass targets "
                "shaped like each output, or integer class ids of shape (n,) for a "
                "sparse loss."
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

    def compute_gradients(self, x: Any, y: Any, sample_weight: Any = None) -> float:
        """Forward, loss and backward for one batch; return the loss (with penalties).

        Afterwards ``flat_gradients`` holds dL/dweights for the batch.
        """
        self._flat_or_raise  # noqa: B018 - owns its weights' memory (see _flat_or_raise)
        self.trainable_spans  # noqa: B018 - refresh frozen-layer flags before backward
        self.forward(x, training=True)
        value, grads = self.loss_and_output_gradient(y, sample_weight)
        self.backward(grads)
        if self._regularized:
            value += self.regularization_loss(add_gradients=True)
        return value

    def apply_gradients(self) -> None:
        """Take one optimizer step with ``flat_gradients`` on the trainable spans."""
        assert self.optimizer is not None
        self.trainable_spans  # noqa: B018 - rebuilds the optimizer if flags changed
        self.optimizer.apply(self.flat_weights, self.flat_gradients)

    def test_loss(self, y: Any, sample_weight: Any) -> float:
        """Return the loss of the last ``forward`` (with penalties), without backward."""
        value, _ = self.loss_and_output_gradient(y, sample_weight)
        if self._regularized:
            value += self.regularization_loss(add_gradients=False)
        return value

    def update_metrics(self, y: Any, sample_weight: Any) -> None:
        """Add the last ``forward``'s predictions to every compiled metric."""
        if not self.metrics:
            return
        ys = [y] if len(self.heads) == 1 else y
        ws = (
            [sample_weight] * len(self.heads)
            if not isinstance(sample_weight, list)
            else sample_weight
        )
        assert self.graph is not None
        for i, head in enumerate(self.heads):
            if not head.metrics:
                continue
            if self._logits_pending[i]:
                runner = self.graph.output_runners[i]
                assert runner is not None and runner.output_activation is not None
                z = self._outputs[i]
                self._outputs[i] = runner.output_activation.forward(
                    z, runner.buffer("y", z.shape)
                )
                self._logits_pending[i] = False
            for metric in head.metrics:
                metric.update_state(ys[i], self._outputs[i], ws[i])

    def reset_metrics(self) -> None:
        """Reset every compiled metric's state."""
        for metric in self.metrics:
            metric.reset_state()


_KERAS_COMPILE_OPTIONS = frozenset(
    {
        "run_eagerly",
        "jit_compile",
        "steps_per_execution",
        "weighted_metrics",
        "auto_scale_loss",
    }
)
