from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

import loopkit as lk
from loopkit.layers import Dense
from loopkit.plugins import LearningRateScheduler, ReduceLROnPlateau
from loopkit.schedules import ExponentialDecay


def make_model(learning_rate: object = 0.01) -> lk.Sequential:
    lk.set_random_seed(5)
    model = lk.Sequential([Dense(3, activation="tanh", input_dim=2), Dense(1)])
    model.compile(optimizer=lk.optimizers.SGD(learning_rate=learning_rate), loss="mse")
    return model


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((16, 2)).astype(np.float32)
    y = (x[:, :1] - 0.5 * x[:, 1:]).astype(np.float32)
    return x, y


class Scripted:
    """Overwrites ``key`` in the epoch logs with scripted values, before the monitors."""

    name = "scripted"
    order = 50

    def __init__(self, values: Sequence[float], key: str = "val_loss") -> None:
        self.values = list(values)
        self.key = key
        self.provided_log_keys = (key,)

    @lk.hookimpl
    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        logs[self.key] = self.values[epoch]


def rates_after(
    plugin: ReduceLROnPlateau,
    values: Sequence[float],
    lr: float = 1.0,
    key: str = "val_loss",
) -> list[float]:
    """Drive the hooks; return the effective learning rate after each epoch."""
    model = make_model(lr)
    plugin.on_train_begin(model=model)
    rates = []
    for epoch, value in enumerate(values):
        plugin.on_epoch_end(model=model, epoch=epoch, logs={key: value})
        rates.append(model.optimizer.current_learning_rate)
    return rates


# --- step schedules need no plugin ------------------------------------------------------


def test_a_per_step_schedule_is_logged_as_learning_rate_at_each_epoch_end(data) -> None:
    x, y = data
    schedule = ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    model = make_model(schedule)
    history = model.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0)
    # 4 steps per epoch: after epoch e the optimizer is at step 4 (e + 1).
    expected = [0.1 * 0.5 ** (4 * (e + 1) / 2) for e in range(3)]
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-12)


# --- LearningRateScheduler --------------------------------------------------------------


def test_learning_rate_scheduler_sets_the_rate_of_every_epoch(data) -> None:
    x, y = data
    model = make_model(0.01)
    history = model.fit(
        x,
        y,
        epochs=4,
        batch_size=4,
        verbose=0,
        plugins=[LearningRateScheduler(lambda epoch, lr: 0.2 * 0.5**epoch)],
    )
    assert history.history["learning_rate"] == [0.2, 0.1, 0.05, 0.025]
    assert model.optimizer.learning_rate == 0.025


def test_learning_rate_scheduler_passes_the_current_rate(data) -> None:
    x, y = data
    seen: list[tuple[int, float]] = []

    def schedule(epoch: int, lr: float) -> float:
        seen.append((epoch, lr))
        return lr * 0.5

    history = make_model(0.08).fit(
        x, y, epochs=3, batch_size=4, verbose=0, plugins=[LearningRateScheduler(schedule)]
    )
    assert seen == [(0, 0.08), (1, 0.04), (2, 0.02)]
    assert history.history["learning_rate"] == [0.04, 0.02, 0.01]


def test_learning_rate_scheduler_accepts_a_one_argument_schedule(data) -> None:
    x, y = data
    history = make_model().fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        plugins=[LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))],
    )
    assert history.history["learning_rate"] == [0.1, 0.05]


def test_learning_rate_scheduler_training_uses_the_rate_it_sets(data) -> None:
    x, y = data
    scheduled = make_model(0.5)
    scheduled.fit(
        x,
        y,
        epochs=1,
        batch_size=16,
        shuffle=False,
        verbose=0,
        plugins=[LearningRateScheduler(lambda epoch, lr: 0.03)],
    )
    plain = make_model(0.03)
    plain.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_array_equal(scheduled.flat_weights, plain.flat_weights)


def test_learning_rate_scheduler_verbose_prints_the_rate(capsys, data) -> None:
    x, y = data
    make_model().fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        plugins=[LearningRateScheduler(lambda epoch, lr: 0.25, verbose=1)],
    )
    assert capsys.readouterr().out == (
        "\nEpoch 1: LearningRateScheduler setting learning rate to 0.25.\n"
        "\nEpoch 2: LearningRateScheduler setting learning rate to 0.25.\n"
    )


