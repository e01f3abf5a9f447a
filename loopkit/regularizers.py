"""Weight penalties (L1, L2): their value for the loss and their gradient, in place."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import numpy as np
from attrs import field, frozen

from loopkit._registry import Registry
from loopkit.typing import FloatArray
from loopkit.validators import non_negative

__all__ = [
    "L1",
    "L1L2",
    "L2",
    "Regularizer",
    "get",
    "l1",
    "l1_l2",
    "l2",
    "serialize",
]

_CHUNK = 1 << 14
"""Elements per step of ``add_gradient``: bounds its scratch memory to 64 KiB (float32)."""


def _factor(value: Any) -> Any:
    """Turn numbers (NumPy scalars too) into float, so configs stay JSON-ready."""
    is_number = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    return float(value) if is_number else value


def _chunks(*arrays: FloatArray) -> Iterator[tuple[FloatArray, ...]]:
    """Yield matching flat slices of ``arrays`` (one shape) of at most _CHUNK elements."""
    flats = [a.reshape(-1) for a in arrays]
    for start in range(0, flats[0].size, _CHUNK):  # a few chunks, not elements
        yield tuple(f[start : start + _CHUNK] for f in flats)


def _l1_l2_penalty(w: FloatArray, l1: float, l2: float) -> float:
    total = 0.0
    scratch = np.empty(min(w.size, _CHUNK), w.dtype)
    for (wc,) in _chunks(w):
        if l1:
            total += l1 * float(np.abs(wc, out=scratch[: wc.size]).sum(dtype=np.float64))
        if l2:
            total += l2 * float(np.dot(wc, wc))
    return total


def _add_l1_l2_gradient(w: FloatArray, grad: FloatArray, l1: float, l2: float) -> None:
    """Add ``l1 * sign(w) + 2 * l2 * w`` to ``grad``, in chunks so scratch stays small."""
    if not (l1 or l2):
        return
    if not grad.flags.c_contiguous:  # reshape would copy, losing the writes
        if l2:
            grad += (2.0 * l2) * w
        if l1:
            grad += l1 * np.sign(w)
        return
    scratch = np.empty(min(w.size, _CHUNK), grad.dtype)
    for wc, gc in _chunks(w, grad):
        tmp = scratch[: wc.size]
        if l2:
            np.multiply(wc, 2.0 * l2, out=tmp)
            gc += tmp
        if l1:
            np.sign(wc, out=tmp)
            tmp *= l1
            gc += tmp


@frozen
class Regularizer:
    """Base of every weight penalty: its value for the loss and its gradient.

    A subclass implements ``penalty`` and ``add_gradient``. Calling the object returns
    the penalty, as calling a Keras regularizer does.
    """

    def penalty(self, w: FloatArray) -> float:
        """Return the penalty on the weight ``w`` (any shape), to be added to the loss."""
        raise NotImplementedError

    def add_gradient(self, w: FloatArray, grad: FloatArray) -> None:
        """Add d(penalty)/dw to ``grad`` in place.

        Args:
            w: The weight, of any shape.
            grad: dL/dw of the same shape, which already holds the loss's gradient.
        """
        raise NotImplementedError

    def __call__(self, w: FloatArray) -> float:
        """Return ``penalty(w)``."""
        return self.penalty(w)

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as JSON-ready values."""
        return {a.name: getattr(self, a.name) for a in attrs.fields(type(self)) if a.init}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Regularizer:
        """Build the regularizer ``get_config`` describes."""
        return cls(**config)


@frozen
class L1L2(Regularizer):
    """Penalty ``l1 * sum(|w|) + l2 * sum(w**2)``.

    The gradient is ``l1 * sign(w) + 2 * l2 * w``, with the subgradient 0 at ``w = 0``.

    Args:
        l1: L1 factor, >= 0.
        l2: L2 factor, >= 0.
    """

    l1: float = field(default=0.0, converter=_factor, validator=non_negative)
    l2: float = field(default=0.0, converter=_factor, validator=non_negative)

    def penalty(self, w: FloatArray) -> float:
        return _l1_l2_penalty(w, self.l1, self.l2)

    def add_gradient(self, w: FloatArray, grad: FloatArray) -> None:
        _add_l1_l2_gradient(w, grad, self.l1, self.l2)


@frozen
class L1(Regularizer):
    """Penalty ``l1 * sum(|w|)``; gradient ``l1 * sign(w)`` (0 at ``w = 0``).

    Args:
        l1: Factor, >= 0.
    """

    l1: float = field(default=0.01, converter=_factor, validator=non_negative)

    def penalty(self, w: FloatArray) -> float:
        return _l1_l2_penalty(w, self.l1, 0.0)

    def add_gradient(self, w: FloatArray, grad: FloatArray) -> None:
        _add_l1_l2_gradient(w, grad, self.l1, 0.0)


@frozen
class L2(Regularizer):
    """Penalty ``l2 * sum(w**2)`` (no 1/2, as in Keras); gradient ``2 * l2 * w``.

    Args:
        l2: Factor, >= 0.
    """

    l2: float = field(default=0.01, converter=_factor, validator=non_negative)

    def penalty(self, w: FloatArray) -> float:
        return _l1_l2_penalty(w, 0.0, self.l2)

    def add_gradient(self, w: FloatArray, grad: FloatArray) -> None:
        _add_l1_l2_gradient(w, grad, 0.0, self.l2)


l1 = L1
l2 = L2


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """Return ``L1L2(l1, l2)``, with the defaults of Keras 2's ``l1_l2`` (0.01 each)."""
    return L1L2(l1, l2)


# The name "l1_l2" gives l1 = l2 = 0.01 (Keras 2's l1_l2), not the L1L2() of zero
# factors that would silently add nothing. Being no class, it cannot be a class_name.
_REGISTRY = Registry(
    kind="regularizer",
    module="regularizers",
    base=Regularizer,
    names={"l1": L1, "l2": L2, "l1_l2": l1_l2},
    classes=(L1, L2, L1L2),
    instead="a Regularizer such as L2(1e-4)",
    accepts="None, 'l1', 'l2', 'l1_l2', a Regularizer such as L2(1e-4), or a dict "
    "{'class_name': 'L2', 'config': {'l2': 0.0001}}",
    config_names=False,
)


def get(identifier: Any) -> Regularizer | None:
    """Return the regularizer an identifier names (``keras.regularizers.get``).

    Args:
        identifier: None; ``"l1"`` or ``"l2"`` (factor 0.01) or ``"l1_l2"`` (0.01 each);
            a Regularizer, returned as is; or ``{"class_name": ..., "config": {...}}``
            as ``serialize`` (or Keras) writes.

    Raises:
        ConfigError: The name is unknown, or the config has an unknown key.
        TypeError: The identifier is of another kind.
    """
    return _REGISTRY.get(identifier)


def serialize(regularizer: Regularizer | None) -> str | dict[str, Any] | None:
    """Return a JSON-ready identifier that ``get`` turns back into ``regularizer``.

    That is the bare name (``"l2"``) when ``regularizer`` is what the name gives, else
    ``{"class_name": "L2", "config": {"l2": ...}}``; None stays None.

    Raises:
        TypeError: ``regularizer`` is not a Regularizer.
    """
    return _REGISTRY.serialize(regularizer)
