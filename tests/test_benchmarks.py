"""The benchmark suite's smoke run: `python -m benchmarks --quick` writes its table.

Only that it runs and reports: no timing is asserted (speed is measured by the suite
itself, outside the test run). The peers (Keras, PyTorch) are left out so the test
takes the same few seconds whether or not they are installed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("mlp-mnist", "small-batch", "train-on-batch", "wide", "conv", "lstm")


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


def test_the_plugin_table_splits_whole_fit_overhead_into_per_epoch_and_per_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    monkeypatch.syspath_prepend(str(ROOT))  # benchmarks/ is a top-level package
    from benchmarks.sections import plugin_table

    # plain: 1.0 s per epoch, nothing fixed. standard: 1.02 s per epoch (+2%) plus
    # 80 ms per fit call. idle10: 1.03 s per epoch (+3%), nothing fixed.
    result = {
        "ok": True,
        "configs": {"plain": [1.0, 1.0], "standard": [1.1, 1.1], "idle10": [1.03, 1.03]},
        "configs_long": {"plain": [3.0, 3.0], "standard": [3.14, 3.14],
                         "idle10": [3.09, 3.09]},
        "epochs": [1, 3],
        "missing": [],
        "standard_members": [],
    }  # fmt: skip
    job = SimpleNamespace(spec={"workload": "plugins", "runner": "loopkit"}, result=result)
    lines, misses = plugin_table([job], {"workloads": ["plugins"]})
    rows = {line.split(" | ")[0]: line for line in lines}
    assert rows["| standard set"].split(" | ")[2:7] == [
        "+10.0%", "+2.0%", "+80 ms", "≤ +5%", "meets |"
    ]  # fmt: skip
    assert rows["| 10 idle plugins"].split(" | ")[2:7] == [
        "+3.0%", "+3.0%", "+0 ms", "≤ +2%", "MISS: +3.0% |"
    ]  # fmt: skip
    assert misses == ["plugins/idle10: +3.0% per epoch > +2%"]