@pytest.mark.parametrize(
    ("returned", "error", "match"),
    [
        (
            "0.1",
            TypeError,
            r"schedule\(0, 0.01\) returned '0.1' of type str; expected a float",
        ),
        (None, TypeError, r"schedule\(0, 0.01\) returned None of type NoneType"),
        (
            float("nan"),
            lk.ConfigError,
            r"schedule\(0, 0.01\) returned nan; expected a finite",
        ),
        (0.0, lk.ConfigError, r"returned 0.0; expected a finite learning rate > 0"),
        (-1, lk.ConfigError, r"returned -1.0; expected a finite learning rate > 0"),
    ],
)
def test_learning_rate_scheduler_rejects_a_bad_rate_naming_epoch_and_value(
    data, returned, error, match
) -> None:
    x, y = data
    model = make_model()
    with pytest.raises(error, match=match):
        model.fit(
            x,
            y,
            epochs=2,
            verbose=0,
            plugins=[LearningRateScheduler(lambda epoch, lr: returned)],
        )
    assert model.optimizer.learning_rate == 0.01


def test_learning_rate_scheduler_accepts_numpy_numbers(data) -> None:
    x, y = data
    history = make_model().fit(
        x,
        y,
        epochs=1,
        verbose=0,
        plugins=[LearningRateScheduler(lambda e, lr: np.float32(0.5))],
    )
    assert history.history["learning_rate"] == [0.5]


def test_learning_rate_scheduler_refuses_an_optimizer_with_a_schedule(data) -> None:
    x, y = data
    model = make_model(ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9))
    with pytest.raises(
        lk.ConfigError, match=r"learning_rate is the schedule .*Use one of them"
    ):
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            plugins=[LearningRateScheduler(lambda epoch, lr: 0.1)],
        )
    assert model.optimizer.iterations == 0


@pytest.mark.parametrize(
    ("schedule", "error", "match"),
    [
        (None, lk.ConfigError, r"schedule=None\): a schedule function is required"),
        (
            0.1,
            TypeError,
            r"schedule=0.1 of type float; expected a function schedule\(epoch",
        ),
        (lambda a, b, c: 0.1, lk.ConfigError, r"needs more than two arguments"),
    ],
)
def test_learning_rate_scheduler_rejects_a_bad_schedule(schedule, error, match) -> None:
    with pytest.raises(error, match=match):
        LearningRateScheduler(schedule)


def test_learning_rate_scheduler_by_entry_point_name_fails_clearly(data) -> None:
    x, y = data
    with pytest.raises(
        lk.PluginError,
        match=r"'learning_rate_scheduler'.*a schedule function is required.*"
        r"LearningRateScheduler\(lambda epoch, lr: \.\.\.\)",
    ):
        make_model().fit(x, y, epochs=1, verbose=0, plugins=["learning_rate_scheduler"])


def test_learning_rate_scheduler_resumes_with_the_rate_it_last_set() -> None:
    first = LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    model = make_model(0.8)
    first.on_train_begin(model=model)
    for epoch in range(2):
        first.on_epoch_begin(model=model, epoch=epoch)
    saved = first.state_dict()
    assert saved == {"epoch": 1, "lr": 0.4, "learning_rate": 0.2}

    # Backed up at the end of epoch 1: the resumed run starts at epoch 2.
    fresh = make_model(0.8)  # the optimizer starts from its compiled rate again
    resumed = LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    resumed.load_state_dict(saved)
    resumed.on_train_begin(model=fresh)
    assert fresh.optimizer.learning_rate == 0.2
    resumed.on_epoch_begin(model=fresh, epoch=2)
    assert fresh.optimizer.learning_rate == 0.1


def test_learning_rate_scheduler_resumed_mid_epoch_does_not_apply_it_twice() -> None:
    saved = {"epoch": 1, "lr": 0.4, "learning_rate": 0.2}  # backed up inside epoch 1
    fresh = make_model(0.8)
    resumed = LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    resumed.load_state_dict(saved)
    resumed.on_train_begin(model=fresh)
    resumed.on_epoch_begin(model=fresh, epoch=1)  # the loop restarts epoch 1
    assert fresh.optimizer.learning_rate == 0.2
    resumed.on_epoch_begin(model=fresh, epoch=2)
    assert fresh.optimizer.learning_rate == 0.1


def test_learning_rate_scheduler_state_of_a_fresh_plugin_is_empty() -> None:
    plugin = LearningRateScheduler(lambda epoch: 0.1)
    assert plugin.state_dict() == {"epoch": None, "lr": None, "learning_rate": None}
    plugin.load_state_dict(plugin.state_dict())
    model = make_model(0.3)
    plugin.on_train_begin(model=model)
    assert model.optimizer.learning_rate == 0.3


# --- ReduceLROnPlateau ------------------------------------------------------------------


def test_reduce_lr_on_plateau_reduces_after_patience_epochs_without_improvement() -> None:
    plugin = ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.0)
    assert rates_after(plugin, [1.0] * 5) == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_reduce_lr_on_plateau_improvement_resets_the_wait() -> None:
    plugin = ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.0)
    assert rates_after(plugin, [1.0, 1.0, 0.5, 0.5, 0.5]) == [1.0, 1.0, 1.0, 1.0, 0.5]


