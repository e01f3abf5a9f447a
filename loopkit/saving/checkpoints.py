"""Training checkpoints: all that an exact resume needs, written atomically, no pickle."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from loopkit.errors import CheckpointError
from loopkit.saving import _codec
from loopkit.saving._probe import planned_weight_shapes
from loopkit.saving.archive import Archive
from loopkit.saving.training_state import (
    capture_training_state,
    training_state,
    validate_training_state,
)
from loopkit.saving.weights import (
    check_weight_headers,
    read_weights,
    weight_keys,
    write_arrays,
)

if TYPE_CHECKING:
    from loopkit._training.sequential import Sequential

__all__ = ["load_checkpoint", "save_checkpoint"]

_FORMAT = "loopkit.checkpoint"


def _run_plugins(model: Sequential) -> list[tuple[str, Any]]:
    """The run's plugins with their names, unique within the run (state keys)."""
    hooks = model.state.hooks
    return [] if hooks is None else hooks.named_plugins()


def save_checkpoint(model: Sequential, filepath: str | os.PathLike[str]) -> None:
    """Atomically write the full training state of ``model`` and its run's plugins.

    Weights, optimizer slots and iteration count, both random generators (and any
    layer's own), loop counters, metric states, and every plugin of the current run
    that has ``state_dict()`` (keyed by its name), plus whatever plugins add through
    ``on_save_checkpoint``. The previous file at ``filepath`` survives any crash.

    Raises:
        CheckpointError: the model has non-finite weights (a NaN model never
            overwrites a good checkpoint), a plugin's state is not storable, or the
            write failed (disk full, size limit), naming the path.
    """
    if not np.all(np.isfinite(model.flat_weights)):
        raise CheckpointError(
            f"save_checkpoint({os.fspath(filepath)!r}): the model has NaN or inf weights; "
            "refusing to overwrite the checkpoint with them. Lower the learning rate or "
            "add TerminateOnNaN()."
        )
    arrays, meta = training_state(model)
    meta["format"], meta["version"] = _FORMAT, 1
    meta["metrics"] = {m.name: m.get_state() for m in model.metrics}
    meta["plugins"] = {
        name: plugin.state_dict()
        for name, plugin in _run_plugins(model)
        if callable(getattr(plugin, "state_dict", None))
    }
    extra: dict[str, Any] = {}
    if model.state.hooks is not None:
        model.state.hooks.call(
            "on_save_checkpoint", model=model, state=model.state, checkpoint=extra
        )
    meta["extra"] = extra
    write_arrays(filepath, arrays, meta)


def _read_checked(
    model: Sequential, archive: Archive, what: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the stored weights' headers against the model (unbuilt: its plan), read all."""
    meta = archive.manifest
    if meta.get("format") != _FORMAT:
        raise CheckpointError(
            f"{what}: the file is a {meta.get('format')!r} file, not a training checkpoint "
            "(written by save_checkpoint / BackupAndRestore)."
        )
    model_meta = meta.get("model")
    if not isinstance(model_meta, dict):
        raise CheckpointError(f"{what}: the checkpoint has no model description.")
    if model.built:
        planned = [
            (k, p.shape) for k, p in zip(weight_keys(model), model.weights, strict=True)
        ]
    else:
        planned = planned_weight_shapes(
            model.layers, model_meta.get("input_shape"), model.dtype, what
        )
    members = [f"weights/{key}" for key, _ in planned]
    expected = [(key, f"weights/{key}", shape) for key, shape in planned]
    check_weight_headers(archive, expected, model.name)
    arrays = dict(zip(members, read_weights(archive, members), strict=True))
    others = [m for m in archive.members if not m.startswith("weights/")]
    arrays.update(archive.read_all(others))
    return arrays, _codec.decode(meta, arrays, what)


def _capture_plugins(model: Sequential) -> Callable[[], None]:
    """Copy every run plugin's and metric's state; return the function putting it back."""
    saved = [
        (p, p.state_dict())
        for _, p in _run_plugins(model)
        if callable(getattr(p, "state_dict", None))
        and callable(getattr(p, "load_state_dict", None))
    ]
    metrics = [(m, m.get_state()) for m in model.metrics]

    def undo() -> None:
        for plugin, state in saved:
            plugin.load_state_dict(state)
        for metric, state in metrics:
            metric.set_state(state)

    return undo


def load_checkpoint(model: Sequential, filepath: str | os.PathLike[str]) -> dict[str, Any]:
    """Restore a checkpoint written by ``save_checkpoint`` into a compiled ``model``.

    Plugins of the current run get their ``load_state_dict`` called with what they
    saved, then ``on_load_checkpoint`` fires. Everything the file holds is checked
    first (sizes before reading, then shapes, dtypes, values and counters), and if a
    plugin or hook still refuses its part, the model, its metrics and the plugins
    are put back: a load that fails leaves them as they were.

    Returns:
        The checkpoint's contents (meta data and arrays), for callers that need more.

    Raises:
        CheckpointError: missing, unreadable, foreign, or not fitting the model.
    """
    what = f"load_checkpoint({os.fspath(filepath)!r})"
    with Archive(filepath, what) as archive:
        arrays, meta = _read_checked(model, archive, what)
    try:
        if not model.built:
            model.build((None, *meta["model"]["input_shape"]))
        apply = validate_training_state(model, arrays, meta, what)
        for key in ("layer_rngs", "metrics", "plugins", "extra"):
            if not isinstance(meta.get(key, {}), dict):
                raise CheckpointError(f"{what}: the checkpoint's {key!r} is not a dict.")
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(
            f"{what}: the checkpoint's manifest is malformed ({type(err).__name__}: "
            f"{str(err)[:200]}). The file is damaged or crafted."
        ) from err
    undo_model = capture_training_state(model)
    undo_plugins = _capture_plugins(model)
    try:
        apply()
        _apply_run_state(model, meta)
    except BaseException as err:
        undo_model()
        undo_plugins()
        if isinstance(err, Exception) and not isinstance(err, CheckpointError):
            raise CheckpointError(
                f"{what}: restoring the checkpoint failed ({type(err).__name__}: "
                f"{str(err)[:200]}); the model and plugins are as they were."
            ) from err
        raise
    return {"meta": meta, "arrays": arrays, "extra": meta.get("extra", {})}


def _apply_run_state(model: Sequential, meta: dict[str, Any]) -> None:
    metrics, plugins = meta.get("metrics", {}), meta.get("plugins", {})
    for metric in model.metrics:
        if metric.name in metrics:
            metric.set_state(metrics[metric.name])
    for name, plugin in _run_plugins(model):
        if name in plugins and callable(getattr(plugin, "load_state_dict", None)):
            plugin.load_state_dict(plugins[name])
    if model.state.hooks is not None:
        model.state.hooks.call(
            "on_load_checkpoint",
            model=model,
            state=model.state,
            checkpoint=meta.get("extra", {}),
        )
