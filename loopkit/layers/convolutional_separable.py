"""SeparableConv2D and its shared core: a depthwise pass then a pointwise product."""

from __future__ import annotations

from typing import Any

import numpy as np
from attrs import define, field

from loopkit import activations as _activations
from loopkit.layers import _conv_kernels as conv_kernels
from loopkit.layers._geometry import (
    Padding,
    Pair,
    channels_last_only,
    lower_if_str,
    plan_dilated_2d,
    positive_pair,
    to_pair,
)
from loopkit.layers.base import ActivatedLayer, Parameter, activation_or_none
from loopkit.typing import FloatArray, Shape
from loopkit.validators import one_of, positive_int

__all__ = ["SeparableConv2D", "SeparableCore"]


@define(eq=False, slots=False)
class SeparableCore(ActivatedLayer):
    """The computation SeparableConv2D and SeparableConv1D share, on 4-D images.

    A subclass sets ``depthwise_kernel`` (taps..., channels, depth_multiplier),
    ``pointwise_kernel`` (1..., channels * depth_multiplier, filters) and, with a
    bias, ``bias``; it hands ``separable_forward`` the input as ``(batch, height,
    width, channels)`` (a sequence is an image of height 1) with the window's
    geometry, and ``separable_backward`` dL/d(pre-activation).
    """

    depthwise_kernel: Parameter = field(init=False, repr=False)
    pointwise_kernel: Parameter = field(init=False, repr=False)
    _x_shape: Shape = field(init=False, repr=False)
    _geometry: tuple[Pair, Pair, Pair, Pair, Pair] = field(init=False, repr=False)
    _cols: FloatArray = field(init=False, repr=False)
    _depthwise: FloatArray = field(init=False, repr=False)

    def separable_forward(
        self,
        x: FloatArray,
        kernel: Pair,
        strides: Pair,
        dilation: Pair,
        pads: Pair,
        out: Pair,
    ) -> FloatArray:
        """Return ``pointwise(depthwise(x))``, ``(batch, out_h, out_w, filters)``.

        ``pads`` are the zeros before the first row and column; ``out`` the output
        height and width. The bias and activation are left to ``activate``.
        """
        (oh, ow), (kh, kw) = out, kernel
        c, dm = x.shape[-1], self.depthwise_kernel.value.shape[-1]
        f = self.pointwise_kernel.value.shape[-1]
        x = np.ascontiguousarray(x, self.dtype)  # no copy for a layer's output
        n = x.shape[0]
        m = n * oh * ow
        self._x_shape = tuple(x.shape)
        self._geometry = (kernel, strides, dilation, pads, out)
        cols = self.buffer("cols", (n, oh, ow, kh, kw, c))
        conv_kernels.im2col(x, strides, dilation, pads, cols)
        self._cols = cols.reshape(m, kh * kw, c)
        depthwise = self.buffer("depthwise", (m, c * dm))
        taps = self.depthwise_kernel.value.reshape(kh * kw, c, dm)
        np.einsum("mtc,tcd->mcd", self._cols, taps, out=depthwise.reshape(m, c, dm))
        self._depthwise = depthwise
        z = self.buffer("z", (n, oh, ow, f))
        pointwise = self.pointwise_kernel.value.reshape(c * dm, f)
        np.matmul(depthwise, pointwise, out=z.reshape(m, f))
        return z

    def separable_backward(
        self, dz: FloatArray, bias_grad: FloatArray | None
    ) -> FloatArray | None:
        """Write the kernels' (and ``bias_grad``'s) gradients; return 4-D dL/dx or None.

        Args:
            dz: dL/d(pre-activation), any shape of ``batch*out_h*out_w*filters``.
            bias_grad: The bias gradient still to write (from ``backward_activation``).
        """
        n, h, w, c = self._x_shape
        (kh, kw), strides, dilation, pads, out = self._geometry
        m, cdm = self._depthwise.shape
        dm, f = cdm // c, self.pointwise_kernel.value.shape[-1]
        dz = dz.reshape(m, f)
        pointwise = self.pointwise_kernel.value.reshape(cdm, f)
        if self.trainable:
            pointwise_grad = self.pointwise_kernel.grad.reshape(cdm, f)
            np.matmul(self._depthwise.T, dz, out=pointwise_grad)  # overwrite
            if bias_grad is not None:
                np.add.reduce(dz, axis=0, out=bias_grad)
        if not (self.trainable or self.input_grad_needed):
            return None
        ddepthwise = self.buffer("ddepthwise", (m, cdm))
        np.matmul(dz, pointwise.T, out=ddepthwise)
        dd = ddepthwise.reshape(m, c, dm)
        if self.trainable:
            depthwise_grad = self.depthwise_kernel.grad.reshape(kh * kw, c, dm)
            np.einsum("mtc,mcd->tcd", self._cols, dd, out=depthwise_grad)  # overwrite
        if not self.input_grad_needed:
            return None
        dcols = self.buffer("dcols", (n, *out, kh, kw, c))
        taps = self.depthwise_kernel.value.reshape(kh * kw, c, dm)
        np.einsum("mcd,tcd->mtc", dd, taps, out=dcols.reshape(m, kh * kw, c))
        dx = self.buffer("dx", (n, h, w, c))
        conv_kernels.col2im(dcols, strides, dilation, pads, dx)
        return dx


