"""Activations by name: Keras's ``get``/``serialize`` and its function forms (``relu``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopkit.activation import ActivationFunction
from loopkit.errors import ConfigError
from loopkit.piecewise_activations import (
    ELU,
    SELU,
    HardSigmoid,
    LeakyReLU,
    Linear,
    ReLU,
    ReLU6,
)
from loopkit.smooth_activations import (
    GELU,
    Exponential,
    Mish,
    Sigmoid,
    Softmax,
    Softplus,
    Swish,
    Tanh,
)
from loopkit.validators import check_config_keys, suggest

__all__ = [
    "ELU",
    "GELU",
    "SELU",
    "ActivationFunction",
    "Exponential",
    "HardSigmoid",
    "LeakyReLU",
    "Linear",
    "Mish",
    "ReLU",
    "ReLU6",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Swish",
    "Tanh",
    "elu",
    "exponential",
    "gelu",
    "get",
    "hard_sigmoid",
    "leaky_relu",
    "linear",
    "mish",
    "relu",
    "relu6",
    "selu",
    "serialize",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "swish",
    "tanh",
]


_CLASSES: tuple[type[ActivationFunction], ...] = (
    ELU, Exponential, GELU, HardSigmoid, LeakyReLU, Linear, Mish, ReLU, ReLU6, SELU,
    Sigmoid, Softmax, Softplus, Swish, Tanh,
)  # fmt: skip
_BY_NAME: dict[str, type[ActivationFunction]] = {c.name: c for c in _CLASSES}
_BY_NAME["silu"] = Swish
_BY_CLASS_NAME = {c.__name__: c for c in _CLASSES}


def _lookup(name: str, call: str) -> type[ActivationFunction]:
    cls = _BY_NAME.get(name) or _BY_CLASS_NAME.get(name)
    if cls is None:
        raise ConfigError(
            f"{call}: unknown activation {name!r}; expected one of {sorted(_BY_NAME)}. "
            "Pass one of those names or an ActivationFunction."
            f"{suggest(name.lower(), _BY_NAME)}"
        )
    return cls


def get(identifier: Any) -> ActivationFunction | None:
    """Return the activation an identifier names (``keras.activations.get``).

    Args:
        identifier: None; a name such as ``"relu"`` (``"silu"`` is ``"swish"``); an
            ActivationFunction, returned as is; or ``{"class_name": ..., "config":
            {...}}`` as ``serialize`` writes.

    Returns:
        The activation, or None for None.

    Raises:
        ConfigError: The name is unknown, or the config has an unknown key.
        TypeError: The identifier is of another kind.
    """
    if identifier is None or isinstance(identifier, ActivationFunction):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier, f"activations.get({identifier!r})")()
    if (
        isinstance(identifier, Mapping)
        and isinstance(identifier.get("class_name"), str)
        and isinstance(identifier.get("config") or {}, Mapping)
    ):
        call = f"activations.get({dict(identifier)!r})"
        cls = _lookup(identifier["class_name"], call)
        config = identifier.get("config") or {}
        check_config_keys(call, cls, config)
        return cls(**config)
    raise TypeError(
        f"activations.get() got {identifier!r} of type {type(identifier).__name__}; "
        "expected None, an activation name such as 'relu', an ActivationFunction, or a "
        "dict {'class_name': 'ReLU', 'config': {...}} from activations.serialize()."
    )


def serialize(activation: ActivationFunction | None) -> str | dict[str, Any] | None:
    """Return a JSON-ready identifier that ``get`` turns back into ``activation``.

    That is the bare name (``"relu"``) when ``activation`` is what the name gives, else
    ``{"class_name": "ReLU", "config": {...}}``; None stays None.

    Raises:
        TypeError: ``activation`` is not an ActivationFunction.
    """
    if activation is None:
        return None
    if not isinstance(activation, ActivationFunction):
        raise TypeError(
            f"activations.serialize() got {activation!r} of type "
            f"{type(activation).__name__}; expected an ActivationFunction such as "
            "activations.get('relu')."
        )
    cls = _BY_NAME.get(activation.name)
    if cls is type(activation) and activation == cls():
        return activation.name
    return {"class_name": type(activation).__name__, "config": activation.get_config()}


# Keras's functions: ``activations.relu(x)``, ``activations.relu(x, max_value=6.0)``. Being
# ActivationFunction instances, they also work as ``Dense(activation=activations.relu)``.
elu = ELU()
exponential = Exponential()
gelu = GELU()
hard_sigmoid = HardSigmoid()
leaky_relu = LeakyReLU()
linear = Linear()
mish = Mish()
relu = ReLU()
relu6 = ReLU6()
selu = SELU()
sigmoid = Sigmoid()
silu = swish = Swish()
softmax = Softmax()
softplus = Softplus()
tanh = Tanh()
