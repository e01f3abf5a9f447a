"""Masks over time steps: the Masking layer and the rules that carry masks between layers.

A mask is a ``(batch, timesteps)`` array, true at real steps and false at padding.
It travels beside the activations, as in Keras:

- A layer that *makes* or *changes* a mask has ``compute_mask(x, mask)``, called with
  the layer's input and the incoming mask (None if there is none); it returns the
  mask of its output (``Masking``, ``Embedding(mask_zero=True)``, the recurrent
  layers, ``Bidirectional``, ``TimeDistributed``, the global poolings).
- A layer that *uses* a mask has ``uses_mask = True`` and takes it as
  ``forward(x, training, mask=mask)``; it keeps what backward needs (the recurrent
  layers, ``Bidirectional``, ``TimeDistributed``, the global poolings).
- Every other layer passes the mask on unchanged if it works per step
  (``passes_mask``: Dense, Activation, Dropout, the normalizations) and drops it
  otherwise, as Keras's ``supports_masking`` does.

``output_mask`` and ``call_forward`` implement those rules for a model's loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from attrs import define, field

from loopkit.errors import ShapeError
from loopkit.layers.base import Layer
from loopkit.typing import Array, FloatArray

__all__ = ["Masking", "call_forward", "check_mask", "output_mask", "passes_mask"]


def passes_mask(layer: Layer) -> bool:
    """Whether ``layer`` keeps the steps of its input, so its output keeps the mask."""
    from loopkit.layers.core import Activation, Dense
    from loopkit.layers.normalization import BatchNormalization, LayerNormalization
    from loopkit.layers.regularization import Dropout

    per_step = (Activation, Dense, Dropout, BatchNormalization, LayerNormalization)
    return isinstance(layer, per_step)


def output_mask(layer: Layer, x: Array, mask: Array | None) -> Array | None:
    """Return the mask of ``layer``'s output for input ``x`` carrying ``mask``.

    ``compute_mask`` decides where the layer has one; otherwise the mask passes
    through layers that work per step and stops at the others.
    """
    compute = getattr(layer, "compute_mask", None)
    if compute is not None:
        result: Array | None = compute(x, mask)
        return result
    if mask is not None and passes_mask(layer):
        return mask
    return None


def call_forward(layer: Layer, x: Array, training: bool, mask: Array | None) -> FloatArray:
    """Run ``layer.forward``, passing ``mask`` to the layers that use one."""
    if mask is not None and getattr(layer, "uses_mask", False):
        result: FloatArray = layer.forward(x, training, mask=mask)  # type: ignore[call-arg]
        return result
    return layer.forward(x, training)


def check_mask(layer: Layer, x: Array, mask: Array | None) -> FloatArray | None:
    """Return ``mask`` as 0/1 floats of the layer's dtype, ``(batch, timesteps)``, or None.

    Raises:
        ShapeError: ``mask`` is not ``(batch, timesteps)`` for ``x``.
    """
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != tuple(x.shape[:2]):
        raise ShapeError(
            f"{type(layer).__name__} layer {layer.name!r} got a mask of shape "
            f"{mask.shape} for inputs of shape {tuple(x.shape)}; expected one entry per "
            f"sample and timestep, {tuple(x.shape[:2])}. Pass the mask that Masking or "
            "Embedding(mask_zero=True) computes for these inputs."
        )
    out = layer.buffer("mask", mask.shape)
    np.not_equal(mask, 0, out=out)  # booleans and 0/1 numbers alike
    return out


@define(eq=False, slots=False)
class Masking(Layer):
    """Mask the steps whose features all equal ``mask_value``, and zero them.

    For ``x`` of ``(batch, timesteps, features)`` the mask is true where any feature
    of a step differs from ``mask_value``; the output is ``x`` with the masked steps
    set to zero, as in Keras. Layers after it that use masks skip those steps.

    Args:
        mask_value: The value that marks padding.
    """

    mask_value: float = 0.0
    _keep: FloatArray = field(init=False, repr=False)

    def compute_mask(self, x: Array, mask: Array | None) -> Array:
        """Return ``any(x != mask_value, axis=-1)``, ``(batch, timesteps)`` booleans."""
        result: Array = np.any(np.not_equal(x, self.mask_value), axis=-1)
        return result

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``x`` with masked steps zeroed."""
        keep = self.buffer("keep", (*x.shape[:-1], 1))
        np.any(np.not_equal(x, self.mask_value), axis=-1, keepdims=True, out=keep)
        self._keep = keep
        return np.multiply(x, keep, out=self.buffer("y", x.shape))

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Return ``dy`` at the kept steps, zero at the masked ones."""
        if not self.input_grad_needed:
            return None
        return np.multiply(dy, self._keep, out=self.buffer("dx", dy.shape))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["mask_value"] = float(self.mask_value)
        return config
