"""Epoch-level learning-rate control: a per-epoch schedule function, plateau reduction."""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from attrs import define, field

from loopkit import (
    ConfigError,
    LoopkitWarning,
    Monitor,
    Plugin,
    Sequential,
    hookimpl,
)
from loopkit.monitor import Monitored, monitor_key
from loopkit.schedules import LearningRateSchedule
from loopkit.validators import in_open_range, non_negative, non_negative_int, one_of

__all__ = ["LearningRateScheduler", "ReduceLROnPlateau"]


def _optimizer(model: Sequential, owner: str) -> Any:
    if model.optimizer is None:  # fit() compiles first; this guards direct hook calls
        raise ConfigError(
            f"{owner}: the model has no optimizer; call model.compile() first."
        )
    return model.optimizer


# --- LearningRateScheduler ------------------------------------------------------------


def _schedule_arity(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        raise ConfigError(
            "LearningRateScheduler(schedule=None): a schedule function is required, "
            "so plugins=['learning_rate_scheduler'] cannot build one with defaults. "
            "Pass LearningRateScheduler(lambda epoch, lr: ...) in plugins= instead, "
            "or give the optimizer a loopkit.schedules object as learning_rate=."
        )
    if not callable(value):
        raise TypeError(
            f"LearningRateScheduler got schedule={value!r} of type "
            f"{type(value).__name__}; expected a function schedule(epoch, lr) -> lr."
        )
    if _positional_arity(value) > 2:
        raise ConfigError(
            f"LearningRateScheduler got schedule={value!r}, which needs more than two "
            "arguments; expected schedule(epoch, lr) -> lr (or schedule(epoch))."
        )


def _positional_arity(function: Callable[..., Any]) -> int:
    """Return 1 for ``f(epoch)``, 2 for ``f(epoch, lr)``, or the number of required args."""
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # no signature (some builtins): assume Keras's API
        return 2
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    positional = [
        p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required = sum(p.default is p.empty for p in positional)
    if required > 2:
        return required
    return 1 if len(positional) == 1 else 2


@define(eq=False, slots=False)
class LearningRateScheduler(Plugin):
    """Set the optimizer's learning rate at the start of every epoch from a function.

    ``schedule(epoch, lr)`` gets the zero-based epoch and the optimizer's current
    ``learning_rate`` (a float) and returns the rate for that epoch, as in Keras; a
    one-argument ``schedule(epoch)`` is called with the epoch only (Keras's old API,
    recognised from the signature rather than by catching TypeError). The result
    must be a finite number > 0; anything else raises, naming the epoch and value.

    The rate is set as ``model.optimizer.learning_rate``, which then reads the rate in
    force, as in Keras; a ReduceLROnPlateau reduction reaches an ``lr``-dependent
    schedule through the ``lr`` of the next epoch, as in Keras.
    A step-level schedule from ``loopkit.schedules`` needs no plugin: pass it as the
    optimizer's ``learning_rate=``. Combining both fails at the start of ``fit``,
    since this plugin would silently replace the schedule with a float.

    ``plugins=["learning_rate_scheduler"]`` fails with a clear error: there is no
    sensible default schedule. Its last call is saved in checkpoints: on resume the
    rate it set is put back, and an epoch resumed mid-way gets the same ``lr`` as
    before the interruption, so ``lr``-dependent schedules continue exactly.

    Args:
        schedule: ``schedule(epoch, lr) -> lr`` (or ``schedule(epoch) -> lr``).
        verbose: 1 prints the rate set at each epoch.
        order: Position among plugins (default 0).
    """

    default_name = "learning_rate_scheduler"
    default_order = 0

    schedule: Callable[..., Any] | None = field(default=None, validator=_schedule_arity)
    verbose: int = field(default=0, validator=non_negative_int)
    _takes_lr: bool = field(init=False, default=True, repr=False)
    _last: tuple[int, float, float] | None = field(init=False, default=None, repr=False)
    """``(epoch, lr passed, rate returned)`` of the last call of ``schedule``."""
    _resume: tuple[int, float, float] | None = field(init=False, default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        assert self.schedule is not None  # the validator refuses None
        self._takes_lr = _positional_arity(self.schedule) == 2

    @hookimpl
    def on_train_begin(self, model: Sequential) -> None:
        optimizer = _optimizer(model, "LearningRateScheduler")
        if isinstance(optimizer.raw_learning_rate, LearningRateSchedule):
            raise ConfigError(
                "LearningRateScheduler: the optimizer's learning_rate is the schedule "
                f"{optimizer.raw_learning_rate!r}, which this plugin would replace by a "
                "float at every epoch. Use one of them: drop the plugin, or compile with a "
                "float learning_rate."
            )
        if self._resume is not None:  # resumed: the rate the interrupted run had
            optimizer.learning_rate = self._resume[2]

    @hookimpl
    def on_epoch_begin(self, model: Sequential, epoch: int) -> None:
        optimizer = _optimizer(model, "LearningRateScheduler")
        lr = float(optimizer.raw_learning_rate)  # a float: on_train_begin checked
        if self._resume is not None:
            # Resumed inside the epoch of the last call: pass the rate it was given, so
            # an lr-dependent schedule does not apply that epoch's change twice.
            if self._resume[0] == epoch:
                lr = self._resume[1]
            self._resume = None
        assert self.schedule is not None
        rate = self.schedule(epoch, lr) if self._takes_lr else self.schedule(epoch)
        call = f"schedule({epoch}, {lr!r})" if self._takes_lr else f"schedule({epoch})"
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
            raise TypeError(
                f"LearningRateScheduler: {call} returned {rate!r} of type "
                f"{type(rate).__name__}; expected a float, the learning rate for epoch "
                f"{epoch}. Return a number, e.g. lr * 0.9."
            )
        rate = float(rate)
        if not (math.isfinite(rate) and rate > 0):
            raise ConfigError(
                f"LearningRateScheduler: {call} returned {rate!r}; expected a finite "
                "learning rate > 0. Fix the schedule function (a rate of 0 would stop "
                "training: end the run with fewer epochs instead)."
            )
        optimizer.learning_rate = rate
        self._last = (epoch, lr, rate)
        if self.verbose > 0:
            print(
                f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                f"{rate}."
            )

    def state_dict(self) -> dict[str, Any]:
        """Return the last call of ``schedule``: epoch, ``lr`` and result (for resume)."""
        if self._last is None:
            return {"epoch": None, "lr": None, "learning_rate": None}
        epoch, lr, rate = self._last
        return {"epoch": epoch, "lr": lr, "learning_rate": rate}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned; applied at the start of the next fit."""
        if state.get("epoch") is None:
            self._last = self._resume = None
            return
        self._last = self._resume = (
            int(state["epoch"]),
            float(state["lr"]),
            float(state["learning_rate"]),
        )


# --- ReduceLROnPlateau --------------------------------------------------------------------


@define(eq=False, slots=False)
class ReduceLROnPlateau(Monitored, Plugin):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving.

    Keras semantics: at each epoch end, during cooldown the cooldown counter drops
    by one and the wait resets; then a value better than the best by more than
    ``min_delta`` resets the wait; otherwise, once out of cooldown, the wait grows,
    and when it reaches ``patience`` the rate becomes ``max(lr * factor, min_lr)``
    (if it is above ``min_lr``), the wait resets and the cooldown counter is set to
    ``cooldown``. As in Keras, the counter is tested after it drops, so
    ``cooldown=N`` leaves N - 1 epochs after a reduction without waiting.

    As in Keras, a float ``learning_rate`` is replaced: ``model.optimizer.
    learning_rate`` reads the rate in force, and a LearningRateScheduler's next
    ``schedule(epoch, lr)`` gets the reduced rate. Unlike Keras 3, which fails when
    the optimizer's learning rate is a schedule, a schedule is kept and the
    optimizer's ``learning_rate_multiplier`` is reduced instead: the effective rate
    is ``schedule(step) * multiplier``. ``lr`` and ``min_lr`` above refer to the
    effective rate (``model.optimizer.current_learning_rate``, logged as
    ``learning_rate``); the floor applies when a reduction is made, and a decaying
    schedule may take the rate lower afterwards.

    A ``monitor`` the run can never log fails at the start of ``fit``; an epoch
    whose logs lack it is skipped, with one warning per fit. The counters restart
    at each ``fit`` unless restored from a checkpoint, which also restores the
    multiplier.

    Args:
        monitor: Log key to watch, e.g. ``"val_loss"``.
        factor: Multiplies the rate at each reduction; in (0, 1).
        patience: Epochs without improvement before a reduction.
        verbose: 1 prints a line at each reduction.
        mode: ``"min"``, ``"max"``, or ``"auto"`` (from the name, as EarlyStopping;
            Keras's ReduceLROnPlateau recognises only "acc").
        min_delta: How much better than the best a value must be to count.
        cooldown: Counts down from a reduction; the wait stays 0 until it is 0.
        min_lr: Lower bound on the effective learning rate.
        order: Position among plugins (default 100, with the other monitors).
        name: Key of this plugin's state in checkpoints.

    Attributes:
        wait: Epochs since the last improvement (outside cooldown).
        cooldown_counter: Cooldown epochs left.
    """

    default_name = "reduce_lr_on_plateau"
    default_order = 100

    monitor: str = field(default="val_loss", validator=monitor_key)
    factor: float = field(default=0.1, validator=in_open_range(0, 1))
    patience: int = field(default=10, validator=non_negative_int)
    verbose: int = field(default=0, validator=non_negative_int)
    mode: str = field(default="auto", validator=one_of("auto", "min", "max"))
    min_delta: float = field(default=1e-4, validator=non_negative)
    cooldown: int = field(default=0, validator=non_negative_int)
    min_lr: float = field(default=0.0, validator=non_negative)
    wait: int = field(init=False, default=0)
    cooldown_counter: int = field(init=False, default=0)
    _tracker: Monitor = field(init=False, repr=False)
    _warned: bool = field(init=False, default=False, repr=False)
    _restored: bool = field(init=False, default=False, repr=False)
    _pending_multiplier: float | None = field(init=False, default=None, repr=False)
    _model: Sequential | None = field(init=False, default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        self._tracker = Monitor(self.monitor, self.mode, self.min_delta)

    @hookimpl
    def on_train_begin(self, model: Sequential) -> None:
        self._model = model  # state_dict saves its optimizer's multiplier
        self._warned = False
        if self._restored:
            self._restored = False
            if self._pending_multiplier is not None:
                optimizer = _optimizer(model, "ReduceLROnPlateau")
                optimizer.learning_rate_multiplier = self._pending_multiplier
                self._pending_multiplier = None
            return
        self._tracker.reset()
        self.wait = self.cooldown_counter = 0

    @hookimpl
    def on_epoch_end(
        self, model: Sequential, epoch: int, logs: Mapping[str, float]
    ) -> None:
        current = logs.get(self.monitor)
        if current is None:
            if not self._warned and not model.stop_training:
                self._warned = True
                warnings.warn(
                    f"ReduceLROnPlateau(monitor={self.monitor!r}): the logs of epoch "
                    f"{epoch} have no {self.monitor!r}; available keys: {sorted(logs)}. "
                    "Epochs without it are skipped. Warned once per fit.",
                    LoopkitWarning,
                    stacklevel=2,
                )
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        value = float(current)
        if self._tracker.improves(value):
            self._tracker.best = value
            self.wait = 0
        elif self.cooldown_counter == 0:  # tested after the drop, as in Keras
            self.wait += 1
            if self.wait >= self.patience:
                self._reduce(model, epoch)

    def _reduce(self, model: Sequential, epoch: int) -> None:
        optimizer = _optimizer(model, "ReduceLROnPlateau")
        old = optimizer.current_learning_rate
        # The floor is compared with a relative tolerance: rescaling the multiplier
        # leaves the rate an ulp or two off min_lr, which must not count as above it.
        if not old > self.min_lr or math.isclose(old, self.min_lr, rel_tol=1e-6):
            return
        new = max(old * self.factor, self.min_lr)
        if isinstance(optimizer.raw_learning_rate, LearningRateSchedule):
            optimizer.learning_rate_multiplier *= new / old
        else:
            optimizer.learning_rate = new / optimizer.learning_rate_multiplier
        self.cooldown_counter = self.cooldown
        self.wait = 0
        if self.verbose > 0:
            print(
                f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}."
            )

    def state_dict(self) -> dict[str, Any]:
        """Return the counters, the best value and the multiplier (for resume)."""
        best = self._tracker.best
        return {
            "wait": self.wait,
            "cooldown_counter": self.cooldown_counter,
            "best": best if math.isfinite(best) else None,
            "learning_rate_multiplier": self._multiplier(),
        }

    def _multiplier(self) -> float | None:
        optimizer = None if self._model is None else self._model.optimizer
        return None if optimizer is None else float(optimizer.learning_rate_multiplier)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned; the next ``fit`` continues from it."""
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self._tracker.reset()
        if state["best"] is not None:
            self._tracker.best = float(state["best"])
        multiplier = state.get("learning_rate_multiplier")
        self._pending_multiplier = None if multiplier is None else float(multiplier)
        self._restored = True
