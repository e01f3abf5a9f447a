"""Sliding windows over a time series: Keras's ``timeseries_dataset_from_array``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from loopkit._data.pydataset import PyDataset
from loopkit.errors import ConfigError
from loopkit.random import new_generator

__all__ = ["TimeseriesDataset", "timeseries_dataset_from_array"]


class TimeseriesDataset(PyDataset):
    """Batches of windows cut from ``data`` (and their targets) on demand.

    Window ``k`` starts at ``start_index + positions[k]`` and takes
    ``sequence_length`` steps ``sampling_rate`` apart; its target is
    ``targets[start_index + positions[k]]``. Made by
    ``timeseries_dataset_from_array``; ``fit``, ``evaluate`` and ``predict`` take it
    as any ``PyDataset``.
    """

    def __init__(
        self,
        data: Any,
        targets: Any,
        positions: Any,
        offsets: Any,
        start_index: int,
        batch_size: int | None,
    ) -> None:
        super().__init__()
        self.data, self.targets = data, targets
        self.positions, self.offsets = positions, offsets
        self.start_index, self.batch_size = start_index, batch_size

    def __len__(self) -> int:
        if self.batch_size is None:
            return len(self.positions)
        return math.ceil(len(self.positions) / self.batch_size)

    def __getitem__(self, index: int) -> Any:
        if not -len(self) <= index < len(self):
            raise IndexError(f"batch {index} of a dataset of {len(self)} batches")
        index %= len(self)
        if self.batch_size is None:
            starts = self.positions[index : index + 1]
        else:
            starts = self.positions[index * self.batch_size : (index + 1) * self.batch_size]
        starts = starts + self.start_index
        x = np.asarray(self.data[(starts[:, None] + self.offsets).ravel()])
        x = x.reshape(len(starts), len(self.offsets), *x.shape[1:])
        y = None if self.targets is None else np.asarray(self.targets[starts])
        if self.batch_size is None:
            x = x[0]
            y = None if y is None else y[0]
        return x if y is None else (x, y)


def _int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"timeseries_dataset_from_array() got {name}={value!r} of type "
            f"{type(value).__name__}; expected an int >= {low}."
        )
    if value < low:
        raise ConfigError(
            f"timeseries_dataset_from_array() got {name}={value}; expected an int >= {low}."
        )
    return int(value)


def timeseries_dataset_from_array(
    data: Any,
    targets: Any,
    sequence_length: int,
    sequence_stride: int = 1,
    sampling_rate: int = 1,
    batch_size: int | None = 128,
    shuffle: bool = False,
    seed: int | None = None,
    start_index: int | None = None,
    end_index: int | None = None,
) -> TimeseriesDataset:
    """Return batches of sliding windows over ``data``, as Keras's function of that name.

    Keras returns a ``tf.data.Dataset``; this returns a ``PyDataset`` of the same
    batches (``(windows, targets)``, or windows alone when ``targets`` is None), cut
    from ``data`` when asked for, so the windows are never all in memory at once.
    With ``shuffle=True`` the windows are shuffled once, with ``seed``, as Keras
    shuffles its start positions; ``fit(shuffle=True)`` then reorders the batches
    every epoch (Keras reshuffles windows within a buffer of ``8 * batch_size``).

    Args:
        data: Time steps on axis 0 (array-like, memory-mapped arrays too).
        targets: ``targets[i]`` is the target of the window starting at step ``i``;
            None for windows alone.
        sequence_length: Steps per window.
        sequence_stride: Steps between the starts of successive windows.
        sampling_rate: Steps between successive steps of a window.
        batch_size: Windows per batch (the last may be smaller); None yields single
            windows.
        shuffle: Whether to shuffle the windows (once).
        seed: Seed of that shuffle.
        start_index: First step windows may use.
        end_index: Steps from this one on are not used.

    Raises:
        ConfigError: an argument out of range, or no window fits in the data.
    """
    call = "timeseries_dataset_from_array()"
    n = len(data)
    sequence_length = _int("sequence_length", sequence_length, 1)
    sampling_rate = _int("sampling_rate", sampling_rate, 1)
    sequence_stride = _int("sequence_stride", sequence_stride, 1)
    if batch_size is not None:
        batch_size = _int("batch_size", batch_size, 1)
    start = 0 if start_index is None else _int("start_index", start_index, 0)
    end = n if end_index is None else _int("end_index", end_index, 1)
    if start >= n or end > n or end <= start:
        raise ConfigError(
            f"{call} got start_index={start_index}, end_index={end_index} for data of "
            f"{n} steps; expected 0 <= start_index < end_index <= {n}."
        )
    count = end - start - (sequence_length - 1) * sampling_rate
    if targets is not None:
        count = min(count, len(targets) - start)
    if count <= 0:
        raise ConfigError(
            f"{call}: no window of sequence_length={sequence_length} steps "
            f"{sampling_rate} apart fits in steps {start}..{end - 1}"
            + ("" if targets is None else f" with {len(targets)} targets")
            + ". Pass more data, or a shorter sequence_length or sampling_rate."
        )
    positions = np.arange(0, count, sequence_stride, dtype=np.int64)
    if shuffle:
        seed = int(new_generator().integers(1_000_000)) if seed is None else seed
        np.random.RandomState(seed).shuffle(positions)  # Keras's order for a seed
    offsets = np.arange(0, sequence_length * sampling_rate, sampling_rate, dtype=np.int64)
    return TimeseriesDataset(data, targets, positions, offsets, start, batch_size)
