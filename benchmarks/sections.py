"""The report's other tables: plugins, learning, memory, FLOP bound, the floor's anatomy."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks.measurements import first_ok
from benchmarks.runners import RUNNERS
from benchmarks.workloads import get_workload

__all__ = [
    "LABELS",
    "MEMORY_TARGET",
    "PLUGIN_TARGETS",
    "anatomy_table",
    "flop_table",
    "fmt",
    "learning_table",
    "memory_table",
    "plugin_table",
]

PLUGIN_TARGETS = {"idle10": 0.02, "standard": 0.05}
"""Largest overhead over a plain fit: 10 idle plugins, the standard set."""
MEMORY_TARGET = 1.15
"""Largest peak memory of loopkit's mlp-mnist, in datasets."""
LABELS = {"floor": "floor", "loopkit": "loopkit", "functional": "loopkit functional",
          "keras": "Keras 3 (JAX)", "torch": "PyTorch eager"}  # fmt: skip


def fmt(value: float, unit: str) -> str:
    """Format a time in the workload's unit."""
    if unit == "s/epoch":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    return f"{value:.1f} us" if value < 100 else f"{value:.0f} us"


def plugin_table(
    jobs: Sequence[Any], context: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """Plugin overheads, paired by repetition, split into per-epoch and per-fit costs.

    Each repetition ran every configuration back to back, a short fit (one epoch)
    and a long one (three); repetitions the calibration probe marks as slow are left
    out. Three figures per configuration, each the median over repetitions of a
    ratio to (or difference from) the plain fit of the same repetition: the whole
    short fit; the per-epoch cost, from the long fit minus the short one (the
    extra epochs alone, so opening and closing files is not in it); and what is
    left, the fixed cost per ``fit`` call. The targets are per step and per epoch,
    so the verdict reads the per-epoch figure.
    """
    result = first_ok(jobs, "plugins", "loopkit")
    if "plugins" not in context["workloads"]:
        return [], []
    if result is None:
        return ["The plugins workload did not run (loopkit missing or the run failed)."], []
    configs = result["configs"]
    longs = result.get("configs_long")
    short_epochs, long_epochs = result.get("epochs", [1, 3])
    reps = len(configs["plain"])
    clean = result.get("config_clean") or {name: [True] * reps for name in configs}

    def kept(key: str) -> list[int]:
        """Repetitions where ``key`` and the plain fit both ran at full speed."""
        both = [i for i in range(reps) if clean[key][i] and clean["plain"][i]]
        return both or list(range(reps))

    def per_epoch(key: str, i: int) -> float:
        assert longs is not None
        return (longs[key][i] - configs[key][i] * short_epochs) / (
            long_epochs - short_epochs
        )

    plain = min(configs["plain"][i] for i in kept("plain"))
    missing = result["missing"]
    members = ", ".join(result["standard_members"]) or "none"
    lines = [
        f"| configuration | s/epoch, {short_epochs}-epoch fit (best of {reps}) | "
        "whole fit | per epoch | fixed per fit | target (per epoch) | verdict |",
        "|---|---|---|---|---|---|---|",
        f"| plain fit | {plain:.3f} s | - | - | - | - | - |",
    ]
    misses = []
    for key, label in (
        ("idle10", "10 idle plugins"),
        ("standard", "standard set"),
        *((m, f"{m} alone") for m in result["standard_members"]),
    ):
        if key not in configs:
            continue
        rows = kept(key)
        value = min(configs[key][i] for i in rows)
        whole = statistics.median(configs[key][i] / configs["plain"][i] for i in rows) - 1
        if longs is not None:
            steady = statistics.median(
                per_epoch(key, i) / per_epoch("plain", i) for i in rows
            )
            fixed = statistics.median(
                (configs[key][i] - per_epoch(key, i))
                - (configs["plain"][i] - per_epoch("plain", i))
                for i in rows
            )
            judged, cells = steady - 1, f"{steady - 1:+.1%} | {fixed * 1e3:+.0f} ms"
        else:  # a run saved before the long fits existed
            judged, cells = whole, "- | -"
        target = PLUGIN_TARGETS.get(key)
        if target is None:  # one member of the standard set: shown, not judged
            lines.append(f"| {label} | {value:.3f} s | {whole:+.1%} | {cells} | - | - |")
            continue
        if key == "standard" and missing:
            lines.append(
                f"| standard set | not available: loopkit.plugins has no "
                f"{', '.join(missing)} | - | - | - | ≤ +{target:.0%} | not measured |"
            )
            label = f"available part ({members})"
            verdict = "partial set"
        else:
            verdict = "meets" if judged <= target else f"MISS: {judged:+.1%}"
            if judged > target:
                misses.append(f"plugins/{key}: {judged:+.1%} per epoch > +{target:.0%}")
        lines.append(
            f"| {label} | {value:.3f} s | {whole:+.1%} | {cells} | ≤ +{target:.0%} "
            f"| {verdict} |"
        )
    return lines, misses


def learning_table(
    jobs: Sequence[Any], context: dict[str, Any]
) -> tuple[list[str], list[str]]:
    runners = [r for r in RUNNERS if r in context["runners"]]
    head = ["workload", *(LABELS[r] for r in runners)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    failures = []
    for name in context["workloads"]:
        cells = [name]
        for runner in runners:
            result = first_ok(jobs, name, runner)
            if result is None:
                cells.append("-")
                continue
            before, after = result["loss_before"], result["loss_after"]
            learned = result.get("finite", True) and after < 0.99 * before
            cells.append(f"{before:.3f} → {after:.3f}" + ("" if learned else " ✗"))
            if not learned:
                failures.append(f"{name}/{runner}: loss {before:.3f} → {after:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines, failures


def memory_table(
    jobs: Sequence[Any], context: dict[str, Any]
) -> tuple[list[str], list[str]]:
    runners = [r for r in RUNNERS if r in context["runners"]]
    head = ["workload", "dataset", *(LABELS[r] for r in runners)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    misses = []
    for name in context["workloads"]:
        if get_workload(name).kind == "plugins":
            continue
        dataset = None
        cells = []
        for runner in runners:
            result = first_ok(jobs, name, runner)
            if result is None:
                cells.append("-")
                continue
            dataset = result["dataset_bytes"]
            ratio = result["peak_rss_over_base"] / dataset
            lazy = result.get("lazy_rss")
            extra = "" if lazy is None else f"; warm-up code {lazy / 2**20:+.0f} MiB"
            cells.append(
                f"{ratio:.2f}x ({result['peak_rss_over_base'] / 2**20:.0f} MiB{extra})"
            )
            if name == "mlp-mnist" and runner == "loopkit" and ratio > MEMORY_TARGET:
                misses.append(
                    f"memory/mlp-mnist: {ratio:.2f}x the dataset > {MEMORY_TARGET}x"
                )
        size = "-" if dataset is None else f"{dataset / 2**20:.0f} MiB"
        lines.append("| " + " | ".join([name, size, *cells]) + " |")
    return lines, misses


def flop_table(
    context: dict[str, Any], by_runner: dict[tuple[str, str], float], gflops: float | None
) -> list[str]:
    lines = [
        "| workload | matmul GFLOP per epoch | lower bound at the GEMM rate | floor "
        "| floor's share of peak |",
        "|---|---|---|---|---|",
    ]
    for name in context["workloads"]:
        workload = get_workload(name, context["quick"])
        if workload.kind == "plugins":
            continue
        flops = workload.flops_per_epoch()
        per = "per epoch" if workload.kind == "fit" else f"per {workload.calls} calls"
        if not gflops:
            lines.append(f"| {name} | {flops / 1e9:.2f} ({per}) | - | - | - |")
            continue
        bound = flops / (gflops * 1e9)
        floor = by_runner.get((name, "floor"))
        if workload.unit == "us/step":
            bound_txt = f"{bound / workload.steps * 1e6:.1f} us/step"
        elif workload.unit == "us/call":
            bound_txt = f"{bound / workload.calls * 1e6:.1f} us/call"
        else:
            bound_txt = f"{bound:.3f} s/epoch"
        floor_seconds = None
        if floor is not None:
            if workload.unit == "us/step":
                floor_seconds = floor * workload.steps / 1e6
            elif workload.unit == "us/call":
                floor_seconds = floor * workload.calls / 1e6
            else:
                floor_seconds = floor
        share = "-" if not floor_seconds else f"{bound / floor_seconds:.0%}"
        floor_txt = "-" if floor is None else fmt(floor, workload.unit)
        lines.append(
            f"| {name} | {flops / 1e9:.2f} ({per}) | {bound_txt} | {floor_txt} | {share} |"
        )
    return lines


def anatomy_table(anatomy: Sequence[Any]) -> list[str]:
    ok = [a for a in anatomy if a.result.get("ok")]
    if not ok:
        return []
    phases = ["gather", "matmul", "im2col", "pool", "elementwise", "loss", "adam"]
    lines = [
        "| workload | samples | epoch (instrumented) | " + " | ".join(phases) + " |",
        "|" + "---|" * (len(phases) + 3),
    ]
    for job in ok:
        result = job.result
        total = result["total"]
        cells = [job.spec["workload"], str(result["samples"]), f"{total:.3f} s"]
        for phase in phases:
            value = result["phases"].get(phase)
            cells.append("-" if value is None else f"{value / total:.0%}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines
