"""Keras 3's console output: a progress bar (verbose=1) or a line per epoch (verbose=2)."""

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


def _format_value(value: float) -> str:
    """Keras's number format: 4 decimals, or 4 significant digits below 1e-3."""
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def _format_logs(logs: Mapping[str, Any]) -> str:
    """``" - key: value"`` for each numeric log, in the logs' order (Keras's)."""
    return "".join(
        f" - {key}: {_format_value(float(value))}"
        for key, value in logs.items()
        # not e.g. predict's "outputs" array
        if isinstance(value, numbers.Real) and not isinstance(value, bool)
    )


def _format_eta(seconds: float) -> str:
    if seconds > 3600:
        hours, minutes = int(seconds // 3600), int(seconds % 3600 // 60)
        return f"{hours}:{minutes:02d}:{int(seconds % 60):02d}"
    if seconds > 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


def _per_step(seconds: float, steps: int) -> str:
    each = seconds / max(steps, 1)
    if each >= 1 or each == 0:
        return f"{each:.0f}s/step"
    if each >= 1e-3:
        return f"{each * 1e3:.0f}ms/step"
    return f"{each * 1e6:.0f}us/step"


def _count(done: int, total: int) -> str:
    """``done/total`` with ``done`` right-aligned to the width of ``total`` (Keras)."""
    return f"{done:>{len(str(total))}}/{total}"


@define(eq=False, slots=False)
class EpochLines(Plugin):
    """Print Keras 3's ``verbose=2`` output: a line per epoch, ``evaluate`` or ``predict``.

    ``Epoch 3/10`` (when ``epochs > 1``) then, at the epoch's end,
    ``32/32 - 1s - 31ms/step - loss: 0.1234 - val_loss: 0.2345``. ``evaluate`` and
    ``predict`` print that line for their pass.

    Args:
        stream: Where to write; ``sys.stdout`` at the time of writing when None.
    """

    default_name = "progress"
    default_order = 900  # after the monitors, before History

    stream: TextIO | None = field(default=None, repr=False)
    _start: float = field(default=0.0, init=False, repr=False)
    _in_fit: bool = field(default=False, init=False, repr=False)
    _done: int = field(default=0, init=False, repr=False)

    @property
    def out(self) -> TextIO:
        """The stream written to."""
        if not is_primary():  # under DataParallel rank 0 alone prints
            return _DISCARD
        return self.stream if self.stream is not None else sys.stdout

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def _begin(self) -> None:
        self._start, self._done = time.perf_counter(), 0

    def _finish(self, total: int | None, logs: Mapping[str, Any]) -> None:
        """Write the pass's closing line: count, time, time per step and the logs."""
        elapsed = time.perf_counter() - self._start
        done = self._done
        self._write(
            f"{_count(done, total or done)} - {elapsed:.0f}s - "
            f"{_per_step(elapsed, done)}{_format_logs(logs)}\n"
        )

    def _steps(self) -> int | None:
        steps = self.params.get("steps")
        return steps if isinstance(steps, int) else None

    @hookimpl
    def on_train_begin(self) -> None:
        self._in_fit = True

    @hookimpl
    def on_train_end(self) -> None:
        self._in_fit = False

    @hookimpl
    def on_epoch_begin(self, state: LoopState, epoch: int) -> None:
        self._begin()
        if state.epochs > 1:
            self._write(f"Epoch {epoch + 1}/{state.epochs}\n")

    @hookimpl
    def on_epoch_end(self, state: LoopState, logs: Mapping[str, float]) -> None:
        self._done = state.batch + 1
        self._finish(state.steps_per_epoch, logs)

    @hookimpl
    def on_test_begin(self) -> None:
        if not self._in_fit:  # validation inside fit is silent, as in Keras
            self._begin()

    @hookimpl
    def on_test_batch_end(self, batch: int, logs: Mapping[str, float]) -> None:
        if not self._in_fit:
            self._done = batch + 1

    @hookimpl
    def on_test_end(self, logs: Mapping[str, float]) -> None:
        if not self._in_fit:
            self._finish(self._steps(), logs)

    @hookimpl
    def on_predict_begin(self) -> None:
        self._begin()

    @hookimpl
    def on_predict_batch_end(self, batch: int) -> None:
        self._done = batch + 1

    @hookimpl
    def on_predict_end(self) -> None:
        self._finish(self._steps(), {})


@define(eq=False, slots=False)
class ProgressBar(EpochLines):
    """Keras 3's ``verbose=1`` bar, for ``fit``'s epochs, ``evaluate`` and ``predict``.

    ``12/32 ━━━━━━━━━━━━━━━━━━━━ 1s 31ms/step - loss: 0.1234``: steps done, the ETA
    (the elapsed time once done), time per step and the running logs; the epoch's
    final line adds the validation keys. Each redraw pads over the previous one, so
    a shorter line leaves no stale characters. On a terminal the bar is colored as
    Keras colors it (the part done green); elsewhere the part to go is drawn thin.

    Args:
        stream: Where to write; ``sys.stdout`` at the time of writing when None.
        width: Characters in the bar (Keras's 20).
        interval: Minimum seconds between redraws (Keras's 0.05), so printing never
            slows training.
    """

    width: int = 20
    interval: float = 0.05
    _last_draw: float = field(default=0.0, init=False, repr=False)
    _drawn: int = field(default=0, init=False, repr=False)

    def _begin(self) -> None:
        super()._begin()
        self._last_draw, self._drawn = 0.0, 0

    def _bar(self, done: int, total: int | None) -> tuple[str, int]:
        """Return the count and bar, and their width on screen (colors excluded)."""
        if not total:
            text = f"{done:7d}/Unknown"
            return text, len(text)
        count = _count(done, total)
        filled = min(int(self.width * done / total), self.width)
        rest = self.width - filled
        if getattr(self.out, "isatty", lambda: False)():
            text = (
                f"\x1b[1m{count}\x1b[0m \x1b[32m{'━' * filled}\x1b[0m"
                f"\x1b[37m{'━' * rest}\x1b[0m"
            )
        else:  # no colors in a file or pipe: the part to go is drawn thin
            text = f"{count} {'━' * filled}{'─' * rest}"
        return text, len(count) + 1 + self.width

    def _draw(
        self, done: int, total: int | None, logs: Mapping[str, Any], final: bool
    ) -> None:
        now = time.perf_counter()
        if not final and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        elapsed = now - self._start
        bar, width = self._bar(done, total)
        timing = (
            _format_eta(elapsed / max(done, 1) * (total - done))
            if total and not final
            else f"{elapsed:.0f}s"
        )
        info = f" {timing} {_per_step(elapsed, done)}{_format_logs(logs)}"
        width += len(info)
        pad = " " * max(self._drawn - width, 0)  # cover the longer line drawn before
        self._drawn = width
        self._write(f"\r{bar}{info}{pad}" + ("\n" if final else ""))

    @hookimpl
    def on_train_batch_end(
        self, state: LoopState, batch: int, logs: Mapping[str, float]
    ) -> None:
        total = state.steps_per_epoch
        self._draw(batch + 1, total, logs, final=False)

    @hookimpl
    def on_epoch_end(self, state: LoopState, logs: Mapping[str, float]) -> None:
        done = state.batch + 1
        self._draw(done, state.steps_per_epoch or done, logs, final=True)

    @hookimpl
    def on_test_batch_end(self, batch: int, logs: Mapping[str, float]) -> None:
        if not self._in_fit:
            self._done = batch + 1
            self._draw(self._done, self._steps(), logs, final=False)

    @hookimpl
    def on_test_end(self, logs: Mapping[str, float]) -> None:
        if not self._in_fit:
            self._draw(self._done, self._steps() or self._done, logs, final=True)

    @hookimpl
    def on_predict_batch_end(self, batch: int) -> None:
        self._done = batch + 1
        self._draw(self._done, self._steps(), {}, final=False)

    @hookimpl
    def on_predict_end(self) -> None:
        self._draw(self._done, self._steps() or self._done, {}, final=True)
