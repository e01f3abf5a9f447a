"""GradientAccumulation: average the gradients of several batches into one update."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
from attrs import define, field

from loopkit import (
    CheckpointError,
    LoopState,
    OptimizerStep,
    Plugin,
    Sequential,
    hookimpl,
)
from loopkit.typing import FloatArray
from loopkit.validators import positive_int

__all__ = ["GradientAccumulation"]


@define(eq=False, slots=False)
class GradientAccumulation(Plugin):
    """Sum the gradients of ``steps`` batches and apply their mean in one optimizer step.

    For a mean-reduced loss and a model without batch-dependent layers, ``steps``
    batches of ``b`` samples give the same weights (to float rounding) as one step on
    the concatenated ``steps * b`` batch, at the memory cost of one ``b`` batch. Each
    batch adds ``model.flat_gradients`` into one preallocated accumulator (one
    vectorized call); the batches that only add set ``step.skip``, so the loop does
    not call the optimizer for them. The batch that closes the window gets the mean
    written into ``flat_gradients`` and is applied normally. Hence everything that
    lives in the optimizer's update runs once per real update: its ``clipnorm``/
    ``clipvalue``/``global_clipnorm`` (on the averaged gradient), weight decay,
    ``iterations`` (which counts updates) and so learning-rate schedules (which are
    evaluated at ``iterations``).

    Windows restart with every epoch. When an epoch's batch count is not a multiple
    of ``steps``, its last window is applied at the epoch's last batch (known from
    ``state.steps_per_epoch``), averaged over the batches it actually holds: a short
    last batch weighs as much as a full one there, which differs slightly from the
    concatenated-batch mean. When the number of batches is unknown (a generator
    without ``steps_per_epoch``), or ``model.stop_training`` ended the epoch early,
    the pending window is applied when the epoch's training ends: before validation
    (``on_test_begin``), else at ``on_epoch_end``, before any other plugin's hook
    (both flushes are ``tryfirst`` wrappers). That flush writes the mean into
    ``flat_gradients`` and fires ``on_before_optimizer_step`` and
    ``on_after_optimizer_step`` around ``model.apply_gradients()``, so plugins that
    act on updates (GradientClipping, EMA) see it as any other update; its
    ``step.loss`` is the window's mean loss and ``step.batch_size`` its sample count.
    A batch that an earlier plugin skipped (``step.skip`` already set) is left out.
    When ``fit`` fails, the pending window is dropped at ``on_train_end``; a
    checkpoint written before holds it (``state_dict``), so a resumed run continues
    the window exactly.

    Ordering: ``order=-10`` and ``before=("gradient_clipping",)``, so the plugins
    acting on the final gradient run after it: on the batches that only accumulate
    they see ``step.skip`` set and should do nothing (GradientClipping does nothing
    then); on the closing batch they see the averaged gradient.

    Keras 3 offers this as the optimizer argument ``gradient_accumulation_steps``
    (also averaging); there, ``iterations`` counts every batch and windows run across
    epoch boundaries. Keras has no default; ours, ``steps=1``, makes the plugin a
    no-op, so enabling it by name (``plugins=["gradient_accumulation"]``) never
    changes training; pass ``GradientAccumulation(steps=4)`` to accumulate.

    Args:
        steps: Batches whose gradients are averaged into one update (an int >= 1).
    """

    default_name = "gradient_accumulation"
    default_order = -10

    steps: int = field(default=1, validator=positive_int)
    before: tuple[str, ...] = field(
        default=("gradient_clipping",), kw_only=True, converter=tuple
    )
    _sum: FloatArray | None = field(default=None, init=False, repr=False)
    _count: int = field(default=0, init=False, repr=False)
    _loss_sum: float = field(default=0.0, init=False, repr=False)
    _samples: int = field(default=0, init=False, repr=False)
    _loaded: FloatArray | None = field(default=None, init=False, repr=False)
    _flushing: bool = field(default=False, init=False, repr=False)
    _hooks: Any = field(default=None, init=False, repr=False)
    _in_fit: bool = field(default=False, init=False, repr=False)

    @property
    def pending(self) -> int:
        """Batches accumulated and not yet applied."""
        return self._count

    @hookimpl
    def on_train_begin(self, model: Sequential, state: LoopState) -> None:
        self._hooks = state.hooks  # fit's dispatcher, also when a nested evaluate ran
        grads = model.flat_gradients
        if (
            self._sum is None
            or self._sum.shape != grads.shape
            or self._sum.dtype != grads.dtype
        ):
            self._sum = np.zeros_like(grads)
        self._in_fit = True
        if self._loaded is not None:  # restored before this hook ran
            loaded, self._loaded = self._loaded, None
            self._copy_loaded(loaded)

    @hookimpl
    def on_before_optimizer_step(
        self, model: Sequential, state: LoopState, step: OptimizerStep
    ) -> None:
        if self._flushing or step.skip or (self.steps == 1 and self._count == 0):
            return
        grads = model.flat_gradients
        assert self._sum is not None
        if self._count == 0:
            np.copyto(self._sum, grads)  # no separate zeroing pass
        else:
            np.add(self._sum, grads, out=self._sum)
        self._count += 1
        self._loss_sum += step.loss
        self._samples += step.batch_size
        steps_per_epoch = state.steps_per_epoch
        last = steps_per_epoch is not None and state.batch >= steps_per_epoch - 1
        if self._count < self.steps and not last:
            step.skip = True
            return
        np.divide(self._sum, self._count, out=grads)
        self._reset()

    @hookimpl(wrapper=True, tryfirst=True)
    def on_test_begin(
        self, model: Sequential, state: LoopState
    ) -> Generator[None, Any, Any]:
        if self._count and state.hooks is self._hooks:  # fit's validation, not a nested
            self.flush(model, state)  # evaluate() run by a plugin mid-epoch
        return (yield)

    @hookimpl(wrapper=True, tryfirst=True)
    def on_epoch_end(
        self, model: Sequential, state: LoopState
    ) -> Generator[None, Any, Any]:
        if self._count:
            self.flush(model, state)
        return (yield)

    @hookimpl
    def on_train_end(self) -> None:
        self._reset()  # nonzero only after an error: that window is dropped
        self._hooks, self._in_fit = None, False

    def flush(self, model: Sequential, state: LoopState) -> None:
        """Apply the pending window now, as one update through the step hooks.

        Writes the mean of the accumulated gradients into ``model.flat_gradients``,
        fires ``on_before_optimizer_step`` (which may skip it), calls
        ``model.apply_gradients()``, then fires ``on_after_optimizer_step``. Does
        nothing when no batch is pending.

        Args:
            model: The model being fit.
            state: Its loop state. The step hooks go to the plugins of the running
                ``fit`` (else ``state.hooks``; when None, the update is applied
                without them).
        """
        if self._count == 0:
            return
        assert self._sum is not None
        np.divide(self._sum, self._count, out=model.flat_gradients)
        step = OptimizerStep(loss=self._loss_sum / self._count, batch_size=self._samples)
        self._reset()
        hooks = self._hooks if self._hooks is not None else state.hooks
        event = max(state.global_step, 1)  # the window's last batch
        if hooks is not None:
            self._flushing = True
            try:
                hooks.call(
                    "on_before_optimizer_step", event, model=model, state=state, step=step
                )
            finally:
                self._flushing = False
        if not step.skip:
            model.apply_gradients()
        if hooks is not None:
            hooks.call(
                "on_after_optimizer_step", event, model=model, state=state, step=step
            )

    def _reset(self) -> None:
        self._count, self._loss_sum, self._samples = 0, 0.0, 0

    def state_dict(self) -> dict[str, Any]:
        """Return the pending window: batch count, gradient sum, loss sum, samples."""
        pending = self._count > 0 and self._sum is not None
        return {
            "count": self._count,
            "sum": np.array(self._sum, copy=True) if pending else None,
            "loss_sum": self._loss_sum,
            "samples": self._samples,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a window saved by ``state_dict``, so a resumed run continues it.

        Raises:
            CheckpointError: the saved sum does not fit the model being trained.
        """
        count = int(state.get("count", 0))
        self._reset()
        self._loaded = None
        if count == 0:
            return
        loaded = np.asarray(state["sum"])
        if self._in_fit:  # restored after on_train_begin allocated the accumulator
            self._copy_loaded(loaded)
        else:  # on_train_begin copies it in
            self._loaded = np.array(loaded, copy=True)
        self._count = count
        self._loss_sum = float(state.get("loss_sum", 0.0))
        self._samples = int(state.get("samples", 0))

    def _copy_loaded(self, loaded: FloatArray) -> None:
        assert self._sum is not None
        if loaded.shape != self._sum.shape:
            self._reset()
            raise CheckpointError(
                f"GradientAccumulation.load_state_dict(): the saved gradient sum has "
                f"shape {loaded.shape}, but the model's gradients have shape "
                f"{self._sum.shape}. Resume with the model the checkpoint was written "
                "for, or start without restoring the plugin's state."
            )
        np.copyto(self._sum, loaded)
