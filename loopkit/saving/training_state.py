"""The state an exact resume needs, restored all-or-nothing: validate all, then apply.

``training_state`` collects weights, optimizer slots, random generators and loop
counters. ``restore_training_state`` checks every part of a stored state against
the model first (shapes, dtypes, finite values, counter types, generator states),
then applies it; should applying still fail, the model is put back as it was, so a
failed load never leaves a half-restored model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from loopkit import optimizers as _optimizers
from loopkit import schedules as _schedules
from loopkit.errors import CheckpointError
from loopkit.saving import _codec
from loopkit.saving.weights import weight_keys

if TYPE_CHECKING:
    from loopkit._training.sequential import Sequential

__all__ = [
    "capture_training_state",
    "restore_training_state",
    "training_state",
    "validate_training_state",
]

_LOOP_KEYS = ("epoch", "batch", "global_step", "epochs_completed")


def _own_rng_layers(model: Sequential) -> list[Any]:
    return [la for la in model.layers if la.rng is not None and la.rng is not model.rng]


def training_state(model: Sequential) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(arrays, meta)`` holding everything needed to continue training exactly.

    Weights, optimizer slots and iteration count, the random generators' states
    (the model's, and those of layers seeded on their own) and the loop counters.
    Plugins add their own state through ``on_save_checkpoint`` (called by the plugin
    writing the checkpoint).
    """
    from loopkit.saving.model_files import model_config

    arrays: dict[str, Any] = {
        f"weights/{key}": param.value
        for key, param in zip(weight_keys(model), model.weights, strict=True)
    }
    meta: dict[str, Any] = {
        "model": model_config(model),
        "rng": _codec.encode(model.rng.bit_generator.state),
        # layers seeded on their own (Dropout(seed=...)) draw from their own generator
        "layer_rngs": {
            layer.name: _codec.encode(layer.rng.bit_generator.state)
            for layer in _own_rng_layers(model)
        },
        "shuffle_seed": model.shuffle_seed,
        "loop": model.state.state_dict(),
    }
    if model.optimizer is not None:
        model.trainable_spans  # noqa: B018 - builds the optimizer: a fresh one has slots too
        opt_state = model.optimizer.get_state()
        meta["optimizer"] = {
            "config": _codec.encode(_optimizers.serialize(model.optimizer)),
            "iterations": int(opt_state["iterations"]),
            "slots": sorted(opt_state["slots"]),
            "learning_rate": _codec.encode(model.optimizer.raw_learning_rate),
            "learning_rate_multiplier": float(model.optimizer.learning_rate_multiplier),
        }
        for name, value in opt_state["slots"].items():
            arrays[f"optimizer/{name}"] = value
    return arrays, meta


