"""Keras 3's optimizers on flat buffers, and lookup by name or config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from attrs import define, field

from loopkit._registry import to_config
from loopkit.errors import ConfigError
from loopkit.optimizers.adam import Adam, Adamax, AdamW, Nadam
from loopkit.optimizers.base import (
    Optimizer,
    Slots,
    as_learning_rate,
    check_learning_rate,
)
from loopkit.schedules import LearningRateSchedule
from loopkit.typing import FloatArray
from loopkit.validators import (
    boolean,
    check_config_keys,
    in_closed_range,
    non_negative,
    suggest,
)

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Nadam",
    "Optimizer",
    "RMSprop",
    "deserialize",
    "get",
    "serialize",
]

_unit = in_closed_range(0.0, 1.0)


@define(eq=False)
class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, as in Keras 3.

    ``m = momentum * m - lr * g``; then ``w += m``, or with Nesterov
    ``w += momentum * m - lr * g``. Without momentum, ``w -= lr * g``.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        momentum: In [0, 1]; 0 is plain gradient descent (no slot is allocated).
        nesterov: Use Nesterov momentum.
    """

    learning_rate: float | LearningRateSchedule = field(
        default=0.01, converter=as_learning_rate, validator=check_learning_rate
    )
    momentum: float = field(default=0.0, validator=_unit)
    nesterov: bool = field(default=False, validator=boolean)
    name: str | None = field(default="SGD", kw_only=True)

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum",) if self.momentum != 0 else ()

    def update_block(
        self,
        p: FloatArray,
        g: FloatArray,
        slots: Slots,
        s: FloatArray,
        s2: FloatArray,
        c: Any,
    ) -> None:
        np.multiply(g, c, out=s)  # lr * g
        if not slots:
            p -= s
            return
        m, momentum = slots["momentum"], self.momentum
        m *= momentum
        m -= s
        if self.nesterov:
            p -= s
            np.multiply(m, momentum, out=s)
            p += s
        else:
            p += m


@define(eq=False)
class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012), as in Keras 3: divide by a moving RMS of the gradients.

    ``v = rho v + (1 - rho) g^2``; ``step = lr g / sqrt(v + eps)`` (centered:
    ``sqrt(v - a^2 + eps)`` with ``a = rho a + (1 - rho) g``); with momentum
    ``m = momentum m + step; w -= m``, else ``w -= step``.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        rho: Discount of the moving averages, in [0, 1].
        momentum: In [0, 1]; 0 allocates no momentum slot.
        epsilon: Added under the square root.
        centered: Normalize by the estimated variance instead of the second moment.
    """

    learning_rate: float | LearningRateSchedule = field(
        default=0.001, converter=as_learning_rate, validator=check_learning_rate
    )
    rho: float = field(default=0.9, validator=_unit)
    momentum: float = field(default=0.0, validator=_unit)
    epsilon: float = field(default=1e-07, validator=non_negative)
    centered: bool = field(default=False, validator=boolean)

    def slot_names(self) -> tuple[str, ...]:
        names = ("velocity",) + (("momentum",) if self.momentum > 0 else ())
        return names + (("average_gradient",) if self.centered else ())

    def update_block(
        self,
        p: FloatArray,
        g: FloatArray,
        slots: Slots,
        s: FloatArray,
        s2: FloatArray,
        c: Any,
    ) -> None:
        rho, v = self.rho, slots["velocity"]
        v *= rho
        np.square(g, out=s)
        s *= 1 - rho
        v += s
        if self.centered:
            a = slots["average_gradient"]
            a *= rho
            np.multiply(g, 1 - rho, out=s)
            a += s
            np.square(a, out=s)
            np.subtract(v, s, out=s)
            s += self.epsilon
        else:
            np.add(v, self.epsilon, out=s)
        np.sqrt(s, out=s)
        np.divide(g, s, out=s)
        s *= c  # lr
        if self.momentum > 0:
            m = slots["momentum"]
            m *= self.momentum
            m += s
            p -= m
        else:
            p -= s


@define(eq=False)
class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), as in Keras 3.

    ``acc += g^2``; ``w -= lr g / sqrt(acc + eps)``.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        initial_accumulator_value: Starting value of ``acc``, >= 0.
        epsilon: Added under the square root.
    """

    learning_rate: float | LearningRateSchedule = field(
        default=0.001, converter=as_learning_rate, validator=check_learning_rate
    )
    initial_accumulator_value: float = field(default=0.1, validator=non_negative)
    epsilon: float = field(default=1e-07, validator=non_negative)

    def slot_names(self) -> tuple[str, ...]:
        return ("accumulator",)

    def slot_initial_value(self, name: str) -> float:
        return float(self.initial_accumulator_value)

    def update_block(
        self,
        p: FloatArray,
        g: FloatArray,
        slots: Slots,
        s: FloatArray,
        s2: FloatArray,
        c: Any,
    ) -> None:
        acc = slots["accumulator"]
        np.square(g, out=s)
        acc += s
        np.add(acc, self.epsilon, out=s)
        np.sqrt(s, out=s)
        np.divide(g, s, out=s)
        s *= c  # lr
        p -= s


