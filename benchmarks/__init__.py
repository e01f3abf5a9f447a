"""loopkit's benchmark suite: loopkit against a NumPy floor, Keras 3 and PyTorch.

Run it with ``python -m benchmarks`` (``--quick`` for a one-minute smoke run,
``--help`` for the options); benchmarks/README.md explains the method.
"""

from __future__ import annotations

__all__: list[str] = []
