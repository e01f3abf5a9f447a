"""Train a small model under mpirun with DataParallel, as the data-parallel tests ask.

Run as ``mpirun -n 2 python train.py CONFIG.json``, CONFIG holding a list of runs
(one launch, several trainings: MPI starts once). Each rank writes its final flat
weights, History and communication time to the run's ``out`` directory
(``weights{rank}.npy``, ``history{rank}.json``, ``comm{rank}.json``). A run's keys:
``out``, ``kind`` (arrays, memmap with its ``memmap`` .npy file, sequence,
generator), ``n``, ``batch_size``, ``epochs``, ``shuffle``, ``seed``, ``dropout``,
``batch_norm``, ``accumulate``, ``clip``, ``without_plugin``, ``timeout``,
``backup_dir`` (or one per rank), ``save_freq``, and the faults
``kill_rank``/``hang_rank`` at ``fault_step`` (a global step).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import loopkit
from loopkit import layers, plugins
from loopkit.plugins.data_parallel import DataParallel


def data(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``n`` samples of 6 features and integer labels of 3 classes, fixed."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    return x, y


def model(seed: int, dropout: float = 0.0, batch_norm: bool = False) -> loopkit.Sequential:
    """Return the compiled test model, its weights drawn from ``seed``."""
    loopkit.set_random_seed(seed)
    stack: list[Any] = [layers.Dense(16, activation="relu", input_shape=(6,))]
    if batch_norm:
        stack.append(layers.BatchNormalization())
    net = loopkit.Sequential([*stack, layers.Dropout(dropout), layers.Dense(3)])
    net.compile(
        optimizer=loopkit.optimizers.Adam(learning_rate=0.01),
        loss=loopkit.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return net


class Batches:
    """A Sequence of consecutive ``batch_size`` slices of ``x``/``y``."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} of {len(self)}")
        part = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[part], self.y[part]


class Fault:
    """Kill or hang this rank after global step ``fault_step``, as the config says."""

    def __init__(self, config: dict[str, Any], rank: int) -> None:
        self.config, self.rank = config, rank

    @loopkit.hookimpl
    def on_train_batch_end(self, state: loopkit.LoopState) -> None:
        if state.global_step != self.config["fault_step"]:
            return
        if self.config.get("kill_rank") == self.rank:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.config.get("hang_rank") == self.rank:
            time.sleep(120)


def plugins_for(config: dict[str, Any]) -> list[Any]:
    """Return the plugins besides DataParallel that ``config`` asks for."""
    chosen: list[Any] = []
    if config.get("accumulate"):
        chosen.append(plugins.GradientAccumulation(steps=config["accumulate"]))
    if config.get("clip"):
        chosen.append(plugins.GradientClipping(max_norm=config["clip"]))
    return chosen


def run(config: dict[str, Any]) -> None:
    """Train as ``config`` says and write this rank's results."""
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    dp = DataParallel(timeout=config.get("timeout", 300.0))
    rank = dp.group.rank
    seed = config.get("seed", 1) + rank  # ranks start from different weights
    net = model(seed, config.get("dropout", 0.0), config.get("batch_norm", False))
    x, y = data(config["n"])
    b = config["batch_size"]
    kind = config.get("kind", "arrays")
    fit_args: dict[str, Any] = {"x": x, "y": y, "batch_size": b}
    if kind == "memmap":  # the test wrote data(n)'s x there
        fit_args["x"] = np.load(config["memmap"], mmap_mode="r")
    elif kind == "sequence":
        fit_args = {"x": Batches(x, y, b)}
    elif kind == "generator":
        batches = Batches(x, y, b)  # as a list of batches: re-iterable
        fit_args = {"x": [batches[i] for i in range(len(batches))]}
    run_plugins: list[Any] = [dp, *plugins_for(config)]
    if config.get("without_plugin"):  # the reference run: DataParallel left out
        run_plugins.remove(dp)
    backup_dir = config.get("backup_dir")
    if isinstance(backup_dir, list):  # one per rank: a backup only some ranks see
        backup_dir = backup_dir[rank]
    if backup_dir:
        run_plugins.append(
            plugins.BackupAndRestore(
                backup_dir,
                save_freq=config.get("save_freq", "epoch"),
                delete_checkpoint=False,
            )
        )
    if config.get("fault_step") is not None:
        run_plugins.append(Fault(config, rank))
    if dp.communicator is not None:  # start together: the timeout is for steps
        dp.communicator.comm.Barrier()
    history = net.fit(
        epochs=config.get("epochs", 2),
        shuffle=config.get("shuffle", True),
        verbose=0,
        plugins=run_plugins,
        **fit_args,
    )
    np.save(out / f"weights{rank}.npy", net.flat_weights)
    (out / f"history{rank}.json").write_text(json.dumps(history.history))
    (out / f"comm{rank}.json").write_text(
        json.dumps({"seconds": dp.communication_seconds, "steps": net.state.global_step})
    )


if __name__ == "__main__":
    for each in json.loads(Path(sys.argv[1]).read_text()):
        run(each)
