"""One data-parallel measurement process: the wide workload under DataParallel.

Run by ``benchmarks.data_parallel``, either alone (one rank, its BLAS threads set
by the environment) or under ``mpirun -n N`` (one thread per rank). Rank 0 writes
a JSON file: seconds per epoch, steps, seconds in the gradient allreduce, and the
allreduce's time per message size (a microbenchmark on the same communicator).

Usage: ``python -m benchmarks.mpi_worker OUT.json WORKLOAD PER_RANK_BATCH EPOCHS``
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.runners import LoopkitRunner
from benchmarks.workloads import get_workload, make_data

__all__ = ["allreduce_times", "main"]

SIZES = (1, 1_024, 16_384, 262_144, 1_048_576, 4_194_304, 8_413_194)
"""float32 elements per allreduce message; the last is the wide model's gradient."""


def allreduce_times(comm: Any, repeats: int) -> dict[int, float]:
    """Return the median seconds of one in-place SUM allreduce per message size."""
    times: dict[int, float] = {}
    for size in SIZES:
        buffer = np.ones(size, np.float32)
        samples = []
        for i in range(repeats + 1):
            comm.comm.Barrier()
            start = time.perf_counter()
            comm.allreduce(buffer, "the allreduce benchmark")
            if i:  # the first call sets up buffers: not counted
                samples.append(time.perf_counter() - start)
        times[size] = float(np.median(samples))
    return times


def main(out: str, workload_name: str, per_rank_batch: int, epochs: int) -> None:
    """Train ``epochs`` timed epochs (after one warm-up step) and write the results."""
    from loopkit.plugins.data_parallel import DataParallel

    quick = workload_name.endswith(":quick")
    workload = get_workload(workload_name.removesuffix(":quick"), quick=quick)
    workload = replace(workload, batch_size=per_rank_batch)
    x, y = make_data(workload)
    dp = DataParallel()
    runner = LoopkitRunner(workload, seed=0)
    warm = per_rank_batch * dp.group.world_size  # one step: buffers, BLAS, MPI set up
    runner.model.fit(
        x[:warm], y[:warm], batch_size=per_rank_batch, epochs=1, verbose=0, plugins=[dp]
    )
    dp.communication_seconds = 0.0
    steps_before = runner.model.state.global_step
    timings = runner.fit(x, y, epochs, plugins=[dp])
    steps = runner.model.state.global_step - steps_before
    result: dict[str, Any] = {
        "world_size": dp.group.world_size,
        "per_rank_batch": per_rank_batch,
        "samples": workload.samples,
        "parameters": int(runner.model.flat_weights.size),
        "epoch_seconds": [t[0] for t in timings],
        "steps": steps,
        "communication_seconds": dp.communication_seconds,
    }
    comm = dp.communicator
    if comm is not None:
        result["allreduce_seconds"] = allreduce_times(comm, repeats=5 if quick else 20)
    if dp.group.rank == 0:
        Path(out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
