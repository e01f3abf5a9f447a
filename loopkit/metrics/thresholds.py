"""Confusion counts at thresholds, and the best rate at a target rate (Keras's names)."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError
from loopkit.metrics.confusion import (
    Thresholded,
    check_class_id,
    check_thresholds,
    confusion_counts,
    threshold_values,
    to_list,
)
from loopkit.typing import Array, FloatArray
from loopkit.validators import in_closed_range

__all__ = [
    "FalseNegatives",
    "FalsePositives",
    "PrecisionAtRecall",
    "RecallAtPrecision",
    "SensitivityAtSpecificity",
    "SpecificityAtSensitivity",
    "TrueNegatives",
    "TruePositives",
]

_COUNTS = ("true_positives", "false_positives", "true_negatives", "false_negatives")


@define(eq=False)
class _Count(Thresholded):
    """One confusion count at each threshold (``y_pred > t`` is predicted positive)."""

    state_names: ClassVar[tuple[str, ...]] = ("accumulator",)
    count: ClassVar[str] = ""
    thresholds: float | list[float] | None = field(
        default=None, converter=to_list, validator=check_thresholds
    )
    _values: FloatArray = field(init=False, repr=False)
    _order: Array = field(init=False, repr=False)
    _accumulator: FloatArray = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._values, self._order = threshold_values(self.thresholds, 0.5)
        super().__attrs_post_init__()

    def update_state(
        self, y_true: Array, y_pred: Array, sample_weight: Array | None = None
    ) -> None:
        counted = confusion_counts(
            *self._prepare(y_true, y_pred, sample_weight), self._values[self._order]
        )
        counts = dict(zip(_COUNTS, counted, strict=True))
        self._accumulator += counts[self.count][np.argsort(self._order)]

    def result(self) -> Any:
        values = self._accumulator
        return float(values[0]) if len(values) == 1 else [float(v) for v in values]

    def reset_state(self) -> None:
        self._accumulator = np.zeros(len(self._values))


def _count_class(name: str, count: str, what: str) -> type[_Count]:
    doc = (
        f"The weighted number of {what} at each threshold, as Keras's {name}.\n\n"
        "    Args:\n"
        "        thresholds: A threshold in [0, 1] or a list of them; 0.5 by default.\n"
        "            A list gives one count per threshold.\n"
        "        name: Log key.\n"
        "        dtype: See ``Metric``.\n    "
    )
    namespace = {
        "count": count,
        "default_name": count,
        "__doc__": doc,
        "__module__": __name__,
    }
    return define(eq=False)(type(name, (_Count,), namespace))


TruePositives = _count_class("TruePositives", "true_positives", "true positives")
FalsePositives = _count_class("FalsePositives", "false_positives", "false positives")
TrueNegatives = _count_class("TrueNegatives", "true_negatives", "true negatives")
FalseNegatives = _count_class("FalseNegatives", "false_negatives", "false negatives")


def _rate(part: FloatArray, other: FloatArray) -> FloatArray:
    """``part / (part + other)``, 0 where both are 0 (Keras's ``divide_no_nan``)."""
    total = part + other
    out: FloatArray = np.divide(part, total, out=np.zeros_like(total), where=total != 0)
    return out


@define(eq=False)
class _AtRate(Thresholded):
    """The best of one rate among the thresholds where another reaches ``value``.

    Keras's SensitivitySpecificityBase: ``num_thresholds`` evenly spaced thresholds
    from 0 to 1, the four counts at each, and ``max(dependent where constrained >=
    value)``, or 0 when no threshold reaches ``value``.
    """

    state_names: ClassVar[tuple[str, ...]] = _COUNTS
    constrained: ClassVar[str] = ""
    dependent: ClassVar[str] = ""
    num_thresholds: int = field(default=200, kw_only=True)
    class_id: int | None = field(
        default=None, kw_only=True, validator=attrs.validators.optional(check_class_id)
    )
    _values: FloatArray = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        n = self.num_thresholds
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ConfigError(
                f"{type(self).__name__} got num_thresholds={n!r}; expected an int > 0, "
                "such as 200 (the default)."
            )
        inner = [(i + 1) / (n - 1) for i in range(n - 2)]
        self._values = np.array([0.5] if n == 1 else [0.0, *inner, 1.0], np.float64)
        super().__attrs_post_init__()

    def update_state(
        self, y_true: Array, y_pred: Array, sample_weight: Array | None = None
    ) -> None:
        prepared = self._prepare(y_true, y_pred, sample_weight, class_id=self.class_id)
        counted = confusion_counts(*prepared, self._values)
        for key, count in zip(_COUNTS, counted, strict=True):
            setattr(self, f"_{key}", getattr(self, f"_{key}") + count)

    def reset_state(self) -> None:
        for key in _COUNTS:
            setattr(self, f"_{key}", np.zeros(len(self._values)))

    def _rates(self) -> dict[str, FloatArray]:
        tp, fp = self._true_positives, self._false_positives
        tn, fn = self._true_negatives, self._false_negatives
        recall = _rate(tp, fn)
        return {
            "sensitivity": recall,
            "recall": recall,
            "specificity": _rate(tn, fp),
            "precision": _rate(tp, fp),
        }

    def result(self) -> float:
        rates = self._rates()
        feasible = rates[self.constrained] >= getattr(self, self.constrained)
        return float(np.max(np.where(feasible, rates[self.dependent], 0.0), initial=0.0))


def _at_rate_class(name: str, dependent: str, constrained: str) -> type[_AtRate]:
    """Make the class whose first argument, named ``constrained``, is the rate to reach."""
    doc = (
        f"The best {dependent} among the thresholds whose {constrained} is at least\n"
        f"    ``{constrained}``, as Keras's {name}.\n\n"
        "    Args:\n"
        f"        {constrained}: The {constrained} to reach, in [0, 1].\n"
        "        num_thresholds: Number of evenly spaced thresholds in [0, 1], > 0.\n"
        "        class_id: Score only this index of the last axis.\n"
        "        name: Log key.\n"
        "        dtype: See ``Metric``.\n    "
    )
    snake = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    namespace = {
        "constrained": constrained,
        "dependent": dependent,
        "default_name": snake,
        "__doc__": doc,
        "__module__": __name__,
        "__annotations__": {constrained: "float"},
        constrained: field(validator=in_closed_range(0.0, 1.0)),
    }
    return define(eq=False)(type(name, (_AtRate,), namespace))


SensitivityAtSpecificity = _at_rate_class(
    "SensitivityAtSpecificity", "sensitivity", "specificity"
)
SpecificityAtSensitivity = _at_rate_class(
    "SpecificityAtSensitivity", "specificity", "sensitivity"
)
PrecisionAtRecall = _at_rate_class("PrecisionAtRecall", "precision", "recall")
RecallAtPrecision = _at_rate_class("RecallAtPrecision", "recall", "precision")
