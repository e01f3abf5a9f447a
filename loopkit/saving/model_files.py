"""Whole-model files: architecture, weights, compile config, optimizer state; no pickle."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from attrs import frozen

from loopkit import layers as _layers
from loopkit import losses as _losses
from loopkit import metrics as _metrics
from loopkit import optimizers as _optimizers
from loopkit import schedules as _schedules
from loopkit.errors import CheckpointError
from loopkit.saving.weights import read_arrays, weight_keys, write_arrays
from loopkit.validators import suggest

if TYPE_CHECKING:
    from loopkit._training.sequential import Sequential

__all__ = [
    "ModelSnapshot",
    "load_model",
    "model_config",
    "model_from_config",
    "restore_training_state",
    "save_model",
    "snapshot_model",
    "training_state",
]

_FORMAT = "loopkit.model"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "get_config"):
        return {"class_name": type(value).__name__, "config": _jsonable(value.get_config())}
    return value


def model_config(model: Sequential) -> dict[str, Any]:
    """Return the architecture of ``model`` as JSON-ready data."""
    return {
        "name": model.name,
        "dtype": str(model.dtype),
        "input_shape": None if model.input_shape is None else list(model.input_shape),
        "layers": [
            {"class_name": type(layer).__name__, "config": _jsonable(layer.get_config())}
            for layer in model.layers
        ],
    }


def model_from_config(
    config: Mapping[str, Any], custom_objects: Mapping[str, type] | None = None
) -> Sequential:
    """Rebuild (and build, when the input shape is known) a model from ``model_config``.

    Raises:
        CheckpointError: a layer class is unknown; pass it in ``custom_objects``.
    """
    from loopkit._training.sequential import Sequential

    known = {name: getattr(_layers, name) for name in _layers.__all__}
    known.update(custom_objects or {})
    built_layers = []
    for entry in config["layers"]:
        cls = known.get(entry["class_name"])
        if cls is None:
            raise CheckpointError(
                f"load_model(): the file uses layer class {entry['class_name']!r}, which "
                f"loopkit does not define.{suggest(entry['class_name'], known)} Pass it as "
                f"custom_objects={{{entry['class_name']!r}: YourLayer}}."
            )
        kwargs = dict(entry["config"])
        if kwargs.get("input_shape") is not None:
            kwargs["input_shape"] = tuple(kwargs["input_shape"])
        built_layers.append(cls(**kwargs))
    model = Sequential(built_layers, name=config["name"], dtype=config["dtype"])
    if not model.built and config.get("input_shape") is not None:
        model.build((None, *config["input_shape"]))
    return model


def training_state(model: Sequential) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(arrays, meta)`` holding everything needed to continue training exactly.

    Weights, optimizer slots and iteration count, the random generators' states
    (the model's, and those of layers seeded on their own) and the loop counters.
    Plugins add their own state through ``on_save_checkpoint`` (called by the plugin
    writing the checkpoint).
    """
    arrays: dict[str, Any] = {
        f"weights/{key}": param.value
        for key, param in zip(weight_keys(model), model.weights, strict=True)
    }
    meta: dict[str, Any] = {
        "model": model_config(model),
        "rng": _jsonable(model.rng.bit_generator.state),
        # layers seeded on their own (Dropout(seed=...)) draw from their own generator
        "layer_rngs": {
            layer.name: _jsonable(layer.rng.bit_generator.state)
            for layer in model.layers
            if layer.rng is not None and layer.rng is not model.rng
        },
        "shuffle_seed": model.shuffle_seed,
        "loop": model.state.state_dict(),
    }
    if model.optimizer is not None:
        model.trainable_spans  # noqa: B018 - builds the optimizer: a fresh one has slots too
        opt_state = model.optimizer.get_state()
        meta["optimizer"] = {
            "config": _jsonable(_optimizers.serialize(model.optimizer)),
            "iterations": int(opt_state["iterations"]),
            "slots": sorted(opt_state["slots"]),
            "learning_rate": _jsonable(model.optimizer.learning_rate),
            "learning_rate_multiplier": float(model.optimizer.learning_rate_multiplier),
        }
        for name, value in opt_state["slots"].items():
            arrays[f"optimizer/{name}"] = value
    return arrays, meta


