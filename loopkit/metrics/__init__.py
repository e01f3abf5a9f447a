"""Metrics by name: every metric class, get() for compile(metrics=...), serialization."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopkit._registry import from_class_config, to_config
from loopkit.errors import ConfigError
from loopkit.metrics.accuracy import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
)
from loopkit.metrics.base import Mean, MeanMetricWrapper, Metric
from loopkit.metrics.confusion import AUC, Precision, Recall
from loopkit.typing import Shape
from loopkit.validators import suggest

__all__ = [
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "Mean",
    "MeanMetricWrapper",
    "Metric",
    "Precision",
    "Recall",
    "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "deserialize",
    "get",
    "serialize",
]

_BY_NAME: dict[str, type[Metric]] = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "precision": Precision,
    "recall": Recall,
    "auc": AUC,
}
_CLASSES: dict[str, type[Metric]] = {
    cls.__name__: cls
    for cls in (
        AUC,
        Accuracy,
        BinaryAccuracy,
        CategoricalAccuracy,
        Mean,
        MeanMetricWrapper,
        Precision,
        Recall,
        SparseCategoricalAccuracy,
        SparseTopKCategoricalAccuracy,
        TopKCategoricalAccuracy,
    )
}
_ACCURACY_NAMES = ("accuracy", "acc")
_NOT_LOSSES = ("deserialize", "get", "serialize")


def _loss_name(loss: Any) -> str | None:
    """Return the canonical name of a loss given by name, alias or object, or None."""
    if isinstance(loss, str):
        from loopkit import losses  # lazily, so metrics never depends on losses at import

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
        identifier: A metric or loss name, a ``Metric`` (returned as is), a dict
            ``{"class_name": ..., "config": ...}``, or a function
            ``(y_true, y_pred) -> per-sample values``.
        loss: The compiled loss, by name or object; only resolves ``"accuracy"``.
        output_shape: The model's output shape; only resolves ``"accuracy"``.

    Raises:
        ConfigError: ``identifier`` names no metric and no loss.
        TypeError: ``identifier`` is of an unusable kind.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, Mapping):
        return deserialize(identifier)
    if isinstance(identifier, str):
        if identifier in _ACCURACY_NAMES:
            return _accuracy_class(loss, output_shape)(name=identifier)
        cls = _BY_NAME.get(identifier) or _CLASSES.get(identifier)
        if cls is not None and cls not in (Mean, MeanMetricWrapper):
            return cls(name=identifier)
        return _loss_metric(identifier)
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError(
        f"metrics.get() got {identifier!r} of type {type(identifier).__name__}; "
        "expected a metric name such as 'accuracy', a Metric, a dict from "
        "serialize(), or a function (y_true, y_pred) -> per-sample values."
    )


def _loss_metric(name: str) -> Metric:
    from loopkit import losses

    try:
        return MeanMetricWrapper(name, name=name)  # resolved by loopkit.losses.get
    except ConfigError as err:
        names = [*_ACCURACY_NAMES, *_BY_NAME]
        # The loss functions share their losses' names ("mean_squared_error").
        loss_names = [n for n in losses.__all__ if n.islower() and n not in _NOT_LOSSES]
        raise ConfigError(
            f"metrics.get() got {name!r}, which names no metric and no loss; expected "
            f"a metric name ({names}) or a loss name ({loss_names}, or an alias such "
            f"as 'mse').{suggest(name, [*names, *loss_names])} Pass one of these "
            "names, or a Metric instance such as AUC(curve='PR')."
        ) from err


def serialize(metric: Metric) -> dict[str, Any]:
    """Return ``{"class_name": ..., "config": ...}``, JSON-ready, that ``get`` rebuilds."""
    return to_config(metric)


def deserialize(config: Mapping[str, Any]) -> Metric:
    """Rebuild a metric from ``serialize``'s dict.

    Raises:
        ConfigError: ``class_name`` names no metric class, or ``config`` has keys
            its constructor does not take.
    """
    return from_class_config("metrics.deserialize()", config, _CLASSES)
