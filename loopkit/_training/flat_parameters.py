"""One contiguous buffer for a model's weights and one for their gradients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from attrs import define, field

from loopkit.layers.base import Parameter
from loopkit.typing import FloatArray

__all__ = ["FlatParameters", "merge_spans"]


def merge_spans(spans: Sequence[slice]) -> list[slice]:
    """Return the fewest contiguous slices covering ``spans`` (sorted, step 1)."""
    merged: list[slice] = []
    for span in sorted(spans, key=lambda s: s.start):
        if merged and merged[-1].stop == span.start:
            merged[-1] = slice(merged[-1].start, span.stop)
        else:
            merged.append(slice(span.start, span.stop))
    return merged


@define(eq=False)
class FlatParameters:
    """Moves parameters into two flat buffers so they can be updated in a few calls.

    After ``pack``, every ``Parameter.value`` is a view into ``values`` and every
    ``Parameter.grad`` a view into ``grads``, at the same offsets.

    Args:
        parameters: The parameters in model order.
        values: 1-D buffer holding every parameter's value.
        grads: 1-D buffer holding every parameter's gradient.
        slices: Where each parameter lives in the two buffers.
    """

    parameters: list[Parameter]
    values: FloatArray = field(repr=False)
    grads: FloatArray = field(repr=False)
    slices: list[slice] = field(repr=False)

    @classmethod
    def pack(cls, parameters: Sequence[Parameter], dtype: Any) -> FlatParameters:
        """Copy ``parameters`` into new flat buffers and rebind them as views."""
        sizes = [p.size for p in parameters]
        total = int(sum(sizes))
        values = np.empty(total, dtype)
        grads = np.zeros(total, dtype)
        slices, offset = [], 0
        for param, size in zip(parameters, sizes, strict=True):
            span = slice(offset, offset + size)
            shape = param.shape
            values[span] = param.value.reshape(-1)
            param.value = values[span].reshape(shape)
            param.grad = grads[span].reshape(shape)
            slices.append(span)
            offset += size
        return cls(list(parameters), values, grads, slices)

    def spans_of(self, selected: Sequence[Parameter]) -> list[slice]:
        """Return the slices of ``selected`` parameters, merged where adjacent."""
        wanted = {id(p) for p in selected}
        return merge_spans(
            [
                s
                for p, s in zip(self.parameters, self.slices, strict=True)
                if id(p) in wanted
            ]
        )
