"""Conv2DTranspose and Conv1DTranspose: transposed convolution by one product and col2im."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
from loopkit.layers.convolutional1d import check_sequence_shape, single_int
from loopkit.typing import FloatArray, Shape
from loopkit.validators import one_of, positive_int

__all__ = ["Conv1DTranspose", "Conv2DTranspose", "transpose_axis_plan"]


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
class _TransposedConvolution(ActivatedLayer):
    """The computation of the transposed convolutions, on ``(batch, h, w, c)`` arrays.

    A subclass declares Keras's arguments and gives them to the computation as
    ``(height, width)`` pairs through ``_geometry``.
    """

    if TYPE_CHECKING:
        filters: int
        padding: str

    kernel: Parameter = field(init=False, repr=False)
    _plan: tuple[Pair, Pair] = field(init=False, repr=False)
    _x: FloatArray = field(init=False, repr=False, on_setattr=NO_OP)

    def _geometry(self) -> tuple[Pair, Pair, Pair, tuple[Any, Any]]:
        """Kernel size, strides, dilation and output padding as (height, width) pairs."""
        raise NotImplementedError

    def _spatial_plan(self, input_shape: Shape) -> tuple[Pair, Pair]:
        """Return the output ``(height, width)`` and the crop ``(top, left)``."""
        check_image_shape(self, input_shape)
        kernel_size, strides, dilation, pads = self._geometry()
        plans = [
            transpose_axis_plan(size, k, s, d, self.padding, p)
            for size, k, s, d, p in zip(
                input_shape[:2], kernel_size, strides, dilation, pads, strict=True
            )
        ]
        (oh, top), (ow, left) = plans
        return (oh, ow), (top, left)

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
        (kh, kw), strides, dilation, _ = self._geometry()
        f = self.filters
        x = np.ascontiguousarray(x, self.dtype)  # no copy for a layer's output
        object.__setattr__(self, "_x", x)  # for backward; per step: skips attrs' hook
        n, h, w, c = x.shape
        cols = self.buffer("cols", (n, h, w, kh, kw, f))
        np.matmul(
            x.reshape(-1, c), self._taps_by_channel().T, out=cols.reshape(n * h * w, -1)
        )
        z = self.buffer("z", (n, oh, ow, f))
        conv_kernels.col2im(cols, strides, dilation, crop, z)
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
        (kh, kw), strides, dilation, _ = self._geometry()
        f = self.filters
        _, crop = self._plan
        dy = np.ascontiguousarray(dy, self.dtype)
        if bias_grad is not None:
            np.add.reduce(dy.reshape(-1, f), axis=0, out=bias_grad)
        trains = self.trainable
        if not (trains or self.input_grad_needed):
            return None
        cols = self.buffer("dcols", (n, h, w, kh, kw, f))
        conv_kernels.im2col(dy, strides, dilation, crop, cols)
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


@define(eq=False, slots=False)
class Conv2DTranspose(_TransposedConvolution):
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

    def _geometry(self) -> tuple[Pair, Pair, Pair, tuple[Any, Any]]:
        pads = self.output_padding or (None, None)
        return self.kernel_size, self.strides, self.dilation_rate, pads

    def build(self, input_shape: Shape) -> None:
        self._plan = self._spatial_plan(input_shape)
        # Keras's layout (kh, kw, filters, in_channels): the outputs are not last
        self.kernel = self.add_kernel_and_bias(
            (*self.kernel_size, self.filters, input_shape[2]), outputs=self.filters
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        (oh, ow), _ = self._spatial_plan(input_shape)
        return (oh, ow, self.filters)


def _output_padding_1d(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept None or an int with ``0 <= output_padding < strides``, as Keras."""
    if value is None:
        return
    if not is_int(value):
        raise TypeError(
            f"Conv1DTranspose got output_padding={value!r}; expected None or an int."
        )
    if not 0 <= value < instance.strides:
        raise ConfigError(
            f"Conv1DTranspose got output_padding={value} with strides={instance.strides};"
            " output_padding must be >= 0 and < strides (Keras's rule)."
        )


