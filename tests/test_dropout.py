from __future__ import annotations

import numpy as np
import pytest

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.regularization import Dropout
from loopkit.testing import numerical_gradient


def test_dropout_backward_matches_finite_differences_with_the_mask_held_fixed(rng):
    layer = Dropout(0.4)
    layer.setup((6,), np.float64, rng)
    x = rng.standard_normal((4, 6))
    dy = rng.standard_normal((4, 6))

    def loss() -> float:
        layer.rng = np.random.default_rng(99)  # the same mask on every evaluation
        return float(np.sum(layer.forward(x, training=True) * dy))

    loss()
    dx = np.array(layer.backward(dy), copy=True)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)


def test_dropout_training_output_and_backward_use_one_inverted_mask(rng):
    rate = 0.25
    layer = Dropout(rate)
    layer.setup((50,), np.float64, rng)
    x = rng.uniform(0.5, 1.5, (8, 50))  # never zero, so zeros in y mark dropped units
    y = np.array(layer.forward(x, training=True), copy=True)
    kept = y != 0
    assert 0 < kept.sum() < kept.size
    np.testing.assert_allclose(y, np.where(kept, x / (1 - rate), 0.0), rtol=1e-12)
    dy = rng.standard_normal((8, 50))
    np.testing.assert_allclose(layer.backward(dy), np.where(kept, dy / (1 - rate), 0.0))


def test_dropout_is_the_identity_at_inference(rng):
    layer = Dropout(0.5)
    layer.setup((3, 4), np.float64, rng)
    x = rng.standard_normal((2, 3, 4))
    dy = rng.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    np.testing.assert_array_equal(layer.backward(dy), dy)


def test_dropout_with_rate_zero_is_the_identity_while_training(rng):
    layer = Dropout(0.0)
    layer.setup((5,), np.float64, rng)
    x = rng.standard_normal((3, 5))
    np.testing.assert_array_equal(layer.forward(x, training=True), x)
    np.testing.assert_array_equal(layer.backward(x), x)


def test_dropout_keeps_about_one_minus_rate_of_units_and_keeps_the_mean(rng):
    rate = 0.3
    layer = Dropout(rate)
    layer.setup((500,), np.float32, rng)
    x = np.ones((400, 500), np.float32)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    # 200000 Bernoulli(0.7) draws: the standard error of the fraction is about 0.001
    assert abs(np.mean(y != 0) - (1 - rate)) < 0.01
    assert abs(float(np.mean(y)) - 1.0) < 0.015
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / (1 - rate)], rtol=1e-6)


def test_dropout_with_the_same_seed_draws_the_same_masks(rng):
    x = np.ones((10, 20))
    a, b, c = Dropout(0.5, seed=3), Dropout(0.5, seed=3), Dropout(0.5, seed=4)
    a.setup((20,), np.float64, np.random.default_rng(1))
    b.setup((20,), np.float64, np.random.default_rng(2))
    c.setup((20,), np.float64, np.random.default_rng(1))
    first = np.array(a.forward(x, training=True), copy=True)
    np.testing.assert_array_equal(first, b.forward(x, training=True))
    assert not np.array_equal(first, c.forward(x, training=True))
    # a new mask each batch, reproduced batch for batch
    second = np.array(a.forward(x, training=True), copy=True)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(second, b.forward(x, training=True))


def test_dropout_without_a_seed_draws_masks_from_the_layer_generator():
    x = np.ones((10, 20))
    a, b = Dropout(0.5), Dropout(0.5)
    a.setup((20,), np.float64, np.random.default_rng(5))
    b.setup((20,), np.float64, np.random.default_rng(5))
    np.testing.assert_array_equal(a.forward(x, training=True), b.forward(x, training=True))


def test_dropout_noise_shape_shares_the_mask_along_axes_of_size_one(rng):
    layer = Dropout(0.5, noise_shape=(None, 1, 8))
    layer.setup((6, 8), np.float64, rng)
    x = np.ones((4, 6, 8))
    y = layer.forward(x, training=True)
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1, :], y.shape))
    assert not np.array_equal(y[0], y[1])  # still one mask per sample


