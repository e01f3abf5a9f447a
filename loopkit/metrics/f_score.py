"""F-scores of multi-label or one-hot predictions: FBetaScore and F1Score, as Keras's."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError, ShapeError
from loopkit.metrics.base import (
    Metric,
    as_float,
    check_name,
)
from loopkit.typing import Array, FloatArray
from loopkit.validators import dtype_name, float_dtype, one_of

__all__ = ["F1Score", "FBetaScore"]

_EPSILON = 1e-7  # Keras's backend.epsilon() in the divisions of result()
_KEYS = ("true_positives", "false_positives", "false_negatives", "intermediate_weights")


@define(eq=False)
class FBetaScore(Metric):
    """``(1 + b^2) P R / (b^2 P + R)`` per class, or averaged, as Keras's FBetaScore.

    ``y_true`` and ``y_pred`` are ``(batch, classes)``. A prediction is positive
    above ``threshold``; with None, the highest score of each sample is (Keras's
    "argmax" mode). ``average``: None gives one score per class, ``"micro"`` pools
    every class's counts, ``"macro"`` averages the class scores, ``"weighted"``
    weighs them by their number of true instances.

    Args:
        average: None, ``"micro"``, ``"macro"`` or ``"weighted"``.
        beta: Weight of recall against precision, > 0.
        threshold: In (0, 1], or None for the top score of each sample.
        name: Log key.
        dtype: See ``Metric``.
    """

    state_names: ClassVar[tuple[str, ...]] = _KEYS
    default_name: ClassVar[str] = "fbeta_score"
    average: Literal["micro", "macro", "weighted"] | None = field(
        default=None, validator=one_of(None, "micro", "macro", "weighted")
    )
    beta: float = field(default=1.0)
    threshold: float | None = field(default=None)
    # After the arguments above positionally, as in Keras.
    name: str = field(default="", validator=check_name)
    dtype: str | None = field(default=None, converter=dtype_name, validator=float_dtype)
    _true_positives: FloatArray = field(init=False, repr=False)
    _false_positives: FloatArray = field(init=False, repr=False)
    _false_negatives: FloatArray = field(init=False, repr=False)
    _intermediate_weights: FloatArray = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        owner = type(self).__name__
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)):
            raise TypeError(f"{owner} got beta={self.beta!r}; expected a number > 0.")
        if self.beta <= 0:
            raise ConfigError(f"{owner} got beta={self.beta!r}; expected a number > 0.")
        t = self.threshold
        if t is not None and (not isinstance(t, float) or not 0 < t <= 1):
            raise ConfigError(
                f"{owner} got threshold={t!r}; expected None or a float in (0, 1], "
                "such as 0.5."
            )
        super().__attrs_post_init__()
        self.reset_state()  # allocate the accumulators

    def reset_state(self) -> None:
        for key in _KEYS:
            setattr(self, f"_{key}", np.zeros(0))

    def update_state(
        self, y_true: Array, y_pred: Array, sample_weight: Array | None = None
    ) -> None:
        y_true, y_pred = as_float(y_true), as_float(y_pred)
        if y_pred.ndim != 2 or y_true.shape != y_pred.shape:
            raise ShapeError(
                f"{type(self).__name__}(name={self.name!r}) got y_true with shape "
                f"{y_true.shape} and y_pred with shape {y_pred.shape}; expected both "
                "(batch, classes), with 0/1 labels."
            )
        if self.threshold is None:
            top = y_pred.max(axis=-1, keepdims=True)
            predicted = ((y_pred >= top) & (np.abs(y_pred) > 1e-9)).astype(np.float64)
        else:
            predicted = (y_pred > self.threshold).astype(np.float64)
        w = np.ones((len(y_true), 1)) if sample_weight is None else as_float(sample_weight)
        w = w.reshape(w.shape + (1,) * (2 - w.ndim))
        axis = None if self.average == "micro" else 0
        parts = (
            predicted * y_true,
            predicted * (1 - y_true),
            (1 - predicted) * y_true,
            y_true,
        )
        for key, part in zip(_KEYS, parts, strict=True):
            total = np.sum(part * w, axis=axis)
            current = getattr(self, f"_{key}")
            setattr(self, f"_{key}", total if current.size == 0 else current + total)

    def result(self) -> Any:
        if self._true_positives.size == 0:
            return 0.0
        tp = self._true_positives
        precision = tp / (tp + self._false_positives + _EPSILON)
        recall = tp / (tp + self._false_negatives + _EPSILON)
        b2 = self.beta**2
        score = precision * recall / (b2 * precision + recall + _EPSILON) * (1 + b2)
        if self.average == "weighted":
            weights = self._intermediate_weights
            return float(np.sum(score * weights / (np.sum(weights) + _EPSILON)))
        if self.average is not None:
            return float(np.mean(score))
        return [float(v) for v in score]


@define(eq=False)
class F1Score(FBetaScore):
    """FBetaScore with ``beta = 1``: the harmonic mean of precision and recall.

    Args:
        average: As for FBetaScore.
        threshold: As for FBetaScore.
        name: Log key.
        dtype: See ``Metric``.
    """

    default_name: ClassVar[str] = "f1_score"
    beta: float = field(init=False, default=1.0)
    threshold: float | None = field(default=None)
    name: str = field(default="", validator=check_name)
    dtype: str | None = field(default=None, converter=dtype_name, validator=float_dtype)
