"""Data-parallel benchmark: 1 rank x 2 threads against 2 MPI ranks x 1 thread, and a model.

``python -m benchmarks.data_parallel [--quick] [--rounds R] [--out FILE] [--raw JSON]``
trains the ``wide`` workload for the same global batch (256) both ways, alternating,
and prints a Markdown report: seconds per epoch, the speed-up, the time per step
spent in the gradient allreduce, the allreduce's cost per message size here (shared
memory), and the ring-allreduce scaling model at 10 GbE, 100 GbE and InfiniBand out
to 64 nodes for the benchmark models. Needs ``pip install -e '.[mpi]'``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.workloads import CLASSES, WORKLOADS, Workload

__all__ = ["NETWORKS", "main", "parameters", "ring_allreduce_seconds"]

NETWORKS = {  # (latency per message in s, sustained bandwidth in bytes/s), assumed
    "10 GbE (TCP)": (50e-6, 1.1e9),
    "100 GbE (RoCE)": (5e-6, 11e9),
    "InfiniBand HDR 200G": (1.5e-6, 23e9),
}
NODES = (2, 4, 8, 16, 32, 64)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def parameters(workload: Workload) -> int:
    """Return the workload model's parameter count (weights and biases)."""
    if workload.model == "conv":
        c = workload.input_shape[-1]
        f1, f2 = workload.hidden
        return 9 * c * f1 + f1 + 9 * f1 * f2 + f2 + f2 * CLASSES + CLASSES
    widths = (workload.features, *workload.hidden, CLASSES)
    return sum(k * n + n for k, n in itertools.pairwise(widths))


def ring_allreduce_seconds(
    nbytes: float, nodes: int, latency: float, bandwidth: float
) -> float:
    """Ring allreduce time: ``2(p-1)`` messages of ``nbytes/p`` (reduce-scatter, allgather).

    ``T = 2 (p - 1) alpha + 2 (p - 1) / p * n / B`` (Thakur, Rabenseifner and Gropp
    2005; Patarasuk and Yuan 2009). The reduction's own arithmetic is left out: at
    these sizes it runs at memory speed, far above network bandwidth.
    """
    p = nodes
    return 2 * (p - 1) * latency + 2 * (p - 1) / p * nbytes / bandwidth


def _run(command: list[str], threads: int) -> None:
    env = {
        **os.environ,
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    }
    env.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    subprocess.run(command, env=env, check=True, timeout=3600)


