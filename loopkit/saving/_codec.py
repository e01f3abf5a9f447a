"""The one JSON codec of every loopkit file: manifests holding arrays and non-finite floats.

Every file format (weights, whole models, checkpoints) stores one JSON manifest
beside its arrays. ``encode`` turns a manifest value into JSON-ready data in one
walk: NumPy arrays move to the archive's arrays (``{"__ndarray__": key}`` stays in
their place), NumPy scalars become Python numbers, NaN and infinities become
``{"__float__": "inf"}`` (strict JSON has no spelling for them), objects with
``get_config`` become ``{"class_name": ..., "config": ...}``. ``decode`` reverses
the array and float tags. Nothing is ever pickled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from loopkit.errors import CheckpointError

__all__ = ["MAX_DEPTH", "array_refs", "decode", "dumps", "encode", "loads"]

_ARRAY = "__ndarray__"
_FLOAT = "__float__"
MAX_DEPTH = 64
"""Deepest nesting a manifest may have; deeper files are refused, not recursed into."""


def encode(
    value: Any, arrays: dict[str, Any] | None = None, prefix: str = "", where: str = ""
) -> Any:
    """Return ``value`` as strict-JSON-ready data.

    Args:
        value: Manifest data: dicts, lists, tuples, str, numbers, bool, None, NumPy
            scalars and arrays, and objects with ``get_config()``.
        arrays: Where arrays go, keyed ``"{prefix}#{n}"``; None refuses arrays.
        prefix: Key prefix of the arrays moved out of ``value``.
        where: The path of ``value`` in the manifest, for messages.

    Raises:
        CheckpointError: a value that could only be stored with pickle.
    """
    if isinstance(value, np.ndarray):
        if arrays is None:
            raise CheckpointError(f"{where or 'The value'} is an array, not JSON data.")
        key = f"{prefix}#{len(arrays)}"
        arrays[key] = value
        return {_ARRAY: key}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {_FLOAT: repr(value)}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): encode(v, arrays, prefix, f"{where}/{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v, arrays, prefix, f"{where}[{i}]") for i, v in enumerate(value)]
    if callable(getattr(value, "get_config", None)):
        config = encode(value.get_config(), arrays, prefix, f"{where}/config")
        return {"class_name": type(value).__name__, "config": config}
    raise CheckpointError(
        f"The state at {where or '/'!r} holds a {type(value).__name__}, which cannot be "
        "stored without pickle; return only JSON values (str, numbers, bool, None, "
        "lists, dicts) and NumPy arrays from state_dict()."
    )


def decode(value: Any, arrays: Mapping[str, Any] | None = None, what: str = "") -> Any:
    """Reverse ``encode``: the tagged floats, and the arrays (copied) from ``arrays``.

    Raises:
        CheckpointError: a tag names an array the file does not hold, or a float tag
            holds something else than a float's spelling.
    """
    if isinstance(value, dict):
        if len(value) == 1 and _ARRAY in value:
            key = value[_ARRAY]
            if arrays is None or not isinstance(key, str) or key not in arrays:
                raise CheckpointError(
                    f"{what}: the manifest refers to an array {key!r} that the file "
                    "does not hold; the file is damaged. Save it again."
                )
            return np.array(arrays[key], copy=True)
        if len(value) == 1 and _FLOAT in value:
            text = value[_FLOAT]
            if text not in ("nan", "inf", "-inf"):
                raise CheckpointError(
                    f"{what}: the manifest has a float tag {text!r}; expected 'nan', "
                    "'inf' or '-inf'. The file is damaged."
                )
            return float(text)
        return {k: decode(v, arrays, what) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, arrays, what) for v in value]
    return value


def array_refs(value: Any) -> list[str]:
    """Return the array keys ``value`` (raw manifest JSON) refers to, in order."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if len(item) == 1 and isinstance(item.get(_ARRAY), str):
                found.append(item[_ARRAY])
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def dumps(manifest: Mapping[str, Any]) -> bytes:
    """Return the manifest (already ``encode``-d) as UTF-8 strict JSON."""
    return json.dumps(manifest, sort_keys=True, allow_nan=False).encode("utf-8")


def loads(blob: bytes, what: str) -> dict[str, Any]:
    """Parse a manifest; raise CheckpointError unless it is a JSON object of sane depth."""
    try:
        text = blob.decode("utf-8")
        _check_depth(text, what)
        meta = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise CheckpointError(
            f"{what} is not valid JSON ({type(err).__name__}: {err}); the file is "
            "damaged. Save it again."
        ) from err
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{what} is a {type(meta).__name__}, not a JSON object; the file was not "
            "written by loopkit."
        )
    return meta


def _check_depth(text: str, what: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before ``json.loads`` recurses into it."""
    opened = np.frombuffer(text.encode("utf-8"), np.uint8)
    # Brackets inside strings count too: an over-estimate, harmless at this bound.
    steps = np.zeros(len(opened), np.int64)
    steps[(opened == ord("[")) | (opened == ord("{"))] = 1
    steps[(opened == ord("]")) | (opened == ord("}"))] = -1
    if len(steps) and int(np.cumsum(steps).max()) > MAX_DEPTH:
        raise CheckpointError(
            f"{what} nests deeper than {MAX_DEPTH} levels; loopkit never writes such "
            "files. It was crafted or damaged."
        )
