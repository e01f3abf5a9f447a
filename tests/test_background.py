from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import loopkit as lk
from loopkit.layers import Dense
from loopkit.plugins import ModelCheckpoint


def test_background_writer_runs_writes_in_order_and_raises_their_errors() -> None:
    writer = lk.BackgroundWriter()
    order: list[int] = []
    gate = threading.Event()
    writer.submit(lambda: (gate.wait(5), order.append(1)))
    assert writer.busy
    gate.set()
    writer.submit(lambda: order.append(2))  # waits for the first
    writer.wait()
    assert order == [1, 2] and not writer.busy

    def fail() -> None:
        raise OSError("disk full")

    writer.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        writer.wait()
    writer.wait()  # the error is raised once


def test_writers_share_one_worker_thread_and_each_waits_for_its_own_writes() -> None:
    first, second = lk.BackgroundWriter(), lk.BackgroundWriter()
    gate = threading.Event()
    done: list[str] = []
    first.submit(lambda: (gate.wait(5), done.append("first")))
    second.submit(lambda: done.append("second"))
    assert first.busy and second.busy  # second's write is queued behind first's
    gate.set()
    second.wait()
    assert done == ["first", "second"] and not first.busy
    threads = threading.active_count()
    for _ in range(5):
        first.submit(lambda: None)
    first.wait()
    assert threading.active_count() == threads  # no new thread per write


def test_a_snapshot_keeps_the_weights_of_the_moment_it_was_taken(tmp_path: Path) -> None:
    model = lk.Sequential([Dense(3, input_dim=2)])
    model.compile(optimizer="adam", loss="mse")
    before = model.flat_weights.copy()
    snapshot = lk.snapshot_model(model)
    model.flat_weights[:] = 5.0  # training goes on while the snapshot is written
    snapshot.write(tmp_path / "m.npz")
    np.testing.assert_array_equal(lk.load_model(tmp_path / "m.npz").flat_weights, before)


@pytest.mark.parametrize("weights_only", [False, True])
def test_background_checkpoints_equal_foreground_ones_when_fit_returns(
    tmp_path: Path, weights_only: bool
) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 2)).astype(np.float32)
    y = x @ np.ones((2, 1), np.float32)
    suffix = ".weights.npz" if weights_only else ".npz"
    recorded: list[np.ndarray] = []

    class Recorder:
        order = 10

        @lk.hookimpl
        def on_epoch_end(self, model: lk.Sequential) -> None:
            recorded.append(model.flat_weights.copy())

    paths = {}
    for background in (True, False):
        lk.set_random_seed(1)
        model = lk.Sequential([Dense(3, activation="relu", input_dim=2), Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        pattern = str(tmp_path / f"{background}-{{epoch}}{suffix}")
        checkpoint = ModelCheckpoint(
            pattern, save_weights_only=weights_only, background=background
        )
        recorded.clear()
        model.fit(x, y, batch_size=8, epochs=3, verbose=0, plugins=[Recorder(), checkpoint])
        paths[background] = [Path(pattern.format(epoch=e)) for e in (1, 2, 3)]
        assert all(p.exists() for p in paths[background])  # fit waited for the writes
    for epoch, (fast, slow) in enumerate(zip(paths[True], paths[False], strict=True)):
        a, b = lk.Sequential([Dense(3, activation="relu", input_dim=2), Dense(1)]), None
        if weights_only:
            a.load_weights(fast)
            b = lk.Sequential([Dense(3, activation="relu", input_dim=2), Dense(1)])
            b.load_weights(slow)
        else:
            a, b = lk.load_model(fast), lk.load_model(slow)
        np.testing.assert_array_equal(a.flat_weights, b.flat_weights)
        np.testing.assert_array_equal(a.flat_weights, recorded[epoch])
