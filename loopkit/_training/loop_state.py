"""What the loop knows about the run in progress, shared with every hook."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from attrs import define, field

if TYPE_CHECKING:
    from loopkit._dispatch.dispatcher import HookDispatcher

__all__ = ["LoopState", "OptimizerStep"]


@define(eq=False)
class LoopState:
    """The model's loop counters and the current run's settings, passed to every hook.

    One LoopState lives on each model (``model.state``) and persists across ``fit``
    calls, so counters continue where the last call stopped. Plugins read it; only
    resume logic (``on_train_begin``/``on_load_checkpoint``) writes the counters.

    Args:
        mode: What runs now: ``"train"``, ``"test"`` (evaluate or validation) or
            ``"predict"``.
        epoch: Zero-based index of the current (or last) epoch.
        epochs: The ``epochs`` argument of the current fit: the index to stop before.
        initial_epoch: The epoch the current fit started at.
        batch: Zero-based index of the current batch within its epoch.
        steps_per_epoch: Batches per training epoch, None when unknown (generators).
        global_step: Training batches run by this model over every fit.
        epochs_completed: Epochs run by this model over every fit: the step axis
            that loggers continue across fit calls (``epoch`` restarts at
            ``initial_epoch`` each fit, as in Keras).
        batch_size: The training batch size of the current fit (None for generators).
        log_keys: Every key epoch logs will hold in the current fit.
        params: Keras's ``callback.params``: ``verbose``, ``epochs``, ``steps``.
        resume_epoch: Set by a resuming plugin in ``on_train_begin``: the epoch to
            continue at instead of ``initial_epoch``.
        resume_batch: Set with ``resume_epoch``: batches of that epoch already done,
            which the loop skips without computing (each epoch's sample order depends
            only on the seed and the epoch, so the rest match an uninterrupted run).
        exception: The error ``fit`` is failing with, while ``on_exception`` and
            ``on_train_end`` run; None otherwise.
        hooks: The current run's plugins and hook callers (``hooks.originals()`` lists
            the plugins in call order; ``hooks.call(name, **kwargs)`` calls a hook).
            Set by ``fit``/``evaluate``/``predict`` for the length of the call.
        train_data: The current fit's training data: an object with ``steps`` (batches
            per epoch, or None) and ``batches(epoch)`` yielding ``(x, y,
            sample_weight)``. A plugin may replace it in ``on_train_begin`` (DataParallel
            puts each rank's shard here, with ``loopkit.distributed.shard``); the loop
            draws its batches from it after that hook. If it has ``samples`` (the real
            samples of the batch last yielded), a batch with 0 is padding: the loop
            leaves the metrics untouched, as the padding's zero weight leaves the loss.
        eval_data: The data of the evaluation in progress (``evaluate`` or a
            validation run of ``fit``), like ``train_data``; None outside one. A plugin
            may replace it in ``on_test_begin`` (DataParallel evaluates each rank's
            shard); the loop draws its batches from it after that hook.
    """

    mode: Literal["train", "test", "predict"] = "train"
    epoch: int = 0
    epochs: int = 0
    initial_epoch: int = 0
    batch: int = 0
    steps_per_epoch: int | None = None
    global_step: int = 0
    epochs_completed: int = 0
    batch_size: int | None = None
    log_keys: frozenset[str] = field(factory=frozenset)
    params: dict[str, Any] = field(factory=dict)
    resume_epoch: int | None = None
    resume_batch: int = 0
    exception: BaseException | None = None
    hooks: HookDispatcher | None = field(default=None, repr=False)
    train_data: Any = field(default=None, repr=False)
    eval_data: Any = field(default=None, repr=False)

    def state_dict(self) -> dict[str, int]:
        """Return the counters a checkpoint needs, as JSON-ready values."""
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "global_step": self.global_step,
            "epochs_completed": self.epochs_completed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore counters saved by ``state_dict``."""
        self.epoch = int(state["epoch"])
        self.batch = int(state["batch"])
        self.global_step = int(state["global_step"])
        self.epochs_completed = int(state["epochs_completed"])


@define(eq=False)
class OptimizerStep:
    """The update about to be applied, as ``on_before_optimizer_step`` sees it.

    Args:
        loss: The batch's loss (with regularization penalties).
        batch_size: Number of samples in the batch.
        skip: Set True to leave the weights untouched for this batch.
    """

    loss: float
    batch_size: int
    skip: bool = False
