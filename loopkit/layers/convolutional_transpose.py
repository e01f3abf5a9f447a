"""Conv2DTranspose: channels-last transposed convolution by one product and col2im."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from attrs import define, field
from attrs.setters import NO_OP

from loopkit import activations as _activations
from loopkit.errors import ConfigError
from loopkit.layers import _conv_kernels as conv_kernels
from loopkit.layers._geometry import (
    Padding,
    Pair,
    channels_last_only,
    check_image_shape,
    is_int,
    lower_if_str,
    positive_pair,
    to_pair,
)
from loopkit.layers.base import ActivatedLayer, Parameter, activation_or_none
from loopkit.typing import FloatArray, Shape
from loopkit.validators import one_of, positive_int

__all__ = ["Conv2DTranspose", "transpose_axis_plan"]


def transpose_axis_plan(
    size: int,
    kernel: int,
    stride: int,
    dilation: int,
    padding: str,
    output_padding: int | None,
) -> tuple[int, int]:
    """Return ``(output length, crop before)`` of a transposed convolution on one axis.

    The full scatter of ``size`` inputs has ``(size - 1) * stride + span`` positions
    (``span = (kernel - 1) * dilation + 1``); Keras's output is a window of it that
    starts ``crop before`` positions in and may reach past its end (zeros there).
    Lengths as Keras's ``compute_conv_transpose_output_shape``: ``"valid"``:
    ``(size - 1) * stride + span + output_padding`` (``output_padding`` defaulting to
    ``max(span, stride) - span``), no crop; ``"same"``: ``size * stride`` without
    ``output_padding``, else ``(size - 1) * stride + span % 2 + output_padding``, the
    crop taken from Keras's JAX padding (the larger half of the padding first,
    leaving at least one row of the scatter).
    """
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        return (size - 1) * stride + span + extra, 0
    if output_padding is None:
        pad = stride + span - 2  # total padding of the dilated input, as JAX takes it
        length = size * stride
    else:
        pad = span + span % 2 - 2 + output_padding
        length = (size - 1) * stride + span % 2 + output_padding
    before = min(pad - pad // 2, span - 1)
    return length, span - 1 - before


def _optional_pair(value: Any) -> Any:
    """``output_padding``: None, or an int (zero included) or sequence as a pair."""
    if is_int(value):
        return (int(value), int(value))
    if isinstance(value, (list, tuple)) and all(is_int(v) for v in value):
        return tuple(int(v) for v in value)
    return value


def _output_padding_check(
    instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    """Accept None or a pair of ints with ``0 <= output_padding < strides``, as Keras."""
    if value is None:
        return
    if not (isinstance(value, tuple) and len(value) == 2 and all(is_int(v) for v in value)):
        raise TypeError(
            f"Conv2DTranspose got output_padding={value!r}; expected None, an int or a "
            "pair of ints, e.g. output_padding=1 or output_padding=(1, 0)."
        )
    strides = instance.strides
    if any(p < 0 or p >= s for p, s in zip(value, strides, strict=True)):
        raise ConfigError(
            f"Conv2DTranspose got output_padding={value} with strides={strides}; each "
            "output_padding must be >= 0 and < its stride (Keras's rule). Use "
            "output_padding=None for the default size, or a larger stride."
        )


def _dilation_check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept ``dilation_rate`` > 1 only with strides 1, as Keras does."""
    positive_pair(instance, attribute, value)
    if max(value) > 1 and max(instance.strides) > 1:
        raise ConfigError(
            f"Conv2DTranspose got strides={instance.strides} with dilation_rate={value}; "
            "as in Keras, strides > 1 cannot be combined with dilation_rate > 1. Use "
            "strides=1 or dilation_rate=1."
        )


