"""Confusion-matrix metrics: Precision, Recall and AUC from thresholded TP/FP/TN/FN."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import attrs
import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError, ShapeError
from loopkit.metrics.base import (
    Metric,
    as_float,
    check_name,
    squeeze_or_expand_to_same_rank,
)
from loopkit.typing import Array, FloatArray
from loopkit.validators import dtype_name, float_dtype, one_of, positive_int

__all__ = [
    "AUC",
    "Precision",
    "Recall",
    "Thresholded",
    "check_class_id",
    "check_thresholds",
    "confusion_counts",
    "threshold_values",
    "to_list",
]

_EPSILON = 1e-7  # Keras's backend.epsilon(): AUC's end thresholds sit just outside [0, 1]


def check_thresholds(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept None, a threshold in [0, 1] or a non-empty list of them (attrs validator)."""
    if value is None:
        return
    values = value if isinstance(value, list) else [value]
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float))]
    if bad or not values:
        raise TypeError(
            f"{type(instance).__name__} got {attribute.alias or attribute.name}={value!r}; "
            "expected a number or a non-empty list of numbers in [0, 1], such as "
            "[0.3, 0.5]."
        )
    if not all(0.0 <= v <= 1.0 for v in values):
        raise ConfigError(
            f"{type(instance).__name__} got {attribute.alias or attribute.name}={value!r}; "
            "every threshold must be in [0, 1]. Pass probabilities (apply a sigmoid to "
            "logits)."
        )


def threshold_values(thresholds: Any, default: float) -> tuple[FloatArray, Array]:
    """Return the thresholds as a float64 array (``[default]`` for None) and their sort.

    The counts are computed on sorted thresholds; ``values[order]`` is sorted, and
    ``argsort(order)`` brings results back to the order the user gave.
    """
    given = [default] if thresholds is None else thresholds
    values = np.array(given if isinstance(given, list) else [given], np.float64)
    return values, np.argsort(values, kind="stable")


def to_list(value: Any) -> Any:
    """Turn a tuple or array of thresholds into a list (converter)."""
    return list(value) if isinstance(value, (tuple, np.ndarray)) else value


