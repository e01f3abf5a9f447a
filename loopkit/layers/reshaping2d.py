"""Reshaping of images: UpSampling2D."""

from __future__ import annotations

from typing import Any

import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError
from loopkit.layers._geometry import (
    Pair,
    channels_last_only,
    check_image_shape,
    lower_if_str,
    positive_pair,
    to_pair,
)
from loopkit.layers.base import Layer
from loopkit.typing import FloatArray, Shape
from loopkit.validators import suggest

__all__ = ["UpSampling2D"]

_KERAS_ONLY = ("bicubic", "bilinear", "lanczos3", "lanczos5")


def _nearest_only(instance: Any, attribute: Any, value: Any) -> None:
    """Accept ``interpolation="nearest"``; name Keras's other methods as not supported."""
    if value == "nearest":
        return
    if value in _KERAS_ONLY:
        raise ConfigError(
            f"UpSampling2D got interpolation={value!r}; loopkit implements only "
            "'nearest' (each pixel repeated). Use interpolation='nearest', or a "
            "Conv2D after it to learn a smoother upsampling."
        )
    raise ConfigError(
        f"UpSampling2D got interpolation={value!r}; expected 'nearest' (Keras also "
        f"names {', '.join(map(repr, _KERAS_ONLY))}, which loopkit does not implement)."
        + suggest(str(value), ["nearest", *_KERAS_ONLY])
    )


@define(eq=False, slots=False)
class UpSampling2D(Layer):
    """Repeat each row ``size[0]`` and each column ``size[1]`` times (channels-last).

    ``(batch, h, w, c)`` -> ``(batch, h * size[0], w * size[1], c)``, Keras's
    ``interpolation="nearest"``.

    Args:
        size: Upsampling factors for rows and columns: an int or a pair of ints.
        data_format: None or ``"channels_last"``; loopkit is channels-last only.
        interpolation: ``"nearest"``, the only method loopkit implements.
    """

    size: Pair = field(default=(2, 2), converter=to_pair, validator=positive_pair)
    data_format: str | None = field(default=None, validator=channels_last_only)
    interpolation: str = field(
        default="nearest", converter=lower_if_str, validator=_nearest_only
    )
    _x_shape: Shape = field(init=False, default=(), repr=False)

    def build(self, input_shape: Shape) -> None:
        check_image_shape(self, input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        check_image_shape(self, input_shape)
        h, w, c = input_shape
        return (h * self.size[0], w * self.size[1], c)

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x`` with every pixel repeated into a ``size`` block."""
        n, h, w, c = self._x_shape = tuple(x.shape)
        sh, sw = self.size
        y = self.buffer("y", (n, h * sh, w * sw, c))
        np.copyto(y.reshape(n, h, sh, w, sw, c), x[:, :, None, :, None, :])
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return dL/dx: the sum of ``dy`` over each pixel's block of copies."""
        if not self.input_grad_needed:
            return None
        n, h, w, c = self._x_shape
        sh, sw = self.size
        dx = self.buffer("dx", (n, h, w, c))
        np.sum(dy.reshape(n, h, sh, w, sw, c), axis=(2, 4), out=dx)
        return dx
