"""Keras's ``keras.preprocessing.sequence``: ``pad_sequences``."""

from __future__ import annotations

from loopkit._data.padding import pad_sequences

__all__ = ["pad_sequences"]
