"""SeparableConv1D: a depthwise then a pointwise convolution over sequences, as Keras's."""

from __future__ import annotations

from typing import Any, Literal

from attrs import define, field

from loopkit import activations as _activations
from loopkit.layers._geometry import channels_last_only, lower_if_str
from loopkit.layers.base import activation_or_none
from loopkit.layers.convolutional1d import plan_windows, single_int
from loopkit.layers.convolutional_separable import SeparableCore
from loopkit.typing import FloatArray, Shape
from loopkit.validators import one_of, positive_int

__all__ = ["SeparableConv1D"]


@define(eq=False, slots=False)
class SeparableConv1D(SeparableCore):
    """Depthwise-separable 1-D convolution over ``(batch, steps, channels)`` sequences.

    ``d[n, t, c*M + m] = sum_a xp[n, t*stride + a*dilation, c] * depthwise_kernel[a,
    c, m]`` (``M`` the depth multiplier, ``xp`` the zero-padded input), then ``y =
    activation(d @ pointwise_kernel + bias)``, with Keras's weights
    ``depthwise_kernel (kernel_size, in_channels, M)``, ``pointwise_kernel (1,
    in_channels*M, filters)`` and ``bias (filters,)``. SeparableConv2D's
    computation on a sequence seen as an image of height 1. A sequence axis of any
    length (``Input(shape=(None, channels))``) gives outputs of any length.

    Unlike Keras, ``strides`` and ``dilation_rate`` greater than 1 may be combined.

    Args:
        filters: Number of output channels.
        kernel_size: Depthwise window length (an int or a one-element tuple).
        strides: Step between windows.
        padding: ``"valid"`` or ``"same"`` (output length ``ceil(steps / strides)``).
        data_format: None or ``"channels_last"``; loopkit is channels-last only.
        dilation_rate: Spacing between depthwise kernel taps.
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
    kernel_size: int = field(converter=single_int, validator=positive_int)
    strides: int = field(default=1, converter=single_int, validator=positive_int)
    padding: Literal["valid", "same"] = field(
        default="valid", converter=lower_if_str, validator=one_of("valid", "same")
    )
    data_format: str | None = field(default=None, validator=channels_last_only)
    dilation_rate: int = field(default=1, converter=single_int, validator=positive_int)
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
    _plan: tuple[int, int, int] = field(init=False, repr=False)
    _planned_steps: int | None = field(init=False, default=None, repr=False)
    """The length ``_plan`` is for (None until a batch of a None-length build)."""

    def _length_plan(self, input_shape: Shape) -> tuple[int, int, int]:
        return plan_windows(self, input_shape, "padding='same'")

    def build(self, input_shape: Shape) -> None:
        self._plan = self._length_plan(input_shape)
        self._planned_steps = input_shape[0]
        channels = int(input_shape[1])
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel",
            (self.kernel_size, channels, self.depth_multiplier),
            self.depthwise_initializer,
            regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint,
        )
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel",
            (1, channels * self.depth_multiplier, self.filters),
            self.pointwise_initializer,
            regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint,
        )
        self.bias = self.add_bias(self.filters)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (self._length_plan(input_shape)[0], self.filters)

    def compute_mask(self, x: FloatArray, mask: FloatArray | None = None) -> None:
        """Return None: the steps of the output are not the input's (as in Keras)."""
        return None

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``activation(pointwise(depthwise(x)) + bias)`` in a layer buffer.

        Args:
            x: ``(batch, steps, channels)`` sequences.
            training: In training with ``fuse_output_activation`` set, the
                pre-activation is returned (the loss reads the logits).

        Returns:
            ``(batch, out_steps, filters)``, valid until the next call.
        """
        n, steps, c = x.shape
        if steps != self._planned_steps:  # built for any length: this batch's plan
            self._plan = self._length_plan((steps, c))
            self._planned_steps = steps
        out_len, before, _ = self._plan
        z = self.separable_forward(
            x.reshape(n, 1, steps, c),
            (1, self.kernel_size),
            (1, self.strides),
            (1, self.dilation_rate),
            (0, before),
            (1, out_len),
        )
        return self.activate(z.reshape(n, out_len, self.filters), training)

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Write the kernels' and the bias's gradients; return dL/dx (None if unneeded).

        Args:
            dy: ``(batch, out_steps, filters)``, dL/d(output), or dL/d(pre-activation)
                when ``fuse_output_activation`` is set.
        """
        dy, bias_grad = self.backward_activation(dy)
        dx = self.separable_backward(dy, bias_grad)
        return None if dx is None else dx.reshape(self._x_shape[0], -1, self._x_shape[-1])
