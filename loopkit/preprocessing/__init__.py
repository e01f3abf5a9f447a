"""Keras's ``keras.preprocessing``: ``sequence.pad_sequences`` and time-series windows.

The same functions as in ``loopkit.utils``, under the paths older Keras code imports
them from (``keras.preprocessing.sequence.pad_sequences``).
"""

from __future__ import annotations

from loopkit.preprocessing import sequence
from loopkit.utils import pad_sequences, timeseries_dataset_from_array

__all__ = ["pad_sequences", "sequence", "timeseries_dataset_from_array"]
