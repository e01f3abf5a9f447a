from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import loopkit as lk
from loopkit.layers import Dense, Dropout
from loopkit.plugins import BackupAndRestore, ModelCheckpoint


def make_model(seed: int = 3, dropout: float = 0.0) -> lk.Sequential:
    lk.set_random_seed(seed)
    layers = [Dense(8, activation="relu", input_dim=4)]
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(1))
    model = lk.Sequential(layers)
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0], np.float32))[:, None]
    return x, y


class Scripted:
    """Overwrites ``val_loss`` with scripted values (order < ModelCheckpoint's)."""

    name = "scripted"
    order = 50
    provided_log_keys = ("val_loss",)

    def __init__(self, values: list[float]) -> None:
        self.values = values
        self.weights: list[np.ndarray] = []

    @lk.hookimpl
    def on_epoch_end(
        self, model: lk.Sequential, epoch: int, logs: dict[str, float]
    ) -> None:
        logs["val_loss"] = self.values[epoch]
        self.weights.append(model.flat_weights.copy())


# --- ModelCheckpoint ---------------------------------------------------------------------


def test_model_checkpoint_fills_format_fields_from_epoch_and_logs(
    tmp_path: Path, data
) -> None:
    x, y = data
    model = make_model()
    pattern = str(tmp_path / "ckpt" / "epoch{epoch:02d}-{val_loss:.3f}.weights.npz")
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        plugins=[ModelCheckpoint(pattern, save_weights_only=True)],
    )
    expected = sorted(
        f"epoch{e + 1:02d}-{v:.3f}.weights.npz"
        for e, v in enumerate(history.history["val_loss"])
    )
    assert sorted(os.listdir(tmp_path / "ckpt")) == expected


def test_model_checkpoint_save_best_only_keeps_only_improvements(
    tmp_path: Path, data
) -> None:
    x, y = data
    model = make_model()
    scripted = Scripted([0.5, 0.7, 0.4, 0.4, 0.6])
    path = tmp_path / "best-{epoch}.weights.npz"
    checkpoint = ModelCheckpoint(str(path), save_best_only=True, save_weights_only=True)
    model.fit(x, y, epochs=5, batch_size=16, verbose=0, plugins=[scripted, checkpoint])
    assert sorted(os.listdir(tmp_path)) == ["best-1.weights.npz", "best-3.weights.npz"]
    restored = make_model()
    restored.load_weights(str(tmp_path / "best-3.weights.npz"))
    np.testing.assert_array_equal(restored.flat_weights, scripted.weights[2])


def test_model_checkpoint_full_model_loads_back_with_identical_predictions(
    tmp_path: Path, data
) -> None:
    x, y = data
    model = make_model()
    path = tmp_path / "model.npz"
    model.fit(
        x, y, epochs=2, batch_size=16, verbose=0, plugins=[ModelCheckpoint(str(path))]
    )
    loaded = lk.load_model(str(path))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.optimizer.iterations == model.optimizer.iterations


def test_model_checkpoint_saves_every_n_batches_with_batch_field(
    tmp_path: Path, data
) -> None:
    x, y = data
    model = make_model()
    pattern = str(tmp_path / "e{epoch}-b{batch}.weights.npz")
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        verbose=0,
        plugins=[ModelCheckpoint(pattern, save_weights_only=True, save_freq=3)],
    )
    # 4 batches per epoch; global steps 3 and 6 are epoch 1 batch 3, epoch 2 batch 2
    assert sorted(os.listdir(tmp_path)) == ["e1-b3.weights.npz", "e2-b2.weights.npz"]


def test_model_checkpoint_never_saves_nan_weights_over_a_good_checkpoint(
    tmp_path: Path, data
) -> None:
    x, y = data
    model = make_model()
    path = tmp_path / "last.weights.npz"
    checkpoint = ModelCheckpoint(str(path), save_weights_only=True)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, plugins=[checkpoint])
    good = model.flat_weights.copy()

    class Poison:
        order = 10

        @lk.hookimpl
        def on_epoch_end(self, model: lk.Sequential) -> None:
            model.flat_weights[0] = np.nan

    with pytest.warns(lk.LoopkitWarning, match="NaN or inf"):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0, plugins=[Poison(), checkpoint])
    fresh = make_model()
    fresh.load_weights(str(path))
    np.testing.assert_array_equal(fresh.flat_weights, good)


