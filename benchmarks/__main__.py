"""``python -m benchmarks``: run the suite and write benchmarks/RESULTS.md."""

from __future__ import annotations

import sys

from benchmarks.suite import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
