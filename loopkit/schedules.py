"""Learning-rate schedules: the learning rate as a function of the optimizer step."""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from typing import Any, cast

import attrs
from attrs import field, frozen

from loopkit._registry import Registry
from loopkit.errors import ConfigError
from loopkit.validators import boolean, in_closed_range, non_negative, positive

__all__ = [
    "CosineDecay",
    "CosineDecayRestarts",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "LinearWarmup",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "deserialize",
    "get",
    "serialize",
]


class LearningRateSchedule:
    """Base class of schedules: ``schedule(step)`` is the learning rate of step ``step``.

    An optimizer whose ``learning_rate`` is a schedule evaluates it at its ``iterations``
    (0 for the first update) before every update. Subclass it for your own schedule:
    implement ``__call__`` and, to save it with a model, ``get_config`` (attrs classes
    get one for free). To scale any schedule, e.g. from ReduceLROnPlateau, set the
    optimizer's ``learning_rate_multiplier`` instead of wrapping the schedule.
    """

    def __call__(self, step: int) -> float:
        """Return the learning rate for the zero-based optimizer step ``step``."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement __call__(self, step) -> float."
        )

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as JSON-ready values."""
        if not attrs.has(type(self)):
            raise NotImplementedError(
                f"{type(self).__name__} must implement get_config() to be serialized."
            )
        return {
            a.alias or a.name: _jsonable(getattr(self, a.name))
            for a in attrs.fields(cast(Any, type(self)))
            if a.init
        }


