"""Conv2D: channels-last 2-D convolution by compiled im2col and one matrix product."""

from __future__ import annotations

from typing import Any, Literal

import attrs
import numpy as np
from attrs import define, field

from loopkit import activations as _activations
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers import _conv_kernels as conv_kernels
from loopkit.layers.base import Layer, Parameter
from loopkit.layers.core import _activation_or_none, _backward_through_activation
from loopkit.typing import FloatArray, Shape
from loopkit.validators import one_of, positive_int, suggest

__all__ = ["Conv2D"]

Pair = tuple[int, int]
Padding = Literal["valid", "same"]


# --- argument helpers shared with the pooling layers ---------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _to_pair(value: Any) -> Any:
    """Turn a positive int into ``(v, v)`` and a list into a tuple; leave the rest as is.

    Integers become Python ints (the compiled kernels then see one argument type).
    Anything else is left for ``_positive_pair`` to reject with the value as given.
    """
    if _is_int(value) and value > 0:
        return (int(value), int(value))
    if isinstance(value, (list, tuple)):
        items = tuple(value)
        return tuple(int(v) for v in items) if all(_is_int(v) for v in items) else items
    return value


def _positive_pair(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept a pair of positive ints (what ``_to_pair`` makes of an int or a sequence)."""
    owner, arg = type(instance).__name__, attribute.name
    if _is_int(value):
        items: tuple[Any, ...] = (value,)
    elif isinstance(value, tuple) and len(value) == 2 and all(_is_int(v) for v in value):
        items = value
    else:
        raise TypeError(
            f"{owner} got {arg}={value!r}; expected an int or a pair of ints, "
            f"e.g. {arg}=3 or {arg}=(3, 3)."
        )
    if min(items) <= 0:
        raise ConfigError(
            f"{owner} got {arg}={value!r}; expected ints > 0, e.g. {arg}=(1, 1)."
        )


def _lower_if_str(value: Any) -> Any:
    """Lower-case a string option as Keras does (``"SAME"`` is ``"same"``)."""
    return value.lower() if isinstance(value, str) else value


def _channels_last_only(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept ``data_format`` None or ``"channels_last"``, the only layout loopkit runs."""
    if value is None or value == "channels_last":
        return
    owner = type(instance).__name__
    if value == "channels_first":
        raise ConfigError(
            f"{owner} got data_format='channels_first'; loopkit layers are channels-last "
            "only (batch, height, width, channels). Transpose the data once with "
            "x.transpose(0, 2, 3, 1) and drop data_format."
        )
    raise ConfigError(
        f"{owner} got data_format={value!r}; expected None or 'channels_last'."
        + suggest(value, ["channels_last", "channels_first"])
    )


def _axis_plan(size: int, window: int, stride: int, padding: str) -> tuple[int, int, int]:
    """Return ``(output length, pad before, pad after)`` along one spatial axis.

    ``"valid"``: ``floor((size - window) / stride) + 1`` (zero or less when the window
    does not fit). ``"same"``: ``ceil(size / stride)``, with TensorFlow's padding
    ``max((out - 1) * stride + window - size, 0)`` split with the extra row or column
    after (bottom/right).
    """
    if padding == "valid":
        return (size - window) // stride + 1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return out, total // 2, total - total // 2


def _plan_2d(
    layer: Layer,
    input_shape: Shape,
    window: Pair,
    strides: Pair,
    padding: str,
    window_args: str,
) -> tuple[Pair, Pair, Pair]:
    """Check an image ``input_shape`` and return output size, row pads and column pads.

    Args:
        layer: The layer asking, named in error messages.
        input_shape: ``(height, width, channels)`` of one sample.
        window: Effective window extent (dilation included) along rows and columns.
        strides: Step between windows along rows and columns.
        padding: ``"valid"`` or ``"same"``.
        window_args: The layer's window arguments as text, for error messages.

    Raises:
        ShapeError: ``input_shape`` is not of rank 3, or "valid" windows do not fit.
    """
    kind, name = type(layer).__name__, layer.name
    _check_image_shape(layer, input_shape)
    h, w, _ = input_shape
    oh, pt, pb = _axis_plan(h, window[0], strides[0], padding)
    ow, pl, pr = _axis_plan(w, window[1], strides[1], padding)
    if oh <= 0 or ow <= 0:
        raise ShapeError(
            f"{kind} layer {name!r} with {window_args}, padding={padding!r} got "
            f"input_shape={input_shape}: the {window[0]}x{window[1]} window does not fit "
            f"in the {h}x{w} image, so the output would be {oh}x{ow}. Use "
            "padding='same', a smaller window, or larger images (at least "
            f"{window[0]}x{window[1]})."
        )
    return (oh, ow), (pt, pb), (pl, pr)


def _check_image_shape(layer: Layer, input_shape: Shape) -> None:
    """Raise ShapeError unless ``input_shape`` is ``(height, width, channels)``."""
    if len(input_shape) == 3:
        return
    if len(input_shape) == 2:
        fix = (
            f"For single-channel images add Reshape({(*input_shape, 1)}) before it "
            f"(or pass input_shape={(*input_shape, 1)})."
        )
    elif len(input_shape) == 4:
        fix = (
            "input_shape excludes the batch axis: pass "
            f"input_shape={tuple(input_shape[1:])}."
        )
    else:
        fix = "Add Reshape((height, width, channels)) before it, e.g. Reshape((28, 28, 1))."
    raise ShapeError(
        f"{type(layer).__name__} layer {layer.name!r} expects samples of shape "
        f"(height, width, channels), got input_shape={input_shape}. {fix}"
    )


# --- Conv2D --------------------------------------------------------------------------

# Inputs with at most this many channels (grayscale, RGB) take the tap-major im2col:
# copying along output columns beats copying runs of 1-3 channels by 1.4-4x (measured
# on 28x28 images, batch 64), and BLAS forms dL/dkernel from a C-contiguous
# (taps, m) matrix 20-30% faster. From 4 channels on the pixel-major copy wins.
_FEW_CHANNELS = 3


@define(eq=False, slots=False)
class Conv2D(Layer):
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
        activation: Name or ActivationFunction applied to the output; None is linear.
        use_bias: Whether to add a bias per filter.
        kernel_initializer: Initializer name or object for the kernel
            ``(kh, kw, in_channels, filters)``.
        bias_initializer: Initializer name or object for the bias ``(filters,)``.
        kernel_regularizer: Penalty on the kernel added to the loss ("l1", "l2", ...).
    """

    filters: int = field(validator=positive_int)
    kernel_size: Pair = field(converter=_to_pair, validator=_positive_pair)
    strides: Pair = field(default=(1, 1), converter=_to_pair, validator=_positive_pair)
    padding: Padding = field(
        default="valid", converter=_lower_if_str, validator=one_of("valid", "same")
    )
    data_format: str | None = field(default=None, validator=_channels_last_only)
    dilation_rate: Pair = field(
        default=(1, 1), converter=_to_pair, validator=_positive_pair
    )
    # Keyword-only from here: Keras's `groups` comes next positionally and is not
    # supported, so a positional call fails loudly instead of shifting arguments.
    activation: _activations.ActivationFunction | None = field(
        default=None, converter=_activation_or_none, kw_only=True
    )
    use_bias: bool = field(default=True, kw_only=True)
    kernel_initializer: Any = field(default="glorot_uniform", kw_only=True)
    bias_initializer: Any = field(default="zeros", kw_only=True)
    kernel_regularizer: Any = field(default=None, kw_only=True)
    kernel: Parameter = field(init=False, repr=False)
    bias: Parameter | None = field(init=False, default=None, repr=False)
    _plan: tuple[Pair, Pair, Pair] = field(init=False, repr=False)
    _x_shape: Shape = field(init=False, repr=False)
    _cols: FloatArray = field(init=False, repr=False)
    _z: FloatArray = field(init=False, repr=False)

    def _window(self) -> Pair:
        (kh, kw), (dh, dw) = self.kernel_size, self.dilation_rate
        return (kh - 1) * dh + 1, (kw - 1) * dw + 1

    def _spatial_plan(self, input_shape: Shape) -> tuple[Pair, Pair, Pair]:
        args = f"kernel_size={self.kernel_size}, strides={self.strides}"
        if self.dilation_rate != (1, 1):
            args += f", dilation_rate={self.dilation_rate}"
        return _plan_2d(self, input_shape, self._window(), self.strides, self.padding, args)

    def build(self, input_shape: Shape) -> None:
        self._plan = self._spatial_plan(input_shape)
        self.kernel = self.add_weight(
            "kernel",
            (*self.kernel_size, input_shape[2], self.filters),
            self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        (oh, ow), _, _ = self._spatial_plan(input_shape)
        return (oh, ow, self.filters)

    @property
    def output_activation(self) -> _activations.ActivationFunction | None:
        return self.activation

    @property
    def pre_activation(self) -> FloatArray:
        return self._z

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
        (kh, kw), c = self.kernel_size, self.kernel.value.shape[2]
        x = np.ascontiguousarray(x, self.dtype)  # no copy for a layer's output
        n = x.shape[0]
        m, taps = n * oh * ow, kh * kw * c
        self._x_shape = tuple(x.shape)
        geometry = (self.strides, self.dilation_rate, (pt, pl))
        if c <= _FEW_CHANNELS:  # tap-major: a (taps, m) matrix
            cols = self.buffer("cols_t", (taps * m,))
            conv_kernels.im2col_transposed(x, *geometry, cols.reshape(kh, kw, c, n, oh, ow))
            self._cols = cols = cols.reshape(taps, m).T
        else:
            cols = self.buffer("cols", (n, oh, ow, kh, kw, c))
            conv_kernels.im2col(x, *geometry, cols)
            self._cols = cols = cols.reshape(m, taps)
        z = self.buffer("z", (n, oh, ow, self.filters))
        np.matmul(
            cols,
            self.kernel.value.reshape(taps, self.filters),
            out=z.reshape(m, self.filters),
        )
        self._z = z
        bias = None if self.bias is None else self.bias.value
        if self.activation is None or (training and self.fuse_output_activation):
            if bias is not None:
                z += bias
            return z
        y = self.buffer("y", z.shape)
        if bias is not None:  # one pass for both where the activation can fuse
            return self.activation.forward_with_bias(z, bias, y)
        return self.activation.forward(z, y)

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Write dL/dkernel and dL/dbias; return dL/dx (None if not needed).

        Args:
            dy: ``(batch, out_h, out_w, filters)``, dL/d(output), or dL/d(pre-activation)
                when ``fuse_output_activation`` is set.
        """
        dy, bias_grad = _backward_through_activation(self, dy)
        n, h, w, c = self._x_shape
        (oh, ow), (pt, _), (pl, _) = self._plan
        (kh, kw) = self.kernel_size
        taps = kh * kw * c
        dz = dy.reshape(n * oh * ow, self.filters)
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
