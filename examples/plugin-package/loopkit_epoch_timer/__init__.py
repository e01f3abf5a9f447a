"""EpochTimer: a third-party loopkit plugin that logs how long every epoch took."""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping
from typing import Any

import loopkit

__all__ = ["EpochTimer", "SlowEpochSpecs"]


class SlowEpochSpecs:
    """The hook EpochTimer adds for other plugins: ``on_slow_epoch``."""

    @loopkit.hookspec
    def on_slow_epoch(self, model: Any, epoch: int, seconds: float) -> None:
        """Called after an epoch that took longer than ``EpochTimer(slow=...)`` seconds.

        Args:
            model: The model being fit.
            epoch: Zero-based index of the slow epoch.
            seconds: How long it took.
        """


class EpochTimer:
    """Log each epoch's wall time as ``epoch_seconds``, the total as ``total_seconds``.

    The total survives a resume (``state_dict``), so a run killed and restarted by
    ``BackupAndRestore`` still reports the time of every epoch it trained.

    Args:
        slow: Call the ``on_slow_epoch`` hook after epochs longer than this (seconds).
    """

    name = "epoch_timer"  # the key of its state in checkpoints
    order = 50  # before monitors (100), so EarlyStopping could watch its keys
    provided_log_keys = ("epoch_seconds", "total_seconds")
    hookspecs = SlowEpochSpecs

    def __init__(self, slow: float = float("inf")) -> None:
        self.slow = slow
        self.total = 0.0
        self._start = 0.0

    @loopkit.hookimpl
    def on_epoch_begin(self) -> None:
        self._start = time.perf_counter()

    @loopkit.hookimpl
    def on_epoch_end(
        self,
        model: Any,
        state: loopkit.LoopState,
        epoch: int,
        logs: MutableMapping[str, float],
    ) -> None:
        seconds = time.perf_counter() - self._start
        self.total += seconds
        logs["epoch_seconds"] = seconds  # on_epoch_end's logs may gain keys
        logs["total_seconds"] = self.total
        if seconds > self.slow:
            state.hooks.call("on_slow_epoch", model=model, epoch=epoch, seconds=seconds)

    def state_dict(self) -> dict[str, Any]:
        """Return what a resumed run needs: the time trained so far."""
        return {"total": self.total}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self.total = float(state["total"])
