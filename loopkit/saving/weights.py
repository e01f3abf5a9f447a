"""Saving and loading a model's weights as ``.npz`` with a JSON manifest, never pickle."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from loopkit.errors import CheckpointError
from loopkit.saving import _codec
from loopkit.saving.archive import Archive, write_archive

if TYPE_CHECKING:
    from loopkit._training.network import Network

__all__ = [
    "check_weight_headers",
    "load_weights",
    "read_arrays",
    "read_weights",
    "save_weights",
    "weight_keys",
    "write_arrays",
]


def weight_keys(model: Network) -> list[str]:
    """Return ``"layer/param"`` for every weight, in the order of ``model.weights``.

    A nested model's weights are ``"model/layer/param"``; a layer written Keras's
    way (``call()``) names each weight by the attributes holding it,
    ``"block/attribute/param"``.
    """
    from loopkit._training.traced import traced_weight_paths

    keys: list[str] = []
    for layer in model.layers:
        if getattr(layer, "_trace", None) is not None:
            keys.extend(f"{layer.name}/{key}" for key in traced_weight_paths(layer))
        elif getattr(layer, "graph", None) is not None:  # a nested model
            keys.extend(f"{layer.name}/{key}" for key in weight_keys(layer))
        else:
            keys.extend(f"{layer.name}/{p.name}" for p in layer.parameters)
    return keys


def write_arrays(
    path: str | os.PathLike[str], arrays: dict[str, Any], meta: Mapping[str, Any]
) -> None:
    """Atomically write ``arrays`` and the manifest ``meta`` (arrays inside it too)."""
    arrays = dict(arrays)
    manifest = _codec.encode(meta, arrays, "meta")
    write_archive(path, arrays, manifest)


def read_arrays(
    path: str | os.PathLike[str], what: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read every array of a loopkit file and its decoded manifest (sizes checked first).

    Raises:
        CheckpointError: the file is missing, not a regular file, not an ``.npz``,
            holds pickled objects or oversized members, or has no manifest.
    """
    with Archive(path, what) as archive:
        arrays = archive.read_all()
        return arrays, _codec.decode(archive.manifest, arrays, what)


def check_weight_headers(
    archive: Archive,
    expected: Sequence[tuple[str, str, tuple[int, ...]]],
    owner: str,
) -> None:
    """Check the stored weights' headers against ``(key, member, shape)`` before reading.

    Args:
        archive: The open file.
        expected: For each weight of the model: its ``layer/param`` key, the member
            holding it and the shape the model needs.
        owner: The model's name, for the message.

    Raises:
        CheckpointError: a weight is missing, of another shape, or not floating point.
    """
    missing = [key for key, member, _ in expected if member not in archive.members]
    if missing:
        raise archive.fail(
            f"has no weights {missing} of model {owner!r}; it was written by a model "
            "with other layers (and layer names)."
        )
    for key, member, shape in expected:
        header = archive.members[member]
        layer, param = key.rsplit("/", 1)
        if header.shape != tuple(shape):
            raise CheckpointError(
                f"{archive.what}: layer {layer!r} weight {param!r} has shape "
                f"{tuple(shape)} in the model but {header.shape} in the file. Build the "
                "model with the same layer sizes as the one that saved it."
            )
        if header.dtype.kind != "f":
            raise archive.fail(
                f"stores layer {layer!r} weight {param!r} as {header.dtype}; weights are "
                "floating point. The file was not written by loopkit, or was damaged."
            )


def read_weights(archive: Archive, members: Sequence[str]) -> list[Any]:
    """Read the weight members (headers already checked) and refuse NaN or inf in them."""
    values = [archive.read(m) for m in members]
    for member, value in zip(members, values, strict=True):
        if not np.all(np.isfinite(value)):
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
            raise archive.fail(
                f"stores {member!r} with NaN or inf (first at index {index}); loading it "
                "would make every prediction NaN. Load an earlier file."
            )
    return values


def save_weights(model: Network, filepath: str | os.PathLike[str]) -> None:
    """Atomically write every weight of ``model`` to ``filepath``."""
    keys = weight_keys(model)
    arrays = {key: p.value for key, p in zip(keys, model.weights, strict=True)}
    write_arrays(
        filepath, arrays, {"format": "loopkit.weights", "version": 1, "keys": keys}
    )


def _same_structure(stored: list[str], expected: list[str]) -> list[str] | None:
    """The file's keys in the model's order when only the layer names differ, or None.

    A second model made by the same function has other automatic layer names
    (``dense_2`` for ``dense``); as Keras 3 matches weights by structure, the file's
    weights are then taken in order, when there are as many and each key is the
    same but for those numeric suffixes (``dense_2/kernel`` for ``dense/kernel``).
    Names chosen by hand that differ (``encoder`` for ``decoder``) still refuse.
    Shapes are checked after.
    """
    if len(stored) != len(expected):
        return None
    for file_key, model_key in zip(stored, expected, strict=True):
        if _AUTOMATIC_SUFFIX.sub("", file_key) != _AUTOMATIC_SUFFIX.sub("", model_key):
            return None
    return stored


_AUTOMATIC_SUFFIX = re.compile(r"_\d+(?=/)")
"""The ``_<n>`` that Keras-style automatic names add to a layer's name in a key."""


def load_weights(model: Network, filepath: str | os.PathLike[str]) -> None:
    """Copy the weights in ``filepath`` into ``model`` after checking all of them.

    Shapes and dtypes are checked from the file's headers before any data is read,
    and every value before any weight changes: on an error the model is untouched.

    Raises:
        CheckpointError: unreadable or foreign file, weights that do not fit.
    """
    what = f"load_weights({os.fspath(filepath)!r})"
    with Archive(filepath, what) as archive:
        kind = archive.manifest.get("format")
        prefix = ""
        if kind == "loopkit.model":  # a whole-model file: take its weights, as Keras does
            prefix = "weights/"
        elif kind != "loopkit.weights":
            raise CheckpointError(
                f"{what}: the file is a {kind!r} file, not loopkit weights. Pass a file "
                "written by model.save_weights() or model.save()."
            )
        stored = [m[len(prefix) :] for m in archive.members if m.startswith(prefix)]
        expected = weight_keys(model)
        missing = [k for k in expected if k not in stored]
        extra = [k for k in stored if k not in expected]
        keys = expected
        if missing or extra:
            matched = _same_structure(stored, expected)
            if matched is None:
                raise CheckpointError(
                    f"{what}: the file's weights do not match model {model.name!r}. "
                    f"Missing from the file: {missing}; in the file but not the model: "
                    f"{extra}. Load into a model built with the same layers."
                )
            keys = matched
        members = [prefix + key for key in keys]
        shapes = [p.shape for p in model.weights]
        check_weight_headers(
            archive, list(zip(expected, members, shapes, strict=True)), model.name
        )
        values = read_weights(archive, members)
    for value, param in zip(values, model.weights, strict=True):
        param.value[...] = value
