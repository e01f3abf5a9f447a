"""DataParallel: 2 MPI ranks match one process on the global batch; failures end the job."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loopkit
from loopkit import ConfigError, plugins
from loopkit._data.datasets import epoch_permutation, make_dataset
from loopkit.distributed import (
    Communicator,
    DistributedError,
    ProcessGroup,
    import_mpi,
    process_group,
    set_process_group,
    shard,
)
from loopkit.plugins.data_parallel import DataParallel

SCRIPT = Path(__file__).parent / "mpi_scripts" / "train.py"
_spec = importlib.util.spec_from_file_location("mpi_train_script", SCRIPT)
assert _spec is not None and _spec.loader is not None
train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train)


def mpirun_command(ranks: int) -> list[str]:
    """Return mpirun from this interpreter's environment (loopkit[mpi]) or PATH."""
    beside = Path(sys.executable).parent / "mpirun"
    found = str(beside) if beside.exists() else shutil.which("mpirun")
    assert found, "no mpirun: install the MPI extra, pip install -e '.[mpi]'"
    # --oversubscribe: 2 ranks even on 1 core; btl self,sm: shared memory, no network;
    # yield when idle: a waiting rank gives its core up (CI machines are shared)
    return [
        *(found, "-n", str(ranks), "--oversubscribe", "--bind-to", "none"),
        *("--mca", "btl", "self,sm", "--mca", "mpi_yield_when_idle", "1"),
    ]