@define(eq=False)
class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012), as in Keras 3, scaled by ``learning_rate``.

    ``Eg = rho Eg + (1 - rho) g^2``; ``d = -sqrt(Ed + eps) g / sqrt(Eg + eps)``;
    ``Ed = rho Ed + (1 - rho) d^2``; ``w += lr d``.

    Args:
        learning_rate: Float or schedule; 1.0 is the paper's form. See ``Optimizer``.
        rho: Decay of the moving averages, in [0, 1].
        epsilon: Added under both square roots.
    """

    learning_rate: float | LearningRateSchedule = field(
        default=0.001, converter=as_learning_rate, validator=check_learning_rate
    )
    rho: float = field(default=0.95, validator=_unit)
    epsilon: float = field(default=1e-07, validator=non_negative)

    def slot_names(self) -> tuple[str, ...]:
        return ("accumulated_grad", "accumulated_delta_var")

    def update_block(
        self,
        p: FloatArray,
        g: FloatArray,
        slots: Slots,
        s: FloatArray,
        s2: FloatArray,
        c: Any,
    ) -> None:
        rho, eps = self.rho, self.epsilon
        eg, ed = slots["accumulated_grad"], slots["accumulated_delta_var"]
        eg *= rho
        np.square(g, out=s)
        s *= 1 - rho
        eg += s
        np.add(ed, eps, out=s)
        np.sqrt(s, out=s)
        s *= g
        np.add(eg, eps, out=s2)
        np.sqrt(s2, out=s2)
        s /= s2  # s = -d
        ed *= rho
        np.square(s, out=s2)
        s2 *= 1 - rho
        ed += s2
        s *= c  # lr
        p -= s


_OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.__name__.lower(): cls
    for cls in (SGD, RMSprop, Adam, AdamW, Adamax, Adagrad, Adadelta, Nadam)
}
_KERAS_SWITCHES = ("use_ema", "loss_scale_factor", "gradient_accumulation_steps")
_KERAS_ONLY = (
    *_KERAS_SWITCHES,
    "ema_momentum",
    "ema_overwrite_frequency",
    "is_legacy_optimizer",
)


def _lookup(name: Any, call: str) -> type[Optimizer]:
    cls = _OPTIMIZERS.get(name.lower()) if isinstance(name, str) else None
    if cls is None:
        hint = suggest(str(name).lower(), _OPTIMIZERS)
        raise ConfigError(
            f"{call} got {name!r}, which is not an optimizer; expected one of "
            f"{sorted(_OPTIMIZERS)}.{hint} Pass one of those names or an optimizer object."
        )
    return cls


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """Return ``{"class_name": ..., "config": ...}`` for ``optimizer`` (JSON-ready)."""
    return to_config(optimizer)


def deserialize(config: Mapping[str, Any]) -> Optimizer:
    """Build an optimizer from ``{"class_name": ..., "config": {...}}``.

    Keras 3 configs load too: their EMA, loss-scale and gradient-accumulation entries
    are dropped when off, and refused when on (EMA and accumulation are plugins here).
    """
    call = "optimizers.deserialize()"
    cls = _lookup(config.get("class_name"), call)
    kwargs = dict(config.get("config") or {})
    extras = {k: kwargs.pop(k) for k in _KERAS_ONLY if k in kwargs}
    active = [k for k in _KERAS_SWITCHES if extras.get(k)]
    if active:
        raise ConfigError(
            f"{call}: the config sets {', '.join(f'{k}={extras[k]!r}' for k in active)}, "
            "which loopkit optimizers do not take. Remove them and use the EMA or "
            "gradient accumulation plugins instead."
        )
    check_config_keys(call, cls, kwargs)
    return cls(**kwargs)


def get(identifier: Any) -> Optimizer:
    """Return an optimizer for a name (``"adam"``), a config dict, or an optimizer.

    Raises:
        ConfigError: Unknown name, with the valid names and a suggestion.
        TypeError: ``identifier`` is none of those kinds.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier, "optimizers.get()")()
    if isinstance(identifier, Mapping):
        return deserialize(identifier)
    raise TypeError(
        f"optimizers.get() got {identifier!r} of type {type(identifier).__name__}; "
        f"expected an optimizer name such as 'adam' (one of {sorted(_OPTIMIZERS)}), "
        "a {'class_name': ..., 'config': {...}} dict, or an Optimizer object."
    )
