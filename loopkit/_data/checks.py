"""Value checks on training data, run before the first step: whole arrays, or each batch.

Shapes are checked where data is converted; this module checks values. Array
inputs are checked whole once, vectorized in chunks (a pass over the data, no
Python loop over samples, bounded scratch memory); batches from a generator or
Sequence are checked as they arrive, in the prefetch thread, before the loop uses
them. Every message names the first offending index.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError, ShapeError
from loopkit.losses import BinaryCrossentropy, SparseCategoricalCrossentropy
from loopkit.typing import Array

__all__ = [
    "BatchCheck",
    "check_dataset",
    "check_labels",
    "check_structured",
    "check_values",
]

_CHUNK = 1 << 20  # elements per vectorized step: bounds the scratch masks


def _first(array: Array, bad: Callable[[Array], Array]) -> tuple[int, ...] | None:
    """Return the index of the first element where ``bad`` holds, or None (chunked)."""
    if array.size == 0:
        return None
    if array.ndim == 0:
        return () if bool(bad(array)) else None
    rows = max(1, _CHUNK // max(1, array[0].size))
    for start in range(0, len(array), rows):
        mask = bad(np.asarray(array[start : start + rows]))
        if mask.any():
            index = np.unravel_index(int(np.argmax(mask)), mask.shape)
            return (start + int(index[0]), *(int(i) for i in index[1:]))
    return None


def _where(index: tuple[int, ...], offset: int) -> str:
    if not index:
        return ""
    sample = index[0] + offset
    rest = f", position {index[1:]}" if len(index) > 1 else ""
    return f" (first at sample {sample}{rest})"


def check_values(array: Array, what: str, call: str, offset: int = 0) -> None:
    """Raise ConfigError if the float ``array`` holds NaN or inf, naming the first.

    Args:
        array: Inputs, targets or sample weights.
        what: Their name, e.g. ``"x"``.
        call: The user's call, e.g. ``"fit()"``.
        offset: Index of ``array``'s first sample in the whole data (for batches).
    """
    if array.dtype.kind != "f" or array.size == 0:
        return
    low, high = np.min(array), np.max(array)  # NaN propagates: no scratch array
    if np.isfinite(low) and np.isfinite(high):
        return
    index = _first(array, lambda a: ~np.isfinite(a))
    assert index is not None
    raise ConfigError(
        f"{call} got {what} holding {array[index]}{_where(index, offset)}; NaN or inf "
        "would make the loss NaN from the first step. Clean or impute the data "
        "(np.nan_to_num, or drop those samples)."
    )


def _classes(model: Any) -> int | None:
    shape = getattr(model, "output_shape", None)
    return int(shape[-1]) if shape and shape[-1] is not None else None


def check_labels(y: Array, model: Any, call: str, offset: int = 0) -> None:
    """Raise ConfigError if targets ``y`` cannot be labels for the model's loss.

    Sparse categorical cross-entropy needs integral labels in ``[0, classes)`` (or
    its ``ignore_class``); Keras truncates 1.5 to 1 and fails on a high label only
    when it is reached. Binary cross-entropy needs targets in ``[0, 1]``; outside,
    the loss has no minimum and training diverges.
    """
    loss = getattr(model, "loss", None)
    if y.size == 0:
        return
    if isinstance(loss, SparseCategoricalCrossentropy):
        if y.dtype.kind == "f":
            index = _first(y, lambda a: a != np.rint(a))
            if index is not None:
                raise ConfigError(
                    f"{call} got y holding the label {y[index]}{_where(index, offset)}, "
                    f"which is not a whole number; {loss.name!r} takes integer class ids "
                    "(Keras would truncate it silently). Pass integer labels, or use "
                    "a categorical loss for soft targets."
                )
        classes = _classes(model)
        if classes is None:
            return
        ignore = loss.ignore_class

        def out_of_range(a: Array) -> Array:
            bad = (a < 0) | (a >= classes)
            return bad if ignore is None else bad & (a != ignore)

        index = _first(y, out_of_range)
        if index is not None:
            label = y[index]
            raise ConfigError(
                f"{call} got y holding the label {label}{_where(index, offset)}, outside "
                f"[0, {classes}) for a model with {classes} output classes. Use labels "
                f"0..{classes - 1}, or compile the loss with ignore_class={label} to "
                "skip it."
            )
    elif isinstance(loss, BinaryCrossentropy):
        index = _first(y, lambda a: (a < 0) | (a > 1))
        if index is not None:
            raise ConfigError(
                f"{call} got y holding {y[index]}{_where(index, offset)}; binary "
                "cross-entropy takes targets in [0, 1] (0/1 labels or probabilities). "
                "Map the labels to 0 and 1, or use a sparse categorical loss for more "
                "classes."
            )


def check_dataset(dataset: Any, model: Any, call: str) -> None:
    """Check a dataset before the first step: arrays whole now, batches as they come.

    Array datasets (``x``, ``y``, ``sample_weight``) are checked at once. Datasets
    drawing batches (generators, Sequences) get a ``BatchCheck`` that runs on each
    batch in the prefetch thread.

    Raises:
        ConfigError: NaN or inf in the data, labels the loss cannot take.
    """
    x = getattr(dataset, "x", None)
    if x is not None:
        check_values(x, "x", call)
        y = getattr(dataset, "y", None)
        if y is not None:
            check_values(y, "y", call)
            check_labels(y, model, call)
        w = getattr(dataset, "sample_weight", None)
        if w is not None:
            check_values(w, "sample_weight", call)
    elif hasattr(dataset, "check"):
        dataset.check = BatchCheck(model, call)


def check_structured(dataset: Any, model: Any, call: str) -> None:
    """Check every array of a several-input or several-output dataset before any step.

    Each output's targets are checked against that output's loss and shape.

    Raises:
        ConfigError: NaN or inf in the data, labels an output's loss cannot take.
    """
    for name, x in zip(model.input_names, dataset.xs, strict=True):
        check_values(x, f"x[{name!r}]", call)
    shapes = [t.sample_shape for t in model.outputs]
    for i, (head, shape) in enumerate(zip(model.heads, shapes, strict=True)):
        if dataset.ys is not None:
            y = dataset.ys[i]
            check_values(y, f"y[{head.name!r}]", call)
            check_labels(y, SimpleNamespace(loss=head.loss, output_shape=shape), call)
        if dataset.ws is not None and dataset.ws[i] is not None:
            check_values(dataset.ws[i], f"sample_weight[{head.name!r}]", call)


_Shapes = tuple[tuple[int | None, ...], tuple[int | None, ...] | None]
"""A batch's sample shapes of x and y; None where any length is allowed."""