def check_class_id(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept an int >= 0 indexing the last axis of ``y_pred`` (attrs validator)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(
            f"{type(instance).__name__} got {attribute.name}={value!r}; expected an "
            "int >= 0 indexing the last axis of y_pred."
        )


def _filter_top_k(y_pred: FloatArray, k: int) -> FloatArray:
    """Keep the ``k`` top scores of the last axis (lower index wins ties); -inf the rest."""
    top = np.argsort(-y_pred, axis=-1, kind="stable")[..., :k]
    keep = np.zeros(y_pred.shape, bool)
    np.put_along_axis(keep, top, True, axis=-1)
    return np.where(keep, y_pred, -np.inf)


def confusion_counts(
    positive: Array,
    y_pred: FloatArray,
    weights: FloatArray | None,
    thresholds: FloatArray,
    *,
    by_label: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Return weighted TP, FP, TN, FN counts of ``y_pred > t`` for each threshold ``t``.

    Each prediction is bucketed by how many thresholds lie strictly below it
    (``np.searchsorted``, exact for any threshold values), the weights of
    positives and negatives are summed per bucket (``np.bincount``), and a
    reversed cumulative sum gives the counts above every threshold at once:
    O(n log T) instead of the (n, T) comparison matrix. NaN predictions count as
    negative at every threshold.

    Args:
        positive: bool labels, shape of ``y_pred``.
        y_pred: float scores, ``(batch, ...)``.
        weights: float64 weights of the shape of ``y_pred``, or None for ones.
        thresholds: ``(T,)`` sorted ascending.
        by_label: Count each index of the last axis separately (``(T, labels)``
            results) instead of pooling every element (``(T,)``).
    """
    n_thr = len(thresholds)
    bucket = np.searchsorted(thresholds.astype(y_pred.dtype), y_pred, side="left")
    bucket[np.isnan(y_pred)] = 0
    labels = y_pred.shape[-1] if by_label and y_pred.ndim > 1 else 1
    if labels > 1:
        bucket = bucket + np.arange(labels) * (n_thr + 1)
    w = np.ones(y_pred.shape) if weights is None else weights
    size = labels * (n_thr + 1)
    flat = bucket.ravel()
    shape = (labels, n_thr + 1)
    pos = np.asarray(np.bincount(flat, (w * positive).ravel(), size), np.float64).reshape(
        shape
    )
    neg = np.asarray(np.bincount(flat, (w * ~positive).ravel(), size), np.float64).reshape(
        shape
    )
    # Bucket b holds predictions above thresholds[:b]: the count above threshold i
    # is the sum of buckets i+1 and higher.
    tp = np.cumsum(pos[:, ::-1], axis=1)[:, ::-1][:, 1:]
    fp = np.cumsum(neg[:, ::-1], axis=1)[:, ::-1][:, 1:]
    fn = pos.sum(axis=1, keepdims=True) - tp
    tn = neg.sum(axis=1, keepdims=True) - fp
    if by_label:
        return tp.T, fp.T, tn.T, fn.T
    return tp[0], fp[0], tn[0], fn[0]


def _divide(a: FloatArray, b: FloatArray) -> FloatArray:
    """Return ``a / b``, with 0 where ``b`` is 0 (Keras's ``divide_no_nan``)."""
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


@define(eq=False)
class Thresholded(Metric):
    """Shared input handling of the confusion metrics: shapes, top-k, class, weights."""

    # Keyword-only here: Keras's confusion metrics take their thresholds first.
    name: str = field(default="", kw_only=True, validator=check_name)
    dtype: str | None = field(
        default=None, kw_only=True, converter=dtype_name, validator=float_dtype
    )
    # The counts a subclass accumulates, among these (state_names lists them).
    _true_positives: FloatArray = field(init=False, repr=False)
    _false_positives: FloatArray = field(init=False, repr=False)
    _true_negatives: FloatArray = field(init=False, repr=False)
    _false_negatives: FloatArray = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.reset_state()  # allocate the counts (subclasses set their thresholds first)

    def _prepare(
        self,
        y_true: Array,
        y_pred: Array,
        sample_weight: Array | None,
        top_k: int | None = None,
        class_id: int | None = None,
    ) -> tuple[Array, FloatArray, FloatArray | None]:
        y_pred = as_float(y_pred)
        y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, np.asarray(y_true))
        where = f"{type(self).__name__}(name={self.name!r})"
        if y_true.shape != y_pred.shape:
            raise ShapeError(
                f"{where} got y_true with shape {y_true.shape} and y_pred with shape "
                f"{y_pred.shape}; they must match. Pass 0/1 labels shaped like y_pred."
            )
        if top_k is not None:
            y_pred = _filter_top_k(y_pred, top_k)
        if class_id is not None:
            if y_pred.ndim < 2:  # the last axis would be the batch: Keras refuses too
                raise ShapeError(
                    f"{where} has class_id={class_id}, so y_pred must be (num_samples, "
                    f"num_classes) (the class on the last axis); got shape "
                    f"{y_pred.shape}. Pass one score per class, or drop class_id for "
                    "one score per sample."
                )
            if class_id >= y_pred.shape[-1]:
                raise ShapeError(
                    f"{where} has class_id={class_id} but got y_pred with shape "
                    f"{y_pred.shape}; pass a class_id below its last axis's size."
                )
            y_true = y_true[..., class_id : class_id + 1]
            y_pred = y_pred[..., class_id : class_id + 1]
        if sample_weight is None:
            return y_true != 0, y_pred, None
        w = np.asarray(sample_weight, np.float64)
        if w.ndim > y_pred.ndim and w.shape[-1] == 1:
            w = w[..., 0]
        w = w.reshape(w.shape + (1,) * (y_pred.ndim - w.ndim))  # (batch,) -> (batch, 1)
        try:
            w = np.broadcast_to(w, y_pred.shape)
        except ValueError as err:
            raise ShapeError(
                f"{where} got sample_weight with shape {np.shape(sample_weight)} for "
                f"y_pred with shape {y_pred.shape}; pass one weight per sample, "
                "shape (batch,)."
            ) from err
        return y_true != 0, y_pred, w


_COUNT_KEYS = ("true_positives", "false_positives", "true_negatives", "false_negatives")


@define(eq=False)
class _PrecisionRecall(Thresholded):
    """``TP / (TP + other)`` at each threshold; subclasses name the other count."""

    thresholds: float | list[float] | None = field(
        default=None, converter=to_list, validator=check_thresholds
    )
    top_k: int | None = field(
        default=None, validator=attrs.validators.optional(positive_int)
    )
    class_id: int | None = field(
        default=None, validator=attrs.validators.optional(check_class_id)
    )
    _values: FloatArray = field(init=False, repr=False)
    _order: Array = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # With top_k and no thresholds, every top-k prediction is positive.
        default = 0.5 if self.top_k is None else -np.inf
        self._values, self._order = threshold_values(self.thresholds, default)
        super().__attrs_post_init__()

    def update_state(
        self, y_true: Array, y_pred: Array, sample_weight: Array | None = None
    ) -> None:
        prepared = self._prepare(y_true, y_pred, sample_weight, self.top_k, self.class_id)
        counted = confusion_counts(*prepared, self._values[self._order])
        counts = dict(zip(_COUNT_KEYS, counted, strict=True))
        inverse = np.argsort(self._order)  # back to the order the user gave
        for key in self.state_names:
            getattr(self, f"_{key}")[...] += counts[key][inverse]

    def result(self) -> float | list[float]:  # type: ignore[override]
        tp, other = (getattr(self, f"_{key}") for key in self.state_names)
        values = _divide(tp, tp + other)
        return float(values[0]) if len(values) == 1 else [float(v) for v in values]

    def reset_state(self) -> None:
        for key in self.state_names:
            setattr(self, f"_{key}", np.zeros(len(self._values)))


@define(eq=False)
class Precision(_PrecisionRecall):
    """Precision ``TP / (TP + FP)`` of binary or multi-label predictions (Keras semantics).

    A prediction is positive when it is strictly above the threshold, a label when
    it is nonzero; the elements of multi-label outputs are pooled.

    Args:
        thresholds: Threshold in [0, 1], or a list of them (then ``result`` gives
            one value per threshold, which the fit loop cannot log as one number).
            Defaults to 0.5, or to "every top-k prediction" when ``top_k`` is set.
        top_k: Count only the ``k`` highest scores of each sample as predicted.
        class_id: Score only this index of the last axis.
        name: Log key.
    """

    state_names: ClassVar[tuple[str, ...]] = ("true_positives", "false_positives")
    default_name: ClassVar[str] = "precision"


@define(eq=False)
class Recall(_PrecisionRecall):
    """Recall ``TP / (TP + FN)`` of binary or multi-label predictions (Keras semantics).

    Predictions, labels and arguments as for ``Precision``.
    """

    state_names: ClassVar[tuple[str, ...]] = ("true_positives", "false_negatives")
    default_name: ClassVar[str] = "recall"


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sorted_list(value: Any) -> Any:
    return sorted(value) if isinstance(value, (list, tuple, np.ndarray)) else value


def _auc_thresholds(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, list):
        raise TypeError(
            f"AUC got thresholds={value!r}; expected None or a list of numbers in "
            "[0, 1], such as [0.25, 0.5, 0.75]."
        )
    check_thresholds(instance, attribute, value)


def _at_least_two(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:  # Keras: allowed with thresholds=, which then set the count
        return
    positive_int(instance, attribute, value)
    if value < 2:
        raise ConfigError(
            f"AUC got num_thresholds={value!r}; expected an int > 1 (the default is 200)."
        )


def _precision_recall_gains(
    tp: FloatArray, fp: FloatArray, tn: FloatArray, fn: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Return recall gain and precision gain (Flach & Kull, 2015), as Keras bounds them.

    ``gain = 1 - (P / N) * other / tp`` for recall (other = FN) and precision (FP).
    Where ``tp`` is 0 the recall gain is 0 and the precision gain 1; a negative
    recall gain (recall below the positive rate) is 0.
    """
    scale = _divide(tp + fn, tn + fp)
    recall_gain = np.where(tp == 0, 0.0, 1.0 - scale * _divide(fn, tp))
    precision_gain = np.where(tp == 0, 1.0, 1.0 - scale * _divide(fp, tp))
    return np.maximum(recall_gain, 0.0), precision_gain


@define(eq=False)
class AUC(Thresholded):
    """Area under the ROC, precision-recall or PR-gain curve, from thresholded counts.

    As in Keras, predictions are compared against ``num_thresholds`` thresholds
    (``-1e-7``, evenly spaced points of (0, 1), and ``1 + 1e-7``); the curve through
    the resulting (FPR, TPR) or (recall, precision) points is summed with the
    trapezoid rule ("interpolation"), the lower ("minoring") or the upper
    ("majoring") Riemann sum. PR interpolation follows Davis & Goadrich (2006),
    interpolating TP linearly in the number of predicted positives. The ROC AUC
    differs from the exact one by at most half the share of positive-negative
    pairs scored between the same two thresholds. Unlike Keras's bucketing
    shortcut, predictions outside [0, 1] are compared with the thresholds exactly.
    Labels are positive when nonzero.

    Args:
        num_thresholds: Number of thresholds (more is finer and slower), > 1; may be
            None when ``thresholds`` is given.
        curve: ``"ROC"``, ``"PR"`` or ``"PRGAIN"`` (precision-recall gain, Flach &
            Kull, 2015).
        summation_method: ``"interpolation"``, ``"minoring"`` or ``"majoring"``.
        thresholds: Inner thresholds in [0, 1] to use instead of evenly spaced
            ones; ``num_thresholds`` then becomes ``len(thresholds) + 2``.
        multi_label: Compute one AUC per index of the last axis and average them,
            instead of pooling every element into one curve.
        num_labels: Number of labels when ``multi_label``; inferred from the first
            batch if None.
        from_logits: Apply a sigmoid to ``y_pred`` first.
        name: Log key.
    """

    state_names: ClassVar[tuple[str, ...]] = (
        "true_positives",
        "false_positives",
        "true_negatives",
        "false_negatives",
    )
    default_name: ClassVar[str] = "auc"
    num_thresholds: int = field(default=200, validator=_at_least_two)
    curve: Literal["ROC", "PR", "PRGAIN"] = field(
        default="ROC", converter=_upper, validator=one_of("ROC", "PR", "PRGAIN")
    )
    summation_method: Literal["interpolation", "minoring", "majoring"] = field(
        default="interpolation",
        converter=_lower,
        validator=one_of("interpolation", "minoring", "majoring"),
    )
    _thresholds: list[float] | None = field(
        default=None, converter=_sorted_list, validator=_auc_thresholds
    )
    multi_label: bool = False
    num_labels: int | None = field(
        default=None, validator=attrs.validators.optional(positive_int)
    )
    from_logits: bool = False
    _values: FloatArray = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self._thresholds is not None:
            self.num_thresholds = len(self._thresholds) + 2
            inner: Sequence[float] = self._thresholds
        elif self.num_thresholds is None:
            raise ConfigError(
                "AUC got num_thresholds=None and no thresholds=; pass num_thresholds "
                "(200 by default) or a list of thresholds."
            )
        else:
            n = self.num_thresholds
            inner = [(i + 1) / (n - 1) for i in range(n - 2)]
        self._values = np.array([-_EPSILON, *inner, 1.0 + _EPSILON], np.float64)
        super().__attrs_post_init__()

    @property
    def thresholds(self) -> list[float]:
        """Every threshold compared against, the two just outside [0, 1] included.

        As Keras's ``auc.thresholds``: ``num_thresholds`` values, ascending.
        """
        return [float(t) for t in self._values]

    def reset_state(self) -> None:
        shape: tuple[int, ...] = (self.num_thresholds,)
        if self.multi_label:  # (T, 0) until the first batch shows the label count
            built = getattr(self, "_true_positives", None)
            labels = built.shape[1] if built is not None else self.num_labels or 0
            shape = (self.num_thresholds, labels)
        for key in self.state_names:
            setattr(self, f"_{key}", np.zeros(shape))

    def update_state(
        self, y_true: Array, y_pred: Array, sample_weight: Array | None = None
    ) -> None:
        positive, pred, w = self._prepare(y_true, y_pred, sample_weight)
        if self.from_logits:
            pred = 0.5 * (1.0 + np.tanh(0.5 * pred))  # sigmoid, without overflow
        counts = confusion_counts(
            positive, pred, w, self._values, by_label=self.multi_label
        )
        if self.multi_label:
            labels = counts[0].shape[1]
            if self._true_positives.shape[1] == 0:
                self._resize(labels)
            if self._true_positives.shape[1] != labels:
                raise ShapeError(
                    f"AUC(name={self.name!r}, multi_label=True) has "
                    f"{self._true_positives.shape[1]} labels but got y_pred with shape "
                    f"{np.shape(y_pred)}; pass outputs with the same last axis every batch."
                )
        for key, c in zip(self.state_names, counts, strict=True):
            getattr(self, f"_{key}")[...] += c

    def _resize(self, labels: int) -> None:
        for key in self.state_names:
            setattr(self, f"_{key}", np.zeros((self.num_thresholds, labels)))

    def result(self) -> float:
        tp, fp = self._true_positives, self._false_positives
        tn, fn = self._true_negatives, self._false_negatives
        if self.curve == "PR" and self.summation_method == "interpolation":
            terms = self._interpolated_pr_terms()
        else:
            if self.curve == "ROC":
                x, y = _divide(fp, fp + tn), _divide(tp, tp + fn)
            elif self.curve == "PR":
                x, y = _divide(tp, tp + fn), _divide(tp, tp + fp)
            else:
                x, y = _precision_recall_gains(tp, fp, tn, fn)
            if self.summation_method == "interpolation":
                heights = (y[:-1] + y[1:]) / 2
            elif self.summation_method == "minoring":
                heights = np.minimum(y[:-1], y[1:])
            else:
                heights = np.maximum(y[:-1], y[1:])
            terms = (x[:-1] - x[1:]) * heights
        per_curve = terms.sum(axis=0)
        return float(np.mean(per_curve)) if per_curve.size else 0.0

    def _interpolated_pr_terms(self) -> FloatArray:
        """Return the area between consecutive thresholds of the interpolated PR curve.

        Between two thresholds TP is linear in P = TP + FP (slope ``s``, intercept
        ``c``), so precision is ``s + c / P`` and the area under precision over recall
        ``TP / n_pos`` is ``s * (dTP + c * ln(P_lo / P_hi)) / n_pos`` (Davis &
        Goadrich 2006, as Keras computes it).
        """
        tp, fn = self._true_positives, self._false_negatives
        p = tp + self._false_positives
        dtp = tp[:-1] - tp[1:]
        dp = p[:-1] - p[1:]
        slope = _divide(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide(p[:-1], np.maximum(p[1:], 0)), 1.0)
        return _divide(
            slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0)
        )
