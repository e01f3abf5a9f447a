"""Training checkpoints: all that an exact resume needs, written atomically, no pickle."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from loopkit.errors import CheckpointError
from loopkit.saving.model_files import restore_training_state, training_state
from loopkit.saving.weights import read_arrays, write_arrays

if TYPE_CHECKING:
    from loopkit._training.sequential import Sequential

__all__ = ["load_checkpoint", "pack_state", "save_checkpoint", "unpack_state"]

_FORMAT = "loopkit.checkpoint"
_ARRAY = "__ndarray__"


def pack_state(value: Any, prefix: str, arrays: dict[str, Any]) -> Any:
    """Return ``value`` as JSON-ready data, moving every NumPy array into ``arrays``.

    Arrays are replaced by ``{"__ndarray__": key}``; ``unpack_state`` reverses it.

    Raises:
        CheckpointError: a value is neither JSON-ready nor an array (an object would
            need pickle to be read back).
    """
    if isinstance(value, np.ndarray):
        key = f"{prefix}#{len(arrays)}"
        arrays[key] = value
        return {_ARRAY: key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): pack_state(v, prefix, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [pack_state(v, prefix, arrays) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise CheckpointError(
        f"Checkpoint state under {prefix!r} holds a {type(value).__name__}, which cannot "
        "be stored without pickle; return only JSON values (str, numbers, bool, None, "
        "lists, dicts) and NumPy arrays from state_dict()."
    )


def unpack_state(value: Any, arrays: Mapping[str, Any]) -> Any:
    """Reverse ``pack_state``: put the arrays back where they were."""
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            return np.array(arrays[value[_ARRAY]], copy=True)
        return {k: unpack_state(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [unpack_state(v, arrays) for v in value]
    return value


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
            overwrites a good checkpoint), or a plugin's state is not storable.
    """
    if not np.all(np.isfinite(model.flat_weights)):
        raise CheckpointError(
            f"save_checkpoint({os.fspath(filepath)!r}): the model has NaN or inf weights; "
            "refusing to overwrite the checkpoint with them. Lower the learning rate or "
            "add TerminateOnNaN()."
        )
    arrays, meta = training_state(model)
    meta["format"], meta["version"] = _FORMAT, 1
    meta["layer_rngs"] = {
        layer.name: layer.rng.bit_generator.state
        for layer in model.layers
        if layer.rng is not None and layer.rng is not model.rng
    }
    meta["metrics"] = {
        m.name: pack_state(m.get_state(), f"metrics/{m.name}", arrays)
        for m in model.metrics
    }
    plugins: dict[str, Any] = {}
    for name, plugin in _run_plugins(model):
        if callable(getattr(plugin, "state_dict", None)):
            plugins[name] = pack_state(plugin.state_dict(), f"plugins/{name}", arrays)
    meta["plugins"] = plugins
    extra: dict[str, Any] = {}
    if model.state.hooks is not None:
        model.state.hooks.call(
            "on_save_checkpoint", model=model, state=model.state, checkpoint=extra
        )
    meta["extra"] = pack_state(extra, "extra", arrays)
    write_arrays(filepath, arrays, _json_safe(meta))


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _json_restore(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__float__"}:
            return float(value["__float__"])
        return {k: _json_restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_restore(v) for v in value]
    return value


def load_checkpoint(model: Sequential, filepath: str | os.PathLike[str]) -> dict[str, Any]:
    """Restore a checkpoint written by ``save_checkpoint`` into a compiled ``model``.

    Plugins of the current run get their ``load_state_dict`` called with what they
    saved, then ``on_load_checkpoint`` fires. Every shape is checked first: on an
    error nothing has changed.

    Returns:
        The checkpoint's contents (meta data and arrays), for callers that need more.

    Raises:
        CheckpointError: missing, unreadable, foreign, or not fitting the model.
    """
    what = f"load_checkpoint({os.fspath(filepath)!r})"
    arrays, meta = read_arrays(filepath, what)
    meta = _json_restore(meta)
    if meta.get("format") != _FORMAT:
        raise CheckpointError(
            f"{what}: the file is a {meta.get('format')!r} file, not a training checkpoint "
            "(written by save_checkpoint / BackupAndRestore)."
        )
    model.ensure_built(np.zeros((1, *meta["model"]["input_shape"]), model.dtype))
    restore_training_state(model, arrays, meta, what)
    for layer in model.layers:
        saved = meta["layer_rngs"].get(layer.name)
        if saved is not None and layer.rng is not None:
            layer.rng.bit_generator.state = saved
    for metric in model.metrics:
        if metric.name in meta["metrics"]:
            metric.set_state(unpack_state(meta["metrics"][metric.name], arrays))
    for name, plugin in _run_plugins(model):
        if name in meta["plugins"] and callable(getattr(plugin, "load_state_dict", None)):
            plugin.load_state_dict(unpack_state(meta["plugins"][name], arrays))
    extra = unpack_state(meta["extra"], arrays)
    if model.state.hooks is not None:
        model.state.hooks.call(
            "on_load_checkpoint", model=model, state=model.state, checkpoint=extra
        )
    return {"meta": meta, "arrays": arrays, "extra": extra}
