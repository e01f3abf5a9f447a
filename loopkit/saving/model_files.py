"""Whole-model files: architecture, weights, compile config, optimizer state; no pickle."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from attrs import frozen

from loopkit import layers as _layers
from loopkit import losses as _losses
from loopkit import metrics as _metrics
from loopkit import optimizers as _optimizers
from loopkit._registry import with_global_custom_objects
from loopkit.errors import CheckpointError, ConfigError
from loopkit.saving import _codec
from loopkit.saving._probe import planned_graph_weight_shapes, planned_weight_shapes
from loopkit.saving.archive import Archive
from loopkit.saving.training_state import restore_training_state, training_state
from loopkit.saving.weights import (
    check_weight_headers,
    read_weights,
    weight_keys,
    write_arrays,
)
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


def model_config(model: Any) -> dict[str, Any]:
    """Return the architecture of ``model`` as JSON-ready data.

    A ``Sequential`` keeps its flat format; any other model is ``{"class_name":
    "Functional", ...}`` with its layers and calls (``Model.get_config``).
    """
    if type(model).__name__ != "Sequential":
        return {"class_name": "Functional", **_codec.encode(model.get_config())}
    return {
        "name": model.name,
        "dtype": str(model.dtype),
        "input_shape": None if model.input_shape is None else list(model.input_shape),
        "layers": [
            {
                "class_name": type(layer).__name__,
                "config": _codec.encode(layer.get_config()),
            }
            for layer in model.layers
        ],
    }


def model_from_config(
    config: Mapping[str, Any],
    custom_objects: Mapping[str, type] | None = None,
    *,
    check_weights: Callable[[list[tuple[str, tuple[int, ...]]]], None] | None = None,
    what: str = "load_model()",
) -> Sequential:
    """Rebuild (and build, when the input shape is known) a model from ``model_config``.

    Args:
        config: What ``model_config`` returned.
        custom_objects: Layer classes not defined by loopkit, by class name.
        check_weights: Called with ``("layer/param", shape)`` of every weight the
            architecture declares, found without allocating them, before building:
            a loader checks them against the stored arrays there.
        what: The user's call, for messages.

    Raises:
        CheckpointError: a layer class is unknown (pass it in ``custom_objects``), or
            ``check_weights`` refused the shapes.
    """
    from loopkit._training.sequential import Sequential

    if config.get("class_name") == "Functional":
        return _functional_from_config(  # type: ignore[no-any-return]
            config, custom_objects, check_weights, what
        )
    known = {name: getattr(_layers, name) for name in _layers.__all__}
    known.update(with_global_custom_objects(custom_objects) or {})
    built_layers = []
    for entry in config["layers"]:
        cls = known.get(entry["class_name"])
        if cls is None:
            raise CheckpointError(
                f"{what}: the file uses layer class {entry['class_name']!r}, which "
                f"loopkit does not define.{suggest(entry['class_name'], known)} Pass it as "
                f"custom_objects={{{entry['class_name']!r}: YourLayer}}."
            )
        kwargs = dict(entry["config"])
        if kwargs.get("input_shape") is not None:
            kwargs["input_shape"] = tuple(kwargs["input_shape"])
        built_layers.append(cls(**kwargs))
    input_shape = config.get("input_shape")
    if built_layers and built_layers[0].input_shape is not None:
        input_shape = list(built_layers[0].input_shape)
    if check_weights is not None and input_shape is not None:
        dtype = np.dtype(config["dtype"])
        check_weights(planned_weight_shapes(built_layers, input_shape, dtype, what))
    model = Sequential(built_layers, name=config["name"], dtype=config["dtype"])
    if not model.built and input_shape is not None:
        model.build((None, *input_shape))
    return model


def _functional_from_config(
    config: Mapping[str, Any],
    custom_objects: Mapping[str, type] | None,
    check_weights: Callable[[list[tuple[str, tuple[int, ...]]]], None] | None,
    what: str,
) -> Any:
    """Rebuild a functional model, its weight shapes checked before any is allocated."""
    from loopkit._training.model import Model

    try:
        if check_weights is not None:
            check_weights(planned_graph_weight_shapes(config, custom_objects, what))
        return Model.from_config(config, custom_objects=custom_objects)
    except ConfigError as err:
        raise CheckpointError(f"{what}: {err}") from err


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
        meta["compile"] = _compile_config(model)
    return arrays, meta


def _compile_config(model: Any) -> dict[str, Any]:
    """The loss, metrics and loss weights of every output, keyed by output name."""
    if len(model.heads) == 1:
        return {
            "loss": None
            if model.loss is None
            else _codec.encode(_losses.serialize(model.loss)),
            "metrics": [
                _codec.encode(_metrics.serialize(m)) for m in model.heads[0].metrics
            ],
            "weighted_metrics": [
                _codec.encode(_metrics.serialize(m))
                for m in model.heads[0].weighted_metrics
            ],
            "loss_weight": model.loss_weight,
        }

    def metric_config(head: Any, metric: Any) -> Any:
        config = _codec.encode(_metrics.serialize(metric))
        name = config.get("config", {}).get("name", "")
        if name.startswith(f"{head.name}_"):  # compile adds the prefix again
            config["config"]["name"] = name[len(head.name) + 1 :]
        return config

    return {
        "loss": {
            h.name: None if h.loss is None else _codec.encode(_losses.serialize(h.loss))
            for h in model.heads
        },
        "metrics": {h.name: [metric_config(h, m) for m in h.metrics] for h in model.heads},
        "weighted_metrics": {
            h.name: [metric_config(h, m) for m in h.weighted_metrics] for h in model.heads
        },
        "loss_weight": {h.name: h.weight for h in model.heads},
    }


def load_model(
    filepath: str | os.PathLike[str],
    custom_objects: Mapping[str, type] | None = None,
    compile: bool = True,
) -> Sequential:
    """Read a model written by ``model.save``: ready to predict, or to continue fitting.

    The architecture's weight shapes are checked against the stored arrays' headers
    before the model is built, so a file declaring a huge layer allocates nothing.

    Args:
        filepath: The file ``model.save`` wrote.
        custom_objects: Layer classes not defined by loopkit, by class name.
        compile: Also restore the loss, metrics, optimizer and its state.

    Raises:
        CheckpointError: missing, unreadable, foreign or malformed file, unknown
            layer class, weights that do not fit the architecture.
    """
    what = f"load_model({os.fspath(filepath)!r})"
    with Archive(filepath, what) as archive:
        meta = archive.manifest
        if meta.get("format") != _FORMAT:
            raise CheckpointError(
                f"{what}: the file is a {meta.get('format')!r} file, not a saved model. "
                "Use model.load_weights() for weights files."
            )
        try:
            return _load_model(archive, meta, custom_objects, compile, what)
        except CheckpointError:
            raise
        except Exception as err:  # anything a malformed manifest makes the code raise
            raise CheckpointError(
                f"{what}: the file's manifest is incomplete or malformed "
                f"({type(err).__name__}: {str(err)[:200]}); it was damaged or written "
                "by an incompatible version. Save the model again."
            ) from err


def _load_model(
    archive: Archive,
    meta: dict[str, Any],
    custom_objects: Mapping[str, type] | None,
    compile: bool,
    what: str,
) -> Sequential:
    meta = _codec.decode(meta, {}, what)
    name = str(meta["model"].get("name"))

    def check(planned: list[tuple[str, tuple[int, ...]]]) -> None:
        expected = [(key, f"weights/{key}", shape) for key, shape in planned]
        check_weight_headers(archive, expected, name)

    model = model_from_config(meta["model"], custom_objects, check_weights=check, what=what)
    if compile and "compile" in meta:
        config = meta["compile"]
        model.compile(
            optimizer=_optimizers.get(meta["optimizer"]["config"]),
            loss=config["loss"],
            metrics=config["metrics"],
            loss_weights=config["loss_weight"],
            weighted_metrics=config.get("weighted_metrics"),  # older files lack it
        )
    else:
        meta = {k: v for k, v in meta.items() if k != "optimizer"}
    keys = weight_keys(model)
    members = [f"weights/{key}" for key in keys]
    shapes = [p.shape for p in model.weights]
    check_weight_headers(archive, list(zip(keys, members, shapes, strict=True)), name)
    arrays = dict(zip(members, read_weights(archive, members), strict=True))
    if "optimizer" in meta:
        slots = [f"optimizer/{s}" for s in meta["optimizer"]["slots"]]
        arrays.update(archive.read_all(s for s in slots if s in archive.members))
    restore_training_state(model, arrays, meta, what)
    return model
