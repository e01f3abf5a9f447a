"""ZeroPadding2D and Cropping2D: values, gradients, shapes, configs, errors, training."""

from __future__ import annotations

import numpy as np
import pytest

import loopkit
from loopkit import layers
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers import Cropping2D, Dense, ZeroPadding2D
from loopkit.testing import check_layer_gradients

# --- argument forms ----------------------------------------------------------------


@pytest.mark.parametrize("cls", [ZeroPadding2D, Cropping2D])
@pytest.mark.parametrize(
    ("given", "sides"),
    [
        (2, ((2, 2), (2, 2))),
        ((1, 3), ((1, 1), (3, 3))),
        (((1, 2), (3, 0)), ((1, 2), (3, 0))),
        ([[0, 1], [2, 3]], ((0, 1), (2, 3))),  # as JSON gives it back
        ((1, (2, 3)), ((1, 1), (2, 3))),  # Keras takes an int per axis too
    ],
)
def test_the_three_keras_spellings_become_top_bottom_left_right(cls, given, sides):
    assert getattr(cls(given), "padding" if cls is ZeroPadding2D else "cropping") == sides


def test_keras_defaults():
    assert ZeroPadding2D().padding == ((1, 1), (1, 1))
    assert Cropping2D().cropping == ((0, 0), (0, 0))
    assert ZeroPadding2D().get_config()["data_format"] is None


# --- values ------------------------------------------------------------------------


def test_zero_padding2d_frames_the_image_with_zeros(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    layer = ZeroPadding2D(((1, 2), (3, 0)))
    assert layer.setup((3, 4, 5)) == (6, 7, 5)
    y = layer.forward(x)
    expected = np.zeros((2, 6, 7, 5), np.float32)  # hand-placed, not np.pad
    expected[:, 1:4, 3:7] = x
    np.testing.assert_array_equal(y, expected)
    assert y.dtype == np.float32
    y2 = layer.forward(2 * x[:1])  # a reused, smaller buffer keeps its zeros
    np.testing.assert_array_equal(y2, 2 * expected[:1])


def test_zero_padding2d_keras_docstring_example():
    # keras.layers.ZeroPadding2D docstring: x = arange(4).reshape(1, 1, 2, 2),
    # ZeroPadding2D(padding=1) gives rows [0 0 0 0], [0 x00 x01 0], [0 x10 x11 0]...
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    y = ZeroPadding2D(padding=1)(x)
    assert y.shape == (1, 3, 4, 2)
    np.testing.assert_array_equal(y[0, 1], [[0, 0], [0, 1], [2, 3], [0, 0]])
    np.testing.assert_array_equal(y[0, 0], np.zeros((4, 2)))
    np.testing.assert_array_equal(y[0, 2], np.zeros((4, 2)))


def test_cropping2d_keeps_the_middle(rng):
    x = rng.standard_normal((2, 7, 6, 3)).astype(np.float32)
    layer = Cropping2D(((2, 1), (0, 4)))
    assert layer.setup((7, 6, 3)) == (4, 2, 3)
    y = layer.forward(x)
    np.testing.assert_array_equal(y, x[:, 2:6, 0:2])


def test_cropping2d_with_the_default_is_the_identity(rng):
    x = rng.standard_normal((2, 3, 3, 1)).astype(np.float32)
    layer = Cropping2D()
    assert layer.setup((3, 3, 1)) == (3, 3, 1)
    np.testing.assert_array_equal(layer.forward(x), x)


# --- gradients ---------------------------------------------------------------------


@pytest.mark.parametrize("padding", [1, (0, 2), ((1, 0), (2, 3)), ((0, 0), (0, 0))])
def test_zero_padding2d_backward_matches_finite_differences(rng, padding):
    check_layer_gradients(ZeroPadding2D(padding), (3, 2, 2), rng=rng)


@pytest.mark.parametrize("cropping", [1, (0, 2), ((1, 0), (2, 1)), ((0, 0), (0, 0))])
def test_cropping2d_backward_matches_finite_differences(rng, cropping):
    check_layer_gradients(Cropping2D(cropping), (4, 5, 2), rng=rng)


# --- shapes in models --------------------------------------------------------------


def test_shapes_in_a_sequential_model(rng):
    model = loopkit.Sequential(
        [
            loopkit.Input(shape=(8, 6, 3)),
            ZeroPadding2D(((1, 2), (0, 3))),
            Cropping2D(((2, 0), (1, 1))),
        ]
    )
    assert model.output_shape == (9, 7, 3)
    x = rng.standard_normal((4, 8, 6, 3)).astype(np.float32)
    y = model.predict(x, verbose=0)
    np.testing.assert_array_equal(
        y, np.pad(x, ((0, 0), (1, 2), (0, 3), (0, 0)))[:, 2:, 1:-1]
    )


def test_shapes_in_a_functional_model(rng):
    inputs = loopkit.Input(shape=(5, 5, 2))
    padded = ZeroPadding2D(2)(inputs)
    cropped = Cropping2D((1, 3))(padded)
    model = loopkit.Model(inputs, [padded, cropped])
    assert tuple(padded.shape[1:]) == (9, 9, 2)
    assert tuple(cropped.shape[1:]) == (7, 3, 2)
    x = rng.standard_normal((3, 5, 5, 2)).astype(np.float32)
    p, c = model.predict(x, verbose=0)
    assert p.shape == (3, 9, 9, 2) and c.shape == (3, 7, 3, 2)
    np.testing.assert_array_equal(c, p[:, 1:8, 3:6])


# --- configs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer", [ZeroPadding2D(((1, 2), (3, 0))), Cropping2D((2, 1)), ZeroPadding2D()]
)
def test_configs_round_trip(layer):
    config = layer.get_config()
    rebuilt = layers.deserialize(layers.serialize(layer))
    assert type(rebuilt) is type(layer)
    assert rebuilt.get_config() == config
    assert type(layer).from_config(config).get_config() == config


