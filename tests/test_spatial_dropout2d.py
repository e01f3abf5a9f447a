"""SpatialDropout2D: whole channels dropped per sample, scaling, gradients, configs."""

from __future__ import annotations

import numpy as np
import pytest

import loopkit
from loopkit import layers
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers import Dense, SpatialDropout2D
from loopkit.testing import numerical_gradient


def test_drops_whole_channels_per_sample_and_scales_the_rest(rng):
    layer = SpatialDropout2D(0.5, seed=3)
    layer.setup((5, 4, 40), np.float64, rng)
    x = rng.uniform(0.5, 1.5, (6, 5, 4, 40))  # never zero, so zeros are drops
    y = layer.forward(x, training=True)
    kept = y != 0
    assert (kept == kept[:, :1, :1, :]).all()  # one decision per sample and channel
    per_map = kept[:, 0, 0]
    assert 0 < per_map.sum() < per_map.size
    assert (per_map != per_map[:1]).any()  # samples get their own masks
    np.testing.assert_allclose(y, np.where(kept, 2 * x, 0.0), rtol=1e-12)


def test_the_drop_fraction_is_rate_and_the_mean_is_kept(rng):
    layer = SpatialDropout2D(0.3, seed=0)
    layer.setup((2, 2, 500), np.float64, rng)
    x = np.ones((40, 2, 2, 500))
    y = layer.forward(x, training=True)
    dropped = (y[:, 0, 0] == 0).mean()
    assert abs(dropped - 0.3) < 0.01  # 20,000 draws: sd 0.0032
    assert abs(y.mean() - 1.0) < 0.02
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-12)


def test_is_the_identity_at_inference_and_for_rate_zero(rng):
    x = rng.standard_normal((3, 4, 4, 2))
    layer = SpatialDropout2D(0.5)
    layer.setup((4, 4, 2), np.float64, rng)
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    dy = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(dy), dy)
    zero = SpatialDropout2D(0.0)
    zero.setup((4, 4, 2), np.float64, rng)
    np.testing.assert_array_equal(zero.forward(x, training=True), x)


def test_the_same_seed_gives_the_same_masks(rng):
    x = rng.uniform(0.5, 1.5, (4, 3, 3, 8)).astype(np.float32)
    first, second = SpatialDropout2D(0.5, seed=11), SpatialDropout2D(0.5, seed=11)
    first.setup((3, 3, 8))
    second.setup((3, 3, 8))
    np.testing.assert_array_equal(
        first.forward(x, training=True), second.forward(x, training=True)
    )


def test_backward_matches_finite_differences(rng):
    layer = SpatialDropout2D(0.4)
    layer.setup((3, 4, 5), np.float64, rng)
    x = rng.standard_normal((3, 3, 4, 5))
    dy = rng.standard_normal((3, 3, 4, 5))

    def loss() -> float:
        layer.rng = np.random.default_rng(7)  # the same mask on every evaluation
        return float(np.sum(layer.forward(x, training=True) * dy))

    loss()
    dx = np.array(layer.backward(dy), copy=True)
    assert (dx == 0).any() and (dx != 0).any()  # some channels dropped, some kept
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)


def test_shapes_in_sequential_and_functional_models(rng):
    model = loopkit.Sequential([loopkit.Input(shape=(5, 6, 3)), SpatialDropout2D(0.2)])
    assert model.output_shape == (5, 6, 3)
    inputs = loopkit.Input(shape=(4, 4, 2))
    out = SpatialDropout2D(0.5)(inputs)
    assert tuple(out.shape[1:]) == (4, 4, 2)
    functional = loopkit.Model(inputs, out)
    x = rng.standard_normal((2, 4, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(functional.predict(x, verbose=0), x)


def test_takes_keras_arguments_and_round_trips():
    layer = SpatialDropout2D(0.2, seed=1)
    config = layer.get_config()
    assert config["rate"] == 0.2 and config["seed"] == 1 and config["data_format"] is None
    assert "noise_shape" not in config
    rebuilt = layers.deserialize(layers.serialize(layer))
    assert type(rebuilt) is SpatialDropout2D
    assert rebuilt.get_config() == config
    assert SpatialDropout2D.from_config(config).get_config() == config
    assert SpatialDropout2D(0.1, "channels_last", 5).seed == 5  # Keras's order
    with pytest.raises(TypeError):
        SpatialDropout2D(0.2, noise_shape=(None, 1, 1, 3))  # Keras takes none either


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_a_rate_outside_zero_one_is_refused(rate):
    with pytest.raises(ConfigError, match="rate"):
        SpatialDropout2D(rate)


def test_channels_first_and_non_images_are_refused(rng):
    with pytest.raises(ConfigError, match=r"channels-last only"):
        SpatialDropout2D(0.5, data_format="channels_first")
    with pytest.raises(ShapeError, match=r"\(height, width, channels\)"):
        SpatialDropout2D(0.5).setup((4, 3), np.float64, rng)
    with pytest.raises(TypeError, match=r"seed"):
        SpatialDropout2D(0.5, seed=1.5)


def test_a_tiny_model_with_spatial_dropout_trains(rng):
    x = rng.standard_normal((64, 6, 6, 1)).astype(np.float32)
    target = x.mean(axis=(1, 2))
    model = loopkit.Sequential(
        [
            loopkit.Input(shape=(6, 6, 1)),
            layers.Conv2D(8, 3, padding="same"),
            SpatialDropout2D(0.25, seed=0),
            layers.GlobalAveragePooling2D(),
            Dense(1),
        ]
    )
    model.compile(optimizer=loopkit.optimizers.SGD(0.1), loss="mse")
    before = model.evaluate(x, target, verbose=0)
    model.fit(x, target, epochs=10, verbose=0)
    assert model.evaluate(x, target, verbose=0) < before
