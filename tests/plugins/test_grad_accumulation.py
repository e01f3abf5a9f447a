"""Tests for GradientAccumulation: equivalence with big batches, windows, state, order."""

from __future__ import annotations

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
    hookimpl,
)
from loopkit.layers import Dense
from loopkit.optimizers import SGD, Adam
from loopkit.plugins import GradientAccumulation, GradientClipping
from loopkit.schedules import ExponentialDecay


def _mlp(optimizer: Any, seed: int = 0) -> Sequential:
    loopkit.set_random_seed(seed)
    model = Sequential(
        [Dense(5, input_shape=(4,), activation="tanh"), Dense(2)], dtype="float64"
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _linear(optimizer: Any, seed: int = 0) -> Sequential:
    loopkit.set_random_seed(seed)
    model = Sequential([Dense(2, input_shape=(4,))], dtype="float64")
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 4))
    y = rng.normal(size=(n, 2)) * 3.0
    return x, y


def _linear_mse_grads(
    kernel: np.ndarray, bias: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """dL/dkernel, dL/dbias of L = mean over samples and outputs of (x @ K + b - y)**2."""
    residual = x @ kernel + bias - y
    scale = 2.0 / residual.size
    return scale * x.T @ residual, scale * residual.sum(axis=0)


def _reference_sgd(
    weights: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    steps: int,
    epochs: int,
    learning_rate: Any,
) -> tuple[list[np.ndarray], int]:
    """Windows of ``steps`` batches per epoch, the last one partial; SGD on their mean."""
    kernel, bias = (w.copy() for w in weights)
    starts = list(range(0, len(x), batch_size))
    updates = 0
    for _ in range(epochs):
        for w0 in range(0, len(starts), steps):
            window = starts[w0 : w0 + steps]
            grads = [
                _linear_mse_grads(
                    kernel, bias, x[s : s + batch_size], y[s : s + batch_size]
                )
                for s in window
            ]
            lr = learning_rate(updates) if callable(learning_rate) else learning_rate
            kernel = kernel - lr * sum(g[0] for g in grads) / len(grads)
            bias = bias - lr * sum(g[1] for g in grads) / len(grads)
            updates += 1
    return [kernel, bias], updates


@define(eq=False, slots=False)
class Recorder:
    """Records what the optimizer-step hooks see, after the gradient plugins."""

    order: int = 50
    steps: list[tuple[int, bool, int]] = field(factory=list)
    applied: int = 0
    plugins: list[Any] = field(factory=list)
    steps_per_epoch: list[int | None] = field(factory=list)

    @hookimpl
    def on_train_begin(self, state: LoopState) -> None:
        assert state.hooks is not None
        self.plugins = state.hooks.originals()
        self.steps_per_epoch.append(state.steps_per_epoch)

    @hookimpl
    def on_before_optimizer_step(self, state: LoopState, step: OptimizerStep) -> None:
        self.steps.append((state.batch, step.skip, step.batch_size))

    @hookimpl
    def on_after_optimizer_step(self, step: OptimizerStep) -> None:
        self.applied += 0 if step.skip else 1


# --- equivalence with one step on the concatenated batch ----------------------------------


@pytest.mark.parametrize(
    "make_optimizer",
    [lambda: SGD(learning_rate=0.1, momentum=0.9), lambda: Adam(learning_rate=0.01)],
    ids=["sgd", "adam"],
)
def test_accumulating_k_batches_gives_the_weights_of_one_step_on_k_times_the_batch(
    rng: np.random.Generator, make_optimizer: Any
) -> None:
    x, y = _data(rng, 24)
    small, big = _mlp(make_optimizer(), seed=1), _mlp(make_optimizer(), seed=2)
    big.set_weights(small.get_weights())
    small.fit(
        x,
        y,
        batch_size=4,
        epochs=3,
        shuffle=False,
        verbose=0,
        plugins=[GradientAccumulation(3)],
    )
    big.fit(x, y, batch_size=12, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(small.get_weights(), big.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert small.optimizer is not None and big.optimizer is not None
    assert small.optimizer.iterations == big.optimizer.iterations == 6


def test_partial_last_window_applies_the_mean_over_the_batches_it_holds(
    rng: np.random.Generator,
) -> None:
    # 18 samples in batches of 4: sizes 4, 4, 4 | 4, 2 -> the last window holds two
    # batches of unequal size, each weighing one half.
    x, y = _data(rng, 18)
    model = _linear(SGD(learning_rate=0.1))
    initial = model.get_weights()
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        shuffle=False,
        verbose=0,
        plugins=[GradientAccumulation(3)],
    )
    expected, updates = _reference_sgd(
        initial, x, y, batch_size=4, steps=3, epochs=2, learning_rate=0.1
    )
    for got, want in zip(model.get_weights(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert model.optimizer is not None and model.optimizer.iterations == updates == 4


def test_learning_rate_schedule_counts_updates_not_batches(
    rng: np.random.Generator,
) -> None:
    x, y = _data(rng, 16)
    schedule = ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    model = _linear(SGD(learning_rate=schedule))
    initial = model.get_weights()
    history = model.fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        shuffle=False,
        verbose=0,
        plugins=[GradientAccumulation(2)],
    )
    expected, _ = _reference_sgd(
        initial, x, y, batch_size=4, steps=2, epochs=2, learning_rate=lambda t: 0.1 * 0.5**t
    )
    for got, want in zip(model.get_weights(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert model.optimizer is not None and model.optimizer.iterations == 4
    np.testing.assert_allclose(
        history.history["learning_rate"], [0.1 * 0.5**2, 0.1 * 0.5**4]
    )


def test_optimizer_clipnorm_clips_the_averaged_gradient_once_per_update(
    rng: np.random.Generator,
) -> None:
    x, y = _data(rng, 24)
    small = _linear(SGD(learning_rate=0.1, clipnorm=0.05))
    big = _linear(SGD(learning_rate=0.1, clipnorm=0.05), seed=3)
    unclipped = _linear(SGD(learning_rate=0.1), seed=4)
    big.set_weights(small.get_weights())
    unclipped.set_weights(small.get_weights())
    small.fit(
        x, y, batch_size=4, shuffle=False, verbose=0, plugins=[GradientAccumulation(3)]
    )
    big.fit(x, y, batch_size=12, shuffle=False, verbose=0)
    unclipped.fit(
        x, y, batch_size=4, shuffle=False, verbose=0, plugins=[GradientAccumulation(3)]
    )
    for a, b, c in zip(
        small.get_weights(), big.get_weights(), unclipped.get_weights(), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        assert not np.allclose(a, c)  # the clip was active


def test_clipping_plugin_sees_skipped_batches_and_clips_only_the_mean(
    rng: np.random.Generator,
) -> None:
    x, y = _data(rng, 24)
    small, big = _linear(SGD(learning_rate=0.1)), _linear(SGD(learning_rate=0.1), seed=5)
    big.set_weights(small.get_weights())
    clip_small, clip_big, recorder = (
        GradientClipping(0.05),
        GradientClipping(0.05),
        Recorder(),
    )
    # listed first and ordered first, clipping still runs after accumulation
    small.fit(
        x,
        y,
        batch_size=4,
        shuffle=False,
        verbose=0,
        plugins=[GradientClipping(0.05, order=-100), GradientAccumulation(3), recorder],
    )
    small2 = _linear(SGD(learning_rate=0.1), seed=6)
    small2.set_weights(big.get_weights())
    small2.fit(
        x,
        y,
        batch_size=4,
        shuffle=False,
        verbose=0,
        plugins=[clip_small, GradientAccumulation(3)],
    )
    big.fit(x, y, batch_size=12, shuffle=False, verbose=0, plugins=[clip_big])
    for a, b, c in zip(
        small.get_weights(), small2.get_weights(), big.get_weights(), strict=True
    ):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(b, c, rtol=1e-12, atol=1e-12)
    assert clip_small.last_norm == pytest.approx(clip_big.last_norm, rel=1e-12)
    assert clip_big.last_norm is not None and clip_big.last_norm > 0.05
    assert [skip for _, skip, _ in recorder.steps] == [True, True, False] * 2
    assert recorder.applied == 2


def test_gradient_accumulation_runs_before_clipping_whatever_their_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = _linear(SGD())
    text = model.show_loop(plugins=[GradientClipping(order=-100), GradientAccumulation(2)])
    capsys.readouterr()
    line = next(t for t in text.splitlines() if t.startswith("on_before_optimizer_step:"))
    assert line == "on_before_optimizer_step: gradient_accumulation, gradient_clipping"


# --- windows that end early ---------------------------------------------------------------


def test_generator_partial_window_is_applied_before_validation_through_the_step_hooks(
    rng: np.random.Generator,
) -> None:
    x, y = _data(rng, 20)
    xv, yv = _data(rng, 6)
    model = _linear(SGD(learning_rate=0.1))
    initial = model.get_weights()
    recorder = Recorder()

    def batches() -> Any:
        for s in range(0, 20, 4):
            yield x[s : s + 4], y[s : s + 4]

    history = model.fit(
        batches(),
        epochs=1,
        verbose=0,
        validation_data=(xv, yv),
        plugins=[GradientAccumulation(3), recorder],
    )
    assert recorder.steps_per_epoch == [None]
    expected, _ = _reference_sgd(
        initial, x, y, batch_size=4, steps=3, epochs=1, learning_rate=0.1
    )
    for got, want in zip(model.get_weights(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # batches 3 and 4 wait; the flush is one more update of their 8 samples
    assert recorder.steps == [
        (0, True, 4),
        (1, True, 4),
        (2, False, 4),
        (3, True, 4),
        (4, True, 4),
        (4, False, 8),
    ]
    assert recorder.applied == 2
    assert history.history["val_loss"][0] == pytest.approx(
        model.evaluate(xv, yv, verbose=0), rel=1e-12
    )


def test_generator_partial_window_is_applied_before_other_epoch_end_plugins(
    rng: np.random.Generator,
) -> None:
    x, y = _data(rng, 20)
    model = _linear(SGD(learning_rate=0.1))
    initial = model.get_weights()
    seen: list[list[np.ndarray]] = []

    @define(eq=False, slots=False)
    class EarlyReader:
        order: int = -1000

        @hookimpl
        def on_epoch_end(self, model: Sequential) -> None:
            seen.append(model.get_weights())

    batches = ((x[s : s + 4], y[s : s + 4]) for s in range(0, 20, 4))
    model.fit(
        batches, epochs=1, verbose=0, plugins=[EarlyReader(), GradientAccumulation(3)]
    )
    expected, _ = _reference_sgd(
        initial, x, y, batch_size=4, steps=3, epochs=1, learning_rate=0.1
    )
    for got, want in zip(seen[0], expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_stop_training_mid_window_applies_the_pending_batches_at_epoch_end(
    rng: np.random.Generator,
) -> None:
    x, y = _data(rng, 24)
    model = _linear(SGD(learning_rate=0.1))
    initial = model.get_weights()

    @define(eq=False, slots=False)
    class StopAtSecondBatch:
        @hookimpl
        def on_train_batch_end(self, model: Sequential, batch: int) -> None:
            model.stop_training = batch == 1

    model.fit(
        x,
        y,
        batch_size=4,
        epochs=3,
        shuffle=False,
        verbose=0,
        validation_data=(x[:4], y[:4]),
        plugins=[GradientAccumulation(3), StopAtSecondBatch()],
    )
    expected, _ = _reference_sgd(
        initial, x[:8], y[:8], batch_size=4, steps=3, epochs=1, learning_rate=0.1
    )
    for got, want in zip(model.get_weights(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert model.optimizer is not None and model.optimizer.iterations == 1


def test_failed_fit_drops_the_pending_window(rng: np.random.Generator) -> None:
    x, y = _data(rng, 24)
    model = _linear(SGD(learning_rate=0.1))
    initial = model.get_weights()
    accumulation = GradientAccumulation(3)
    pending: list[int] = []

    @define(eq=False, slots=False)
    class Crash:
        @hookimpl
        def on_train_batch_end(self, batch: int) -> None:
            if batch == 1:
                pending.append(accumulation.pending)
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        model.fit(
            x, y, batch_size=4, shuffle=False, verbose=0, plugins=[accumulation, Crash()]
        )
    assert pending == [2]
    assert accumulation.pending == 0 and accumulation.state_dict()["count"] == 0
    for got, want in zip(model.get_weights(), initial, strict=True):
        np.testing.assert_array_equal(got, want)


# --- resumable state, through direct hook calls -------------------------------------------


def _feed(
    plugin: GradientAccumulation,
    model: Sequential,
    state: LoopState,
    grads: np.ndarray,
    batch: int,
) -> OptimizerStep:
    model.flat_gradients[...] = grads
    state.batch = batch
    step = OptimizerStep(loss=1.0, batch_size=4)
    plugin.on_before_optimizer_step(model=model, state=state, step=step)
    return step


@pytest.mark.parametrize("restore_before_train_begin", [True, False])
def test_state_dict_resumes_the_window_where_it_stopped(
    rng: np.random.Generator, restore_before_train_begin: bool
) -> None:
    model = _linear(SGD())
    size = model.flat_gradients.size
    g1, g2, g3 = (rng.normal(size=size) for _ in range(3))
    state = LoopState(steps_per_epoch=10)
    first = GradientAccumulation(3)
    first.on_train_begin(model=model, state=state)
    assert _feed(first, model, state, g1, 0).skip
    saved = first.state_dict()
    assert saved["count"] == 1 and isinstance(saved["sum"], np.ndarray)

    second = GradientAccumulation(3)
    if restore_before_train_begin:
        second.load_state_dict(saved)
        second.on_train_begin(model=model, state=state)
    else:
        second.on_train_begin(model=model, state=state)
        second.load_state_dict(saved)
    saved["sum"][...] = 0.0  # the plugin keeps its own copy
    assert _feed(second, model, state, g2, 1).skip
    assert not _feed(second, model, state, g3, 2).skip
    np.testing.assert_allclose(model.flat_gradients, (g1 + g2 + g3) / 3, rtol=1e-12)
    assert second.state_dict() == {"count": 0, "sum": None, "loss_sum": 0.0, "samples": 0}


def test_last_batch_of_an_epoch_closes_the_window(rng: np.random.Generator) -> None:
    model = _linear(SGD())
    g1, g2 = (rng.normal(size=model.flat_gradients.size) for _ in range(2))
    state = LoopState(steps_per_epoch=5)
    plugin = GradientAccumulation(4)
    plugin.on_train_begin(model=model, state=state)
    assert _feed(plugin, model, state, g1, 3).skip
    assert not _feed(plugin, model, state, g2, 4).skip
    np.testing.assert_allclose(model.flat_gradients, (g1 + g2) / 2, rtol=1e-12)


def test_load_state_dict_rejects_a_sum_of_another_size() -> None:
    model = _linear(SGD())
    plugin = GradientAccumulation(2)
    plugin.on_train_begin(model=model, state=LoopState())
    with pytest.raises(CheckpointError, match=r"shape \(3,\).*shape \(10,\).*Resume with"):
        plugin.load_state_dict(
            {"count": 1, "sum": np.zeros(3), "loss_sum": 1.0, "samples": 4}
        )
    assert plugin.pending == 0
    late = GradientAccumulation(2)
    late.load_state_dict({"count": 1, "sum": np.zeros(3), "loss_sum": 1.0, "samples": 4})
    with pytest.raises(CheckpointError, match=r"shape \(3,\)"):
        late.on_train_begin(model=model, state=LoopState())


# --- construction and entry point ---------------------------------------------------------


def test_steps_must_be_a_positive_int() -> None:
    with pytest.raises(
        ConfigError, match=r"GradientAccumulation got steps=0; expected an int > 0"
    ):
        GradientAccumulation(0)
    with pytest.raises(
        TypeError, match=r"steps=2\.5 of type float; expected a positive int"
    ):
        GradientAccumulation(2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"steps=True of type bool"):
        GradientAccumulation(True)


def test_enabled_by_name_it_defaults_to_steps_1_and_changes_nothing(
    rng: np.random.Generator,
) -> None:
    x, y = _data(rng, 12)
    named, plain = _linear(SGD(learning_rate=0.1)), _linear(SGD(learning_rate=0.1), seed=7)
    plain.set_weights(named.get_weights())
    recorder = Recorder()
    named.fit(
        x,
        y,
        batch_size=4,
        shuffle=False,
        verbose=0,
        plugins=["gradient_accumulation", recorder],
    )
    plain.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    (plugin,) = [p for p in recorder.plugins if isinstance(p, GradientAccumulation)]
    assert plugin.steps == 1
    assert recorder.applied == 3
    for a, b in zip(named.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