def _dilation_1d(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    positive_int(instance, attribute, value)
    if value > 1 and instance.strides > 1:
        raise ConfigError(
            f"Conv1DTranspose got strides={instance.strides} with dilation_rate={value}; "
            "as in Keras, strides > 1 cannot be combined with dilation_rate > 1."
        )


@define(eq=False, slots=False)
class Conv1DTranspose(_TransposedConvolution):
    """Transposed 1-D convolution over ``(batch, steps, channels)``, as Keras's.

    ``Conv2DTranspose``'s computation on a sequence seen as an image of height 1: each step
    scatters itself times the kernel, ``y[n, t*stride + a*dilation - crop, f] +=
    x[n, t, c] * kernel[a, f, c]``, then ``activation(y + bias)``. The kernel is
    ``(kernel_size, filters, in_channels)``, Keras's layout. The usual decoder of a
    ``Conv1D`` encoder (``strides=2`` doubles the steps with ``padding="same"``).

    Args:
        filters: Number of output channels.
        kernel_size: Window length (an int or a one-element tuple).
        strides: Upsampling step.
        padding: ``"valid"`` or ``"same"`` (output ``steps * strides``). Sequences
            of any length (``Input(shape=(None, channels))``) are planned per batch.
        output_padding: None, or an int ``< strides`` (see ``Conv2DTranspose``).
        data_format: None or ``"channels_last"``; loopkit is channels-last only.
        dilation_rate: Spacing between kernel taps; > 1 only with strides 1.
        activation: Name or ActivationFunction applied to the output; None is linear.
        use_bias: Whether to add a bias per filter.
        kernel_initializer: Initializer for the ``(kernel_size, filters, in)`` kernel.
        bias_initializer: Initializer for the bias ``(filters,)``.
        kernel_regularizer: Penalty on the kernel added to the loss.
        bias_regularizer: Penalty on the bias added to the loss.
        kernel_constraint: Projection of the kernel after each step; keyword-only.
        bias_constraint: Projection of the bias after each step; keyword-only.
    """

    filters: int = field(validator=positive_int)
    kernel_size: int = field(converter=single_int, validator=positive_int)
    strides: int = field(default=1, converter=single_int, validator=positive_int)
    padding: Padding = field(
        default="valid", converter=lower_if_str, validator=one_of("valid", "same")
    )
    output_padding: int | None = field(
        default=None, converter=single_int, validator=_output_padding_1d
    )
    data_format: str | None = field(default=None, validator=channels_last_only)
    dilation_rate: int = field(default=1, converter=single_int, validator=_dilation_1d)
    _planned_steps: int | None = field(init=False, default=None, repr=False)
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

    def _geometry(self) -> tuple[Pair, Pair, Pair, tuple[Any, Any]]:
        pad = self.output_padding
        return (
            (1, self.kernel_size),
            (1, self.strides),
            (1, self.dilation_rate),
            (None if pad is None else 0, pad),
        )

    def build(self, input_shape: Shape) -> None:
        check_sequence_shape(self, input_shape)
        self._planned_steps = input_shape[0]
        if input_shape[0] is not None:  # any length (None): planned per batch
            self._plan = self._spatial_plan((1, *input_shape))
        self.kernel = self.add_kernel_and_bias(
            (self.kernel_size, self.filters, input_shape[1]), outputs=self.filters
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_sequence_shape(self, input_shape)
        if input_shape[0] is None:
            return (None, self.filters)
        (_, steps), _ = self._spatial_plan((1, *input_shape))
        return (steps, self.filters)

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``activation(conv_transpose(x, kernel) + bias)``, ``(batch, out, f)``."""
        if x.shape[1] != self._planned_steps:  # built for any length: this batch's plan
            self._plan = self._spatial_plan((1, *x.shape[1:]))
            self._planned_steps = x.shape[1]
        y = super().forward(x.reshape(x.shape[0], 1, *x.shape[1:]), training)
        return y.reshape(y.shape[0], y.shape[2], y.shape[3])

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Write dL/dkernel and dL/dbias; return dL/dx (None if not needed)."""
        dx = super().backward(dy.reshape(dy.shape[0], 1, *dy.shape[1:]))
        return None if dx is None else dx.reshape(dx.shape[0], dx.shape[2], dx.shape[3])
