"""Each rank's part of every global batch: arrays, memmaps, Sequences and generators.

The rule, the same for every kind of data: a step's global batch (``world_size``
per-rank batches' worth of samples, or ``world_size`` batches of a Sequence or
generator) is cut into one contiguous part per rank, in rank order. Arrays are cut
as evenly as possible (``np.array_split``: part sizes differ by at most one, the
lower ranks get the extra samples), so every sample of the epoch is used exactly
once: none dropped, none repeated. When a global batch holds fewer items than there
are ranks (only possible at an epoch's last step), a rank without an item gets one
**padding sample of weight 0** (a copy of the global batch's first sample): it adds
nothing to the loss, the gradient or the metrics, so the step equals one process
training on the whole global batch; the shard reports it through ``samples`` (0).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from attrs import define, field

from loopkit._data.datasets import (
    ArrayDataset,
    Batch,
    IterableDataset,
    Prefetcher,
    SequenceDataset,
    epoch_permutation,
    unpack_batch,
)
from loopkit.errors import ConfigError
from loopkit.typing import Array

__all__ = ["ArrayShard", "IterableShard", "SequenceShard", "shard"]


def _padding(x: Array, y: Array | None, w: Array | None, dtype: Any) -> Batch:
    """Return one zero-weight sample copied from the first row of ``x``/``y``."""
    weight = np.zeros(1, dtype if w is None else w.dtype)
    return (
        np.array(x[:1], dtype=dtype),
        None if y is None else np.array(y[:1]),
        weight,
    )


@define(eq=False)
class _Shard:
    """What every shard tells the DataParallel plugin about the batch just yielded.

    Args:
        rank: This process's rank.
        world_size: How many ranks share each global batch.
    """

    rank: int
    world_size: int
    samples: int = field(default=0, init=False)
    """Real samples (weight may still be given) in the batch last yielded: 0 for padding."""
    balanced: bool = field(default=False, init=False)
    """Whether every rank's part of the last global batch holds as many samples."""
    epoch_samples: int = field(default=0, init=False)
    """Real samples yielded so far in the current epoch."""


@define(eq=False)
class ArrayShard(_Shard):
    """This rank's rows of each global batch of in-memory (or memmapped) arrays.

    Rows are gathered by index, so a memmap reads only this rank's rows.

    Args:
        data: The single-process dataset (its arrays, per-rank ``batch_size``,
            shuffle and seed).
    """

    data: ArrayDataset = field(kw_only=True)
    _buffers: dict[str, Array] = field(factory=dict, repr=False, init=False)

    @property
    def batch_size(self) -> int:
        """Samples per rank per step (the global batch is ``world_size`` times it)."""
        return self.data.batch_size

    @property
    def steps(self) -> int:
        """Global batches per epoch."""
        steps = math.ceil(len(self.data.x) / (self.batch_size * self.world_size))
        limit = self.data.max_steps
        return steps if limit is None else min(steps, limit)

    def _take(self, key: str, source: Array, index: Any) -> Array:
        dtype = self.data.dtype if key == "x" else source.dtype
        buf = self._buffers.get(key)
        if buf is None or buf.shape[0] < len(index):
            buf = np.empty((self.batch_size, *source.shape[1:]), dtype)
            self._buffers[key] = buf
        out = buf[: len(index)]
        out[...] = source[index]  # converts memmapped or integer rows while gathering
        return out

    def _rows(self, index: Any) -> Batch:
        d = self.data
        if isinstance(index, slice):
            x = d.x[index]
            if isinstance(x, np.memmap) or x.dtype != d.dtype:
                x = np.asarray(x, d.dtype)
            y = None if d.y is None else d.y[index]
            w = None if d.sample_weight is None else d.sample_weight[index]
            return x, y, w
        y = None if d.y is None else self._take("y", d.y, index)
        w = None if d.sample_weight is None else self._take("w", d.sample_weight, index)
        return self._take("x", d.x, index), y, w

    def batches(self, epoch: int) -> Iterator[Batch]:
        """Yield this rank's part of each global batch of ``epoch``."""
        d, size = self.data, self.world_size
        n, glob = len(d.x), self.batch_size * self.world_size
        order = epoch_permutation(d.seed, epoch, n) if d.shuffle else None
        self.epoch_samples = 0
        for step in range(self.steps):
            lo = step * glob
            m = min(n, lo + glob) - lo
            q, extra = divmod(m, size)
            start = lo + self.rank * q + min(self.rank, extra)
            count = q + (self.rank < extra)
            self.samples, self.balanced = count, extra == 0
            self.epoch_samples += count
            if count == 0:
                first = slice(lo, lo + 1) if order is None else order[lo : lo + 1]
                x, y, w = self._rows(first)
                yield _padding(x, y, w, d.dtype)
            elif order is None:
                yield self._rows(slice(start, start + count))
            else:
                yield self._rows(order[start : start + count])


class _Picked:
    """A Sequence seen through a list of its indices (this rank's, in epoch order)."""

    def __init__(self, sequence: Any, indices: list[int]) -> None:
        self.sequence, self.indices = sequence, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.sequence[self.indices[i]]


