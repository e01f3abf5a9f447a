"""Keras's ``keras.utils``: array helpers, padding and windows, ``PyDataset``, seeding."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from loopkit._data.padding import pad_sequences
from loopkit._data.pydataset import PyDataset, Sequence
from loopkit._data.timeseries import timeseries_dataset_from_array
from loopkit.errors import ConfigError
from loopkit.random import set_random_seed
from loopkit.saving.custom_objects import (
    custom_object_scope,
    get_custom_objects,
    register_keras_serializable,
)

__all__ = [
    "PyDataset",
    "Sequence",
    "custom_object_scope",
    "get_custom_objects",
    "normalize",
    "pad_sequences",
    "register_keras_serializable",
    "set_random_seed",
    "timeseries_dataset_from_array",
    "to_categorical",
]


def to_categorical(x: npt.ArrayLike, num_classes: int | None = None) -> Any:
    """Return class ids ``x`` as one-hot float32 rows, as ``keras.utils.to_categorical``.

    Args:
        x: Integer class ids of any shape; a trailing axis of size 1 is dropped.
        num_classes: Number of classes; ``max(x) + 1`` when None.

    Raises:
        ConfigError: ids that are negative, not whole, or not below ``num_classes``.
    """
    ids = np.asarray(x)
    if ids.ndim > 1 and ids.shape[-1] == 1:
        ids = ids[..., 0]
    if ids.size and (not np.all(ids == np.rint(ids)) or ids.min() < 0):
        raise ConfigError(
            "to_categorical() got ids that are negative or not whole numbers; pass "
            "integer class ids 0, 1, ..."
        )
    ids = ids.astype(np.int64)
    n = int(ids.max()) + 1 if num_classes is None and ids.size else int(num_classes or 0)
    if ids.size and ids.max() >= n:
        raise ConfigError(
            f"to_categorical(num_classes={num_classes}) got the id {int(ids.max())}; "
            "pass num_classes greater than the largest id, or None."
        )
    out = np.zeros((*ids.shape, n), np.float32)
    np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
    return out


def normalize(x: npt.ArrayLike, axis: int = -1, order: int = 2) -> Any:
    """Return ``x`` divided by its ``order``-norm along ``axis`` (zero rows stay zero)."""
    array = np.asarray(x, np.float32)
    norm = np.linalg.norm(array, ord=order, axis=axis, keepdims=True)
    return np.divide(array, norm, out=np.zeros_like(array), where=norm != 0)