def _count(value: Any, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise CheckpointError(
            f"{what}: the checkpoint's {where} is {value!r:.80}; expected an int >= 0. "
            "The file is damaged or crafted."
        )
    return int(value)


def _float_array(value: Any, what: str, where: str, shape: tuple[int, ...] | None) -> Any:
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise CheckpointError(
            f"{what}: {where} is stored as {array.dtype}; expected floating point. The "
            "file was not written by loopkit, or was damaged."
        )
    if shape is not None and array.shape != shape:
        raise CheckpointError(
            f"{what}: {where} has shape {shape} in the model but {array.shape} in the "
            "checkpoint."
        )
    if not np.all(np.isfinite(array)):
        raise CheckpointError(
            f"{what}: {where} holds NaN or inf; refusing to load it. Load an earlier file."
        )
    return array


def _rng_state(generator: np.random.Generator, saved: Any, what: str, where: str) -> Any:
    """Check ``saved`` fits ``generator``'s bit generator, on a scratch one."""
    scratch = type(generator.bit_generator)()
    try:
        scratch.state = saved
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise CheckpointError(
            f"{what}: the checkpoint's {where} is not a {type(scratch).__name__} state "
            f"({type(err).__name__}: {err}). The file is damaged."
        ) from err
    return saved


def validate_training_state(
    model: Sequential, arrays: Mapping[str, Any], meta: Mapping[str, Any], what: str
) -> Callable[[], None]:
    """Check a stored state against a built ``model``; return the function applying it.

    Nothing changes until the returned function is called.

    Raises:
        CheckpointError: any part of the state does not fit the model.
    """
    keys = weight_keys(model)
    missing = [k for k in keys if f"weights/{k}" not in arrays]
    if missing:
        raise CheckpointError(
            f"{what}: the checkpoint has no weights {missing} of model {model.name!r}; "
            "it was written by a model with other layers."
        )
    weights = [
        _float_array(
            arrays[f"weights/{k}"],
            what,
            f"layer {k.split('/')[0]!r} weight {p.name!r}",
            p.shape,
        )
        for k, p in zip(keys, model.weights, strict=True)
    ]
    rng = _rng_state(model.rng, meta.get("rng"), what, "random generator state")
    layer_rngs = meta.get("layer_rngs", {})
    if not isinstance(layer_rngs, Mapping):
        raise CheckpointError(f"{what}: the checkpoint's layer_rngs is not a dict.")
    by_name = {layer.name: layer for layer in _own_rng_layers(model)}
    rngs = {
        name: _rng_state(by_name[name].rng, state, what, f"layer {name!r} generator")
        for name, state in layer_rngs.items()
        if name in by_name
    }
    seed = _count(meta.get("shuffle_seed"), what, "shuffle_seed")
    loop = meta.get("loop")
    if not isinstance(loop, Mapping):
        raise CheckpointError(f"{what}: the checkpoint's loop counters are {loop!r:.80}.")
    counters = {k: _count(loop.get(k), what, f"loop.{k}") for k in _LOOP_KEYS}
    apply_optimizer = _validate_optimizer(model, arrays, meta, what)

    def apply() -> None:
        apply_optimizer()
        for value, param in zip(weights, model.weights, strict=True):
            param.value[...] = value
        model.rng.bit_generator.state = rng
        for name, state in rngs.items():
            by_name[name].rng.bit_generator.state = state
        model.shuffle_seed = seed
        model.state.load_state_dict(counters)

    return apply


def _validate_optimizer(
    model: Sequential, arrays: Mapping[str, Any], meta: Mapping[str, Any], what: str
) -> Callable[[], None]:
    saved = meta.get("optimizer")
    if model.optimizer is None or saved is None:
        return lambda: None
    optimizer = model.optimizer
    if not isinstance(saved, Mapping) or not isinstance(saved.get("slots"), list):
        raise CheckpointError(f"{what}: the checkpoint's optimizer entry is malformed.")
    names = [str(n) for n in saved["slots"]]
    absent = [name for name in names if f"optimizer/{name}" not in arrays]
    if absent:
        raise CheckpointError(
            f"{what}: the checkpoint lists optimizer slots {absent} but holds no "
            "arrays for them; the file is damaged. Save it again."
        )
    slots = {
        n: _float_array(arrays[f"optimizer/{n}"], what, f"optimizer slot {n!r}", None)
        for n in names
    }
    state = {
        "iterations": _count(saved.get("iterations"), what, "optimizer iterations"),
        "slots": slots,
    }
    rate = saved.get("learning_rate")
    if isinstance(rate, dict):
        try:
            rate = _schedules.get(rate)
        except (ValueError, TypeError, KeyError) as err:
            raise CheckpointError(
                f"{what}: the checkpoint's learning-rate schedule is unusable ({err})."
            ) from err
    elif rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, (int, float))
    ):
        raise CheckpointError(f"{what}: the checkpoint's learning rate is {rate!r:.80}.")
    multiplier = saved.get("learning_rate_multiplier")
    if multiplier is not None and (
        isinstance(multiplier, bool)
        or not isinstance(multiplier, (int, float))
        or not multiplier > 0
    ):
        raise CheckpointError(
            f"{what}: the checkpoint's learning_rate_multiplier is {multiplier!r:.80}."
        )
    model.trainable_spans  # noqa: B018 - builds the optimizer before its state is checked
    # set_state checks names and sizes before it loads any slot
    expected = set(optimizer.slot_names())
    if set(slots) != expected:
        optimizer.set_state(state)  # raises its own message, having changed nothing

    def apply() -> None:
        optimizer.set_state(state)
        if rate is not None:  # a rate changed during training is part of the state
            optimizer.learning_rate = rate if not isinstance(rate, int) else float(rate)
        if multiplier is not None:
            optimizer.learning_rate_multiplier = float(multiplier)

    return apply


def capture_training_state(model: Sequential) -> Callable[[], None]:
    """Copy what restoring a state may change; return the function putting it back."""
    weights = model.flat_weights.copy()
    rng = model.rng.bit_generator.state
    rngs = {layer: layer.rng.bit_generator.state for layer in _own_rng_layers(model)}
    seed, loop = model.shuffle_seed, model.state.state_dict()
    optimizer = model.optimizer
    opt: tuple[Any, Any, float] | None = None
    if optimizer is not None:
        model.trainable_spans  # noqa: B018 - builds the optimizer, so get_state has slots
        opt = (
            optimizer.get_state(),
            optimizer.raw_learning_rate,
            optimizer.learning_rate_multiplier,
        )

    def undo() -> None:
        model.flat_weights[...] = weights
        model.rng.bit_generator.state = rng
        for layer, state in rngs.items():
            layer.rng.bit_generator.state = state
        model.shuffle_seed = seed
        model.state.load_state_dict(loop)
        if optimizer is not None and opt is not None:
            optimizer.set_state(opt[0])
            optimizer.learning_rate, optimizer.learning_rate_multiplier = opt[1], opt[2]

    return undo


def restore_training_state(
    model: Sequential, arrays: Mapping[str, Any], meta: Mapping[str, Any], what: str
) -> None:
    """Restore what ``training_state`` returned into a built, compiled ``model``.

    Every part is checked before anything changes; on any error the model is as it
    was.

    Raises:
        CheckpointError: the checkpoint does not fit the model.
    """
    apply = validate_training_state(model, arrays, meta, what)
    undo = capture_training_state(model)
    try:
        apply()
    except BaseException:
        undo()
        raise
