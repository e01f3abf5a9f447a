"""Converting user data to arrays once, with errors that say what was wrong and the fix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from loopkit.errors import ConfigError, ShapeError
from loopkit.typing import Array, FloatArray

__all__ = [
    "as_array",
    "check_sample_shape",
    "class_ids",
    "class_weight_vector",
    "from_table",
    "is_table",
]

_REAL_KINDS = frozenset("biuf")  # not complex, datetime, timedelta, strings, objects


def is_table(value: Any) -> bool:
    """Whether ``value`` is a table: a pandas DataFrame or Series, or alike.

    Duck-typed on ``to_numpy`` (pandas, polars, xarray have it), so loopkit never
    imports pandas.
    """
    return not isinstance(value, np.ndarray) and callable(getattr(value, "to_numpy", None))


def from_table(value: Any, column: bool = True) -> Any:
    """Return a DataFrame or Series as an array; anything else as it is.

    A Series becomes one column, ``(n, 1)``, as Keras 3 makes it (``column=False``
    keeps it ``(n,)``: one sample weight per sample).
    """
    if not is_table(value):
        return value
    array = np.asarray(value.to_numpy())
    return array[:, None] if column and array.ndim == 1 else array


def _single(value: Any, what: str, call: str) -> Any:
    """Unwrap a list/tuple/dict holding one array (Sequential has one input/output)."""
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise ConfigError(
                f"{call} got {what} as a dict with keys {sorted(value)}; a Sequential "
                "model has one input and one output, so pass a single array."
            )
        return next(iter(value.values()))
    if (
        isinstance(value, (list, tuple))
        and len(value) == 1
        and isinstance(value[0], np.ndarray)
    ):
        return value[0]
    return value


def as_array(value: Any, dtype: Any, what: str, call: str) -> Array:
    """Convert ``value`` to an array of ``dtype`` once, with an error that says what failed.

    ``np.memmap`` arrays are returned as they are: batches are converted as they are
    gathered, so the file is never loaded whole. A float array already of ``dtype``
    is not copied.

    Raises:
        TypeError: ``value`` is not numeric (strings, objects, None).
    """
    value = from_table(_single(value, what, call), column=what != "sample_weight")
    if isinstance(value, np.memmap):
        if value.dtype.kind not in _REAL_KINDS:
            raise TypeError(
                f"{call} got {what} as a memmap of dtype {value.dtype}; expected real "
                "numbers (bool, int or float)."
            )
        return value
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise TypeError(
            f"{call} could not turn {what} into an array ({err}). Pass a NumPy array of "
            "numbers with one row per sample."
        ) from err
    if array.dtype.kind == "c":
        raise TypeError(
            f"{call} got {what} of dtype {array.dtype!s}: complex numbers, whose "
            "imaginary part a float model would drop silently. Pass the real part "
            "(.real), the magnitude (np.abs()), or both as separate features."
        )
    if array.dtype.kind not in _REAL_KINDS:
        raise TypeError(
            f"{call} got {what} of dtype {array.dtype!s}; expected numbers (int or float). "
            "Encode strings or categories as numbers first."
        )
    if dtype is None:
        return array
    return array.astype(dtype, copy=False)


def class_weight_vector(class_weight: Mapping[int, float], call: str) -> FloatArray:
    """Return ``w[class]`` as an array indexed by class id."""
    if not isinstance(class_weight, Mapping) or not class_weight:
        raise ConfigError(
            f"{call} got class_weight={class_weight!r}; expected a dict mapping class "
            "index to weight, e.g. {0: 1.0, 1: 5.0}."
        )
    keys = list(class_weight)
    if any(
        isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0 for k in keys
    ):
        raise ConfigError(
            f"{call} got class_weight keys {keys!r}; expected non-negative int class ids."
        )
    vector = np.ones(max(int(k) for k in keys) + 1, np.float64)
    for k, w in class_weight.items():
        vector[int(k)] = float(w)
    return vector


def class_ids(y: Array) -> Any:
    """Return each sample's class id: argmax of one-hot rows, else the rounded label."""
    if y.ndim >= 2 and y.shape[-1] > 1:
        return np.argmax(y, axis=-1)
    return np.rint(y.reshape(len(y), -1)[:, 0]).astype(np.int64)


def check_sample_shape(x_shape: Sequence[int], expected: Sequence[int], call: str) -> None:
    """Raise ShapeError when samples of ``x_shape`` don't fit a model built for them."""
    if tuple(x_shape[1:]) != tuple(expected):
        raise ShapeError(
            f"{call} got x of shape {tuple(x_shape)}; the model expects samples of shape "
            f"{tuple(expected)} (batches of {(None, *expected)}). Reshape x, or build a "
            "model for this input shape."
        )
