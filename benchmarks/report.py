"""The Markdown report: ratios to the floor, times, targets, learning, memory, FLOPs."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks.calibration import SLOW
from benchmarks.measurements import (
    drop_slow,
    errors,
    fastest_probe,
    medians,
    paired_ratio,
    samples,
    unit_value,
)
from benchmarks.runners import RUNNERS
from benchmarks.sections import (
    LABELS,
    anatomy_table,
    flop_table,
    fmt,
    learning_table,
    memory_table,
    plugin_table,
)
from benchmarks.workloads import get_workload

__all__ = ["TARGETS", "format_report"]

TARGETS = {
    "mlp-mnist": 1.00,
    "small-batch": 1.05,
    "train-on-batch": 1.10,
    "wide": 1.00,
    "conv": 1.5,
    "lstm": 1.0,
}
"""loopkit's ratio to the floor must be at most this (and below every peer's)."""
PEERS = ("keras", "torch")


def _ratio_table(
    jobs: Sequence[Any], context: dict[str, Any], by_runner: dict[tuple[str, str], float]
) -> tuple[list[str], list[str]]:
    runners = [r for r in RUNNERS if r in context["runners"]]
    head = ["workload", *(LABELS[r] for r in runners), "loopkit target", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    misses = []
    for name in context["workloads"]:
        workload = get_workload(name, context["quick"])
        if workload.kind == "plugins":
            continue
        floor = by_runner.get((name, "floor"))
        cells = [f"{name} ({workload.unit})"]
        for runner in runners:
            value = by_runner.get((name, runner))
            if value is None:
                why = context["skipped"].get(runner)
                cells.append("skipped" if why else "failed")
            elif runner == "floor":
                cells.append(f"1.00 ({fmt(value, workload.unit)})")
            elif floor is None:
                cells.append(fmt(value, workload.unit))
            else:
                paired = paired_ratio(jobs, name, runner)
                ratio = "-" if paired is None else f"{paired:.2f}x"
                cells.append(f"**{ratio}**" if runner == "loopkit" else ratio)
        target = TARGETS[name]
        verdict = "-"
        own = paired_ratio(jobs, name, "loopkit") if floor is not None else None
        if own is not None:
            problems = []
            if own > target:
                problems.append(f"{own:.2f} > {target:.2f}")
            for peer in PEERS:
                value = paired_ratio(jobs, name, peer)
                if value is not None and value <= own:
                    problems.append(f"not faster than {LABELS[peer]}")
            verdict = "MISS: " + "; ".join(problems) if problems else "meets"
            if problems:
                misses.append(f"{name}: " + "; ".join(problems))
        cells += [f"≤ {target:.2f}, fastest", verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return lines, misses


def _absolute_table(jobs: Sequence[Any], context: dict[str, Any]) -> list[str]:
    runners = [r for r in RUNNERS if r in context["runners"]]
    head = ["workload", *(LABELS[r] for r in runners)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in context["workloads"]:
        workload = get_workload(name, context["quick"])
        if workload.kind == "plugins":
            continue
        cells = [f"{name} ({workload.unit})"]
        for runner in runners:
            values = [unit_value(workload, v) for v in samples(jobs, name, runner)]
            if not values:
                cells.append("-")
                continue
            cells.append(
                f"{fmt(statistics.median(values), workload.unit)} "
                f"[{fmt(min(values), workload.unit)}-"
                f"{fmt(max(values), workload.unit)}, n={len(values)}]"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _blas_line(info: dict[str, Any]) -> str:
    pools = [p for p in info.get("threadpools", []) if p.get("user_api") == "blas"]
    if not pools:
        return (
            f"{info.get('blas_build', '?')} (threadpoolctl not installed: kernel unknown)"
        )
    pool = pools[0]
    return (
        f"{pool.get('internal_api')} {pool.get('version')} ({pool.get('prefix')}), "
        f"kernel **{pool.get('architecture')}**, {pool.get('num_threads')} threads"
    )


def _machine_lines(
    machine: Any, other: Any, context: dict[str, Any], jobs: Sequence[Any]
) -> list[str]:
    info = machine.result if machine is not None and machine.result.get("ok") else {}
    found = context["coretype_found"]
    run_with = "unset (--native-blas)" if context["native_blas"] or not found else found
    threads = context["threads"]
    lines = [
        f"- CPU: {info.get('cpu', '?')}; CPUs {context['cpus']} pinned for every "
        f"process; {threads} threads for every runner (OMP_NUM_THREADS={threads}, "
        f"OPENBLAS_NUM_THREADS={threads}, torch.set_num_threads({threads}); XLA sizes "
        "its pool from the pinned CPUs).",
        f"- numpy {info.get('numpy', '?')}, Python {info.get('python', '?')}; BLAS: "
        f"{_blas_line(info)}.",
        f"- OPENBLAS_CORETYPE in the calling environment: `{found}`; the measurements ran "
        f"with it {run_with}.",
    ]
    if info:
        lines.append(
            f"- Sustained GEMM ({info['gemm_size']}² float32 matmul): median "
            f"**{info['gemm_gflops']:.0f} GFLOP/s**, best "
            f"{info['gemm_best_gflops']:.0f} GFLOP/s (the FLOP bound uses the best)."
        )
    if other is not None and other.result.get("ok"):
        alt = other.result
        pools = [p for p in alt.get("threadpools", []) if p.get("user_api") == "blas"]
        kernel = pools[0].get("architecture") if pools else "?"
        setting = "unset" if run_with == found else f"`{found}`"
        lines.append(
            f"- With OPENBLAS_CORETYPE {setting} instead: kernel {kernel}, "
            f"{alt['gemm_gflops']:.0f} GFLOP/s."
        )
        if info and alt["gemm_gflops"] > 1.2 * info["gemm_gflops"]:
            lines.append(
                f"- **Warning:** numpy's matrix products ran "
                f"{alt['gemm_gflops'] / info['gemm_gflops']:.1f}x "
                "slower than this machine can do: the floor and loopkit pay for it, Keras "
                "(XLA) and PyTorch (their own kernels) do not. Rerun with `--native-blas`."
            )
    loads = [j.foreign_load for j in jobs]
    if loads:
        busy = sum(1 for v in loads if v > 0.10)
        lines.append(
            f"- Other processes' share of the CPUs during the jobs: median "
            f"{statistics.median(loads):.0%}, max {max(loads):.0%}; {busy} of {len(loads)} "
            f"jobs above 10%. Load average before {context['load_before'][0]:.2f}, after "
            f"{context['load_after'][0]:.2f}; {context['waited']:.0f} s spent waiting for "
            "quiet."
        )
    if context.get("repetitions"):
        lines.append(
            f"- Host slowdowns: {context['dropped']} of {context['repetitions']} timed "
            f"repetitions ran while a calibration probe was more than {SLOW}x slower "
            f"than the run's fastest ({context['fastest'] * 1e3:.2f} ms) and are left "
            "out (see README: the host runs this VM at half speed in bursts)."
        )
    versions = {}
    for job in jobs:
        if job.result.get("ok") and "version" in job.result:
            versions.setdefault(job.spec["runner"], job.result["version"])
    if versions:
        lines.append(
            "- Runners: "
            + "; ".join(f"{LABELS[r]}: {v}" for r, v in versions.items())
            + "."
        )
    for runner, why in context["skipped"].items():
        lines.append(f"- {LABELS[runner]} skipped: {why}.")
    return lines


def format_report(
    jobs: Sequence[Any],
    machine: Any,
    other: Any,
    anatomy: Sequence[Any],
    context: dict[str, Any],
) -> str:
    """Return the whole report as Markdown."""
    fastest = fastest_probe([*jobs, *([machine] if machine is not None else [])])
    jobs, dropped, total = drop_slow(jobs, fastest)
    context = {**context, "dropped": dropped, "repetitions": total, "fastest": fastest}
    by_runner = medians(jobs, context["quick"])
    info = machine.result if machine is not None and machine.result.get("ok") else {}
    ratio_lines, misses = _ratio_table(jobs, context, by_runner)
    plugin_lines, plugin_misses = plugin_table(jobs, context)
    learning_lines, not_learned = learning_table(jobs, context)
    memory_lines, memory_misses = memory_table(jobs, context)
    mode = (
        "**quick** (reduced datasets, one sample each: a smoke run, not comparable "
        "with the targets)"
        if context["quick"]
        else f"full, {context['rounds'] or 'per-workload'} rounds, runner order rotated"
    )
    out = [
        "# loopkit benchmark results",
        "",
        f"Generated by `{' '.join(context['argv'])}` on {context['date']} in "
        f"{context['elapsed'] / 60:.1f} min; mode: {mode}. Every measurement ran in its "
        "own process; times are medians over every timed repetition of every round. "
        "See benchmarks/README.md for the method.",
        "",
        "## Machine",
        "",
        *_machine_lines(machine, other, context, [*jobs]),
        "",
        "## Ratio to the floor (lower is better)",
        "",
        "Each cell is the median over rounds of the runner's median time divided by the "
        "floor's in the same round; the floor's column shows its median time.",
        "",
        *ratio_lines,
        "",
        "## Absolute times: median [min-max, samples]",
        "",
        *_absolute_table(jobs, context),
        "",
    ]
    if plugin_lines:
        out += [
            "## Plugin overhead (loopkit, mlp-mnist; whole fit calls, configurations "
            "interleaved in one process)",
            "",
            "Overheads over the plain fit of the same repetition, medians: of a whole "
            "1-epoch fit; per epoch (a 3-epoch fit minus the 1-epoch fit, so the epochs "
            "alone); and the fixed cost of each `fit` call (opening and closing event "
            "files, the wait for the last checkpoint), which a longer run pays once.",
            "",
            *plugin_lines,
            "",
        ]
    out += [
        "## Learning check: loss on the first 2048 samples before → after training",
        "",
        *learning_lines,
        "",
        "## Peak memory: peak RSS growth over the dataset",
        "",
        "Measured from after the framework's import and a throwaway model's training on "
        "two batches (so JIT-compiled kernels and lazily imported code are not counted; "
        "their RSS is the 'warm-up code' figure), through data creation, training and "
        "evaluation.",
        "",
        *(
            [
                "In --quick mode one process runs every workload of a runner, so only "
                "the first row is that workload's own peak.",
                "",
            ]
            if context["quick"]
            else []
        ),
        *memory_lines,
        "",
        "## FLOP lower bound (matrix products only) at the measured GEMM rate",
        "",
        *flop_table(context, by_runner, info.get("gemm_best_gflops")),
        "",
    ]
    anatomy_lines = anatomy_table(anatomy)
    if anatomy_lines:
        out += [
            "## Where the floor's time goes (one instrumented epoch; wide: 40 batches)",
            "",
            *anatomy_lines,
            "",
        ]
    out += ["## Targets", ""]
    all_misses = misses + plugin_misses + memory_misses
    if not all_misses:
        out.append(
            "Every measured target is met."
            if not context["quick"]
            else "No target missed in this quick run (quick runs do not judge targets)."
        )
    for miss in all_misses:
        out.append(f"- MISS {miss}")
    for failure in not_learned:
        out.append(f"- NOT LEARNING {failure}")
    failed = errors([*jobs, *anatomy])
    if failed:
        out += ["", "## Failed measurements", ""] + [f"- {e}" for e in failed]
    return "\n".join(out) + "\n"