def restore_training_state(
    model: Sequential, arrays: Mapping[str, Any], meta: Mapping[str, Any], what: str
) -> None:
    """Restore what ``training_state`` returned into a built, compiled ``model``.

    Every shape is checked before anything changes.

    Raises:
        CheckpointError: the checkpoint does not fit the model.
    """
    keys = weight_keys(model)
    missing = [k for k in keys if f"weights/{k}" not in arrays]
    if missing:
        raise CheckpointError(
            f"{what}: the checkpoint has no weights {missing} of model {model.name!r}; "
            "it was written by a model with other layers."
        )
    for key, param in zip(keys, model.weights, strict=True):
        stored = arrays[f"weights/{key}"]
        if stored.shape != param.shape:
            raise CheckpointError(
                f"{what}: layer {key.split('/')[0]!r} weight {param.name!r} has shape "
                f"{param.shape} in the model but {stored.shape} in the checkpoint."
            )
    # The optimizer's set_state checks its slots before loading any, so loading it
    # before the weights keeps the model untouched when it refuses.
    if model.optimizer is not None and "optimizer" in meta:
        slot_names = meta["optimizer"]["slots"]
        absent = [name for name in slot_names if f"optimizer/{name}" not in arrays]
        if absent:
            raise CheckpointError(
                f"{what}: the checkpoint lists optimizer slots {absent} but holds no "
                "arrays for them; the file is damaged. Save it again."
            )
        slots = {name: arrays[f"optimizer/{name}"] for name in slot_names}
        model.trainable_spans  # noqa: B018 - builds the optimizer before its state is set
        model.optimizer.set_state(
            {"iterations": meta["optimizer"]["iterations"], "slots": slots}
        )
        # A rate changed during training (by a plugin or by hand) is part of the state.
        saved_rate = meta["optimizer"].get("learning_rate")
        if isinstance(saved_rate, (int, float)):
            model.optimizer.learning_rate = float(saved_rate)
        elif isinstance(saved_rate, dict):
            model.optimizer.learning_rate = _schedules.get(saved_rate)
        multiplier = meta["optimizer"].get("learning_rate_multiplier")
        if multiplier is not None:
            model.optimizer.learning_rate_multiplier = float(multiplier)
    for key, param in zip(keys, model.weights, strict=True):
        param.value[...] = arrays[f"weights/{key}"]
    model.rng.bit_generator.state = meta["rng"]
    by_name = {layer.name: layer for layer in model.layers}
    for name, state in meta.get("layer_rngs", {}).items():
        layer = by_name.get(name)
        if layer is not None and layer.rng is not None and layer.rng is not model.rng:
            layer.rng.bit_generator.state = state
    model.shuffle_seed = int(meta["shuffle_seed"])
    model.state.load_state_dict(meta["loop"])


@frozen
class ModelSnapshot:
    """An in-memory copy of what ``model.save`` (or ``save_weights``) writes.

    Taking one costs a copy of the arrays; ``write`` can then run later or in another
    thread (``loopkit.BackgroundWriter``) while training goes on.

    Args:
        arrays: Name -> array, copies independent of the model.
        meta: The JSON manifest.
    """

    arrays: dict[str, Any]
    meta: dict[str, Any]

    def write(self, filepath: str | os.PathLike[str]) -> None:
        """Atomically write the snapshot to ``filepath``."""
        write_arrays(filepath, self.arrays, self.meta)


def snapshot_model(model: Sequential, weights_only: bool = False) -> ModelSnapshot:
    """Copy what ``model.save`` (or ``model.save_weights``) would write, for later."""
    if weights_only:
        keys = weight_keys(model)
        arrays = {key: p.value.copy() for key, p in zip(keys, model.weights, strict=True)}
        meta = {"format": "loopkit.weights", "version": 1, "keys": keys}
        return ModelSnapshot(arrays, meta)
    arrays, meta = _model_contents(model)
    return ModelSnapshot({k: np.array(v, copy=True) for k, v in arrays.items()}, meta)


def save_model(model: Sequential, filepath: str | os.PathLike[str]) -> None:
    """Atomically write ``model`` (architecture, weights, compile config, optimizer)."""
    write_arrays(filepath, *_model_contents(model))


def _model_contents(model: Sequential) -> tuple[dict[str, Any], dict[str, Any]]:
    if not model.built:
        raise CheckpointError(
            f"save(): model {model.name!r} has no weights yet; build or fit it first."
        )
    arrays, meta = training_state(model)
    meta["format"], meta["version"] = _FORMAT, 1
    if model.optimizer is not None:
        meta["compile"] = {
            "loss": None
            if model.loss is None
            else _jsonable(_losses.serialize(model.loss)),
            "metrics": [_jsonable(_metrics.serialize(m)) for m in model.metrics],
            "loss_weight": model.loss_weight,
        }
    return arrays, meta


def load_model(
    filepath: str | os.PathLike[str],
    custom_objects: Mapping[str, type] | None = None,
    compile: bool = True,
) -> Sequential:
    """Read a model written by ``model.save``: ready to predict, or to continue fitting.

    Args:
        filepath: The file ``model.save`` wrote.
        custom_objects: Layer classes not defined by loopkit, by class name.
        compile: Also restore the loss, metrics, optimizer and its state.

    Raises:
        CheckpointError: missing, unreadable or foreign file, unknown layer class.
    """
    what = f"load_model({os.fspath(filepath)!r})"
    arrays, meta = read_arrays(filepath, what)
    if meta.get("format") != _FORMAT:
        raise CheckpointError(
            f"{what}: the file is a {meta.get('format')!r} file, not a saved model. Use "
            "model.load_weights() for weights files."
        )
    try:
        model = model_from_config(meta["model"], custom_objects)
        if compile and "compile" in meta:
            config = meta["compile"]
            model.compile(
                optimizer=_optimizers.get(meta["optimizer"]["config"]),
                loss=config["loss"],
                metrics=config["metrics"],
                loss_weights=config["loss_weight"],
            )
        else:
            meta = {k: v for k, v in meta.items() if k != "optimizer"}
        restore_training_state(model, arrays, meta, what)
    except (KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(
            f"{what}: the file's manifest is incomplete or malformed "
            f"({type(err).__name__}: {err}); it was damaged or written by an "
            "incompatible version. Save the model again."
        ) from err
    return model
