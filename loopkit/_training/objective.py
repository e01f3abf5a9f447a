"""The compiled objective of a model: losses, metrics, and one step in parts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from attrs import define

from loopkit import optimizers as _optimizers
from loopkit._training.heads import Head, resolve_heads
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.base import shape_fits
from loopkit.layers.recurrent.base import kept_states
from loopkit.typing import FloatArray, Shape

if TYPE_CHECKING:
    pass

from loopkit._training.network import Network

__all__ = ["Objective"]


@define(eq=False, slots=False)
class Objective(Network):
    """What ``compile`` sets up, and the forward, loss, backward and step it runs."""

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
            **keras_options: Keras's ``weighted_metrics`` (metrics that take sample
                and class weights; those in ``metrics`` ignore them, as in Keras),
                ``steps_per_execution`` (batch hooks every that many steps), and
                ``run_eagerly``, ``jit_compile``, ``auto_scale_loss``, accepted and
                ignored: loopkit always runs eagerly on NumPy.

        Raises:
            ConfigError: an unknown name, listing the valid ones, or a structure that
                does not match the outputs.
        """
        unknown = sorted(set(keras_options) - _KERAS_COMPILE_OPTIONS)
        every = keras_options.get("steps_per_execution", 1)
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ConfigError(
                f"compile() got steps_per_execution={every!r}; expected an int >= 1 (the "
                "batch hooks then run every that many steps, as in Keras)."
            )
        if unknown:
            raise TypeError(
                f"compile() got unexpected keyword argument(s) {unknown}; it takes "
                "optimizer, loss, metrics, loss_weights and Keras's "
                f"{sorted(_KERAS_COMPILE_OPTIONS)}."
            )
        # Resolve and check everything before changing anything: a failed compile
        # leaves the model (and its optimizer's state) as it was.
        new_optimizer = _optimizers.get(optimizer)
        weighted = keras_options.get("weighted_metrics")
        heads = self._heads_for(loss, metrics, loss_weights, weighted)
        self.optimizer = new_optimizer
        self.steps_per_execution = int(every)
        self._compile_args = (loss, metrics, loss_weights, weighted)
        self.heads = heads
        self.metrics = _all_metrics(heads)
        if self.built:
            self._resolve_compiled()

    def _heads_for(
        self, loss: Any, metrics: Any, loss_weights: Any, weighted_metrics: Any = None
    ) -> list[Head]:
        names = self.output_names or [self.name]
        shapes: list[Shape | None] = (
            [t.sample_shape for t in self.graph.outputs]
            if self.graph is not None and self.built
            else [None] * len(names)
        )
        return resolve_heads(
            loss,
            metrics,
            loss_weights,
            names,
            shapes,
            type(self).__name__,
            weighted_metrics=weighted_metrics,
        )

    def _resolve_compiled(self) -> None:
        """Resolve metrics for the output shapes, fuse the losses, build the optimizer."""
        assert self.graph is not None and self._compile_args is not None
        self.heads = self._heads_for(*self._compile_args)
        self.metrics = _all_metrics(self.heads)
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
        object.__setattr__(self, "_outputs", outs)  # per step: skips attrs' hook
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
        assert self.graph is not None
        if len(self.heads) == 1 and self.heads[0].loss is not None:  # the per-step path
            head = self.heads[0]
            if self._fused[0]:
                runner = self.graph.output_runners[0]
                value, grad = head.loss.value_and_grad_from_logits(  # type: ignore[union-attr]
                    y, runner.pre_activation, sample_weight
                )
            else:
                value, grad = head.loss.value_and_grad(y, self._outputs[0], sample_weight)  # type: ignore[union-attr]
            if head.weight != 1.0:
                value, grad = value * head.weight, grad * head.weight
            return value, [grad]
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
            if head.loss is None:  # trained through the other outputs only, unlogged
                grads.append(self._zeros_like_output(i, out))
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
            if not shape_fits(expected, tuple(np.shape(array)[1:])):  # None: any length
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
        with kept_states(self.layers):  # the probe must not advance stateful layers
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
        if add_gradients:
            for param in self._regularized:
                assert param.regularizer is not None
                param.regularizer.add_gradient(param.value, param.grad)
        return sum(self.losses, 0.0)

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
        for param in self._constrained:  # Keras projects constrained weights after a step
            assert param.constraint is not None
            param.value[...] = param.constraint(param.value)

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
            if not head.metrics and not head.weighted_metrics:
                continue
            if self._logits_pending[i]:
                runner = self.graph.output_runners[i]
                assert runner is not None and runner.output_activation is not None
                z = self._outputs[i]
                self._outputs[i] = runner.output_activation.forward(
                    z, runner.buffer("y", z.shape)
                )
                self._logits_pending[i] = False
            for metric in head.metrics:  # Keras's metrics= ignore the weights
                metric.update_state(ys[i], self._outputs[i], None)
            for metric in head.weighted_metrics:
                metric.update_state(ys[i], self._outputs[i], ws[i])

    def reset_metrics(self) -> None:
        """Reset every compiled metric's state."""
        for metric in self.metrics:
            metric.reset_state()


def _all_metrics(heads: list[Head]) -> list[Any]:
    """Every output's metrics, then every output's weighted metrics (Keras's order)."""
    return [m for h in heads for m in h.metrics] + [
        m for h in heads for m in h.weighted_metrics
    ]


_KERAS_COMPILE_OPTIONS = frozenset(
    {
        "run_eagerly",
        "jit_compile",
        "steps_per_execution",
        "weighted_metrics",
        "auto_scale_loss",
    }
)
