"""Reshaping of images: UpSampling2D, ZeroPadding2D and Cropping2D."""

from __future__ import annotations

from typing import Any

import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers._geometry import (
    Pair,
    channels_last_only,
    check_image_shape,
    is_int,
    lower_if_str,
    positive_pair,
    to_pair,
)
from loopkit.layers.base import Layer
from loopkit.typing import FloatArray, Shape
from loopkit.validators import suggest

__all__ = ["Cropping2D", "UpSampling2D", "ZeroPadding2D"]

_KERAS_ONLY = ("bicubic", "bilinear", "lanczos3", "lanczos5")


def _nearest_only(instance: Any, attribute: Any, value: Any) -> None:
    """Accept ``interpolation="nearest"``; name Keras's other methods as not supported."""
    if value == "nearest":
        return
    if value in _KERAS_ONLY:
        raise ConfigError(
            f"UpSampling2D got interpolation={value!r}; loopkit implements only "
            "'nearest' (each pixel repeated). Use interpolation='nearest', or a "
            "Conv2D after it to learn a smoother upsampling."
        )
    raise ConfigError(
        f"UpSampling2D got interpolation={value!r}; expected 'nearest' (Keras also "
        f"names {', '.join(map(repr, _KERAS_ONLY))}, which loopkit does not implement)."
        + suggest(str(value), ["nearest", *_KERAS_ONLY])
    )


