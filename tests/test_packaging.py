"""Packaging names every package folder, and every public import path keeps working."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import tomllib

import loopkit

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_named_in_pyproject_so_the_wheel_ships_it() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "loopkit").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages"
    assert "loopkit.plugins" in listed


def test_every_module_of_the_package_imports() -> None:
    names = [m.name for m in pkgutil.walk_packages(loopkit.__path__, "loopkit.")]
    assert "loopkit._training.graph" in names and "loopkit.layers.recurrent.lstm" in names
    for name in names:
        importlib.import_module(name)


PUBLIC_PATHS = [
    "loopkit.Sequential",
    "loopkit.Model",
    "loopkit.Input",
    "loopkit.History",
    "loopkit.load_model",
    "loopkit.save_checkpoint",
    "loopkit.load_checkpoint",
    "loopkit.hookimpl",
    "loopkit.Plugin",
    "loopkit.set_random_seed",
    "loopkit.layers.Dense",
    "loopkit.layers.Conv2D",
    "loopkit.layers.LSTM",
    "loopkit.layers.Concatenate",
    "loopkit.losses.MeanSquaredError",
    "loopkit.losses.get",
    "loopkit.metrics.Accuracy",
    "loopkit.optimizers.Adam",
    "loopkit.optimizers.schedules",
    "loopkit.activations.ReLU",
    "loopkit.initializers.GlorotUniform",
    "loopkit.regularizers.L2",
    "loopkit.schedules.ExponentialDecay",
    "loopkit.callbacks.Callback",
    "loopkit.callbacks.EarlyStopping",
    "loopkit.saving.load_model",
    "loopkit.plugins.TensorBoard",
    "loopkit.plugins.ModelCheckpoint",
    "loopkit.plugins.DataParallel",
    "loopkit.distributed.is_primary",
    "loopkit.validators.one_of",
    "loopkit.monitor.Monitor",
    "loopkit.typing.FloatArray",
    "loopkit.testing.check_layer_gradients",
    "loopkit.plot_history",
]


def test_the_public_import_paths_resolve_from_import_loopkit_alone() -> None:
    for path in PUBLIC_PATHS:
        obj = loopkit
        for part in path.split(".")[1:]:
            obj = getattr(obj, part)
        assert obj is not None, path
