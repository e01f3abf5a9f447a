"""The plugin workload's sets: ten idle plugins, and loopkit's standard set."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import loopkit as lk

__all__ = ["STANDARD", "IdlePlugin", "idle_plugins", "standard_plugins"]

STANDARD = ("EarlyStopping", "ModelCheckpoint", "TensorBoard", "CSVLogger", "ProgressBar")
"""The standard set, as the issue names it."""


class IdlePlugin:
    """A plugin whose hooks do nothing: what the plugin system itself costs per step."""

    def __init__(self, index: int) -> None:
        self.name = f"idle_{index}"

    @lk.hookimpl
    def on_train_batch_begin(self, batch: int) -> None:
        pass

    @lk.hookimpl
    def on_train_batch_end(self, batch: int, logs: Any) -> None:
        pass

    @lk.hookimpl
    def on_epoch_end(self, epoch: int, logs: Any) -> None:
        pass


def idle_plugins(count: int = 10) -> list[Any]:
    """Return ``count`` fresh idle plugins."""
    return [IdlePlugin(i) for i in range(count)]


def _plugin_class(name: str) -> Any:
    import loopkit.plugins

    try:
        return getattr(loopkit.plugins, name)
    except (AttributeError, ImportError):
        return None


def missing_standard() -> list[str]:
    """Return the standard plugins loopkit does not have (yet)."""
    return [name for name in STANDARD if _plugin_class(name) is None]


def standard_plugins(directory: Path, stream: Any) -> list[Any]:
    """Return fresh instances of the standard set's available plugins.

    EarlyStopping watches ``loss`` (there is no validation data) with a patience it
    never reaches; ModelCheckpoint saves the whole model every epoch; TensorBoard
    writes at epoch level; the progress bar writes to ``stream``.
    """
    made: dict[str, Any] = {}
    factories = {
        "EarlyStopping": lambda cls: cls(monitor="loss", patience=10_000),
        "ModelCheckpoint": lambda cls: cls(filepath=os.fspath(directory / "model.npz")),
        "TensorBoard": lambda cls: cls(
            log_dir=os.fspath(directory / "tb"), update_freq="epoch"
        ),
        "CSVLogger": lambda cls: cls(os.fspath(directory / "log.csv")),
        "ProgressBar": lambda cls: cls(stream=stream),
    }
    for name in STANDARD:
        cls = _plugin_class(name)
        if cls is not None:
            made[name] = factories[name](cls)
    return list(made.values())