@define(eq=False, slots=False)
class SeparableConv2D(SeparableCore):
    """Depthwise-separable 2-D convolution over ``(batch, height, width, channels)``.

    A DepthwiseConv2D without bias, ``d[n, i, j, c*M + m] = sum_{a, b} xp[n, i*sh +
    a*dh, j*sw + b*dw, c] * depthwise_kernel[a, b, c, m]`` (``M`` the depth multiplier,
    ``xp`` the zero-padded input), then a 1x1 convolution mixing its channels,
    ``y = activation(d @ pointwise_kernel + bias)``, with Keras's weights
    ``depthwise_kernel (kh, kw, in_channels, M)``, ``pointwise_kernel (1, 1,
    in_channels*M, filters)`` and ``bias (filters,)``. The depthwise pass is
    DepthwiseConv2D's (Conv2D's compiled im2col, one ``einsum`` per batch), the
    pointwise one a single BLAS product over all samples and positions; backward
    runs both in reverse, folding the window gradients onto the image with
    Conv2D's ``col2im``. The intermediate ``d`` is kept for dL/dpointwise_kernel.

    Unlike Keras, ``strides`` and ``dilation_rate`` greater than 1 may be combined
    (as in loopkit's Conv2D and DepthwiseConv2D).

    Args:
        filters: Number of output channels.
        kernel_size: Depthwise window height and width: an int or a pair.
        strides: Step between windows along height and width: an int or a pair.
        padding: ``"valid"`` (no padding) or ``"same"`` (output size
            ``ceil(input / stride)``, padding split as TensorFlow does).
        data_format: None or ``"channels_last"``; loopkit is channels-last only.
        dilation_rate: Spacing between depthwise kernel taps: an int or a pair.
        depth_multiplier: Depthwise filters per input channel.
        activation: Name or ActivationFunction applied to the output; None is linear.
        use_bias: Whether to add a bias per output channel.
        depthwise_initializer: Initializer of ``depthwise_kernel``.
        pointwise_initializer: Initializer of ``pointwise_kernel``.
        bias_initializer: Initializer of the bias ``(filters,)``.
        depthwise_regularizer: Penalty on ``depthwise_kernel`` added to the loss.
        pointwise_regularizer: Penalty on ``pointwise_kernel`` added to the loss.
        bias_regularizer: Penalty on the bias added to the loss.
        depthwise_constraint: Projection of ``depthwise_kernel`` after each step.
        pointwise_constraint: Projection of ``pointwise_kernel`` after each step.
        bias_constraint: Projection of the bias after each step.
    """

    filters: int = field(validator=positive_int)
    kernel_size: Pair = field(converter=to_pair, validator=positive_pair)
    strides: Pair = field(default=(1, 1), converter=to_pair, validator=positive_pair)
    padding: Padding = field(
        default="valid", converter=lower_if_str, validator=one_of("valid", "same")
    )
    data_format: str | None = field(default=None, validator=channels_last_only)
    dilation_rate: Pair = field(default=(1, 1), converter=to_pair, validator=positive_pair)
    depth_multiplier: int = field(default=1, validator=positive_int)
    activation: _activations.ActivationFunction | None = field(
        default=None, converter=activation_or_none
    )
    use_bias: bool = True
    depthwise_initializer: Any = "glorot_uniform"
    pointwise_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    depthwise_regularizer: Any = None
    pointwise_regularizer: Any = None
    bias_regularizer: Any = None
    # Keyword-only: Keras's activity_regularizer (not supported) comes first.
    depthwise_constraint: Any = field(default=None, kw_only=True)
    pointwise_constraint: Any = field(default=None, kw_only=True)
    bias_constraint: Any = field(default=None, kw_only=True)
    _plan: tuple[Pair, Pair, Pair] = field(init=False, repr=False)

    def _spatial_plan(self, input_shape: Shape) -> tuple[Pair, Pair, Pair]:
        return plan_dilated_2d(self, input_shape)

    def build(self, input_shape: Shape) -> None:
        self._plan = self._spatial_plan(input_shape)
        channels = int(input_shape[2])
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel",
            (*self.kernel_size, channels, self.depth_multiplier),
            self.depthwise_initializer,
            regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint,
        )
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel",
            (1, 1, channels * self.depth_multiplier, self.filters),
            self.pointwise_initializer,
            regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint,
        )
        self.bias = self.add_bias(self.filters)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        (oh, ow), _, _ = self._spatial_plan(input_shape)
        return (oh, ow, self.filters)

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``activation(pointwise(depthwise(x)) + bias)`` in a layer buffer.

        Args:
            x: ``(batch, height, width, channels)`` images.
            training: In training with ``fuse_output_activation`` set, the
                pre-activation is returned (the loss reads the logits).

        Returns:
            ``(batch, out_h, out_w, filters)``, valid until the next call.
        """
        (oh, ow), (pt, _), (pl, _) = self._plan
        geometry = (self.kernel_size, self.strides, self.dilation_rate, (pt, pl), (oh, ow))
        return self.activate(self.separable_forward(x, *geometry), training)

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Write the kernels' and the bias's gradients; return dL/dx (None if unneeded).

        Args:
            dy: ``(batch, out_h, out_w, filters)``, dL/d(output), or
                dL/d(pre-activation) when ``fuse_output_activation`` is set.
        """
        dy, bias_grad = self.backward_activation(dy)
        return self.separable_backward(dy, bias_grad)