@define(eq=False)
class SequenceShard(_Shard):
    """This rank's batches of a Keras-style Sequence: batch ``k * world_size + rank``.

    Each step's global batch is ``world_size`` consecutive batches of the epoch's
    (shuffled) batch order; this rank fetches only its own, so it reads nothing of
    the others'.

    Args:
        data: The single-process dataset (the Sequence, shuffle, seed, max_steps).
    """

    data: SequenceDataset = field(kw_only=True)

    @property
    def steps(self) -> int:
        """Global batches per epoch."""
        steps = math.ceil(len(self.data.sequence) / self.world_size)
        limit = self.data.max_steps
        return steps if limit is None else min(steps, limit)

    def batches(self, epoch: int) -> Iterator[Batch]:
        """Yield this rank's batch of each step; padding where it has none."""
        d, size = self.data, self.world_size
        n = len(d.sequence)
        order = (
            [int(i) for i in epoch_permutation(d.seed, epoch, n)]
            if d.shuffle
            else list(range(n))
        )
        mine = [k * size + self.rank for k in range(self.steps)]
        # a negative pick -1 - i: padding copied from batch i, the step's first
        picks = [order[i] if i < n else -1 - order[i - self.rank] for i in mine]

        def fetch(pick: int) -> tuple[Batch, bool]:
            index = pick if pick >= 0 else -1 - pick
            batch = unpack_batch(d.sequence[index], d.dtype, d.call)
            return (batch if pick >= 0 else _padding(*batch, d.dtype)), pick < 0

        self.balanced, self.epoch_samples = False, 0
        for batch, padding in Prefetcher(iter(picks), fetch):
            self.samples = 0 if padding else len(batch[0])
            self.epoch_samples += self.samples
            yield batch
        on_epoch_end = getattr(d.sequence, "on_epoch_end", None)
        if callable(on_epoch_end):
            on_epoch_end()


@define(eq=False)
class IterableShard(_Shard):
    """Item ``k * world_size + rank`` of a generator or iterable of batches.

    Every rank runs the same generator, draws each group of ``world_size`` items and
    keeps its own, so all ranks agree, with no message, on when the data ends and on
    which rank gets padding in a short last group. Each rank therefore draws every
    item (converting only its own): for data too large to draw ``world_size`` times,
    use a Sequence, which reads only this rank's batches.

    Args:
        data: The single-process dataset (the source and ``max_steps``, in global
            steps).
    """

    data: IterableDataset = field(kw_only=True)
    _iterator: Iterator[Any] | None = field(default=None, init=False, repr=False)

    @property
    def steps(self) -> int | None:
        """Global batches per epoch, when known."""
        return self.data.max_steps

    def _groups(self, epoch: int) -> Iterator[tuple[Any, bool]]:
        d = self.data
        if d.one_shot:
            if self._iterator is None:
                self._iterator = iter(d.source)
            iterator = self._iterator
        else:
            iterator = iter(d.source)
        step = 0
        while d.max_steps is None or step < d.max_steps:
            group = [it for _, it in zip(range(self.world_size), iterator, strict=False)]
            if not group:
                return
            mine = self.rank < len(group)
            yield (group[self.rank] if mine else group[0]), not mine
            step += 1

    def batches(self, epoch: int) -> Iterator[Batch]:
        """Yield this rank's item of each group of ``world_size`` items."""
        d = self.data

        def convert(item: tuple[Any, bool]) -> tuple[Batch, bool]:
            batch = unpack_batch(item[0], d.dtype, d.call)
            return (_padding(*batch, d.dtype) if item[1] else batch), item[1]

        self.balanced, self.epoch_samples = False, 0
        for batch, padding in Prefetcher(self._groups(epoch), convert):
            self.samples = 0 if padding else len(batch[0])
            self.epoch_samples += self.samples
            yield batch


Shard = ArrayShard | SequenceShard | IterableShard


def shard(data: Any, rank: int, world_size: int, seed: int | None = None) -> Shard:
    """Return ``rank``'s shard of the training data ``data`` (see the module's rule).

    Args:
        data: ``state.train_data`` as ``fit`` made it: arrays, a Sequence or an
            iterable of batches.
        rank: This process's rank, ``0 <= rank < world_size``.
        world_size: How many ranks share each global batch.
        seed: The shuffle seed every rank must use (rank 0's), replacing the data's;
            None keeps it.

    Raises:
        ConfigError: ``data`` is of a kind that cannot be sharded, or the rank is
            out of range.
    """
    if not 0 <= rank < world_size:
        raise ConfigError(
            f"shard() got rank={rank} with world_size={world_size}; expected "
            "0 <= rank < world_size."
        )
    if seed is not None and isinstance(data, (ArrayDataset, SequenceDataset)):
        data.seed = int(seed)
    if isinstance(data, ArrayDataset):
        return ArrayShard(rank, world_size, data=data)
    if isinstance(data, SequenceDataset):
        return SequenceShard(rank, world_size, data=data)
    if isinstance(data, IterableDataset):
        return IterableShard(rank, world_size, data=data)
    raise ConfigError(
        f"shard() got training data of type {type(data).__name__}; expected what "
        "fit() makes of arrays, a Sequence or a generator (state.train_data)."
    )
