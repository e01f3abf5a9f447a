"""Does overlapping the gradient allreduce with the backward pass pay here?

``python -m benchmarks.dp_overlap [--rounds R] [--steps S] [--out FILE]`` starts
``mpirun -n 2`` (one BLAS thread per rank) on the ``wide`` workload (per-rank batch
128) and times one training step (forward, backward, gradient allreduce, Adam) in
each way, alternating them round by round:

- ``blocking``: what DataParallel does: backward, then one allreduce of the whole
  flat gradient buffer.
- ``bucket after layer k``: a non-blocking ``Iallreduce`` of the buffer's tail (the
  gradients of layers ``k..``, final once layer ``k``'s backward is done) starts from
  a hook right then, overlapped with the backward of the layers before ``k``; after
  the backward the head's allreduce starts; the step waits for both. ``+ poll``: the
  layers' backward hooks also call ``MPI_Test`` on the pending request, since Open
  MPI advances a non-blocking collective only inside MPI calls.

Each way starts from the same weights and runs the same batches; the report says
whether the final weights are bitwise equal across the ranks and to the blocking
run's, and records the ``OPENBLAS_CORETYPE`` setting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "worker"]

PER_RANK_BATCH = 128


def _step(model: Any, comm: Any, x: Any, y: Any, mode: dict[str, Any]) -> None:
    """One training step with the gradient allreduce done the ``mode`` way."""
    grads = model.flat_gradients
    mode["requests"] = []
    model.compute_gradients(x, y)
    boundary = mode.get("boundary")
    if boundary is None:
        comm.allreduce(grads, "the blocking allreduce")
    else:
        mode["requests"].append(comm.start_allreduce(grads[:boundary]))
        comm.wait(mode["requests"], "the bucketed allreduce")
    grads *= grads.dtype.type(0.5)
    model.apply_gradients()


def _hook(model: Any, comm: Any, mode: dict[str, Any]) -> None:
    """Wrap each layer's backward: start the tail's allreduce after layer ``k``'s."""
    layers = model.layers
    offsets = np.cumsum([0, *(sum(p.size for p in ly.parameters) for ly in layers)])
    for index, layer in enumerate(layers):
        original = layer.backward

        def backward(dy: Any, _index: int = index, _original: Any = original) -> Any:
            out = _original(dy)
            if mode.get("layer") == _index:  # layers _index.. have their gradients
                tail = model.flat_gradients[int(offsets[_index]) :]
                mode["requests"].append(comm.start_allreduce(tail))
            elif mode.get("poll") and mode["requests"]:
                comm.mpi.Request.Testall(mode["requests"])  # let MPI progress it
            return out

        layer.backward = backward
    mode["offsets"] = offsets


def worker(out: str, rounds: int, steps: int) -> None:
    """Time every way on this rank; rank 0 writes the results to ``out``."""
    from benchmarks.runners import LoopkitRunner
    from benchmarks.workloads import get_workload, make_data
    from loopkit.distributed import Communicator, import_mpi

    mpi = import_mpi()
    comm = Communicator(mpi.COMM_WORLD, timeout=600)
    workload = get_workload("wide")
    x, y = make_data(workload)
    rows = slice(comm.rank * PER_RANK_BATCH, (comm.rank + 1) * PER_RANK_BATCH)
    xb, yb = np.ascontiguousarray(x[rows]), y[rows]
    model = LoopkitRunner(workload, seed=0).model
    model.compute_gradients(xb, yb)  # builds the model and its buffers
    model.trainable_spans  # noqa: B018 - builds the optimizer: same fresh state on every rank
    start_weights = model.flat_weights.copy()
    start_optimizer = model.optimizer.get_state()
    mode: dict[str, Any] = {}
    _hook(model, comm, mode)
    offsets = mode["offsets"]
    n_layers = len(model.layers)
    ways: dict[str, dict[str, Any]] = {"blocking": {}}
    for k in range(1, n_layers):
        boundary = int(offsets[k])
        ways[f"bucket after layer {k}"] = {"layer": k, "boundary": boundary}
        ways[f"bucket after layer {k} + poll"] = {
            "layer": k,
            "boundary": boundary,
            "poll": True,
        }
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    finals: dict[str, tuple[int, bytes]] = {}
    for _ in range(rounds):
        for name, settings in ways.items():
            model.flat_weights[...] = start_weights
            model.optimizer.set_state(start_optimizer)
            mode.clear()
            mode.update(settings, offsets=offsets)
            comm.comm.Barrier()
            for _ in range(steps):
                began = time.perf_counter()
                _step(model, comm, xb, yb, mode)
                seconds[name].append(time.perf_counter() - began)
            final = model.flat_weights.tobytes()
            finals[name] = (zlib.crc32(final), final)
    reference = finals["blocking"][1]
    checks = {}
    for name, (crc, final) in finals.items():
        crcs = comm.comm.allgather(crc)
        checks[name] = {
            "ranks_bitwise_equal": len(set(crcs)) == 1,
            "equal_to_blocking": final == reference,
        }
    if comm.rank == 0:
        result = {
            "tail_parameters": {
                name: int(offsets[-1] - settings["boundary"])
                for name, settings in ways.items()
                if "boundary" in settings
            },
            "parameters": int(offsets[-1]),
            "median_ms": {k: 1e3 * float(np.median(v)) for k, v in seconds.items()},
            "min_ms": {k: 1e3 * float(np.min(v)) for k, v in seconds.items()},
            "checks": checks,
            "rounds": rounds,
            "steps": steps,
        }
        Path(out).write_text(json.dumps(result, indent=2))


def report(result: dict[str, Any], coretype: str | None) -> str:
    """Return the Markdown table of one measurement."""
    base = result["median_ms"]["blocking"]
    lines = [
        f"wide workload, 2 ranks x 1 thread, per-rank batch {PER_RANK_BATCH}, "
        f"{result['parameters']:,} parameters; {result['rounds']} alternating rounds of "
        f"{result['steps']} steps per way; OPENBLAS_CORETYPE={coretype or 'unset'}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores.",
        "",
        "| way | tail bucket (parameters) | median ms/step | min ms/step | vs blocking "
        "| ranks bitwise equal | equal to blocking |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for name, median in result["median_ms"].items():
        tail = result["tail_parameters"].get(name)
        check = result["checks"][name]
        lines.append(
            f"| {name} | {'-' if tail is None else f'{tail:,}'} | {median:.1f} | "
            f"{result['min_ms'][name]:.1f} | {100 * (median / base - 1):+.1f}% | "
            f"{check['ranks_bitwise_equal']} | {check['equal_to_blocking']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Launch the measurement under mpirun and print (and save) its report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.rounds, args.steps)
        return
    beside = Path(sys.executable).parent / "mpirun"
    launcher = str(beside) if beside.exists() else shutil.which("mpirun")
    if launcher is None:
        raise SystemExit("no mpirun: pip install -e '.[mpi]'")
    env = {
        **os.environ,
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/overlap.json"
        command = [launcher, "-n", "2", "--oversubscribe", "--bind-to", "none"]
        command += ["--mca", "btl", "self,sm", "--mca", "mpi_yield_when_idle", "1"]
        command += [sys.executable, "-m", "benchmarks.dp_overlap", "--worker", out]
        command += ["--rounds", str(args.rounds), "--steps", str(args.steps)]
        subprocess.run(command, env=env, check=True, timeout=3600)
        result = json.loads(Path(out).read_text())
    text = report(result, os.environ.get("OPENBLAS_CORETYPE"))
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
