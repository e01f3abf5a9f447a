"""A calibration probe: the machine's current speed, to drop timings taken while it is slow.

On a shared virtual machine the host may run this one at half speed for seconds at
a time, with nothing inside the machine to show for it (seen here: a fixed loop
takes 1.6-2x as long for ~10 s, then is back to normal). Each timed repetition is
bracketed by this probe; the report keeps the repetitions whose probes ran at the
run's best speed. The probe is a fixed amount of vectorized work, whose time is the
same in every process within 1-2% (a pure-Python loop varies 10-20% between
processes with their memory layout).
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["SLOW", "is_clean", "probe"]

SLOW = 1.3
"""A probe this many times slower than the run's fastest marks the machine as slow."""

_INPUT = np.linspace(0.0, 1.0, 65536, dtype=np.float32)
_OUTPUT = np.empty_like(_INPUT)


def probe() -> float:
    """Return the best of three timings of ten ``sin`` over 64Ki floats (~0.3 ms)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(10):
            np.sin(_INPUT, out=_OUTPUT)
        best = min(best, time.perf_counter() - start)
    return best


def is_clean(before: float, after: float, fastest: float) -> bool:
    """Whether a repetition bracketed by ``before``/``after`` probes ran at full speed."""
    return max(before, after) <= SLOW * fastest
