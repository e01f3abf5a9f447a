"""Reading the measurements: calibrated samples, paired ratios, medians, errors."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks.calibration import is_clean
from benchmarks.runners import RUNNERS
from benchmarks.workloads import WORKLOADS, Workload, get_workload

__all__ = [
    "drop_slow",
    "errors",
    "fastest_probe",
    "first_ok",
    "medians",
    "paired_ratio",
    "samples",
    "unit_value",
]


def drop_slow(jobs: Sequence[Any], fastest: float | None) -> tuple[list[Any], int, int]:
    """Return copies of ``jobs`` keeping only repetitions timed at full machine speed.

    A repetition is kept when both calibration probes around it ran within
    ``calibration.SLOW`` of the run's fastest probe. A job left with none keeps none
    (its round is skipped), unless no job of that workload and runner kept any: then
    all are kept, since a slow number beats no number.

    Returns:
        The filtered jobs, the repetitions dropped, and the repetitions in all.
    """
    out, dropped, total = [], 0, 0
    kept_any: dict[tuple[str, str], bool] = {}
    for job in jobs:
        result = dict(job.result)
        key = (job.spec.get("workload", ""), job.spec.get("runner", ""))
        probes = result.get("probes")
        if fastest and probes and len(probes) == len(result.get("times", [])):
            keep = [is_clean(b, a, fastest) for b, a in probes]
            total += len(keep)
            dropped += keep.count(False)
            result["all_times"] = result["times"]
            result["times"] = [t for t, k in zip(result["times"], keep, strict=True) if k]
        if "configs" in result and fastest and result.get("config_probes"):
            clean = {
                name: [is_clean(b, a, fastest) for b, a in pairs]
                for name, pairs in result["config_probes"].items()
            }
            result["config_clean"] = clean
            total += sum(len(v) for v in clean.values())
            dropped += sum(v.count(False) for v in clean.values())
        kept_any[key] = kept_any.get(key, False) or bool(result.get("times"))
        out.append(type(job)(job.spec, result, job.wall, job.foreign_load))
    for job in out:
        key = (job.spec.get("workload", ""), job.spec.get("runner", ""))
        if not kept_any[key] and "all_times" in job.result:
            dropped -= len(job.result["all_times"]) - len(job.result["times"])
            job.result["times"] = job.result["all_times"]
    return out, dropped, total


def fastest_probe(jobs: Sequence[Any]) -> float | None:
    """The fastest calibration probe of the run (machine jobs and every repetition)."""
    values = [job.result["probe"] for job in jobs if "probe" in job.result]
    for job in jobs:
        values += [v for pair in job.result.get("probes", []) for v in pair]
        for pairs in job.result.get("config_probes", {}).values():
            values += [v for pair in pairs for v in pair]
    return min(values) if values else None


def unit_value(workload: Workload, seconds: float) -> float:
    """Convert a measured time (seconds per epoch or per call) to the workload's unit."""
    if workload.unit == "us/step":
        return seconds / workload.steps * 1e6
    if workload.unit == "us/call":
        return seconds * 1e6
    return seconds


def samples(
    jobs: Sequence[Any], workload: str, runner: str, round_index: int | None = None
) -> list[float]:
    """Every timed repetition of ``runner`` on ``workload`` (of one round), in seconds."""
    out: list[float] = []
    for job in jobs:
        spec, result = job.spec, job.result
        if (
            spec.get("workload") == workload
            and spec.get("runner") == runner
            and result.get("ok")
            and (round_index is None or spec.get("round", 0) == round_index)
        ):
            out.extend(result.get("times", []))
    return out


def first_ok(jobs: Sequence[Any], workload: str, runner: str) -> dict[str, Any] | None:
    for job in jobs:
        spec = job.spec
        if (
            spec.get("workload") == workload
            and spec.get("runner") == runner
            and job.result.get("ok")
        ):
            return dict(job.result)
    return None


def errors(jobs: Sequence[Any]) -> list[str]:
    seen = []
    for job in jobs:
        if not job.result.get("ok"):
            spec = job.spec
            label = f"{spec.get('workload', spec.get('kind'))}/{spec.get('runner', '-')}"
            line = f"{label}: {job.result.get('error')}"
            if line not in seen:
                seen.append(line)
    return seen


def medians(jobs: Sequence[Any], quick: bool) -> dict[tuple[str, str], float]:
    medians = {}
    for name in WORKLOADS:
        for runner in RUNNERS:
            values = samples(jobs, name, runner)
            if values:
                medians[(name, runner)] = unit_value(
                    get_workload(name, quick), statistics.median(values)
                )
    return medians


def paired_ratio(jobs: Sequence[Any], workload: str, runner: str) -> float | None:
    """Median over rounds of ``runner``'s median time / the floor's, in the same round.

    Pairing by round cancels most of the machine's slow drift (other tenants, clock
    changes), which a ratio of overall medians would keep.
    """
    ratios = []
    for round_index in sorted({j.spec.get("round", 0) for j in jobs}):
        own = samples(jobs, workload, runner, round_index)
        floor = samples(jobs, workload, "floor", round_index)
        if own and floor:
            ratios.append(statistics.median(own) / statistics.median(floor))
    if ratios:
        return statistics.median(ratios)
    own, floor = samples(jobs, workload, runner), samples(jobs, workload, "floor")
    if own and floor:  # no round has both at full speed: the ratio of all medians
        return statistics.median(own) / statistics.median(floor)
    return None
