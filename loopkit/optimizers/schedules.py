"""Keras's path to the learning-rate schedules: ``loopkit.optimizers.schedules``.

The same objects as ``loopkit.schedules``, re-exported under Keras's name.
"""

from __future__ import annotations

from loopkit.schedules import *  # noqa: F403
from loopkit.schedules import __all__ as __all__
