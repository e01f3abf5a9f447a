"""Window geometry of the convolution and pooling layers: arguments, padding, sizes."""

from __future__ import annotations

from typing import Any, Literal

import attrs
import numpy as np

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.base import Layer
from loopkit.typing import Shape
from loopkit.validators import suggest

__all__ = [
    "Padding",
    "Pair",
    "axis_plan",
    "channels_last_only",
    "check_image_shape",
    "is_int",
    "lower_if_str",
    "optional_pair",
    "optional_positive_pair",
    "plan_2d",
    "plan_dilated_2d",
    "positive_pair",
    "to_pair",
]

Pair = tuple[int, int]
Padding = Literal["valid", "same"]


def is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def to_pair(value: Any) -> Any:
    """Turn a positive int into ``(v, v)`` and a list into a tuple; leave the rest as is.

    Integers become Python ints (the compiled kernels then see one argument type).
    Anything else is left for ``positive_pair`` to reject with the value as given.
    """
    if is_int(value) and value > 0:
        return (int(value), int(value))
    if isinstance(value, (list, tuple)):
        items = tuple(value)
        return tuple(int(v) for v in items) if all(is_int(v) for v in items) else items
    return value


def positive_pair(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept a pair of positive ints (what ``to_pair`` makes of an int or a sequence)."""
    owner, arg = type(instance).__name__, attribute.name
    if is_int(value):
        items: tuple[Any, ...] = (value,)
    elif isinstance(value, tuple) and len(value) == 2 and all(is_int(v) for v in value):
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


def lower_if_str(value: Any) -> Any:
    """Lower-case a string option as Keras does (``"SAME"`` is ``"same"``)."""
    return value.lower() if isinstance(value, str) else value


def channels_last_only(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
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


def axis_plan(size: int, window: int, stride: int, padding: str) -> tuple[int, int, int]:
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


def plan_dilated_2d(layer: Any, input_shape: Shape) -> tuple[Pair, Pair, Pair]:
    """Run ``plan_2d`` for a layer's ``kernel_size``, ``strides`` and ``dilation_rate``.

    The depthwise and separable convolutions hold those pairs and ``padding``.
    """
    (kh, kw), (dh, dw) = layer.kernel_size, layer.dilation_rate
    window = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    args = f"kernel_size={layer.kernel_size}, strides={layer.strides}"
    if layer.dilation_rate != (1, 1):
        args += f", dilation_rate={layer.dilation_rate}"
    return plan_2d(layer, input_shape, window, layer.strides, layer.padding, args)


def plan_2d(
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
    check_image_shape(layer, input_shape)
    h, w, _ = input_shape
    oh, pt, pb = axis_plan(h, window[0], strides[0], padding)
    ow, pl, pr = axis_plan(w, window[1], strides[1], padding)
    if oh <= 0 or ow <= 0:
        raise ShapeError(
            f"{kind} layer {name!r} with {window_args}, padding={padding!r} got "
            f"input_shape={input_shape}: the {window[0]}x{window[1]} window does not fit "
            f"in the {h}x{w} image, so the output would be {oh}x{ow}. Use "
            "padding='same', a smaller window, or larger images (at least "
            f"{window[0]}x{window[1]})."
        )
    return (oh, ow), (pt, pb), (pl, pr)


def check_image_shape(layer: Layer, input_shape: Shape) -> None:
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


def optional_pair(value: Any) -> Any:
    """``to_pair`` that leaves None (``strides=None``: the window's size) as is."""
    return None if value is None else to_pair(value)


def optional_positive_pair(instance: Any, attribute: Any, value: Any) -> None:
    """``positive_pair`` that also accepts None."""
    if value is not None:
        positive_pair(instance, attribute, value)
