"""Conv2D: channels-last 2-D convolution by compiled im2col and one matrix product."""

from __future__ import annotations

from typing import Any

import numpy as np
from attrs import define, field

from loopkit import activations as _activations
from loopkit.errors import ShapeError
from loopkit.layers import _conv_kernels as conv_kernels
from loopkit.layers._geometry import (
    Padding,
    Pair,
    channels_last_only,
    lower_if_str,
    plan_2d,
    positive_pair,
    to_pair,
)
from loopkit.layers.base import ActivatedLayer, Parameter, activation_or_none
from loopkit.typing import FloatArray, Shape
from loopkit.validators import one_of, positive_int

__all__ = ["Conv2D"]

# --- Conv2D --------------------------------------------------------------------------

# Inputs with at most this many channels (grayscale, RGB) take the tap-major im2col:
# copying along output columns beats copying runs of 1-3 channels by 1.4-4x (measured
# on 28x28 images, batch 64), and BLAS forms dL/dkernel from a C-contiguous
# (taps, m) matrix 20-30% faster. From 4 channels on the pixel-major copy wins.
_FEW_CHANNELS = 3


@define(eq=False, slots=False)
class Conv2D(ActivatedLayer):
    """2-D convolution over ``(batch, height, width, channels)`` images, as Keras's.

    ``y[n, i, j, f] = activation(bias[f] + sum_{a, b, c} xp[n, i*sh + a*dh, j*sw + b*dw, c]
    * kernel[a, b, c, f])`` where ``xp`` is the zero-padded input (cross-correlation,
    as in every deep-learning library). Computed by im2col: a compiled kernel
    (``loopkit.layers._conv_kernels``) copies the windows once into a layer-owned
    ``(batch*out_h*out_w, kh*kw*in_channels)`` matrix, zeros standing in for the
    padding (stored transposed, tap-major, for inputs of up to 3 channels, where
    that copies and multiplies faster), and one BLAS product with the kernel reshaped to
    ``(kh*kw*in_channels, filters)`` gives the output; the bias and the activation
    follow in one pass where the activation fuses them (ReLU). Backward gets
    dL/dkernel from one product of that matrix with ``dy``, dL/dbias from a
    product of a ones vector with ``dy``, and dL/dx from the product
    ``dy @ kernel.T`` folded back onto the image by the compiled ``col2im``. Every
    configuration (strides, dilation, padding, frozen, first layer) takes this one
    path; the kernels read the unpadded input, so no padded copy is made.

    Unlike Keras, ``strides`` and ``dilation_rate`` greater than 1 may be combined.

    Args:
        filters: Number of output channels.
        kernel_size: Window height and width: an int or a pair.
        strides: Step between windows along height and width: an int or a pair.
        padding: ``"valid"`` (no padding) or ``"same"`` (output size
            ``ceil(input / stride)``, zero padding split as TensorFlow does, the extra
            row/column at the bottom/right).
        data_format: None or ``"channels_last"``; loopkit is channels-last only.
        dilation_rate: Spacing between kernel taps: an int or a pair.
        groups: Split the input channels and the filters into this many groups,
            each group of filters seeing only its group of channels (``groups`` =
            channels is a depthwise convolution). Both counts must divide by it.
        activation: Name or ActivationFunction applied to the output; None is linear.
        use_bias: Whether to add a bias per filter.
        kernel_initializer: Initializer name or object for the kernel
            ``(kh, kw, in_channels, filters)``.
        bias_initializer: Initializer name or object for the bias ``(filters,)``.
        kernel_regularizer: Penalty on the kernel added to the loss ("l1", "l2", ...).
        bias_regularizer: Penalty on the bias added to the loss.
        kernel_constraint: Projection of the kernel after each step ("max_norm", ...).
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
    groups: int = field(default=1, validator=positive_int)
    activation: _activations.ActivationFunction | None = field(
        default=None, converter=activation_or_none
    )
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    bias_regularizer: Any = None
    # Keyword-only: Keras's activity_regularizer (not supported) comes first.
    kernel_constraint: Any = field(default=None, kw_only=True)
    bias_constraint: Any = field(default=None, kw_only=True)
    kernel: Parameter = field(init=False, repr=False)
    _plan: tuple[Pair, Pair, Pair] = field(init=False, repr=False)
    _x_shape: Shape = field(init=False, repr=False)
    _cols: FloatArray = field(init=False, repr=False)

    def _window(self) -> Pair:
        (kh, kw), (dh, dw) = self.kernel_size, self.dilation_rate
        return (kh - 1) * dh + 1, (kw - 1) * dw + 1

    def _spatial_plan(self, input_shape: Shape) -> tuple[Pair, Pair, Pair]:
        args = f"kernel_size={self.kernel_size}, strides={self.strides}"
        if self.dilation_rate != (1, 1):
            args += f", dilation_rate={self.dilation_rate}"
        return plan_2d(self, input_shape, self._window(), self.strides, self.padding, args)

    def build(self, input_shape: Shape) -> None:
        self._plan = self._spatial_plan(input_shape)
        channels, groups = input_shape[2], self.groups
        if channels % groups or self.filters % groups:
            raise ShapeError(
                f"Conv2D layer {self.name!r} with groups={groups} got {channels} input "
                f"channels and filters={self.filters}; both must be divisible by groups. "
                "Pick groups dividing both, e.g. groups=1."
            )
        self.kernel = self.add_kernel_and_bias(
            (*self.kernel_size, channels // groups, self.filters)
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        (oh, ow), _, _ = self._spatial_plan(input_shape)
        return (oh, ow, self.filters)

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``activation(conv(x, kernel) + bias)`` in a layer-owned buffer.

        Args:
            x: ``(batch, height, width, in_channels)`` images.
            training: In training with ``fuse_output_activation`` set, the
                pre-activation is returned (the loss reads the logits).

        Returns:
            ``(batch, out_h, out_w, filters)``, valid until the next call.
        """
        (oh, ow), (pt, _), (pl, _) = self._plan
        (kh, kw), c = self.kernel_size, x.shape[-1]
        x = np.ascontiguousarray(x, self.dtype)  # no copy for a layer's output
        n = x.shape[0]
        m, taps = n * oh * ow, kh * kw * c
        self._x_shape = tuple(x.shape)
        geometry = (self.strides, self.dilation_rate, (pt, pl))
        if c <= _FEW_CHANNELS and self.groups == 1:  # tap-major: a (taps, m) matrix
            cols = self.buffer("cols_t", (taps * m,))
            conv_kernels.im2col_transposed(x, *geometry, cols.reshape(kh, kw, c, n, oh, ow))
            self._cols = cols = cols.reshape(taps, m).T
        else:
            cols = self.buffer("cols", (n, oh, ow, kh, kw, c))
            conv_kernels.im2col(x, *geometry, cols)
            self._cols = cols = cols.reshape(m, taps)
        z = self.buffer("z", (n, oh, ow, self.filters))
        if self.groups == 1:
            np.matmul(
                cols,
                self.kernel.value.reshape(taps, self.filters),
                out=z.reshape(m, self.filters),
            )
        else:
            for g_cols, g_kernel, g_out in self._group_views(z.reshape(m, self.filters)):
                np.matmul(g_cols, g_kernel, out=g_out)
        return self.activate(z, training)

    def _group_views(self, per_filter: FloatArray) -> list[tuple[Any, Any, Any]]:
        """Return each group's columns, kernel and slice of ``per_filter``.

        The columns ``(m, taps/groups)`` are a copy; the kernel ``(taps/groups,
        filters/groups)`` and the slice ``(m, filters/groups)`` are views.
        """
        m, groups = per_filter.shape[0], self.groups
        kh, kw, cg, f = self.kernel.value.shape
        cols = self._cols.reshape(m, kh * kw, cg * groups)
        fg = f // groups
        return [
            (
                cols[:, :, g * cg : (g + 1) * cg].reshape(m, kh * kw * cg),
                self.kernel.value[..., g * fg : (g + 1) * fg].reshape(kh * kw * cg, fg),
                per_filter[:, g * fg : (g + 1) * fg],
            )
            for g in range(groups)
        ]

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Write dL/dkernel and dL/dbias; return dL/dx (None if not needed).

        Args:
            dy: ``(batch, out_h, out_w, filters)``, dL/d(output), or dL/d(pre-activation)
                when ``fuse_output_activation`` is set.
        """
        dy, bias_grad = self.backward_activation(dy)
        n, h, w, c = self._x_shape
        (oh, ow), (pt, _), (pl, _) = self._plan
        (kh, kw) = self.kernel_size
        taps = kh * kw * c
        dz = dy.reshape(n * oh * ow, self.filters)
        if self.groups > 1:
            return self._grouped_backward(dz, bias_grad)
        if self.trainable:
            np.matmul(
                self._cols.T,  # (taps, m), C-contiguous in the tap-major layout
                dz,
                out=self.kernel.grad.reshape(taps, self.filters),  # overwrite
            )
            if bias_grad is not None:  # a BLAS product: 5x faster than a column sum
                ones = self.buffer("ones", (n * oh * ow,))
                ones.fill(1.0)
                np.matmul(ones, dz, out=bias_grad)
        if not self.input_grad_needed:
            return None
        dcols = self.buffer("dcols", (n, oh, ow, kh, kw, c))
        kernel = self.kernel.value.reshape(taps, self.filters)
        np.matmul(dz, kernel.T, out=dcols.reshape(n * oh * ow, taps))
        dx = self.buffer("dx", (n, h, w, c))
        conv_kernels.col2im(dcols, self.strides, self.dilation_rate, (pt, pl), dx)
        return dx

    def _grouped_backward(
        self, dz: FloatArray, bias_grad: FloatArray | None
    ) -> FloatArray | None:
        """``backward`` for ``groups > 1``: one product per group, then ``col2im``."""
        n, h, w, c = self._x_shape
        (oh, ow), (pt, _), (pl, _) = self._plan
        kh, kw, cg, f = self.kernel.value.shape
        fg, views = f // self.groups, self._group_views(dz)
        if self.trainable:
            for g, (g_cols, _, g_dz) in enumerate(views):
                grad = self.kernel.grad[..., g * fg : (g + 1) * fg]
                grad[...] = (g_cols.T @ g_dz).reshape(kh, kw, cg, fg)
            if bias_grad is not None:
                np.add.reduce(dz, axis=0, out=bias_grad)
        if not self.input_grad_needed:
            return None
        dcols = self.buffer("dcols", (n, oh, ow, kh, kw, c))
        per_tap = dcols.reshape(n * oh * ow, kh * kw, c)
        for g, (_, g_kernel, g_dz) in enumerate(views):
            block = (g_dz @ g_kernel.T).reshape(-1, kh * kw, cg)
            per_tap[:, :, g * cg : (g + 1) * cg] = block
        dx = self.buffer("dx", (n, h, w, c))
        conv_kernels.col2im(dcols, self.strides, self.dilation_rate, (pt, pl), dx)
        return dx
