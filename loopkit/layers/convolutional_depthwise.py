"""DepthwiseConv2D: each input channel convolved with its own filters, as Keras's."""

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

__all__ = ["DepthwiseConv2D"]


@define(eq=False, slots=False)
class DepthwiseConv2D(ActivatedLayer):
    """Depthwise 2-D convolution over ``(batch, height, width, channels)`` images.

    Each input channel ``c`` is convolved with its own ``depth_multiplier`` filters,
    never mixing channels: ``y[n, i, j, c*M + m] = activation(bias[c*M + m] +
    sum_{a, b} xp[n, i*sh + a*dh, j*sw + b*dw, c] * kernel[a, b, c, m])``, ``M`` the
    depth multiplier and ``xp`` the zero-padded input, with Keras's kernel shape
    ``(kh, kw, in_channels, depth_multiplier)`` and output channel order. The
    windows are copied once by Conv2D's compiled im2col into a ``(batch*out_h*out_w,
    kh*kw, channels)`` matrix and contracted with the kernel per channel (one
    ``einsum``, vectorized over samples and positions); backward contracts ``dy``
    with the same matrix for dL/dkernel and folds ``dy``-times-kernel back onto the
    image with Conv2D's ``col2im`` for dL/dx.

    Unlike Keras, ``strides`` and ``dilation_rate`` greater than 1 may be combined
    (as in loopkit's Conv2D).

    Args:
        kernel_size: Window height and width: an int or a pair.
        strides: Step between windows along height and width: an int or a pair.
        padding: ``"valid"`` (no padding) or ``"same"`` (output size
            ``ceil(input / stride)``, padding split as TensorFlow does).
        depth_multiplier: Filters per input channel; the output has
            ``in_channels * depth_multiplier`` channels.
        data_format: None or ``"channels_last"``; loopkit is channels-last only.
        dilation_rate: Spacing between kernel taps: an int or a pair.
        activation: Name or ActivationFunction applied to the output; None is linear.
        use_bias: Whether to add a bias per output channel.
        depthwise_initializer: Initializer of the kernel
            ``(kh, kw, in_channels, depth_multiplier)``.
        bias_initializer: Initializer of the bias ``(in_channels * depth_multiplier,)``.
        depthwise_regularizer: Penalty on the kernel added to the loss.
        bias_regularizer: Penalty on the bias added to the loss.
        depthwise_constraint: Projection of the kernel after each step.
        bias_constraint: Projection of the bias after each step.
    """

    kernel_size: Pair = field(converter=to_pair, validator=positive_pair)
    strides: Pair = field(default=(1, 1), converter=to_pair, validator=positive_pair)
    padding: Padding = field(
        default="valid", converter=lower_if_str, validator=one_of("valid", "same")
    )
    depth_multiplier: int = field(default=1, validator=positive_int)
    data_format: str | None = field(default=None, validator=channels_last_only)
    dilation_rate: Pair = field(default=(1, 1), converter=to_pair, validator=positive_pair)
    activation: _activations.ActivationFunction | None = field(
        default=None, converter=activation_or_none
    )
    use_bias: bool = True
    depthwise_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    depthwise_regularizer: Any = None
    bias_regularizer: Any = None
    # Keyword-only: Keras's activity_regularizer (not supported) comes first.
    depthwise_constraint: Any = field(default=None, kw_only=True)
    bias_constraint: Any = field(default=None, kw_only=True)
    kernel: Parameter = field(init=False, repr=False)
    _plan: tuple[Pair, Pair, Pair] = field(init=False, repr=False)
    _x_shape: Shape = field(init=False, repr=False)
    _cols: FloatArray = field(init=False, repr=False)

    def _spatial_plan(self, input_shape: Shape) -> tuple[Pair, Pair, Pair]:
        return plan_dilated_2d(self, input_shape)

    def build(self, input_shape: Shape) -> None:
        self._plan = self._spatial_plan(input_shape)
        channels = int(input_shape[2])
        self.kernel = self.add_weight(
            "kernel",
            (*self.kernel_size, channels, self.depth_multiplier),
            self.depthwise_initializer,
            regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint,
        )
        self.bias = self.add_bias(channels * self.depth_multiplier)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        (oh, ow), _, _ = self._spatial_plan(input_shape)
        return (oh, ow, input_shape[2] * self.depth_multiplier)

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``activation(depthwise_conv(x, kernel) + bias)`` in a layer buffer.

        Args:
            x: ``(batch, height, width, channels)`` images.
            training: In training with ``fuse_output_activation`` set, the
                pre-activation is returned (the loss reads the logits).

        Returns:
            ``(batch, out_h, out_w, channels * depth_multiplier)``, valid until the
            next call.
        """
        (oh, ow), (pt, _), (pl, _) = self._plan
        (kh, kw), c, dm = self.kernel_size, x.shape[-1], self.depth_multiplier
        x = np.ascontiguousarray(x, self.dtype)  # no copy for a layer's output
        n = x.shape[0]
        m = n * oh * ow
        self._x_shape = tuple(x.shape)
        cols = self.buffer("cols", (n, oh, ow, kh, kw, c))
        conv_kernels.im2col(x, self.strides, self.dilation_rate, (pt, pl), cols)
        self._cols = cols.reshape(m, kh * kw, c)
        z = self.buffer("z", (n, oh, ow, c * dm))
        kernel = self.kernel.value.reshape(kh * kw, c, dm)
        np.einsum("mtc,tcd->mcd", self._cols, kernel, out=z.reshape(m, c, dm))
        return self.activate(z, training)

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Write dL/dkernel and dL/dbias; return dL/dx (None if not needed).

        Args:
            dy: ``(batch, out_h, out_w, channels * depth_multiplier)``, dL/d(output),
                or dL/d(pre-activation) when ``fuse_output_activation`` is set.
        """
        dy, bias_grad = self.backward_activation(dy)
        n, h, w, c = self._x_shape
        (oh, ow), (pt, _), (pl, _) = self._plan
        (kh, kw), dm = self.kernel_size, self.depth_multiplier
        m = n * oh * ow
        dz = dy.reshape(m, c, dm)
        if self.trainable:
            grad = self.kernel.grad.reshape(kh * kw, c, dm)
            np.einsum("mtc,mcd->tcd", self._cols, dz, out=grad)  # overwrite
            if bias_grad is not None:
                np.add.reduce(dy.reshape(m, c * dm), axis=0, out=bias_grad)
        if not self.input_grad_needed:
            return None
        dcols = self.buffer("dcols", (n, oh, ow, kh, kw, c))
        kernel = self.kernel.value.reshape(kh * kw, c, dm)
        np.einsum("mcd,tcd->mtc", dz, kernel, out=dcols.reshape(m, kh * kw, c))
        dx = self.buffer("dx", (n, h, w, c))
        conv_kernels.col2im(dcols, self.strides, self.dilation_rate, (pt, pl), dx)
        return dx
