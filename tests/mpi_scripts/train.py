"""Train a small model under mpirun with DataParallel, as the data-parallel tests ask.

Run as ``mpirun -n 2 python train.py CONFIG.json``, CONFIG holding a list of runs
(one launch, several trainings: MPI starts once). Each rank writes its final flat
weights, History and communication time to the run's ``out`` directory
(``weights{rank}.npy``, ``history{rank}.json``, ``comm{rank}.json``). A run's keys:
``out``, ``kind`` (arrays, memmap with its ``memmap`` .npy file, sequence,
generator), ``graph`` (a functional model with two inputs and two outputs, fed
dicts), ``n``, ``batch_size``, ``epochs``, ``shuffle``, ``seed``, ``dropout``,
``batch_norm``, ``l2``, ``accumulate``, ``clip``, ``steps_per_epoch``,
``without_plugin``, ``timeout``,
``backup_dir`` (or one per rank), ``save_freq``, validation (``validation_split``, or
``validation_n`` samples of other data as ``validation_data``), ``evaluate_n``
(``evaluate`` on that many samples after fit, written to ``evaluate{rank}.json``;
``evaluated{rank}.json`` lists the samples each evaluation read on this rank), and
the faults ``kill_rank``/``hang_rank`` at ``fault_step`` (a global step).
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


def data(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Return ``n`` samples of 6 features and integer labels of 3 classes, fixed."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    return x, y


def structured(x: np.ndarray, y: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``x``/``y`` as the graph model takes them: dicts of two inputs and outputs."""
    score = (x[:, :1] * 0.5 - x[:, 5:6]).astype(np.float32)
    return {"features": x[:, :4], "extra": x[:, 4:]}, {"label": y, "score": score}


def graph_model(seed: int, l2: float = 0.0) -> loopkit.Model:
    """Return the compiled two-input, two-output functional model."""
    loopkit.set_random_seed(seed)
    features = loopkit.Input(shape=(4,), name="features")
    extra = loopkit.Input(shape=(2,), name="extra")
    joined = layers.Concatenate()([features, extra])
    hidden = layers.Dense(16, activation="relu", kernel_regularizer=_l2(l2))(joined)
    label = layers.Dense(3, name="label")(hidden)
    score = layers.Dense(1, name="score")(layers.Concatenate()([hidden, extra]))
    net = loopkit.Model(
        {"features": features, "extra": extra}, {"label": label, "score": score}
    )
    net.compile(
        optimizer=loopkit.optimizers.Adam(learning_rate=0.01),
        loss={
            "label": loopkit.losses.SparseCategoricalCrossentropy(from_logits=True),
            "score": "mse",
        },
        loss_weights={"label": 1.0, "score": 0.5},
        metrics={"label": ["accuracy"], "score": ["mae"]},
    )
    return net


def _l2(factor: float) -> Any:
    return loopkit.regularizers.L2(factor) if factor else None


def model(
    seed: int, dropout: float = 0.0, batch_norm: bool = False, l2: float = 0.0
) -> loopkit.Sequential:
    """Return the compiled test model, its weights drawn from ``seed``."""
    loopkit.set_random_seed(seed)
    stack: list[Any] = [
        layers.Dense(16, activation="relu", input_shape=(6,), kernel_regularizer=_l2(l2))
    ]
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
    """A Sequence of consecutive ``batch_size`` slices of ``x``/``y`` (dicts: ``graph``)."""

    def __init__(
        self, x: np.ndarray, y: np.ndarray, batch_size: int, graph: bool = False
    ) -> None:
        self.x, self.y, self.batch_size, self.graph = x, y, batch_size, graph

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} of {len(self)}")
        part = slice(i * self.batch_size, (i + 1) * self.batch_size)
        if self.graph:
            return structured(self.x[part], self.y[part])
        return self.x[part], self.y[part]


def build(config: dict[str, Any], seed: int) -> loopkit.Model:
    """Return the model ``config`` asks for, its weights drawn from ``seed``."""
    if config.get("graph"):
        return graph_model(seed, config.get("l2", 0.0))
    dropout, batch_norm = config.get("dropout", 0.0), config.get("batch_norm", False)
    return model(seed, dropout, batch_norm, config.get("l2", 0.0))


def validation(config: dict[str, Any]) -> dict[str, Any]:
    """Return fit's validation arguments for ``config`` (none when it asks for none)."""
    if config.get("validation_split"):
        return {"validation_split": config["validation_split"]}
    if not config.get("validation_n"):
        return {}
    xv, yv = data(config["validation_n"], seed=11)
    return {"validation_data": structured(xv, yv) if config.get("graph") else (xv, yv)}


def evaluation_data(config: dict[str, Any]) -> tuple[Any, Any]:
    """Return the ``evaluate_n`` samples evaluated after fit."""
    xe, ye = data(config["evaluate_n"], seed=13)
    return structured(xe, ye) if config.get("graph") else (xe, ye)


class Evaluated:
    """Records the samples each evaluation read on this rank (its shard's count)."""

    def __init__(self) -> None:
        self.samples: list[int] = []

    @loopkit.hookimpl(trylast=True)
    def on_test_end(self, state: loopkit.LoopState) -> None:
        part = state.eval_data
        self.samples.append(int(getattr(part, "epoch_samples", -1)))


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
    net = build(config, seed)
    x, y = data(config["n"])
    b = config["batch_size"]
    kind, graph = config.get("kind", "arrays"), bool(config.get("graph"))
    fit_args: dict[str, Any] = {"x": x, "y": y, "batch_size": b}
    if graph:
        fit_args["x"], fit_args["y"] = structured(x, y)
    if kind == "memmap":  # the test wrote data(n)'s x there
        fit_args["x"] = np.load(config["memmap"], mmap_mode="r")
    elif kind == "sequence":
        fit_args = {"x": Batches(x, y, b, graph)}
    elif kind == "generator":
        batches = Batches(x, y, b, graph)  # as a list of batches: re-iterable
        fit_args = {"x": [batches[i] for i in range(len(batches))]}
    fit_args.update(validation(config))
    if config.get("steps_per_epoch"):
        fit_args["steps_per_epoch"] = config["steps_per_epoch"]
    evaluated = Evaluated()
    run_plugins: list[Any] = [dp, *plugins_for(config), evaluated]
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
    if config.get("evaluate_n"):
        xe, ye = evaluation_data(config)
        result = net.evaluate(
            xe, ye, batch_size=b, verbose=0, plugins=[dp, evaluated], return_dict=True
        )
        (out / f"evaluate{rank}.json").write_text(json.dumps(result))
    (out / f"evaluated{rank}.json").write_text(json.dumps(evaluated.samples))
    np.save(out / f"weights{rank}.npy", net.flat_weights)
    (out / f"history{rank}.json").write_text(json.dumps(history.history))
    (out / f"comm{rank}.json").write_text(
        json.dumps({"seconds": dp.communication_seconds, "steps": net.state.global_step})
    )


if __name__ == "__main__":
    for each in json.loads(Path(sys.argv[1]).read_text()):
        run(each)
