from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest

import loopkit as lk
from loopkit.layers import Dense
from loopkit.plugins import BackupAndRestore, CSVLogger


def make_model() -> lk.Sequential:
    lk.set_random_seed(7)
    model = lk.Sequential([Dense(3, activation="relu", input_dim=2), Dense(1)])
    model.compile(optimizer=lk.optimizers.SGD(learning_rate=0.05), loss="mse")
    return model


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((16, 2)).astype(np.float32)
    y = (x[:, :1] * 3.0 - x[:, 1:]).astype(np.float32)
    return x, y


def run(
    logger: CSVLogger,
    epochs: list[dict[str, float]],
    keys: set[str] | None = None,
    first_epoch: int = 0,
) -> None:
    """Call the logger's hooks as fit would, with these epoch logs."""
    state = lk.LoopState(log_keys=frozenset(keys if keys is not None else epochs[0]))
    logger.on_train_begin()
    for i, logs in enumerate(epochs):
        logger.on_epoch_end(state=state, epoch=first_epoch + i, logs=logs)
    logger.on_train_end()


def test_csv_logger_writes_a_sorted_header_with_epoch_first_and_one_row_per_epoch(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.csv"
    run(
        CSVLogger(path),
        [
            {"val_loss": 0.25, "loss": 0.5, "learning_rate": 0.01},
            {"val_loss": 0.125, "loss": 0.375, "learning_rate": 0.001},
        ],
    )
    assert path.read_text() == (
        "epoch,learning_rate,loss,val_loss\n0,0.01,0.5,0.25\n1,0.001,0.375,0.125\n"
    )


def test_csv_logger_file_matches_the_history_of_a_real_fit(tmp_path: Path, data) -> None:
    x, y = data
    path = tmp_path / "log.csv"
    history = make_model().fit(
        x,
        y,
        epochs=3,
        batch_size=4,
        verbose=0,
        validation_split=0.25,
        plugins=[CSVLogger(str(path))],
    )
    h = history.history
    expected = ["epoch,learning_rate,loss,val_loss"] + [
        f"{e},{h['learning_rate'][e]!r},{h['loss'][e]!r},{h['val_loss'][e]!r}"
        for e in range(3)
    ]
    assert path.read_text() == "\n".join(expected) + "\n"


def test_csv_logger_writes_na_for_a_key_missing_on_an_epoch(tmp_path: Path, data) -> None:
    x, y = data
    path = tmp_path / "log.csv"
    model = make_model()
    history = model.fit(
        x,
        y,
        epochs=2,
        batch_size=4,
        verbose=0,
        validation_split=0.25,
        validation_freq=2,
        plugins=[CSVLogger(path)],
    )
    rows = list(csv.reader(path.read_text().splitlines()))
    assert rows[0] == ["epoch", "learning_rate", "loss", "val_loss"]  # from the run's keys
    assert rows[1][3] == "NA"
    assert rows[2][3] == repr(history.history["val_loss"][1])


def test_csv_logger_appends_without_repeating_the_header(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    run(CSVLogger(path, append=True), [{"loss": 0.5}, {"loss": 0.4}])
    run(CSVLogger(path, append=True), [{"loss": 0.3}], first_epoch=2)
    assert path.read_text() == "epoch,loss\n0,0.5\n1,0.4\n2,0.3\n"


def test_csv_logger_append_keeps_the_existing_columns(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("epoch,val_loss,loss\n0,0.9,0.8\n")
    with pytest.warns(
        lk.LoopkitWarning,
        match=r"key\(s\) \['learning_rate'\] that are not "
        r"columns",
    ):
        run(
            CSVLogger(path, append=True),
            [{"loss": 0.5, "learning_rate": 0.1}, {"loss": 0.4, "val_loss": 0.3}],
            first_epoch=1,
        )
    assert path.read_text() == "epoch,val_loss,loss\n0,0.9,0.8\n1,NA,0.5\n2,0.3,0.4\n"


def test_csv_logger_append_to_a_missing_or_empty_file_writes_the_header(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.csv"
    run(CSVLogger(path, append=True), [{"loss": 0.5}])
    empty = tmp_path / "empty.csv"
    empty.touch()
    run(CSVLogger(empty, append=True), [{"loss": 0.5}])
    assert path.read_text() == empty.read_text() == "epoch,loss\n0,0.5\n"


def test_csv_logger_overwrites_without_append(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("old contents\n")
    run(CSVLogger(path), [{"loss": 0.5}])
    assert path.read_text() == "epoch,loss\n0,0.5\n"


def test_csv_logger_uses_the_separator_and_quotes_when_needed(tmp_path: Path) -> None:
    path = tmp_path / "log.tsv"
    run(
        CSVLogger(path, separator="\t"),
        [{"loss": 0.5, "note": "a\tb", "vector": np.array([1, 2])}],
    )
    assert path.read_text() == 'epoch\tloss\tnote\tvector\n0\t0.5\t"a\tb"\t[1, 2]\n'


def test_csv_logger_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "a" / "log.csv"
    run(CSVLogger(path), [{"loss": 0.5}])
    assert path.read_text() == "epoch,loss\n0,0.5\n"


def test_csv_logger_warns_once_about_keys_that_appear_after_the_header(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.csv"
    with pytest.warns(lk.LoopkitWarning) as caught:
        run(
            CSVLogger(path),
            [{"loss": 0.5}, {"loss": 0.4, "extra": 1.0}, {"loss": 0.3, "extra": 2.0}],
        )
    assert len(caught) == 1 and "epoch 1 have key(s) ['extra']" in str(caught[0].message)
    assert path.read_text() == "epoch,loss\n0,0.5\n1,0.4\n2,0.3\n"


def test_csv_logger_flushes_every_epoch(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    state = lk.LoopState(log_keys=frozenset({"loss"}))
    logger.on_train_begin()
    logger.on_epoch_end(state=state, epoch=0, logs={"loss": 0.5})
    assert path.read_text() == "epoch,loss\n0,0.5\n"  # readable while still open
    logger.on_train_end()


def test_csv_logger_is_flushed_and_closed_when_fit_raises(tmp_path: Path, data) -> None:
    x, y = data
    path = tmp_path / "log.csv"

    class Boom:
        order = 300  # after CSVLogger, so epoch 1's row is written first

        @lk.hookimpl
        def on_epoch_end(self, epoch: int) -> None:
            if epoch == 1:
                raise RuntimeError("disk on fire")

    logger = CSVLogger(path)
    with pytest.raises(RuntimeError, match="disk on fire"):
        make_model().fit(x, y, epochs=5, batch_size=4, verbose=0, plugins=[logger, Boom()])
    rows = list(csv.reader(path.read_text().splitlines()))
    assert [r[0] for r in rows] == ["epoch", "0", "1"]
    assert logger._file is None  # closed: nothing is left buffered


def test_csv_logger_closes_on_exception_mid_epoch(tmp_path: Path, data) -> None:
    x, y = data
    path = tmp_path / "log.csv"
    closed: list[bool] = []

    class Boom:
        @lk.hookimpl
        def on_train_batch_end(self, batch: int, state: lk.LoopState) -> None:
            if state.epoch == 1 and batch == 2:
                raise KeyError("bad batch")

        @lk.hookimpl(trylast=True)
        def on_exception(self) -> None:  # runs after CSVLogger's on_exception
            closed.append(logger._file is None)

    logger = CSVLogger(path)
    with pytest.raises(KeyError, match="bad batch"):
        make_model().fit(x, y, epochs=3, batch_size=4, verbose=0, plugins=[logger, Boom()])
    assert closed == [True]
    assert [r[0] for r in csv.reader(path.read_text().splitlines())] == ["epoch", "0"]


def test_csv_logger_enabled_by_entry_point_writes_training_log_in_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data
) -> None:
    x, y = data
    monkeypatch.chdir(tmp_path)
    make_model().fit(x, y, epochs=2, batch_size=8, verbose=0, plugins=["csv_logger"])
    rows = list(csv.reader((tmp_path / "training.log").read_text().splitlines()))
    assert rows[0] == ["epoch", "learning_rate", "loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1"]


# --- resume -----------------------------------------------------------------------------


def test_csv_logger_resume_drops_rows_written_after_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    first = CSVLogger(path, append=True)
    state = lk.LoopState(log_keys=frozenset({"loss"}))
    first.on_train_begin()
    first.on_epoch_end(state=state, epoch=0, logs={"loss": 0.5})
    first.on_epoch_end(state=state, epoch=1, logs={"loss": 0.4})
    saved = first.state_dict()  # the backup, taken after epoch 1's row
    first.on_epoch_end(state=state, epoch=2, logs={"loss": 0.3})  # then a crash
    first.on_exception()
    kept = b"epoch,loss\n0,0.5\n1,0.4\n"
    assert saved == {
        "offset": len(kept),
        "sha256": hashlib.sha256(kept).hexdigest(),
        "keys": ["loss"],
    }

    resumed = CSVLogger(path, append=True)
    resumed.load_state_dict(saved)
    run(resumed, [{"loss": 0.31}, {"loss": 0.2}], first_epoch=2)
    assert path.read_text() == "epoch,loss\n0,0.5\n1,0.4\n2,0.31\n3,0.2\n"


def test_a_crafted_backup_cannot_truncate_the_users_csv_log(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss\n0,0.5\n1,0.4\n")  # the user's own log
    resumed = CSVLogger(path, append=True)
    resumed.load_state_dict({"offset": 0, "sha256": "0" * 64, "keys": None})
    with pytest.warns(lk.LoopkitWarning, match=r"appending instead of truncating"):
        run(resumed, [{"loss": 0.3}], first_epoch=2)
    assert path.read_text() == "epoch,loss\n0,0.5\n1,0.4\n2,0.3\n"


@pytest.mark.parametrize(
    "state",
    [{"offset": -5, "keys": None}, {"offset": "12", "keys": None}, {"keys": ["loss"]}],
)
def test_csv_logger_refuses_a_malformed_resume_state(tmp_path: Path, state) -> None:
    with pytest.raises(lk.ConfigError, match=r"expected offset \(an int >= 0\)"):
        CSVLogger(tmp_path / "log.csv").load_state_dict(state)


def test_csv_logger_resume_after_a_completed_backup_continues_the_file(
    tmp_path: Path, data
) -> None:
    x, y = data
    path = tmp_path / "log.csv"
    backup = str(tmp_path / "backup")
    make_model().fit(
        x,
        y,
        epochs=2,
        batch_size=4,
        verbose=0,
        plugins=[CSVLogger(path), BackupAndRestore(backup, delete_checkpoint=False)],
    )
    with path.open("a") as f:
        f.write("2,0.123,0.456\n")  # a row written after the last backup, before a crash
    make_model().fit(
        x,
        y,
        epochs=4,
        batch_size=4,
        verbose=0,
        plugins=[CSVLogger(path), BackupAndRestore(backup)],
    )
    rows = list(csv.reader(path.read_text().splitlines()))
    assert rows[0] == ["epoch", "learning_rate", "loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "3"]
    assert "0.456" not in path.read_text()


def test_csv_logger_resume_onto_a_missing_file_starts_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    logger.load_state_dict({"offset": 100, "keys": ["loss"]})
    with pytest.warns(lk.LoopkitWarning, match=r"missing or shorter .* \(100 bytes\)"):
        run(logger, [{"loss": 0.5}])
    assert path.read_text() == "epoch,loss\n0,0.5\n"


# --- arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"separator": ";;"}, lk.ConfigError, r"separator=';;'; expected one character"),
        ({"separator": '"'}, lk.ConfigError, r"separator='\"'; expected one character"),
        (
            {"separator": 44},
            TypeError,
            r"separator=44 of type int; expected a one-character",
        ),
        ({"append": "yes"}, TypeError, r"append='yes' of type str; expected True or False"),
    ],
)
def test_csv_logger_rejects_bad_arguments(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        CSVLogger("log.csv", **kwargs)


def test_csv_logger_defaults_follow_keras_docs() -> None:
    logger = CSVLogger()
    assert (logger.filename, logger.separator, logger.append) == (
        "training.log",
        ",",
        False,
    )
    assert logger.order == 200 and logger.name == "csv_logger"
