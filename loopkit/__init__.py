"""loopkit: a Keras-style training loop for NumPy, extended through pluggy plugins."""

from __future__ import annotations

from loopkit import (
    activations,
    callbacks,
    distributed,
    hookspecs,
    initializers,
    layers,
    losses,
    metrics,
    models,
    monitor,
    optimizers,
    preprocessing,
    regularizers,
    saving,
    schedules,
    typing,
    utils,
    validators,
)
from loopkit._dispatch.dispatcher import HOOK_NAMES, Plugin, hookimpl, plugin_name
from loopkit._training.history import History
from loopkit._training.loop_state import LoopState, OptimizerStep
from loopkit._training.model import Model
from loopkit._training.sequential import Sequential
from loopkit._training.symbolic import Input, KerasTensor
from loopkit.errors import (
    CheckpointError,
    ConfigError,
    LoopkitError,
    LoopkitWarning,
    PluginError,
    ShapeError,
)
from loopkit.hookspecs import hookspec
from loopkit.monitor import Monitor, infer_mode
from loopkit.plotting import plot_history
from loopkit.random import set_random_seed
from loopkit.saving.background import BackgroundWriter
from loopkit.saving.checkpoints import load_checkpoint, save_checkpoint
from loopkit.saving.model_files import ModelSnapshot, load_model, snapshot_model

__version__ = "0.1.0"

__all__ = [
    "BackgroundWriter",
    "HOOK_NAMES",
    "CheckpointError",
    "ConfigError",
    "History",
    "Input",
    "KerasTensor",
    "LoopState",
    "LoopkitError",
    "LoopkitWarning",
    "ModelSnapshot",
    "Model",
    "Monitor",
    "OptimizerStep",
    "Plugin",
    "PluginError",
    "Sequential",
    "ShapeError",
    "__version__",
    "activations",
    "callbacks",
    "distributed",
    "hookimpl",
    "hookspec",
    "hookspecs",
    "infer_mode",
    "initializers",
    "layers",
    "load_checkpoint",
    "load_model",
    "losses",
    "metrics",
    "models",
    "monitor",
    "optimizers",
    "plot_history",
    "plugin_name",
    "preprocessing",
    "regularizers",
    "saving",
    "save_checkpoint",
    "schedules",
    "set_random_seed",
    "snapshot_model",
    "typing",
    "utils",
    "validators",
]
