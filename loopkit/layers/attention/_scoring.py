"""Shared attention arithmetic: Keras's masks, masked softmax and its backward, dropout."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from loopkit.errors import ShapeError
from loopkit.layers.base import as_sample_shape
from loopkit.typing import FloatArray, Shape

__all__ = [
    "AttentionCall",
    "BoolArray",
    "LARGE_NEGATIVE",
    "as_bool_mask",
    "causal_mask",
    "check_padding_mask",
    "dropout_keep",
    "softmax",
    "softmax_backward",
]

BoolArray = npt.NDArray[np.bool_]

LARGE_NEGATIVE = 1.0e9
"""Keras's stand-in for minus infinity at masked scores (float32 and float64)."""


def as_bool_mask(mask: Any) -> BoolArray | None:
    """Return ``mask`` as booleans (nonzero is kept, as Keras's cast), or None."""
    if mask is None:
        return None
    result: BoolArray = np.not_equal(mask, 0)
    return result


def causal_mask(query_steps: int, value_steps: int) -> BoolArray:
    """Return ``(1, T, S)`` booleans, true where step ``i`` may see value step ``j <= i``.

    Keras's ``_compute_causal_mask``: ``cumsum`` rows ``>=`` ``cumsum`` columns.
    """
    rows = np.arange(query_steps)[:, None]
    cols = np.arange(value_steps)[None, :]
    result: BoolArray = (rows >= cols)[None]
    return result


def check_padding_mask(
    call: str, role: str, mask: Any, batch: int, steps: int
) -> BoolArray | None:
    """Return a ``(batch, steps)`` padding mask as booleans, or raise ShapeError."""
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.shape != (batch, steps):
        raise ShapeError(
            f"{call} got a {role} mask of shape {arr.shape}; expected one entry per "
            f"sample and timestep of the {role}, {(batch, steps)}. Pass the mask that "
            "Embedding(mask_zero=True) or Masking computes for that input."
        )
    result: BoolArray = np.not_equal(arr, 0)
    return result


def softmax(
    scores: FloatArray, mask: BoolArray | None, out: FloatArray, zero_masked: bool
) -> FloatArray:
    """Write the softmax of ``scores`` over the last axis into ``out``; return it.

    Masked entries (``mask`` false, broadcast against ``scores``) count as
    ``-1e9``, as in Keras. With ``zero_masked`` they come out exactly 0 even when
    a whole row is masked (Keras's ``Softmax`` layer, used by MultiHeadAttention);
    without it a fully masked row is the softmax of ``scores - 1e9`` (Keras's
    ``Attention``, which subtracts ``1e9`` from the masked scores).
    Stable: the row maximum is subtracted before ``exp``.
    """
    if mask is None:
        np.copyto(out, scores)
    elif zero_masked:
        np.copyto(out, np.where(mask, scores, out.dtype.type(-LARGE_NEGATIVE)))
    else:
        np.subtract(scores, out.dtype.type(LARGE_NEGATIVE) * ~mask, out=out)
    out -= out.max(axis=-1, keepdims=True)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    if mask is not None and zero_masked:
        out *= mask
    return out


def softmax_backward(probs: FloatArray, dprobs: FloatArray, out: FloatArray) -> FloatArray:
    """Write dL/dscores ``= p * (dp - sum(dp * p))`` (over the last axis) into ``out``.

    Zeroed (masked) probabilities give zero gradients, which is also the exact
    derivative of the masked entries in both of ``softmax``'s modes.
    """
    np.multiply(dprobs, probs, out=out)
    total = out.sum(axis=-1, keepdims=True)
    np.subtract(dprobs, total, out=out)
    out *= probs
    return out


def dropout_keep(
    rng: np.random.Generator, shape: tuple[int, ...], rate: float, out: FloatArray
) -> FloatArray:
    """Draw an inverted-dropout mask into ``out``: ``1/(1-rate)`` kept, 0 dropped."""
    rng.random(dtype=out.dtype, out=out)
    np.greater_equal(out, rate, out=out)
    out *= 1.0 / (1.0 - rate)
    return out


class AttentionCall:
    """What Keras's attention layers share around their arithmetic (a mixin).

    The call's options, the name their messages start with, the checks of the
    ``[query, value, key]`` sequence shapes, and the output mask (the query's).
    """

    name: str | None

    def _call_name(self) -> str:
        return f"{type(self).__name__} layer {self.name!r}"

    @staticmethod
    def call_options(
        return_attention_scores: bool, use_causal_mask: bool
    ) -> dict[str, Any]:
        """The options a call keeps in the graph (passed on to ``forward``)."""
        return {
            "return_attention_scores": bool(return_attention_scores),
            "use_causal_mask": bool(use_causal_mask),
        }

    def sequence_shapes(self, input_shape: Any) -> list[Shape]:
        """``(steps, features)`` of query, value and key (None: any length); or raise.

        Checks that each is a sequence and that key and value have as many steps;
        any further shapes (MultiHeadAttention's attention mask) are returned as
        they are, for the layer to check.
        """
        shapes = [as_sample_shape(s) for s in input_shape]
        for role, shape in zip(("query", "value", "key"), shapes, strict=False):
            if len(shape) != 2:
                raise ShapeError(
                    f"{self._call_name()} expects {role} of shape (batch, steps, "
                    f"features); got {(None, *shape)}. Reshape it to one sequence "
                    "axis (loopkit attends over axis 1 only)."
                )
        value = shapes[1]
        key = shapes[2] if len(shapes) > 2 else value
        if key[0] != value[0] and None not in (key[0], value[0]):
            raise ShapeError(
                f"{self._call_name()}: value and key must have the same number of "
                f"steps; got value {(None, *value)} and key {(None, *key)}."
            )
        return shapes

    def compute_mask(
        self,
        x: Any,
        mask: Any = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> Any:
        """Return the query's mask (Keras sets it on the output); None for the scores."""
        query_mask = mask[0] if isinstance(mask, list) else None
        return [query_mask, None] if return_attention_scores else query_mask
