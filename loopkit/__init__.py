"""loopkit: a Keras-style training loop for NumPy, extended through pluggy plugins."""

from __future__ import annotations

from loopkit import (
    activations,
    initializers,
    layers,
    losses,
    metrics,
    optimizers,
    regularizers,
)
from loopkit.errors import (
    CheckpointError,
    ConfigError,
    LoopkitError,
    LoopkitWarning,
    PluginError,
    ShapeError,
)
from loopkit.random import set_random_seed

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "LoopkitError",
    "LoopkitWarning",
    "PluginError",
    "ShapeError",
    "__version__",
    "activations",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "optimizers",
    "regularizers",
    "set_random_seed",
]
