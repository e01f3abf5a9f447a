from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pytest

import loopkit as lk
from loopkit.layers import Dense
from loopkit.plugins import EarlyStopping


def make_model(seed: int = 3) -> lk.Sequential:
    lk.set_random_seed(seed)
    model = lk.Sequential([Dense(4, activation="relu", input_dim=3), Dense(1)])
    model.compile(optimizer=lk.optimizers.SGD(learning_rate=0.05), loss="mse")
    return model


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32))[:, None]
    return x, y


class Scripted:
    """Overwrites (or adds) ``key`` in the epoch logs, before the monitors run."""

    name = "scripted"
    order = 50

    def __init__(self, values: Sequence[float], key: str = "loss") -> None:
        self.values = list(values)
        self.key = key
        self.provided_log_keys = (key,)

    @lk.hookimpl
    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        logs[self.key] = self.values[epoch]


class Recorder:
    """Keeps ``model.get_weights()`` at the end of every epoch."""

    name = "recorder"
    order = 150

    def __init__(self) -> None:
        self.weights: list[list[np.ndarray]] = []

    @lk.hookimpl
    def on_epoch_end(self, model: lk.Sequential) -> None:
        self.weights.append(model.get_weights())


def drive(es: EarlyStopping, values: Sequence[float], key: str = "val_loss") -> int | None:
    """Call the hooks as fit would; return the epoch at which training stopped."""
    model = make_model()
    es.on_train_begin(model=model)
    stopped = None
    for epoch, value in enumerate(values):
        es.on_epoch_end(model=model, epoch=epoch, logs={key: value})
        if model.stop_training:
            stopped = epoch
            break
    es.on_train_end(model=model, state=model.state)
    return stopped


# --- when it stops ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "values", "stop"),
    [
        ({"patience": 0}, [1.0, 0.9, 0.95, 0.8], 2),
        ({"patience": 2}, [1.0, 0.9, 0.95, 0.92, 0.8], 3),
        ({"patience": 2}, [1.0, 0.9, 0.95, 0.85, 0.9, 0.9], 5),
        ({"patience": 1, "min_delta": 0.1}, [1.0, 0.95, 0.5], 1),
        ({"patience": 1, "min_delta": 0.1}, [1.0, 0.85, 0.8, 0.7], 2),
        ({"patience": 0, "start_from_epoch": 2}, [1.0, 2.0, 3.0, 3.5, 2.0], 3),
        ({"patience": 0}, [1.0, 2.0, 3.0, 3.5, 2.0], 1),
        ({"patience": 3}, [1.0, 1.0, 1.0, 1.0], 3),
    ],
)
def test_early_stopping_stops_at_the_epoch_patience_runs_out(kwargs, values, stop) -> None:
    es = EarlyStopping(**kwargs)
    assert drive(es, values) == stop
    assert es.stopped_epoch == stop


def test_early_stopping_never_stops_when_values_keep_improving() -> None:
    es = EarlyStopping(patience=0)
    assert drive(es, [5.0, 4.0, 3.0, 2.0]) is None
    assert es.stopped_epoch == 0
    assert es.best == 2.0
    assert es.best_epoch == 3


def test_early_stopping_auto_mode_maximizes_accuracy_like_names() -> None:
    values = [0.5, 0.6, 0.55, 0.7]
    assert drive(EarlyStopping(monitor="val_accuracy"), values, "val_accuracy") == 2
    assert drive(EarlyStopping(monitor="val_auc"), values, "val_auc") == 2
    assert (
        drive(EarlyStopping(monitor="val_accuracy", mode="min"), values, "val_accuracy")
        == 1
    )
    assert drive(EarlyStopping(monitor="mae", mode="max"), values, "mae") == 2


def test_early_stopping_baseline_stops_after_patience_when_never_beaten() -> None:
    # Improving towards the baseline without reaching it still stops (Keras never does).
    es = EarlyStopping(patience=2, baseline=0.5)
    assert drive(es, [0.9, 0.8, 0.7, 0.6]) == 1
    assert es.best == 0.8


