"""Losses by name: the public classes, Keras's functional forms, get and serialize."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy.typing as npt

from loopkit._registry import Registry, to_config
from loopkit.losses.base import ElementwiseLoss, Loss
from loopkit.losses.crossentropy import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
)
from loopkit.losses.focal import (
    BinaryFocalCrossentropy,
    CategoricalFocalCrossentropy,
    CategoricalGeneralizedCrossEntropy,
)
from loopkit.losses.overlap import Dice, Tversky
from loopkit.losses.regression import (
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    SquaredHinge,
)
from loopkit.typing import FloatArray

__all__ = [
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CategoricalGeneralizedCrossEntropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "Dice",
    "ElementwiseLoss",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "Loss",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "Tversky",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_generalized_cross_entropy",
    "categorical_hinge",
    "cosine_similarity",
    "deserialize",
    "dice",
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
    "sparse_categorical_crossentropy",
    "squared_hinge",
    "tversky",
]

_NAMES: dict[str, type[Loss]] = {}
_ALIASES: dict[str, type[Loss]] = {}
_BY_FUNCTION: dict[Callable[..., FloatArray], type[Loss]] = {}


def _functional(cls: type[Loss], name: str, *aliases: str) -> Callable[..., FloatArray]:
    """Make Keras's functional form of ``cls`` and register its names for ``get``.

    Lower-case names are listed in messages; upper-case aliases (``"MSE"``) are not.
    """

    def function(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, **config: Any) -> FloatArray:
        return cls(**config).per_sample(y_true, y_pred)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = (
        f"Return the per-sample {cls.__name__} loss, of shape ``y_pred.shape[:-1]``.\n\n"
        f"Keyword arguments configure the loss as in ``{cls.__name__}(...)``."
    )
    _BY_FUNCTION[function] = cls
    default_name = cls().name  # Huber's is "huber_loss", as in Keras
    for key in (name, default_name, *aliases):
        (_NAMES if key.islower() else _ALIASES)[key] = cls
    return function


binary_crossentropy = _functional(BinaryCrossentropy, "binary_crossentropy", "bce", "BCE")
categorical_crossentropy = _functional(CategoricalCrossentropy, "categorical_crossentropy")
categorical_hinge = _functional(CategoricalHinge, "categorical_hinge")
hinge = _functional(Hinge, "hinge")
huber = _functional(Huber, "huber")
kl_divergence = _functional(
    KLDivergence, "kl_divergence", "kld", "KLD", "kullback_leibler_divergence"
)
log_cosh = _functional(LogCosh, "log_cosh", "logcosh")
mean_absolute_error = _functional(MeanAbsoluteError, "mean_absolute_error", "mae", "MAE")
mean_absolute_percentage_error = _functional(
    MeanAbsolutePercentageError, "mean_absolute_percentage_error", "mape", "MAPE"
)
mean_squared_error = _functional(MeanSquaredError, "mean_squared_error", "mse", "MSE")
mean_squared_logarithmic_error = _functional(
    MeanSquaredLogarithmicError, "mean_squared_logarithmic_error", "msle", "MSLE"
)
poisson = _functional(Poisson, "poisson")
sparse_categorical_crossentropy = _functional(
    SparseCategoricalCrossentropy, "sparse_categorical_crossentropy"
)
squared_hinge = _functional(SquaredHinge, "squared_hinge")
binary_focal_crossentropy = _functional(
    BinaryFocalCrossentropy, "binary_focal_crossentropy"
)
categorical_focal_crossentropy = _functional(
    CategoricalFocalCrossentropy, "categorical_focal_crossentropy"
)
categorical_generalized_cross_entropy = _functional(
    CategoricalGeneralizedCrossEntropy, "categorical_generalized_cross_entropy"
)
cosine_similarity = _functional(CosineSimilarity, "cosine_similarity")
dice = _functional(Dice, "dice")
tversky = _functional(Tversky, "tversky")


_REGISTRY = Registry(
    kind="loss",
    module="losses",
    base=Loss,
    names=_NAMES,
    classes=_BY_FUNCTION.values(),
    instead="a Loss instance such as MeanSquaredError()",
    accepts="None, a loss name such as 'mse', a Loss class or instance, a functional "
    "form such as losses.mean_squared_error, or a dict {'class_name': ..., 'config': "
    "{...}} from losses.serialize()",
    aliases=_ALIASES,
    write_names=False,
)


def get(identifier: Any) -> Loss | None:
    """Return the loss for a name, class, instance, functional form or config dict.

    Args:
        identifier: A name or alias (``"mean_squared_error"``, ``"mse"``,
            ``"MeanSquaredError"``), a ``Loss`` subclass or instance, a functional form
            of this module (``losses.mean_squared_error``), a config dict
            ``{"class_name": ..., "config": {...}}`` (as ``serialize`` returns), or None.

    Raises:
        ConfigError: An unknown name, class name or config key.
        TypeError: Any other kind of object, such as a plain function, which cannot
            give the gradient.
    """
    cls = next((c for f, c in _BY_FUNCTION.items() if identifier is f), None)
    if cls is not None:
        return cls()
    if callable(identifier) and not isinstance(identifier, (Loss, type)):
        raise TypeError(
            f"losses.get() got {identifier!r} of type {type(identifier).__name__}; a "
            "plain function gives no gradient: subclass loopkit.losses.Loss and "
            "implement call() and call_and_grad() (or ElementwiseLoss's elementwise() "
            "and elementwise_and_grad())."
        )
    return _REGISTRY.get(identifier)


def deserialize(config: Mapping[str, Any] | str, custom_objects: Any = None) -> Loss:
    """Return the loss a ``serialize`` config (or a loss name) describes.

    Args:
        config: ``{"class_name": ..., "config": {...}}`` or a name.
        custom_objects: Loss classes by class name, tried first.

    Raises:
        ConfigError: An unknown class name, loss name or config key.
        TypeError: ``config`` is neither.
    """
    return _REGISTRY.deserialize(config, custom_objects)


def serialize(loss: Any) -> dict[str, Any]:
    """Return ``{"class_name": ..., "config": {...}}``, which ``get`` turns into a loss.

    Args:
        loss: A Loss instance, or anything ``get`` accepts.
    """
    resolved = get(loss)
    if resolved is None:
        raise TypeError("losses.serialize() got None; pass a Loss instance or a loss name.")
    return to_config(resolved)
