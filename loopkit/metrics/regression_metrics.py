"""Keras's named metrics of losses and errors, RootMeanSquaredError and R2Score."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import attrs
import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError, ShapeError
from loopkit.metrics.base import (
    Mean,
    MeanMetricWrapper,
    Metric,
    ValuesFn,
    as_float,
    check_name,
    squeeze_or_expand_to_same_rank,
)
from loopkit.typing import Array, FloatArray
from loopkit.validators import boolean, dtype_name, float_dtype, in_closed_range, one_of

__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "Hinge",
    "KLDivergence",
    "LogCoshError",
    "LossMetric",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "R2Score",
    "RootMeanSquaredError",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
]


@define(eq=False)
class LossMetric(MeanMetricWrapper):
    """The weighted mean of a loss's per-sample values, under Keras's metric name.

    A subclass names the loss class (``loss_class``) and declares the loss's
    arguments as its own fields after ``name`` and ``dtype``, as Keras's metrics do.
    """

    loss_class: ClassVar[str] = ""
    fn: Any = field(init=False, default=None, repr=False)

    def _default_name(self) -> str:
        return self.default_name

    def _make_values_fn(self) -> ValuesFn:
        from loopkit import losses  # lazily: importing metrics never needs losses

        skip = {"name", "dtype", "fn"}
        kwargs = {
            a.alias: getattr(self, a.name)
            for a in attrs.fields(type(self))
            if a.init and a.name not in skip
        }
        loss = getattr(losses, self.loss_class)(**kwargs)
        values: ValuesFn = loss.per_sample
        return values


def _loss_metric(loss_class: str, default_name: str, doc: str) -> type[LossMetric]:
    """Make a LossMetric subclass without arguments of its own, for ``loss_class``."""
    namespace = {"loss_class": loss_class, "default_name": default_name, "__doc__": doc}
    cls = type(loss_class, (LossMetric,), namespace)
    cls.__annotations__ = {}
    cls.__module__ = __name__
    return define(eq=False)(cls)


_ARGS = "\n\n    Args:\n        name: Log key.\n        dtype: See ``Metric``.\n    "
MeanSquaredError = _loss_metric(
    "MeanSquaredError", "mean_squared_error", "Mean of ``(y_true - y_pred)^2``." + _ARGS
)
MeanAbsoluteError = _loss_metric(
    "MeanAbsoluteError", "mean_absolute_error", "Mean of ``|y_true - y_pred|``." + _ARGS
)
MeanAbsolutePercentageError = _loss_metric(
    "MeanAbsolutePercentageError",
    "mean_absolute_percentage_error",
    "Mean of Keras's MAPE, ``100 |y_true - y_pred| / max(|y_true|, 1e-7)``." + _ARGS,
)
MeanSquaredLogarithmicError = _loss_metric(
    "MeanSquaredLogarithmicError",
    "mean_squared_logarithmic_error",
    "Mean of Keras's squared logarithmic error." + _ARGS,
)
LogCoshError = _loss_metric(
    "LogCosh", "logcosh", "Mean of ``log(cosh(y_pred - y_true))``." + _ARGS
)
KLDivergence = _loss_metric(
    "KLDivergence", "kl_divergence", "Mean Kullback-Leibler divergence." + _ARGS
)
Poisson = _loss_metric("Poisson", "poisson", "Mean Poisson loss." + _ARGS)
Hinge = _loss_metric("Hinge", "hinge", "Mean hinge loss." + _ARGS)
SquaredHinge = _loss_metric("SquaredHinge", "squared_hinge", "Mean squared hinge." + _ARGS)
CategoricalHinge = _loss_metric(
    "CategoricalHinge", "categorical_hinge", "Mean categorical hinge." + _ARGS
)


@define(eq=False)
class BinaryCrossentropy(LossMetric):
    """Mean binary cross-entropy, as the loss of the same name computes it.

    Args:
        name: Log key.
        dtype: See ``Metric``.
        from_logits: Whether ``y_pred`` holds logits.
        label_smoothing: In [0, 1].
    """

    loss_class: ClassVar[str] = "BinaryCrossentropy"
    default_name: ClassVar[str] = "binary_crossentropy"
    from_logits: bool = field(default=False, validator=boolean)
    label_smoothing: float = field(default=0.0, validator=in_closed_range(0.0, 1.0))


@define(eq=False)
class CategoricalCrossentropy(LossMetric):
    """Mean categorical cross-entropy, as the loss of the same name computes it.

    Args:
        name: Log key.
        dtype: See ``Metric``.
        from_logits: Whether ``y_pred`` holds logits.
        label_smoothing: In [0, 1].
        axis: The class axis.
    """

    loss_class: ClassVar[str] = "CategoricalCrossentropy"
    default_name: ClassVar[str] = "categorical_crossentropy"
    from_logits: bool = field(default=False, validator=boolean)
    label_smoothing: float = field(default=0.0, validator=in_closed_range(0.0, 1.0))
    axis: int = -1


@define(eq=False)
class SparseCategoricalCrossentropy(LossMetric):
    """Mean cross-entropy of integer labels, as the loss of the same name computes it.

    Args:
        name: Log key.
        dtype: See ``Metric``.
        from_logits: Whether ``y_pred`` holds logits.
    """

    loss_class: ClassVar[str] = "SparseCategoricalCrossentropy"
    default_name: ClassVar[str] = "sparse_categorical_crossentropy"
    from_logits: bool = field(default=False, validator=boolean)


@define(eq=False)
class CosineSimilarity(LossMetric):
    """Mean cosine similarity of ``y_true`` and ``y_pred`` along ``axis`` (1 is best).

    The loss of the same name is its negative, as in Keras.

    Args:
        name: Log key.
        dtype: See ``Metric``.
        axis: The axis the vectors lie along.
    """

    loss_class: ClassVar[str] = "CosineSimilarity"
    default_name: ClassVar[str] = "cosine_similarity"
    axis: int = -1

    def _make_values_fn(self) -> ValuesFn:
        negative = super()._make_values_fn()
        return lambda y_true, y_pred: -np.asarray(negative(y_true, y_pred))


@define(eq=False)
class RootMeanSquaredError(Mean):
    """``sqrt(mean((y_pred - y_true)^2))`` over every sample since the reset, weighted.

    Args:
        name: Log key.
        dtype: See ``Metric``.
    """

    default_name: ClassVar[str] = "root_mean_squared_error"

    def update_state(  # type: ignore[override]
        self, y_true: Array, y_pred: Array, sample_weight: Array | None = None
    ) -> None:
        y_pred = as_float(y_pred)
        y_true, y_pred = squeeze_or_expand_to_same_rank(np.asarray(y_true), y_pred)
        self._accumulate(np.square(y_pred - y_true), sample_weight)

    def result(self) -> float:
        return float(np.sqrt(super().result()))


@define(eq=False)
class R2Score(Metric):
    """Coefficient of determination ``1 - SS_res / SS_tot`` per output, as Keras's.

    Targets and predictions are ``(batch, outputs)``. ``class_aggregation``
    ``"uniform_average"`` averages the outputs' scores, ``"variance_weighted_average"``
    weighs them by their target variance, None returns one score per output. With
    ``num_regressors = p > 0`` the adjusted score ``1 - (1 - R2)(n - 1) / (n - p - 1)``
    is returned while ``n - 1 > p`` samples have been seen.

    Args:
        class_aggregation: ``"uniform_average"``, ``"variance_weighted_average"`` or None.
        num_regressors: Number of independent regressors, >= 0.
        name: Log key.
        dtype: See ``Metric``.
    """

    state_names: ClassVar[tuple[str, ...]] = (
        "sum", "squared_sum", "total_mse", "count", "num_samples",
    )  # fmt: skip
    default_name: ClassVar[str] = "r2_score"
    class_aggregation: Literal["uniform_average", "variance_weighted_average"] | None = (
        field(
            default="uniform_average",
            validator=one_of("uniform_average", "variance_weighted_average", None),
        )
    )
    num_regressors: int = field(default=0)
    # After the two above positionally, as in Keras.
    name: str = field(default="", validator=check_name)
    dtype: str | None = field(default=None, converter=dtype_name, validator=float_dtype)
    _sum: FloatArray = field(init=False, repr=False)
    _squared_sum: FloatArray = field(init=False, repr=False)
    _total_mse: FloatArray = field(init=False, repr=False)
    _count: FloatArray = field(init=False, repr=False)
    _num_samples: float = field(init=False, default=0.0, repr=False)

    def __attrs_post_init__(self) -> None:
        bad = isinstance(self.num_regressors, bool) or not isinstance(
            self.num_regressors, int
        )
        if bad or self.num_regressors < 0:
            raise ConfigError(
                f"R2Score got num_regressors={self.num_regressors!r}; expected an int "
                ">= 0 (0 gives the plain, unadjusted score)."
            )
        super().__attrs_post_init__()
        self.reset_state()  # allocate the accumulators

    def reset_state(self) -> None:
        for key in ("sum", "squared_sum", "total_mse", "count"):
            setattr(self, f"_{key}", np.zeros(0))
        self._num_samples = 0.0

    def update_state(
        self, y_true: Array, y_pred: Array, sample_weight: Array | None = None
    ) -> None:
        y_pred = as_float(y_pred)
        y_true, y_pred = squeeze_or_expand_to_same_rank(as_float(y_true), y_pred)
        if y_pred.ndim != 2 or y_true.shape != y_pred.shape:
            raise ShapeError(
                f"R2Score(name={self.name!r}) got y_true with shape {y_true.shape} and "
                f"y_pred with shape {y_pred.shape}; expected both (batch, outputs). "
                "Reshape one output to (batch, 1)."
            )
        w = np.ones(()) if sample_weight is None else np.asarray(sample_weight, np.float64)
        if w.ndim == 1:
            w = w[:, None]
        w = np.broadcast_to(w, y_true.shape)
        if self._sum.size == 0:
            for key in ("sum", "squared_sum", "total_mse", "count"):
                setattr(self, f"_{key}", np.zeros(y_true.shape[1]))
        self._sum = self._sum + np.sum(y_true * w, axis=0)
        self._squared_sum = self._squared_sum + np.sum(y_true * y_true * w, axis=0)
        self._total_mse = self._total_mse + np.sum((y_true - y_pred) ** 2 * w, axis=0)
        self._count = self._count + np.sum(w, axis=0)
        self._num_samples += float(np.sum(np.any(w != 0, axis=-1)))

    def result(self) -> Any:
        if self._sum.size == 0:
            return 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            total = self._squared_sum - self._sum * (self._sum / self._count)
            raw = 1 - self._total_mse / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        score: Any = raw
        if self.class_aggregation == "uniform_average":
            score = np.mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            score = np.sum(total * raw) / np.sum(total)
        n, p = self._num_samples, self.num_regressors
        if p and n - 1 > p:  # Keras warns and keeps the plain score otherwise
            score = 1 - (1 - score) * (n - 1) / (n - p - 1)
        return [float(v) for v in score] if self.class_aggregation is None else float(score)