def test_early_stopping_baseline_once_beaten_counts_patience_from_there() -> None:
    es = EarlyStopping(patience=2, baseline=0.5)
    assert drive(es, [0.9, 0.4, 0.45, 0.46, 0.3]) == 3
    assert es.best_epoch == 1


def test_early_stopping_never_stops_at_epoch_zero_as_in_keras() -> None:
    es = EarlyStopping(patience=0, baseline=0.5)
    assert drive(es, [0.9, 0.95]) == 1


def test_early_stopping_stops_a_real_fit_on_scripted_values(data) -> None:
    x, y = data
    es = EarlyStopping(monitor="loss", patience=2)
    model = make_model()
    history = model.fit(
        x,
        y,
        epochs=10,
        batch_size=8,
        verbose=0,
        plugins=[Scripted([1.0, 0.8, 0.9, 0.85, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]), es],
    )
    assert es.stopped_epoch == 3
    assert history.epoch == [0, 1, 2, 3]
    assert history.history["loss"] == [1.0, 0.8, 0.9, 0.85]


def test_early_stopping_monitors_a_key_added_by_an_earlier_plugin(data) -> None:
    x, y = data
    es = EarlyStopping(monitor="score", mode="max", patience=1)
    history = make_model().fit(
        x,
        y,
        epochs=6,
        batch_size=8,
        verbose=0,
        plugins=[Scripted([0.1, 0.3, 0.2, 0.25, 0.9, 1.0], "score"), es],
    )
    assert history.epoch == [0, 1, 2]


def test_early_stopping_enabled_by_entry_point_name_uses_keras_defaults(data) -> None:
    x, y = data
    history = make_model().fit(
        x,
        y,
        epochs=5,
        batch_size=8,
        verbose=0,
        validation_split=0.25,
        plugins=[Scripted([1.0, 0.5, 0.6, 0.4, 0.3], "val_loss"), "early_stopping"],
    )
    assert history.epoch == [0, 1, 2]  # monitor='val_loss', patience=0


# --- restoring the best weights ---------------------------------------------------------


def test_early_stopping_restores_the_best_epochs_weights_after_stopping(data) -> None:
    x, y = data
    recorder = Recorder()
    es = EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    model = make_model()
    model.fit(
        x,
        y,
        epochs=10,
        batch_size=8,
        verbose=0,
        plugins=[Scripted([1.0, 0.5, 0.7, 0.6, 0.1] + [0.0] * 5), es, recorder],
    )
    assert es.stopped_epoch == 3 and es.best_epoch == 1
    assert len(recorder.weights) == 4
    for restored, best in zip(model.get_weights(), recorder.weights[1], strict=True):
        np.testing.assert_array_equal(restored, best)
    assert not np.array_equal(recorder.weights[3][0], recorder.weights[1][0])


def test_early_stopping_restores_best_weights_also_when_patience_never_ran_out(
    data,
) -> None:
    x, y = data
    recorder = Recorder()
    es = EarlyStopping(monitor="loss", patience=10, restore_best_weights=True)
    model = make_model()
    model.fit(
        x,
        y,
        epochs=4,
        batch_size=8,
        verbose=0,
        plugins=[Scripted([0.5, 0.3, 0.4, 0.45]), es, recorder],
    )
    assert es.stopped_epoch == 0 and es.best_epoch == 1
    for restored, best in zip(model.get_weights(), recorder.weights[1], strict=True):
        np.testing.assert_array_equal(restored, best)
    np.testing.assert_array_equal(es.best_weights, model.flat_weights)


def test_early_stopping_without_restore_keeps_the_last_weights(data) -> None:
    x, y = data
    recorder = Recorder()
    es = EarlyStopping(monitor="loss", patience=10)
    model = make_model()
    model.fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        verbose=0,
        plugins=[Scripted([0.5, 0.6, 0.7]), es, recorder],
    )
    assert es.best_weights is None
    for last, recorded in zip(model.get_weights(), recorder.weights[2], strict=True):
        np.testing.assert_array_equal(last, recorded)


