"""Dropout, spatial dropout and Gaussian noise: random in training, the identity after."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers._geometry import channels_last_only, check_image_shape
from loopkit.layers.base import Layer
from loopkit.typing import FloatArray, Shape
from loopkit.validators import in_closed_range, in_half_open_range, non_negative

__all__ = [
    "Dropout",
    "GaussianDropout",
    "GaussianNoise",
    "SpatialDropout1D",
    "SpatialDropout2D",
]


def _noise_shape(value: Any) -> tuple[int | None, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(
            f"Dropout got noise_shape={value!r} of type {type(value).__name__}; expected "
            "a tuple with one entry per input axis, batch included, e.g. (None, 1, 64)."
        )
    entries = tuple(value)
    bad = [d for d in entries if d is not None and not _positive_int(d)]
    if bad or not entries:
        raise ConfigError(
            f"Dropout got noise_shape={value!r}; expected a non-empty tuple whose entries "
            "are None or ints > 0, one per input axis, batch included, e.g. (None, 1, 64)."
        )
    return tuple(None if d is None else int(d) for d in entries)


def _positive_int(value: Any) -> bool:
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    return is_int and value > 0


def _check_seed(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"Dropout got seed={value!r} of type {type(value).__name__}; expected a "
            "non-negative int such as 42, or None to draw masks from the model's generator."
        )
    if value < 0:
        raise ConfigError(
            f"Dropout got seed={value!r}; expected a non-negative int such as 42, or None."
        )


@define(eq=False, slots=False)
class Dropout(Layer):
    """Zero each input unit with probability ``rate`` during training (inverted dropout).

    Kept units are scaled by ``1 / (1 - rate)`` so the expected output equals the
    input, and inference (``training=False``) is the identity (Srivastava et al.,
    2014, with the scaling moved to training time as in Keras). Masks come from the
    layer's ``rng`` (the model's generator, so runs are reproducible and the state is
    checkpointed with it) unless ``seed`` is given.

    ``x`` is ``(batch, ...)`` of any rank.

    Args:
        rate: Fraction of units to drop, in ``[0, 1)``.
        noise_shape: Shape of the mask, one entry per input axis with the batch axis
            first; ``None`` entries take the input's size, ``1`` entries share one mask
            value along that axis, e.g. ``(None, 1, features)`` drops whole features for
            every timestep. Unlike Keras, a number in the batch position other than 1
            means "one mask per sample", so a short last batch works.
        seed: If given, the layer draws its masks from its own generator seeded with
            it at build (replacing ``rng``), so the same seed gives the same masks.
    """

    rate: float = field(validator=in_half_open_range(0.0, 1.0))
    noise_shape: tuple[int | None, ...] | None = field(default=None, converter=_noise_shape)
    seed: int | None = field(default=None, validator=_check_seed)
    _x_shape: Shape = field(init=False, default=(), repr=False)
    _mask: FloatArray | None = field(init=False, default=None, repr=False)

    def build(self, input_shape: Shape) -> None:
        if self.noise_shape is not None:
            full = (None, *input_shape)
            fits = len(self.noise_shape) == len(full) and all(
                d is None or d == 1 or d == s
                for d, s in zip(self.noise_shape[1:], input_shape, strict=True)
            )
            if not fits:
                raise ShapeError(
                    f"Dropout layer {self.name!r} got noise_shape={self.noise_shape} for "
                    f"inputs of shape {full}; expected one entry per input axis (batch "
                    "first), each None, 1 or the input's size there, e.g. "
                    f"{(None, *([1] * (len(input_shape) - 1)), *input_shape[-1:])}."
                )
        if self.seed is not None:
            self.rng = np.random.default_rng(int(self.seed))

    def _mask_shape(self, x_shape: Shape) -> Shape:
        if self.noise_shape is None:
            return x_shape
        batch = 1 if self.noise_shape[0] == 1 else x_shape[0]
        pairs = zip(self.noise_shape[1:], x_shape[1:], strict=True)
        rest = (s if d is None else d for d, s in pairs)
        return (batch, *rest)

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x * mask / (1 - rate)`` when training, else ``x`` itself."""
        self._x_shape = x.shape
        if not training or self.rate == 0:
            self._mask = None
            return x
        assert self.rng is not None, "Dropout.forward() runs after setup()"
        mask = self.buffer("mask", self._mask_shape(x.shape))
        self.rng.random(dtype=mask.dtype, out=mask)  # uniform in [0, 1)
        np.greater_equal(mask, self.rate, out=mask)  # 1.0 where kept, 0.0 where dropped
        mask *= 1.0 / (1.0 - self.rate)
        self._mask = mask
        return np.multiply(x, mask, out=self.buffer("y", x.shape))

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return ``dy`` times the scaled mask of the last forward (no parameters)."""
        if not self.input_grad_needed:
            return None
        if self._mask is None:
            return dy
        return np.multiply(dy, self._mask, out=self.buffer("dx", dy.shape))


@define(eq=False, slots=False)
class SpatialDropout1D(Dropout):
    """Dropout of whole channels: one mask per sample and channel, shared by every step.

    For ``(batch, steps, channels)`` inputs, as Keras's ``SpatialDropout1D``: where
    neighbouring steps are strongly correlated, dropping single values barely
    regularizes, dropping a channel everywhere does. It is ``Dropout`` with
    ``noise_shape=(None, 1, channels)``.

    Args:
        rate: Fraction of channels to drop, in ``[0, 1)``.
        seed: As ``Dropout``'s.
    """

    noise_shape: tuple[int | None, ...] | None = field(init=False, default=None)
    seed: int | None = field(default=None, validator=_check_seed)

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) != 2:
            raise ShapeError(
                f"SpatialDropout1D layer {self.name!r} takes samples of shape (steps, "
                f"channels), got {tuple(input_shape)}. Use Dropout for other inputs."
            )
        self.noise_shape = (None, 1, int(input_shape[-1]))
        super().build(input_shape)


@define(eq=False, slots=False)
class SpatialDropout2D(Dropout):
    """Dropout of whole feature maps: one mask per sample and channel, for every pixel.

    For ``(batch, height, width, channels)`` images, as Keras's ``SpatialDropout2D``
    (Tompson et al., 2015): neighbouring pixels of a feature map are strongly
    correlated, so dropping single values barely regularizes while dropping a map
    everywhere does. It is ``Dropout`` with ``noise_shape=(None, 1, 1, channels)``:
    kept maps are scaled by ``1 / (1 - rate)``, inference is the identity.

    Args:
        rate: Fraction of channels to drop, in ``[0, 1)``.
        data_format: None or ``"channels_last"``; loopkit is channels-last only.
        seed: As ``Dropout``'s.
    """

    noise_shape: tuple[int | None, ...] | None = field(init=False, default=None)
    data_format: str | None = field(default=None, validator=channels_last_only)
    seed: int | None = field(default=None, validator=_check_seed)

    def build(self, input_shape: Shape) -> None:
        check_image_shape(self, input_shape)
        self.noise_shape = (None, 1, 1, int(input_shape[-1]))
        super().build(input_shape)


@define(eq=False, slots=False)
class _Noise(Layer):
    """Shared parts of the Gaussian noise layers: the seed, the identity at inference."""

    seed: int | None = field(default=None, validator=_check_seed, kw_only=True)
    _noise: FloatArray | None = field(init=False, default=None, repr=False)
    supports_masking = True
    """Per element: a mask passes through (Keras's ``supports_masking``)."""

    def build(self, input_shape: Shape) -> None:
        if self.seed is not None:
            self.rng = np.random.default_rng(int(self.seed))

    def _normal(self, shape: Shape, scale: float) -> FloatArray:
        assert self.rng is not None, "forward() runs after setup()"
        noise = self.buffer("noise", shape)
        self.rng.standard_normal(dtype=noise.dtype, out=noise)
        noise *= scale
        return noise


@define(eq=False, slots=False)
class GaussianNoise(_Noise):
    """Add zero-mean Gaussian noise of ``stddev`` in training, as Keras's layer.

    A regularizer for real-valued inputs (data augmentation); the identity at
    inference.

    Args:
        stddev: Standard deviation of the noise, >= 0.
        seed: Seed of the layer's own generator; the model's if None.
    """

    stddev: float = field(validator=non_negative)

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x + noise`` when training, else ``x``."""
        if not training or self.stddev == 0:
            return x
        y = self.buffer("y", x.shape)
        np.add(x, self._normal(x.shape, self.stddev), out=y)
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return ``dy``: the noise does not depend on ``x``."""
        return dy if self.input_grad_needed else None


@define(eq=False, slots=False)
class GaussianDropout(_Noise):
    """Multiply by Gaussian noise of mean 1 in training, as Keras's layer.

    The noise has standard deviation ``sqrt(rate / (1 - rate))``, the variance of
    inverted dropout at ``rate``; the identity at inference.

    Args:
        rate: The drop probability it mimics, in ``[0, 1]`` (0 and 1: no noise, as
            in Keras).
        seed: Seed of the layer's own generator; the model's if None.
    """

    rate: float = field(validator=in_closed_range(0.0, 1.0))

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x * noise`` when training, else ``x``."""
        self._noise = None
        if not training or not 0 < self.rate < 1:
            return x
        noise = self._normal(x.shape, float(np.sqrt(self.rate / (1.0 - self.rate))))
        noise += 1.0
        self._noise = noise
        return np.multiply(x, noise, out=self.buffer("y", x.shape))

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return ``dy`` times the last forward's noise."""
        if not self.input_grad_needed:
            return None
        if self._noise is None:
            return dy
        return np.multiply(dy, self._noise, out=self.buffer("dx", dy.shape))
