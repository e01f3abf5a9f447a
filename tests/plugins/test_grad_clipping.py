"""Tests for GradientClipping: global norm and value clipping against hand computations."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from attrs import define, field

import loopkit
from loopkit import ConfigError, LoopState, OptimizerStep, Sequential, hookimpl
from loopkit.layers import Dense
from loopkit.optimizers import SGD
from loopkit.plugins import GradientClipping


def _model(seed: int = 0, dtype: str = "float64") -> Sequential:
    loopkit.set_random_seed(seed)
    model = Sequential(
        [Dense(3, input_shape=(4,), activation="tanh"), Dense(2)], dtype=dtype
    )
    model.compile(optimizer=SGD(learning_rate=0.1), loss="mse")
    return model


def _clip(
    plugin: GradientClipping, model: Sequential, grads: np.ndarray, skip: bool = False
) -> np.ndarray:
    model.flat_gradients[...] = grads
    step = OptimizerStep(loss=0.0, batch_size=1, skip=skip)
    plugin.on_before_optimizer_step(model=model, step=step)
    return model.flat_gradients.copy()


def test_global_norm_above_max_norm_is_scaled_down_to_it_keeping_the_direction(
    rng: np.random.Generator,
) -> None:
    model = _model()
    grads = rng.normal(size=model.flat_gradients.size) * 10.0
    norm = math.sqrt(sum(float(g) ** 2 for g in grads))  # by hand, element by element
    plugin = GradientClipping(max_norm=2.0)
    clipped = _clip(plugin, model, grads)
    np.testing.assert_allclose(clipped, grads * (2.0 / norm), rtol=1e-12)
    assert math.sqrt(sum(float(g) ** 2 for g in clipped)) == pytest.approx(2.0, rel=1e-12)
    cosine = float(clipped @ grads) / (np.linalg.norm(clipped) * np.linalg.norm(grads))
    assert cosine == pytest.approx(1.0, abs=1e-12)
    assert plugin.last_norm == pytest.approx(norm, rel=1e-12)


def test_global_norm_below_max_norm_leaves_the_gradients_unchanged(
    rng: np.random.Generator,
) -> None:
    model = _model()
    grads = rng.normal(size=model.flat_gradients.size) * 1e-3
    plugin = GradientClipping(max_norm=1.0)
    np.testing.assert_array_equal(_clip(plugin, model, grads), grads)
    assert plugin.last_norm == pytest.approx(float(np.sqrt(np.sum(grads**2))), rel=1e-12)


def test_clip_value_clips_each_element(rng: np.random.Generator) -> None:
    model = _model()
    grads = rng.normal(size=model.flat_gradients.size)
    clipped = _clip(GradientClipping(clip_value=0.5), model, grads)
    expected = [min(max(float(g), -0.5), 0.5) for g in grads]
    np.testing.assert_array_equal(clipped, expected)
    assert (np.abs(grads) > 0.5).any()


def test_both_limits_clip_values_first_then_the_norm(rng: np.random.Generator) -> None:
    model = _model()
    grads = rng.normal(size=model.flat_gradients.size) * 3.0
    plugin = GradientClipping(max_norm=1.0, clip_value=2.0)
    clipped = _clip(plugin, model, grads)
    by_value = np.array([min(max(float(g), -2.0), 2.0) for g in grads])
    norm = math.sqrt(sum(v**2 for v in by_value))
    assert norm > 1.0
    np.testing.assert_allclose(clipped, by_value / norm, rtol=1e-12)
    assert plugin.last_norm == pytest.approx(norm, rel=1e-12)


def test_skipped_step_is_left_untouched(rng: np.random.Generator) -> None:
    model = _model()
    grads = rng.normal(size=model.flat_gradients.size) * 10.0
    plugin = GradientClipping(max_norm=1.0, clip_value=0.1)
    np.testing.assert_array_equal(_clip(plugin, model, grads, skip=True), grads)
    assert plugin.last_norm is None


def test_only_trainable_spans_are_read_and_clipped(rng: np.random.Generator) -> None:
    model = _model()
    model.layers[0].trainable = False
    (span,) = model.trainable_spans
    grads = rng.normal(size=model.flat_gradients.size) * 10.0
    grads[: span.start] = 1e6  # frozen layer: huge, and must neither count nor change
    plugin = GradientClipping(max_norm=1.0, clip_value=5.0)
    clipped = _clip(plugin, model, grads)
    np.testing.assert_array_equal(clipped[: span.start], grads[: span.start])
    part = np.clip(grads[span], -5.0, 5.0)
    norm = math.sqrt(sum(float(g) ** 2 for g in part))
    np.testing.assert_allclose(clipped[span], part / norm, rtol=1e-12)
    assert plugin.last_norm == pytest.approx(norm, rel=1e-12)


def test_non_finite_norm_makes_every_trainable_gradient_nan(
    rng: np.random.Generator,
) -> None:
    model = _model(dtype="float32")
    grads = rng.normal(size=model.flat_gradients.size).astype(np.float32)
    grads[0] = 3e38  # squaring overflows float32: the norm is inf
    plugin = GradientClipping(max_norm=1.0)
    assert np.isnan(_clip(plugin, model, grads)).all()
    assert plugin.last_norm == math.inf


def test_float32_gradients_are_clipped_in_place_in_float32(
    rng: np.random.Generator,
) -> None:
    model = _model(dtype="float32")
    grads = (rng.normal(size=model.flat_gradients.size) * 10).astype(np.float32)
    clipped = _clip(GradientClipping(max_norm=1.0), model, grads)
    assert clipped.dtype == np.float32
    assert float(np.linalg.norm(clipped.astype(np.float64))) == pytest.approx(1.0, rel=1e-5)


def test_plugin_clipping_matches_the_optimizers_global_clipnorm(
    rng: np.random.Generator,
) -> None:
    x, y = rng.normal(size=(16, 4)), rng.normal(size=(16, 2)) * 50.0
    with_plugin = _model(seed=1)
    with_optimizer = _model(seed=2)
    with_optimizer.compile(
        optimizer=SGD(learning_rate=0.1, global_clipnorm=0.5), loss="mse"
    )
    with_optimizer.set_weights(with_plugin.get_weights())
    plugin = GradientClipping(max_norm=0.5)
    with_plugin.fit(
        x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, plugins=[plugin]
    )
    with_optimizer.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(with_plugin.get_weights(), with_optimizer.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert plugin.last_norm is not None and plugin.last_norm > 0.5


@define(eq=False, slots=False)
class Finder:
    plugins: list[Any] = field(factory=list)

    @hookimpl
    def on_train_begin(self, state: LoopState) -> None:
        assert state.hooks is not None
        self.plugins = state.hooks.originals()


def test_enabled_by_name_it_clips_the_global_norm_to_1(rng: np.random.Generator) -> None:
    x, y = rng.normal(size=(8, 4)), rng.normal(size=(8, 2)) * 50.0
    named = _model(seed=3)
    reference = _model(seed=4)
    reference.compile(optimizer=SGD(learning_rate=0.1, global_clipnorm=1.0), loss="mse")
    reference.set_weights(named.get_weights())
    finder = Finder()
    named.fit(
        x, y, batch_size=4, shuffle=False, verbose=0, plugins=["gradient_clipping", finder]
    )
    reference.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    (plugin,) = [p for p in finder.plugins if isinstance(p, GradientClipping)]
    assert (plugin.max_norm, plugin.clip_value) == (1.0, None)
    assert plugin.last_norm is not None and plugin.last_norm > 1.0
    for a, b in zip(named.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_defaults_clip_the_norm_to_1_unless_only_clip_value_is_given() -> None:
    assert (GradientClipping().max_norm, GradientClipping().clip_value) == (1.0, None)
    only_value = GradientClipping(clip_value=0.5)
    assert (only_value.max_norm, only_value.clip_value) == (None, 0.5)
    both = GradientClipping(max_norm=3, clip_value=2)
    assert (both.max_norm, both.clip_value) == (3.0, 2.0)


@pytest.mark.parametrize("name", ["max_norm", "clip_value"])
@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, math.inf])
def test_limits_must_be_finite_and_positive(name: str, value: float) -> None:
    with pytest.raises(
        ConfigError,
        match=rf"GradientClipping got {name}={value!r}; expected a (finite )?number",
    ):
        GradientClipping(**{name: value})


@pytest.mark.parametrize("name", ["max_norm", "clip_value"])
def test_limits_must_be_numbers(name: str) -> None:
    with pytest.raises(TypeError, match=rf"{name}='1\.0' of type str; expected a number"):
        GradientClipping(**{name: "1.0"})
    with pytest.raises(TypeError, match=rf"{name}=True of type bool"):
        GradientClipping(**{name: True})
