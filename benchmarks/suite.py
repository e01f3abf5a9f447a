"""The suite: each measurement in its own pinned process, rounds with rotated runners."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.calibration import SLOW, probe
from benchmarks.report import format_report
from benchmarks.runners import RUNNERS, availability
from benchmarks.workloads import WORKLOADS, get_workload

__all__ = ["Job", "Suite", "main"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
ANATOMY = {"mlp-mnist": None, "small-batch": None, "wide": 40 * 256, "conv": None}
"""Workloads whose floor is broken down by phase, and the samples it runs on."""


def _cpu_jiffies() -> tuple[int, int]:
    """Return (busy, total) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Job:
    """One measurement process and what it reported."""

    spec: dict[str, Any]
    result: dict[str, Any] = field(default_factory=dict)
    wall: float = 0.0
    foreign_load: float = 0.0
    """Share of the machine's CPUs that other processes used while the job ran."""


@dataclass
class Suite:
    """Runs the jobs of one invocation and keeps everything the report needs."""

    quick: bool
    threads: int
    native_blas: bool
    max_wait: float
    log: Any = sys.stderr
    jobs: list[Job] = field(default_factory=list)
    waited: float = 0.0
    best_probe: float = float("inf")

    def __post_init__(self) -> None:
        self.cpus = sorted(os.sched_getaffinity(0))[: self.threads]
        self.coretype_found = os.environ.get("OPENBLAS_CORETYPE")

    def environment(self, native: bool | None = None) -> dict[str, str]:
        """The environment of every measurement process: threads pinned, JAX on CPU."""
        env = dict(os.environ)
        for name in THREAD_VARIABLES:
            env[name] = str(self.threads)
        env["KERAS_BACKEND"] = "jax"
        env["JAX_PLATFORMS"] = "cpu"
        env["TF_CPP_MIN_LOG_LEVEL"] = "3"
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), env.get("PYTHONPATH")])
        )
        if self.native_blas if native is None else native:
            env.pop("OPENBLAS_CORETYPE", None)
        return env

    def _foreign_busy(self, seconds: float = 0.3) -> float:
        busy0, total0 = _cpu_jiffies()
        time.sleep(seconds)
        busy1, total1 = _cpu_jiffies()
        return (busy1 - busy0) / max(total1 - total0, 1)

    def _quiet(self) -> bool:
        """Whether other processes use < 10% of the CPUs and the host runs us at speed."""
        speed = probe()
        self.best_probe = min(self.best_probe, speed)
        return speed <= SLOW * self.best_probe and self._foreign_busy() <= 0.10

    def _wait_until_quiet(self) -> None:
        """Wait (up to ``max_wait`` s) for a quiet machine at full speed."""
        deadline = time.perf_counter() + self.max_wait
        start = time.perf_counter()
        while time.perf_counter() < deadline and not self._quiet():
            time.sleep(0.5)
        self.waited += time.perf_counter() - start

    def run(self, spec: dict[str, Any], native: bool | None = None) -> Job:
        """Run one measurement process and record its result and the machine's load."""
        spec = {
            "seed": 0,
            "quick": self.quick,
            "threads": self.threads,
            "cpus": self.cpus,
            **spec,
        }
        if self.max_wait:
            self._wait_until_quiet()
        job = Job(spec)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            busy0, total0 = _cpu_jiffies()
            cpu0, start = _children_cpu(), time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "benchmarks.worker", json.dumps(spec), str(out)],
                env=self.environment(native),
                cwd=tmp,
                capture_output=True,
                text=True,
            )
            job.wall = time.perf_counter() - start
            busy1, total1 = _cpu_jiffies()
            own = _children_cpu() - cpu0
            ticks = os.sysconf("SC_CLK_TCK")
            machine = (total1 - total0) / ticks  # CPU-seconds the machine had
            foreign = (busy1 - busy0) / ticks - own
            job.foreign_load = max(0.0, foreign / machine) if machine > 0 else 0.0
            if out.exists():
                job.result = json.loads(out.read_text())
            else:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                job.result = {
                    "ok": False,
                    "error": f"worker exited {proc.returncode}: " + " | ".join(tail),
                }
        self.jobs.append(job)
        label = f"{spec.get('workload', spec.get('kind'))}/{spec.get('runner', '-')}"
        state = "ok" if job.result.get("ok") else f"FAILED: {job.result.get('error')}"
        print(
            f"  {label:<28} {job.wall:6.1f}s  load {job.foreign_load:4.0%}  {state}",
            file=self.log,
            flush=True,
        )
        return job

    def run_batched(self, workloads: list[str], runners: list[str]) -> None:
        """``--quick``: one process per runner for all its workloads: start-ups dominate."""
        for runner in runners:
            names = [
                w
                for w in workloads
                if get_workload(w, self.quick).kind != "plugins" or runner == "loopkit"
            ]
            if not names:
                continue
            print(f"{runner}: {', '.join(names)}", file=self.log)
            batch = self.run({"kind": "batch", "runner": runner, "workloads": names})
            self.jobs.remove(batch)
            results = batch.result.get("results") or {
                name: {"ok": False, "error": batch.result.get("error")} for name in names
            }
            for name, result in results.items():
                self.jobs.append(
                    Job(
                        {**batch.spec, "workload": name, "round": 0},
                        result,
                        batch.wall,
                        batch.foreign_load,
                    )
                )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="loopkit's benchmark suite: ratios to a hand-written NumPy floor.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small datasets, one round, one process per runner: a smoke "
        "run of about a minute",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)}",
    )
    parser.add_argument(
        "--runners",
        default=",".join(RUNNERS),
        help=f"comma-separated subset of {','.join(RUNNERS)}",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds per workload, runner order rotated (default 5; 3 for wide and "
        "conv; --quick runs one)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="threads and CPUs every runner gets (default: all)",
    )
    parser.add_argument(
        "--native-blas",
        action="store_true",
        help="unset OPENBLAS_CORETYPE for the measurements, so OpenBLAS "
        "picks the machine's own kernels",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=None,
        help="seconds to wait before each job for other processes to go "
        "quiet (default 20; 0 with --quick)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to write the Markdown report (default "
        "benchmarks/RESULTS.md; --quick writes none unless given)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also dump the raw results")
    parser.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="only render the report of a run saved with --json (to --output if given)",
    )
    args = parser.parse_args(argv)
    for option, known in (("workloads", WORKLOADS), ("runners", RUNNERS)):
        chosen = [v for v in getattr(args, option).split(",") if v]
        unknown = [v for v in chosen if v not in known]
        if unknown:
            parser.error(f"--{option}: unknown {unknown}; expected some of {list(known)}")
        setattr(args, option, chosen)
    return args


