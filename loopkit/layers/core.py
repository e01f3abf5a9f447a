"""Dense, Activation and Identity: the matrix product, the activation, the pass-through."""

from __future__ import annotations

from typing import Any

import numpy as np
from attrs import define, field
from attrs.setters import NO_OP

from loopkit import activations as _activations
from loopkit.errors import ShapeError
from loopkit.layers.base import ActivatedLayer, Layer, Parameter, activation_or_none
from loopkit.typing import FloatArray, Shape
from loopkit.validators import positive_int

__all__ = ["Activation", "Dense", "Identity"]


@define(eq=False, slots=False)
class Dense(ActivatedLayer):
    """Fully connected layer: ``y = activation(x @ kernel + bias)`` on the last axis.

    ``x`` is ``(batch, ..., in_features)``; leading axes are kept, as in Keras.

    Args:
        units: Number of outputs.
        activation: Name or ActivationFunction applied to the output; None is linear.
        use_bias: Whether to add a bias vector.
        kernel_initializer: Initializer name or object for the kernel.
        bias_initializer: Initializer name or object for the bias.
        kernel_regularizer: Penalty on the kernel added to the loss ("l1", "l2", ...).
        bias_regularizer: Penalty on the bias added to the loss.
        kernel_constraint: Projection of the kernel after each step ("max_norm", ...);
            keyword-only.
        bias_constraint: Projection of the bias after each step; keyword-only.
    """

    units: int = field(validator=positive_int)
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
    _x: FloatArray = field(init=False, repr=False, on_setattr=NO_OP)

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) < 1:
            raise ShapeError(
                f"Dense layer {self.name!r} needs samples with at least one axis, got "
                f"input_shape={input_shape}. Pass input_shape=(features,)."
            )
        self.kernel = self.add_kernel_and_bias((input_shape[-1], self.units))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.units)

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``activation(x @ kernel + bias)`` in a layer-owned buffer."""
        object.__setattr__(self, "_x", x)  # for backward; per step: skips attrs' hook
        z = self.buffer("z", (*x.shape[:-1], self.units))
        np.matmul(x, self.kernel.value, out=z)
        return self.activate(z, training)

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Write dL/dkernel and dL/dbias; return dL/dx."""
        dy, bias_grad = self.backward_activation(dy)
        x = self._x
        if self.trainable:
            x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, self.units)
            np.matmul(x2.T, dy2, out=self.kernel.grad)  # overwrite, not accumulate
            if bias_grad is not None:
                np.add.reduce(dy2, axis=0, out=bias_grad)
        if not self.input_grad_needed:
            return None
        return np.matmul(dy, self.kernel.value.T, out=self.buffer("dx", x.shape))


@define(eq=False, slots=False)
class Activation(ActivatedLayer):
    """Apply an activation function element-wise (``softmax`` on the last axis).

    Args:
        activation: Name (``"relu"``, ``"softmax"``, ...) or ActivationFunction.
    """

    activation: _activations.ActivationFunction = field(converter=_activations.get)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self.activation.output_shape(input_shape)

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        return self.activate(x, training)

    def backward(self, dy: FloatArray) -> FloatArray | None:
        if not self.input_grad_needed:
            return None
        return self.backward_activation(dy)[0]


@define(eq=False, slots=False)
class Identity(Layer):
    """Return the input unchanged, as Keras's ``Identity`` (a placeholder in a stack).

    A mask passes through.
    """

    supports_masking = True
    """A mask passes through (Keras's ``supports_masking``)."""

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x``."""
        return x

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return ``dy``."""
        return dy if self.input_grad_needed else None
