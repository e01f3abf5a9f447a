"""Watching one logged metric: which direction is better, and whether a value improved.

Public for plugin authors: EarlyStopping, ModelCheckpoint and ReduceLROnPlateau are
built on ``Monitor`` and validate their ``monitor=`` with ``monitor_key``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs
from attrs import define, field

from loopkit.errors import ConfigError

__all__ = ["MAXIMIZED_METRICS", "Monitor", "Monitored", "infer_mode", "monitor_key"]

MAXIMIZED_METRICS = (
    "acc",
    "auc",
    "precision",
    "recall",
    "f1",
    "fmeasure",
    "iou",
    "r2",
    "cosine_similarity",
    "true_positives",
    "true_negatives",
)
"""Substrings of metric names where higher is better (Keras's ``mode="auto"`` rule)."""


def infer_mode(monitor: str) -> Literal["min", "max"]:
    """Return ``"max"`` for accuracy-like metric names, else ``"min"`` (losses)."""
    name = monitor.removeprefix("val_").lower()
    return "max" if any(part in name for part in MAXIMIZED_METRICS) else "min"


def monitor_key(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept a non-empty string, the log key a plugin watches (attrs validator)."""
    if not isinstance(value, str) or not value:
        raise TypeError(
            f"{type(instance).__name__} got {attribute.name}={value!r}; expected the "
            "log key to watch as a non-empty string, e.g. monitor='val_loss'."
        )


@define(eq=False)
class Monitor:
    """Tracks the best value of one metric.

    Args:
        monitor: The log key, e.g. ``"val_loss"``.
        mode: ``"min"``, ``"max"``, or ``"auto"`` (from the name, see ``infer_mode``).
        min_delta: How much better than the best a value must be to count.
        initial: The value to beat at first; +inf for min, -inf for max when None.
    """

    monitor: str = field(validator=monitor_key)
    mode: str = "auto"
    min_delta: float = 0.0
    initial: float | None = None
    best: float = field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.mode not in ("min", "max", "auto"):
            raise ConfigError(
                f"Monitor({self.monitor!r}, mode={self.mode!r}): expected mode 'min' "
                "(lower is better), 'max' (higher is better) or 'auto' (from the name)."
            )
        if self.mode == "auto":
            self.mode = infer_mode(self.monitor)
        self.min_delta = abs(float(self.min_delta))
        self.reset()

    def reset(self) -> None:
        """Forget the best value seen."""
        if self.initial is not None:
            self.best = float(self.initial)
        else:
            self.best = math.inf if self.mode == "min" else -math.inf

    def improves(self, value: float) -> bool:
        """Return whether ``value`` beats the best by over ``min_delta``; NaN never does."""
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class Monitored:
    """Mixin for plugins that watch one logged key through ``self._tracker`` (a Monitor).

    Gives them Keras's settable ``best`` and the ``required_log_keys`` that make
    ``fit`` fail before the first step when ``monitor`` cannot be logged.
    """

    monitor: str
    _tracker: Monitor

    @property
    def required_log_keys(self) -> tuple[str, ...]:
        """The monitored key: ``fit`` fails before the first step if it cannot be logged."""
        return (self.monitor,)

    @property
    def best(self) -> float:
        """The best value of ``monitor`` so far (+inf/-inf before the first); settable."""
        return self._tracker.best

    @best.setter
    def best(self, value: float) -> None:
        self._tracker.best = float(value)