@define(eq=False, slots=False)
class UpSampling2D(Layer):
    """Repeat each row ``size[0]`` and each column ``size[1]`` times (channels-last).

    ``(batch, h, w, c)`` -> ``(batch, h * size[0], w * size[1], c)``, Keras's
    ``interpolation="nearest"``.

    Args:
        size: Upsampling factors for rows and columns: an int or a pair of ints.
        data_format: None or ``"channels_last"``; loopkit is channels-last only.
        interpolation: ``"nearest"``, the only method loopkit implements.
    """

    size: Pair = field(default=(2, 2), converter=to_pair, validator=positive_pair)
    data_format: str | None = field(default=None, validator=channels_last_only)
    interpolation: str = field(
        default="nearest", converter=lower_if_str, validator=_nearest_only
    )
    _x_shape: Shape = field(init=False, default=(), repr=False)

    def build(self, input_shape: Shape) -> None:
        check_image_shape(self, input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_image_shape(self, input_shape)
        h, w, c = input_shape
        return (h * self.size[0], w * self.size[1], c)

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x`` with every pixel repeated into a ``size`` block."""
        n, h, w, c = self._x_shape = tuple(x.shape)
        sh, sw = self.size
        y = self.buffer("y", (n, h * sh, w * sw, c))
        np.copyto(y.reshape(n, h, sh, w, sw, c), x[:, :, None, :, None, :])
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx: the sum of ``dy`` over each pixel's block of copies."""
        if not self.input_grad_needed:
            return None
        n, h, w, c = self._x_shape
        sh, sw = self.size
        dx = self.buffer("dx", (n, h, w, c))
        np.sum(dy.reshape(n, h, sh, w, sw, c), axis=(2, 4), out=dx)
        return dx


Sides = tuple[tuple[int, int], tuple[int, int]]


def _side_pair(value: Any) -> Any:
    """An int ``v`` -> ``(v, v)``; a pair of ints -> a tuple; else ``value`` as is."""
    if is_int(value):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(map(is_int, value)):
        return (int(value[0]), int(value[1]))
    return value


def framed_in_zeros(out: FloatArray, inner: FloatArray, top: int, left: int) -> FloatArray:
    """Write ``inner`` into ``out`` at rows ``top:``, columns ``left:``; zero the rest.

    Both are ``(batch, rows, columns, channels)``; only the border is zeroed, so each
    element of ``out`` is written once.
    """
    rows, cols = inner.shape[1:3]
    out[:, :top] = 0.0
    out[:, top + rows :] = 0.0
    out[:, top : top + rows, :left] = 0.0
    out[:, top : top + rows, left + cols :] = 0.0
    out[:, top : top + rows, left : left + cols] = inner
    return out


def to_sides(value: Any) -> Any:
    """Keras's three spellings -> ``((top, bottom), (left, right))``.

    An int is the same on all four sides; a pair ``(rows, cols)`` is symmetric per
    axis; a pair of pairs is ``((top, bottom), (left, right))`` (each entry may also
    be an int, as Keras allows). Anything else is left for ``non_negative_sides``.
    """
    if is_int(value):
        return ((int(value), int(value)), (int(value), int(value)))
    if isinstance(value, (tuple, list)) and len(value) == 2:
        rows, cols = _side_pair(value[0]), _side_pair(value[1])
        if isinstance(rows, tuple) and isinstance(cols, tuple):
            return (rows, cols)
    return value


def non_negative_sides(instance: Any, attribute: Any, value: Any) -> None:
    """Accept ``((top, bottom), (left, right))`` of ints >= 0."""
    ok = (
        isinstance(value, tuple)
        and len(value) == 2
        and all(
            isinstance(pair, tuple)
            and len(pair) == 2
            and all(is_int(v) and v >= 0 for v in pair)
            for pair in value
        )
    )
    if not ok:
        arg = attribute.name
        raise ConfigError(
            f"{type(instance).__name__} got {arg}={value!r}; expected ints >= 0 as an "
            f"int (all sides), a pair (rows, columns) or ((top, bottom), (left, right)), "
            f"e.g. {arg}=1, {arg}=(1, 2) or {arg}=((1, 0), (2, 2))."
        )


@define(eq=False, slots=False)
class ZeroPadding2D(Layer):
    """Add rows and columns of zeros around each image (channels-last), as Keras's.

    ``(batch, h, w, c)`` -> ``(batch, h + top + bottom, w + left + right, c)``.

    Args:
        padding: An int (the same on all four sides), a pair ``(rows, columns)``
            (symmetric along each axis) or ``((top, bottom), (left, right))``; kept
            in the last form.
        data_format: None or ``"channels_last"``; loopkit is channels-last only.
    """

    padding: Sides = field(
        default=((1, 1), (1, 1)), converter=to_sides, validator=non_negative_sides
    )
    data_format: str | None = field(default=None, validator=channels_last_only)
    _x_shape: Shape = field(init=False, default=(), repr=False)

    def build(self, input_shape: Shape) -> None:
        check_image_shape(self, input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_image_shape(self, input_shape)
        h, w, c = input_shape
        (top, bottom), (left, right) = self.padding
        return (
            None if h is None else h + top + bottom,
            None if w is None else w + left + right,
            c,
        )

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x`` framed by ``padding`` zeros in a layer-owned buffer."""
        n, h, w, c = self._x_shape = tuple(x.shape)
        (top, bottom), (left, right) = self.padding
        y = self.buffer("y", (n, h + top + bottom, w + left + right, c))
        return framed_in_zeros(y, x, top, left)

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx: ``dy`` without the padded border (a view)."""
        if not self.input_grad_needed:
            return None
        _, h, w, _ = self._x_shape
        (top, _), (left, _) = self.padding
        return dy[:, top : top + h, left : left + w]


@define(eq=False, slots=False)
class Cropping2D(Layer):
    """Remove rows and columns from the borders of each image (channels-last).

    ``(batch, h, w, c)`` -> ``(batch, h - top - bottom, w - left - right, c)``, as
    Keras's; at least one row and column must be left.

    Args:
        cropping: An int (the same on all four sides), a pair ``(rows, columns)``
            (symmetric along each axis) or ``((top, bottom), (left, right))``; kept
            in the last form.
        data_format: None or ``"channels_last"``; loopkit is channels-last only.
    """

    cropping: Sides = field(
        default=((0, 0), (0, 0)), converter=to_sides, validator=non_negative_sides
    )
    data_format: str | None = field(default=None, validator=channels_last_only)
    _x_shape: Shape = field(init=False, default=(), repr=False)

    def build(self, input_shape: Shape) -> None:
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_image_shape(self, input_shape)
        kept = []
        for axis, size, (before, after) in zip(
            ("rows", "columns"), input_shape[:2], self.cropping, strict=True
        ):
            if size is None:  # any size; a too-small batch fails in forward
                kept.append(None)
                continue
            left = size - before - after
            if left <= 0:
                raise ShapeError(
                    f"Cropping2D layer {self.name!r} with cropping={self.cropping} got "
                    f"images of shape {tuple(input_shape)}: cropping {before + after} "
                    f"of {size} {axis} leaves {left}. Crop fewer {axis} (at most "
                    f"{size - 1} in all) or use larger images."
                )
            kept.append(left)
        return (kept[0], kept[1], input_shape[2])

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return the kept part of ``x`` (a view)."""
        _, h, w, _ = self._x_shape = tuple(x.shape)
        (top, bottom), (left, right) = self.cropping
        if h <= top + bottom or w <= left + right:  # only after a None-size build
            self.compute_output_shape(tuple(x.shape[1:]))  # raises, naming the sizes
        return x[:, top : h - bottom, left : w - right]

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx: ``dy`` framed by zeros where the input was cropped."""
        if not self.input_grad_needed:
            return None
        n, h, w, c = self._x_shape
        (top, _), (left, _) = self.cropping
        return framed_in_zeros(self.buffer("dx", (n, h, w, c)), dy, top, left)
