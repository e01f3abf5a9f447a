"""A metric's state variable, as ``Metric.add_variable`` makes it: an array to assign."""

from __future__ import annotations

from typing import Any

import numpy as np

from loopkit.errors import ShapeError
from loopkit.typing import Array

__all__ = ["Variable"]


class Variable:
    """A named NumPy array a metric accumulates into (Keras's ``keras.Variable``).

    ``assign``, ``assign_add`` and ``assign_sub`` change it in place; ``value``,
    ``numpy()``, ``np.asarray(v)`` and ``float(v)`` read it, and arithmetic
    (``v / count``) acts on the array, as on a Keras variable.

    Args:
        value: Initial value; its shape and dtype are the variable's.
        name: Keras's variable name (``add_variable(name=...)``).
        aggregation: Kept for Keras code; loopkit runs one replica, so it has no effect.
    """

    __slots__ = ("_value", "aggregation", "name")
    __array_priority__ = 100.0  # ndarray op Variable defers to Variable's reflected op

    def __init__(self, value: Array, name: str = "variable", aggregation: str = "sum"):
        self._value = np.array(value)
        self.name = name
        self.aggregation = aggregation

    @property
    def value(self) -> Array:
        """The current array (a read-only view: change it with ``assign``)."""
        view = self._value.view()
        view.flags.writeable = False
        return view

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._value.shape)

    @property
    def dtype(self) -> str:
        return str(self._value.dtype)

    def numpy(self) -> Array:
        """Return a copy of the current array."""
        return self._value.copy()

    def assign(self, value: Any) -> Variable:
        """Set the array to ``value`` (cast to the variable's dtype; same shape).

        Raises:
            ShapeError: ``value`` has another shape, as in Keras.
        """
        new = np.asarray(value)
        if new.shape != self._value.shape:
            raise ShapeError(
                f"Variable {self.name!r} of shape {self._value.shape} got a value of "
                f"shape {new.shape} in assign(); assign a value of the variable's shape."
            )
        self._value[...] = new
        return self

    def assign_add(self, value: Any) -> Variable:
        """Add ``value`` (broadcast to the variable's shape) in place."""
        return self.assign(self._value + np.asarray(value))

    def assign_sub(self, value: Any) -> Variable:
        """Subtract ``value`` (broadcast to the variable's shape) in place."""
        return self.assign(self._value - np.asarray(value))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Array:
        out = self._value if dtype is None else self._value.astype(dtype)
        return out.copy() if copy else out

    def __float__(self) -> float:
        return float(self._value)

    def __int__(self) -> int:
        return int(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __getitem__(self, key: Any) -> Any:
        return self._value[key]

    def __repr__(self) -> str:
        return (
            f"<Variable name={self.name} shape={self.shape} dtype={self.dtype} "
            f"value={self._value}>"
        )

    def __neg__(self) -> Array:
        return -self._value

    def __abs__(self) -> Array:
        return abs(self._value)

    def __add__(self, other: Any) -> Any:
        return self._value + np.asarray(other)

    def __radd__(self, other: Any) -> Any:
        return np.asarray(other) + self._value

    def __sub__(self, other: Any) -> Any:
        return self._value - np.asarray(other)

    def __rsub__(self, other: Any) -> Any:
        return np.asarray(other) - self._value

    def __mul__(self, other: Any) -> Any:
        return self._value * np.asarray(other)

    def __rmul__(self, other: Any) -> Any:
        return np.asarray(other) * self._value

    def __truediv__(self, other: Any) -> Any:
        return self._value / np.asarray(other)

    def __rtruediv__(self, other: Any) -> Any:
        return np.asarray(other) / self._value

    def __pow__(self, other: Any) -> Any:
        return self._value ** np.asarray(other)

    def __lt__(self, other: Any) -> Any:
        return self._value < np.asarray(other)

    def __le__(self, other: Any) -> Any:
        return self._value <= np.asarray(other)

    def __gt__(self, other: Any) -> Any:
        return self._value > np.asarray(other)

    def __ge__(self, other: Any) -> Any:
        return self._value >= np.asarray(other)
