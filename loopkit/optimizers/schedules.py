"""Keras's path to the learning-rate schedules: ``loopkit.optimizers.schedules``."""

from __future__ import annotations

from loopkit.schedules import (
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    LearningRateSchedule,
    LinearWarmup,
    PiecewiseConstantDecay,
    PolynomialDecay,
    deserialize,
    get,
    serialize,
)

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
