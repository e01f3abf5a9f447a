"""Embedding: look up a learned vector for each integer index."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from attrs import define, field

from loopkit.layers.base import Layer, Parameter
from loopkit.typing import Array, FloatArray, IntArray, Shape
from loopkit.validators import positive_int

__all__ = ["Embedding"]


def _deprecated_input_length(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None:
        warnings.warn(
            "Argument `input_length` is deprecated. Just remove it.",
            UserWarning,
            stacklevel=3,
        )


@define(eq=False, slots=False)
class Embedding(Layer):
    """Map integer indices in ``[0, input_dim)`` to rows of a learned ``embeddings`` matrix.

    ``x`` is ``(batch, ...)`` of indices, as ints or as floats holding whole numbers
    (a float32 pipeline); the output is ``(batch, ..., output_dim)``. Indices are
    checked on every forward: unlike Keras on JAX, which silently clamps an index out
    of range, this raises. The layer has no input gradient (indices are not
    differentiable), so ``backward`` returns None.

    Note: here ``input_dim`` is the vocabulary size, as in Keras, not the shorthand
    for ``input_shape`` other layers take. Give the sample shape with ``input_shape``.

    Args:
        input_dim: Vocabulary size: one more than the largest index.
        output_dim: Length of each embedding vector.
        embeddings_initializer: Initializer for the ``(input_dim, output_dim)`` matrix;
            Keras's ``"uniform"`` is ``RandomUniform(-0.05, 0.05)``.
        embeddings_regularizer: Penalty on the matrix added to the loss.
        mask_zero: Treat index 0 as padding: ``compute_mask`` then gives ``x != 0``
            for the layers after it (see ``loopkit.layers.masking``). Index 0 still
            has an embedding row, so ``input_dim`` counts it, as in Keras.
        embeddings_constraint: Projection of the matrix after each step.
        input_length: Keras 2's argument: taken with Keras 3's deprecation warning
            and ignored, as Keras 3 does (the sample shape comes from the data or
            ``input_shape``).
    """

    input_dim: int = field(validator=positive_int)
    output_dim: int = field(validator=positive_int)
    embeddings_initializer: Any = "uniform"
    embeddings_regularizer: Any = None
    mask_zero: bool = field(default=False, kw_only=True)
    embeddings_constraint: Any = None
    input_length: int | None = field(
        default=None, kw_only=True, repr=False, validator=_deprecated_input_length
    )
    embeddings: Parameter = field(init=False, repr=False)
    _idx: IntArray = field(init=False, repr=False, factory=lambda: np.empty(0, np.intp))
    _last_idx: IntArray = field(
        init=False, repr=False, factory=lambda: np.empty(0, np.intp)
    )

    def __attrs_post_init__(self) -> None:
        # The base class reads input_dim as input_shape=(input_dim,); here it is the
        # vocabulary size, so that shorthand must not apply.
        self.check_components()

    def build(self, input_shape: Shape) -> None:
        self.embeddings = self.add_weight(
            "embeddings",
            (self.input_dim, self.output_dim),
            self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape, self.output_dim)

    def compute_mask(self, x: Array, mask: Array | None = None) -> Array | None:
        """Return ``x != 0`` with ``mask_zero``, else None (the mask of the output)."""
        return np.not_equal(x, 0) if self.mask_zero else None

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["input_dim"] = self.input_dim  # the base skips it as input_shape shorthand
        del config["input_length"]  # Keras 2's argument, ignored
        return config

    def _indices(self, x: Array) -> IntArray:
        """Return ``x`` as checked ``intp`` indices in a reused layer-owned array."""
        if not (np.issubdtype(x.dtype, np.number) and not np.iscomplexobj(x)):
            raise TypeError(
                f"Embedding layer {self.name!r} got indices of dtype {x.dtype}; "
                "expected an integer array (or floats holding whole numbers)."
            )
        if self._idx.size < x.size:
            self._idx = np.empty(x.size, np.intp)
        idx = self._idx[: x.size].reshape(x.shape)
        if x.size == 0:
            return idx
        with np.errstate(invalid="ignore"):  # NaN or inf: caught by the check below
            np.copyto(idx, x, casting="unsafe")
        if np.issubdtype(x.dtype, np.floating) and not np.array_equal(idx, x):
            flat = x.reshape(-1)
            bad = flat[np.flatnonzero(idx.reshape(-1) != flat)[0]]
            raise IndexError(
                f"Embedding layer {self.name!r} got index {float(bad)}, which is not a "
                f"whole number; expected integer indices in [0, {self.input_dim}). "
                "Pass token ids, not features."
            )
        low, high = int(idx.min()), int(idx.max())
        if low < 0 or high >= self.input_dim:
            bad_index = low if low < 0 else high
            fix = (
                "indices must be non-negative"
                if bad_index < 0
                else f"raise input_dim to at least {high + 1} or map the indices into range"
            )
            raise IndexError(
                f"Embedding layer {self.name!r} got index {bad_index}, outside "
                f"[0, input_dim={self.input_dim}); {fix}."
            )
        return idx

    def forward(self, x: Array, training: bool = False) -> FloatArray:
        """Return the embedding rows of ``x``'s indices in a layer-owned buffer."""
        idx = self._indices(np.asarray(x))
        self._last_idx = idx
        y = self.buffer("y", (*idx.shape, self.output_dim))
        # indices are checked above; "clip" only skips numpy's buffered bounds check
        return np.take(self.embeddings.value, idx, axis=0, out=y, mode="clip")

    def backward(self, dy: FloatArray) -> None:
        """Write dL/dembeddings (a scatter-add of ``dy`` rows by index); return None.

        Rows sharing an index are summed by sorting the indices and reducing each run
        with ``np.add.reduceat``, which is faster than ``np.add.at``.
        """
        if not self.trainable:
            return None
        grad = self.embeddings.grad
        grad.fill(0.0)
        idx = self._last_idx.reshape(-1)
        if idx.size == 0:
            return None
        rows = dy.reshape(-1, self.output_dim)
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        starts = np.flatnonzero(np.concatenate(([True], sorted_idx[1:] != sorted_idx[:-1])))
        grad[sorted_idx[starts]] = np.add.reduceat(rows[order], starts, axis=0)
        return None