@define(eq=False, slots=False)
class Conv2DTranspose(ActivatedLayer):
    """Transposed 2-D convolution over ``(batch, height, width, channels)``, as Keras's.

    The adjoint of ``Conv2D``'s input map: every input pixel scatters itself times the
    kernel into the output, ``y[n, i*sh + a*dh - top, j*sw + b*dw - left, f] +=
    x[n, i, j, c] * kernel[a, b, f, c]`` (contributions outside the output dropped),
    then ``activation(y + bias)``. The kernel is ``(kh, kw, filters, in_channels)``,
    out before in, as Keras's, so Keras weights load with ``set_weights``. Forward is
    one product ``x (batch*h*w, in) @ kernel (in, kh*kw*filters)`` and the compiled
    ``col2im`` adding each tap into the output; backward gathers ``dy`` with the
    compiled ``im2col`` once, then dL/dx and dL/dkernel are one product each.

    Args:
        filters: Number of output channels.
        kernel_size: Window height and width: an int or a pair.
        strides: Upsampling step along height and width: an int or a pair.
        padding: ``"valid"``: output ``(in - 1) * stride + kernel`` (at least
            ``in * stride``); ``"same"``: output ``in * stride``.
        output_padding: None, or an int or pair ``< strides``: output
            ``(in - 1) * stride + kernel - 2 * pad + output_padding`` with
            ``pad = kernel // 2`` for "same" and 0 for "valid".
        data_format: None or ``"channels_last"``; loopkit is channels-last only.
        dilation_rate: Spacing between kernel taps; > 1 only with strides 1, as Keras.
        activation: Name or ActivationFunction applied to the output; None is linear.
        use_bias: Whether to add a bias per filter.
        kernel_initializer: Initializer for the kernel ``(kh, kw, filters, in_channels)``.
        bias_initializer: Initializer for the bias ``(filters,)``.
        kernel_regularizer: Penalty on the kernel added to the loss ("l1", "l2", ...).
        bias_regularizer: Penalty on the bias added to the loss.
        kernel_constraint: Projection of the kernel after each step; keyword-only.
        bias_constraint: Projection of the bias after each step; keyword-only.
    """

    filters: int = field(validator=positive_int)
    kernel_size: Pair = field(converter=to_pair, validator=positive_pair)
    strides: Pair = field(default=(1, 1), converter=to_pair, validator=positive_pair)
    padding: Padding = field(
        default="valid", converter=lower_if_str, validator=one_of("valid", "same")
    )
    output_padding: Pair | None = field(
        default=None, converter=_optional_pair, validator=_output_padding_check
    )
    data_format: str | None = field(default=None, validator=channels_last_only)
    dilation_rate: Pair = field(
        default=(1, 1), converter=to_pair, validator=_dilation_check
    )
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
    _plan: tuple[Pair, Pair] = field(init=False, repr=False)
    _x: FloatArray = field(init=False, repr=False, on_setattr=NO_OP)

    def _spatial_plan(self, input_shape: Shape) -> tuple[Pair, Pair]:
        """Return the output ``(height, width)`` and the crop ``(top, left)``."""
        check_image_shape(self, input_shape)
        pads = self.output_padding or (None, None)
        plans = [
            transpose_axis_plan(size, k, s, d, self.padding, p)
            for size, k, s, d, p in zip(
                input_shape[:2],
                self.kernel_size,
                self.strides,
                self.dilation_rate,
                pads,
                strict=True,
            )
        ]
        (oh, top), (ow, left) = plans
        return (oh, ow), (top, left)

    def build(self, input_shape: Shape) -> None:
        self._plan = self._spatial_plan(input_shape)
        # Keras's layout (kh, kw, filters, in_channels): the outputs are not last
        self.kernel = self.add_kernel_and_bias(
            (*self.kernel_size, self.filters, input_shape[2]), outputs=self.filters
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        (oh, ow), _ = self._spatial_plan(input_shape)
        return (oh, ow, self.filters)

    def _taps_by_channel(self) -> FloatArray:
        """The kernel as ``(kh*kw*filters, in_channels)``, a view."""
        return self.kernel.value.reshape(-1, self.kernel.value.shape[-1])

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``activation(conv_transpose(x, kernel) + bias)`` in a layer buffer.

        Args:
            x: ``(batch, height, width, in_channels)`` images.
            training: In training with ``fuse_output_activation`` set, the
                pre-activation is returned (the loss reads the logits).

        Returns:
            ``(batch, out_h, out_w, filters)``, valid until the next call.
        """
        (oh, ow), crop = self._plan
        (kh, kw), f = self.kernel_size, self.filters
        x = np.ascontiguousarray(x, self.dtype)  # no copy for a layer's output
        object.__setattr__(self, "_x", x)  # for backward; per step: skips attrs' hook
        n, h, w, c = x.shape
        cols = self.buffer("cols", (n, h, w, kh, kw, f))
        np.matmul(
            x.reshape(-1, c), self._taps_by_channel().T, out=cols.reshape(n * h * w, -1)
        )
        z = self.buffer("z", (n, oh, ow, f))
        conv_kernels.col2im(cols, self.strides, self.dilation_rate, crop, z)
        return self.activate(z, training)

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Write dL/dkernel and dL/dbias; return dL/dx (None if not needed).

        Args:
            dy: ``(batch, out_h, out_w, filters)``, dL/d(output), or dL/d(pre-activation)
                when ``fuse_output_activation`` is set.
        """
        dy, bias_grad = self.backward_activation(dy)
        x = self._x
        n, h, w, c = x.shape
        (kh, kw), f = self.kernel_size, self.filters
        _, crop = self._plan
        dy = np.ascontiguousarray(dy, self.dtype)
        if bias_grad is not None:
            np.add.reduce(dy.reshape(-1, f), axis=0, out=bias_grad)
        trains = self.trainable
        if not (trains or self.input_grad_needed):
            return None
        cols = self.buffer("dcols", (n, h, w, kh, kw, f))
        conv_kernels.im2col(dy, self.strides, self.dilation_rate, crop, cols)
        cols2 = cols.reshape(n * h * w, kh * kw * f)
        if trains:  # (taps, m) @ (m, in): the kernel's own layout, overwritten
            np.matmul(cols2.T, x.reshape(-1, c), out=self._taps_by_channel_grad())
        if not self.input_grad_needed:
            return None
        dx = self.buffer("dx", (n, h, w, c))
        np.matmul(cols2, self._taps_by_channel(), out=dx.reshape(-1, c))
        return dx

    def _taps_by_channel_grad(self) -> FloatArray:
        return self.kernel.grad.reshape(-1, self.kernel.grad.shape[-1])
