"""EarlyStopping: end training when a monitored log value stops improving."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from attrs import define, field
from attrs.validators import optional

from loopkit import (
    CheckpointError,
    LoopkitWarning,
    LoopState,
    Monitor,
    Plugin,
    Sequential,
    hookimpl,
)
from loopkit.monitor import Monitored, monitor_key
from loopkit.typing import FloatArray
from loopkit.validators import boolean, finite, non_negative, non_negative_int, one_of

__all__ = ["EarlyStopping"]


@define(eq=False, slots=False)
class EarlyStopping(Monitored, Plugin):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    At the end of every epoch from ``start_from_epoch`` on, the value of
    ``monitor`` is compared with the best so far: it improves when it is lower
    (``mode="min"``) or higher (``"max"``) by more than ``min_delta``. After
    ``patience`` epochs in a row without improvement, ``model.stop_training`` is
    set and the run ends after that epoch. As in Keras, the first epoch (epoch 0)
    never stops training, so ``stopped_epoch == 0`` means "did not stop".

    With ``baseline``, an improvement resets the patience only if it also beats the
    baseline; if no epoch beats it, training stops after ``patience`` epochs. Keras
    documents this rule but does not stop while the value keeps improving towards
    the baseline without reaching it; here it does.

    With ``restore_best_weights=True`` the weights of the best epoch are copied
    (one copy of ``model.flat_weights``, taken at each improvement) and put back
    when ``fit`` ends, **whether or not** the patience ran out; Keras 2 restored
    them only after an early stop. If no epoch improved (e.g. every value was
    NaN), the weights of the first monitored epoch are restored, as in Keras. When
    ``fit`` fails with an error, nothing is restored (Keras then skips
    ``on_train_end`` altogether).

    An epoch whose logs lack ``monitor`` (validation keys with ``validation_freq``
    > 1) is not counted; the first one in a fit warns, naming the keys present.
    A ``monitor`` the run can never log fails at the start of ``fit``, before any
    step (``required_log_keys``). Every counter restarts at each ``fit`` (Keras
    keeps ``best`` from the previous one) unless the state was just restored from
    a checkpoint (``state_dict``/``load_state_dict``, used by BackupAndRestore).

    Args:
        monitor: Log key to watch, e.g. ``"val_loss"`` or ``"val_accuracy"``.
        min_delta: How much better than the best a value must be to count as an
            improvement (an absolute amount, >= 0).
        patience: Epochs without improvement after which training stops.
        verbose: 1 prints a line when training stops and when weights are restored.
        mode: ``"min"``, ``"max"``, or ``"auto"``: ``"max"`` for accuracy-like names
            (containing "acc", "auc", "precision", "recall", "f1", "iou"), else
            ``"min"`` (see ``loopkit.infer_mode``).
        baseline: A value the monitor must beat; None for none.
        restore_best_weights: Put back the best epoch's weights when ``fit`` ends.
        start_from_epoch: Epochs (from 0) not monitored at all: a warm-up.
        order: Position among plugins (default 100, with the other monitors).
        name: Key of this plugin's state in checkpoints; two EarlyStoppings of one
            run are told apart without it (``early_stopping``, ``early_stopping_1``).

    Attributes:
        stopped_epoch: The epoch at which training was stopped, 0 if it was not.
        best_epoch: The epoch of the best value so far.
        wait: Monitored epochs since the last improvement.
        best_weights: The copy of ``flat_weights`` at ``best_epoch`` (only with
            ``restore_best_weights``), else None.
    """

    default_name = "early_stopping"
    default_order = 100

    monitor: str = field(default="val_loss", validator=monitor_key)
    min_delta: float = field(default=0.0, validator=non_negative)
    patience: int = field(default=0, validator=non_negative_int)
    verbose: int = field(default=0, validator=non_negative_int)
    mode: str = field(default="auto", validator=one_of("auto", "min", "max"))
    baseline: float | None = field(default=None, validator=optional(finite))
    restore_best_weights: bool = field(default=False, validator=boolean)
    start_from_epoch: int = field(default=0, validator=non_negative_int)
    stopped_epoch: int = field(init=False, default=0)
    best_epoch: int = field(init=False, default=0)
    wait: int = field(init=False, default=0)
    best_weights: FloatArray | None = field(init=False, default=None, repr=False)
    _tracker: Monitor = field(init=False, repr=False)
    _baseline: Monitor | None = field(init=False, default=None, repr=False)
    _warned: bool = field(init=False, default=False, repr=False)
    _restored: bool = field(init=False, default=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._tracker = Monitor(self.monitor, self.mode, self.min_delta)
        if self.baseline is not None:
            self._baseline = Monitor(
                self.monitor, self.mode, self.min_delta, initial=float(self.baseline)
            )

    @hookimpl
    def on_train_begin(self, model: Sequential) -> None:
        self._warned = False
        if self._restored:  # resumed from a checkpoint: continue its counters
            self._restored = False
            shape = model.flat_weights.shape
            if self.best_weights is not None and self.best_weights.shape != shape:
                raise CheckpointError(
                    f"EarlyStopping(name={self.name!r}): the restored best weights have "
                    f"shape {self.best_weights.shape}, but the model's flat_weights have "
                    f"shape {shape}. Resume with the model the checkpoint was written by."
                )
            return
        self._tracker.reset()
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best_weights = None

    @hookimpl
    def on_epoch_end(
        self, model: Sequential, epoch: int, logs: Mapping[str, float]
    ) -> None:
        current = logs.get(self.monitor)
        if current is None:
            if not self._warned and not model.stop_training:
                self._warned = True
                warnings.warn(
                    f"EarlyStopping(monitor={self.monitor!r}): the logs of epoch {epoch} "
                    f"have no {self.monitor!r}; available keys: {sorted(logs)}. Epochs "
                    "without it are not counted (with validation_freq > 1, 'val_' keys "
                    "exist only on validated epochs). Warned once per fit.",
                    LoopkitWarning,
                    stacklevel=2,
                )
            return
        if epoch < self.start_from_epoch:
            return
        value = float(current)
        if self.restore_best_weights and self.best_weights is None:
            self._snapshot(model)  # so there is always something to restore
            self.best_epoch = epoch
        self.wait += 1
        if self._tracker.improves(value):
            self._tracker.best = value
            self.best_epoch = epoch
            if self.restore_best_weights:
                self._snapshot(model)
            if self._baseline is None or self._baseline.improves(value):
                self.wait = 0
                return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            model.stop_training = True

    def _snapshot(self, model: Sequential) -> None:
        weights = model.flat_weights
        if self.best_weights is None or self.best_weights.shape != weights.shape:
            self.best_weights = weights.copy()
        else:
            np.copyto(self.best_weights, weights)

    @hookimpl
    def on_train_end(self, model: Sequential, state: LoopState) -> None:
        if state.exception is not None:
            return
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            np.copyto(model.flat_weights, self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        """Return the counters, the best value and the best weights (for resume)."""
        best = self._tracker.best
        return {
            "wait": self.wait,
            "best": best if math.isfinite(best) else None,
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
            "best_weights": None if self.best_weights is None else self.best_weights.copy(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned; the next ``fit`` continues from it."""
        self.wait = int(state["wait"])
        self.best_epoch = int(state["best_epoch"])
        self.stopped_epoch = int(state["stopped_epoch"])
        self._tracker.reset()
        if state["best"] is not None:
            self._tracker.best = float(state["best"])
        weights = state["best_weights"]
        self.best_weights = None if weights is None else np.array(weights, copy=True)
        self._restored = True
