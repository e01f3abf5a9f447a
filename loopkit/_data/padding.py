"""Ragged sequences to one padded array: Keras's ``keras.utils.pad_sequences``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from loopkit.errors import ConfigError

__all__ = ["pad_sequences"]


def pad_sequences(
    sequences: Sequence[Any],
    maxlen: int | None = None,
    dtype: npt.DTypeLike = "int32",
    padding: Literal["pre", "post"] = "pre",
    truncating: Literal["pre", "post"] = "pre",
    value: Any = 0.0,
) -> Any:
    """Pad (or cut) each sequence to ``maxlen`` steps and stack them, as Keras does.

    ``[[1], [2, 3], [4, 5, 6]]`` becomes ``[[0, 0, 1], [0, 2, 3], [4, 5, 6]]``. Items
    may be sequences of vectors (or of any fixed sample shape): items of shape
    ``(length, *sample_shape)`` give ``(len(sequences), maxlen, *sample_shape)``, the
    sample shape taken from the first non-empty item. Empty items become all
    ``value``.

    Args:
        sequences: A list (of length ``num_samples``) of sequences.
        maxlen: Steps in the output; the longest sequence's length when None.
        dtype: Dtype of the output (``object`` for variable-length strings).
        padding: ``"pre"`` or ``"post"``: pad before or after each sequence.
        truncating: ``"pre"`` or ``"post"``: drop steps of sequences longer than
            ``maxlen`` at their beginning or at their end.
        value: The padding value.

    Returns:
        ``(num_samples, maxlen, *sample_shape)`` array of ``dtype``.

    Raises:
        ConfigError (a ValueError): ``sequences`` or an item is not a sequence,
            ``padding``/``truncating`` is not "pre" or "post", ``maxlen`` is not a
            non-negative int, a string ``value`` with a non-string ``dtype``, or items
            whose sample shapes differ.
    """
    for name, option in (("padding", padding), ("truncating", truncating)):
        if option not in ("pre", "post"):
            raise ConfigError(
                f"pad_sequences() got {name}={option!r}; expected 'pre' or 'post'."
            )
    if not hasattr(sequences, "__len__") or isinstance(sequences, (str, bytes)):
        raise ConfigError(
            f"pad_sequences() got sequences of type {type(sequences).__name__}; "
            "expected a list of sequences such as [[1, 2], [3]]."
        )
    if maxlen is not None and (
        isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0
    ):
        raise ConfigError(
            f"pad_sequences() got maxlen={maxlen!r}; expected a non-negative int, or "
            "None to pad to the longest sequence."
        )
    out_dtype = np.dtype(dtype)
    if isinstance(value, str) and out_dtype.kind not in "OSU":
        raise ConfigError(
            f"pad_sequences() got value={value!r} with dtype={out_dtype}; pass "
            "dtype=object to pad variable-length strings."
        )
    for index, item in enumerate(sequences):
        if not hasattr(item, "__len__") or isinstance(item, (str, bytes)):
            raise ConfigError(
                f"pad_sequences() got {item!r} of type {type(item).__name__} at "
                f"position {index}; every item must be a sequence (a list or array), "
                "e.g. [[1, 2], [3]] rather than [1, 2, 3]."
            )
    lengths = np.array([len(item) for item in sequences], np.int64)
    steps = int(lengths.max(initial=0)) if maxlen is None else int(maxlen)
    kept = np.minimum(lengths, steps)
    # Convert only the steps that are kept; each item is one Python object, so the
    # conversion visits items, and the placement below is one vectorized write.
    parts = [
        np.asarray(item[len(item) - k :] if truncating == "pre" else item[:k], out_dtype)
        for item, k in zip(sequences, kept.tolist(), strict=True)
    ]
    first = next((item for item in sequences if len(item)), None)
    sample_shape: tuple[int, ...] = () if first is None else np.shape(first)[1:]
    for index, part in enumerate(parts):
        if len(part) and part.shape[1:] != sample_shape:
            raise ConfigError(
                f"pad_sequences() got an item of sample shape {part.shape[1:]} at "
                f"position {index}; the first non-empty item has sample shape "
                f"{sample_shape}. Every step of every sequence must have one shape."
            )
    out = np.full((len(lengths), steps, *sample_shape), value, out_dtype)
    total = int(kept.sum())
    if total == 0:
        return out
    rows = np.repeat(np.arange(len(kept)), kept)
    starts = np.cumsum(kept) - kept
    cols = np.arange(total) - np.repeat(starts, kept)
    if padding == "pre":
        cols += np.repeat(steps - kept, kept)
    out[rows, cols] = np.concatenate([p for p in parts if len(p)])
    return out
