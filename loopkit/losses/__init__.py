"""Losses by name: the public classes, Keras's functional forms, get and serialize."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy.typing as npt

from loopkit._registry import from_class_config, to_config
from loopkit.errors import ConfigError
from loopkit.losses.base import ElementwiseLoss, Loss
from loopkit.losses.crossentropy import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
)
from loopkit.losses.regression import (
    CategoricalHinge,
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
from loopkit.validators import suggest

__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
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
    "binary_crossentropy",
    "categorical_crossentropy",
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
    "sparse_categorical_crossentropy",
    "squared_hinge",
]

_CLASSES: tuple[type[Loss], ...] = (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CategoricalHinge,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)
_BY_NAME: dict[str, type[Loss]] = {cls.__name__: cls for cls in _CLASSES}
_BY_FUNCTION: dict[Callable[..., FloatArray], type[Loss]] = {}


def _functional(cls: type[Loss], name: str, *aliases: str) -> Callable[..., FloatArray]:
    """Make Keras's functional form of ``cls`` and register its names for ``get``."""

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
        _BY_NAME[key] = cls
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
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier)
        if cls is None:
            names = sorted(n for n in _BY_NAME if n.islower())
            raise ConfigError(
                f"losses.get() got an unknown loss name {identifier!r}; expected one of "
                f"{names}, or a class name such as 'MeanSquaredError'."
                f"{suggest(identifier, _BY_NAME)}"
            )
        return cls()
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, Mapping):
        return from_class_config("losses.get()", identifier, _BY_NAME)
    for function, cls in _BY_FUNCTION.items():
        if identifier is function:
            return cls()
    hint = (
        "a plain function gives no gradient: subclass loopkit.losses.Loss and implement "
        "call() and call_and_grad() (or ElementwiseLoss's elementwise() and "
        "elementwise_and_grad())."
        if callable(identifier)
        else "pass a loss name such as 'mse', a Loss instance or a config dict."
    )
    raise TypeError(
        f"losses.get() got {identifier!r} of type {type(identifier).__name__}; {hint}"
    )


def deserialize(config: Mapping[str, Any] | str) -> Loss:
    """Return the loss a ``serialize`` config (or a loss name) describes.

    Raises:
        ConfigError: An unknown class name, loss name or config key.
    """
    if not isinstance(config, (Mapping, str)):
        raise TypeError(
            f"deserialize() got {config!r} of type {type(config).__name__}; expected a "
            "dict {'class_name': ..., 'config': {...}} as serialize() returns, or a name."
        )
    loss = get(config)
    assert loss is not None
    return loss


def serialize(loss: Any) -> dict[str, Any]:
    """Return ``{"class_name": ..., "config": {...}}``, which ``get`` turns into a loss.

    Args:
        loss: A Loss instance, or anything ``get`` accepts.
    """
    resolved = get(loss)
    if resolved is None:
        raise TypeError("serialize() got None; pass a Loss instance or a loss name.")
    return to_config(resolved)