def test_model_checkpoint_rejects_a_file_name_of_the_wrong_kind() -> None:
    with pytest.raises(lk.ConfigError, match=r"'model.h5'.*weights only.*name.weights.npz"):
        ModelCheckpoint("model.h5", save_weights_only=True)
    with pytest.raises(lk.ConfigError, match=r"the whole model.*name.npz"):
        ModelCheckpoint("model.weights.npz")
    with pytest.raises(lk.ConfigError, match=r"the whole model.*name.keras"):
        ModelCheckpoint("model.weights.h5")
    with pytest.raises(lk.ConfigError, match=r"weights only"):
        ModelCheckpoint("model.keras", save_weights_only=True)


def test_model_checkpoint_takes_keras_file_names_and_writes_loadable_files(
    tmp_path: Path, data
) -> None:
    """Keras 3 code names its checkpoints ``*.keras`` and ``*.weights.h5``."""
    x, y = data
    model = make_model()
    whole = tmp_path / "ckpt" / "m_{epoch}.keras"
    weights = tmp_path / "w.weights.h5"
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        verbose=0,
        plugins=[
            ModelCheckpoint(str(whole)),
            ModelCheckpoint(str(weights), save_weights_only=True),
        ],
    )
    loaded = lk.load_model(str(tmp_path / "ckpt" / "m_2.keras"))
    np.testing.assert_array_equal(loaded.flat_weights, model.flat_weights)
    fresh = make_model()
    fresh.load_weights(str(weights))
    np.testing.assert_array_equal(fresh.flat_weights, model.flat_weights)
    with pytest.raises(
        lk.ConfigError, match=r"save_freq=0; expected 'epoch' or a positive int"
    ):
        ModelCheckpoint("m.npz", save_freq=0)


def test_model_checkpoint_fails_before_the_first_step_on_an_impossible_field(
    tmp_path: Path, data
) -> None:
    x, y = data
    model = make_model()
    before = model.flat_weights.copy()
    checkpoint = ModelCheckpoint(str(tmp_path / "{val_accuracy:.2f}.npz"))
    with pytest.raises(lk.ConfigError, match=r"needs the log key\(s\) \['val_accuracy'\]"):
        model.fit(x, y, epochs=1, verbose=0, plugins=[checkpoint])
    np.testing.assert_array_equal(model.flat_weights, before)
    assert os.listdir(tmp_path) == []


SLOW_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import loopkit as lk
    from loopkit.layers import Dense
    path = sys.argv[1]
    model = lk.Sequential([Dense(4000, input_dim=4000), Dense(2000)])  # ~24M weights
    model.flat_weights[:] = 1.0
    model.save_weights(path)
    print("first save done", flush=True)
    model.flat_weights[:] = 2.0
    while True:
        model.save_weights(path)
    """
)


def test_a_save_killed_mid_write_leaves_the_previous_checkpoint_loadable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.weights.npz"
    script = tmp_path / "writer.py"
    script.write_text(SLOW_WRITER)
    with subprocess.Popen(
        [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "first save done"
            deadline = time.monotonic() + 60
            while not list(
                tmp_path.glob(".big.weights.npz.*.tmp")
            ):  # second write under way
                assert time.monotonic() < deadline, "the writer never started a second save"
                time.sleep(0.001)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == -signal.SIGKILL
    model = lk.Sequential([Dense(4000, input_dim=4000), Dense(2000)])
    model.load_weights(str(path))
    assert np.all(model.flat_weights == 1.0)


# --- BackupAndRestore --------------------------------------------------------------------

TRAINING_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    import loopkit as lk
    from loopkit.layers import Dense, Dropout
    from loopkit.plugins import BackupAndRestore

    out, backup, kill_at, save_freq = sys.argv[1:5]
    kill_at = int(kill_at)
    lk.set_random_seed(7)
    data = np.random.default_rng(0)
    x = data.standard_normal((300, 10)).astype(np.float32)
    y = (x[:, :3].sum(1) > 0).astype(np.int64)
    model = lk.Sequential([Dense(16, activation="relu", input_dim=10), Dropout(0.3),
                           Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])

    class Killer:
        @lk.hookimpl
        def on_train_batch_end(self, state):
            if kill_at and state.global_step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    save = "epoch" if save_freq == "epoch" else int(save_freq)
    history = model.fit(x, y, epochs=5, batch_size=32, validation_split=0.2, verbose=0,
                        plugins=[BackupAndRestore(backup, save_freq=save), Killer()])
    np.save(out, model.flat_weights)
    print(history.epoch, len(history.history["val_loss"]))
    """
)


