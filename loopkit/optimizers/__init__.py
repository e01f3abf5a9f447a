"""Keras 3's optimizers on flat buffers, and lookup by name or config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopkit._registry import Registry
from loopkit.optimizers import schedules
from loopkit.optimizers.base import Optimizer, without_keras_only
from loopkit.optimizers.more_rules import Adafactor, Ftrl, Lamb, Lion
from loopkit.optimizers.rules import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Nadam,
    RMSprop,
)

__all__ = [
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Ftrl",
    "Lamb",
    "Lion",
    "Nadam",
    "Optimizer",
    "RMSprop",
    "deserialize",
    "get",
    "schedules",
    "serialize",
]

_CLASSES: tuple[type[Optimizer], ...] = (
    SGD, Adadelta, Adafactor, Adagrad, Adam, AdamW, Adamax, Ftrl, Lamb, Lion, Nadam,
    RMSprop,
)  # fmt: skip
_REGISTRY = Registry(
    kind="optimizer",
    module="optimizers",
    base=Optimizer,
    names={cls.__name__.lower(): cls for cls in _CLASSES},
    classes=_CLASSES,
    instead="an optimizer object such as Adam(learning_rate=1e-3)",
    accepts="an optimizer name such as 'adam', an Optimizer class or object, or a "
    "dict {'class_name': ..., 'config': {...}} from optimizers.serialize()",
    ignore_case=True,
    write_names=False,
)


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """Return ``{"class_name": ..., "config": ...}`` for ``optimizer`` (JSON-ready).

    Raises:
        TypeError: ``optimizer`` is not an Optimizer.
    """
    return _REGISTRY.config_of(optimizer)


def deserialize(config: Mapping[str, Any] | str, custom_objects: Any = None) -> Optimizer:
    """Build an optimizer from ``{"class_name": ..., "config": {...}}`` or a name.

    Keras 3 configs load too: their EMA, loss-scale and gradient-accumulation entries
    are dropped when off, and refused when on (EMA and accumulation are plugins here).

    Args:
        config: The dict ``serialize`` returns, or a name such as ``"adam"``.
        custom_objects: Optimizer classes by class name, tried first.

    Raises:
        ConfigError: Unknown class name or config key, or a Keras-only switch is on.
        TypeError: ``config`` is neither a dict nor a name.
    """
    if _REGISTRY.is_config(config):
        assert isinstance(config, Mapping)
        kwargs = without_keras_only(config.get("config") or {}, "optimizers.deserialize()")
        config = {"class_name": config["class_name"], "config": kwargs}
    optimizer = _REGISTRY.deserialize(config, custom_objects)
    return optimizer


def get(identifier: Any) -> Optimizer:
    """Return an optimizer for a name (``"adam"``, any case), class, config or object.

    Raises:
        ConfigError: Unknown name, with the valid names and a suggestion.
        TypeError: ``identifier`` is none of those kinds (None included).
    """
    if identifier is None:
        raise _REGISTRY.wrong_kind("get", identifier)
    if _REGISTRY.is_config(identifier):
        return deserialize(identifier)
    optimizer = _REGISTRY.get(identifier)
    assert optimizer is not None
    return optimizer
