"""Array datasets, and choosing the dataset for fit(x, y): checks, batching, shuffling."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
from attrs import define, field

from loopkit._data.inputs import (
    as_array,
    check_sample_shape,
    class_ids,
    class_weight_vector,
    from_table,
)
from loopkit._data.prefetch import Prefetcher
from loopkit._data.streams import (
    Batch,
    IterableDataset,
    SequenceDataset,
    batch_rows,
    epoch_permutation,
    unpack_batch,
)
from loopkit.errors import ConfigError, ShapeError
from loopkit.typing import Array, FloatArray

__all__ = [
    "ArrayDataset",
    "batch_rows",
    "Batch",
    "Dataset",
    "IterableDataset",
    "Prefetcher",
    "PySequence",
    "SequenceDataset",
    "as_array",
    "check_sample_shape",
    "class_weight_vector",
    "epoch_permutation",
    "make_dataset",
    "split_validation",
    "unpack_batch",
]


@runtime_checkable
class PySequence(Protocol):
    """Data that does not fit in memory: ``len()`` batches, fetched by index (Keras)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


class Dataset(Protocol):
    """What the loop draws batches from."""

    @property
    def steps(self) -> int | None:
        """Batches per pass, None when only the data knows (an unsized generator)."""
        ...

    def batches(self, epoch: int) -> Iterator[Batch]:
        """Yield the batches of one pass over the data."""
        ...


