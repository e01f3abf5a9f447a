"""Keras 3's base class for batch-by-index data sets: ``keras.utils.PyDataset``."""

from __future__ import annotations

from typing import Any

__all__ = ["PyDataset", "Sequence"]


class PyDataset:
    """Base class for data that yields one batch per index, as ``keras.utils.PyDataset``.

    Subclasses implement ``__len__`` (the number of batches) and
    ``__getitem__(index)`` (one batch: ``x``, ``(x, y)`` or ``(x, y, sample_weight)``),
    and may override ``on_epoch_begin``/``on_epoch_end``, which ``fit`` calls before
    and after each pass (``evaluate``/``predict`` after their one pass)::

        class Batches(loopkit.utils.PyDataset):
            def __init__(self, x, y, batch_size, **kwargs):
                super().__init__(**kwargs)
                self.x, self.y, self.batch_size = x, y, batch_size

            def __len__(self):
                return math.ceil(len(self.x) / self.batch_size)

            def __getitem__(self, idx):
                part = slice(idx * self.batch_size, (idx + 1) * self.batch_size)
                return self.x[part], self.y[part]

    loopkit needs no base class (any object with ``__len__``/``__getitem__`` is a
    Sequence); this one lets Keras code run unchanged.

    Args:
        workers: Kept for Keras compatibility and ignored: loopkit calls
            ``__getitem__`` from one background prefetch thread, never from worker
            threads or processes.
        use_multiprocessing: Kept for Keras compatibility and ignored (see
            ``workers``).
        max_queue_size: Kept for Keras compatibility and ignored: loopkit
            prefetches a fixed, small number of batches.
    """

    def __init__(
        self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10
    ) -> None:
        self.workers = workers
        self.use_multiprocessing = use_multiprocessing
        self.max_queue_size = max_queue_size

    def __len__(self) -> int:
        """Return the number of batches; subclasses must implement it."""
        raise NotImplementedError(
            f"{type(self).__name__} defines no __len__: a PyDataset must implement "
            "__len__(self) returning its number of batches. loopkit has no endless "
            "PyDataset (num_batches None); pass a generator and steps_per_epoch instead."
        )

    def __getitem__(self, index: int) -> Any:
        """Return batch ``index``; subclasses must implement it."""
        raise NotImplementedError(
            f"{type(self).__name__} defines no __getitem__: a PyDataset must implement "
            "__getitem__(self, index) returning batch `index` as (x, y) or "
            "(x, y, sample_weight)."
        )

    @property
    def num_batches(self) -> int | None:
        """The number of batches, ``len(self)`` (Keras: None means endless)."""
        return len(self)

    def on_epoch_begin(self) -> None:
        """Called before each pass over the data; does nothing unless overridden."""

    def on_epoch_end(self) -> None:
        """Called after each pass over the data; does nothing unless overridden."""


Sequence = PyDataset
"""Keras 3's alias: ``keras.utils.Sequence`` is ``keras.utils.PyDataset``."""