def test_reduce_lr_on_plateau_needs_min_delta_to_count_an_improvement() -> None:
    plugin = ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0.1)
    assert rates_after(plugin, [1.0, 0.95, 0.85, 0.8]) == [1.0, 0.5, 0.5, 0.25]


def test_reduce_lr_on_plateau_cooldown_counts_as_keras_counts_it() -> None:
    # Keras decrements before testing, so cooldown=1 has no effect and cooldown=2
    # leaves one quiet epoch after each reduction.
    plugin = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=1, min_delta=0.0)
    assert rates_after(plugin, [1.0] * 6) == [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125]
    plugin = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2, min_delta=0.0)
    assert rates_after(plugin, [1.0] * 6) == [1.0, 0.5, 0.5, 0.25, 0.25, 0.125]


def test_reduce_lr_on_plateau_never_goes_below_min_lr(capsys) -> None:
    plugin = ReduceLROnPlateau(factor=0.1, patience=0, min_lr=0.05, verbose=1)
    rates = rates_after(plugin, [1.0, 1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(rates, [1.0, 0.1, 0.05, 0.05, 0.05], rtol=1e-12)
    assert capsys.readouterr().out == (
        "\nEpoch 2: ReduceLROnPlateau reducing learning rate to 0.1.\n"
        "\nEpoch 3: ReduceLROnPlateau reducing learning rate to 0.05.\n"
    )


def test_reduce_lr_on_plateau_at_the_floor_does_not_reduce_again(capsys) -> None:
    # 0.31 * (0.05 / 0.31) is 0.05000000000000001: an ulp above the floor is not above it.
    plugin = ReduceLROnPlateau(factor=0.1, patience=0, cooldown=0, min_lr=0.05, verbose=1)
    rates = rates_after(plugin, [1.0, 1.0, 1.0, 1.0], lr=0.31)
    np.testing.assert_allclose(rates, [0.31, 0.05, 0.05, 0.05], rtol=1e-12)
    assert capsys.readouterr().out.count("reducing learning rate") == 1


def test_reduce_lr_on_plateau_auto_mode_maximizes_accuracy() -> None:
    plugin = ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1)
    assert rates_after(plugin, [0.5, 0.7, 0.6], key="val_accuracy") == [1.0, 1.0, 0.5]


def test_reduce_lr_on_plateau_sets_a_float_learning_rate_to_the_rate_in_force() -> None:
    model = make_model(0.4)
    plugin = ReduceLROnPlateau(factor=0.25, patience=0)
    plugin.on_train_begin(model=model)
    for epoch, value in enumerate([1.0, 2.0]):
        plugin.on_epoch_end(model=model, epoch=epoch, logs={"val_loss": value})
    assert model.optimizer.learning_rate == pytest.approx(0.1, rel=1e-12)
    assert model.optimizer.learning_rate_multiplier == 1.0
    assert model.optimizer.current_learning_rate == pytest.approx(0.1, rel=1e-12)


def test_reduce_lr_on_plateau_composes_with_an_exponential_decay_schedule(data) -> None:
    x, y = data
    model = make_model(ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5))
    plugin = ReduceLROnPlateau(factor=0.5, patience=1)
    history = model.fit(
        x,
        y,
        epochs=4,
        batch_size=4,
        verbose=0,
        validation_split=0.25,
        plugins=[Scripted([1.0] * 4), plugin],
    )
    # 3 steps per epoch; the log is taken before that epoch's reduction.
    multipliers = [1.0, 1.0, 0.5, 0.25]
    expected = [0.1 * 0.5 ** (3 * (e + 1) / 4) * multipliers[e] for e in range(4)]
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-12)
    assert isinstance(model.optimizer.raw_learning_rate, ExponentialDecay)
    assert model.optimizer.learning_rate_multiplier == 0.125
    # As in Keras, learning_rate reads the rate in force: 12 steps done, reduced 3 times
    rate = 0.1 * 0.5 ** (12 / 4) * 0.125
    assert type(model.optimizer.learning_rate) is float
    assert model.optimizer.learning_rate == pytest.approx(rate, rel=1e-12)


def test_reduce_lr_on_plateau_composes_with_learning_rate_scheduler(data) -> None:
    x, y = data
    model = make_model(1.0)
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=8,
        verbose=0,
        validation_split=0.25,
        plugins=[
            LearningRateScheduler(lambda epoch, lr: lr * 0.5),
            Scripted([1.0] * 3),
            ReduceLROnPlateau(factor=0.5, patience=0),
        ],
    )
    # Epoch 1 does not improve on epoch 0: its reduction reaches the schedule through
    # the lr of epoch 2, as in Keras (0.25 * 0.5 reduced, then halved again).
    np.testing.assert_allclose(
        history.history["learning_rate"], [0.5, 0.25, 0.0625], rtol=1e-12
    )
    assert model.optimizer.learning_rate == pytest.approx(
        0.03125, rel=1e-12
    )  # epoch 2 reduced