def launch(
    tmp_path: Path, runs: list[dict[str, Any]], ranks: int = 2
) -> subprocess.CompletedProcess[str]:
    """Run the training script under ``mpirun -n ranks`` for ``runs``; return the result."""
    config = tmp_path / f"runs{time.monotonic_ns()}.json"
    config.write_text(json.dumps(runs))
    env = {
        **os.environ,
        "OMPI_ALLOW_RUN_AS_ROOT": "1",  # CI runs as root
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    with subprocess.Popen(
        [*mpirun_command(ranks), sys.executable, str(SCRIPT), str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # so a timeout can end mpirun and every rank at once
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def results(out: Path) -> tuple[list[np.ndarray], list[dict[str, list[float]]]]:
    """Return each rank's final weights and History."""
    weights = [np.load(out / f"weights{r}.npy") for r in range(2)]
    histories = [json.loads((out / f"history{r}.json").read_text()) for r in range(2)]
    return weights, histories


def one_process(run: dict[str, Any]) -> tuple[np.ndarray, dict[str, list[float]]]:
    """Train rank 0's model in this process on the global batch (2 x batch_size)."""
    net = train.build({**run, "dropout": 0.0}, run.get("seed", 1))
    x, y = train.data(run["n"])
    if run.get("graph"):
        x, y = train.structured(x, y)
    history = net.fit(
        x,
        y,
        batch_size=2 * run["batch_size"],
        epochs=run.get("epochs", 2),
        shuffle=run.get("shuffle", True),
        verbose=0,
        plugins=train.plugins_for(run),
        steps_per_epoch=run.get("steps_per_epoch"),
        **train.validation(run),
    )
    if run.get("evaluate_n"):
        xe, ye = train.evaluation_data(run)
        evaluated = net.evaluate(
            xe, ye, batch_size=2 * run["batch_size"], verbose=0, return_dict=True
        )
        history = {
            **history.history,
            **{f"evaluate_{k}": [v] for k, v in evaluated.items()},
        }
        return net.flat_weights.copy(), history
    return net.flat_weights.copy(), history.history


def assert_logs_close(
    got: dict[str, list[float]], expected: dict[str, list[float]], name: str
) -> None:
    """Every logged key equals one process's, to float32 rounding."""
    assert set(got) == set(expected), name
    for key in expected:
        np.testing.assert_allclose(
            got[key], expected[key], rtol=1e-5, atol=1e-7, err_msg=f"{name}: {key}"
        )


# --- equivalence: 2 ranks with batch b == 1 process with batch 2b -----------------------


def test_two_ranks_train_as_one_process_on_the_global_batch_for_every_kind_of_data(
    tmp_path: Path,
) -> None:
    x, _ = train.data(51)
    np.save(tmp_path / "x.npy", x)
    runs = {  # 51 and 49 samples: short last global batches, 49 pads rank 1
        "arrays": {"n": 51, "batch_size": 8},
        "padded": {"n": 49, "batch_size": 8},
        "memmap": {"n": 51, "batch_size": 8, "kind": "memmap"},
        "sequence": {"n": 51, "batch_size": 8, "kind": "sequence", "shuffle": False},
        "generator": {"n": 51, "batch_size": 8, "kind": "generator", "shuffle": False},
        "accumulate_clip": {"n": 64, "batch_size": 8, "accumulate": 2, "clip": 0.05},
        # 2 of 4 global batches per epoch: epochs continue through the shuffled pass
        "steps_per_epoch": {"n": 64, "batch_size": 8, "steps_per_epoch": 2},
    }
    for name, run in runs.items():
        run.update(out=str(tmp_path / name), memmap=str(tmp_path / "x.npy"), epochs=3)
    done = launch(tmp_path, list(runs.values()))
    assert done.returncode == 0, done.stderr
    for name, run in runs.items():
        (w0, w1), (h0, h1) = results(tmp_path / name)
        assert np.array_equal(w0, w1), f"{name}: rank 1's weights differ from rank 0's"
        assert h0 == h1, name
        expected_w, expected_h = one_process(run)
        np.testing.assert_allclose(w0, expected_w, rtol=0, atol=2e-6, err_msg=name)
        for key in ("loss", "accuracy"):
            np.testing.assert_allclose(h0[key], expected_h[key], rtol=1e-5, err_msg=name)


def test_a_two_input_two_output_graph_model_trains_on_two_ranks_as_one_process(
    tmp_path: Path,
) -> None:
    runs = {  # dicts of arrays, shuffled; and a Sequence of dict batches
        "arrays": {"n": 51, "batch_size": 8, "validation_n": 17},
        "padded": {"n": 49, "batch_size": 8},
        "sequence": {"n": 51, "batch_size": 8, "kind": "sequence", "shuffle": False},
        "accumulate_clip": {"n": 64, "batch_size": 8, "accumulate": 2, "clip": 0.05},
    }
    for name, run in runs.items():
        run.update(out=str(tmp_path / name), graph=True, epochs=3)
    done = launch(tmp_path, list(runs.values()))
    assert done.returncode == 0, done.stderr
    for name, run in runs.items():
        (w0, w1), (h0, h1) = results(tmp_path / name)
        assert np.array_equal(w0, w1), f"{name}: rank 1's weights differ from rank 0's"
        assert h0 == h1, name
        expected_w, expected_h = one_process(run)
        np.testing.assert_allclose(w0, expected_w, rtol=0, atol=2e-6, err_msg=name)
        assert {"label_loss", "score_loss", "label_accuracy", "score_mae"} <= set(h0)
        assert_logs_close(h0, expected_h, name)


def test_validation_and_evaluate_are_sharded_and_their_logs_global(
    tmp_path: Path,
) -> None:
    runs = {  # validation sizes 16 (split), 17 (rank 1 skips the last step), 1
        "split": {"n": 64, "batch_size": 8, "validation_split": 0.25, "evaluate_n": 21},
        "data": {"n": 48, "batch_size": 8, "validation_n": 17, "l2": 0.01},
        "one_sample": {
            "n": 32,
            "batch_size": 8,
            "validation_n": 1,
            "l2": 0.01,
            "evaluate_n": 1,
        },
        "graph": {
            "n": 48,
            "batch_size": 8,
            "validation_n": 17,
            "evaluate_n": 19,
            "graph": True,
            "l2": 0.01,
        },
    }
    for name, run in runs.items():
        run.update(out=str(tmp_path / name), epochs=2)
    done = launch(tmp_path, list(runs.values()))
    assert done.returncode == 0, done.stderr
    sizes = {
        "split": [16, 16, 21],
        "data": [17, 17],
        "one_sample": [1, 1, 1],
        "graph": [17, 17, 19],
    }
    for name, run in runs.items():
        out = tmp_path / name
        (w0, w1), (h0, h1) = results(out)
        assert np.array_equal(w0, w1), name
        if run.get("evaluate_n"):
            e0, e1 = (json.loads((out / f"evaluate{r}.json").read_text()) for r in (0, 1))
            assert e0 == e1, name  # identical on both ranks
            h0 = {**h0, **{f"evaluate_{k}": [v] for k, v in e0.items()}}
            h1 = {**h1, **{f"evaluate_{k}": [v] for k, v in e1.items()}}
        assert h0 == h1, name
        assert any(k.startswith("val_") for k in h0), name
        expected_w, expected_h = one_process(run)
        np.testing.assert_allclose(w0, expected_w, rtol=0, atol=2e-6, err_msg=name)
        assert_logs_close(h0, expected_h, name)
        # each evaluation read a part of the samples on each rank, together all of them
        read = [json.loads((out / f"evaluated{r}.json").read_text()) for r in (0, 1)]
        assert [a + b for a, b in zip(*read, strict=True)] == sizes[name], name
        # both ranks read some (lower ranks the extra ones), unless there is one sample
        assert all(a >= b and (b > 0 or a + b == 1) for a, b in zip(*read, strict=True))


def test_ranks_stay_bitwise_equal_with_dropout_and_batch_normalization(
    tmp_path: Path,
) -> None:
    run = {"n": 51, "batch_size": 8, "dropout": 0.3, "batch_norm": True, "epochs": 2}
    run["out"] = str(tmp_path / "bn")
    done = launch(tmp_path, [run])
    assert done.returncode == 0, done.stderr
    (w0, w1), _ = results(tmp_path / "bn")
    assert np.array_equal(w0, w1)
    assert np.all(np.isfinite(w0))


# --- failures: a dead or hung rank ends the job; resume is exact -----------------------


def test_a_killed_rank_ends_the_run_nonzero_within_60_s_and_the_backup_loads(
    tmp_path: Path,
) -> None:
    backup = tmp_path / "backup"
    run = {"n": 64, "batch_size": 4, "epochs": 4, "backup_dir": str(backup)}
    run.update(out=str(tmp_path / "out"), kill_rank=1, fault_step=20)
    started = time.monotonic()
    done = launch(tmp_path, [run])
    assert done.returncode != 0, done.stdout + done.stderr
    assert time.monotonic() - started < 60, done.stdout + done.stderr
    net = train.model(1)
    loaded = loopkit.load_checkpoint(net, backup / "backup.npz")
    position = loaded["extra"]["backup_and_restore"]
    assert (position["epoch"], position["batch"]) == (2, 0), done.stdout + done.stderr
    assert not (tmp_path / "out" / "weights0.npy").exists()


def test_a_hung_rank_makes_the_others_fail_after_the_timeout_and_abort_the_job(
    tmp_path: Path,
) -> None:
    run = {"n": 64, "batch_size": 4, "epochs": 2, "timeout": 2.0}
    run.update(out=str(tmp_path / "out"), hang_rank=1, fault_step=5)
    started = time.monotonic()
    done = launch(tmp_path, [run])
    assert done.returncode != 0
    assert time.monotonic() - started < 60
    stuck = "rank 0 of 2 waited 2 s in the stop_training agreement"  # rank 1's batch end
    assert f"DistributedError: DataParallel: {stuck}" in done.stderr
    assert "aborting every rank" in done.stderr


def test_killing_the_job_and_resuming_with_backup_and_restore_is_bitwise_exact(
    tmp_path: Path,
) -> None:
    base = {"n": 64, "batch_size": 4, "epochs": 3, "dropout": 0.3, "save_freq": 3}
    whole = {**base, "out": str(tmp_path / "whole"), "backup_dir": str(tmp_path / "b1")}
    killed = {**base, "out": str(tmp_path / "killed"), "backup_dir": str(tmp_path / "b2")}
    done = launch(tmp_path, [whole])
    assert done.returncode == 0, done.stderr
    done = launch(tmp_path, [{**killed, "kill_rank": 0, "fault_step": 13}])
    assert done.returncode != 0
    assert not (tmp_path / "killed" / "weights0.npy").exists()
    done = launch(tmp_path, [killed])  # the same command again: resumes at step 12
    assert done.returncode == 0, done.stderr
    (expected, _), _ = results(tmp_path / "whole")
    (w0, w1), _ = results(tmp_path / "killed")
    assert np.array_equal(w0, expected)
    assert np.array_equal(w1, expected)


def test_ranks_that_restore_different_backups_fail_before_training(
    tmp_path: Path,
) -> None:
    x, y = train.data(32)
    alone = plugins.BackupAndRestore(str(tmp_path / "seen"), delete_checkpoint=False)
    train.model(1).fit(x, y, batch_size=8, epochs=1, verbose=0, plugins=[alone])
    run = {"n": 32, "batch_size": 4, "epochs": 2, "out": str(tmp_path / "out")}
    run["backup_dir"] = [str(tmp_path / "seen"), str(tmp_path / "unseen")]
    done = launch(tmp_path, [run])
    assert done.returncode != 0
    assert "resume epochs -1..1, resume batches 0..0" in done.stderr
    assert "put BackupAndRestore's backup_dir" in done.stderr
    assert not (tmp_path / "out" / "weights0.npy").exists()


# --- one rank, or no launcher: no change ----------------------------------------------


def test_one_rank_under_mpirun_trains_bitwise_as_without_the_plugin(
    tmp_path: Path,
) -> None:
    run = {"n": 51, "batch_size": 8, "dropout": 0.3, "epochs": 2}
    with_plugin = {**run, "out": str(tmp_path / "with")}
    without = {**run, "out": str(tmp_path / "without"), "without_plugin": True}
    done = launch(tmp_path, [with_plugin, without], ranks=1)
    assert done.returncode == 0, done.stderr
    weights = [np.load(tmp_path / d / "weights0.npy") for d in ("with", "without")]
    histories = [(tmp_path / d / "history0.json").read_text() for d in ("with", "without")]
    assert np.array_equal(weights[0], weights[1])
    assert histories[0] == histories[1]


def test_without_a_launcher_the_plugin_changes_nothing() -> None:
    x, y = train.data(40)
    trained = []
    for extra in ([], [DataParallel()]):
        net = train.model(3, dropout=0.2)
        history = net.fit(x, y, batch_size=8, epochs=2, verbose=0, plugins=extra)
        trained.append((net.flat_weights.copy(), history.history))
    assert np.array_equal(trained[0][0], trained[1][0])
    assert trained[0][1] == trained[1][1]
    assert process_group() == ProcessGroup(rank=0, world_size=1)


@pytest.mark.parametrize(("rank", "writes"), [(0, True), (1, False)])
def test_writing_plugins_write_and_print_on_rank_0_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rank: int, writes: bool
) -> None:
    x, y = train.data(16)
    net = train.model(3)
    writers = [
        plugins.CSVLogger(str(tmp_path / "log.csv")),
        plugins.TensorBoard(str(tmp_path / "tb")),
        plugins.ModelCheckpoint(
            str(tmp_path / "ckpt" / "m.weights.npz"), save_weights_only=True
        ),
        plugins.BackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False),
    ]
    previous = set_process_group(ProcessGroup(rank=rank, world_size=2))
    try:
        net.fit(x, y, batch_size=8, epochs=2, verbose=2, plugins=writers)
    finally:
        set_process_group(previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        ["backup", "ckpt", "log.csv", "tb"] if writes else []
    )
    assert ("Epoch 2/2" in capsys.readouterr().out) == writes


def test_data_parallel_is_installed_under_its_entry_point_name() -> None:
    x, y = train.data(16)
    net = train.model(3)
    net.fit(x, y, batch_size=8, epochs=1, verbose=0, plugins=["data_parallel"])
    assert net.state.global_step == 2


# --- the sharding rule --------------------------------------------------------------------


def _dataset(n: int, batch_size: int, shuffle: bool, weights: bool = False) -> Any:
    x = np.arange(n, dtype=np.float32)[:, None]
    w = np.ones(n, np.float32) if weights else None
    return make_dataset(
        x,
        np.arange(n),
        w,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=5,
        dtype=np.float32,
        steps=None,
        integer_targets=True,
        class_weight=None,
        call="fit()",
    )


def copied(batches: Any) -> list[tuple[Any, ...]]:
    """Return the batches as copies (a shard reuses its buffers between batches)."""
    return [tuple(None if a is None else np.array(a) for a in b) for b in batches]


@pytest.mark.parametrize(("n", "world"), [(49, 2), (51, 2), (50, 3), (7, 3), (2, 3)])
def test_every_sample_of_an_epoch_is_used_once_across_the_ranks(n: int, world: int) -> None:
    per_rank = [
        copied(shard(_dataset(n, 4, True), r, world).batches(1)) for r in range(world)
    ]
    used: list[float] = []
    steps = {len(batches) for batches in per_rank}
    assert steps == {-(-n // (4 * world))}  # every rank runs the same number of steps
    for step in range(steps.pop()):
        global_batch = []
        for batches in per_rank:
            x, _, w = batches[step]
            if w is not None and w.sum() == 0:  # padding: weight 0, counted nowhere
                assert len(x) == 1
                continue
            global_batch.extend(x[:, 0].tolist())
        sizes = [len(b[step][0]) for b in per_rank]
        assert max(sizes) - min(sizes) <= 1
        used.extend(global_batch)
    order = epoch_permutation(5, 1, n)
    assert used == order.astype(np.float32).tolist()  # one process's order, no repeats


def test_a_sequence_rank_fetches_only_its_own_batches() -> None:
    fetched: list[int] = []

    class Recording:
        def __len__(self) -> int:
            return 5

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            fetched.append(i)
            return np.full((2, 1), i, np.float32), np.zeros(2)

    data = make_dataset(
        Recording(),
        None,
        None,
        batch_size=None,
        shuffle=False,
        seed=0,
        dtype=np.float32,
        steps=None,
        integer_targets=False,
        class_weight=None,
        call="fit()",
    )
    part = shard(data, 1, 2)
    batches = list(part.batches(0))
    assert [float(x[0, 0]) for x, _, _ in batches[:2]] == [1.0, 3.0]
    assert batches[2][2] is not None and batches[2][2].tolist() == [0.0]  # padding
    assert fetched == [1, 3, 4]  # its batches, and the last step's first for padding
    assert part.epoch_samples == 4


def test_a_generator_rank_keeps_every_second_item_and_pads_a_short_last_group() -> None:
    items = [(np.full((3, 1), i, np.float32), np.zeros(3)) for i in range(5)]
    data = make_dataset(
        items,
        None,
        None,
        batch_size=None,
        shuffle=False,
        seed=0,
        dtype=np.float32,
        steps=None,
        integer_targets=False,
        class_weight=None,
        call="fit()",
    )
    kept = [
        (float(x[0, 0]), len(x), None if w is None else w.tolist())
        for x, _, w in shard(data, 1, 2).batches(0)
    ]
    assert kept == [(1.0, 3, None), (3.0, 3, None), (4.0, 1, [0.0])]


# --- errors ---------------------------------------------------------------------------


def test_shard_rejects_a_rank_outside_the_group() -> None:
    with pytest.raises(ConfigError, match=r"rank=2 with world_size=2; expected 0 <= rank"):
        shard(_dataset(4, 2, False), 2, 2)


def test_shard_rejects_data_it_cannot_cut() -> None:
    with pytest.raises(ConfigError, match=r"got data of type object; expected what"):
        shard(object(), 0, 2)


def test_data_parallel_rejects_a_timeout_that_is_not_positive() -> None:
    with pytest.raises(ConfigError, match=r"timeout=0\): expected a finite number"):
        DataParallel(timeout=0)
    with pytest.raises(TypeError, match=r"timeout='60'\) got a str; expected seconds"):
        DataParallel(timeout="60")  # type: ignore[arg-type]


def test_process_group_rejects_a_rank_beyond_the_world() -> None:
    with pytest.raises(
        ConfigError, match=r"ProcessGroup\(rank=2, world_size=2\): expected"
    ):
        ProcessGroup(rank=2, world_size=2)
    with pytest.raises(TypeError, match=r"got a str; expected a loopkit.distributed"):
        set_process_group("rank 0")  # type: ignore[arg-type]


def test_the_group_other_plugins_consult_is_the_one_set() -> None:
    previous = set_process_group(ProcessGroup(rank=1, world_size=4))
    try:
        assert (loopkit.distributed.rank(), loopkit.distributed.world_size()) == (1, 4)
        assert not loopkit.distributed.is_primary()
    finally:
        set_process_group(previous)
    assert loopkit.distributed.is_primary()


def test_a_missing_mpi4py_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)  # import fails
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ConfigError, match=r"pip install 'loopkit\[mpi\]'"):
        import_mpi()


class _NeverDone:
    """A stand-in for mpi4py.MPI whose requests never complete: a rank that hangs."""

    class Request:
        @staticmethod
        def Testall(requests: list[Any]) -> bool:
            return False

    class Comm:
        def Get_rank(self) -> int:
            return 0

        def Get_size(self) -> int:
            return 2


def test_a_collective_that_never_completes_raises_after_the_timeout() -> None:
    comm = Communicator(_NeverDone.Comm(), timeout=0.05, mpi=_NeverDone)
    started = time.monotonic()
    with pytest.raises(DistributedError, match=r"rank 0 of 2 waited 0.05 s in the test"):
        comm.wait([object()], "the test")
    assert time.monotonic() - started < 5