def run_training(tmp_path: Path, out: str, backup: str, kill_at: int, save_freq: str):
    script = tmp_path / "train.py"
    script.write_text(TRAINING_SCRIPT)
    return subprocess.run(
        [
            sys.executable,
            str(script),
            str(tmp_path / out),
            str(tmp_path / backup),
            str(kill_at),
            save_freq,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("kill_at", "save_freq"), [(23, "4"), (16, "epoch")])
def test_backup_and_restore_resumes_a_killed_run_to_bitwise_identical_weights(
    tmp_path: Path, kill_at: int, save_freq: str
) -> None:
    reference = run_training(tmp_path, "reference.npy", "backup-ref", 0, save_freq)
    assert reference.returncode == 0, reference.stderr
    killed = run_training(tmp_path, "resumed.npy", "backup", kill_at, save_freq)
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / "backup" / "backup.npz").exists()
    assert not (tmp_path / "resumed.npy").exists()
    resumed = run_training(tmp_path, "resumed.npy", "backup", 0, save_freq)
    assert resumed.returncode == 0, resumed.stderr
    # 8 batches per epoch: kill_at 23 is mid-epoch 2; 16 is the end of epoch 1
    assert resumed.stdout.strip() == "[0, 1, 2, 3, 4] 5"  # History kept earlier epochs
    np.testing.assert_array_equal(
        np.load(tmp_path / "resumed.npy"), np.load(tmp_path / "reference.npy")
    )
    assert not (tmp_path / "backup" / "backup.npz").exists()  # deleted on success


def test_backup_and_restore_keeps_the_backup_when_fit_fails(tmp_path: Path, data) -> None:
    x, y = data
    model = make_model()

    class Boom:
        @lk.hookimpl
        def on_epoch_end(self, epoch: int) -> None:
            if epoch == 1:
                raise RuntimeError("boom")

    backup = BackupAndRestore(str(tmp_path))
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(x, y, epochs=3, batch_size=16, verbose=0, plugins=[Boom(), backup])
    assert backup.path.exists()
    resumed = make_model()
    history = resumed.fit(
        x, y, epochs=3, batch_size=16, verbose=0, plugins=[BackupAndRestore(str(tmp_path))]
    )
    assert history.epoch == [0, 1, 2]  # epoch 0 restored from the backup, 1 and 2 run
    assert resumed.optimizer.iterations == 12


