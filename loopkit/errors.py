"""The loopkit exception hierarchy and its warning category."""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "LoopkitError",
    "LoopkitWarning",
    "PluginError",
    "ShapeError",
]


class LoopkitError(Exception):
    """Base class of every error loopkit raises on purpose."""


class ConfigError(LoopkitError, ValueError):
    """A setting (argument, name, option) has a value loopkit cannot use."""


class ShapeError(LoopkitError, ValueError):
    """An array's shape does not fit the model, layer or other array it meets."""


class CheckpointError(LoopkitError, ValueError):
    """A weights or checkpoint file is missing, malformed or does not fit the model."""


class PluginError(LoopkitError, TypeError):
    """A plugin does not fit the hook contract (unknown hook, bad argument, cycle)."""


class LoopkitWarning(UserWarning):
    """Category of every warning loopkit issues."""