def test_reduce_lr_on_plateau_in_a_real_fit_with_entry_point_defaults(data) -> None:
    x, y = data
    model = make_model(0.02)
    history = model.fit(
        x,
        y,
        epochs=12,
        batch_size=8,
        verbose=0,
        validation_split=0.25,
        plugins=[Scripted([1.0] * 12), "reduce_lr_on_plateau"],
    )
    # patience=10, factor=0.1: epoch 0 sets the best, epochs 1..10 wait, epoch 10 reduces.
    np.testing.assert_allclose(
        history.history["learning_rate"], [0.02] * 11 + [0.002], rtol=1e-12
    )


def test_reduce_lr_on_plateau_fails_before_the_first_step_without_its_monitor(data) -> None:
    x, y = data
    model = make_model()
    with pytest.raises(
        lk.ConfigError,
        match=r"'reduce_lr_on_plateau' needs the log key\(s\) "
        r"\['val_loss'\]",
    ):
        model.fit(x, y, epochs=1, verbose=0, plugins=[ReduceLROnPlateau()])
    assert model.optimizer.iterations == 0


def test_reduce_lr_on_plateau_warns_once_when_the_monitor_is_missing() -> None:
    model = make_model()
    plugin = ReduceLROnPlateau(patience=0)
    plugin.on_train_begin(model=model)
    with pytest.warns(lk.LoopkitWarning) as caught:
        for epoch in range(3):
            plugin.on_epoch_end(model=model, epoch=epoch, logs={"loss": 1.0})
    assert len(caught) == 1
    assert "epoch 0 have no 'val_loss'; available keys: ['loss']" in str(caught[0].message)
    assert model.optimizer.learning_rate_multiplier == 1.0


def test_reduce_lr_on_plateau_resumes_counters_and_multiplier() -> None:
    schedule = ExponentialDecay(1.0, decay_steps=1000, decay_rate=0.5)  # 1.0 at step 0
    model = make_model(schedule)
    first = ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.0)
    first.on_train_begin(model=model)
    for epoch, value in enumerate([1.0, 1.0, 1.0, 1.0]):
        first.on_epoch_end(model=model, epoch=epoch, logs={"val_loss": value})
    saved = first.state_dict()
    assert saved == {
        "wait": 1,
        "cooldown_counter": 0,
        "best": 1.0,
        "learning_rate_multiplier": 0.5,
    }

    fresh = make_model(schedule)
    resumed = ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.0)
    resumed.load_state_dict(saved)
    resumed.on_train_begin(model=fresh)
    assert fresh.optimizer.learning_rate_multiplier == 0.5
    resumed.on_epoch_end(model=fresh, epoch=4, logs={"val_loss": 1.0})
    assert fresh.optimizer.current_learning_rate == 0.25


def test_reduce_lr_on_plateau_reused_across_fits_starts_afresh() -> None:
    model = make_model(1.0)
    plugin = ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0.0)
    plugin.on_train_begin(model=model)
    plugin.on_epoch_end(model=model, epoch=0, logs={"val_loss": 0.1})
    plugin.on_train_begin(model=model)
    plugin.on_epoch_end(model=model, epoch=0, logs={"val_loss": 0.5})
    assert plugin.best == 0.5 and plugin.wait == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"factor": 1.0}, lk.ConfigError, r"factor=1.0; expected a number in \(0, 1\)"),
        ({"factor": 0}, lk.ConfigError, r"factor=0; expected a number in \(0, 1\)"),
        ({"factor": "0.5"}, TypeError, r"factor='0.5' of type str"),
        ({"patience": -1}, lk.ConfigError, r"patience=-1; expected an int >= 0"),
        ({"cooldown": 0.5}, TypeError, r"cooldown=0.5 of type float"),
        ({"min_lr": -1e-3}, lk.ConfigError, r"min_lr=-0.001; expected a number >= 0"),
        ({"min_delta": -1.0}, lk.ConfigError, r"min_delta=-1.0; expected a number >= 0"),
        ({"mode": "maxx"}, lk.ConfigError, r"mode='maxx'; .* Did you mean 'max'\?"),
        ({"monitor": ""}, TypeError, r"monitor=''; expected the log key"),
    ],
)
def test_reduce_lr_on_plateau_rejects_bad_arguments(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        ReduceLROnPlateau(**kwargs)


def test_reduce_lr_on_plateau_declares_its_monitor_as_required() -> None:
    plugin = ReduceLROnPlateau(monitor="loss")
    assert plugin.required_log_keys == ("loss",)
    assert plugin.order == 100 and plugin.name == "reduce_lr_on_plateau"