@pytest.mark.parametrize("name", ["model_checkpoint", "backup_and_restore"])
def test_checkpoint_plugins_are_enabled_by_entry_point_name(
    name: str, tmp_path: Path, data, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    x, y = data
    model = make_model()
    model.fit(
        x, y, epochs=1, batch_size=16, verbose=0, validation_split=0.25, plugins=[name]
    )
    if name == "model_checkpoint":
        assert lk.load_model("checkpoints/model.npz").count_params() == model.count_params()
    else:
        assert (tmp_path / "backup").is_dir()


def test_epoch_savers_add_no_batch_hook_so_batches_dispatch_nothing(tmp_path: Path) -> None:
    from loopkit._dispatch.dispatcher import HookDispatcher

    per_epoch = [ModelCheckpoint(str(tmp_path / "m.npz")), BackupAndRestore(str(tmp_path))]
    assert not HookDispatcher(per_epoch).active("on_train_batch_end")
    per_batch = [ModelCheckpoint(str(tmp_path / "m.npz"), save_freq=5)]
    assert HookDispatcher(per_batch).active("on_train_batch_end")
    assert HookDispatcher([BackupAndRestore(str(tmp_path), save_freq=5)]).active(
        "on_train_batch_end"
    )


# --- hardening: nothing lost when a run fails at its very end -----------------------------


def test_the_backup_survives_a_last_checkpoint_that_fails_in_the_closing_hooks(
    tmp_path: Path, data
) -> None:
    x, y = data
    target = tmp_path / "ck" / "m.npz"

    class Obstruct:  # after fit start, before the save: the save's rename must fail
        order = 50

        @lk.hookimpl
        def on_epoch_end(self) -> None:
            target.mkdir(parents=True)

    backup = BackupAndRestore(str(tmp_path / "bk"))
    with pytest.raises(
        lk.CheckpointError,
        match=r"ModelCheckpoint\(filepath='.*m.npz'\): saving '.*m.npz' failed: writing "
        r"'.*m.npz' failed: Is a directory",
    ):
        make_model().fit(
            x,
            y,
            epochs=1,
            batch_size=16,
            verbose=0,
            plugins=[Obstruct(), ModelCheckpoint(str(target)), backup],
        )
    assert backup.path.is_file()  # deleted at train end, then put back
    resumed = make_model()
    resumed.fit(
        x,
        y,
        epochs=1,
        batch_size=16,
        verbose=0,
        plugins=[BackupAndRestore(str(tmp_path / "bk"))],
    )
    assert resumed.optimizer.iterations == 4  # restored after epoch 0: nothing left to run


def test_the_backup_survives_any_plugin_failing_in_on_train_end(
    tmp_path: Path, data
) -> None:
    x, y = data

    class FailsLast:
        @lk.hookimpl
        def on_train_end(self) -> None:
            raise RuntimeError("flush failed")

    backup = BackupAndRestore(str(tmp_path))
    with pytest.raises(RuntimeError, match="flush failed"):
        make_model().fit(
            x, y, epochs=2, batch_size=16, verbose=0, plugins=[backup, FailsLast()]
        )
    assert backup.path.is_file()
    make_model().fit(x, y, epochs=2, batch_size=16, verbose=0, plugins=[backup])
    assert not backup.path.exists()  # a run that fully succeeds deletes it


# --- hardening: resumed counters continue exactly ----------------------------------------


class Counters:
    """Records what loggers number their points by, at each epoch end."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.seen: list[tuple[int, int, int]] = []
        self.fail_at = fail_at

    @lk.hookimpl
    def on_epoch_begin(self, epoch: int) -> None:
        if epoch == self.fail_at:
            raise RuntimeError("interrupted")

    @lk.hookimpl
    def on_epoch_end(self, state: lk.LoopState, epoch: int) -> None:
        self.seen.append((epoch, state.epochs_completed, state.global_step))


@pytest.mark.parametrize("save_freq", ["epoch", 3])
def test_a_resumed_run_continues_epochs_completed_and_steps_exactly(
    tmp_path: Path, data, save_freq
) -> None:
    x, y = data
    reference = Counters()
    make_model().fit(x, y, epochs=4, batch_size=16, verbose=0, plugins=[reference])
    first, second = Counters(fail_at=2), Counters()
    backup = str(tmp_path / "bk")
    with pytest.raises(RuntimeError, match="interrupted"):
        make_model().fit(
            x,
            y,
            epochs=4,
            batch_size=16,
            verbose=0,
            plugins=[first, BackupAndRestore(backup, save_freq=save_freq)],
        )
    make_model().fit(
        x,
        y,
        epochs=4,
        batch_size=16,
        verbose=0,
        plugins=[second, BackupAndRestore(backup, save_freq=save_freq)],
    )
    assert first.seen + second.seen == reference.seen  # no step logged twice


def test_a_crafted_backup_position_fails_the_restore_and_changes_nothing(
    tmp_path: Path, data
) -> None:
    x, y = data
    backup = BackupAndRestore(str(tmp_path), delete_checkpoint=False)
    make_model().fit(x, y, epochs=1, batch_size=16, verbose=0, plugins=[backup])
    with np.load(backup.path) as stored:
        arrays = {k: stored[k] for k in stored.files}
    meta = json.loads(arrays.pop("__manifest__").tobytes())
    meta["extra"]["backup_and_restore"]["epoch"] = "abc"
    with backup.path.open("wb") as handle:
        np.savez(
            handle,
            **arrays,
            __manifest__=np.frombuffer(json.dumps(meta).encode(), np.uint8),
        )
    model = make_model()
    before = model.flat_weights.copy()
    with pytest.raises(
        lk.CheckpointError, match=r"holds position epoch='abc'; expected an int >= 0"
    ):
        model.fit(
            x,
            y,
            epochs=2,
            batch_size=16,
            verbose=0,
            plugins=[BackupAndRestore(str(tmp_path))],
        )
    np.testing.assert_array_equal(model.flat_weights, before)
    assert model.optimizer.iterations == 0 and model.state.global_step == 0


# --- hardening: write failures name the plugin and the path ------------------------------

FULL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    import numpy as np
    import loopkit as lk
    from loopkit.layers import Dense
    from loopkit.plugins import ModelCheckpoint

    path = sys.argv[1]
    x = np.ones((8, 4), np.float32)
    model = lk.Sequential([Dense(64, input_dim=4), Dense(1)])
    model.compile("sgd", "mse")
    model.fit(x, x[:, :1], epochs=1, verbose=0, plugins=[ModelCheckpoint(path)])
    first = model.get_weights()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit: EFBIG
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    for background in (True, False):
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, hard))
        try:
            model.fit(x, x[:, :1], epochs=1, verbose=0,
                      plugins=[ModelCheckpoint(path, background=background)])
        except lk.CheckpointError as err:
            print(err)
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        kept = lk.load_model(path).get_weights()
        print(all(np.array_equal(a, b) for a, b in zip(first, kept)))
    """
)