def _check_name(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(
            f"{type(instance).__name__} got name={value!r} of type {type(value).__name__}; "
            "expected a str."
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, LearningRateSchedule):
        return serialize(value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _cosine(fraction: float, alpha: float) -> float:
    """``(1 - alpha) * (1 + cos(pi * fraction)) / 2 + alpha``: from 1 down to alpha."""
    return (1.0 - alpha) * 0.5 * (1.0 + math.cos(math.pi * fraction)) + alpha


@frozen
class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``, as in Keras.

    Args:
        initial_learning_rate: Learning rate at step 0.
        decay_steps: Steps over which the rate is multiplied by ``decay_rate`` once.
        decay_rate: Factor applied every ``decay_steps`` steps.
        staircase: Decay at whole multiples of ``decay_steps`` (``floor`` the exponent).
        name: The schedule's name, as in Keras.
    """

    initial_learning_rate: float = field(validator=positive)
    decay_steps: float = field(validator=positive)
    decay_rate: float = field(validator=positive)
    staircase: bool = field(default=False, validator=boolean)
    name: str = field(default="ExponentialDecay", validator=_check_name)

    def __call__(self, step: int) -> float:
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return float(self.initial_learning_rate * self.decay_rate**p)


@frozen
class InverseTimeDecay(LearningRateSchedule):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``, as in Keras.

    Args:
        initial_learning_rate: Learning rate at step 0.
        decay_steps: Step count that ``decay_rate`` refers to.
        decay_rate: How fast the rate falls.
        staircase: Use ``floor(step / decay_steps)``.
        name: The schedule's name, as in Keras.
    """

    initial_learning_rate: float = field(validator=positive)
    decay_steps: float = field(validator=positive)
    decay_rate: float = field(validator=non_negative)
    staircase: bool = field(default=False, validator=boolean)
    name: str = field(default="InverseTimeDecay", validator=_check_name)

    def __call__(self, step: int) -> float:
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return float(self.initial_learning_rate / (1.0 + self.decay_rate * p))


@frozen
class PolynomialDecay(LearningRateSchedule):
    """Decay from ``initial_learning_rate`` to ``end_learning_rate`` as ``(1 - t)**power``.

    ``t = min(step, decay_steps) / decay_steps``; with ``cycle`` the period is instead
    the first multiple of ``decay_steps`` at or above ``step`` (Keras semantics).

    Args:
        initial_learning_rate: Learning rate at step 0.
        decay_steps: Steps to reach ``end_learning_rate``.
        end_learning_rate: Final learning rate, kept after ``decay_steps``.
        power: Exponent of the polynomial (1.0 is linear).
        cycle: Restart the decay after each multiple of ``decay_steps``.
        name: The schedule's name, as in Keras.
    """

    initial_learning_rate: float = field(validator=positive)
    decay_steps: float = field(validator=positive)
    end_learning_rate: float = field(default=0.0001, validator=non_negative)
    power: float = field(default=1.0, validator=positive)
    cycle: bool = field(default=False, validator=boolean)
    name: str = field(default="PolynomialDecay", validator=_check_name)

    def __call__(self, step: int) -> float:
        decay_steps, done = self.decay_steps, float(step)
        if self.cycle:
            decay_steps *= 1.0 if step == 0 else math.ceil(step / decay_steps)
        else:
            done = min(done, decay_steps)
        fraction = 1.0 - done / decay_steps
        span = self.initial_learning_rate - self.end_learning_rate
        return float(span * fraction**self.power + self.end_learning_rate)


def _tuple(values: Any) -> tuple[Any, ...]:
    return tuple(values) if isinstance(values, (list, tuple)) else values


@frozen
class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` for ``boundaries[i-1] < step <= boundaries[i]``, as in Keras.

    So ``values[0]`` up to and including step ``boundaries[0]``, and ``values[-1]``
    after ``boundaries[-1]``.

    Args:
        boundaries: Strictly increasing steps.
        values: Learning rates, one more than ``boundaries``.
        name: The schedule's name, as in Keras.
    """

    boundaries: tuple[float, ...] = field(converter=_tuple)
    values: tuple[float, ...] = field(converter=_tuple)
    name: str = field(default="PiecewiseConstantDecay", validator=_check_name)

    def __attrs_post_init__(self) -> None:
        call = "PiecewiseConstantDecay("
        call += f"boundaries={self.boundaries!r}, values={self.values!r})"
        for name, seq in (("boundaries", self.boundaries), ("values", self.values)):
            if not isinstance(seq, tuple) or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) for v in seq
            ):
                raise TypeError(f"{call}: {name} must be a list of numbers.")
        if len(self.values) != len(self.boundaries) + 1:
            raise ConfigError(
                f"{call}: got {len(self.boundaries)} boundaries and {len(self.values)} "
                "values; pass exactly one more value than boundaries (the value before "
                "the first boundary, between each pair, and after the last)."
            )
        if any(a >= b for a, b in zip(self.boundaries, self.boundaries[1:], strict=False)):
            raise ConfigError(f"{call}: boundaries must be strictly increasing; sort them.")
        if any(v < 0 for v in self.values):
            raise ConfigError(f"{call}: learning rates must be >= 0.")

    def __call__(self, step: int) -> float:
        return float(self.values[bisect.bisect_left(self.boundaries, step)])


@frozen
class CosineDecay(LearningRateSchedule):
    """Cosine decay (SGDR, Loshchilov & Hutter 2017) with optional linear warmup.

    Without ``warmup_target``: ``initial_learning_rate * cosine(min(step, decay_steps) /
    decay_steps)`` where ``cosine(t) = (1 - alpha) * (1 + cos(pi t)) / 2 + alpha``.
    With it: a linear ramp from ``initial_learning_rate`` to ``warmup_target`` over
    ``warmup_steps``, then the cosine decay from ``warmup_target`` (Keras semantics).

    Args:
        initial_learning_rate: Learning rate at step 0.
        decay_steps: Steps of the cosine decay (after the warmup).
        alpha: Final learning rate as a fraction of the decay's starting rate.
        warmup_target: Learning rate reached at the end of the warmup; None: no warmup.
        warmup_steps: Length of the warmup; needs ``warmup_target`` (Keras silently
            ignores it without one, loopkit raises).
        name: The schedule's name, as in Keras.
    """

    initial_learning_rate: float = field(validator=non_negative)
    decay_steps: float = field(validator=positive)
    alpha: float = field(default=0.0, validator=in_closed_range(0.0, 1.0))
    warmup_target: float | None = field(
        default=None, validator=attrs.validators.optional(non_negative)
    )
    warmup_steps: float = field(default=0, validator=non_negative)
    name: str = field(default="CosineDecay", validator=_check_name)

    def __attrs_post_init__(self) -> None:
        if self.warmup_target is None and self.warmup_steps:
            raise ConfigError(
                f"CosineDecay(warmup_steps={self.warmup_steps!r}) has no warmup_target, "
                "so there is nothing to warm up to. Pass warmup_target= (the learning "
                "rate to reach after the warmup), or drop warmup_steps."
            )

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            t = min(step, self.decay_steps) / self.decay_steps
            return float(self.initial_learning_rate * _cosine(t, self.alpha))
        done = min(float(step), self.decay_steps + self.warmup_steps)
        if done < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return float(delta * done / self.warmup_steps + self.initial_learning_rate)
        t = (done - self.warmup_steps) / self.decay_steps
        return float(self.warmup_target * _cosine(t, self.alpha))


@frozen
class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR, Loshchilov & Hutter 2017), as in Keras.

    Period ``i`` lasts ``first_decay_steps * t_mul**i`` steps and starts from
    ``initial_learning_rate * m_mul**i``. Unlike Keras, restarts land exactly on the
    period boundaries: Keras finds the period with ``floor(log(.) / log(t_mul))``,
    which rounds down at some boundaries (``t_mul=3`` at step 121) and skips a restart.

    Args:
        initial_learning_rate: Learning rate at step 0.
        first_decay_steps: Length of the first period.
        t_mul: Growth factor of the period length (>= 1).
        m_mul: Factor applied to the starting learning rate at each restart.
        alpha: Minimum learning rate as a fraction of ``initial_learning_rate``.
        name: The schedule's name, as in Keras.
    """

    initial_learning_rate: float = field(validator=positive)
    first_decay_steps: float = field(validator=positive)
    t_mul: float = field(default=2.0, validator=positive)
    m_mul: float = field(default=1.0, validator=non_negative)
    alpha: float = field(default=0.0, validator=in_closed_range(0.0, 1.0))
    name: str = field(default="CosineDecayRestarts", validator=_check_name)

    def __attrs_post_init__(self) -> None:
        if self.t_mul < 1.0:
            raise ConfigError(
                f"CosineDecayRestarts(t_mul={self.t_mul!r}): periods that shrink "
                "geometrically add up to a finite number of steps, after which the "
                "schedule is undefined. Pass t_mul >= 1 (1.0 for equal periods)."
            )

    def __call__(self, step: int) -> float:
        fraction = step / self.first_decay_steps
        t = self.t_mul
        if t == 1.0:
            restart = math.floor(fraction)
            fraction -= restart
        else:

            def start(i: int) -> float:  # where period i begins, in first periods
                return (1.0 - t**i) / (1.0 - t)

            restart = math.floor(math.log(1.0 - fraction * (1.0 - t)) / math.log(t))
            while start(restart + 1) <= fraction:  # log rounding: fix off-by-one
                restart += 1
            while restart > 0 and start(restart) > fraction:
                restart -= 1
            fraction = (fraction - start(restart)) / t**restart
        decayed = (1.0 - self.alpha) * 0.5 * self.m_mul**restart
        decayed *= 1.0 + math.cos(math.pi * fraction)
        return float(self.initial_learning_rate * (decayed + self.alpha))


def _schedule_or_float(value: Any) -> Any:
    if isinstance(value, Mapping):
        return deserialize(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _check_schedule_or_float(
    instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if isinstance(value, LearningRateSchedule):
        return
    if not isinstance(value, float):
        raise TypeError(
            f"LinearWarmup got schedule={value!r} of type {type(value).__name__}; "
            "expected a LearningRateSchedule or a float learning rate, e.g. "
            "LinearWarmup(CosineDecay(0.01, decay_steps=1000), warmup_steps=100)."
        )
    positive(instance, attribute, value)


def _non_negative_int(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise (ConfigError if isinstance(value, int) else TypeError)(
            f"{type(instance).__name__} got {attribute.name}={value!r}; "
            "expected an int >= 0."
        )


@frozen
class LinearWarmup(LearningRateSchedule):
    """Ramp linearly to another schedule's start, then follow it (loopkit's own).

    For ``step < warmup_steps`` the rate goes linearly from ``initial_learning_rate``
    to ``schedule(0)``; from then on it is ``schedule(step - warmup_steps)``, so the
    wrapped schedule starts its course when the warmup ends (Goyal et al., 2017).

    Args:
        schedule: The schedule to warm up into, or a constant float learning rate.
        warmup_steps: Length of the ramp in steps; 0 means no warmup.
        initial_learning_rate: Learning rate at step 0.
        name: The schedule's name, as in Keras.
    """

    schedule: LearningRateSchedule | float = field(
        converter=_schedule_or_float, validator=_check_schedule_or_float
    )
    warmup_steps: int = field(validator=_non_negative_int)
    initial_learning_rate: float = field(default=0.0, validator=non_negative)
    name: str = field(default="LinearWarmup", validator=_check_name)

    def _target(self, step: int) -> float:
        if isinstance(self.schedule, LearningRateSchedule):
            return float(self.schedule(step))
        return self.schedule

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            start = self.initial_learning_rate
            return float(start + (self._target(0) - start) * step / self.warmup_steps)
        return self._target(step - self.warmup_steps)


_REGISTRY = Registry(
    kind="learning rate schedule",
    module="schedules",
    base=LearningRateSchedule,
    names={},
    classes=(
        CosineDecay,
        CosineDecayRestarts,
        ExponentialDecay,
        InverseTimeDecay,
        LinearWarmup,
        PiecewiseConstantDecay,
        PolynomialDecay,
    ),
    instead="the schedule object itself (for a custom schedule)",
    accepts="a LearningRateSchedule or a {'class_name': ..., 'config': {...}} dict, "
    "e.g. ExponentialDecay(0.01, decay_steps=1000, decay_rate=0.9)",
    write_names=False,
)


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """Return ``{"class_name": ..., "config": ...}`` for ``schedule`` (JSON-ready)."""
    return _REGISTRY.config_of(schedule)


def deserialize(
    config: Mapping[str, Any], custom_objects: Mapping[str, Any] | None = None
) -> LearningRateSchedule:
    """Build a schedule from ``{"class_name": ..., "config": {...}}`` (Keras's format).

    Raises:
        ConfigError: The class name is unknown, or the config has an unknown key.
        TypeError: ``config`` is not such a dict.
    """
    return _REGISTRY.deserialize(config, custom_objects)


def get(identifier: Any) -> LearningRateSchedule:
    """Return the schedule for a schedule object or a ``{"class_name", "config"}`` dict.

    Raises:
        ConfigError: The class name is unknown, or the config has an unknown key.
        TypeError: ``identifier`` is of another kind (a name or None included).
    """
    if identifier is None or isinstance(identifier, str):
        raise _REGISTRY.wrong_kind("get", identifier)
    schedule = _REGISTRY.get(identifier)
    assert schedule is not None
    return schedule