def _rerender(args: argparse.Namespace) -> int:
    """Print (and write) the report of a run saved with ``--json``, without running."""
    saved = json.loads(args.from_json.read_text())
    jobs = [
        Job(j["spec"], j["result"], j["wall"], j["foreign_load"]) for j in saved["jobs"]
    ]
    machines = [j for j in jobs if j.spec.get("kind") == "machine"]
    role = {
        j.spec.get("role", "as_run" if i == 0 else "other"): j
        for i, j in enumerate(machines)
    }
    anatomy = [j for j in jobs if j.spec.get("kind") == "anatomy"]
    report = format_report(jobs, role.get("as_run"), role.get("other"), anatomy,
                           saved["context"])  # fmt: skip
    print(report)
    if args.output is not None:
        args.output.write_text(report)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the suite, print the report, and write it (see ``--help``)."""
    args = _parse(argv)
    if args.from_json is not None:
        return _rerender(args)
    started = time.perf_counter()
    rounds = args.rounds
    max_wait = args.max_wait if args.max_wait is not None else (0.0 if args.quick else 20.0)
    suite = Suite(args.quick, args.threads, args.native_blas, max_wait)
    skipped = {r: why for r in args.runners if (why := availability(r))}
    runners = [r for r in args.runners if r not in skipped]
    load_before = os.getloadavg()
    print(f"machine: BLAS and GEMM ({args.threads} threads)", file=sys.stderr)
    gemm_seconds = 0.3 if args.quick else 2.0
    machine = suite.run({"kind": "machine", "role": "as_run", "gemm_seconds": gemm_seconds})
    other = None
    if suite.coretype_found:  # show what the setting costs either way
        other = suite.run(
            {"kind": "machine", "role": "other", "gemm_seconds": gemm_seconds},
            native=not args.native_blas,
        )
    if args.quick:
        suite.run_batched(args.workloads, runners)
    for name in [] if args.quick else args.workloads:
        workload = get_workload(name, args.quick)
        chosen = ["loopkit"] if workload.kind == "plugins" else runners
        chosen = [r for r in chosen if r in runners]
        print(f"{name}: {workload.description}", file=sys.stderr)
        count = 1 if workload.kind == "plugins" else (rounds or workload.rounds)
        for round_index in range(count):
            shift = round_index % max(len(chosen), 1)
            for runner in chosen[shift:] + chosen[:shift]:
                suite.run({"workload": name, "runner": runner, "round": round_index})
    anatomy = []
    if "floor" in runners and not args.quick:
        print("floor anatomy", file=sys.stderr)
        for name, limit in ANATOMY.items():
            if name in args.workloads:
                anatomy.append(
                    suite.run({"kind": "anatomy", "workload": name, "max_samples": limit})
                )
    elapsed = time.perf_counter() - started
    context = {
        "argv": ["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])],
        "quick": args.quick,
        "rounds": rounds,
        "threads": args.threads,
        "cpus": suite.cpus,
        "native_blas": args.native_blas,
        "coretype_found": suite.coretype_found,
        "elapsed": elapsed,
        "waited": suite.waited,
        "skipped": skipped,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "workloads": args.workloads,
        "runners": [r for r in args.runners],
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }
    if args.json is not None:  # first: a report that fails to render loses nothing
        raw = [
            {
                "spec": j.spec,
                "result": j.result,
                "wall": j.wall,
                "foreign_load": j.foreign_load,
            }
            for j in suite.jobs
        ]
        args.json.write_text(json.dumps({"context": context, "jobs": raw}, indent=1))
    report = format_report(suite.jobs, machine, other, anatomy, context)
    print(report)
    output = args.output if args.output is not None else (None if args.quick else RESULTS)
    if output is not None:
        output.write_text(report)
        print(f"wrote {output}", file=sys.stderr)
    return 0