def test_a_file_too_large_names_the_plugin_and_path_and_keeps_the_last_checkpoint(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.npz"
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 4  # background, then foreground: the message, then "intact"
    for message, intact in (lines[:2], lines[2:]):
        assert re.fullmatch(
            rf"ModelCheckpoint\(filepath='{re.escape(str(path))}'\): saving "
            rf"'{re.escape(str(path))}' failed: writing '{re.escape(str(path))}' failed: "
            r"the file would exceed the size limit .*errno 27\). The previous file "
            r"there, if any, is intact\. .*",
            message,
        ), message
        assert intact == "True"
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left


def test_save_freq_counts_the_batches_of_this_fit_not_of_earlier_fits(
    tmp_path: Path, data
) -> None:
    x, y = data
    model = make_model()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # 4 earlier steps
    pattern = str(tmp_path / "e{epoch}-b{batch}.weights.npz")
    model.fit(
        x,
        y,
        epochs=1,
        batch_size=16,
        verbose=0,
        plugins=[ModelCheckpoint(pattern, save_weights_only=True, save_freq=3)],
    )
    # Keras counts this fit's batches: the third of four, not global step 6 (the second)
    assert os.listdir(tmp_path) == ["e1-b3.weights.npz"]


def test_save_freq_with_steps_per_execution_counts_every_batch(
    tmp_path: Path, data
) -> None:
    x, y = data
    model = make_model()
    model.compile(optimizer="adam", loss="mse", steps_per_execution=2)
    pattern = str(tmp_path / "e{epoch}-b{batch}.weights.npz")
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        plugins=[ModelCheckpoint(pattern, save_weights_only=True, save_freq=3)],
    )
    # hooks see batches 1, 3, 5, 7 of each epoch: counts 2, 4 (save), 2, 4 (save), ...
    assert sorted(os.listdir(tmp_path)) == [
        "e1-b4.weights.npz",
        "e1-b8.weights.npz",
        "e2-b4.weights.npz",
        "e2-b8.weights.npz",
    ]


class RecordedBackups(BackupAndRestore):
    """Records the (epoch, batch) position of every backup."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.positions: list[tuple[int, int]] = []

    def _backup(self, model: lk.Sequential, epoch: int, batch: int) -> None:
        self.positions.append((epoch, batch))
        super()._backup(model, epoch, batch)


def test_backup_save_freq_counts_the_batches_of_this_fit(tmp_path: Path, data) -> None:
    x, y = data
    model = make_model()
    model.fit(x[:16], y[:16], batch_size=16, epochs=1, verbose=0)  # 1 earlier step
    backups = RecordedBackups(str(tmp_path / "b"), save_freq=2)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, plugins=[backups])
    # after batches 2 (mid-epoch) and at the epoch's end; not after global steps 2, 4
    assert backups.positions == [(0, 2), (1, 0)]
