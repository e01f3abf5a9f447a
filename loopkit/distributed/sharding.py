"""Each rank's part of every global batch: arrays, memmaps, Sequences and generators.

The rule, the same for every kind of data: a step's global batch (``world_size``
per-rank batches' worth of samples, or ``world_size`` batches of a Sequence or
generator) is cut into one contiguous part per rank, in rank order. Arrays are cut
as evenly as possible (``np.array_split``: part sizes differ by at most one, the
lower ranks get the extra samples), so every sample of the epoch is used exactly
once: none dropped, none repeated. The global batches themselves are the ones one
process would draw with a ``world_size`` times larger batch (the same order, the
same continuation across epochs under ``steps_per_epoch``). Several inputs or
outputs (a graph model's lists or dicts of arrays) are cut by the same rows. When a
global batch holds fewer items than there are ranks (only possible at an epoch's
last step), a rank without an item gets one **padding sample of weight 0** (a copy
of the global batch's first sample): it adds nothing to the loss, the gradient or
the metrics, so the step equals one process training on the whole global batch; the
shard reports it through ``samples`` (0). Evaluation runs no step in lockstep, so its
shards (``lockstep=False``) skip such steps instead, and pad only a rank that would
otherwise have no sample at all in the pass.
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
    batch_rows,
    epoch_permutation,
    unpack_batch,
)
from loopkit._data.structures import StructuredDataset
from loopkit.errors import ConfigError
from loopkit.typing import Array

__all__ = ["ArrayShard", "IterableShard", "SequenceShard", "batch_samples", "shard"]


def batch_samples(x: Any) -> int:
    """Return the rows of a batch's ``x``: one array, or a list of them (several inputs)."""
    return len(x) if isinstance(x, np.ndarray) else batch_samples(x[0])


def _first_row(value: Any, dtype: Any = None) -> Any:
    """Return a copy of the first row of an array, or of each array of a list."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [_first_row(v, dtype) for v in value]
    return np.array(value[:1], dtype=dtype)


def _padding(batch: Batch, dtype: Any) -> Batch:
    """Return one zero-weight sample copied from the first row of ``batch``.

    Several outputs (``y`` a list) get one zero weight each, so no output's loss or
    metric counts the copy.
    """
    x, y, w = batch
    outputs = y if isinstance(y, list) else w if isinstance(w, list) else None
    weight: Any = (
        np.zeros(1, dtype)
        if outputs is None
        else [np.zeros(1, dtype) for _ in range(len(outputs))]
    )
    return _first_row(x, dtype), _first_row(y), weight


def _unpack(data: SequenceDataset | IterableDataset, item: Any, index: int) -> Batch:
    """Convert one item of a Sequence or generator as ``fit`` would, checks included."""
    if data.unpack is not None:
        batch = data.unpack(item)
    else:
        batch = unpack_batch(item, data.dtype, data.call)
    if data.check is not None:
        data.check(batch, index)
    return batch


@define(eq=False)
class _Shard:
    """What every shard tells the DataParallel plugin about the batch just yielded.

    Args:
        rank: This process's rank.
        world_size: How many ranks share each global batch.
        lockstep: Yield one batch per global step on every rank, padding where this
            rank has no sample (training: every step ends in an allreduce). False
            (evaluation): skip such steps; pad only a pass that would be empty.
    """

    rank: int
    world_size: int
    lockstep: bool = field(default=True, kw_only=True)
    samples: int = field(default=0, init=False)
    """Real samples (weight may still be given) in the batch last yielded: 0 for padding."""
    balanced: bool = field(default=False, init=False)
    """Whether every rank's part of the last global batch holds as many samples."""
    epoch_samples: int = field(default=0, init=False)
    """Real samples yielded so far in the current pass."""
    epoch_rows: int = field(default=0, init=False)
    """Rows yielded so far in the current pass, padding included (what the loop counts)."""

    def _yielded(self, rows: int, samples: int) -> None:
        self.samples = samples
        self.epoch_samples += samples
        self.epoch_rows += rows


