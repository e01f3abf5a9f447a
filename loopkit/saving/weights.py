"""Saving and loading a model's weights as ``.npz`` with a JSON manifest, never pickle."""

from __future__ import annotations

import json
import os
import zipfile
from typing import TYPE_CHECKING, Any

import numpy as np

from loopkit.errors import CheckpointError
from loopkit.saving.atomic import write_atomically

if TYPE_CHECKING:
    from loopkit._training.network import Network

__all__ = ["load_weights", "read_arrays", "save_weights", "weight_keys", "write_arrays"]

_MANIFEST = "__manifest__"


def weight_keys(model: Network) -> list[str]:
    """Return ``"layer/param"`` for every weight, in the order of ``model.weights``."""
    return [f"{layer.name}/{p.name}" for layer in model.layers for p in layer.parameters]


def write_arrays(
    path: str | os.PathLike[str], arrays: dict[str, Any], meta: dict[str, Any]
) -> None:
    """Atomically write ``arrays`` and a JSON ``meta`` record into one ``.npz`` file."""
    blob = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), np.uint8)
    contents = {**arrays, _MANIFEST: blob}

    write_atomically(path, lambda handle: _write_npz(handle, contents))


def _write_npz(handle: Any, arrays: dict[str, Any]) -> None:
    """Write ``arrays`` as ``np.savez`` does, straight from their memory.

    The same archive (stored ``.npy`` members, version 1.0 headers), but each array's
    bytes go to the file without ``np.savez``'s ``tobytes`` copy and in-memory zip:
    a checkpoint written every epoch in a background thread then copies less while
    training runs.
    """
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            array = np.asarray(value)
            if not array.flags.c_contiguous:
                array = array.copy(order="C")
            if array.dtype.hasobject:
                raise TypeError(f"write_arrays: {name!r} holds Python objects.")
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                header = np.lib.format.header_data_from_array_1_0(array)
                np.lib.format.write_array_header_1_0(member, header)
                member.write(array.reshape(-1).view(np.uint8).data)


def read_arrays(
    path: str | os.PathLike[str], what: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a file written by ``write_arrays``: its arrays and its JSON meta record.

    Raises:
        CheckpointError: the file is missing, not an ``.npz``, holds pickled objects,
            or has no manifest.
    """
    if not os.path.exists(path):
        raise CheckpointError(
            f"{what}: no file at {os.fspath(path)!r}. Check the path; files are written "
            "by model.save_weights() / model.save()."
        )
    try:
        # Opened here, not by np.load, so the file is closed whatever np.load raises.
        with open(path, "rb") as handle:
            if handle.read(4) != b"PK\x03\x04":  # every .npz is a zip archive
                raise CheckpointError(
                    f"{what}: {os.fspath(path)!r} is not an .npz archive (it may be "
                    "truncated, or written by another program). Pass a file written by "
                    "model.save_weights() or model.save()."
                )
            handle.seek(0)
            with np.load(handle, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(
            f"{what}: {os.fspath(path)!r} is not a readable loopkit .npz file ({err}). "
            "It may be truncated or written by another program."
        ) from err
    if _MANIFEST not in arrays:
        raise CheckpointError(
            f"{what}: {os.fspath(path)!r} has no loopkit manifest; expected a file "
            "written by model.save_weights() or model.save()."
        )
    try:
        meta = json.loads(arrays.pop(_MANIFEST).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{what}: the manifest of {os.fspath(path)!r} is not valid JSON ({err}); the "
            "file is damaged. Save it again."
        ) from err
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{what}: the manifest of {os.fspath(path)!r} is a {type(meta).__name__}, "
            "not a JSON object; the file was not written by loopkit."
        )
    return arrays, meta


def save_weights(model: Network, filepath: str | os.PathLike[str]) -> None:
    """Atomically write every weight of ``model`` to ``filepath``."""
    keys = weight_keys(model)
    arrays = {key: p.value for key, p in zip(keys, model.weights, strict=True)}
    write_arrays(
        filepath, arrays, {"format": "loopkit.weights", "version": 1, "keys": keys}
    )


def load_weights(model: Network, filepath: str | os.PathLike[str]) -> None:
    """Copy the weights in ``filepath`` into ``model`` after checking all of them."""
    what = f"load_weights({os.fspath(filepath)!r})"
    arrays, meta = read_arrays(filepath, what)
    kind = meta.get("format")
    if kind == "loopkit.model":  # a whole-model file: take its weights, as Keras does
        prefix = "weights/"
        arrays = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
    elif kind != "loopkit.weights":
        raise CheckpointError(
            f"{what}: the file is a {kind!r} file, not loopkit weights. Pass a file "
            "written by model.save_weights() or model.save()."
        )
    expected = weight_keys(model)
    missing = [k for k in expected if k not in arrays]
    extra = [k for k in arrays if k not in expected]
    if missing or extra:
        raise CheckpointError(
            f"{what}: the file's weights do not match model {model.name!r}. Missing "
            f"from the file: {missing}; in the file but not the model: {extra}. Load "
            "into a model built with the same layers (and layer names)."
        )
    for key, param in zip(expected, model.weights, strict=True):
        if arrays[key].shape != param.shape:
            layer = key.split("/")[0]
            raise CheckpointError(
                f"{what}: layer {layer!r} weight {param.name!r} has shape {param.shape} "
                f"in the model but {arrays[key].shape} in the file. Build the model "
                "with the same layer sizes as the one that saved it."
            )
    for key, param in zip(expected, model.weights, strict=True):
        param.value[...] = arrays[key]
