"""BatchNormalization and LayerNormalization: standardize, then scale and shift."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from attrs import define, field
from attrs.setters import NO_OP

from loopkit.errors import ShapeError
from loopkit.layers.base import Layer, Parameter
from loopkit.typing import FloatArray, Shape
from loopkit.validators import in_closed_range, positive

__all__ = ["BatchNormalization", "LayerNormalization"]


def _axis_or_axes(value: Any) -> int | tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in value)
    ):
        return tuple(int(a) for a in value)
    raise TypeError(
        f"got axis={value!r} of type {type(value).__name__}; expected an int such as -1 "
        "(the last axis) or a non-empty list of ints."
    )


def _check_int_axis(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{type(instance).__name__} got axis={value!r} of type {type(value).__name__}; "
            "expected an int such as -1 (the last axis, channels-last)."
        )


def _resolve_axes(
    layer: Layer, axes: tuple[int, ...], input_shape: Shape
) -> tuple[int, ...]:
    """Return ``axes`` as sorted non-negative indices into ``(batch, *input_shape)``."""
    ndim = len(input_shape) + 1
    full = (None, *input_shape)
    kind = type(layer).__name__
    if len(input_shape) < 1:
        raise ShapeError(
            f"{kind} layer {layer.name!r} needs samples with at least one axis, got "
            f"inputs of shape {full}; expected (batch, features) or (batch, ..., "
            "channels). Pass input_shape=(features,)."
        )
    resolved = []
    for a in axes:
        if not -ndim <= a < ndim or a % ndim == 0:
            raise ShapeError(
                f"{kind} layer {layer.name!r} got axis={a} for inputs of shape {full}; "
                f"expected a non-batch axis: 1..{ndim - 1} or -{ndim - 1}..-1. "
                "Use axis=-1 for channels-last inputs."
            )
        resolved.append(a % ndim)
    if len(set(resolved)) != len(resolved):
        raise ShapeError(
            f"{kind} layer {layer.name!r} got axis={axes}, which names an axis of the "
            f"inputs {full} twice; list each axis once."
        )
    return tuple(sorted(resolved))


def _add_gamma_and_beta(
    layer: BatchNormalization | LayerNormalization, shape: Shape
) -> tuple[Parameter | None, Parameter | None]:
    """Add the ``gamma`` (if ``scale``) and ``beta`` (if ``center``) weights."""
    gamma = beta = None
    if layer.scale:
        gamma = layer.add_weight(
            "gamma",
            shape,
            layer.gamma_initializer,
            regularizer=layer.gamma_regularizer,
            constraint=layer.gamma_constraint,
        )
    if layer.center:
        beta = layer.add_weight(
            "beta",
            shape,
            layer.beta_initializer,
            regularizer=layer.beta_regularizer,
            constraint=layer.beta_constraint,
        )
    return gamma, beta


def _scale_and_shift(
    xhat: FloatArray,
    gamma: Parameter | None,
    beta: Parameter | None,
    bshape: Shape,
    y: FloatArray,
) -> FloatArray:
    """Write ``gamma * xhat + beta`` into ``y`` and return it; absent terms are skipped."""
    if gamma is not None:
        np.multiply(xhat, gamma.value.reshape(bshape), out=y)
    else:
        np.copyto(y, xhat)
    if beta is not None:
        y += beta.value.reshape(bshape)
    return y


@define(eq=False, slots=False)
class BatchNormalization(Layer):
    """Normalize each feature with batch statistics while training (Ioffe & Szegedy, 2015).

    Training: ``y = gamma * (x - mean_B) / sqrt(var_B + epsilon) + beta`` with the
    mean and biased variance over every axis but ``axis``, and the moving statistics
    updated in place: ``moving = moving * momentum + batch_stat * (1 - momentum)``.
    Inference uses ``moving_mean`` and ``moving_variance`` instead.

    A frozen layer (``trainable=False``) always runs in inference mode, even in
    ``fit`` with ``training=True``: it uses the moving statistics and leaves them
    unchanged. This is Keras 3's rule for fine-tuning with frozen batch norm.

    ``x`` is ``(batch, features)`` or ``(batch, ..., channels)`` (NHWC for images).

    Args:
        axis: The feature axis of the input, batch included (-1: channels-last).
        momentum: Weight of the old value in the moving-statistics update.
        epsilon: Added to the variance before the square root.
        center: Whether to add the learned offset ``beta``.
        scale: Whether to multiply by the learned scale ``gamma``.
        beta_initializer: Initializer for ``beta``.
        gamma_initializer: Initializer for ``gamma``.
        moving_mean_initializer: Initializer for ``moving_mean``.
        moving_variance_initializer: Initializer for ``moving_variance``.
        beta_regularizer: Penalty on ``beta`` added to the loss.
        gamma_regularizer: Penalty on ``gamma`` added to the loss.
        beta_constraint: Projection of ``beta`` after each step.
        gamma_constraint: Projection of ``gamma`` after each step.
    """

    axis: int = field(default=-1, validator=_check_int_axis)
    momentum: float = field(default=0.99, validator=in_closed_range(0.0, 1.0))
    epsilon: float = field(default=1e-3, validator=positive)
    center: bool = True
    scale: bool = True
    beta_initializer: Any = "zeros"
    gamma_initializer: Any = "ones"
    moving_mean_initializer: Any = "zeros"
    moving_variance_initializer: Any = "ones"
    beta_regularizer: Any = None
    gamma_regularizer: Any = None
    beta_constraint: Any = None
    gamma_constraint: Any = None
    gamma: Parameter | None = field(init=False, default=None, repr=False)
    beta: Parameter | None = field(init=False, default=None, repr=False)
    moving_mean: Parameter = field(init=False, repr=False)
    moving_variance: Parameter = field(init=False, repr=False)
    _reduce: tuple[int, ...] = field(init=False, default=(), repr=False)
    _bshape: Shape = field(init=False, default=(), repr=False)
    _x: FloatArray = field(init=False, repr=False, on_setattr=NO_OP)
    _batch_stats: bool = field(init=False, default=False, repr=False)

    def build(self, input_shape: Shape) -> None:
        (axis,) = _resolve_axes(self, (self.axis,), input_shape)
        ndim = len(input_shape) + 1
        features = input_shape[axis - 1]
        self._reduce = tuple(a for a in range(ndim) if a != axis)
        self._bshape = tuple(features if a == axis else 1 for a in range(ndim))
        shape = (features,)
        self.gamma, self.beta = _add_gamma_and_beta(self, shape)
        self.moving_mean = self.add_weight(
            "moving_mean", shape, self.moving_mean_initializer, trainable=False
        )
        self.moving_variance = self.add_weight(
            "moving_variance", shape, self.moving_variance_initializer, trainable=False
        )

    def _update_moving(self, moving: FloatArray, batch_stat: FloatArray) -> None:
        # moving*m + batch*(1-m) == moving + (batch - moving)*(1-m), written in place
        step = self.buffer("step", moving.shape)
        np.subtract(batch_stat.reshape(moving.shape), moving, out=step)
        step *= 1.0 - self.momentum
        moving += step

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return the normalized, scaled and shifted ``x`` in a layer-owned buffer."""
        self._x = x
        self._batch_stats = bool(training) and self.trainable
        bshape, red = self._bshape, self._reduce
        y = self.buffer("y", x.shape)
        if not self._batch_stats:
            # y = x * a + b with a = gamma / sqrt(moving_var + eps), b = beta - mean * a
            a, b = self.buffer("a", bshape), self.buffer("b", bshape)
            np.add(self.moving_variance.value.reshape(bshape), self.epsilon, out=a)
            np.sqrt(a, out=a)
            np.reciprocal(a, out=a)
            if self.gamma is not None:
                a *= self.gamma.value.reshape(bshape)
            np.multiply(self.moving_mean.value.reshape(bshape), a, out=b)
            np.negative(b, out=b)
            if self.beta is not None:
                b += self.beta.value.reshape(bshape)
            np.multiply(x, a, out=y)
            y += b
            return y
        mean, var = self.buffer("mean", bshape), self.buffer("var", bshape)
        np.mean(x, axis=red, keepdims=True, out=mean)
        xhat = np.subtract(x, mean, out=self.buffer("xhat", x.shape))
        np.mean(np.square(xhat, out=y), axis=red, keepdims=True, out=var)  # biased
        self._update_moving(self.moving_mean.value, mean)
        self._update_moving(self.moving_variance.value, var)
        inv = self.buffer("inv", bshape)
        np.add(var, self.epsilon, out=inv)
        np.sqrt(inv, out=inv)
        np.reciprocal(inv, out=inv)
        xhat *= inv
        return _scale_and_shift(xhat, self.gamma, self.beta, bshape, y)

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Write dL/dgamma and dL/dbeta; return dL/dx for the mode of the last forward.

        Training mode uses the batch-norm backward of Ioffe & Szegedy (2015), section 3,
        simplified to ``dx = gamma * inv_std * (dy - mean(dy) - xhat *
        mean(dy * xhat))`` with means over the reduced axes. Inference mode is affine.
        """
        bshape, red = self._bshape, self._reduce
        if not self._batch_stats:
            return self._backward_inference(dy)
        xhat = self._buffers["xhat"][: len(dy)]
        tmp = np.multiply(dy, xhat, out=self.buffer("dx", dy.shape))
        dgamma = np.sum(tmp, axis=red, keepdims=True, out=self.buffer("dgamma", bshape))
        dbeta = np.sum(dy, axis=red, keepdims=True, out=self.buffer("dbeta", bshape))
        if self.trainable:
            if self.gamma is not None:
                np.copyto(self.gamma.grad, dgamma.reshape(-1))
            if self.beta is not None:
                np.copyto(self.beta.grad, dbeta.reshape(-1))
        if not self.input_grad_needed:
            return None
        count = dy.size // dgamma.size  # elements per feature
        dx = np.multiply(xhat, dgamma, out=tmp)
        dx += dbeta
        dx *= -1.0 / count
        dx += dy
        dx *= self._buffers["inv"]
        if self.gamma is not None:
            dx *= self.gamma.value.reshape(bshape)
        return dx

    def _backward_inference(self, dy: FloatArray) -> FloatArray | None:
        bshape, red = self._bshape, self._reduce
        if self.trainable and self.beta is not None:
            np.sum(dy, axis=red, keepdims=True, out=self.beta.grad.reshape(bshape))
        if self.trainable and self.gamma is not None:
            # xhat = (x - moving_mean) / sqrt(moving_var + eps), rebuilt only when needed
            inv = self.buffer("inv", bshape)
            np.add(self.moving_variance.value.reshape(bshape), self.epsilon, out=inv)
            np.sqrt(inv, out=inv)
            np.reciprocal(inv, out=inv)
            xhat = self.buffer("xhat", dy.shape)
            np.subtract(self._x, self.moving_mean.value.reshape(bshape), out=xhat)
            xhat *= inv
            xhat *= dy
            np.sum(xhat, axis=red, keepdims=True, out=self.gamma.grad.reshape(bshape))
        if not self.input_grad_needed:
            return None
        return np.multiply(dy, self._buffers["a"], out=self.buffer("dx", dy.shape))


@define(eq=False, slots=False)
class LayerNormalization(Layer):
    """Normalize each sample over ``axis`` (Ba, Kiros & Hinton, 2016), then scale and shift.

    ``y = gamma * (x - mean) / sqrt(var + epsilon) + beta`` with the mean and biased
    variance of each sample over ``axis``; the same in training and inference.

    ``x`` is ``(batch, ..., features)``; ``gamma`` and ``beta`` have the shape of the
    normalized axes, ``(features,)`` by default.

    Args:
        axis: Axis or list of axes to normalize over, batch included (-1: the last).
        epsilon: Added to the variance before the square root.
        center: Whether to add the learned offset ``beta``.
        scale: Whether to multiply by the learned scale ``gamma``.
        beta_initializer: Initializer for ``beta``.
        gamma_initializer: Initializer for ``gamma``.
        beta_regularizer: Penalty on ``beta`` added to the loss.
        gamma_regularizer: Penalty on ``gamma`` added to the loss.
        beta_constraint: Projection of ``beta`` after each step.
        gamma_constraint: Projection of ``gamma`` after each step.
    """

    axis: int | tuple[int, ...] = field(default=-1, converter=_axis_or_axes)
    epsilon: float = field(default=1e-3, validator=positive)
    center: bool = True
    scale: bool = True
    beta_initializer: Any = "zeros"
    gamma_initializer: Any = "ones"
    beta_regularizer: Any = None
    gamma_regularizer: Any = None
    beta_constraint: Any = None
    gamma_constraint: Any = None
    gamma: Parameter | None = field(init=False, default=None, repr=False)
    beta: Parameter | None = field(init=False, default=None, repr=False)
    _axes: tuple[int, ...] = field(init=False, default=(), repr=False)
    _others: tuple[int, ...] = field(init=False, default=(), repr=False)
    _bshape: Shape = field(init=False, default=(), repr=False)

    def build(self, input_shape: Shape) -> None:
        axes = (self.axis,) if isinstance(self.axis, int) else self.axis
        self._axes = _resolve_axes(self, axes, input_shape)
        full = (1, *input_shape)
        self._others = tuple(a for a in range(len(full)) if a not in self._axes)
        self._bshape = tuple(d if a in self._axes else 1 for a, d in enumerate(full))
        shape = tuple(full[a] for a in self._axes)
        self.gamma, self.beta = _add_gamma_and_beta(self, shape)

    def _stat_shape(self, x_shape: Shape) -> Shape:
        return tuple(1 if a in self._axes else d for a, d in enumerate(x_shape))

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return the normalized, scaled and shifted ``x`` in a layer-owned buffer."""
        axes, bshape, sshape = self._axes, self._bshape, self._stat_shape(x.shape)
        y = self.buffer("y", x.shape)
        mean, inv = self.buffer("mean", sshape), self.buffer("inv", sshape)
        np.mean(x, axis=axes, keepdims=True, out=mean)
        xhat = np.subtract(x, mean, out=self.buffer("xhat", x.shape))
        np.mean(np.square(xhat, out=y), axis=axes, keepdims=True, out=inv)  # biased var
        inv += self.epsilon
        np.sqrt(inv, out=inv)
        np.reciprocal(inv, out=inv)
        xhat *= inv
        return _scale_and_shift(xhat, self.gamma, self.beta, bshape, y)

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Write dL/dgamma and dL/dbeta; return dL/dx.

        With ``g = gamma * dy`` and means over the normalized axes,
        ``dx = inv_std * (g - mean(g) - xhat * mean(g * xhat))``.
        """
        axes, bshape, sshape = self._axes, self._bshape, self._stat_shape(dy.shape)
        n = len(dy)
        xhat = self._buffers["xhat"][:n]
        tmp = self.buffer("tmp", dy.shape)
        if self.trainable:
            if self.gamma is not None:
                np.multiply(dy, xhat, out=tmp)
                np.sum(
                    tmp,
                    axis=self._others,
                    keepdims=True,
                    out=self.gamma.grad.reshape(bshape),
                )
            if self.beta is not None:
                np.sum(
                    dy, axis=self._others, keepdims=True, out=self.beta.grad.reshape(bshape)
                )
        if not self.input_grad_needed:
            return None
        g = dy
        if self.gamma is not None:
            g = np.multiply(
                dy, self.gamma.value.reshape(bshape), out=self.buffer("g", dy.shape)
            )
        mean_g = np.mean(g, axis=axes, keepdims=True, out=self.buffer("mean_g", sshape))
        np.multiply(g, xhat, out=tmp)
        mean_gx = np.mean(tmp, axis=axes, keepdims=True, out=self.buffer("mean_gx", sshape))
        dx = np.multiply(xhat, mean_gx, out=self.buffer("dx", dy.shape))
        dx += mean_g
        np.subtract(g, dx, out=dx)
        dx *= self._buffers["inv"][:n]
        return dx