def test_dropout_noise_shape_with_a_fixed_batch_size_handles_a_short_batch(rng):
    layer = Dropout(0.5, noise_shape=(32, 1))
    layer.setup((5,), np.float64, rng)
    y = layer.forward(np.ones((3, 5)), training=True)
    assert y.shape == (3, 5)
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1], y.shape))


def test_dropout_backward_returns_none_when_no_input_gradient_is_needed(rng):
    layer = Dropout(0.5)
    layer.setup((4,), np.float64, rng)
    layer.input_grad_needed = False
    layer.forward(np.ones((2, 4)), training=True)
    assert layer.backward(np.ones((2, 4))) is None


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_dropout_rejects_a_rate_outside_zero_to_one(rate):
    with pytest.raises(ConfigError, match=rf"Dropout got rate={rate}; .*\[0.0, 1.0\)"):
        Dropout(rate)


def test_dropout_rejects_a_rate_that_is_not_a_number():
    with pytest.raises(TypeError, match=r"rate='0.5' of type str; expected a number"):
        Dropout("0.5")


def test_dropout_rejects_a_bad_seed():
    with pytest.raises(ConfigError, match=r"seed=-1; expected a non-negative int"):
        Dropout(0.5, seed=-1)
    with pytest.raises(TypeError, match=r"seed='a' of type str; expected a non-negative"):
        Dropout(0.5, seed="a")


def test_dropout_rejects_a_noise_shape_that_does_not_fit_the_input(rng):
    layer = Dropout(0.5, noise_shape=(None, 3))
    with pytest.raises(
        ShapeError,
        match=r"Dropout layer 'dropout' got noise_shape=\(None, 3\) for inputs of shape "
        r"\(None, 4\); .* e\.g\. \(None, 4\)",
    ):
        layer.setup((4,), np.float64, rng)
    with pytest.raises(ShapeError, match=r"noise_shape=\(None, 1\) for inputs of shape"):
        Dropout(0.5, noise_shape=(None, 1)).setup((2, 4), np.float64, rng)


def test_dropout_rejects_a_noise_shape_that_is_not_a_tuple():
    with pytest.raises(TypeError, match=r"noise_shape=5 of type int; expected a tuple"):
        Dropout(0.5, noise_shape=5)


@pytest.mark.parametrize(
    "noise_shape", [(None, 0), (None, "a"), (None, 2.5), (None, True), ()]
)
def test_noise_shape_entries_must_be_none_or_positive_ints(noise_shape: tuple) -> None:
    with pytest.raises(
        ConfigError, match=r"noise_shape=.*; expected a non-empty tuple whose"
    ):
        Dropout(0.5, noise_shape=noise_shape)


def test_spatial_dropout_1d_drops_whole_channels_for_every_step(rng):
    from loopkit.layers import SpatialDropout1D

    layer = SpatialDropout1D(0.5, seed=3)
    layer.setup((7, 40), np.float64, rng)
    x = rng.uniform(0.5, 1.5, (4, 7, 40))
    y = layer.forward(x, training=True)
    kept = y != 0
    assert (kept == kept[:, :1, :]).all()  # the same channels at every step
    assert 0 < kept[:, 0].sum() < kept[:, 0].size
    np.testing.assert_allclose(y, np.where(kept, 2 * x, 0.0), rtol=1e-12)
    np.testing.assert_array_equal(layer.forward(x, training=False), x)


def test_spatial_dropout_1d_backward_matches_finite_differences(rng):
    from loopkit.layers import SpatialDropout1D

    layer = SpatialDropout1D(0.3)
    layer.setup((5, 6), np.float64, rng)
    x = rng.standard_normal((3, 5, 6))
    dy = rng.standard_normal((3, 5, 6))

    def loss() -> float:
        layer.rng = np.random.default_rng(7)  # the same mask on every evaluation
        return float(np.sum(layer.forward(x, training=True) * dy))

    loss()
    dx = np.array(layer.backward(dy), copy=True)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)


