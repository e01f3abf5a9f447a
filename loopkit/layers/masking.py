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
  (``passes_mask``: Dense, Activation, Dropout, the normalizations, and any layer
  with a true ``supports_masking``, Keras's opt-in) and drops it otherwise.

For a call on several tensors the mask is a list, one entry per input (None where
that input has none); a call with several outputs gets a list of masks back.
``compute_mask`` and ``forward`` also receive the call's options as keywords.
``output_mask`` and ``call_forward`` implement those rules for a model's loop;
``makes_mask`` tells a model, once, whether any mask can arise at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from attrs import define, field

from loopkit.errors import ShapeError
from loopkit.layers.base import Layer
from loopkit.typing import Array, FloatArray

__all__ = [
    "Masking",
    "call_forward",
    "check_mask",
    "check_mask_shape",
    "makes_mask",
    "output_mask",
    "passes_mask",
]


def passes_mask(layer: Layer) -> bool:
    """Whether ``layer`` keeps the steps of its input, so its output keeps the mask.

    A layer of one's own opts in as in Keras, with ``supports_masking = True``.
    """
    if getattr(layer, "supports_masking", False):
        return True
    from loopkit.layers.core import Activation, Dense
    from loopkit.layers.normalization import BatchNormalization, LayerNormalization
    from loopkit.layers.regularization import Dropout

    per_step = (Activation, Dense, Dropout, BatchNormalization, LayerNormalization)
    return isinstance(layer, per_step)


def makes_mask(layer: Any) -> bool:
    """Whether ``layer`` can make a mask from unmasked inputs.

    ``Masking`` and ``Embedding(mask_zero=True)`` do, as does any layer with a true
    ``makes_mask`` attribute. A model with none of them never carries a mask and
    runs without looking for one.
    """
    return bool(getattr(layer, "makes_mask", False) or getattr(layer, "mask_zero", False))


def output_mask(layer: Layer, x: Any, mask: Any, **options: Any) -> Any:
    """Return the mask of ``layer``'s output for input ``x`` carrying ``mask``.

    ``compute_mask`` decides where the layer has one; otherwise the mask passes
    through layers that work per step and stops at the others.
    """
    compute = getattr(layer, "compute_mask", None)
    if compute is not None:
        return compute(x, mask, **options)
    if mask is not None and passes_mask(layer):
        return mask
    return None


def call_forward(layer: Layer, x: Any, training: bool, mask: Any, **options: Any) -> Any:
    """Run ``layer.forward``, passing ``mask`` to the layers that use one."""
    if (
        mask is not None
        and getattr(layer, "uses_mask", False)
        and (not isinstance(mask, list) or any(m is not None for m in mask))
    ):
        return layer.forward(x, training, mask=mask, **options)  # type: ignore[call-arg]
    if options:
        return layer.forward(x, training, **options)
    return layer.forward(x, training)


def check_mask_shape(layer: Layer, x: Array, mask: Array) -> None:
    """Raise ShapeError unless ``mask`` is ``(batch, timesteps)`` for ``x``."""
    if mask.shape != tuple(x.shape[:2]):
        raise ShapeError(
            f"{type(layer).__name__} layer {layer.name!r} got a mask of shape "
            f"{mask.shape} for inputs of shape {tuple(x.shape)}; expected one entry per "
            f"sample and timestep, {tuple(x.shape[:2])}. Pass the mask that Masking or "
            "Embedding(mask_zero=True) computes for these inputs."
        )


def check_mask(layer: Layer, x: Array, mask: Array | None) -> FloatArray | None:
    """Return ``mask`` as 0/1 floats of the layer's dtype, ``(batch, timesteps)``, or None.

    Raises:
        ShapeError: ``mask`` is not ``(batch, timesteps)`` for ``x``.
    """
    if mask is None:
        return None
    mask = np.asarray(mask)
    check_mask_shape(layer, x, mask)
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
    makes_mask = True
    """Makes a mask from unmasked inputs (see ``makes_mask``)."""

    def compute_mask(self, x: Array, mask: Array | None = None) -> Array:
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