def test_early_stopping_restores_nothing_when_fit_fails(data) -> None:
    x, y = data

    class Boom:
        order = 300

        @lk.hookimpl
        def on_epoch_end(self, epoch: int) -> None:
            if epoch == 2:
                raise RuntimeError("boom")

    recorder = Recorder()
    model = make_model()
    es = EarlyStopping(monitor="loss", patience=10, restore_best_weights=True)
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(
            x,
            y,
            epochs=5,
            batch_size=8,
            verbose=0,
            plugins=[Scripted([0.1, 0.5, 0.6, 0.7, 0.8]), es, recorder, Boom()],
        )
    for last, recorded in zip(model.get_weights(), recorder.weights[2], strict=True):
        np.testing.assert_array_equal(last, recorded)


def test_early_stopping_verbose_prints_keras_messages(capsys) -> None:
    es = EarlyStopping(patience=1, verbose=1, restore_best_weights=True)
    assert drive(es, [1.0, 0.5, 0.7, 0.8]) == 2
    out = capsys.readouterr().out
    assert out == (
        "Epoch 3: early stopping\n"
        "Restoring model weights from the end of the best epoch: 2.\n"
    )


# --- missing keys -----------------------------------------------------------------------


def test_early_stopping_warns_once_when_the_monitor_is_missing_on_some_epochs(data) -> None:
    x, y = data
    es = EarlyStopping(monitor="val_loss", patience=5)
    with pytest.warns(lk.LoopkitWarning) as caught:
        history = make_model().fit(
            x,
            y,
            epochs=4,
            batch_size=8,
            verbose=0,
            validation_split=0.25,
            validation_freq=2,
            plugins=[es],
        )
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert (
        "epoch 0 have no 'val_loss'; available keys: ['learning_rate', 'loss']"
        in messages[0]
    )
    assert history.epoch == [0, 1, 2, 3]
    validated = history.history["val_loss"]
    assert np.isnan(validated[0]) and np.isnan(validated[2])
    assert es.best == min(validated[1], validated[3])


def test_early_stopping_does_not_count_epochs_without_the_monitor() -> None:
    es = EarlyStopping(patience=1)
    model = make_model()
    es.on_train_begin(model=model)
    with pytest.warns(lk.LoopkitWarning, match="epoch 1 have no 'val_loss'"):
        for epoch, logs in enumerate([{"val_loss": 1.0}, {"loss": 2.0}, {"loss": 2.0}]):
            es.on_epoch_end(model=model, epoch=epoch, logs=logs)
    assert es.wait == 0 and not model.stop_training


def test_early_stopping_fails_before_the_first_step_when_monitor_cannot_exist(data) -> None:
    x, y = data
    model = make_model()
    before = model.flat_weights.copy()
    with pytest.raises(
        lk.ConfigError,
        match=r"'early_stopping' needs the log key\(s\) \['val_acc'\].*"
        r"logs only \['learning_rate', 'loss'\]",
    ):
        model.fit(x, y, epochs=2, verbose=0, plugins=[EarlyStopping(monitor="val_acc")])
    assert model.optimizer.iterations == 0
    np.testing.assert_array_equal(model.flat_weights, before)


# --- resume and reuse -------------------------------------------------------------------


def test_early_stopping_resumes_from_its_state_dict_exactly() -> None:
    values = [1.0, 0.6, 0.7, 0.8, 0.9, 1.0]
    reference = EarlyStopping(patience=3, restore_best_weights=True)
    assert drive(reference, values) == 4

    model = make_model()
    first = EarlyStopping(patience=3, restore_best_weights=True)
    first.on_train_begin(model=model)
    for epoch in range(3):
        first.on_epoch_end(model=model, epoch=epoch, logs={"val_loss": values[epoch]})
    saved = first.state_dict()
    assert saved["wait"] == 1 and saved["best"] == 0.6 and saved["best_epoch"] == 1
    assert isinstance(saved["best_weights"], np.ndarray)

    resumed = EarlyStopping(patience=3, restore_best_weights=True)
    resumed.load_state_dict(saved)
    resumed.on_train_begin(model=model)  # must not reset what was restored
    stopped = None
    for epoch in range(3, len(values)):
        resumed.on_epoch_end(model=model, epoch=epoch, logs={"val_loss": values[epoch]})
        if model.stop_training:
            stopped = epoch
            break
    assert stopped == 4 and resumed.best_epoch == 1
    np.testing.assert_array_equal(resumed.best_weights, saved["best_weights"])