def test_spatial_dropout_1d_takes_keras_arguments_and_round_trips():
    from loopkit import layers

    layer = layers.SpatialDropout1D(0.2, seed=1)
    assert layer.get_config()["rate"] == 0.2
    assert "noise_shape" not in layer.get_config()
    rebuilt = layers.deserialize(layers.serialize(layer))
    assert type(rebuilt) is layers.SpatialDropout1D
    assert rebuilt.get_config() == layer.get_config()
    with pytest.raises(TypeError):
        layers.SpatialDropout1D(0.2, noise_shape=(None, 1, 3))  # Keras takes none either


def test_spatial_dropout_1d_refuses_inputs_that_are_not_sequences(rng):
    from loopkit.layers import SpatialDropout1D

    with pytest.raises(ShapeError, match=r"\(steps, channels\), got \(4,\)"):
        SpatialDropout1D(0.5).setup((4,), np.float64, rng)
    with pytest.raises(ConfigError):
        SpatialDropout1D(1.0)


def test_gaussian_noise_adds_noise_of_stddev_in_training_only(rng):
    from loopkit.layers import GaussianNoise

    layer = GaussianNoise(0.5, seed=1)
    layer.setup((200, 50), np.float64, rng)
    x = rng.standard_normal((4, 200, 50))
    noise = layer.forward(x, training=True) - x
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.5) < 0.01
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    dy = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(dy), dy)


def test_gaussian_dropout_multiplies_by_noise_of_mean_one(rng):
    from loopkit.layers import GaussianDropout

    layer = GaussianDropout(0.2, seed=2)
    layer.setup((200, 50), np.float64, rng)
    x = np.ones((4, 200, 50))
    y = layer.forward(x, training=True)
    assert abs(y.mean() - 1.0) < 0.01 and abs(y.std() - np.sqrt(0.2 / 0.8)) < 0.01
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    for rate in (0.0, 1.0):  # as Keras: no noise at the ends of the range
        edge = GaussianDropout(rate)
        edge.setup((3,), np.float64, rng)
        np.testing.assert_array_equal(
            edge.forward(x[0, :2, :3], training=True), x[0, :2, :3]
        )


def test_gaussian_dropout_backward_matches_finite_differences(rng):
    from loopkit.layers import GaussianDropout

    layer = GaussianDropout(0.3)
    layer.setup((5, 6), np.float64, rng)
    x, dy = rng.standard_normal((3, 5, 6)), rng.standard_normal((3, 5, 6))

    def loss() -> float:
        layer.rng = np.random.default_rng(7)  # the same noise on every evaluation
        return float(np.sum(layer.forward(x, training=True) * dy))

    loss()
    dx = np.array(layer.backward(dy), copy=True)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)


def test_gaussian_layers_round_trip_refuse_bad_values_and_pass_masks(rng):
    import loopkit as lk
    from loopkit import layers

    for layer in (layers.GaussianNoise(0.1, seed=3), layers.GaussianDropout(0.4)):
        rebuilt = layers.deserialize(layers.serialize(layer))
        assert type(rebuilt) is type(layer)
        assert rebuilt.get_config() == layer.get_config()
    with pytest.raises(ConfigError):
        layers.GaussianNoise(-0.1)
    with pytest.raises(ConfigError):
        layers.GaussianDropout(1.5)

    def model(steps: int) -> lk.Sequential:
        return lk.Sequential(
            [
                layers.Embedding(10, 4, mask_zero=True, input_shape=(steps,)),
                layers.GaussianNoise(0.1),
                layers.GaussianDropout(0.1),
                layers.LSTM(3),
            ]
        )

    short, padded = model(2), model(5)
    padded.set_weights(short.get_weights())
    ids = np.array([[3, 4]])
    np.testing.assert_allclose(
        padded.predict(np.pad(ids, ((0, 0), (0, 3))), verbose=0),
        short.predict(ids, verbose=0),
        atol=1e-6,
    )
