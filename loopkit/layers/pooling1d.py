"""Pooling over time: max and average over windows of steps, and over all steps."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from attrs import define, field
from attrs.setters import NO_OP

from loopkit.errors import ShapeError
from loopkit.layers import _conv_kernels as conv_kernels
from loopkit.layers.base import Layer
from loopkit.layers.convolutional1d import check_sequence_shape, length_plan, single_int
from loopkit.layers.masking import check_mask
from loopkit.typing import Array, FloatArray, IntArray, Shape
from loopkit.validators import one_of, positive_int

__all__ = [
    "AveragePooling1D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "MaxPooling1D",
]


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _optional_int(value: Any) -> Any:
    return None if value is None else single_int(value)


def _optional_positive_int(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None:
        positive_int(instance, attribute, value)


@define(eq=False, slots=False)
class _Pooling1D(Layer):
    """Shared arguments and shapes of the windowed poolings over steps.

    Args:
        pool_size: Window length.
        strides: Step between windows; None is ``pool_size``.
        padding: ``"valid"`` or ``"same"`` (output length ``ceil(steps / strides)``;
            padded positions never count).
        data_format: None or ``"channels_last"``; loopkit is channels-last only.
    """

    pool_size: int = field(default=2, converter=single_int, validator=positive_int)
    strides: int | None = field(
        default=None, converter=_optional_int, validator=_optional_positive_int
    )
    padding: Literal["valid", "same"] = field(
        default="valid", converter=_lower, validator=one_of("valid", "same")
    )
    data_format: str | None = field(default=None, validator=one_of(None, "channels_last"))
    _plan: tuple[int, int, int] = field(init=False, repr=False)
    _planned_steps: int | None = field(init=False, default=None, repr=False)
    """The length ``_plan`` is for (None until a batch of a None-length build)."""
    _x_shape: Shape = field(init=False, repr=False)

    @property
    def _step(self) -> int:
        return self.pool_size if self.strides is None else self.strides

    def _length_plan(self, input_shape: Shape) -> tuple[int, int, int]:
        check_sequence_shape(self, input_shape)
        if input_shape[0] is None:  # any length: planned per batch in forward
            return (None, 0, 0)
        plan = length_plan(input_shape[0], self.pool_size, self._step, self.padding)
        if plan[0] <= 0:
            raise ShapeError(
                f"{type(self).__name__} layer {self.name!r} with pool_size="
                f"{self.pool_size} got sequences of {input_shape[0]} steps; use "
                "padding='same', a smaller pool_size, or longer sequences."
            )
        return plan

    def build(self, input_shape: Shape) -> None:
        self._plan = self._length_plan(input_shape)
        self._planned_steps = input_shape[0]

    def plan_for(self, steps: int, channels: int) -> tuple[int, int, int]:
        """Return the plan of a batch of ``steps`` (re-planned when the length changes)."""
        if steps != self._planned_steps:
            self._plan = self._length_plan((steps, channels))
            self._planned_steps = steps
            self.replanned()
        return self._plan

    def replanned(self) -> None:
        """Update what depends on the plan (a subclass's hook)."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (self._length_plan(input_shape)[0], input_shape[1])


@define(eq=False, slots=False)
class MaxPooling1D(_Pooling1D):
    """Max over each window of ``pool_size`` steps of ``(batch, steps, channels)``.

    Runs the compiled kernels of ``MaxPooling2D`` on the sequence as an image of
    height 1: backward routes each window's gradient to its first maximum.
    """

    _x: FloatArray = field(init=False, repr=False, on_setattr=NO_OP)
    _argmax: IntArray = field(
        init=False, repr=False, factory=lambda: np.empty((0, 0, 0, 0), np.int8)
    )
    _recorded: bool = field(init=False, default=False, repr=False)

    def _winners(self, shape: Shape) -> IntArray:
        kind = np.int8 if self.pool_size <= 127 else np.int32
        have = self._argmax
        if have.dtype != kind or have.shape[1:] != shape[1:] or len(have) < shape[0]:
            self._argmax = np.empty(shape, kind)
        return self._argmax[: shape[0]]

    def _args(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        return (1, self.pool_size), (1, self._step), (0, self._plan[1])

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return the window maxima, ``(batch, out_steps, channels)``."""
        self._x = x = np.ascontiguousarray(x, self.dtype)
        n, steps, c = self._x_shape = tuple(x.shape)
        if steps != self._planned_steps:  # built for any length: this batch's plan
            self.plan_for(steps, c)
        y = self.buffer("y", (n, self._plan[0], c))
        argmax = self._winners((n, 1, self._plan[0], c))
        conv_kernels.max_pool2d(
            x.reshape(n, 1, steps, c),
            *self._args(),
            y.reshape(n, 1, -1, c),
            argmax,
            bool(training),
        )
        self._recorded = bool(training)
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx: each window's ``dy`` at its first maximum."""
        if not self.input_grad_needed:
            return None
        n, steps, c = self._x_shape
        out = self._plan[0]
        argmax = self._winners((n, 1, out, c))
        if not self._recorded:  # the last forward ran for inference
            y = self.buffer("y", (n, out, c))
            conv_kernels.max_pool2d(
                self._x.reshape(n, 1, steps, c),
                *self._args(),
                y.reshape(n, 1, out, c),
                argmax,
                True,
            )
            self._recorded = True
        dx = self.buffer("dx", (n, steps, c))
        pool, strides, pads = self._args()
        conv_kernels.max_pool2d_backward(
            np.ascontiguousarray(dy, self.dtype).reshape(n, 1, out, c),
            argmax,
            pool,
            strides,
            pads,
            dx.reshape(n, 1, steps, c),
        )
        return dx


@define(eq=False, slots=False)
class AveragePooling1D(_Pooling1D):
    """Mean over each window of ``pool_size`` steps of ``(batch, steps, channels)``.

    With ``padding="same"`` a border window averages its real steps only, as in Keras.
    """

    _scale: FloatArray = field(init=False, repr=False)

    def build(self, input_shape: Shape) -> None:
        super().build(input_shape)
        if input_shape[0] is not None:
            self.replanned()

    def replanned(self) -> None:
        out, before, _ = self._plan
        assert self._planned_steps is not None  # called once a length is planned
        start = np.arange(out) * self._step - before
        ends = np.minimum(start + self.pool_size, self._planned_steps)
        self._scale = (1.0 / (ends - np.maximum(start, 0))).astype(self.dtype)[:, None]

    def _windows(self) -> list[slice]:
        out, step = self._plan[0], self._step
        return [slice(a, a + (out - 1) * step + 1, step) for a in range(self.pool_size)]

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return the window means, ``(batch, out_steps, channels)``."""
        n, steps, c = self._x_shape = tuple(x.shape)
        if steps != self._planned_steps:  # built for any length: this batch's plan
            self.plan_for(steps, c)
        out, before, after = self._plan
        xp = self.buffer("x_padded", (n, steps + before + after, c))
        xp[:, :before] = 0.0
        xp[:, before + steps :] = 0.0
        xp[:, before : before + steps] = x
        y = self.buffer("y", (n, out, c))
        windows = self._windows()
        np.copyto(y, xp[:, windows[0]])
        for w in windows[1:]:
            y += xp[:, w]
        y *= self._scale
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx: each window's ``dy / count`` spread over its steps."""
        if not self.input_grad_needed:
            return None
        n, steps, c = self._x_shape
        _, before, after = self._plan
        share = np.multiply(dy, self._scale, out=self.buffer("share", dy.shape))
        dxp = self.buffer("dx_padded", (n, steps + before + after, c))
        dxp.fill(0.0)
        for w in self._windows():
            dxp[:, w] += share
        return dxp[:, before : before + steps]


@define(eq=False, slots=False)
class _GlobalPooling1D(Layer):
    """Shared arguments and shapes of the poolings over all steps.

    Args:
        data_format: None or ``"channels_last"`` for ``(batch, steps, channels)``;
            ``"channels_first"`` for ``(batch, channels, steps)``, pooled over the
            last axis, as in Keras (without a mask: masks are over the steps of
            channels-last sequences).
        keepdims: Keep the steps axis: ``(batch, 1, channels)``, or ``(batch,
            channels, 1)`` with ``"channels_first"``.
    """

    data_format: str | None = field(
        default=None, validator=one_of(None, "channels_last", "channels_first")
    )
    keepdims: bool = False
    _x_shape: Shape = field(init=False, repr=False)
    _mask: FloatArray | None = field(init=False, default=None, repr=False)
    uses_mask = True
    """``forward`` takes ``mask=`` (see ``loopkit.layers.masking``)."""

    def build(self, input_shape: Shape) -> None:
        check_sequence_shape(self, input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_sequence_shape(self, input_shape)
        if self.data_format == "channels_first":
            return (input_shape[0], 1) if self.keepdims else (input_shape[0],)
        return (1, input_shape[1]) if self.keepdims else (input_shape[1],)

    def compute_mask(self, x: Array, mask: Array | None = None) -> None:
        """Return None: the output has no steps left to mask."""
        return None

    def forward(
        self, x: FloatArray, training: bool = False, mask: Array | None = None
    ) -> FloatArray:
        """Return the pooled channels ``(batch, channels)`` (``keepdims``: with a 1)."""
        if self.data_format != "channels_first":
            return self.pool(x, mask)
        if mask is not None:
            raise ShapeError(
                f"{type(self).__name__} layer {self.name!r} with data_format="
                "'channels_first' got a mask; masks mark the steps of channels-last "
                "(batch, steps, channels) sequences. Use the default data_format, with "
                "Permute((2, 1)) before the layer if the data is channels-first."
            )
        y = self.pool(x.transpose(0, 2, 1), None)
        return y.reshape(len(x), -1, 1) if self.keepdims else y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx, in the input's layout."""
        if self.data_format != "channels_first":
            return self.unpool(dy)
        dx = self.unpool(dy.reshape(len(dy), 1, -1) if self.keepdims else dy)
        if dx is None:
            return None
        out = self.buffer("dx_channels_first", (dx.shape[0], dx.shape[2], dx.shape[1]))
        np.copyto(out, dx.transpose(0, 2, 1))
        return out

    def pool(self, x: FloatArray, mask: Array | None) -> FloatArray:
        """Pool channels-last ``x`` over its steps."""
        raise NotImplementedError

    def unpool(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx for channels-last ``x`` given dL/d(pooled)."""
        raise NotImplementedError

    def _output(self, n: int, c: int) -> FloatArray:
        return self.buffer("y", (n, 1, c) if self.keepdims else (n, c))


@define(eq=False, slots=False)
class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over the steps of ``(batch, steps, channels)``; masked steps do not count.

    With a mask ``(batch, steps)`` each sample's mean runs over its unmasked steps
    (zeros for a sample with none), as in Keras.
    """

    def pool(self, x: FloatArray, mask: Array | None) -> FloatArray:
        """Return the per-channel means ``(batch, channels)`` (``keepdims``: with a 1)."""
        n, steps, c = self._x_shape = tuple(x.shape)
        y = self._output(n, c)
        y2 = y.reshape(n, c)
        m = check_mask(self, x, mask)
        if m is None:
            self._mask = None
            np.add.reduce(x, axis=1, out=y2)
            y2 *= 1.0 / steps
            return y
        weights = self.buffer("weights", (n, steps))
        counts = np.maximum(m.sum(axis=1, keepdims=True), 1.0)
        np.divide(m, counts, out=weights)  # 1/count at real steps, 0 at padding
        np.matmul(weights[:, None, :], x, out=y2[:, None, :])
        self._mask = weights
        return y

    def unpool(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx: each sample's ``dy / count`` at its unmasked steps."""
        if not self.input_grad_needed:
            return None
        n, steps, c = self._x_shape
        dx = self.buffer("dx", (n, steps, c))
        dy2 = dy.reshape(n, 1, c)
        if self._mask is None:
            np.multiply(dy2, 1.0 / steps, out=dx[:, :1])
            dx[:, 1:] = dx[:, :1]
            return dx
        np.multiply(self._mask[:, :, None], dy2, out=dx)
        return dx


@define(eq=False, slots=False)
class GlobalMaxPooling1D(_GlobalPooling1D):
    """Max over the steps of ``(batch, steps, channels)``; masked steps never win.

    Backward routes each channel's gradient to its first maximum. Unlike Keras 3,
    which ignores the mask here (so padding can win), masked steps are left out; a
    sample with no unmasked step gets the max over all its steps.
    """

    _x: FloatArray = field(init=False, repr=False, on_setattr=NO_OP)
    _argmax: IntArray = field(
        init=False, repr=False, factory=lambda: np.empty((0, 0), np.intp)
    )

    def pool(self, x: FloatArray, mask: Array | None) -> FloatArray:
        """Return the per-channel maxima ``(batch, channels)`` (``keepdims``: with a 1)."""
        n, steps, c = self._x_shape = tuple(x.shape)
        m = check_mask(self, x, mask)
        if m is not None:
            xm = self.buffer("x_masked", (n, steps, c))
            np.copyto(xm, x)
            any_left = np.any(m, axis=1, keepdims=True)
            skip = np.logical_and(m == 0, any_left)
            xm[skip] = -np.inf
            x = xm
        self._x = x
        y = self._output(n, c)
        np.max(x, axis=1, out=y.reshape(n, c))
        return y

    def unpool(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx: each channel's ``dy`` at its first maximum, zero elsewhere."""
        if not self.input_grad_needed:
            return None
        n, steps, c = self._x_shape
        if self._argmax.shape[0] < n or self._argmax.shape[1] != c:
            self._argmax = np.empty((n, c), np.intp)
        argmax = self._argmax[:n]
        np.argmax(self._x, axis=1, out=argmax)
        dx = self.buffer("dx", (n, steps, c))
        dx.fill(0.0)
        np.put_along_axis(dx, argmax[:, None, :], dy.reshape(n, 1, c), axis=1)
        return dx