def _fits_batch(expected: _Shapes, shapes: _Shapes) -> bool:
    """Whether the shapes of a batch are ``expected`` with None axes of any length."""
    for want, got in zip(expected, shapes, strict=True):
        if want is None or got is None:
            if want is not got:
                return False
            continue
        if len(want) != len(got) or any(
            w is not None and w != g for w, g in zip(want, got, strict=True)
        ):
            return False
    return True


@define(eq=False)
class BatchCheck:
    """Checks each batch of a generator or Sequence before the loop uses it.

    The first batch fixes the sample shapes of ``x`` and ``y``; every later batch
    must match them (a batch of another width would otherwise fail inside a matrix
    product, or worse, broadcast). Values and labels are checked as for arrays.

    Args:
        model: The model being fit (its loss and output shape, read when known).
        call: The user's call, for messages.
    """

    model: Any
    call: str
    _shapes: _Shapes | None = field(default=None, init=False)

    def _free_lengths(self, shapes: _Shapes) -> _Shapes:
        """The first batch's shapes, None where the model takes any length.

        An axis of ``x`` is free where the model's input shape has None; a leading
        axis of ``y`` is free where the output shape has None (a sequence output).
        """
        x_shape, y_shape = shapes
        inputs = getattr(self.model, "input_shape", None)
        if inputs is not None and len(inputs) == len(x_shape):
            pairs = zip(inputs, x_shape, strict=True)
            x_shape = tuple(None if d is None else s for d, s in pairs)
        outputs = getattr(self.model, "output_shape", None)
        if y_shape is not None and outputs is not None and len(y_shape) <= len(outputs):
            # leading axes: sparse labels (steps,) of an output (steps, classes) too
            free = [d is None for d in outputs[: len(y_shape)]]
            y_shape = tuple(None if f else s for f, s in zip(free, y_shape, strict=True))
        return x_shape, y_shape

    def __call__(self, batch: tuple[Array, Array | None, Array | None], index: int) -> None:
        """Raise ShapeError or ConfigError if batch ``index`` cannot be trained on."""
        x, y, w = batch
        where = f"{self.call}: batch {index} from the data"
        shapes = (tuple(x.shape[1:]), None if y is None else tuple(y.shape[1:]))
        if self._shapes is None:
            self._shapes = self._free_lengths(shapes)
        elif shapes != self._shapes and not _fits_batch(self._shapes, shapes):
            raise ShapeError(
                f"{where} has x of shape {tuple(x.shape)} and y of shape "
                f"{None if y is None else tuple(y.shape)}; the first batch had samples "
                f"of shape {self._shapes[0]} and targets of shape {self._shapes[1]}. "
                "Every batch must hold samples of one shape (only an axis the "
                "model's Input leaves as None may change from batch to batch)."
            )
        if y is not None and len(y) != len(x):
            raise ShapeError(
                f"{where} has {len(x)} samples in x and {len(y)} in y; they must match."
            )
        check_values(x, "x", where)
        if y is not None:
            check_values(y, "y", where)
            check_labels(y, self.model, where)
        if w is not None:
            check_values(w, "sample_weight", where)
