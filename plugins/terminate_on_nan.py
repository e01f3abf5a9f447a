"""TerminateOnNaN: stop on a non-finite loss or gradient without applying the bad update."""

from __future__ import annotations

import math
import warnings

import numpy as np
from attrs import define, field

from loopkit import LoopkitWarning, LoopState, OptimizerStep, Plugin, Sequential, hookimpl
from loopkit.validators import boolean

__all__ = ["TerminateOnNaN"]


def _gradients_finite(model: Sequential) -> bool:
    """Return whether every trainable gradient is finite, without a temporary array.

    A sum is NaN or inf exactly when some element is, once it cannot overflow:
    summing float32 in float64 cannot, and NumPy casts in small buffered chunks.
    """
    grads = model.flat_gradients
    for span in model.trainable_spans:
        if not math.isfinite(float(np.sum(grads[span], dtype=np.float64))):
            return False
    return True


@define(eq=False, slots=False)
class TerminateOnNaN(Plugin):
    """Stop training at the first NaN or inf loss, and never apply that batch's update.

    Keras checks the loss after the batch, when the NaN update is already in the
    weights, so a checkpoint written next holds a NaN model. Here the check runs in
    ``on_before_optimizer_step``: when the batch's loss, or (for an update about to
    be applied) any trainable gradient, is NaN or inf, the step is skipped
    (``step.skip = True``), ``model.stop_training`` is set, and a LoopkitWarning
    names the epoch, batch and loss. The weights stay exactly those from before
    the bad batch, so checkpoints and ``restore_best_weights`` see a finite model.
    It runs after every other plugin's ``on_before_optimizer_step`` (``trylast``),
    so it checks the gradients actually about to be applied and has the last word
    on ``skip``.

    The gradient check costs one pass over the trainable gradients per update. An
    update that overflows from finite gradients (a learning rate so large that
    ``lr * grad`` exceeds the float range) cannot be caught before it is applied;
    the next batch's loss is then non-finite and training stops there. Clip the
    gradients (``clipnorm``) to rule that out.

    Batch logs are not checked as Keras does (their running-mean loss is non-finite
    exactly when a batch loss was, which this already caught), so the plugin does
    not make the loop build per-batch logs.

    With ``raise_error=True`` (Keras's argument) the plugin raises RuntimeError
    instead of stopping, still before the update is applied. Keras then skips the
    other callbacks' ``on_train_end``; here ``on_exception`` and ``on_train_end``
    fire as for any error in ``fit``, so loggers flush and close.

    Args:
        raise_error: Raise RuntimeError at the first NaN or inf instead of setting
            ``model.stop_training``.
        order: Position among plugins (default 0).

    Attributes:
        stopped_at: ``(epoch, batch)`` of the batch that stopped training, or None.
    """

    default_name = "terminate_on_nan"
    default_order = 0

    raise_error: bool = field(default=False, validator=boolean)
    stopped_at: tuple[int, int] | None = field(init=False, default=None)

    @hookimpl
    def on_train_begin(self) -> None:
        self.stopped_at = None

    @hookimpl(trylast=True)
    def on_before_optimizer_step(
        self, model: Sequential, state: LoopState, step: OptimizerStep
    ) -> None:
        if not math.isfinite(step.loss):
            what = f"loss {step.loss}"
        elif not step.skip and not _gradients_finite(model):
            what = f"a finite loss ({step.loss:.6g}) but NaN or inf gradients"
        else:
            return
        step.skip = True
        self.stopped_at = (state.epoch, state.batch)
        if self.raise_error:
            raise RuntimeError(
                f"TerminateOnNaN(raise_error=True): NaN or Inf loss encountered at epoch "
                f"{state.epoch}, batch {state.batch} ({what}); the batch's update was not "
                "applied. Lower the learning rate, clip gradients (clipnorm=), or check "
                "the data for NaN/inf."
            )
        model.stop_training = True
        warnings.warn(
            f"TerminateOnNaN: epoch {state.epoch}, batch {state.batch}: invalid loss, "
            f"terminating training. The batch had {what}; its update was not applied, "
            "so the weights are those from before it. Lower the learning rate, clip "
            "gradients (clipnorm=), or check the data for NaN/inf.",
            LoopkitWarning,
            stacklevel=2,
        )
