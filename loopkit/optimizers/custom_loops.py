"""Keras's ``apply_gradients(zip(grads, variables))`` for hand-written training loops."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from loopkit.errors import ConfigError, ShapeError
from loopkit.typing import FloatArray

__all__ = ["GradientPairs"]


def _array(variable: Any, call: str) -> FloatArray:
    """Return the array a variable holds: a Parameter's ``value`` or the array itself."""
    value = getattr(variable, "value", variable)
    if not isinstance(value, np.ndarray) or value.dtype not in (np.float32, np.float64):
        raise TypeError(
            f"{call} got a variable {variable!r:.80} of type {type(variable).__name__}; "
            "expected a Parameter (layer.parameters, model.trainable_weights) or a "
            "float32/float64 NumPy array, updated in place."
        )
    return value


class GradientPairs:
    """Updates variables in place from ``(gradient, variable)`` pairs, as Keras does.

    The variables are gathered into one flat buffer (built on the first call and
    whenever the set of variables changes, which restarts the optimizer's slots),
    the optimizer's flat update runs on it, and the results are written back.
    """

    def __init__(self) -> None:
        self.key: tuple[int, ...] = ()
        self.params: FloatArray = np.empty(0)
        self.grads: FloatArray = np.empty(0)
        self.slices: list[slice] = []
        self.variables: list[Any] = []
        """The variables of the last call, for Keras's ``apply(grads)``."""

    def apply(self, optimizer: Any, pairs: Iterable[tuple[Any, Any]]) -> None:
        """Apply one step of ``optimizer`` to the variables of ``pairs``."""
        call = f"{type(optimizer).__name__}.apply_gradients()"
        pairs = list(pairs)
        grads_and_arrays = [(g, _array(v, call)) for g, v in pairs]
        if not grads_and_arrays:
            raise ConfigError(
                f"{call} got no (gradient, variable) pairs; pass "
                "zip(grads, model.trainable_weights)."
            )
        arrays = [a for _, a in grads_and_arrays]
        key = tuple(id(a) for a in arrays)
        if key != self.key:
            self._build(optimizer, arrays, call)
        for (grad, array), span in zip(grads_and_arrays, self.slices, strict=True):
            g = np.asarray(grad)
            if g.shape != array.shape:
                raise ShapeError(
                    f"{call} got a gradient of shape {g.shape} for a variable of shape "
                    f"{array.shape}; pass the gradients in the variables' order."
                )
            self.params[span] = array.reshape(-1)
            self.grads[span] = g.reshape(-1)
        optimizer.apply(self.params, self.grads)
        self.variables = [v for _, v in pairs]
        for array, span in zip(arrays, self.slices, strict=True):
            array[...] = self.params[span].reshape(array.shape)

    def _build(self, optimizer: Any, arrays: list[FloatArray], call: str) -> None:
        dtypes = {a.dtype for a in arrays}
        if len(dtypes) > 1:
            raise ConfigError(
                f"{call} got variables of dtypes {sorted(str(d) for d in dtypes)}; one "
                "optimizer updates variables of one dtype. Cast them to one."
            )
        stops = np.cumsum([a.size for a in arrays]).tolist()
        self.slices = [slice(a, b) for a, b in zip([0, *stops[:-1]], stops, strict=True)]
        dtype = arrays[0].dtype
        self.params, self.grads = np.empty(stops[-1], dtype), np.empty(stops[-1], dtype)
        optimizer.build(stops[-1], dtype, self.slices, shapes=[a.shape for a in arrays])
        self.key = tuple(id(a) for a in arrays)