def measure(quick: bool, rounds: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run both configurations ``rounds`` times, alternating; return their results."""
    mpirun = Path(sys.executable).parent / "mpirun"
    launcher = str(mpirun) if mpirun.exists() else shutil.which("mpirun")
    if launcher is None:
        raise SystemExit("no mpirun: pip install -e '.[mpi]'")
    name = "wide:quick" if quick else "wide"
    epochs = "1"
    worker = [sys.executable, "-m", "benchmarks.mpi_worker"]
    alone, pair = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            out = f"{tmp}/one{i}.json"
            _run([*worker, out, name, "256", epochs], threads=2)
            alone.append(json.loads(Path(out).read_text()))
            out = f"{tmp}/two{i}.json"
            mpi = [launcher, "-n", "2", "--oversubscribe", "--bind-to", "none"]
            mpi += ["--mca", "mpi_yield_when_idle", "1"]  # the box may be shared
            _run([*mpi, "--mca", "btl", "self,sm", *worker, out, name, "128", epochs], 1)
            pair.append(json.loads(Path(out).read_text()))
    return alone, pair


def report(alone: list[dict[str, Any]], pair: list[dict[str, Any]]) -> str:
    """Return the Markdown report of the measurements and the scaling model."""
    t1 = float(np.median([r["epoch_seconds"][0] for r in alone]))
    t2 = float(np.median([r["epoch_seconds"][0] for r in pair]))
    steps = pair[0]["steps"]
    comm = float(np.median([r["communication_seconds"] / r["steps"] for r in pair]))
    step2 = t2 / steps
    params = pair[0]["parameters"]
    lines = [
        f"wide workload ({alone[0]['samples']} samples, {params:,} parameters = "
        f"{4 * params / 1e6:.1f} MB of float32 gradient), global batch 256, "
        f"{len(alone)} alternating rounds, medians:",
        "",
        "| configuration | s/epoch | steps | s/step | allreduce ms/step |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| 1 rank x 2 threads, batch 256 | {t1:.2f} | {alone[0]['steps']} | "
        f"{t1 / alone[0]['steps']:.4f} | - |",
        f"| 2 ranks x 1 thread, batch 128 per rank | {t2:.2f} | {steps} | {step2:.4f} | "
        f"{1e3 * comm:.1f} |",
        "",
        f"Speed-up of 2 ranks over 1 rank with 2 threads: **{t1 / t2:.2f}x**; the "
        f"gradient allreduce (waiting for the other rank included) takes "
        f"{100 * comm / step2:.0f}% of a step.",
        "",
        "Allreduce here (2 ranks, shared memory, in place, median), and the model "
        "T = 2 alpha + n / B: alpha from the 1-element message, B fitted by least "
        "squares to the messages of 1 MB and more:",
        "",
        "| float32 elements | bytes | measured ms | model ms |",
        "| ---: | ---: | ---: | ---: |",
    ]
    sizes = {
        int(k): float(np.median([r["allreduce_seconds"][k] for r in pair]))
        for k in pair[0]["allreduce_seconds"]
    }
    alpha = sizes[min(sizes)] / 2  # ring with p = 2: two messages of n / 2
    big = np.array([4.0 * n for n in sizes if 4 * n >= 1e6])  # least squares, alpha fixed
    rest = np.array([sizes[n] - 2 * alpha for n in sizes if 4 * n >= 1e6])
    bandwidth = float(big @ big / (big @ rest))
    for size, seconds in sizes.items():
        model = ring_allreduce_seconds(4 * size, 2, alpha, bandwidth)
        lines.append(
            f"| {size:,} | {4 * size:,} | {1e3 * seconds:.3f} | {1e3 * model:.3f} |"
        )
    lines += [
        "",
        f"Here: alpha = {1e6 * alpha:.1f} us, B = {bandwidth / 1e9:.2f} GB/s (copies "
        "through shared memory between two processes).",
    ]
    compute = step2 - comm  # one rank's compute per step, per-rank batch 128, 1 thread
    flop_rate = WORKLOADS["wide"].flops_per_sample() * 128 / compute
    lines += [
        "",
        "## Scaling model",
        "",
        f"Per-rank batch fixed (weak scaling); compute per step from the measured "
        f"wide step ({1e3 * compute:.0f} ms for 128 samples on one core, "
        f"{flop_rate / 1e9:.1f} GFLOP/s), other models from their FLOPs at that rate "
        "(optimistic for the small ones, which are overhead-bound: their real "
        "compute is longer). Efficiency = compute / (compute + ring allreduce), with "
        "no overlap, as DataParallel runs it after backward.",
        "",
    ]
    header = "| model (MB) | network | " + " | ".join(f"p={p}" for p in NODES) + " |"
    rule = "| --- | --- |" + " ---: |" * len(NODES)
    lines += [
        "Ring allreduce time per step, ms (the same whatever the node's speed):",
        "",
        header,
        rule,
    ]
    for name in ("wide", "mlp-mnist", "conv", "small-batch"):
        size = 4.0 * parameters(WORKLOADS[name])
        for network, (latency, bandwidth) in NETWORKS.items():
            cells = [
                f"{1e3 * ring_allreduce_seconds(size, p, latency, bandwidth):.2f}"
                for p in NODES
            ]
            row = f"| {name} ({size / 1e6:.2f}) | {network} | " + " | ".join(cells)
            lines.append(row + " |")
    lines += [
        "",
        "Compute stops dominating once a step's compute is shorter than the time above. "
        "Efficiency when each node computes like one core here:",
        "",
        header,
        rule,
    ]
    for name in ("wide", "mlp-mnist", "conv", "small-batch"):
        workload = WORKLOADS[name]
        size = 4.0 * parameters(workload)
        batch = 128 if name == "wide" else workload.batch_size
        t_comp = workload.flops_per_sample() * batch / flop_rate
        for network, (latency, bandwidth) in NETWORKS.items():
            cells = []
            for p in NODES:
                t_comm = ring_allreduce_seconds(size, p, latency, bandwidth)
                cells.append(f"{100 * t_comp / (t_comp + t_comm):.0f}%")
            lines.append(
                f"| {name} ({size / 1e6:.2f}) | {network} | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Measure, print the report, and write it to ``--out`` when given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,056 samples: a smoke run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (3)")
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--raw", help="also write the measurements (JSON) here")
    parser.add_argument("--report-from", help="report measurements saved by --raw")
    args = parser.parse_args()
    if args.report_from:
        alone, pair = json.loads(Path(args.report_from).read_text())
    else:
        alone, pair = measure(args.quick, args.rounds)
    if args.raw:
        Path(args.raw).write_text(json.dumps([alone, pair]))
    text = report(alone, pair)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