@define(eq=False)
class ArrayDataset:
    """In-memory (or memmapped) arrays, batched by slicing or by a shuffled gather.

    Shuffled batches are gathered into buffers allocated once and reused: the dataset
    is never copied. Each yielded batch is valid until the next one.

    Args:
        x: Inputs, one row per sample.
        y: Targets or None (predict).
        sample_weight: Per-sample weights or None.
        batch_size: Samples per batch; the last batch may be shorter.
        shuffle: Whether to visit samples in a new order every epoch.
        seed: With the epoch index, fixes each epoch's order.
        dtype: Float dtype of the model (for memmapped inputs converted per batch).
        max_steps: Stop each pass after this many batches (``steps_per_epoch``).
    """

    x: Array
    y: Array | None
    sample_weight: FloatArray | None
    batch_size: int
    shuffle: bool = False
    seed: int = 0
    dtype: Any = np.float32
    max_steps: int | None = None
    _buffers: dict[str, Array] = field(factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def steps(self) -> int:
        """Batches per pass."""
        steps = math.ceil(len(self.x) / self.batch_size)
        return steps if self.max_steps is None else min(steps, self.max_steps)

    def _gather(self, key: str, source: Array, index: Any) -> Array:
        buf = self._buffers.get(key)
        rows = len(index)
        if buf is None or buf.shape[0] < rows:
            dtype = self.dtype if key == "x" else source.dtype
            # never more rows than the data has: batch_size=10**12 is one batch, not
            # a 14 TiB buffer
            size = min(self.batch_size, len(source))
            buf = np.empty((size, *source.shape[1:]), dtype)
            self._buffers[key] = buf
        out = buf[:rows]
        if isinstance(source, np.memmap) or source.dtype != out.dtype:
            out[...] = source[index]  # converts while gathering (memmap, int targets)
        else:
            source.take(index, axis=0, out=out)  # the method: no np.take wrapper per step
        return out

    def batches(self, epoch: int) -> Iterator[Batch]:
        """Yield ``(x, y, sample_weight)`` batches of one epoch."""
        n = len(self.x)
        for start, stop, order in batch_rows(
            n, self.batch_size, self.max_steps, self.shuffle, self.seed, epoch
        ):
            if order is None:
                xb = self.x[start:stop]
                if isinstance(xb, np.memmap) or xb.dtype != self.dtype:
                    xb = np.asarray(xb, self.dtype)
                yb = None if self.y is None else self.y[start:stop]
                wb = None if self.sample_weight is None else self.sample_weight[start:stop]
            else:
                index = order[start:stop]
                xb = self._gather("x", self.x, index)
                yb = None if self.y is None else self._gather("y", self.y, index)
                wb = (
                    None
                    if self.sample_weight is None
                    else self._gather("w", self.sample_weight, index)
                )
            yield xb, yb, wb


def _is_list_of_batches(x: Any) -> bool:
    """Whether ``x`` is a list of ``(x, y[, sample_weight])`` batch tuples (re-iterable)."""
    return (
        isinstance(x, list)
        and len(x) > 0
        and all(
            isinstance(item, tuple)
            and 1 <= len(item) <= 3
            and isinstance(item[0], np.ndarray)
            and item[0].ndim >= 1
            for item in x
        )
    )


def make_dataset(
    x: Any,
    y: Any,
    sample_weight: Any,
    *,
    batch_size: int | None,
    shuffle: bool,
    seed: int,
    dtype: Any,
    steps: int | None,
    integer_targets: bool,
    class_weight: Mapping[int, float] | None,
    call: str,
    unpack: Callable[[Any], Batch] | None = None,
) -> ArrayDataset | SequenceDataset | IterableDataset:
    """Return the dataset for ``x``/``y`` with every check done before any step.

    Raises:
        ConfigError: empty data, batch_size with a generator, bad steps.
        ShapeError: ``x``, ``y`` and ``sample_weight`` disagree in length.
        TypeError: non-numeric data.
    """
    if steps is not None and (
        isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0
    ):
        raise ConfigError(f"{call} got steps={steps!r}; expected a positive int or None.")
    x, y = from_table(x), from_table(y)  # pandas DataFrames and Series, as Keras takes
    sample_weight = from_table(sample_weight, column=False)
    if _is_list_of_batches(x):
        if y is not None or sample_weight is not None or batch_size is not None:
            raise ConfigError(
                f"{call} got a list of (x, y) batches together with y, sample_weight or "
                "batch_size; the batches carry their own targets and size: pass only x."
            )
        return IterableDataset(x, max_steps=steps, dtype=dtype, call=call, unpack=unpack)
    is_array_like = isinstance(x, (np.ndarray, list, tuple, Mapping))
    if not is_array_like and x is not None and not isinstance(x, (str, bytes)):
        if y is not None or sample_weight is not None:
            raise ConfigError(
                f"{call} got a {type(x).__name__} as x together with y/sample_weight; a "
                "generator or Sequence yields (x, y[, sample_weight]) itself: pass y=None."
            )
        if batch_size is not None:
            raise ConfigError(
                f"{call} got batch_size={batch_size} with a {type(x).__name__}, which "
                "makes its own batches; leave batch_size=None."
            )
        if isinstance(x, PySequence) and not isinstance(x, Iterator):
            if len(x) == 0:
                raise ConfigError(
                    f"{call} got an empty Sequence (len 0); it must yield batches."
                )
            return SequenceDataset(
                x,
                shuffle=shuffle,
                seed=seed,
                dtype=dtype,
                max_steps=steps,
                call=call,
                unpack=unpack,
            )
        if isinstance(x, Iterable):
            return IterableDataset(
                x, max_steps=steps, dtype=dtype, call=call, unpack=unpack
            )
    if x is None:
        raise ConfigError(f"{call} got x=None; pass the input data as an array.")
    xa = as_array(x, dtype, "x", call)
    if xa.ndim == 0 or len(xa) == 0:
        raise ConfigError(
            f"{call} got x of shape {tuple(xa.shape)}: there are no samples. Pass an "
            "array with one row per sample."
        )
    ya = None
    if y is not None:
        ya = as_array(y, None, "y", call)
        if ya.dtype == np.bool_ or not (
            integer_targets and np.issubdtype(ya.dtype, np.integer)
        ):
            ya = ya.astype(dtype, copy=False)
        if ya.ndim == 0 or len(ya) != len(xa):
            raise ShapeError(
                f"{call} got x with {len(xa)} samples and y with "
                f"{len(ya) if ya.ndim else 'no'} samples; they must match along axis 0. "
                "Index both with one array to split or shuffle them."
            )
    wa = None
    if sample_weight is not None:
        # one scalar per sample: small enough to hold in memory even for a memmap
        wa = np.asarray(as_array(sample_weight, dtype, "sample_weight", call), dtype)
        if wa.shape[:1] != (len(xa),):
            raise ShapeError(
                f"{call} got sample_weight of shape {tuple(wa.shape)} for {len(xa)} "
                f"samples; expected shape ({len(xa)},), one weight per sample."
            )
    if class_weight is not None:
        if ya is None:
            raise ConfigError(
                f"{call} got class_weight without y; class weights need targets."
            )
        table = class_weight_vector(class_weight, call)
        ids = class_ids(ya)
        if ids.size and (ids.min() < 0 or ids.max() >= len(table)):
            table = np.concatenate([table, np.ones(int(ids.max()) + 1 - len(table))])
        per_sample = table[ids].astype(dtype)
        wa = per_sample if wa is None else (wa * per_sample).astype(dtype)
    size = 32 if batch_size is None else batch_size
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        raise ConfigError(f"{call} got batch_size={batch_size!r}; expected a positive int.")
    return ArrayDataset(
        xa, ya, wa, int(size), shuffle=shuffle, seed=seed, dtype=dtype, max_steps=steps
    )


def split_validation(
    dataset: ArrayDataset,
    validation_split: float,
    call: str,
    *,
    validation_batch_size: int | None = None,
    validation_steps: int | None = None,
) -> tuple[ArrayDataset, ArrayDataset]:
    """Split off the last ``validation_split`` of the samples, before any shuffling.

    Keras's rule: the training part is the first ``floor(n * (1 - split))`` samples.

    Args:
        dataset: The whole training data, as ``make_dataset`` returned it.
        validation_split: Fraction in ``(0, 1)`` to hold out from the end.
        call: The user's call, for error messages.
        validation_batch_size: Batch size of the held-out part (the training one
            when None).
        validation_steps: Validation batches per pass (all when None).

    Raises:
        ConfigError: either part would be empty, or a bad ``validation_batch_size``.
    """
    n = len(dataset)
    split_at = math.floor(n * (1.0 - validation_split))
    if split_at == 0 or split_at == n:
        raise ConfigError(
            f"{call} got validation_split={validation_split} with {n} samples, which "
            f"leaves {split_at} for training and {n - split_at} for validation; both "
            "need at least one. Use a split that keeps samples on both sides."
        )
    val_size = (
        dataset.batch_size if validation_batch_size is None else validation_batch_size
    )
    if (
        isinstance(val_size, bool)
        or not isinstance(val_size, (int, np.integer))
        or val_size <= 0
    ):
        raise ConfigError(
            f"{call} got validation_batch_size={validation_batch_size!r}; expected a "
            "positive int, or None to use batch_size."
        )

    def part(
        sl: slice, shuffle: bool, batch_size: int, max_steps: int | None
    ) -> ArrayDataset:
        w = None if dataset.sample_weight is None else dataset.sample_weight[sl]
        y = None if dataset.y is None else dataset.y[sl]
        return ArrayDataset(
            dataset.x[sl],
            y,
            w,
            batch_size,
            shuffle=shuffle,
            seed=dataset.seed,
            dtype=dataset.dtype,
            max_steps=max_steps,
        )

    return (
        part(slice(0, split_at), dataset.shuffle, dataset.batch_size, dataset.max_steps),
        part(slice(split_at, n), False, int(val_size), validation_steps),
    )
