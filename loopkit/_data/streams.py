"""Batches drawn from a generator, an iterable or a Keras-style Sequence, prefetched."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from attrs import define, field

from loopkit._data.inputs import as_array
from loopkit._data.prefetch import Prefetcher
from loopkit.errors import ConfigError
from loopkit.typing import Array, FloatArray

__all__ = [
    "batch_rows",
    "Batch",
    "IterableDataset",
    "SequenceDataset",
    "epoch_permutation",
    "unpack_batch",
]

Batch = tuple[FloatArray, Array | None, FloatArray | None]
"""``(x, y, sample_weight)`` of one batch; ``y``/``sample_weight`` may be None."""


def batch_rows(
    n: int, batch_size: int, max_steps: int | None, shuffle: bool, seed: int, epoch: int
) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(start, stop, order)`` per batch of ``epoch``: rows ``order[start:stop]``.

    ``order`` is the pass's permutation, or None unshuffled. With ``max_steps``
    (``steps_per_epoch``) shorter than a pass, epochs continue through the data where
    the last one stopped, as Keras's iterator does, and a new pass (a new order)
    begins when one is used up. Batch ``k`` of the run is a function of (seed, epoch)
    only, so a resumed run draws the same batches.
    """
    full = math.ceil(n / batch_size)
    continuing = max_steps is not None and max_steps < full
    first = epoch * max_steps if continuing and max_steps is not None else 0
    count = min(full, max_steps) if max_steps is not None else full
    orders: dict[int, Any] = {}
    for k in range(first, first + count):
        rest, step = divmod(k, full)
        one_pass = rest if continuing else epoch
        if shuffle and one_pass not in orders:
            orders.clear()
            orders[one_pass] = epoch_permutation(seed, one_pass, n)
        yield step * batch_size, min(n, (step + 1) * batch_size), orders.get(one_pass)


def epoch_permutation(seed: int, epoch: int, n: int) -> Any:
    """Return the sample order of ``epoch``: a function of (seed, epoch) only.

    Deriving each epoch's order from its index (not from a generator advanced by
    earlier epochs) lets a resumed run shuffle exactly as an uninterrupted one.
    """
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch])))
    return rng.permutation(n)


def unpack_batch(item: Any, dtype: Any, call: str) -> Batch:
    """Turn one item from a generator or Sequence into ``(x, y, sample_weight)``."""
    if isinstance(item, tuple) and 1 <= len(item) <= 3:
        parts = list(item) + [None] * (3 - len(item))
    elif isinstance(item, np.ndarray):
        parts = [item, None, None]
    else:
        raise ConfigError(
            f"{call}: a batch from the data is {type(item).__name__}; expected a tuple "
            "(x, y) or (x, y, sample_weight) of arrays."
        )
    x = as_array(parts[0], dtype, "x of a batch", call)
    y = None if parts[1] is None else as_array(parts[1], None, "y of a batch", call)
    w = (
        None
        if parts[2] is None
        else as_array(parts[2], dtype, "sample_weight of a batch", call)
    )
    return x, y, w


def _converter(
    dtype: Any,
    call: str,
    check: Callable[[Batch, int], None] | None,
    unpack: Callable[[Any], Batch] | None = None,
) -> Callable[[tuple[int, Any]], Batch]:
    """Return the prefetch thread's work on ``(index, item)``: unpack, then check."""

    def convert(indexed: tuple[int, Any]) -> Batch:
        index, item = indexed
        batch = unpack(item) if unpack is not None else unpack_batch(item, dtype, call)
        if check is not None:
            check(batch, index)
        return batch

    return convert


@define(eq=False)
class SequenceDataset:
    """A Keras-style Sequence: ``len()`` batches fetched by index, prefetched in a thread.

    Args:
        sequence: Object with ``__len__`` and ``__getitem__(batch_index)``.
        shuffle: Visit batches in a new order every epoch (Keras shuffles batches).
        seed: With the epoch index, fixes each epoch's order.
        dtype: Float dtype of the model.
        max_steps: Batches per pass when fewer than ``len(sequence)``.
        call: The user's call, for error messages.
    """

    sequence: Any
    shuffle: bool = False
    seed: int = 0
    dtype: Any = np.float32
    max_steps: int | None = None
    call: str = "fit()"
    check: Callable[[Batch, int], None] | None = field(default=None, repr=False)
    """Runs on each batch (index within its pass) before it is yielded."""
    unpack: Callable[[Any], Batch] | None = field(default=None, repr=False)
    """Turns one item into a batch; ``unpack_batch`` (one input, one output) if None."""

    @property
    def steps(self) -> int:
        """Batches per pass."""
        n = len(self.sequence)
        return n if self.max_steps is None else min(n, self.max_steps)

    def batches(self, epoch: int) -> Iterator[Batch]:
        """Yield the batches of one pass, fetched ahead in a background thread.

        The sequence's ``on_epoch_begin()`` runs before the first batch is fetched and
        its ``on_epoch_end()`` after the last, when it defines them (as Keras 3 does).
        """
        n = len(self.sequence)
        order = epoch_permutation(self.seed, epoch, n) if self.shuffle else range(n)
        on_epoch_begin = getattr(self.sequence, "on_epoch_begin", None)
        on_epoch_end = getattr(self.sequence, "on_epoch_end", None)
        if callable(on_epoch_begin):  # Keras 3 calls PyDataset.on_epoch_begin too
            on_epoch_begin()
        items = (self.sequence[int(i)] for i in list(order)[: self.steps])
        yield from Prefetcher(
            enumerate(items), _converter(self.dtype, self.call, self.check, self.unpack)
        )
        if callable(on_epoch_end):
            on_epoch_end()


@define(eq=False)
class IterableDataset:
    """A generator or iterable of batches, drawn ahead in a background thread.

    Args:
        source: An iterator (one pass in all) or a re-iterable object (one pass per
            epoch).
        max_steps: Batches per epoch (``steps_per_epoch``); None runs until exhausted.
        dtype: Float dtype of the model.
        call: The user's call, for error messages.
    """

    source: Iterable[Any]
    max_steps: int | None = None
    dtype: Any = np.float32
    call: str = "fit()"
    check: Callable[[Batch, int], None] | None = field(default=None, repr=False)
    """Runs on each batch (index within its pass) before it is yielded."""
    unpack: Callable[[Any], Batch] | None = field(default=None, repr=False)
    """Turns one item into a batch; ``unpack_batch`` (one input, one output) if None."""
    _iterator: Iterator[Any] | None = field(default=None, repr=False)
    _prefetcher: Prefetcher | None = field(default=None, init=False, repr=False)

    @property
    def one_shot(self) -> bool:
        """Whether the source is an iterator that cannot be restarted."""
        return iter(self.source) is self.source

    @property
    def steps(self) -> int | None:
        """Batches per pass, when known."""
        return self.max_steps

    def batches(self, epoch: int) -> Iterator[Batch]:
        """Yield up to ``max_steps`` batches (all when None)."""
        if self.one_shot:
            if self._iterator is None:
                self._iterator = iter(self.source)
            iterator = self._iterator
        else:
            iterator = iter(self.source)
        if self._prefetcher is not None:
            # A pass left early (Ctrl-C, an error) may have left its thread inside the
            # source's next(); it must finish before another thread iterates the source.
            self._prefetcher.close(timeout=None)
        items: Iterator[Any] = iterator
        if self.max_steps is not None:
            items = (item for _, item in zip(range(self.max_steps), iterator, strict=False))
        self._prefetcher = Prefetcher(
            enumerate(items), _converter(self.dtype, self.call, self.check, self.unpack)
        )
        yield from self._prefetcher
