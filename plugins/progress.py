"""Keras-style console output: a progress bar per epoch, or one line per epoch."""

from __future__ import annotations

import io
import numbers
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from attrs import define, field

from loopkit import LoopState, Plugin, hookimpl
from loopkit.distributed import is_primary

__all__ = ["EpochLines", "ProgressBar"]


class _Discard(io.StringIO):
    """Where ranks other than 0 print under DataParallel: nowhere."""

    def write(self, text: str) -> int:
        return len(text)


_DISCARD = _Discard()


def _format_logs(logs: Mapping[str, Any]) -> str:
    """Format the numeric logs in their own order (loss, metrics, ``val_``), as Keras."""
    parts = []
    for key, value in logs.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue  # e.g. predict's "outputs" array
        v = float(value)
        tiny_or_huge = v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4)
        parts.append(f"{key}: {v:.4g}" if tiny_or_huge else f"{key}: {v:.4f}")
    return " - ".join(parts)


def _format_time(seconds: float) -> str:
    if seconds >= 3600:
        hours, minutes = int(seconds // 3600), int(seconds % 3600 // 60)
        return f"{hours}:{minutes:02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{seconds:.0f}s"


def _per_step(seconds: float, steps: int) -> str:
    each = seconds / max(steps, 1)
    return f"{each * 1e3:.0f}ms/step" if each >= 1e-3 else f"{each * 1e6:.0f}us/step"


@define(eq=False, slots=False)
class EpochLines(Plugin):
    """Print one line per epoch: steps, time, per-step time and the epoch logs (verbose=2).

    ``evaluate`` prints its time and logs on one line, ``predict`` its batch count,
    time and per-step time, as Keras's closing progress line.

    Args:
        stream: Where to write; ``sys.stdout`` at the time of writing when None.
    """

    default_name = "progress"
    default_order = 900  # after the monitors, before History

    stream: TextIO | None = field(default=None, repr=False)
    _start: float = field(default=0.0, init=False, repr=False)
    _in_fit: bool = field(default=False, init=False, repr=False)
    _predicted: int = field(default=0, init=False, repr=False)

    @property
    def out(self) -> TextIO:
        """The stream written to."""
        if not is_primary():  # under DataParallel rank 0 alone prints
            return _DISCARD
        return self.stream if self.stream is not None else sys.stdout

    @hookimpl
    def on_train_begin(self) -> None:
        self._in_fit = True

    @hookimpl
    def on_train_end(self) -> None:
        self._in_fit = False

    @hookimpl
    def on_epoch_begin(self, state: LoopState, epoch: int) -> None:
        self._start = time.perf_counter()
        self.out.write(f"Epoch {epoch + 1}/{state.epochs}\n")
        self.out.flush()

    @hookimpl
    def on_epoch_end(self, state: LoopState, logs: Mapping[str, float]) -> None:
        elapsed = time.perf_counter() - self._start
        steps = state.batch + 1
        self.out.write(
            f"{steps}/{state.steps_per_epoch or steps} - {_format_time(elapsed)} - "
            f"{_per_step(elapsed, steps)} - {_format_logs(logs)}\n"
        )
        self.out.flush()

    @hookimpl
    def on_test_begin(self) -> None:
        if not self._in_fit:  # validation inside fit must not restart the epoch's clock
            self._start = time.perf_counter()

    @hookimpl
    def on_test_end(self, state: LoopState, logs: Mapping[str, float]) -> None:
        if self._in_fit:
            return
        elapsed = time.perf_counter() - self._start
        self.out.write(f"{_format_time(elapsed)} - {_format_logs(logs)}\n")
        self.out.flush()

    @hookimpl
    def on_predict_begin(self) -> None:
        self._start = time.perf_counter()
        self._predicted = 0

    @hookimpl
    def on_predict_batch_end(self, batch: int) -> None:
        self._predicted = batch + 1

    @hookimpl
    def on_predict_end(self) -> None:
        elapsed = time.perf_counter() - self._start
        steps = self._predicted
        self.out.write(
            f"{steps}/{steps} - {_format_time(elapsed)} - {_per_step(elapsed, steps)}\n"
        )
        self.out.flush()


@define(eq=False, slots=False)
class ProgressBar(EpochLines):
    """A Keras-style bar per epoch, redrawn at most every ``interval`` seconds (verbose=1).

    Shows steps done, elapsed time or ETA, per-step time and running metrics; the
    epoch's final line adds the validation keys.

    Args:
        stream: Where to write; ``sys.stdout`` at the time of writing when None.
        width: Characters in the bar.
        interval: Minimum seconds between redraws, so printing never slows training.
    """

    width: int = 30
    interval: float = 0.1
    _last_draw: float = field(default=0.0, init=False, repr=False)

    def _bar(self, done: int, total: int | None) -> str:
        if not total:
            return f"{done}/?"
        filled = int(self.width * done / total)
        arrow = ">" if filled < self.width else ""
        body = "=" * max(filled - (1 if arrow else 0), 0) + arrow
        return f"{done}/{total} [{body:<{self.width}}]"

    @hookimpl
    def on_train_batch_end(
        self, state: LoopState, batch: int, logs: Mapping[str, float]
    ) -> None:
        now = time.perf_counter()
        total = state.steps_per_epoch
        if now - self._last_draw < self.interval and (total is None or batch + 1 < total):
            return
        self._last_draw = now
        elapsed = now - self._start
        done = batch + 1
        timing = (
            f"ETA: {_format_time(elapsed / done * (total - done))}"
            if total and done < total
            else _format_time(elapsed)
        )
        self.out.write(f"\r{self._bar(done, total)} - {timing} - {_format_logs(logs)}")
        self.out.flush()

    @hookimpl
    def on_epoch_end(self, state: LoopState, logs: Mapping[str, float]) -> None:
        elapsed = time.perf_counter() - self._start
        done = state.batch + 1
        self.out.write(
            f"\r{self._bar(done, state.steps_per_epoch or done)} - {_format_time(elapsed)} "
            f"{_per_step(elapsed, done)} - {_format_logs(logs)}\n"
        )
        self.out.flush()
