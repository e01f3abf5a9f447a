"""Preprocessing inside the model: Rescaling and Normalization (Keras's data layers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
from attrs import define, field

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.base import Layer, Parameter
from loopkit.typing import FloatArray, Shape
from loopkit.validators import boolean

__all__ = ["Normalization", "Rescaling"]

# Keras's backend.epsilon(): the smallest standard deviation Normalization divides by
_EPSILON = 1e-7


def _number_or_list(value: Any) -> Any:
    """Turn a number into a float and an array into nested lists (JSON in configs)."""
    if value is None or isinstance(value, (str, bytes, bool)):
        return value
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return value  # left for the validator to refuse with the value as given
    return float(array) if array.ndim == 0 else array.tolist()


def _numeric(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, (float, list)):
        return
    raise TypeError(
        f"{type(instance).__name__} got {attribute.name}={value!r} of type "
        f"{type(value).__name__}; expected a number, or an array of numbers that "
        f"broadcasts to the input's last axes, e.g. {attribute.name}=1 / 255."
    )


def _optional_numeric(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None:
        _numeric(instance, attribute, value)


def _broadcast_to_sample(layer: Layer, name: str, value: Any, input_shape: Shape) -> Any:
    """Return ``value`` as an array of the layer's dtype that broadcasts to a sample.

    Along an axis of any length (None) the value must have size 1.
    """
    array = np.asarray(value, dtype=layer.dtype)
    sample = tuple(1 if d is None else d for d in input_shape)
    try:
        fits = np.broadcast_shapes(sample, array.shape) == sample
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(
            f"{type(layer).__name__} layer {layer.name!r} got {name} of shape "
            f"{array.shape}, which does not broadcast to samples of shape "
            f"{tuple(input_shape)}. Pass a number, or an array shaped like the last "
            f"axes of a sample, e.g. ({input_shape[-1]},) for one value per channel."
        )
    return array


@define(eq=False, slots=False)
class Rescaling(Layer):
    """Rescale every input value: ``y = x * scale + offset``, in training and inference.

    ``scale=1 / 255`` maps pixels in ``[0, 255]`` to ``[0, 1]``;
    ``scale=1 / 127.5, offset=-1`` to ``[-1, 1]``. No weights.

    Args:
        scale: A number, or an array broadcasting to a sample (per channel).
        offset: A number, or an array broadcasting to a sample.
    """

    scale: Any = field(converter=_number_or_list, validator=_numeric)
    offset: Any = field(default=0.0, converter=_number_or_list, validator=_numeric)
    _scale: Any = field(init=False, default=None, repr=False)
    _offset: Any = field(init=False, default=None, repr=False)

    def build(self, input_shape: Shape) -> None:
        self._scale = _broadcast_to_sample(self, "scale", self.scale, input_shape)
        self._offset = _broadcast_to_sample(self, "offset", self.offset, input_shape)

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x * scale + offset`` in a layer-owned buffer."""
        y = self.buffer("y", x.shape)
        np.multiply(x, self._scale, out=y)
        y += self._offset
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx = ``dy * scale``."""
        if not self.input_grad_needed:
            return None
        dx = self.buffer("dx", dy.shape)
        np.multiply(dy, self._scale, out=dx)
        return dx


def _axes(value: Any) -> tuple[int, ...]:
    """Standardize ``axis`` as Keras does: None is ``()``, an int a 1-tuple."""
    if value is None:
        return ()
    items = (value,) if not isinstance(value, (list, tuple)) else tuple(value)
    if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in items):
        raise TypeError(
            f"Normalization got axis={value!r}; expected an int such as -1 (one mean "
            "and variance per feature of the last axis), a tuple of ints, or None "
            "(one mean and variance for all values)."
        )
    return tuple(int(a) for a in items)


def _batches_joined(data: Any) -> Any:
    """Return ``data``, or its batches joined on axis 0 when it is a list or iterator."""
    if isinstance(data, np.ndarray):
        return data
    is_batches = isinstance(data, (list, tuple)) and all(hasattr(b, "shape") for b in data)
    if not is_batches and not isinstance(data, Iterator):
        return data  # nested lists of numbers: one array
    batches = [np.asarray(b[0] if isinstance(b, tuple) else b) for b in data]
    if not batches:
        raise ConfigError(
            "Normalization.adapt() got no batches; pass the training inputs, e.g. "
            "layer.adapt(x_train)."
        )
    return np.concatenate(batches)


@define(eq=False, slots=False)
class Normalization(Layer):
    """Standardize inputs with a fixed mean and variance: ``y = (x - mean) / std``.

    ``std = max(sqrt(variance), 1e-7)`` (Keras's epsilon handling). The statistics
    come from ``mean=``/``variance=`` or from ``adapt(data)``, which computes them
    per index of ``axis`` over every other axis of ``data``, as Keras. Adapted
    statistics are the non-trainable weights ``mean``, ``variance`` and ``count``
    (the number of values each statistic was computed from); the optimizer never
    changes them. ``invert=True`` applies the inverse, ``y = mean + x * std``.

    Args:
        axis: The axis (batch included; -1 is the last) or tuple of axes that keep
            their own mean and variance; None for one scalar mean and variance.
        mean: The mean, a number or an array broadcasting to the kept axes
            (right-aligned); given together with ``variance``.
        variance: The variance, of ``mean``'s shape.
        invert: Apply the inverse transformation (turn normalized values back).
    """

    axis: tuple[int, ...] = field(default=-1, converter=_axes)
    mean: Any = field(default=None, converter=_number_or_list, validator=_optional_numeric)
    variance: Any = field(
        default=None, converter=_number_or_list, validator=_optional_numeric
    )
    invert: bool = field(default=False, validator=boolean)
    adapt_mean: Parameter | None = field(init=False, default=None, repr=False)
    adapt_variance: Parameter | None = field(init=False, default=None, repr=False)
    count: Parameter | None = field(init=False, default=None, repr=False)
    _keep: tuple[int, ...] = field(init=False, default=(), repr=False)
    _reduce: tuple[int, ...] = field(init=False, default=(), repr=False)
    _bshape: Shape = field(init=False, default=(), repr=False)
    _given: Any = field(init=False, default=None, repr=False)
    _adapted: Any = field(init=False, default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if (self.mean is None) != (self.variance is None):
            raise ConfigError(
                f"Normalization got mean={self.mean!r} and variance={self.variance!r}; "
                "pass both (the statistics to use) or neither (then call adapt(data) "
                "before fit or predict)."
            )
        if self.mean is not None:
            mshape, vshape = np.shape(self.mean), np.shape(self.variance)
            if mshape != vshape:
                raise ConfigError(
                    f"Normalization got mean of shape {mshape} and variance of shape "
                    f"{vshape}; pass them with the same shape."
                )
            if len(mshape) > len(self.axis):
                raise ConfigError(
                    f"Normalization got mean of shape {mshape} for axis={self.axis}: "
                    f"it may have at most {len(self.axis)} axes, one per kept axis."
                )
            if np.any(np.asarray(self.variance) < 0):
                raise ConfigError(
                    f"Normalization got variance={self.variance!r}; a variance is >= 0."
                )

    def build(self, input_shape: Shape) -> None:
        ndim = len(input_shape) + 1
        full = (None, *input_shape)
        keep = []
        for a in self.axis:
            if not -ndim <= a < ndim or a % ndim == 0:
                raise ShapeError(
                    f"Normalization layer {self.name!r} got axis={self.axis} for inputs "
                    f"of shape {full}; expected non-batch axes: 1..{ndim - 1} or "
                    f"-{ndim - 1}..-1 (or None for one mean and variance)."
                )
            keep.append(a % ndim)
        self._keep = tuple(sorted(set(keep)))
        self._reduce = tuple(d for d in range(ndim) if d not in self._keep)
        self._bshape = tuple(
            input_shape[d - 1] if d in self._keep else 1 for d in range(1, ndim)
        )
        stat_shape = tuple(input_shape[d - 1] for d in self._keep)
        if self.mean is not None:
            self._given = tuple(
                self._broadcast_given(v) for v in (self.mean, self.variance)
            )
            return
        self.adapt_mean = self.add_weight("mean", stat_shape, "zeros", trainable=False)
        self.adapt_variance = self.add_weight(
            "variance", stat_shape, "ones", trainable=False
        )
        self.count = self.add_weight("count", (), "zeros", trainable=False)
        if self._adapted is not None and self._adapted[0].shape == stat_shape:
            self._write_statistics(*self._adapted)  # a rebuild keeps what adapt found

    def _broadcast_given(self, value: Any) -> FloatArray:
        """Return a given statistic right-aligned to the kept axes, as a sample's shape."""
        array = np.asarray(value, dtype=self.dtype)
        expanded = [1] * len(self._bshape)
        for i in range(1, array.ndim + 1):
            expanded[self._keep[-i] - 1] = array.shape[-i]
        try:
            return np.broadcast_to(array.reshape(expanded), self._bshape).copy()
        except ValueError as err:
            raise ShapeError(
                f"Normalization layer {self.name!r} got mean/variance of shape "
                f"{array.shape}, which does not broadcast to the kept axes "
                f"{tuple(d for d in self._bshape if d != 1) or ()} of axis={self.axis}. "
                "Pass one value per index of the kept axes, or a number."
            ) from err

    def _write_statistics(self, mean: Any, variance: Any, count: float) -> None:
        assert self.adapt_mean is not None and self.adapt_variance is not None
        assert self.count is not None
        self.adapt_mean.value[...] = mean
        self.adapt_variance.value[...] = variance
        self.count.value[...] = count

    def adapt(self, data: npt.ArrayLike) -> None:
        """Compute the mean and variance of ``data`` over every axis but ``axis``.

        ``data`` is a NumPy array (or array-like) of samples, ``(n, *sample_shape)``,
        or, as in Keras, a list or iterator of such batches (an ``(x, y)`` tuple
        gives its ``x``). The statistics are ``np.mean``/``np.var`` (biased) of it,
        as Keras's. Builds the layer for ``data``'s sample shape if needed. In a
        built model the next ``fit``/``predict`` uses the new statistics.

        Raises:
            ConfigError: the layer was given ``mean``/``variance``.
            ShapeError: ``data`` has another size along a kept axis than the layer
                was built for.
        """
        if self.mean is not None:
            raise ConfigError(
                f"Normalization layer {self.name!r} was given mean= and variance=; "
                "adapt() would replace them. Make the layer without mean and variance "
                "to adapt it."
            )
        array = np.asarray(_batches_joined(data), dtype=np.float64)
        if array.ndim < 2:
            raise ShapeError(
                f"Normalization.adapt() got data of shape {array.shape}; expected a "
                "batch of samples (n, *sample_shape), e.g. (n, features). Reshape a "
                "single column with data.reshape(-1, 1)."
            )
        if not self.built:
            self.setup(array.shape[1:])
        built = self.built_input_shape
        assert built is not None
        if any(array.shape[d] != built[d - 1] for d in self._keep):
            raise ShapeError(
                f"Normalization layer {self.name!r} was built for samples of shape "
                f"{built}; adapt() got data of shape {array.shape}, of another size "
                f"along axis={self.axis}. Pass data shaped (n, *{built})."
            )
        mean = np.mean(array, axis=self._reduce)
        variance = np.var(array, axis=self._reduce)
        count = float(array.size // max(mean.size, 1))
        self._adapted = (mean, variance, count)
        self._write_statistics(mean, variance, count)

    def _statistics(self) -> tuple[FloatArray, FloatArray]:
        """Return the mean and ``max(sqrt(variance), epsilon)`` as a sample's shape."""
        if self._given is not None:
            mean, variance = self._given
        else:
            assert self.adapt_mean is not None and self.adapt_variance is not None
            assert self.count is not None
            mean = self.adapt_mean.value.reshape(self._bshape)
            variance = self.adapt_variance.value.reshape(self._bshape)
            if not self.count.value and not mean.any() and np.all(variance == 1):
                raise ConfigError(
                    f"Normalization layer {self.name!r} has no statistics: call "
                    "layer.adapt(x_train) before fit/evaluate/predict, or make it with "
                    "Normalization(mean=..., variance=...)."
                )
        std = np.sqrt(variance, out=self.buffer("std", self._bshape))
        np.maximum(std, _EPSILON, out=std)
        return mean, std

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``(x - mean) / std`` (``mean + x * std`` with ``invert``)."""
        mean, std = self._statistics()
        y = self.buffer("y", x.shape)
        if self.invert:
            np.multiply(x, std, out=y)
            y += mean
        else:
            np.subtract(x, mean, out=y)
            y /= std
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx = ``dy / std`` (``dy * std`` with ``invert``)."""
        if not self.input_grad_needed:
            return None
        std, dx = self._buffers["std"], self.buffer("dx", dy.shape)
        return (np.multiply if self.invert else np.divide)(dy, std, out=dx)