@define(eq=False)
class ArrayShard(_Shard):
    """This rank's rows of each global batch of in-memory (or memmapped) arrays.

    Rows are gathered by index, so a memmap reads only this rank's rows. The data may
    be one array per ``x``, ``y`` and ``sample_weight``, or several (a graph model
    with several inputs or outputs): every array is cut by the same rows.

    Args:
        data: The single-process dataset (its arrays, per-rank ``batch_size``,
            shuffle, seed and ``max_steps``).
    """

    data: ArrayDataset | StructuredDataset = field(kw_only=True)
    _buffers: dict[str, Array] = field(factory=dict, repr=False, init=False)

    @property
    def batch_size(self) -> int:
        """Samples per rank per step (the global batch is ``world_size`` times it)."""
        return self.data.batch_size

    @property
    def steps(self) -> int:
        """Global batches per epoch."""
        steps = math.ceil(len(self.data) / (self.batch_size * self.world_size))
        limit = self.data.max_steps
        return steps if limit is None else min(steps, limit)

    def _take(self, key: str, source: Any, index: Any, dtype: Any) -> Any:
        """Return rows ``index`` (a slice or indices) of ``source`` as ``dtype``."""
        if source is None:
            return None
        if isinstance(index, slice):
            rows = source[index]
            if isinstance(rows, np.memmap) or rows.dtype != dtype:
                rows = np.asarray(rows, dtype)
            return rows
        buf = self._buffers.get(key)
        if buf is None or buf.shape[0] < len(index):
            buf = np.empty((self.batch_size, *source.shape[1:]), dtype)
            self._buffers[key] = buf
        out = buf[: len(index)]
        out[...] = source[index]  # converts memmapped or integer rows while gathering
        return out

    def _rows(self, index: Any) -> Batch:
        d = self.data
        if isinstance(d, ArrayDataset):
            ya, wa = d.y, d.sample_weight
            return (
                self._take("x", d.x, index, d.dtype),
                None if ya is None else self._take("y", ya, index, ya.dtype),
                None if wa is None else self._take("w", wa, index, wa.dtype),
            )
        xs = [self._take(f"x{i}", a, index, d.dtype) for i, a in enumerate(d.xs)]
        ys = (
            None
            if d.ys is None
            else [self._take(f"y{i}", a, index, a.dtype) for i, a in enumerate(d.ys)]
        )
        ws = (
            None
            if d.ws is None
            else [
                None if a is None else self._take(f"w{i}", a, index, a.dtype)
                for i, a in enumerate(d.ws)
            ]
        )
        x: Any = xs[0] if len(xs) == 1 else xs  # as StructuredDataset.batches shapes it
        y: Any = None if ys is None else ys[0] if d.n_outputs == 1 else ys
        w: Any = None if ws is None else ws[0] if d.n_outputs == 1 else ws
        return x, y, w

    def batches(self, epoch: int) -> Iterator[Batch]:
        """Yield this rank's part of each global batch of ``epoch``."""
        d, size = self.data, self.world_size
        self.epoch_samples = self.epoch_rows = 0
        for lo, hi, order in batch_rows(
            len(d), self.batch_size * size, d.max_steps, d.shuffle, d.seed, epoch
        ):
            q, extra = divmod(hi - lo, size)
            start = lo + self.rank * q + min(self.rank, extra)
            count = q + (self.rank < extra)
            self.balanced = extra == 0
            if count == 0 and not self.lockstep:
                continue
            if count == 0:
                first = slice(lo, lo + 1) if order is None else order[lo : lo + 1]
                self._yielded(1, 0)
                yield _padding(self._rows(first), d.dtype)
                continue
            self._yielded(count, count)
            part = slice(start, start + count)
            yield self._rows(part if order is None else order[part])
        if self.epoch_rows == 0 and not self.lockstep:  # fewer samples than ranks
            self._yielded(1, 0)
            yield _padding(self._rows(slice(0, 1)), d.dtype)


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
        if not self.lockstep:
            picks = [p for p in picks if p >= 0] or [-1 - order[0]]

        def fetch(pick: int) -> tuple[Batch, bool]:
            index = pick if pick >= 0 else -1 - pick
            batch = _unpack(d, d.sequence[index], index)
            return (batch if pick >= 0 else _padding(batch, d.dtype)), pick < 0

        self.balanced, self.epoch_samples, self.epoch_rows = False, 0, 0
        on_epoch_begin = getattr(d.sequence, "on_epoch_begin", None)
        if callable(on_epoch_begin):  # as SequenceDataset.batches does, as Keras 3
            on_epoch_begin()
        for batch, padding in Prefetcher(iter(picks), fetch):
            rows = batch_samples(batch[0])
            self._yielded(rows, 0 if padding else rows)
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

    def _groups(self, epoch: int) -> Iterator[tuple[Any, bool, int]]:
        d = self.data
        if d.one_shot:
            if self._iterator is None:
                self._iterator = iter(d.source)
            iterator = self._iterator
        else:
            iterator = iter(d.source)
        step, first, kept = 0, None, 0
        while d.max_steps is None or step < d.max_steps:
            group = [it for _, it in zip(range(self.world_size), iterator, strict=False)]
            if not group:
                break
            first = group[0] if first is None else first
            mine = self.rank < len(group)
            index = step * self.world_size + (self.rank if mine else 0)
            step += 1
            if mine or self.lockstep:
                kept += 1
                yield (group[self.rank] if mine else group[0]), not mine, index
        if kept == 0 and first is not None and not self.lockstep:
            yield first, True, 0

    def batches(self, epoch: int) -> Iterator[Batch]:
        """Yield this rank's item of each group of ``world_size`` items."""
        d = self.data

        def convert(item: tuple[Any, bool, int]) -> tuple[Batch, bool]:
            batch = _unpack(d, item[0], item[2])
            return (_padding(batch, d.dtype) if item[1] else batch), item[1]

        self.balanced, self.epoch_samples, self.epoch_rows = False, 0, 0
        for batch, padding in Prefetcher(self._groups(epoch), convert):
            rows = batch_samples(batch[0])
            self._yielded(rows, 0 if padding else rows)
            yield batch


