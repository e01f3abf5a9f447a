"""Flatten, Reshape, Permute and RepeatVector: rearrange each sample's values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.base import Layer
from loopkit.typing import FloatArray, Shape
from loopkit.validators import positive_int

__all__ = ["Flatten", "Permute", "RepeatVector", "Reshape"]


@define(eq=False, slots=False)
class Flatten(Layer):
    """Flatten each sample to one axis: ``(batch, d1, ..., dk)`` -> ``(batch, d1*...*dk)``.

    Returns a view of the input when it is contiguous (the usual case). As in Keras 3,
    a batch of scalars ``(batch,)`` becomes ``(batch, 1)``.
    """

    _x_shape: Shape = field(init=False, default=(), repr=False)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if any(d is None for d in input_shape):  # a length of any size: so is the output
            return (None,)  # type: ignore[return-value]
        return (math.prod(input_shape),)

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x`` reshaped to ``(batch, features)``."""
        self._x_shape = x.shape
        return x.reshape(len(x), math.prod(x.shape[1:]))

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return ``dy`` reshaped back to the input's shape."""
        if not self.input_grad_needed:
            return None
        return dy.reshape(self._x_shape)


def _target_shape(value: Any) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(
            f"Reshape got target_shape={value!r} of type {type(value).__name__}; expected "
            "a tuple of ints without the batch axis, e.g. (4, 8) or (-1, 8)."
        )
    items = tuple(value)
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in items):
        raise TypeError(
            f"Reshape got target_shape={value!r}; expected a tuple of ints without the "
            "batch axis, e.g. (4, 8) or (-1, 8)."
        )
    shape = tuple(int(d) for d in items)
    if any(d < 1 and d != -1 for d in shape) or shape.count(-1) > 1:
        raise ConfigError(
            f"Reshape got target_shape={shape}; expected positive sizes with at most "
            "one -1 (inferred from the input size), e.g. (-1, 8)."
        )
    return shape


@define(eq=False, slots=False)
class Reshape(Layer):
    """Reshape each sample: ``(batch, ...)`` -> ``(batch, *target_shape)``.

    Returns a view of the input when it is contiguous (the usual case).

    Args:
        target_shape: The new sample shape, without the batch axis. One entry may be
            -1: it is inferred from the input's size.
    """

    target_shape: tuple[int, ...] = field(converter=_target_shape)
    _x_shape: Shape = field(init=False, default=(), repr=False)
    _out_shape: Shape = field(init=False, default=(), repr=False)

    def build(self, input_shape: Shape) -> None:
        self._out_shape = self.compute_output_shape(input_shape)  # raises on a mismatch
        if None in self._out_shape:  # the -1 axis follows the length: numpy infers it
            self._out_shape = self.target_shape

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if any(d is None for d in input_shape):
            return self._any_length_shape(input_shape)
        size = math.prod(input_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            fits = size % known == 0
            shape = tuple(size // known if d == -1 else d for d in self.target_shape)
        else:
            fits, shape = size == known, self.target_shape
        if not fits:
            times = " times a whole number" if -1 in self.target_shape else ""
            raise ShapeError(
                f"Reshape layer {self.name!r} cannot reshape samples of shape "
                f"{input_shape} ({size} values) to target_shape={self.target_shape} "
                f"({known} values{times}). Pick a target_shape with the same number "
                "of values, or use -1 for one axis."
            )
        return shape

    def _any_length_shape(self, input_shape: Shape) -> Shape:
        """The output for samples with an axis of any length: -1 becomes None.

        Raises:
            ShapeError: ``target_shape`` has no -1, so it fixes the length.
        """
        if -1 not in self.target_shape:
            axes = (-1, *self.target_shape[1:])
            raise ShapeError(
                f"Reshape layer {self.name!r} got samples of shape {input_shape}, "
                "where None is an axis of any length, but target_shape="
                f"{self.target_shape} has a fixed number of values, which the data "
                f"would have for one length only. Use -1 for the axis that follows "
                f"the length, e.g. target_shape={axes}, or give the length in "
                "Input(shape=...)."
            )
        return tuple(None if d == -1 else d for d in self.target_shape)  # type: ignore[misc]

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x`` reshaped to ``(batch, *target_shape)``."""
        self._x_shape = x.shape
        return x.reshape(len(x), *self._out_shape)

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return ``dy`` reshaped back to the input's shape."""
        if not self.input_grad_needed:
            return None
        return dy.reshape(self._x_shape)


def _dims(value: Any) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(
            f"Permute got dims={value!r} of type {type(value).__name__}; expected a "
            "tuple of the input axes in their new order, batch axis excluded, counted "
            "from 1, e.g. (2, 1)."
        )
    items = tuple(value)
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in items):
        raise TypeError(f"Permute got dims={value!r}; expected ints, e.g. (2, 1).")
    dims = tuple(int(d) for d in items)
    if sorted(dims) != list(range(1, len(dims) + 1)):
        raise ConfigError(
            f"Permute got dims={dims}; the indices must be 1, 2, ..., n in some order "
            "(the batch axis is 0 and stays first), e.g. (2, 1) to swap the two axes "
            "of (batch, steps, features)."
        )
    return dims


@define(eq=False, slots=False)
class Permute(Layer):
    """Reorder the axes of each sample: ``dims`` lists the input axes in output order.

    Axes count from 1 (the batch axis, 0, stays first), as in Keras: ``Permute((2,
    1))`` turns ``(batch, steps, features)`` into ``(batch, features, steps)``.

    Args:
        dims: A permutation of ``1..n`` for samples of ``n`` axes.
    """

    dims: tuple[int, ...] = field(converter=_dims)

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) != len(self.dims):
            raise ShapeError(
                f"Permute layer {self.name!r} got dims={self.dims} for samples of shape "
                f"{tuple(input_shape)}; dims needs one entry per sample axis "
                f"({len(input_shape)}), a permutation of 1..{len(input_shape)}."
            )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape[d - 1] for d in self.dims)

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x`` with its sample axes in ``dims`` order (a contiguous copy)."""
        moved = np.transpose(x, (0, *self.dims))
        y = self.buffer("y", moved.shape)
        np.copyto(y, moved)
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return ``dy`` with the axes put back in the input's order."""
        if not self.input_grad_needed:
            return None
        inverse = np.argsort((0, *self.dims))
        moved = np.transpose(dy, tuple(int(a) for a in inverse))
        dx = self.buffer("dx", moved.shape)
        np.copyto(dx, moved)
        return dx

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["dims"] = list(self.dims)
        return config


@define(eq=False, slots=False)
class RepeatVector(Layer):
    """Repeat each sample ``n`` times: ``(batch, features)`` -> ``(batch, n, features)``.

    The usual bridge from an encoder's vector to a decoder's sequence.

    Args:
        n: The number of repetitions (output steps).
    """

    n: int = field(validator=positive_int)

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) != 1:
            raise ShapeError(
                f"RepeatVector layer {self.name!r} takes samples of shape (features,), "
                f"got {tuple(input_shape)}. Flatten the samples first, or use "
                "TimeDistributed for per-step layers."
            )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (self.n, *input_shape)

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x`` repeated along a new axis 1."""
        y = self.buffer("y", (len(x), self.n, x.shape[1]))
        y[...] = x[:, None, :]
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return the sum of ``dy`` over the repetitions."""
        if not self.input_grad_needed:
            return None
        return np.add.reduce(dy, axis=1, out=self.buffer("dx", (len(dy), dy.shape[2])))
