"""Conv1D: convolution over ``(batch, steps, channels)`` sequences by im2col and BLAS."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from attrs import define, field
from attrs.setters import NO_OP

from loopkit import activations as _activations
from loopkit.errors import ShapeError
from loopkit.layers import _conv_kernels as conv_kernels
from loopkit.layers.base import Layer, Parameter
from loopkit.typing import FloatArray, Shape
from loopkit.validators import one_of, positive_int

__all__ = ["Conv1D", "check_sequence_shape", "length_plan", "plan_windows", "single_int"]


def single_int(value: Any) -> Any:
    """Turn a one-element tuple or list into its int, as Keras's 1-D layers accept."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        return value[0]
    if isinstance(value, np.integer):
        return int(value)
    return value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _activation_or_none(identifier: Any) -> _activations.ActivationFunction | None:
    fn = _activations.get(identifier)
    if fn is not None:
        fn.require_same_shape("A layer")
    return None if fn is None or fn.name == "linear" else fn


def length_plan(size: int, window: int, stride: int, padding: str) -> tuple[int, int, int]:
    """Return ``(output length, pad before, pad after)`` along the steps axis.

    ``"valid"``: ``floor((size - window) / stride) + 1``. ``"same"``:
    ``ceil(size / stride)``, padding ``max((out - 1) * stride + window - size, 0)``
    split with the extra step after, as TensorFlow does. ``"causal"``: ``window - 1``
    zeros before and none after, so output ``t`` sees inputs up to ``t`` only.
    """
    if padding == "causal":
        return (size - 1) // stride + 1, window - 1, 0
    if padding == "valid":
        return (size - window) // stride + 1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return out, total // 2, total - total // 2


def check_sequence_shape(layer: Layer, input_shape: Shape) -> None:
    """Raise ShapeError unless ``input_shape`` is ``(steps, channels)``."""
    if len(input_shape) == 2:
        return
    if len(input_shape) == 1:
        fix = f"For one channel add Reshape({(*input_shape, 1)}) before it."
    elif len(input_shape) == 3:
        fix = f"input_shape excludes the batch axis: pass input_shape={input_shape[1:]}."
    else:
        fix = "Reshape the data to (batch, steps, channels)."
    raise ShapeError(
        f"{type(layer).__name__} layer {layer.name!r} expects samples of shape "
        f"(steps, channels), got input_shape={input_shape}. {fix}"
    )


def plan_windows(layer: Any, input_shape: Shape, paddings: str) -> tuple[int, int, int]:
    """Check a sequence ``input_shape``; return ``length_plan`` for the layer's window.

    The layer holds ``kernel_size``, ``dilation_rate``, ``strides`` and ``padding``
    as ints; a length of None (any length) is planned per batch in forward.
    ``paddings`` names the paddings that fit any length, for the error message.
    """
    check_sequence_shape(layer, input_shape)
    if input_shape[0] is None:
        return (None, 0, 0)
    window = (layer.kernel_size - 1) * layer.dilation_rate + 1
    plan = length_plan(input_shape[0], window, layer.strides, layer.padding)
    if plan[0] <= 0:
        raise ShapeError(
            f"{type(layer).__name__} layer {layer.name!r} with "
            f"kernel_size={layer.kernel_size}, dilation_rate={layer.dilation_rate}, "
            f"padding={layer.padding!r} got sequences of {input_shape[0]} steps, "
            f"shorter than its window of {window}. Use {paddings}, a smaller kernel, "
            "or longer sequences."
        )
    return plan


