"""Accuracy metrics: exact, binary, categorical, sparse and top-k hits as weighted means."""

from __future__ import annotations

import functools
from typing import Any

import attrs
import numpy as np
from attrs import define, field

from loopkit.metrics.base import (
    MeanMetricWrapper,
    ValuesFn,
    as_float,
    check_name,
    squeeze_or_expand_to_same_rank,
)
from loopkit.typing import Array, FloatArray
from loopkit.validators import dtype_name, float_dtype, positive_int

__all__ = [
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
]


def _number(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{type(instance).__name__} got {attribute.name}={value!r} of type "
            f"{type(value).__name__}; expected a number such as 0.5."
        )


def _sparse_labels(y_true: Array, y_pred: Array) -> Array:
    """Return class indices shaped like ``y_pred.shape[:-1]``, squeezing ``(batch, 1)``."""
    y_true = np.asarray(y_true)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return y_true


def accuracy(y_true: Array, y_pred: Array) -> FloatArray:
    """Return 1.0 where ``y_pred`` equals ``y_true`` exactly, else 0.0, element-wise."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true).astype(y_pred.dtype, copy=False)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return np.equal(y_true, y_pred).astype(np.float64)


def binary_accuracy(y_true: Array, y_pred: Array, threshold: float = 0.5) -> FloatArray:
    """Return 1.0 where ``(y_pred > threshold)`` equals the 0/1 label, element-wise."""
    y_pred = as_float(y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(np.asarray(y_true), y_pred)
    return np.equal(y_true, y_pred > threshold).astype(np.float64)


def categorical_accuracy(y_true: Array, y_pred: Array) -> FloatArray:
    """Return 1.0 per sample where the one-hot target's class is ``y_pred``'s argmax."""
    return np.asarray(np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1), np.float64)


def sparse_categorical_accuracy(y_true: Array, y_pred: Array) -> FloatArray:
    """Return 1.0 per sample where the class index ``y_true`` is ``y_pred``'s argmax."""
    y_pred = np.asarray(y_pred)
    labels = _sparse_labels(y_true, y_pred)
    return np.asarray(labels == y_pred.argmax(axis=-1), np.float64)


def _in_top_k(labels: Array, y_pred: Array, k: int) -> FloatArray:
    """Return 1.0 where fewer than ``k`` classes score strictly above the target class.

    Ties at the k-th place count as a hit, as in ``tf.math.in_top_k``; a target
    index out of range or a non-finite target score counts as a miss.
    """
    y_pred = as_float(y_pred)
    labels = np.asarray(labels).astype(np.int64)
    n_classes = y_pred.shape[-1]
    valid = (labels >= 0) & (labels < n_classes)
    index = np.where(valid, labels, 0)[..., None]
    target = np.take_along_axis(y_pred, index, axis=-1)
    above = np.count_nonzero(y_pred > target, axis=-1)
    hit = valid & (above < k) & np.isfinite(target[..., 0])
    return np.asarray(hit, np.float64)


def top_k_categorical_accuracy(y_true: Array, y_pred: Array, k: int = 5) -> FloatArray:
    """Return 1.0 per sample where the one-hot target's class is among the top ``k``."""
    return _in_top_k(np.argmax(y_true, axis=-1), y_pred, k)


def sparse_top_k_categorical_accuracy(
    y_true: Array, y_pred: Array, k: int = 5
) -> FloatArray:
    """Return 1.0 per sample where the class index ``y_true`` is among the top ``k``."""
    y_pred = np.asarray(y_pred)
    return _in_top_k(_sparse_labels(y_true, y_pred), y_pred, k)


# Each class fixes ``fn`` (not a constructor argument, so not in its config).


@define(eq=False)
class Accuracy(MeanMetricWrapper):
    """How often ``y_pred`` equals ``y_true`` exactly (``keras.metrics.Accuracy``).

    Element-wise matches are averaged per sample, then over samples weighted by
    ``sample_weight``.

    Args:
        name: Log key.
    """

    fn: Any = field(init=False, default=accuracy, repr=False)


@define(eq=False)
class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches the 0/1 label (as in Keras).

    ``y_true`` and ``y_pred`` are ``(batch, units)`` (``(batch,)`` is accepted);
    with several units (multi-label) each sample scores the fraction it gets right.

    Args:
        threshold: Probability above which a prediction is 1; use 0.0 for logits.
        name: Log key.
    """

    fn: Any = field(init=False, default=binary_accuracy, repr=False)
    threshold: float = field(default=0.5, validator=_number)

    def _make_values_fn(self) -> ValuesFn:
        return functools.partial(binary_accuracy, threshold=self.threshold)


@define(eq=False)
class CategoricalAccuracy(MeanMetricWrapper):
    """How often ``argmax(y_pred)`` is the class of the one-hot ``y_true``.

    Args:
        name: Log key.
    """

    fn: Any = field(init=False, default=categorical_accuracy, repr=False)


@define(eq=False)
class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often ``argmax(y_pred)`` is the class index ``y_true``.

    ``y_true`` is ``(batch,)`` or ``(batch, 1)``, ints or integral floats.

    Args:
        name: Log key.
    """

    fn: Any = field(init=False, default=sparse_categorical_accuracy, repr=False)


@define(eq=False)
class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target's class is among the ``k`` highest predictions.

    A class tied with the k-th highest score counts as in the top ``k``.

    Args:
        k: Number of top predictions to consider.
        name: Log key.
    """

    fn: Any = field(init=False, default=top_k_categorical_accuracy, repr=False)
    k: int = field(default=5, validator=positive_int)
    # After k positionally, as in Keras: (k, name, dtype).
    name: str = field(default="", validator=check_name)
    dtype: str | None = field(default=None, converter=dtype_name, validator=float_dtype)

    def _make_values_fn(self) -> ValuesFn:
        return functools.partial(self.fn, k=self.k)


@define(eq=False)
class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """How often the class index ``y_true`` is among the ``k`` highest predictions.

    ``y_true`` is ``(batch,)`` or ``(batch, 1)``; an index outside the classes
    never counts as a hit, and ties with the k-th score count as hits.

    Args:
        k: Number of top predictions to consider.
        name: Log key.
    """

    fn: Any = field(init=False, default=sparse_top_k_categorical_accuracy, repr=False)
