"""Train one MLP in several MPI processes: ``mpirun -n 2 python examples/data_parallel.py``.

Every rank runs this same script. DataParallel cuts each global batch of
``2 x 64`` samples into one part per rank, averages the gradients with one
allreduce per step, and makes rank 0 the only one that writes the backup, the
CSV log and the progress lines. Kill the job (Ctrl-C or ``scancel``) and start
the same command again: BackupAndRestore resumes it exactly. Run with plain
``python`` it trains alone, exactly as without the plugin.

Needs ``pip install 'loopkit[mpi]'``; as root, Open MPI also wants
``OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1``.
"""

from __future__ import annotations

import numpy as np

import loopkit as lk
from loopkit import distributed
from loopkit.layers import Dense, Dropout
from loopkit.plugins import BackupAndRestore, CSVLogger
from loopkit.plugins.data_parallel import DataParallel


def main() -> None:
    """Train a 3-class MLP on synthetic data, data-parallel over the MPI ranks."""
    parallel = DataParallel(timeout=120)  # set up first: other plugins ask the rank
    rng = np.random.default_rng(0)  # the same data on every rank; each trains its shard
    x = rng.normal(size=(8_000, 20)).astype(np.float32)
    y = (x[:, :3] @ np.array([1.0, -2.0, 0.5]) > 0).astype(np.int64)
    lk.set_random_seed(0)
    model = lk.Sequential(
        [
            Dense(64, activation="relu", input_shape=(20,)),
            Dropout(0.1),
            Dense(2, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=lk.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        x,
        y,
        batch_size=64,  # per rank: the global batch is 64 x the number of ranks
        epochs=5,
        validation_split=0.1,  # every rank evaluates all of it: no communication
        verbose=2,
        plugins=[parallel, BackupAndRestore("dp_backup"), CSVLogger("dp_log.csv")],
    )
    if distributed.is_primary():
        group = distributed.process_group()
        print(
            f"{group.world_size} rank(s); final accuracy "
            f"{history.history['accuracy'][-1]:.3f}; "
            f"{parallel.communication_seconds:.2f} s in the gradient allreduce"
        )


if __name__ == "__main__":
    main()
