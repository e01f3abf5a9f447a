"""Keras's activation layers: ReLU, LeakyReLU, ELU, Softmax and PReLU."""

from __future__ import annotations

import warnings
from typing import Any

import attrs
import numpy as np
from attrs import define, field
from attrs.setters import NO_OP

from loopkit import activations as _activations
from loopkit.errors import ShapeError
from loopkit.layers.base import Parameter
from loopkit.layers.core import Activation
from loopkit.typing import FloatArray, Shape
from loopkit.validators import non_negative

__all__ = ["ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax"]


@define(eq=False, slots=False)
class _ActivationLayer(Activation):
    """An ``Activation`` whose function is fixed by the layer's own arguments.

    A subclass implements ``make_activation``; its constructor arguments are the
    function's, so ``get_config`` gives Keras's config (``{"max_value": ...}``, not
    ``{"activation": ...}``). Masks pass through, as through ``Activation``.
    """

    activation: _activations.ActivationFunction = field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.activation = self.make_activation()

    def make_activation(self) -> _activations.ActivationFunction:
        """Return the activation function the layer applies."""
        raise NotImplementedError


@define(eq=False, slots=False)
class ReLU(_ActivationLayer):
    """Rectified linear unit layer, as Keras's ``layers.ReLU``.

    ``f(x) = min(x, max_value)`` for ``x > threshold``, ``negative_slope * (x -
    threshold)`` otherwise; ``max(x, 0)`` with the defaults.

    Args:
        max_value: Largest output, >= 0; None for no limit.
        negative_slope: Slope below the threshold, >= 0.
        threshold: Inputs at or below it get the ``negative_slope`` piece, >= 0.
    """

    max_value: float | None = field(
        default=None, validator=attrs.validators.optional(non_negative)
    )
    negative_slope: float = field(default=0.0, validator=non_negative)
    threshold: float = field(default=0.0, validator=non_negative)

    def make_activation(self) -> _activations.ActivationFunction:
        return _activations.ReLU(
            negative_slope=self.negative_slope,
            max_value=self.max_value,
            threshold=self.threshold,
        )


@define(eq=False, slots=False, init=False)
class LeakyReLU(_ActivationLayer):
    """``x`` for ``x >= 0``, ``negative_slope * x`` below, as Keras's ``layers.LeakyReLU``.

    Keras 2's ``alpha=`` is taken for ``negative_slope`` with Keras 3's deprecation
    warning.

    Args:
        negative_slope: Slope for negative inputs, >= 0 (Keras 3's layer default 0.3;
            the ``leaky_relu`` activation's is 0.2).
    """

    negative_slope: float = field(default=0.3, validator=non_negative)

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any) -> None:
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn(
                "Argument `alpha` is deprecated. Use `negative_slope` instead.",
                UserWarning,
                stacklevel=2,
            )
        self.__attrs_init__(negative_slope, **kwargs)

    def make_activation(self) -> _activations.ActivationFunction:
        return _activations.LeakyReLU(negative_slope=self.negative_slope)


@define(eq=False, slots=False)
class ELU(_ActivationLayer):
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise.

    Args:
        alpha: Scale of the negative part, >= 0.
    """

    alpha: float = field(default=1.0, validator=non_negative)

    def make_activation(self) -> _activations.ActivationFunction:
        return _activations.ELU(alpha=self.alpha)


@define(eq=False, slots=False)
class Softmax(_ActivationLayer):
    """``exp(x) / sum(exp(x))`` along ``axis``, as Keras's ``layers.Softmax``.

    A mask passes through to the layers after it, unchanged; the layer itself does
    not take one (Keras's ``mask=`` call argument, of the input's full shape, is not
    supported: use ``MultiHeadAttention``'s or ``Attention``'s masks).

    Args:
        axis: The axis that sums to 1, or a tuple of axes that sum to 1 together.
    """

    axis: int | tuple[int, ...] = field(default=-1, converter=_activations.smooth.axes)

    def make_activation(self) -> _activations.ActivationFunction:
        return _activations.Softmax(axis=self.axis)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["axis"] = list(self.axis) if isinstance(self.axis, tuple) else self.axis
        return config


def _shared_axes(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    items = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in items):
        raise TypeError(
            f"PReLU got shared_axes={value!r}; expected an int or a list of ints, the "
            "input axes (1 = the first after the batch axis) that share one alpha."
        )
    return tuple(int(a) for a in items)


@define(eq=False, slots=False)
class PReLU(Activation):
    """Parametric ReLU, ``max(x, 0) + alpha * min(x, 0)`` with a learned ``alpha``.

    ``alpha`` has the sample's shape, except along ``shared_axes`` (size 1 there), as
    in Keras: ``shared_axes=[1]`` on ``(batch, steps, channels)`` learns one slope per
    channel.

    Args:
        alpha_initializer: Initializer of ``alpha`` (zeros: a ReLU at first).
        alpha_regularizer: Penalty on ``alpha`` added to the loss.
        alpha_constraint: Projection of ``alpha`` after each step.
        shared_axes: Input axes (1-based, the batch axis is 0) sharing one ``alpha``.
    """

    activation: Any = field(init=False, default=None)
    alpha_initializer: Any = "zeros"
    alpha_regularizer: Any = None
    alpha_constraint: Any = None
    shared_axes: tuple[int, ...] | None = field(default=None, converter=_shared_axes)
    alpha: Parameter = field(init=False, repr=False)
    _x: FloatArray = field(init=False, repr=False, on_setattr=NO_OP)

    def build(self, input_shape: Shape) -> None:
        shape = list(input_shape)
        for axis in self.shared_axes or ():
            if not 1 <= axis <= len(shape):
                raise ShapeError(
                    f"PReLU layer {self.name!r} got shared_axes="
                    f"{list(self.shared_axes or ())} for samples of shape "
                    f"{tuple(input_shape)}; each axis must be in "
                    f"1..{len(shape)} (1 = the first axis after the batch axis)."
                )
            shape[axis - 1] = 1
        self.alpha = self.add_weight(
            "alpha",
            tuple(shape),
            self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``max(x, 0) + alpha * min(x, 0)``."""
        object.__setattr__(self, "_x", x)
        y = self.buffer("y", x.shape)
        np.minimum(x, 0.0, out=y)
        y *= self.alpha.value
        y += np.maximum(x, 0.0)
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Write dL/dalpha (summed over the batch and shared axes); return dL/dx."""
        x = self._x
        negative = x < 0.0
        if self.trainable:
            per_unit = np.where(negative, dy * x, 0.0)
            summed = per_unit.sum(axis=0)
            for axis in self.shared_axes or ():
                summed = summed.sum(axis=axis - 1, keepdims=True)
            self.alpha.grad[...] = summed
        if not self.input_grad_needed:
            return None
        slope = np.where(negative, self.alpha.value, 1.0)
        return np.multiply(dy, slope, out=self.buffer("dx", dy.shape))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self.shared_axes is not None:
            config["shared_axes"] = list(self.shared_axes)
        return config
