"""One measurement in its own process: ``python -m benchmarks.worker SPEC_JSON OUT_JSON``.

The spec names a workload, a runner and the settings; the worker pins itself to
the given CPUs, builds the data and the model, checks the loss before, warms up,
times, checks the loss after, and writes a JSON result. ``kind`` may also be
``"machine"`` (BLAS and GEMM), ``"anatomy"`` (the floor's time per phase) or
``"batch"`` (several workloads in one process, for ``--quick``).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks.calibration import probe

__all__ = ["main", "run"]

EVAL_SAMPLES = 2048
"""Samples the loss before/after is measured on (the first ones of the dataset)."""
TOB_WARMUP_CALLS = 100


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _warmup_samples(samples: int, batch: int) -> int:
    """Two full batches and the dataset's partial one, so every batch shape is seen."""
    return min(samples, 2 * batch + samples % batch)


def _rotate(items: list[Any], by: int) -> list[Any]:
    by %= max(len(items), 1)
    return items[by:] + items[:by]


def _train(spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from benchmarks.runners import import_framework, make_runner
    from benchmarks.workloads import get_workload, make_data

    workload = get_workload(spec["workload"], spec["quick"])
    import_framework(spec["runner"])
    imported_rss = _rss_bytes()
    if not spec["quick"]:  # quick runs share a process: their memory figures mean little
        _throwaway_warmup(spec, workload)
    base_rss = _rss_bytes()
    x, y = make_data(workload)
    start = time.perf_counter()
    runner = make_runner(spec["runner"], workload, spec["seed"], spec["threads"])
    setup = time.perf_counter() - start
    ex, ey = x[:EVAL_SAMPLES], y[:EVAL_SAMPLES]
    loss_before = runner.loss(ex, ey)
    result: dict[str, Any] = {"setup_seconds": setup, "version": runner.version()}
    b = workload.batch_size
    if workload.kind == "fit":
        warm = _warmup_samples(workload.samples, b)
        runner.fit(x[:warm], y[:warm], 1)
        runner.sync()
        timings = runner.fit(x, y, workload.epochs)
        result["times"] = [seconds for seconds, _, _ in timings]
        result["probes"] = [[before, after] for _, before, after in timings]
    elif workload.kind == "train_on_batch":
        batches = workload.samples // b
        needed = workload.calls * workload.repeats + TOB_WARMUP_CALLS
        if needed > batches:
            raise ValueError(
                f"{workload.name}: {needed} distinct batches needed, {batches} exist"
            )
        for i in range(batches - TOB_WARMUP_CALLS, batches):
            runner.train_on_batch(x[i * b : (i + 1) * b], y[i * b : (i + 1) * b])
        runner.sync()
        times, probes = [], []
        for rep in range(workload.repeats):
            first = rep * workload.calls
            before = probe()
            start = time.perf_counter()
            for i in range(first, first + workload.calls):
                runner.train_on_batch(x[i * b : (i + 1) * b], y[i * b : (i + 1) * b])
            runner.sync()
            times.append((time.perf_counter() - start) / workload.calls)
            probes.append([before, probe()])
        result["times"], result["probes"] = times, probes
    elif workload.kind == "plugins":
        result.update(_plugins(runner, workload, x, y, spec))
    else:
        raise ValueError(f"unknown workload kind {workload.kind!r}")
    result["loss_before"] = loss_before
    result["loss_after"] = runner.loss(ex, ey)
    result["dataset_bytes"] = int(x.nbytes + y.nbytes)
    result["peak_rss_over_base"] = _peak_rss_bytes() - base_rss
    result["lazy_rss"] = base_rss - imported_rss
    result["finite"] = bool(np.isfinite(result["loss_after"]))
    return result


def _throwaway_warmup(spec: dict[str, Any], workload: Any) -> None:
    """Train a throwaway model on a few batches, so lazily loaded code is in the base.

    JIT-compiled kernels (numba, XLA) and lazily imported modules load on the first
    step; the memory measured from here on is the data's and the training's.
    """
    import gc
    from dataclasses import replace

    from benchmarks.runners import make_runner
    from benchmarks.workloads import make_data

    small = replace(
        workload, samples=_warmup_samples(workload.samples, workload.batch_size)
    )
    x, y = make_data(small)
    runner = make_runner(spec["runner"], small, spec["seed"], spec["threads"])
    if workload.kind == "train_on_batch":
        for _ in range(2):
            runner.train_on_batch(x[: workload.batch_size], y[: workload.batch_size])
    else:
        runner.fit(x, y, 1)
    runner.loss(x, y)
    del runner, x, y
    gc.collect()


def _plugins(
    runner: Any, workload: Any, x: Any, y: Any, spec: dict[str, Any]
) -> dict[str, Any]:
    from benchmarks.plugin_sets import idle_plugins, missing_standard, standard_plugins

    if spec["runner"] != "loopkit":
        raise ValueError("the plugins workload runs under loopkit only")
    missing = missing_standard()
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as devnull:
        directory = Path(tmp)
        factories: dict[str, Any] = {
            "plain": lambda: [],
            "idle10": idle_plugins,
            "standard": lambda: standard_plugins(directory, devnull),
        }
        members = [type(p).__name__ for p in factories["standard"]()]
        for index, member in enumerate(members):  # each one alone, to say which costs
            factories[member] = lambda i=index: [standard_plugins(directory, devnull)[i]]
        warm = _warmup_samples(workload.samples, workload.batch_size)
        for make in factories.values():  # imports, writers and buffers, once
            runner.fit_wall(x[:warm], y[:warm], 1, make())
        # Each repetition times a short and a long fit per configuration: their
        # difference is the cost of the extra epochs alone (steady state), the rest
        # the per-fit cost of opening and closing (writers, files, final saves).
        long_epochs = workload.epochs + 2
        seconds: dict[str, list[float]] = {name: [] for name in factories}
        long_fits: dict[str, list[float]] = {name: [] for name in factories}
        probes: dict[str, list[list[float]]] = {name: [] for name in factories}
        for rep in range(workload.repeats):
            for name in _rotate(list(factories), rep):
                total, before, _ = runner.fit_wall(x, y, workload.epochs, factories[name]())
                longer, _, after = runner.fit_wall(x, y, long_epochs, factories[name]())
                seconds[name].append(total / workload.epochs)
                long_fits[name].append(longer)
                probes[name].append([before, after])
    return {"configs": seconds, "config_probes": probes, "missing": missing,
            "standard_members": members, "configs_long": long_fits,
            "epochs": [workload.epochs, long_epochs]}  # fmt: skip


def _machine(spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    info: dict[str, Any] = {"numpy": np.__version__, "python": sys.version.split()[0]}
    info["probe"] = min(probe() for _ in range(5))
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [
            {k: v for k, v in pool.items() if k != "filepath"} for pool in threadpool_info()
        ]
    except ImportError:
        info["threadpools"] = []
    config = np.show_config(mode="dicts") if np.__version__ >= "1.26" else {}
    blas = config.get("Build Dependencies", {}).get("blas", {}) if config else {}
    info["blas_build"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    info["simd"] = config.get("SIMD Extensions", {}).get("found", []) if config else []
    n = spec.get("gemm_size", 2048)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    for _ in range(2):
        np.matmul(a, b, out=c)
    times = []
    deadline = time.perf_counter() + spec.get("gemm_seconds", 1.5)
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < 50):
        start = time.perf_counter()
        np.matmul(a, b, out=c)
        times.append(time.perf_counter() - start)
    info["gemm_size"] = n
    info["gemm_gflops"] = 2 * n**3 / float(np.median(times)) / 1e9
    info["gemm_best_gflops"] = 2 * n**3 / min(times) / 1e9
    info["cpu"] = _cpu_name()
    info["cpus"] = sorted(os.sched_getaffinity(0))
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _anatomy(spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from benchmarks.floor import Phases
    from benchmarks.runners import FloorRunner
    from benchmarks.workloads import get_workload, make_data

    workload = get_workload(spec["workload"], spec["quick"])
    x, y = make_data(workload)
    net = FloorRunner(workload, spec["seed"]).net
    rng = np.random.default_rng(spec["seed"])
    limit = spec.get("max_samples") or len(x)
    order = rng.permutation(len(x))[:limit]
    warm = _warmup_samples(len(order), workload.batch_size)
    net.fit_epoch(x, y, order[:warm])
    phases = Phases()
    net.timer = phases
    start = time.perf_counter()
    net.fit_epoch(x, y, order)
    total = time.perf_counter() - start
    return {"phases": phases.seconds, "total": total, "samples": len(order)}


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the measurement ``spec`` describes in this process; return its result."""
    if spec.get("cpus"):
        os.sched_setaffinity(0, spec["cpus"])
    kind = spec.get("kind", "train")
    if kind == "batch":  # --quick: several workloads in one process, to save start-ups
        results = {}
        for name in spec["workloads"]:
            try:
                results[name] = {"ok": True, **_train({**spec, "workload": name})}
            except Exception as err:
                results[name] = {
                    "ok": False,
                    "error": f"{type(err).__name__}: {err}",
                    "traceback": traceback.format_exc(),
                }
        return {"results": results}
    if kind == "machine":
        return _machine(spec)
    if kind == "anatomy":
        return _anatomy(spec)
    return _train(spec)


def main(argv: list[str] | None = None) -> int:
    """Entry point: read the spec, run it, write ``{"ok": ..., ...}`` to the out file."""
    args = sys.argv[1:] if argv is None else argv
    spec, out = json.loads(args[0]), Path(args[1])
    try:
        result = {"ok": True, **run(spec)}
    except Exception as err:  # reported in the table, the suite goes on
        result = {
            "ok": False,
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(),
        }
    out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
