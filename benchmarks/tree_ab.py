"""Is this tree's per-step speed within budget of an older tree's? An interleaved A/B.

``python -m benchmarks.tree_ab OLD_PYTHON OLD_BENCHMARKS_PARENT [--rounds R]
[--workloads mlp-mnist,small-batch]`` times, round after round in rotated order, the
floor, this tree's ``loopkit`` and ``functional`` runners (with this interpreter) and
the old tree's ``loopkit`` runner (``OLD_PYTHON``, a venv with the old tree installed,
and ``PYTHONPATH=OLD_BENCHMARKS_PARENT``, a folder holding the old tree's
``benchmarks/``). Every measurement is one ``benchmarks.worker`` process pinned to
CPUs 0-1 with 2 BLAS threads and ``OPENBLAS_CORETYPE`` unset.

The host runs this VM at half speed in bursts, so one round's ratio can be off by 2x
either way; the report gives three estimators of each comparison: the median of the
per-round ratios, the ratio of the fastest times, and the ratio of the first
quartiles. ``benchmarks/TREE_AB.md`` records a run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["main"]

HERE = str(Path(__file__).resolve().parent.parent)
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def _measure(python: str, path: str, workload: str, runner: str) -> float | None:
    """Return the fastest timed repetition of one worker process, None if it failed."""
    spec = {
        "seed": 0,
        "quick": False,
        "threads": 2,
        "cpus": [0, 1],
        "workload": workload,
        "runner": runner,
    }
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    env.update({name: "2" for name in THREAD_VARIABLES}, PYTHONPATH=path)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [python, "-m", "benchmarks.worker", json.dumps(spec), str(out)]
        subprocess.run(command, env=env, cwd=tmp, check=True)
        result = json.loads(out.read_text())
    if not result["ok"]:
        print(f"{runner} on {workload} failed: {result['error']}", file=sys.stderr)
        return None
    return float(min(result["times"]))


def main(argv: list[str] | None = None) -> None:
    """Run the rounds and print the three estimators for each comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old_python")
    parser.add_argument("old_benchmarks_parent")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workloads", default="mlp-mnist,small-batch")
    args = parser.parse_args(argv)
    configs = [
        ("floor", sys.executable, HERE, "floor"),
        ("new", sys.executable, HERE, "loopkit"),
        ("old", args.old_python, args.old_benchmarks_parent, "loopkit"),
        ("functional", sys.executable, HERE, "functional"),
    ]
    times: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for round_ in range(args.rounds):
        shift = round_ % len(configs)
        for workload in args.workloads.split(","):
            for label, python, path, runner in configs[shift:] + configs[:shift]:
                seconds = _measure(python, path, workload, runner)
                if seconds is not None:
                    times[workload, label].append(seconds)
                    print(round_, workload, label, f"{seconds:.6f}", flush=True)
    for workload in args.workloads.split(","):
        for a, b in (("new", "old"), ("functional", "new")):
            pa, pb = times[workload, a], times[workload, b]
            per_round = statistics.median(x / y for x, y in zip(pa, pb, strict=False))
            fastest = min(pa) / min(pb)
            quartile = statistics.quantiles(pa, n=4)[0] / statistics.quantiles(pb, n=4)[0]
            print(
                f"{workload:12s} {a}/{b}: median of per-round ratios {per_round:.3f}, "
                f"fastest {fastest:.3f}, first quartile {quartile:.3f} "
                f"({len(pa)} rounds)"
            )


if __name__ == "__main__":
    main()
