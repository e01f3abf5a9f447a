"""Array and log type aliases, public for plugin authors as for loopkit's own modules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = ["Array", "FloatArray", "IntArray", "Logs", "Shape"]

FloatArray: TypeAlias = npt.NDArray[np.floating[Any]]
"""A float array: float32 by default, float64 where a model asks for it."""
IntArray: TypeAlias = npt.NDArray[np.integer[Any]]
"""An integer array: class labels, indices."""
Array: TypeAlias = npt.NDArray[Any]
"""An array of any dtype."""
Shape: TypeAlias = tuple[int, ...]
"""A shape without the batch axis, as in Keras's ``input_shape``.

A symbolic shape (``Input``, a layer's ``build`` and ``compute_output_shape``) may
hold None for an axis of any length, ``(None, 8)``; arrays' shapes never do."""
Logs: TypeAlias = Mapping[str, float]
"""Read-only logs as hooks receive them: log key -> value."""
