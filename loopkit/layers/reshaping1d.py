"""Reshaping along time: UpSampling1D, ZeroPadding1D and Cropping1D."""

from __future__ import annotations

from typing import Any

import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.base import Layer
from loopkit.layers.convolutional1d import check_sequence_shape, single_int
from loopkit.typing import FloatArray, Shape
from loopkit.validators import positive_int

__all__ = ["Cropping1D", "UpSampling1D", "ZeroPadding1D"]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _int_pair(value: Any) -> Any:
    """Turn an int ``v`` into ``(v, v)`` and a pair into a tuple of ints."""
    if _is_int(value):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_is_int, value)):
        return (int(value[0]), int(value[1]))
    return value


def _non_negative_pair(instance: Any, attribute: Any, value: Any) -> None:
    ok = (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, int) and v >= 0 for v in value)
    )
    if not ok:
        raise ConfigError(
            f"{type(instance).__name__} got {attribute.name}={value!r}; expected an int "
            f">= 0 or a pair (before, after) of them, e.g. {attribute.name}=(1, 2)."
        )


@define(eq=False, slots=False)
class UpSampling1D(Layer):
    """Repeat each step ``size`` times: ``(batch, steps, c)`` -> ``(batch, steps*size, c)``.

    Args:
        size: Repetitions of each step.
    """

    size: int = field(default=2, converter=single_int, validator=positive_int)
    _x_shape: Shape = field(init=False, repr=False)

    def build(self, input_shape: Shape) -> None:
        check_sequence_shape(self, input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_sequence_shape(self, input_shape)
        steps = input_shape[0]
        return (None if steps is None else steps * self.size, input_shape[1])

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x`` with every step repeated ``size`` times."""
        n, steps, c = self._x_shape = tuple(x.shape)
        y = self.buffer("y", (n, steps * self.size, c))
        np.copyto(y.reshape(n, steps, self.size, c), x[:, :, None, :])
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx: the sum of the gradients of each step's copies."""
        if not self.input_grad_needed:
            return None
        n, steps, c = self._x_shape
        dx = self.buffer("dx", (n, steps, c))
        np.add.reduce(dy.reshape(n, steps, self.size, c), axis=2, out=dx)
        return dx


@define(eq=False, slots=False)
class ZeroPadding1D(Layer):
    """Add zero steps before and after each sequence.

    Args:
        padding: Steps to add on both ends (an int) or ``(before, after)``.
    """

    padding: tuple[int, int] = field(
        default=(1, 1), converter=_int_pair, validator=_non_negative_pair
    )
    _x_shape: Shape = field(init=False, repr=False)

    def build(self, input_shape: Shape) -> None:
        check_sequence_shape(self, input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_sequence_shape(self, input_shape)
        steps = input_shape[0]
        return (None if steps is None else steps + sum(self.padding), input_shape[1])

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x`` between ``padding`` zero steps."""
        n, steps, c = self._x_shape = tuple(x.shape)
        before, after = self.padding
        y = self.buffer("y", (n, steps + before + after, c))
        y[:, :before] = 0.0
        y[:, before + steps :] = 0.0
        y[:, before : before + steps] = x
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx: ``dy`` without the padded steps (a view)."""
        if not self.input_grad_needed:
            return None
        before = self.padding[0]
        return dy[:, before : before + self._x_shape[1]]


@define(eq=False, slots=False)
class Cropping1D(Layer):
    """Remove steps from the start and end of each sequence.

    Args:
        cropping: Steps to remove at both ends (an int) or ``(before, after)``.
    """

    cropping: tuple[int, int] = field(
        default=(1, 1), converter=_int_pair, validator=_non_negative_pair
    )
    _x_shape: Shape = field(init=False, repr=False)

    def build(self, input_shape: Shape) -> None:
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_sequence_shape(self, input_shape)
        if input_shape[0] is None:  # any length; a too-short batch fails in forward
            return input_shape
        left = input_shape[0] - sum(self.cropping)
        if left <= 0:
            raise ShapeError(
                f"Cropping1D layer {self.name!r} with cropping={self.cropping} got "
                f"sequences of {input_shape[0]} steps, leaving {left}; crop fewer steps."
            )
        return (left, input_shape[1])

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return the kept steps of ``x`` (a view)."""
        self._x_shape = tuple(x.shape)
        before, after = self.cropping
        if x.shape[1] <= before + after:  # only a batch of a None-length build can
            self.compute_output_shape(tuple(x.shape[1:]))  # raises, naming the length
        return x[:, before : x.shape[1] - after]

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx: ``dy`` between zeros for the cropped steps."""
        if not self.input_grad_needed:
            return None
        n, steps, c = self._x_shape
        before, after = self.cropping
        dx = self.buffer("dx", (n, steps, c))
        dx[:, :before] = 0.0
        dx[:, steps - after :] = 0.0
        dx[:, before : steps - after] = dy
        return dx