@define(eq=False, slots=False)
class Conv1D(Layer):
    """1-D convolution over ``(batch, steps, channels)`` sequences, as Keras's ``Conv1D``.

    ``y[n, t, f] = activation(bias[f] + sum_{a, c} xp[n, t*stride + a*dilation, c] *
    kernel[a, c, f])`` with ``xp`` the zero-padded input. The windows are copied once
    by the compiled im2col kernel of ``Conv2D`` (a sequence is an image of height 1)
    into a ``(batch*out_steps, kernel_size*channels)`` matrix; one BLAS product
    gives the output, one more each gives dL/dkernel and dL/dx (folded back by the
    compiled col2im).

    A sequence axis of any length (``Input(shape=(None, channels))``) gives outputs
    of any length: the output length is worked out for each batch.

    Args:
        filters: Number of output channels.
        kernel_size: Window length (an int or a one-element tuple).
        strides: Step between windows.
        padding: ``"valid"``, ``"same"`` (output length ``ceil(steps / strides)``)
            or ``"causal"`` (``(kernel_size - 1) * dilation_rate`` zeros in front:
            output ``t`` depends on inputs up to ``t`` only, for forecasting).
        data_format: None or ``"channels_last"``; loopkit is channels-last only.
        dilation_rate: Spacing between kernel taps.
        activation: Name or ActivationFunction applied to the output; None is linear.
        use_bias: Whether to add a bias per filter.
        kernel_initializer: Initializer of the ``(kernel_size, channels, filters)`` kernel.
        bias_initializer: Initializer of the ``(filters,)`` bias.
        kernel_regularizer: Penalty on the kernel added to the loss.
        bias_regularizer: Penalty on the bias added to the loss.
        kernel_constraint: Projection of the kernel after each step (e.g. MaxNorm).
        bias_constraint: Projection of the bias after each step.
    """

    filters: int = field(validator=positive_int)
    kernel_size: int = field(converter=single_int, validator=positive_int)
    strides: int = field(default=1, converter=single_int, validator=positive_int)
    padding: Literal["valid", "same", "causal"] = field(
        default="valid", converter=_lower, validator=one_of("valid", "same", "causal")
    )
    data_format: str | None = field(default=None, validator=one_of(None, "channels_last"))
    dilation_rate: int = field(default=1, converter=single_int, validator=positive_int)
    # Keyword-only from here: Keras's `groups` comes next positionally and is not
    # supported, so a positional call fails loudly instead of shifting arguments.
    activation: _activations.ActivationFunction | None = field(
        default=None, converter=_activation_or_none, kw_only=True
    )
    use_bias: bool = field(default=True, kw_only=True)
    kernel_initializer: Any = field(default="glorot_uniform", kw_only=True)
    bias_initializer: Any = field(default="zeros", kw_only=True)
    kernel_regularizer: Any = field(default=None, kw_only=True)
    bias_regularizer: Any = field(default=None, kw_only=True)
    kernel_constraint: Any = field(default=None, kw_only=True)
    bias_constraint: Any = field(default=None, kw_only=True)
    kernel: Parameter = field(init=False, repr=False)
    bias: Parameter | None = field(init=False, default=None, repr=False)
    _plan: tuple[int, int, int] = field(init=False, repr=False)
    _planned_steps: int | None = field(init=False, default=None, repr=False)
    """The length ``_plan`` is for (None until a batch of a None-length build)."""
    _x_shape: Shape = field(init=False, repr=False)
    _cols: FloatArray = field(init=False, repr=False)
    _z: FloatArray = field(init=False, repr=False, on_setattr=NO_OP)
    _y: FloatArray | None = field(init=False, default=None, repr=False)

    def _length_plan(self, input_shape: Shape) -> tuple[int, int, int]:
        return plan_windows(self, input_shape, "padding='same' or 'causal'")

    def build(self, input_shape: Shape) -> None:
        self._plan = self._length_plan(input_shape)
        self._planned_steps = input_shape[0]
        self.kernel = self.add_weight(
            "kernel",
            (self.kernel_size, input_shape[1], self.filters),
            self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = self.add_bias(self.filters)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (self._length_plan(input_shape)[0], self.filters)

    def compute_mask(self, x: FloatArray, mask: FloatArray | None = None) -> None:
        """Return None: the steps of the output are not the input's (as in Keras)."""
        return None

    @property
    def output_activation(self) -> _activations.ActivationFunction | None:
        return self.activation

    @property
    def pre_activation(self) -> FloatArray:
        return self._z

    def _geometry(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        return (1, self.strides), (1, self.dilation_rate), (0, self._plan[1])

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``activation(conv(x) + bias)``, ``(batch, out_steps, filters)``."""
        x = np.ascontiguousarray(x, self.dtype)
        n, steps, c = x.shape
        if steps != self._planned_steps:  # built for any length: this batch's plan
            self._plan = self._length_plan((steps, c))
            self._planned_steps = steps
        out_len = self._plan[0]
        self._x_shape = (n, steps, c)
        k = self.kernel_size
        cols = self.buffer("cols", (n, 1, out_len, 1, k, c))
        conv_kernels.im2col(x.reshape(n, 1, steps, c), *self._geometry(), cols)
        self._cols = cols = cols.reshape(n * out_len, k * c)
        z = self.buffer("z", (n, out_len, self.filters))
        np.matmul(
            cols,
            self.kernel.value.reshape(k * c, self.filters),
            out=z.reshape(-1, self.filters),
        )
        if self.bias is not None:
            z += self.bias.value
        self._z = z
        self._y = None
        if self.activation is None or (training and self.fuse_output_activation):
            return z
        self._y = self.activation.forward(z, self.buffer("y", z.shape))
        return self._y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Write dL/dkernel and dL/dbias; return dL/dx (None if not needed)."""
        if self._y is not None and self.activation is not None:
            dy = self.activation.backward(dy, self._z, self._y, self.buffer("dz", dy.shape))
        n, steps, c = self._x_shape
        k, out_len = self.kernel_size, self._plan[0]
        dz = np.ascontiguousarray(dy).reshape(n * out_len, self.filters)
        if self.trainable:
            np.matmul(self._cols.T, dz, out=self.kernel.grad.reshape(k * c, self.filters))
            if self.bias is not None:
                np.add.reduce(dz, axis=0, out=self.bias.grad)
        if not self.input_grad_needed:
            return None
        dcols = self.buffer("dcols", (n, 1, out_len, 1, k, c))
        np.matmul(
            dz,
            self.kernel.value.reshape(k * c, self.filters).T,
            out=dcols.reshape(n * out_len, k * c),
        )
        dx = self.buffer("dx", (n, steps, c))
        conv_kernels.col2im(dcols, *self._geometry(), dx.reshape(n, 1, steps, c))
        return dx
