"""Dense and Activation: the matrix-product layer and the stand-alone activation."""

from __future__ import annotations

from typing import Any

import numpy as np
from attrs import define, field

from loopkit import activations as _activations
from loopkit.errors import ShapeError
from loopkit.layers.base import Layer, Parameter
from loopkit.typing import FloatArray, Shape
from loopkit.validators import positive_int

__all__ = ["Activation", "Dense"]


def _activation_or_none(identifier: Any) -> _activations.ActivationFunction | None:
    fn = _activations.get(identifier)
    return None if fn is None or fn.name == "linear" else fn


def _backward_through_activation(layer: Any, dy: FloatArray) -> tuple[FloatArray, Any]:
    """Return dL/d(pre-activation) of a Dense-like layer and the bias gradient to write.

    ``layer`` has ``activation``, ``bias``, the pre-activation ``_z`` and its output in
    the ``"y"`` buffer. Where the activation can, its backward writes the bias
    gradient in the same pass; the second value is then None, else the layer's
    ``bias.grad`` still to fill (None too without a trainable bias).
    """
    bias_grad = layer.bias.grad if layer.trainable and layer.bias is not None else None
    if layer.activation is None or layer.fuse_output_activation:
        return dy, bias_grad
    y, dz = layer._buffers["y"][: len(dy)], layer.buffer("dz", dy.shape)
    if bias_grad is None:
        return layer.activation.backward(dy, layer._z, y, dz), None
    return layer.activation.backward_with_bias_grad(dy, layer._z, y, dz, bias_grad), None


@define(eq=False, slots=False)
class Dense(Layer):
    """Fully connected layer: ``y = activation(x @ kernel + bias)`` on the last axis.

    ``x`` is ``(batch, ..., in_features)``; leading axes are kept, as in Keras.

    Args:
        units: Number of outputs.
        activation: Name or ActivationFunction applied to the output; None is linear.
        use_bias: Whether to add a bias vector.
        kernel_initializer: Initializer name or object for the kernel.
        bias_initializer: Initializer name or object for the bias.
        kernel_regularizer: Penalty on the kernel added to the loss ("l1", "l2", ...).
    """

    units: int = field(validator=positive_int)
    activation: _activations.ActivationFunction | None = field(
        default=None, converter=_activation_or_none
    )
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    kernel: Parameter = field(init=False, repr=False)
    bias: Parameter | None = field(init=False, default=None, repr=False)
    _x: FloatArray = field(init=False, repr=False)
    _z: FloatArray = field(init=False, repr=False)

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) < 1:
            raise ShapeError(
                f"Dense layer {self.name!r} needs samples with at least one axis, got "
                f"input_shape={input_shape}. Pass input_shape=(features,)."
            )
        self.kernel = self.add_weight(
            "kernel",
            (input_shape[-1], self.units),
            self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.units)

    @property
    def output_activation(self) -> _activations.ActivationFunction | None:
        return self.activation

    @property
    def pre_activation(self) -> FloatArray:
        return self._z

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``activation(x @ kernel + bias)`` in a layer-owned buffer."""
        self._x = x  # kept by reference for backward
        z = self.buffer("z", (*x.shape[:-1], self.units))
        np.matmul(x, self.kernel.value, out=z)
        self._z = z
        if self.activation is None:
            if self.bias is not None:
                z += self.bias.value
            return z
        if training and self.fuse_output_activation:
            # The loss reads the logits; the model applies the activation only if a
            # metric needs the probabilities (Network.update_metrics).
            if self.bias is not None:
                z += self.bias.value
            return z
        y = self.buffer("y", z.shape)
        if self.bias is not None:  # one pass for both where the activation can fuse
            return self.activation.forward_with_bias(z, self.bias.value, y)
        return self.activation.forward(z, y)

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Write dL/dkernel and dL/dbias; return dL/dx."""
        dy, bias_grad = _backward_through_activation(self, dy)
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
class Activation(Layer):
    """Apply an activation function element-wise (``softmax`` on the last axis).

    Args:
        activation: Name (``"relu"``, ``"softmax"``, ...) or ActivationFunction.
    """

    activation: _activations.ActivationFunction = field(converter=_activations.get)
    _x: FloatArray = field(init=False, repr=False)
    _y: FloatArray = field(init=False, repr=False)

    @property
    def output_activation(self) -> _activations.ActivationFunction | None:
        return self.activation

    @property
    def pre_activation(self) -> FloatArray:
        return self._x

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        self._x = x
        if training and self.fuse_output_activation:
            return x  # logits for the fused loss; see Dense.forward
        self._y = self.activation.forward(x, self.buffer("y", x.shape))
        return self._y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        if not self.input_grad_needed:
            return None
        if self.fuse_output_activation:
            return dy
        return self.activation.backward(dy, self._x, self._y, self.buffer("dx", dy.shape))