def test_a_saved_model_with_padding_and_cropping_loads_and_predicts(rng, tmp_path):
    from loopkit.saving.model_files import load_model

    model = loopkit.Sequential(
        [
            loopkit.Input(shape=(4, 4, 1)),
            ZeroPadding2D(((1, 0), (0, 2))),
            Cropping2D(((0, 1), (1, 0))),
            layers.Flatten(),
            Dense(2),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    assert loaded.layers[0].padding == ((1, 0), (0, 2))
    assert loaded.layers[1].cropping == ((0, 1), (1, 0))
    x = rng.standard_normal((3, 4, 4, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


# --- errors ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ZeroPadding2D, Cropping2D])
@pytest.mark.parametrize(
    "value", [-1, (1, -2), ((0, 1), (-1, 0)), (1, 2, 3), ((1, 2, 3), (0, 0)), 1.5, "1"]
)
def test_bad_sizes_are_refused(cls, value):
    with pytest.raises(ConfigError, match=r"expected ints >= 0 .*\(\(top, bottom\)"):
        cls(value)


@pytest.mark.parametrize("cls", [ZeroPadding2D, Cropping2D])
def test_channels_first_is_refused(cls):
    with pytest.raises(ConfigError, match=r"channels-last only"):
        cls(1, data_format="channels_first")
    with pytest.raises(ConfigError, match=r"expected None or 'channels_last'"):
        cls(1, data_format="channels_lats")


@pytest.mark.parametrize("cls", [ZeroPadding2D, Cropping2D])
def test_inputs_that_are_not_images_are_refused(cls):
    with pytest.raises(ShapeError, match=r"\(height, width, channels\)"):
        cls(1).setup((4, 4))


@pytest.mark.parametrize(
    ("cropping", "pattern"),
    [
        (((2, 2), (0, 0)), r"cropping 4 of 4 rows leaves 0"),
        (((0, 0), (3, 3)), r"cropping 6 of 5 columns leaves -1"),
    ],
)
def test_cropping_at_least_the_whole_image_is_refused_at_build(cropping, pattern):
    with pytest.raises(ShapeError, match=pattern):
        Cropping2D(cropping).setup((4, 5, 1))
    with pytest.raises(ShapeError, match=pattern):
        loopkit.Sequential([loopkit.Input(shape=(4, 5, 1)), Cropping2D(cropping)])


# --- training ----------------------------------------------------------------------


def test_a_tiny_model_with_padding_and_cropping_trains(rng):
    x = rng.standard_normal((32, 6, 6, 1)).astype(np.float32)
    target = x[:, 1:-1, 1:-1].mean(axis=(1, 2))
    model = loopkit.Sequential(
        [
            loopkit.Input(shape=(6, 6, 1)),
            ZeroPadding2D(1),
            layers.Conv2D(2, 3),
            Cropping2D(1),
            layers.GlobalAveragePooling2D(),
            Dense(1),
        ]
    )
    model.compile(optimizer=loopkit.optimizers.SGD(0.1), loss="mse")
    losses = model.fit(x, target, epochs=10, verbose=0).history["loss"]
    assert losses[-1] < losses[0]


def test_images_of_any_size_pass_and_too_small_ones_are_named(rng):
    padding, cropping = ZeroPadding2D(1), Cropping2D(((1, 1), (2, 0)))
    assert padding.setup((None, 4, 3)) == (None, 6, 3)
    assert cropping.setup((None, None, 3)) == (None, None, 3)
    x = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(cropping.forward(x), x[:, 1:3, 2:])
    with pytest.raises(ShapeError, match=r"cropping 2 of 2 rows leaves 0"):
        cropping.forward(x[:, :2])
