"""Bad training data is refused before the first step, naming what and where."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loopkit as lk
from loopkit import ConfigError, Sequential, ShapeError
from loopkit.layers import Dense
from loopkit.plugins import BackupAndRestore, CSVLogger, ModelCheckpoint


def _model(loss: str = "sparse_categorical_crossentropy", units: int = 3) -> Sequential:
    lk.set_random_seed(0)
    activation = "sigmoid" if loss == "binary_crossentropy" else "softmax"
    model = Sequential([Dense(8, activation="relu", input_dim=4), Dense(units, activation)])
    model.compile("adam", loss)
    return model


def _xy(n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 4)).astype(np.float32), np.arange(n) % 3


def _untouched(model: Sequential, run: Any, error: type[Exception], match: str) -> None:
    """Run ``run`` expecting ``error``; check no optimizer step moved the weights."""
    before = model.flat_weights.copy()
    with pytest.raises(error, match=match):
        run()
    assert model.optimizer.iterations == 0
    np.testing.assert_array_equal(model.flat_weights, before)


# --- values (issue item 5) ----------------------------------------------------------------


def test_complex_inputs_or_targets_are_refused_not_cut_to_their_real_part() -> None:
    x, _ = _xy()
    model = _model("mse")
    match = r"fit\(\) got x of dtype complex64: complex numbers, whose imaginary part"
    _untouched(model, lambda: model.fit(x + 1j * x, x, verbose=0), TypeError, match)
    match = r"fit\(\) got y of dtype complex64"
    _untouched(model, lambda: model.fit(x, x + 0j, verbose=0), TypeError, match)


def test_a_fractional_label_for_a_sparse_loss_is_refused_with_its_index() -> None:
    x, y = _xy()
    labels = y.astype(np.float32)
    labels[17] = 1.5  # Keras truncates it to 1
    model = _model()
    match = (
        r"fit\(\) got y holding the label 1.5 \(first at sample 17\), which is not a "
        r"whole number; 'sparse_categorical_crossentropy' takes integer class ids"
    )
    _untouched(model, lambda: model.fit(x, labels, verbose=0), ConfigError, match)


def test_an_out_of_range_label_far_into_the_data_is_refused_before_any_step() -> None:
    x, y = _xy()
    y[29] = 3  # the model has 3 classes; check_targets looked only at y[:1]
    model = _model()
    match = r"got y holding the label 3 \(first at sample 29\), outside \[0, 3\)"
    _untouched(
        model,
        lambda: model.fit(x, y, batch_size=4, shuffle=True, verbose=0),
        ConfigError,
        match,
    )


@pytest.mark.parametrize(("label", "index"), [(2.0, 5), (-1.0, 30)])
def test_binary_crossentropy_refuses_targets_outside_zero_one(label, index) -> None:
    x, _ = _xy()
    y = (x[:, :1] > 0).astype(np.float32)
    y[index] = label
    model = _model("binary_crossentropy", units=1)
    match = rf"got y holding {label} \(first at sample {index}, position \(0,\)\); binary"
    _untouched(model, lambda: model.fit(x, y, verbose=0), ConfigError, match)


@pytest.mark.parametrize(
    ("where", "value", "match"),
    [
        ("x", np.nan, r"got x holding nan \(first at sample 6, position \(2,\)\)"),
        ("x", np.inf, r"got x holding inf \(first at sample 6, position \(2,\)\)"),
        ("y", -np.inf, r"got y holding -inf \(first at sample 6, position \(2,\)\)"),
        ("w", np.nan, r"got sample_weight holding nan \(first at sample 6\)"),
    ],
)
def test_nan_or_inf_in_the_data_is_refused_with_the_first_index(
    where, value, match
) -> None:
    x, _ = _xy()
    y = x.copy()
    w = np.ones(len(x), np.float32)
    if where == "w":
        w[6] = value
    else:
        (x if where == "x" else y)[6, 2] = value
    model = _model("mse", units=4)
    _untouched(
        model, lambda: model.fit(x, y, sample_weight=w, verbose=0), ConfigError, match
    )


def test_validation_data_is_checked_too() -> None:
    x, y = _xy()
    bad = x.copy()
    bad[3, 0] = np.nan
    model = _model()
    match = r"fit\(validation_data=...\) got x holding nan \(first at sample 3"
    _untouched(
        model,
        lambda: model.fit(x, y, validation_data=(bad, y), verbose=0),
        ConfigError,
        match,
    )


def test_clean_integral_float_labels_and_ignore_class_still_train() -> None:
    x, y = _xy()
    model = Sequential([Dense(3, "softmax", input_dim=4)])
    model.compile("sgd", lk.losses.SparseCategoricalCrossentropy(ignore_class=-1))
    labels = y.astype(np.float32)
    labels[4] = -1
    model.fit(x, labels, epochs=1, batch_size=8, verbose=0)
    assert model.optimizer.iterations == 4


# --- generators: each batch checked as it arrives (item 6) --------------------------------


def _batches(bad_at: int, bad: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    for i in range(5):
        width = 5 if (bad == "width" and i == bad_at) else 4
        x = rng.standard_normal((4, width)).astype(np.float32)
        if bad == "nan" and i == bad_at:
            x[1, 3] = np.nan
        y = np.arange(4) % 3
        if bad == "label" and i == bad_at:
            y[2] = 7
        yield x, y


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (
            "width",
            ShapeError,
            r"fit\(\): batch 2 from the data has x of shape \(4, 5\).*the first batch had "
            r"samples of shape \(4,\)",
        ),
        (
            "nan",
            ConfigError,
            r"batch 2 from the data got x holding nan \(first at sample 1",
        ),
        ("label", ConfigError, r"batch 2 from the data got y holding the label 7 \(first"),
    ],
)
def test_a_bad_generator_batch_is_refused_before_it_touches_the_weights(
    bad, error, match
) -> None:
    model = _model()
    taken: list[np.ndarray] = []

    class Watch:
        @lk.hookimpl
        def on_train_batch_end(self, model: Sequential) -> None:
            taken.append(model.flat_weights.copy())

    with pytest.raises(error, match=match):
        model.fit(_batches(2, bad), epochs=1, verbose=0, plugins=[Watch()])
    assert model.optimizer.iterations == 2  # batches 0 and 1 only
    np.testing.assert_array_equal(model.flat_weights, taken[-1])


def test_a_huge_batch_size_trains_on_one_batch_without_a_huge_buffer() -> None:
    x, y = _xy()
    huge, whole = _model(), _model()
    huge.fit(x, y, batch_size=10**12, shuffle=True, epochs=2, verbose=0)
    whole.fit(x, y, batch_size=len(x), shuffle=True, epochs=2, verbose=0)
    assert huge.optimizer.iterations == 2
    np.testing.assert_array_equal(huge.flat_weights, whole.flat_weights)


# --- destinations checked at fit start (item 6) -------------------------------------------


@pytest.mark.parametrize(
    ("plugin", "match"),
    [
        (
            lambda d: ModelCheckpoint(str(d / "file" / "m.npz")),
            r"ModelCheckpoint\(filepath='.*file/m.npz'\): cannot write .*'.*file' is a "
            r"file, not a directory",
        ),
        (
            lambda d: ModelCheckpoint(str(d / "file" / "e{epoch}.npz")),
            r"'.*file' is a file, not a directory",
        ),
        (
            lambda d: ModelCheckpoint(str(d / "dir.npz")),
            r"'.*dir.npz' is a directory, but it must be a file",
        ),
        (
            lambda d: BackupAndRestore(str(d / "file" / "bk")),
            r"BackupAndRestore\(backup_dir='.*file/bk'\): cannot write",
        ),
        (
            lambda d: BackupAndRestore(str(d / "file")),
            r"'.*file' is a file, but it must be a directory",
        ),
        (
            lambda d: CSVLogger(d / "file" / "log.csv"),
            r"CSVLogger\(filename=.*cannot write",
        ),
    ],
)
def test_an_unwritable_destination_fails_at_fit_start(
    tmp_path: Path, plugin, match
) -> None:
    (tmp_path / "file").write_text("a regular file")
    (tmp_path / "dir.npz").mkdir()
    x, y = _xy()
    model = _model()
    _untouched(
        model,
        lambda: model.fit(x, y, epochs=1, verbose=0, plugins=[plugin(tmp_path)]),
        ConfigError,
        match,
    )


# --- one Ctrl-C stops a run blocked in its generator (item 7) ----------------------------

_BLOCKED = textwrap.dedent(
    """
    import sys, threading
    import numpy as np
    import loopkit as lk
    from loopkit.layers import Dense

    def batches():
        rng = np.random.default_rng(0)
        for _ in range(3):
            x = rng.standard_normal((4, 4)).astype(np.float32)
            yield x, np.zeros((4, 1), np.float32)
        print("blocked", flush=True)
        threading.Event().wait()  # a data source that never answers

    class Closing:
        @lk.hookimpl
        def on_train_end(self):
            print("closing hooks ran", flush=True)

    model = lk.Sequential([Dense(1, input_dim=4)])
    model.compile("sgd", "mse")
    model.fit(batches(), steps_per_epoch=10, epochs=1, verbose=0, plugins=[Closing()])
    """
)


def test_one_ctrl_c_stops_fit_while_the_generator_blocks() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _BLOCKED],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "blocked\n"
        time.sleep(0.2)  # let the loop reach its wait for the next batch
        os.kill(proc.pid, signal.SIGINT)  # once
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "closing hooks ran" in out
    assert "KeyboardInterrupt" in err
    assert proc.returncode != 0


# --- model.history after a fit run inside a plugin (item 10) ------------------------------


def test_model_history_names_the_outer_fit_after_a_fit_inside_a_plugin() -> None:
    x, y = _xy()
    model, inner = _model(), _model()

    class FitsAnother:
        @lk.hookimpl
        def on_epoch_end(self, epoch: int) -> None:
            if epoch == 0:
                model.fit(x, y, epochs=1, verbose=0)  # the same model, nested

    outer = model.fit(x, y, epochs=2, verbose=0, plugins=[FitsAnother()])
    assert model.history is outer
    assert outer.epoch == [0, 1]
    inner.fit(x, y, epochs=1, verbose=0)
    assert inner.history is not outer
