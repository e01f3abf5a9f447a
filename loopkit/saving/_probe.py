"""The weight shapes an architecture would create, found without allocating a weight.

A file's architecture is data: ``Dense(16000)`` on 16000 inputs declares a gigabyte.
Building it to find out would allocate that gigabyte (twice, with gradients). Each
layer is instead set up on a copy whose ``add_weight`` records the shape and hands
back a zero-stride view, so loaders compare the shapes with the stored arrays'
headers, and refuse a mismatch, before anything is built.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from loopkit.errors import CheckpointError
from loopkit.layers.base import Layer, Parameter

__all__ = ["MAX_SAMPLE_ELEMENTS", "planned_weight_shapes"]

MAX_SAMPLE_ELEMENTS = 1 << 26
"""Largest sample (input or any layer's output) a file may declare: 64 Mi values."""


def _sample_shape(value: Any, what: str, where: str) -> tuple[int, ...]:
    if (
        not isinstance(value, (list, tuple))
        or not 0 < len(value) <= 8
        or any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in value)
    ):
        raise CheckpointError(
            f"{what}: the file declares {where} {value!r}; expected a list of 1 to 8 "
            "positive ints. The file is damaged or crafted."
        )
    shape = tuple(int(d) for d in value)
    if math.prod(shape) > MAX_SAMPLE_ELEMENTS:
        raise CheckpointError(
            f"{what}: the file declares {where} {shape}, {math.prod(shape)} values per "
            f"sample; loopkit refuses more than {MAX_SAMPLE_ELEMENTS} before allocating."
        )
    return shape


def planned_weight_shapes(
    layers: Sequence[Layer], input_shape: Any, dtype: Any, what: str
) -> list[tuple[str, tuple[int, ...]]]:
    """Return ``("layer/param", shape)`` for each weight ``layers`` would create.

    The layers themselves are left as they were (each is set up as a copy).

    Raises:
        CheckpointError: the input shape or a layer's output is not a sane sample
            shape, or a layer refuses the shape it would get.
    """
    shape = _sample_shape(input_shape, what, "the input shape")
    planned: list[tuple[str, tuple[int, ...]]] = []
    zero = np.zeros((), dtype)
    for layer in layers:
        probe = copy.copy(layer)

        def add_weight(
            name: str,
            shape: Any,
            initializer: Any = "zeros",
            *,
            probe: Any = probe,
            trainable: bool = True,
            regularizer: Any = None,
        ) -> Parameter:
            view = np.broadcast_to(zero, tuple(int(d) for d in shape))
            param = Parameter(name=name, value=view, grad=view, trainable=trainable)
            probe._parameters.append(param)
            return param

        setattr(probe, "add_weight", add_weight)  # noqa: B010 - on this copy only
        try:
            out = probe.setup(shape, dtype, np.random.default_rng(0))
        except (ValueError, TypeError, KeyError, IndexError) as err:
            raise CheckpointError(
                f"{what}: layer {layer.name!r} cannot be built for samples of shape "
                f"{shape} ({type(err).__name__}: {err}). The file is damaged."
            ) from err
        planned.extend((f"{probe.name}/{p.name}", p.shape) for p in probe.parameters)
        shape = _sample_shape(list(out), what, f"layer {layer.name!r} an output shape")
    return planned
