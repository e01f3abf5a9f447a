"""Console output plugins: a line per epoch (verbose=2) and the progress bar (verbose=1)."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

from loopkit import LoopState, Sequential
from loopkit.layers import Dense
from loopkit.plugins import progress
from loopkit.plugins.progress import EpochLines, ProgressBar


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=(12, 3)).astype(np.float32), rng.normal(size=(12, 2)).astype(
        np.float32
    )


@pytest.fixture
def model() -> Sequential:
    model = Sequential([Dense(2, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    return model


class Clock:
    """A perf_counter that returns the times it is given, in order."""

    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def perf_counter(self) -> float:
        return self.times.pop(0)


def state(epochs: int = 1, steps: int | None = 3, batch: int = 2) -> LoopState:
    return LoopState(epochs=epochs, steps_per_epoch=steps, batch=batch)


# --- EpochLines -----------------------------------------------------------------------


def test_epoch_lines_print_one_line_per_epoch_with_the_logs_in_keras_order(
    model: Sequential, data: tuple
) -> None:
    out = io.StringIO()
    x, y = data
    history = model.fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        verbose=0,
        validation_data=(x[:8], y[:8]),
        plugins=[EpochLines(stream=out)],
    )
    lines = out.getvalue().splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert len(lines) == 4  # validation inside fit prints no line of its own
    for epoch, line in ((0, lines[1]), (1, lines[3])):
        h = {k: v[epoch] for k, v in history.history.items()}
        expected = (
            f"loss: {h['loss']:.4f} - mae: {h['mae']:.4f} - val_loss: {h['val_loss']:.4f} "
            f"- val_mae: {h['val_mae']:.4f} - learning_rate: 0.0100"
        )
        assert re.fullmatch(r"3/3 - \d+s - \d+(us|ms)/step - " + re.escape(expected), line)


def test_epoch_lines_format_times_and_tiny_or_huge_values_as_keras(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(progress, "time", Clock(100.0, 100.0 + 3725.0))
    out = io.StringIO()
    lines = EpochLines(stream=out)
    lines.on_epoch_begin(state=state(epochs=5), epoch=3)
    logs = {"loss": 2.5e-5, "big": 123456.0, "zero": 0.0, "outputs": np.ones(2), "n": 3}
    lines.on_epoch_end(state=state(), logs=logs)
    # Keras 3's Progbar: seconds, s/ms/us per step, .4f above 1e-3 and .4e below
    assert out.getvalue().splitlines() == [
        "Epoch 4/5",
        "3/3 - 3725s - 1242s/step - loss: 2.5000e-05 - big: 123456.0000 - zero: "
        "0.0000e+00 - n: 3.0000",
    ]


def test_epoch_lines_print_microseconds_and_no_epoch_line_for_one_epoch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    lines = EpochLines(stream=out)
    monkeypatch.setattr(progress, "time", Clock(0.0, 75.0))
    lines.on_epoch_begin(state=state(), epoch=0)
    lines.on_epoch_end(state=state(steps=None, batch=749_999), logs={})
    monkeypatch.setattr(progress, "time", Clock(0.0, 0.0003))
    lines.on_epoch_begin(state=state(), epoch=0)
    lines.on_epoch_end(state=state(steps=12, batch=2), logs={})
    assert out.getvalue().splitlines() == [
        "750000/750000 - 75s - 100us/step",
        " 3/12 - 0s - 100us/step",  # the count right-aligned, as Keras
    ]


def test_evaluate_prints_one_line_with_its_logs(model: Sequential, data: tuple) -> None:
    out = io.StringIO()
    x, y = data
    result = model.evaluate(
        x, y, batch_size=5, verbose=0, return_dict=True, plugins=[EpochLines(out)]
    )
    line = out.getvalue()
    expected = f" - loss: {result['loss']:.4f} - mae: {result['mae']:.4f}\n"
    assert re.fullmatch(r"3/3 - \d+s - \d+(us|ms)/step" + re.escape(expected), line)


# --- ProgressBar ----------------------------------------------------------------------


def test_the_progress_bar_fills_as_batches_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "time", Clock(10.0, 11.0, 12.0, 13.0, 14.0))
    out = io.StringIO()
    bar = ProgressBar(stream=out, width=10, interval=0.0)
    bar.on_epoch_begin(state=state(epochs=2), epoch=0)
    for batch in range(3):
        bar.on_train_batch_end(state=state(), batch=batch, logs={"loss": 1.0 + batch})
    bar.on_epoch_end(state=state(), logs={"loss": 2.0, "val_loss": 3.0})
    assert out.getvalue().split("\r") == [
        "Epoch 1/2\n",
        "1/3 ━━━─────── 2s 1s/step - loss: 1.0000",
        "2/3 ━━━━━━──── 1s 1s/step - loss: 2.0000",
        "3/3 ━━━━━━━━━━ 0s 1s/step - loss: 3.0000",  # an ETA of 0s, as Keras
        "3/3 ━━━━━━━━━━ 4s 1s/step - loss: 2.0000 - val_loss: 3.0000\n",
    ]


def test_the_progress_bar_pads_a_redraw_shorter_than_the_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(progress, "time", Clock(0.0, 0.5, 0.6))
    out = io.StringIO()
    bar = ProgressBar(stream=out, width=4, interval=0.0)
    bar.on_epoch_begin(state=state(), epoch=0)
    bar.on_train_batch_end(state=state(), batch=0, logs={"accuracy": 12345.678})
    bar.on_train_batch_end(state=state(), batch=1, logs={"accuracy": 0.1002})
    first, second = out.getvalue().split("\r")[1:]
    assert first == "1/3 ━─── 1s 500ms/step - accuracy: 12345.6780"
    # the four characters the shorter value leaves are blanked, not left as "0.10025780"
    assert second == "2/3 ━━── 0s 300ms/step - accuracy: 0.1002    "


def test_the_progress_bar_is_colored_as_keras_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(progress, "time", Clock(0.0, 1.0))
    out = Terminal()
    bar = ProgressBar(stream=out, width=4, interval=0.0)
    bar.on_epoch_begin(state=state(), epoch=0)
    bar.on_train_batch_end(state=state(steps=2), batch=0, logs={})
    assert out.getvalue() == (
        "\r\x1b[1m1/2\x1b[0m \x1b[32m━━\x1b[0m\x1b[37m━━\x1b[0m 1s 1s/step"
    )


def test_the_progress_bar_redraws_at_most_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(progress, "time", Clock(100.0, 100.1, 100.2, 100.3, 100.4))
    out = io.StringIO()
    bar = ProgressBar(stream=out, width=4, interval=1.0)
    bar.on_epoch_begin(state=state(), epoch=0)
    for batch in range(3):
        bar.on_train_batch_end(state=state(), batch=batch, logs={})
    bar.on_epoch_end(state=state(), logs={})
    draws = out.getvalue().split("\r")[1:]
    # The first batch draws, the next ones are within the interval, the epoch's end
    # always draws.
    assert [d.split(" ")[0] for d in draws] == ["1/3", "3/3"]


def test_the_progress_bar_without_a_known_step_count_shows_the_count() -> None:
    out = io.StringIO()
    bar = ProgressBar(stream=out, interval=0.0)
    bar.on_epoch_begin(state=state(steps=None), epoch=0)
    bar.on_train_batch_end(state=state(steps=None), batch=4, logs={})
    assert out.getvalue().split("\r")[1].startswith("      5/Unknown ")


# --- verbose= in fit and evaluate -----------------------------------------------------


def test_fit_verbose_2_prints_epoch_lines_to_stdout(
    model: Sequential, data: tuple, capsys: pytest.CaptureFixture[str]
) -> None:
    model.fit(*data, batch_size=4, epochs=2, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert re.fullmatch(
        r"3/3 - \d+s - .*/step - loss: .* - learning_rate: 0.0100", lines[1]
    )


def test_fit_verbose_1_draws_the_bar_and_auto_picks_lines_off_a_terminal(
    model: Sequential, data: tuple, capsys: pytest.CaptureFixture[str]
) -> None:
    model.fit(*data, batch_size=4, epochs=1, verbose=1)
    assert "\r3/3 " + "━" * 20 + " " in capsys.readouterr().out
    model.fit(*data, batch_size=4, epochs=1)  # captured stdout is not a terminal
    out = capsys.readouterr().out
    assert "\r" not in out and out.startswith("3/3 - ")


def test_verbose_0_prints_nothing(
    model: Sequential, data: tuple, capsys: pytest.CaptureFixture[str]
) -> None:
    model.fit(*data, batch_size=4, epochs=1, verbose=0)
    model.evaluate(*data, verbose=0)
    model.predict(data[0], verbose=0)
    assert capsys.readouterr().out == ""


def test_the_installed_entry_points_name_both_plugins() -> None:
    from loopkit._dispatch.entry_points import load_plugin

    assert type(load_plugin("epoch_lines")) is EpochLines
    assert type(load_plugin("progress_bar")) is ProgressBar


def test_epoch_line_times_the_whole_epoch_including_validation(monkeypatch) -> None:
    import loopkit as lk
    from loopkit.layers import Dense
    from loopkit.plugins import EpochLines

    clock = {"now": 0.0}
    monkeypatch.setattr("loopkit.plugins.progress.time.perf_counter", lambda: clock["now"])

    class Clock:
        order = -100  # moves the clock before the progress plugin reads it

        @lk.hookimpl(tryfirst=True)
        def on_epoch_begin(self) -> None:
            clock["now"] = 100.0

        @lk.hookimpl(tryfirst=True)
        def on_test_begin(self) -> None:
            clock["now"] = 150.0

        @lk.hookimpl(tryfirst=True)
        def on_epoch_end(self) -> None:
            clock["now"] = 160.0

    stream = io.StringIO()
    model = lk.Sequential([Dense(1, input_dim=2)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((8, 2), np.float32)
    model.fit(
        x,
        x[:, :1],
        batch_size=4,
        validation_split=0.5,
        verbose=0,
        plugins=[Clock(), EpochLines(stream=stream)],
    )
    line = stream.getvalue().splitlines()[0]  # one epoch: no "Epoch 1/1" line
    assert line.startswith("1/1 - 60s - 60s/step"), line  # not the 10 s since validation


def test_predict_prints_its_batch_count_and_time_per_step(
    model: Sequential, data: tuple, capsys: pytest.CaptureFixture[str]
) -> None:
    model.predict(data[0], batch_size=5, verbose=2)  # 12 samples: 3 batches
    assert re.fullmatch(r"3/3 - \d+s - \d+(us|ms)/step\n", capsys.readouterr().out)


def test_evaluate_and_predict_with_verbose_1_show_keras_bar(
    model: Sequential, data: tuple, capsys: pytest.CaptureFixture[str]
) -> None:
    x, y = data
    result = model.evaluate(x, y, verbose=1, return_dict=True)
    logs = f" - loss: {result['loss']:.4f} - mae: {result['mae']:.4f}\n"
    last = capsys.readouterr().out.split("\r")[-1]
    assert re.fullmatch(r"1/1 ━{20} \d+s \d+(us|ms)/step" + re.escape(logs), last)
    model.predict(x, batch_size=5, verbose=1)
    last = capsys.readouterr().out.split("\r")[-1]
    # a final line shorter than an earlier redraw ("1ms" then "54us") is padded over it
    assert re.fullmatch(r"3/3 ━{20} \d+s \d+(us|ms)/step *\n", last)
