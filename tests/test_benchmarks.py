"""The benchmark suite's smoke run: `python -m benchmarks --quick` writes its table.

Only that it runs and reports: no timing is asserted (speed is measured by the suite
itself, outside the test run). The peers (Keras, PyTorch) are left out so the test
takes the same few seconds whether or not they are installed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("mlp-mnist", "small-batch", "train-on-batch", "wide", "conv")


def test_quick_benchmark_run_writes_the_ratio_table_for_every_workload(
    tmp_path: Path,
) -> None:
    output = tmp_path / "RESULTS.md"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--runners", "floor,loopkit",
         "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    report = output.read_text()
    assert report in run.stdout
    assert "## Ratio to the floor (lower is better)" in report
    assert "| workload | floor | loopkit | loopkit target | verdict |" in report
    for workload in WORKLOADS:
        assert f"| {workload} (" in report
    assert "| 10 idle plugins |" in report
    assert "Sustained GEMM" in report
    assert "## Failed measurements" not in report
    assert "NOT LEARNING" not in report
