"""Tests for EMA: the averaging recursion, swapping for evaluation, order, state."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from attrs import define, field

import loopkit
from loopkit import (
    CheckpointError,
    ConfigError,
    LoopState,
    OptimizerStep,
    Sequential,
    ShapeError,
    hookimpl,
)
from loopkit.layers import Dense
from loopkit.optimizers import SGD
from loopkit.plugins import EMA, GradientAccumulation


def _model(seed: int = 0) -> Sequential:
    loopkit.set_random_seed(seed)
    model = Sequential(
        [Dense(3, input_shape=(4,), activation="tanh"), Dense(2)], dtype="float64"
    )
    model.compile(optimizer=SGD(learning_rate=0.2), loss="mse")
    return model


def _data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=(n, 4)), rng.normal(size=(n, 2)) * 2.0


def _average(start: np.ndarray, weights: list[np.ndarray], decay: float) -> np.ndarray:
    """The EMA recursion, written out: s <- decay * s + (1 - decay) * w, per step."""
    shadow = start.copy()
    for w in weights:
        shadow = decay * shadow + (1.0 - decay) * w
    return shadow


@define(eq=False, slots=False)
class WeightLog:
    """Copies of the flat weights at the moments the tests look at."""

    order: int = 0
    initial: list[np.ndarray] = field(factory=list)
    after_steps: list[np.ndarray] = field(factory=list)
    epoch_begin: list[np.ndarray] = field(factory=list)
    epoch_end: list[np.ndarray] = field(factory=list)
    plugins: list[Any] = field(factory=list)

    @hookimpl
    def on_train_begin(self, model: Sequential, state: LoopState) -> None:
        assert state.hooks is not None
        self.plugins = state.hooks.originals()
        self.initial.append(model.flat_weights.copy())

    @hookimpl
    def on_after_optimizer_step(self, model: Sequential, step: OptimizerStep) -> None:
        if not step.skip:
            self.after_steps.append(model.flat_weights.copy())

    @hookimpl
    def on_epoch_begin(self, model: Sequential) -> None:
        self.epoch_begin.append(model.flat_weights.copy())

    @hookimpl
    def on_epoch_end(self, model: Sequential) -> None:
        self.epoch_end.append(model.flat_weights.copy())


def test_shadow_follows_the_recursion_over_the_weights_after_each_step(
    rng: np.random.Generator,
) -> None:
    x, y = _data(rng, 16)
    model, ema, log = _model(), EMA(decay=0.9), WeightLog()
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, plugins=[ema, log])
    assert len(log.after_steps) == 8
    assert ema.shadow is not None
    np.testing.assert_allclose(
        ema.shadow, _average(log.initial[0], log.after_steps, 0.9), rtol=1e-12, atol=1e-14
    )
    np.testing.assert_array_equal(
        model.flat_weights, log.after_steps[-1]
    )  # raw weights kept


def test_validation_and_epoch_end_see_the_average_and_training_resumes_from_raw(
    rng: np.random.Generator,
) -> None:
    x, y = _data(rng, 16)
    xv, yv = _data(rng, 8)
    model, ema, log = _model(), EMA(decay=0.8, use_for_eval=True), WeightLog()
    history = model.fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        shuffle=False,
        verbose=0,
        validation_data=(xv, yv),
        plugins=[ema, log],
    )
    for epoch in range(2):
        steps = log.after_steps[: 4 * (epoch + 1)]
        expected = _average(log.initial[0], steps, 0.8)
        np.testing.assert_allclose(log.epoch_end[epoch], expected, rtol=1e-12, atol=1e-14)
        model.flat_weights[...] = expected
        assert history.history["val_loss"][epoch] == pytest.approx(
            model.evaluate(xv, yv, verbose=0), rel=1e-12
        )
        model.flat_weights[...] = steps[-1]
        assert history.history["val_loss"][epoch] != pytest.approx(
            model.evaluate(xv, yv, verbose=0), rel=1e-6
        )
    # the second epoch starts from the raw weights, not from the average
    np.testing.assert_array_equal(log.epoch_begin[1], log.after_steps[3])
    assert not np.allclose(log.epoch_begin[1], log.epoch_end[0])


@pytest.mark.parametrize("order", [-1000, 1000])
def test_every_epoch_end_plugin_sees_the_average_whatever_its_order(
    rng: np.random.Generator, order: int
) -> None:
    x, y = _data(rng, 8)
    model, ema, log = _model(), EMA(decay=0.5, use_for_eval=True), WeightLog(order=order)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, plugins=[ema, log])
    expected = _average(log.initial[0], log.after_steps, 0.5)
    np.testing.assert_allclose(log.epoch_end[0], expected, rtol=1e-12, atol=1e-14)
    # Keras's use_ema: the average is assigned to the model when fit ends
    np.testing.assert_allclose(model.flat_weights, expected, rtol=1e-12, atol=1e-14)


def test_without_use_for_eval_nothing_is_swapped(rng: np.random.Generator) -> None:
    x, y = _data(rng, 8)
    model, ema, log = _model(), EMA(decay=0.5), WeightLog()
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=1,
        shuffle=False,
        verbose=0,
        validation_data=(x, y),
        plugins=[ema, log],
    )
    np.testing.assert_array_equal(log.epoch_end[0], log.after_steps[-1])


def test_weights_a_plugin_writes_at_epoch_end_are_kept_and_restart_the_average(
    rng: np.random.Generator,
) -> None:
    x, y = _data(rng, 8)
    model, ema, log = _model(), EMA(decay=0.5, use_for_eval=True), WeightLog()
    written = np.linspace(-1.0, 1.0, model.flat_weights.size)

    @define(eq=False, slots=False)
    class RestoreBest:
        @hookimpl
        def on_epoch_end(self, model: Sequential, epoch: int) -> None:
            if epoch == 0:
                model.flat_weights[...] = written

    model.fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        shuffle=False,
        verbose=0,
        plugins=[ema, RestoreBest(), log],
    )
    np.testing.assert_array_equal(log.epoch_begin[1], written)
    expected = _average(written, log.after_steps[2:], 0.5)
    np.testing.assert_allclose(model.flat_weights, expected, rtol=1e-12, atol=1e-14)


def test_weights_restored_at_train_end_win_over_the_final_average(
    rng: np.random.Generator,
) -> None:
    x, y = _data(rng, 8)
    model, ema, log = _model(), EMA(decay=0.5, use_for_eval=True), WeightLog()

    @define(eq=False, slots=False)
    class RestoreBestAtEnd:  # like EarlyStopping(restore_best_weights=True)
        order: int = -100
        best: list[np.ndarray] = field(factory=list)

        @hookimpl
        def on_epoch_end(self, model: Sequential, epoch: int) -> None:
            if epoch == 0:
                self.best.append(model.flat_weights.copy())

        @hookimpl
        def on_train_end(self, model: Sequential) -> None:
            model.flat_weights[...] = self.best[0]

    model.fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        shuffle=False,
        verbose=0,
        plugins=[ema, RestoreBestAtEnd(), log],
    )
    np.testing.assert_array_equal(model.flat_weights, log.epoch_end[0])
    assert ema.shadow is not None and not np.allclose(ema.shadow, log.epoch_end[0])


def test_failure_during_validation_puts_the_raw_weights_back(
    rng: np.random.Generator,
) -> None:
    x, y = _data(rng, 8)
    model, ema, log = _model(), EMA(decay=0.5, use_for_eval=True), WeightLog()
    seen: list[np.ndarray] = []

    @define(eq=False, slots=False)
    class Crash:
        order: int = 1000

        @hookimpl
        def on_test_batch_end(self) -> None:
            raise RuntimeError("boom")

        @hookimpl
        def on_exception(self, model: Sequential) -> None:  # e.g. a last backup
            seen.append(model.flat_weights.copy())

    with pytest.raises(RuntimeError, match="boom"):
        model.fit(
            x,
            y,
            batch_size=4,
            shuffle=False,
            verbose=0,
            validation_data=(x, y),
            plugins=[ema, Crash(), log],
        )
    np.testing.assert_array_equal(model.flat_weights, log.after_steps[-1])
    np.testing.assert_array_equal(seen[0], log.after_steps[-1])
    assert ema.shadow is not None and not np.allclose(ema.shadow, log.after_steps[-1])


def test_evaluate_outside_fit_uses_the_weights_as_they_are(
    rng: np.random.Generator,
) -> None:
    x, y = _data(rng, 8)
    model, ema = _model(), EMA(decay=0.5, use_for_eval=True)
    model.plugins.register(ema)
    model.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    weights = np.linspace(-1.0, 1.0, model.flat_weights.size)
    model.flat_weights[...] = weights
    loss = model.evaluate(x, y, verbose=0)
    np.testing.assert_array_equal(model.flat_weights, weights)
    twin = _model(seed=9)
    twin.flat_weights[...] = weights
    assert loss == pytest.approx(twin.evaluate(x, y, verbose=0), rel=1e-12)


@pytest.mark.parametrize("validate", [True, False])
def test_skipped_steps_do_not_move_the_average_and_flushes_precede_the_swap(
    rng: np.random.Generator, validate: bool
) -> None:
    x, y = _data(rng, 20)
    xv, yv = _data(rng, 6)
    model, log = _model(), WeightLog()
    ema = EMA(decay=0.5, use_for_eval=True, order=-100)  # ordered before accumulation
    batches = ((x[s : s + 4], y[s : s + 4]) for s in range(0, 20, 4))
    history = model.fit(
        batches,
        epochs=1,
        verbose=0,
        validation_data=(xv, yv) if validate else None,
        plugins=[ema, GradientAccumulation(3), log],
    )
    # 5 batches: an update at batch 2, and the flush of batches 3-4 when training ends
    # (before validation, else before on_epoch_end), outside the swap
    assert len(log.after_steps) == 2
    expected = _average(log.initial[0], log.after_steps, 0.5)
    np.testing.assert_allclose(log.epoch_end[0], expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.flat_weights, expected, rtol=1e-12, atol=1e-14)
    if validate:
        assert history.history["val_loss"][0] == pytest.approx(
            model.evaluate(xv, yv, verbose=0), rel=1e-12
        )


# --- swap and copy_to ---------------------------------------------------------------------


def test_swap_puts_the_average_in_and_the_raw_weights_back_even_on_error(
    rng: np.random.Generator,
) -> None:
    x, y = _data(rng, 8)
    model, ema = _model(), EMA(decay=0.5)
    model.fit(x, y, batch_size=4, shuffle=False, verbose=0, plugins=[ema])
    raw = model.flat_weights.copy()
    assert ema.shadow is not None
    with ema.swap(model):
        np.testing.assert_array_equal(model.flat_weights, ema.shadow)
        with ema.swap(model):  # nested: a no-op
            np.testing.assert_array_equal(model.flat_weights, ema.shadow)
        np.testing.assert_array_equal(model.flat_weights, ema.shadow)
    np.testing.assert_array_equal(model.flat_weights, raw)
    with pytest.raises(RuntimeError, match="inside"), ema.swap(model):
        raise RuntimeError("inside")
    np.testing.assert_array_equal(model.flat_weights, raw)


def test_copy_to_assigns_the_average_for_good(rng: np.random.Generator) -> None:
    x, y = _data(rng, 8)
    model, ema = _model(), EMA(decay=0.5)
    model.fit(x, y, batch_size=4, shuffle=False, verbose=0, plugins=[ema])
    assert ema.shadow is not None
    with ema.swap(model):
        ema.copy_to(model)
    np.testing.assert_array_equal(model.flat_weights, ema.shadow)


def test_swap_and_copy_to_need_an_average_of_this_model(rng: np.random.Generator) -> None:
    model = _model()
    with (
        pytest.raises(
            ConfigError, match=r"EMA.swap\(\): there is no moving average yet; fit"
        ),
        EMA().swap(model),
    ):
        pass
    with pytest.raises(ConfigError, match=r"EMA.copy_to\(\): there is no moving average"):
        EMA().copy_to(model)
    ema = EMA()
    ema.load_state_dict({"shadow": np.zeros(5), "raw": None})
    with pytest.raises(
        ShapeError, match=r"holds 5 values, but model .* has 23 weights. Use"
    ):
        ema.copy_to(model)


# --- resumable state ----------------------------------------------------------------------


def test_restored_average_is_continued_not_restarted(rng: np.random.Generator) -> None:
    x, y = _data(rng, 8)
    model, log = _model(), WeightLog()
    saved = {"shadow": np.linspace(0.0, 1.0, model.flat_weights.size), "raw": None}
    ema = EMA(decay=0.5)
    ema.load_state_dict(saved)
    model.fit(x, y, batch_size=4, shuffle=False, verbose=0, plugins=[ema, log])
    assert ema.shadow is not None
    np.testing.assert_allclose(
        ema.shadow, _average(saved["shadow"], log.after_steps, 0.5), rtol=1e-12, atol=1e-14
    )
    state = ema.state_dict()
    np.testing.assert_array_equal(state["shadow"], ema.shadow)
    assert state["shadow"] is not ema.shadow and state["raw"] is None


def test_checkpoint_taken_at_epoch_end_resumes_from_the_raw_weights(
    rng: np.random.Generator,
) -> None:
    x, y = _data(rng, 8)
    model, ema, log = _model(), EMA(decay=0.5, use_for_eval=True), WeightLog()
    taken: list[dict[str, Any]] = []

    @define(eq=False, slots=False)
    class Backup:
        order: int = 2000

        @hookimpl
        def on_epoch_end(self, model: Sequential) -> None:
            taken.append({"weights": model.flat_weights.copy(), "ema": ema.state_dict()})

    model.fit(x, y, batch_size=4, shuffle=False, verbose=0, plugins=[ema, Backup(), log])
    (checkpoint,) = taken
    np.testing.assert_array_equal(checkpoint["weights"], checkpoint["ema"]["shadow"])
    np.testing.assert_array_equal(checkpoint["ema"]["raw"], log.after_steps[-1])

    for via_hook in (True, False):  # a loader fires on_load_checkpoint, or fit follows
        resumed, restored = _model(seed=5), EMA(decay=0.5, use_for_eval=True)
        resumed.flat_weights[...] = checkpoint["weights"]
        restored.load_state_dict(checkpoint["ema"])
        if via_hook:
            restored.on_load_checkpoint(model=resumed)
        else:
            restored.on_train_begin(model=resumed)
        np.testing.assert_array_equal(resumed.flat_weights, log.after_steps[-1])
        assert restored.shadow is not None
        np.testing.assert_array_equal(restored.shadow, checkpoint["ema"]["shadow"])


def test_restored_average_of_another_model_is_refused(rng: np.random.Generator) -> None:
    model = _model()
    early = EMA()
    early.load_state_dict({"shadow": np.zeros(5)})
    with pytest.raises(
        CheckpointError, match=r"load_state_dict\(\): the moving average holds 5"
    ):
        early.on_train_begin(model=model)
    late = EMA()
    late.on_train_begin(model=model)
    with pytest.raises(
        CheckpointError, match=r"shape \(5,\), but .* shape \(23,\). Resume"
    ):
        late.load_state_dict({"shadow": np.zeros(5)})
    raw = EMA()
    raw.load_state_dict({"shadow": None, "raw": np.zeros(5)})
    with pytest.raises(CheckpointError, match=r"raw weights have shape \(5,\).* Resume"):
        raw.on_load_checkpoint(model=model)


# --- construction and entry point ---------------------------------------------------------


@pytest.mark.parametrize("decay", [1.0, -0.1, math.nan, 2])
def test_decay_must_be_in_zero_one(decay: float) -> None:
    with pytest.raises(
        ConfigError,
        match=rf"EMA got decay={decay!r}; expected a number in \[0, 1\)",
    ):
        EMA(decay=decay)


def test_arguments_of_the_wrong_kind_are_type_errors() -> None:
    with pytest.raises(TypeError, match=r"decay='0\.9' of type str; expected a number"):
        EMA(decay="0.9")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"use_for_eval='yes' of type str; expected True"):
        EMA(use_for_eval="yes")  # type: ignore[arg-type]


def test_enabled_by_name_it_averages_with_decay_0_999(rng: np.random.Generator) -> None:
    x, y = _data(rng, 8)
    model, log = _model(), WeightLog()
    model.fit(x, y, batch_size=4, shuffle=False, verbose=0, plugins=["ema", log])
    (ema,) = [p for p in log.plugins if isinstance(p, EMA)]
    assert (ema.decay, ema.use_for_eval) == (0.999, False)
    assert ema.shadow is not None
    np.testing.assert_allclose(
        ema.shadow, _average(log.initial[0], log.after_steps, 0.999), rtol=1e-12, atol=1e-14
    )
    np.testing.assert_array_equal(model.flat_weights, log.after_steps[-1])
