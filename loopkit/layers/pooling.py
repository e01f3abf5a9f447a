"""Pooling layers: max and average over windows, and over the whole image."""

from __future__ import annotations

import numpy as np
from attrs import define, field
from attrs.setters import NO_OP

from loopkit.errors import ShapeError
from loopkit.layers import _conv_kernels as conv_kernels
from loopkit.layers._geometry import (
    Padding,
    Pair,
    axis_plan,
    channels_last_only,
    check_image_shape,
    lower_if_str,
    optional_pair,
    optional_positive_pair,
    plan_2d,
    positive_pair,
    to_pair,
)
from loopkit.layers.base import Layer
from loopkit.typing import FloatArray, IntArray, Shape
from loopkit.validators import one_of

__all__ = [
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "MaxPooling2D",
]


def _padded(layer: Layer, x: FloatArray, rows: Pair, cols: Pair, fill: float) -> FloatArray:
    """Return ``x`` padded by ``rows``/``cols`` with ``fill``, in a layer-owned buffer.

    Returns ``x`` itself when there is nothing to pad.
    """
    (pt, pb), (pl, pr) = rows, cols
    if not (pt or pb or pl or pr):
        return x
    n, h, w, c = x.shape
    xp = layer.buffer("x_padded", (n, h + pt + pb, w + pl + pr, c))
    # The border is refilled each call: a fresh (grown) buffer starts uninitialized.
    xp[:, :pt] = fill
    xp[:, pt + h :] = fill
    xp[:, pt : pt + h, :pl] = fill
    xp[:, pt : pt + h, pl + w :] = fill
    xp[:, pt : pt + h, pl : pl + w] = x
    return xp


def _window_slice(offset: int, count: int, stride: int) -> slice:
    """Return the slice of padded positions that window offset ``offset`` reads."""
    return slice(offset, offset + (count - 1) * stride + 1, stride)


def _unpadded(
    layer: Layer, dxp: FloatArray, shape: Shape, rows: Pair, cols: Pair
) -> FloatArray:
    """Return the interior of the padded gradient ``dxp`` as a contiguous buffer."""
    if dxp.shape == shape:
        return dxp
    (pt, _), (pl, _) = rows, cols
    dx = layer.buffer("dx", shape)
    np.copyto(dx, dxp[:, pt : pt + shape[1], pl : pl + shape[2]])
    return dx