def test_early_stopping_state_dict_of_a_fresh_plugin_is_json_ready() -> None:
    assert EarlyStopping().state_dict() == {
        "wait": 0,
        "best": None,
        "best_epoch": 0,
        "stopped_epoch": 0,
        "best_weights": None,
    }


def test_early_stopping_refuses_restored_best_weights_of_another_model() -> None:
    es = EarlyStopping(restore_best_weights=True)
    es.load_state_dict(
        {
            "wait": 0,
            "best": 1.0,
            "best_epoch": 0,
            "stopped_epoch": 0,
            "best_weights": np.zeros(3, np.float32),
        }
    )
    model = make_model()
    with pytest.raises(lk.CheckpointError, match=r"shape \(3,\).*shape \(21,\)"):
        es.on_train_begin(model=model)


def test_early_stopping_reused_across_fits_starts_afresh(data) -> None:
    x, y = data
    es = EarlyStopping(monitor="loss", patience=0)
    model = make_model()
    model.fit(
        x, y, epochs=3, batch_size=8, verbose=0, plugins=[Scripted([0.1, 0.2, 0.3]), es]
    )
    assert es.stopped_epoch == 1
    # Keras would keep best=0.1 and stop at once; a new fit starts a new comparison.
    history = model.fit(
        x, y, epochs=3, batch_size=8, verbose=0, plugins=[Scripted([0.5, 0.4, 0.3]), es]
    )
    assert history.epoch == [0, 1, 2] and es.stopped_epoch == 0 and es.best == 0.3


# --- arguments --------------------------------------------------------------------------


def test_early_stopping_rejects_an_unknown_mode_and_suggests_one() -> None:
    with pytest.raises(lk.ConfigError, match=r"mode='mni'; .* Did you mean 'min'\?"):
        EarlyStopping(mode="mni")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"patience": -1}, lk.ConfigError, r"patience=-1; expected an int >= 0"),
        ({"patience": 1.5}, TypeError, r"patience=1.5 of type float; expected an int"),
        ({"start_from_epoch": -2}, lk.ConfigError, r"start_from_epoch=-2; expected an int"),
        ({"min_delta": -0.1}, lk.ConfigError, r"min_delta=-0.1; expected a number >= 0"),
        ({"baseline": float("nan")}, lk.ConfigError, r"baseline=nan; expected a finite"),
        ({"baseline": "0.5"}, TypeError, r"baseline='0.5' of type str; expected a number"),
        (
            {"monitor": 3},
            TypeError,
            r"monitor=3; expected the log key .* monitor='val_loss'",
        ),
        ({"restore_best_weights": 1}, TypeError, r"restore_best_weights=1 of type int"),
    ],
)
def test_early_stopping_rejects_bad_arguments(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        EarlyStopping(**kwargs)


def test_early_stopping_declares_its_monitor_as_required_and_runs_with_monitors() -> None:
    es = EarlyStopping(monitor="val_accuracy")
    assert es.required_log_keys == ("val_accuracy",)
    assert es.order == 100 and es.name == "early_stopping"


def test_early_stopping_takes_keras_positional_arguments() -> None:
    es = EarlyStopping("loss", 0.01, 3, 0, "min", 2.0, True, 1)
    assert (es.monitor, es.min_delta, es.patience, es.mode, es.baseline) == (
        "loss",
        0.01,
        3,
        "min",
        2.0,
    )
    assert es.restore_best_weights and es.start_from_epoch == 1


def test_early_stopping_warning_is_not_raised_when_every_epoch_has_the_key(data) -> None:
    x, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_model().fit(
            x,
            y,
            epochs=2,
            batch_size=8,
            verbose=0,
            validation_split=0.25,
            plugins=[EarlyStopping(patience=3)],
        )
