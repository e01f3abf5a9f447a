from __future__ import annotations

import math

import numpy as np
import pytest

import loopkit as lk
from loopkit.layers import Dense
from loopkit.plugins import TerminateOnNaN


def make_model(learning_rate: float = 0.01) -> lk.Sequential:
    lk.set_random_seed(11)
    model = lk.Sequential([Dense(3, input_dim=2), Dense(1)])
    model.compile(optimizer=lk.optimizers.SGD(learning_rate=learning_rate), loss="mse")
    return model


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((16, 2)).astype(np.float32)
    y = (2.0 * x[:, :1] + 1.0).astype(np.float32)
    return x, y


class BeforeEachBatch:
    """Keeps a copy of the weights before every training batch."""

    name = "before_each_batch"

    def __init__(self) -> None:
        self.weights: list[np.ndarray] = []

    @lk.hookimpl
    def on_train_batch_begin(self, model: lk.Sequential) -> None:
        self.weights.append(model.flat_weights.copy())


def test_terminate_on_nan_stops_on_an_inf_batch_and_keeps_the_weights_before_it(
    data,
) -> None:
    x, y = data
    x = x.copy()
    x[9, 0] = 1e30  # finite, but its squared error overflows: the third batch of 4
    model = make_model()
    plugin, before = TerminateOnNaN(), BeforeEachBatch()
    with (
        np.errstate(all="ignore"),
        pytest.warns(
            lk.LoopkitWarning,
            match=r"epoch 0, batch 2: invalid loss, terminating training\. The batch had "
            r"loss (nan|inf); its update was not applied",
        ),
    ):
        history = model.fit(
            x, y, epochs=3, batch_size=4, shuffle=False, verbose=0, plugins=[plugin, before]
        )
    assert plugin.stopped_at == (0, 2)
    assert len(before.weights) == 3 and history.epoch == [0]
    assert model.optimizer.iterations == 2
    assert np.all(np.isfinite(model.flat_weights))
    np.testing.assert_array_equal(model.flat_weights, before.weights[2])


def test_terminate_on_nan_stops_a_diverging_run_before_its_weights_become_nan(data) -> None:
    x, y = data
    model = make_model(learning_rate=50.0)
    plugin, before = TerminateOnNaN(), BeforeEachBatch()
    with (
        np.errstate(all="ignore"),
        pytest.warns(lk.LoopkitWarning, match="invalid loss, terminating training"),
    ):
        history = model.fit(
            x,
            y,
            epochs=50,
            batch_size=4,
            shuffle=False,
            verbose=0,
            plugins=[plugin, before],
        )
    assert plugin.stopped_at is not None
    assert len(history.epoch) < 50
    assert np.all(np.isfinite(model.flat_weights))
    np.testing.assert_array_equal(model.flat_weights, before.weights[-1])
    assert model.optimizer.iterations == len(before.weights) - 1


def test_terminate_on_nan_without_it_the_same_run_ends_with_nan_weights(data) -> None:
    # The reference for the test above: the run does diverge.
    x, y = data
    model = make_model(learning_rate=50.0)
    with np.errstate(all="ignore"):
        model.fit(x, y, epochs=50, batch_size=4, shuffle=False, verbose=0)
    assert not np.all(np.isfinite(model.flat_weights))


def test_terminate_on_nan_skips_an_update_whose_gradients_are_not_finite() -> None:
    model = make_model()
    model.flat_gradients[...] = 0.0
    model.flat_gradients[4] = np.inf
    step = lk.OptimizerStep(loss=0.5, batch_size=4)
    with pytest.warns(
        lk.LoopkitWarning, match=r"finite loss \(0\.5\) but NaN or inf gradients"
    ):
        TerminateOnNaN().on_before_optimizer_step(model=model, state=model.state, step=step)
    assert step.skip and model.stop_training


def test_terminate_on_nan_lets_finite_steps_through() -> None:
    model = make_model()
    model.flat_gradients[...] = 1e30  # large, but finite: the float64 sum does not overflow
    step = lk.OptimizerStep(loss=1e30, batch_size=4)
    TerminateOnNaN().on_before_optimizer_step(model=model, state=model.state, step=step)
    assert not step.skip and not model.stop_training


def test_terminate_on_nan_checks_only_the_loss_of_an_already_skipped_step() -> None:
    model = make_model()
    model.flat_gradients[...] = np.nan  # not applied this step (e.g. accumulation)
    step = lk.OptimizerStep(loss=0.5, batch_size=4, skip=True)
    TerminateOnNaN().on_before_optimizer_step(model=model, state=model.state, step=step)
    assert step.skip and not model.stop_training
    step = lk.OptimizerStep(loss=math.nan, batch_size=4, skip=True)
    with pytest.warns(lk.LoopkitWarning, match="had loss nan"):
        TerminateOnNaN().on_before_optimizer_step(model=model, state=model.state, step=step)
    assert model.stop_training


def test_terminate_on_nan_has_the_last_word_on_skip(data) -> None:
    x, y = data
    x = x.copy()
    x[0, 1] = 1e30  # finite input whose squared error overflows

    class ForceStep:
        order = 500  # after TerminateOnNaN by order: trylast still puts it first

        @lk.hookimpl
        def on_before_optimizer_step(self, step: lk.OptimizerStep) -> None:
            step.skip = False

    model = make_model()
    before = model.flat_weights.copy()
    with (
        np.errstate(all="ignore"),
        pytest.warns(lk.LoopkitWarning, match="batch 0: invalid"),
    ):
        model.fit(
            x,
            y,
            epochs=1,
            batch_size=4,
            shuffle=False,
            verbose=0,
            plugins=[TerminateOnNaN(), ForceStep()],
        )
    np.testing.assert_array_equal(model.flat_weights, before)


def test_terminate_on_nan_does_not_make_the_loop_build_batch_logs() -> None:
    text = make_model().show_loop(plugins=[TerminateOnNaN()])
    lines = dict(line.split(": ", 1) for line in text.splitlines())
    assert lines["on_before_optimizer_step"] == "terminate_on_nan"
    assert lines["on_train_batch_end"] == "-"


def test_terminate_on_nan_enabled_by_entry_point_name(data) -> None:
    x, y = data
    x = x.copy()
    x[5, 0] = 1e30  # finite input whose squared error overflows
    model = make_model()
    with (
        np.errstate(all="ignore"),
        pytest.warns(lk.LoopkitWarning, match="epoch 0, batch 1: invalid loss"),
    ):
        history = model.fit(
            x,
            y,
            epochs=2,
            batch_size=4,
            shuffle=False,
            verbose=0,
            plugins=["terminate_on_nan"],
        )
    assert history.epoch == [0] and model.optimizer.iterations == 1
    assert np.all(np.isfinite(model.flat_weights))


def test_terminate_on_nan_resets_between_fits(data) -> None:
    x, y = data
    bad = x.copy()
    bad[0, 0] = 1e30  # finite input whose squared error overflows
    model, plugin = make_model(), TerminateOnNaN()
    with np.errstate(all="ignore"), pytest.warns(lk.LoopkitWarning):
        model.fit(
            bad, y, epochs=1, batch_size=4, shuffle=False, verbose=0, plugins=[plugin]
        )
    assert plugin.stopped_at == (0, 0)
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0, plugins=[plugin])
    assert plugin.stopped_at is None and history.epoch == [0, 1]