Shard = ArrayShard | SequenceShard | IterableShard


def shard(
    data: Any,
    rank: int,
    world_size: int,
    seed: int | None = None,
    *,
    lockstep: bool = True,
) -> Shard:
    """Return ``rank``'s shard of the training data ``data`` (see the module's rule).

    Args:
        data: A dataset as ``fit`` or ``evaluate`` made it (``state.train_data``,
            ``state.eval_data``): arrays (one or several inputs and outputs), a
            Sequence or an iterable of batches.
        rank: This process's rank, ``0 <= rank < world_size``.
        world_size: How many ranks share each global batch.
        seed: The shuffle seed every rank must use (rank 0's), replacing the data's;
            None keeps it.
        lockstep: Every rank yields a batch at every global step, padding where it has
            no sample (training). False for evaluation: ranks skip such steps.

    Raises:
        ConfigError: ``data`` is of a kind that cannot be sharded, or the rank is
            out of range.
    """
    if not 0 <= rank < world_size:
        raise ConfigError(
            f"shard() got rank={rank} with world_size={world_size}; expected "
            "0 <= rank < world_size."
        )
    if seed is not None and isinstance(
        data, (ArrayDataset, StructuredDataset, SequenceDataset)
    ):
        data.seed = int(seed)
    if isinstance(data, (ArrayDataset, StructuredDataset)):
        return ArrayShard(rank, world_size, lockstep=lockstep, data=data)
    if isinstance(data, SequenceDataset):
        return SequenceShard(rank, world_size, lockstep=lockstep, data=data)
    if isinstance(data, IterableDataset):
        return IterableShard(rank, world_size, lockstep=lockstep, data=data)
    raise ConfigError(
        f"shard() got data of type {type(data).__name__}; expected what fit() or "
        "evaluate() makes of arrays, a Sequence or a generator (state.train_data, "
        "state.eval_data)."
    )
