"""Metrics by name: every metric class, get() for compile(metrics=...), serialization."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopkit import losses
from loopkit._registry import Registry
from loopkit.errors import ConfigError
from loopkit.losses import (
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    categorical_hinge,
    hinge,
    huber,
    kl_divergence,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    poisson,
    sparse_categorical_crossentropy,
    squared_hinge,
)
from loopkit.metrics.accuracy import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from loopkit.metrics.base import Mean, MeanMetricWrapper, Metric, Sum
from loopkit.metrics.confusion import AUC, Precision, Recall
from loopkit.metrics.f_score import F1Score, FBetaScore
from loopkit.metrics.regression_metrics import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    KLDivergence,
    LogCoshError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    R2Score,
    RootMeanSquaredError,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)
from loopkit.metrics.thresholds import (
    FalseNegatives,
    FalsePositives,
    PrecisionAtRecall,
    RecallAtPrecision,
    SensitivityAtSpecificity,
    SpecificityAtSensitivity,
    TrueNegatives,
    TruePositives,
)
from loopkit.typing import Shape

__all__ = [
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "BinaryCrossentropy",
    "CategoricalAccuracy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "F1Score",
    "FBetaScore",
    "FalseNegatives",
    "FalsePositives",
    "Hinge",
    "KLDivergence",
    "LogCoshError",
    "Mean",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Metric",
    "Poisson",
    "Precision",
    "PrecisionAtRecall",
    "R2Score",
    "Recall",
    "RecallAtPrecision",
    "RootMeanSquaredError",
    "SensitivityAtSpecificity",
    "SparseCategoricalAccuracy",
    "SparseCategoricalCrossentropy",
    "SparseTopKCategoricalAccuracy",
    "SpecificityAtSensitivity",
    "SquaredHinge",
    "Sum",
    "TopKCategoricalAccuracy",
    "TrueNegatives",
    "TruePositives",
    "binary_accuracy",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "deserialize",
    "get",
    "hinge",
    "huber",
    "kl_divergence",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "poisson",
    "serialize",
    "sparse_categorical_accuracy",
    "sparse_categorical_crossentropy",
    "sparse_top_k_categorical_accuracy",
    "squared_hinge",
    "top_k_categorical_accuracy",
]

_CLASSES: tuple[type[Metric], ...] = (
    AUC, Accuracy, BinaryAccuracy, BinaryCrossentropy, CategoricalAccuracy,
    CategoricalCrossentropy, CategoricalHinge, CosineSimilarity, Hinge, KLDivergence,
    LogCoshError, Mean, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanMetricWrapper, MeanSquaredError, MeanSquaredLogarithmicError, Poisson,
    Precision, R2Score, Recall, RootMeanSquaredError, SparseCategoricalAccuracy,
    SparseCategoricalCrossentropy, SparseTopKCategoricalAccuracy, SquaredHinge,
    TopKCategoricalAccuracy, F1Score, FBetaScore, FalseNegatives, FalsePositives,
    PrecisionAtRecall, RecallAtPrecision, SensitivityAtSpecificity,
    SpecificityAtSensitivity, TrueNegatives, TruePositives, Sum,
)  # fmt: skip
_REGISTRY = Registry(
    kind="metric",
    module="metrics",
    base=Metric,
    names={
        "binary_accuracy": BinaryAccuracy,
        "categorical_accuracy": CategoricalAccuracy,
        "sparse_categorical_accuracy": SparseCategoricalAccuracy,
        "top_k_categorical_accuracy": TopKCategoricalAccuracy,
        "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
        "precision": Precision,
        "recall": Recall,
        "auc": AUC,
        "r2_score": R2Score,
        "cosine_similarity": CosineSimilarity,  # the loss of that name is its negative
        "f1_score": F1Score,
        "fbeta_score": FBetaScore,
        "true_positives": TruePositives,
        "true_negatives": TrueNegatives,
        "false_positives": FalsePositives,
        "false_negatives": FalseNegatives,
        "root_mean_squared_error": RootMeanSquaredError,
    },
    classes=_CLASSES,
    instead="a Metric instance such as AUC(curve='PR')",
    accepts="a metric or loss name such as 'accuracy', a Metric, a dict from "
    "metrics.serialize(), or a function (y_true, y_pred) -> per-sample values",
    write_names=False,
)
_ACCURACY_NAMES = ("accuracy", "acc")
_NOT_LOSSES = ("deserialize", "get", "serialize")


def _loss_name(loss: Any) -> str | None:
    """Return the canonical name of a loss given by name, alias or object, or None."""
    if isinstance(loss, str):
        given: str = loss
        try:
            loss = losses.get(given)  # "bce" or "BinaryCrossentropy" -> its Keras name
        except (ConfigError, TypeError):
            return given  # compile() reports the unknown loss itself
    name: Any = getattr(loss, "name", None)
    return name if isinstance(name, str) else None


def _accuracy_class(loss: Any, output_shape: Shape | None) -> type[Metric]:
    """Pick the accuracy that fits the loss and output, as Keras resolves ``"accuracy"``."""
    loss_name = _loss_name(loss)
    if loss_name == "binary_crossentropy" or (output_shape and output_shape[-1] == 1):
        return BinaryAccuracy
    if loss_name == "sparse_categorical_crossentropy":
        return SparseCategoricalAccuracy
    if loss_name == "categorical_crossentropy":
        return CategoricalAccuracy
    return Accuracy


def get(identifier: Any, *, loss: Any = None, output_shape: Shape | None = None) -> Metric:
    """Return the metric an identifier names, as ``compile(metrics=[...])`` does.

    ``"accuracy"``/``"acc"`` become ``BinaryAccuracy`` when the loss is binary
    cross-entropy or the output has one unit, ``SparseCategoricalAccuracy`` for
    sparse categorical cross-entropy, ``CategoricalAccuracy`` for categorical
    cross-entropy, else exact-match ``Accuracy``. A name that is no metric is tried
    as a loss name (``"mse"``, ``"binary_crossentropy"``), whose per-sample values
    are then averaged. A metric built from a string is logged under that string.

    Args:
        identifier: A metric or loss name, a ``Metric`` class or instance (returned
            as is), a dict ``{"class_name": ..., "config": ...}``, or a function
            ``(y_true, y_pred) -> per-sample values``.
        loss: The compiled loss, by name or object; only resolves ``"accuracy"``.
        output_shape: The model's output shape; only resolves ``"accuracy"``.

    Raises:
        ConfigError: ``identifier`` names no metric and no loss.
        TypeError: ``identifier`` is of an unusable kind.
    """
    if isinstance(identifier, str):
        if identifier in _ACCURACY_NAMES:
            return _accuracy_class(loss, output_shape)(name=identifier)
        cls = _REGISTRY.find(identifier)
        if cls is not None and cls not in (Mean, MeanMetricWrapper):
            return cls(name=identifier)  # type: ignore[call-arg]
        return _loss_metric(identifier)
    if (
        callable(identifier)
        and not isinstance(identifier, Metric)
        and not (isinstance(identifier, type) and issubclass(identifier, Metric))
    ):
        return MeanMetricWrapper(identifier)
    if identifier is None:
        raise _REGISTRY.wrong_kind("get", identifier)
    metric = _REGISTRY.get(identifier)
    assert metric is not None
    return metric


def _loss_metric(name: str) -> Metric:
    try:
        return MeanMetricWrapper(name, name=name)  # resolved by loopkit.losses.get
    except ConfigError as err:
        # The loss functions share their losses' names ("mean_squared_error").
        loss_names = [n for n in losses.__all__ if n.islower() and n not in _NOT_LOSSES]
        valid = [*_ACCURACY_NAMES, *_REGISTRY.valid_names(), *loss_names]
        raise _REGISTRY.unknown(name, f"metrics.get({name!r})", valid) from err


def serialize(metric: Metric) -> dict[str, Any]:
    """Return ``{"class_name": ..., "config": ...}``, JSON-ready, that ``get`` rebuilds.

    Raises:
        TypeError: ``metric`` is not a Metric.
    """
    return _REGISTRY.config_of(metric)


def deserialize(config: Mapping[str, Any] | str, custom_objects: Any = None) -> Metric:
    """Rebuild a metric from ``serialize``'s dict (or a metric name).

    Args:
        config: ``{"class_name": ..., "config": {...}}`` or a name such as ``"auc"``.
        custom_objects: Metric classes by class name, tried first.

    Raises:
        ConfigError: ``class_name`` names no metric class, or ``config`` has keys
            its constructor does not take.
        TypeError: ``config`` is neither a dict nor a name.
    """
    return _REGISTRY.deserialize(config, custom_objects)