@define(eq=False, slots=False)
class _Pooling2D(Layer):
    """Shared arguments, shape checks and window walking of the windowed poolings.

    Args:
        pool_size: Window height and width: an int or a pair.
        strides: Step between windows: an int, a pair, or None for ``pool_size``.
        padding: ``"valid"`` (windows that fit) or ``"same"`` (output size
            ``ceil(input / stride)``, padding split as TensorFlow does, the extra
            row/column at the bottom/right; padded positions never count).
        data_format: None or ``"channels_last"``; loopkit is channels-last only.
    """

    pool_size: Pair = field(default=(2, 2), converter=to_pair, validator=positive_pair)
    strides: Pair | None = field(
        default=None, converter=optional_pair, validator=optional_positive_pair
    )
    padding: Padding = field(
        default="valid", converter=lower_if_str, validator=one_of("valid", "same")
    )
    data_format: str | None = field(default=None, validator=channels_last_only)
    _plan: tuple[Pair, Pair, Pair] = field(init=False, repr=False)
    _x_shape: Shape = field(init=False, repr=False)

    @property
    def _steps(self) -> Pair:
        return self.pool_size if self.strides is None else self.strides

    def _spatial_plan(self, input_shape: Shape) -> tuple[Pair, Pair, Pair]:
        args = f"pool_size={self.pool_size}, strides={self._steps}"
        return plan_2d(self, input_shape, self.pool_size, self._steps, self.padding, args)

    def build(self, input_shape: Shape) -> None:
        self._plan = self._spatial_plan(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        (oh, ow), _, _ = self._spatial_plan(input_shape)
        return (oh, ow, input_shape[2])

    def _offsets(self) -> list[tuple[slice, slice]]:
        """Return, per window offset, the padded rows and columns it reads."""
        (oh, ow), _, _ = self._plan
        (ph, pw), (sh, sw) = self.pool_size, self._steps
        return [
            (_window_slice(a, oh, sh), _window_slice(b, ow, sw))
            for a in range(ph)
            for b in range(pw)
        ]

    def _padded_grad(self) -> FloatArray:
        n, h, w, c = self._x_shape
        _, (pt, pb), (pl, pr) = self._plan
        dxp = self.buffer("dx_padded", (n, h + pt + pb, w + pl + pr, c))
        dxp.fill(0.0)
        return dxp


@define(eq=False, slots=False)
class MaxPooling2D(_Pooling2D):
    """Max over each ``pool_size`` window of ``(batch, height, width, channels)`` images.

    Backward routes each window's gradient to its maximum only (the first one in
    row-major window order on ties, as TensorFlow does); overlapping windows
    (``strides < pool_size``) add up where they share an input. Padding ("same")
    never wins and never receives a gradient. A window holding a NaN outputs NaN
    and passes no gradient. Compiled kernels (``loopkit.layers._conv_kernels``) do both
    passes: forward in training also records, per output, which window position
    won (one byte each for windows of up to 127 positions), and backward scatters
    ``dy`` there; after an inference forward, backward finds the winners again.
    """

    _x: FloatArray = field(init=False, repr=False, on_setattr=NO_OP)
    _argmax: IntArray = field(
        init=False, repr=False, factory=lambda: np.empty((0, 0, 0, 0), np.int8)
    )
    _recorded: bool = field(init=False, default=False, repr=False)
    _y_shape: Shape = field(init=False, repr=False)

    def _winners(self, shape: Shape) -> IntArray:
        """Return the layer-owned ``argmax`` array for outputs of ``shape``."""
        (ph, pw) = self.pool_size
        kind = np.int8 if ph * pw <= 127 else np.int32  # positions 0 .. ph*pw - 1
        have = self._argmax
        if have.dtype != kind or have.shape[1:] != shape[1:] or len(have) < shape[0]:
            self._argmax = np.empty(shape, kind)  # grown once, like Layer.buffer
        return self._argmax[: shape[0]]

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return the window maxima, ``(batch, out_h, out_w, channels)``, in a buffer.

        Args:
            x: ``(batch, height, width, channels)`` images.
            training: Also record each window's first maximum for backward.
        """
        (oh, ow), (pt, _), (pl, _) = self._plan
        self._x = x = np.ascontiguousarray(x, self.dtype)  # kept for backward
        self._x_shape = tuple(x.shape)
        y = self.buffer("y", (x.shape[0], oh, ow, x.shape[3]))
        self._y_shape = y.shape
        argmax = self._winners(y.shape)
        record = bool(training)
        conv_kernels.max_pool2d(x, self.pool_size, self._steps, (pt, pl), y, argmax, record)
        self._recorded = record
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx: each window's ``dy`` at its first maximum."""
        if not self.input_grad_needed:
            return None
        _, (pt, _), (pl, _) = self._plan
        pads = (pt, pl)
        dy = np.ascontiguousarray(dy, self.dtype)
        if dy.shape != self._y_shape:  # the kernels index with dy's shape, unchecked
            raise ShapeError(
                f"MaxPooling2D layer {self.name!r}: backward expects dy shaped like the "
                f"last forward's output, {self._y_shape}, got {dy.shape}. Pass the "
                "gradient of that output."
            )
        argmax = self._winners(dy.shape)
        if not self._recorded:  # the last forward ran for inference
            y = self.buffer("y", dy.shape)  # the same maxima are written again
            conv_kernels.max_pool2d(
                self._x, self.pool_size, self._steps, pads, y, argmax, True
            )
            self._recorded = True
        dx = self.buffer("dx", self._x_shape)
        conv_kernels.max_pool2d_backward(dy, argmax, self.pool_size, self._steps, pads, dx)
        return dx


@define(eq=False, slots=False)
class AveragePooling2D(_Pooling2D):
    """Mean over each ``pool_size`` window of ``(batch, height, width, channels)`` images.

    With ``padding="same"`` a border window is averaged over its real (non-padded)
    inputs only, as in Keras/TensorFlow.
    """

    _scale: FloatArray = field(init=False, repr=False)

    def build(self, input_shape: Shape) -> None:
        super().build(input_shape)
        (ph, pw), (sh, sw) = self.pool_size, self._steps
        h, w, _ = input_shape
        per_axis = []
        for size, window, stride in ((h, ph, sh), (w, pw, sw)):
            out, before, _ = axis_plan(size, window, stride, self.padding)
            start = np.arange(out) * stride - before
            per_axis.append(np.minimum(start + window, size) - np.maximum(start, 0))
        counts = np.multiply.outer(per_axis[0], per_axis[1])[:, :, None]
        self._scale = (1.0 / counts).astype(self.dtype)  # (out_h, out_w, 1)

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return the window means, ``(batch, out_h, out_w, channels)``, in a buffer.

        Args:
            x: ``(batch, height, width, channels)`` images.
            training: Unused; pooling behaves the same in training and inference.
        """
        (oh, ow), rows, cols = self._plan
        self._x_shape = tuple(x.shape)
        xp = _padded(self, x, rows, cols, 0.0)
        y = self.buffer("y", (x.shape[0], oh, ow, x.shape[3]))
        offsets = self._offsets()
        np.copyto(y, xp[:, offsets[0][0], offsets[0][1]])
        for r, c in offsets[1:]:  # one strided add per window offset
            y += xp[:, r, c]
        y *= self._scale
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx: each window's ``dy / count`` spread over its inputs."""
        if not self.input_grad_needed:
            return None
        share = np.multiply(dy, self._scale, out=self.buffer("share", dy.shape))
        dxp = self._padded_grad()
        for r, c in self._offsets():
            dxp[:, r, c] += share
        _, rows, cols = self._plan
        return _unpadded(self, dxp, self._x_shape, rows, cols)


@define(eq=False, slots=False)
class _GlobalPooling2D(Layer):
    """Shared arguments and shapes of the whole-image poolings.

    Args:
        data_format: None or ``"channels_last"``; loopkit is channels-last only.
        keepdims: Keep the spatial axes, giving ``(batch, 1, 1, channels)`` instead
            of ``(batch, channels)``.
    """

    data_format: str | None = field(default=None, validator=channels_last_only)
    keepdims: bool = False
    _x_shape: Shape = field(init=False, repr=False)

    def build(self, input_shape: Shape) -> None:
        check_image_shape(self, input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_image_shape(self, input_shape)
        return (1, 1, input_shape[2]) if self.keepdims else (input_shape[2],)

    def _output(self, x: FloatArray) -> FloatArray:
        n, c = x.shape[0], x.shape[3]
        return self.buffer("y", (n, 1, 1, c) if self.keepdims else (n, c))


@define(eq=False, slots=False)
class GlobalAveragePooling2D(_GlobalPooling2D):
    """Mean over height and width of ``(batch, height, width, channels)`` images.

    Both passes are compiled kernels (``loopkit.layers._conv_kernels``), one pass over the
    images each.
    """

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return the per-channel means in a layer-owned buffer.

        Args:
            x: ``(batch, height, width, channels)`` images.
            training: Unused; pooling behaves the same in training and inference.
        """
        x = np.ascontiguousarray(x, self.dtype)
        self._x_shape = tuple(x.shape)
        y = self._output(x)
        conv_kernels.global_average_pool2d(x, y.reshape(x.shape[0], x.shape[3]))
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx: ``dy / (height * width)`` at every position."""
        if not self.input_grad_needed:
            return None
        n, _, _, c = self._x_shape
        dy = np.ascontiguousarray(dy, self.dtype).reshape(n, c)
        dx = self.buffer("dx", self._x_shape)
        conv_kernels.global_average_pool2d_backward(dy, dx)
        return dx


@define(eq=False, slots=False)
class GlobalMaxPooling2D(_GlobalPooling2D):
    """Max over height and width of ``(batch, height, width, channels)`` images.

    Backward routes each channel's gradient to its first maximum in row-major order;
    the argmax is found in backward, so inference pays only for the max.
    """

    _x: FloatArray = field(init=False, repr=False, on_setattr=NO_OP)
    _argmax: IntArray = field(
        init=False, repr=False, factory=lambda: np.empty((0, 0), np.intp)
    )

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return the per-channel maxima in a layer-owned buffer.

        Args:
            x: ``(batch, height, width, channels)`` images.
            training: Unused; pooling behaves the same in training and inference.
        """
        self._x = x  # kept by reference for backward
        y = self._output(x)
        np.max(x, axis=(1, 2), out=y.reshape(x.shape[0], x.shape[3]))
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx: each channel's ``dy`` at its first maximum, zero elsewhere."""
        if not self.input_grad_needed:
            return None
        n, h, w, c = self._x.shape
        if self._argmax.shape[0] < n or self._argmax.shape[1] != c:  # grown once
            self._argmax = np.empty((n, c), np.intp)
        argmax = self._argmax[:n]
        np.argmax(self._x.reshape(n, h * w, c), axis=1, out=argmax)
        dx = self.buffer("dx", self._x.shape)
        dx.fill(0.0)
        np.put_along_axis(
            dx.reshape(n, h * w, c), argmax[:, None, :], dy.reshape(n, 1, c), axis=1
        )
        return dx
