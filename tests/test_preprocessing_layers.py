"""Rescaling, Normalization and UpSampling2D: values, gradients, configs, saving, errors."""

from __future__ import annotations

import numpy as np
import pytest

import loopkit
from loopkit import layers
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers import Dense, Normalization, Rescaling, UpSampling2D
from loopkit.saving.model_files import load_model
from loopkit.testing import check_layer_gradients


def _run(layer, x):
    layer.setup(x.shape[1:])
    return layer.forward(x.astype(np.float32)).copy()


# --- Rescaling ----------------------------------------------------------------------


def test_rescaling_multiplies_then_adds_the_offset(rng):
    x = rng.uniform(0, 255, (4, 3, 3, 2)).astype(np.float32)
    y = _run(Rescaling(1 / 127.5, offset=-1), x)
    np.testing.assert_allclose(y, x / 127.5 - 1.0, rtol=1e-6, atol=1e-6)
    assert y.min() >= -1.0 and y.max() <= 1.0


def test_rescaling_takes_a_scale_and_offset_per_channel(rng):
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    scale, offset = [1.0, 2.0, -0.5], [0.0, 1.0, 3.0]
    y = _run(Rescaling(scale, offset=offset), x)
    expected = x * np.array(scale, np.float32) + np.array(offset, np.float32)
    np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_rescaling_has_no_weights_and_keras_defaults():
    layer = Rescaling(0.5)
    layer.setup((3,))
    assert layer.weights == [] and layer.get_weights() == []
    assert layer.offset == 0.0 and layer.get_config()["scale"] == 0.5


@pytest.mark.parametrize("scale", [0.25, [1.0, -2.0, 3.0]])
def test_rescaling_backward_matches_finite_differences(rng, scale):
    check_layer_gradients(Rescaling(scale, offset=0.5), (2, 3), rng=rng)


def test_rescaling_refuses_a_scale_that_does_not_broadcast_to_a_sample():
    with pytest.raises(ShapeError, match=r"scale of shape \(4,\).*\(2, 3\)"):
        Rescaling([1.0, 2.0, 3.0, 4.0]).setup((2, 3))


def test_rescaling_refuses_a_scale_that_is_not_a_number():
    with pytest.raises(TypeError, match=r"scale='x'.*expected a number"):
        Rescaling("x")


# --- Normalization ------------------------------------------------------------------


def test_normalization_adapt_gives_numpys_mean_and_variance_per_feature(rng):
    data = rng.normal(3.0, 2.0, (50, 4)).astype(np.float32)
    layer = Normalization()
    layer.adapt(data)
    mean, variance, count = layer.get_weights()
    np.testing.assert_allclose(mean, data.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(variance, data.var(axis=0), rtol=1e-5)
    assert count == 50
    assert [w.name for w in layer.weights] == ["mean", "variance", "count"]
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 3


def test_normalization_adapt_takes_a_list_or_generator_of_batches_as_keras(rng):
    data = rng.normal(1.0, 2.0, (12, 3))
    batches = Normalization()
    batches.adapt([data[:5], data[5:]])
    generated = Normalization()
    generated.adapt((b, b[:, :1]) for b in np.split(data, 3))
    for layer in (batches, generated):
        np.testing.assert_allclose(layer.get_weights()[0], data.mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(layer.get_weights()[1], data.var(axis=0), rtol=1e-5)
    with pytest.raises(ConfigError, match=r"got no batches"):
        Normalization().adapt(iter([]))


def test_normalization_adapt_keeps_the_given_axes_and_reduces_the_others(rng):
    data = rng.standard_normal((6, 3, 4, 2))
    layer = Normalization(axis=(1, -1))
    layer.adapt(data)
    mean, variance, _ = layer.get_weights()
    assert mean.shape == (3, 2)
    np.testing.assert_allclose(mean, data.mean(axis=(0, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(variance, data.var(axis=(0, 2)), rtol=1e-5)
    scalar = Normalization(axis=None)
    scalar.adapt(data)
    assert scalar.get_weights()[0].shape == ()
    np.testing.assert_allclose(scalar.get_weights()[1], data.var(), rtol=1e-5)


def test_normalization_standardizes_as_keras_documents():
    # the docstring example of keras.layers.Normalization
    adapt_data = np.array(
        [[0.0, 7.0, 4.0], [2.0, 9.0, 6.0], [0.0, 7.0, 4.0], [2.0, 9.0, 6.0]]
    )
    layer = Normalization(axis=-1)
    layer.adapt(adapt_data)
    np.testing.assert_allclose(layer(np.array([[0.0, 7.0, 4.0]])), [[-1.0, -1.0, -1.0]])
    inverse = Normalization(axis=-1, invert=True)
    inverse.adapt(adapt_data)
    np.testing.assert_allclose(inverse(np.array([[1.0, 2.0, 3.0]])), [[2.0, 10.0, 8.0]])


def test_normalization_with_given_mean_and_variance_has_no_weights():
    layer = Normalization(mean=3.0, variance=2.0)
    y = layer(np.array([[1.0], [2.0], [3.0]]))
    np.testing.assert_allclose(
        y, (np.array([[1.0], [2.0], [3.0]]) - 3) / np.sqrt(2), rtol=1e-6
    )
    assert layer.weights == []


def test_normalization_given_statistics_are_right_aligned_to_the_kept_axes(rng):
    x = rng.standard_normal((3, 2, 4)).astype(np.float32)
    mean, variance = [1.0, 2.0, 3.0, 4.0], [1.0, 4.0, 9.0, 16.0]
    y = Normalization(mean=mean, variance=variance)(x)
    np.testing.assert_allclose(y, (x - np.array(mean)) / np.sqrt(variance), rtol=1e-5)


def test_normalization_divides_by_at_least_keras_epsilon():
    # sqrt(1e-20) = 1e-10 and 0 are below 1e-7: both divide by 1e-7 instead
    layer = Normalization(mean=[0.0, 0.0], variance=[0.0, 1e-20])
    y = layer(np.array([[1e-8, 2e-8]]))
    np.testing.assert_allclose(y, [[0.1, 0.2]], rtol=1e-5)


@pytest.mark.parametrize("invert", [False, True])
def test_normalization_backward_matches_finite_differences(rng, invert):
    layer = Normalization(mean=[0.5, -1.0, 2.0], variance=[0.25, 4.0, 9.0], invert=invert)
    check_layer_gradients(layer, (2, 3), rng=rng)


def test_normalization_adapted_backward_matches_finite_differences(rng):
    layer = Normalization()
    layer.adapt(rng.normal(1.0, 3.0, (20, 3)))
    results = check_layer_gradients(layer, (3,), rng=rng)
    assert set(results) == {"x"}  # the statistics are not trained


def test_normalization_in_a_model_trains_the_next_layer_and_keeps_its_statistics(rng):
    x = rng.normal(50.0, 10.0, (64, 3)).astype(np.float32)
    y = (x - 50.0) @ np.array([[0.1], [-0.2], [0.3]], np.float32)
    norm = Normalization()
    norm.adapt(x)
    model = loopkit.Sequential([loopkit.Input(shape=(3,)), norm, Dense(1)])
    before = [w.copy() for w in norm.get_weights()]
    model.compile(optimizer=loopkit.optimizers.SGD(0.1), loss="mse")
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.1 * losses[0]
    for kept, now in zip(before, norm.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)
    np.testing.assert_allclose(before[0], x.mean(axis=0), rtol=1e-5)


def test_normalization_survives_save_and_load_model(rng, tmp_path):
    x = rng.normal(5.0, 2.0, (32, 2, 3)).astype(np.float32)
    norm = Normalization(axis=-1)
    norm.adapt(x)
    model = loopkit.Sequential(
        [loopkit.Input(shape=(2, 3)), norm, layers.Flatten(), Dense(1)]
    )
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    for saved, restored in zip(
        norm.get_weights(), loaded.layers[0].get_weights(), strict=True
    ):
        np.testing.assert_array_equal(saved, restored)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_normalization_before_adapt_fails_at_predict_and_fit(rng):
    x = rng.standard_normal((8, 3)).astype(np.float32)
    model = loopkit.Sequential([loopkit.Input(shape=(3,)), Normalization(), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    weights = [w.copy() for w in model.get_weights()]
    match = r"no statistics: call layer\.adapt\(x_train\) before fit"
    with pytest.raises(ConfigError, match=match):
        model.predict(x, verbose=0)
    with pytest.raises(ConfigError, match=match):
        model.fit(x, x[:, :1], epochs=1, verbose=0)
    for kept, now in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)  # no step was taken


def test_normalization_adapt_inside_a_built_model_updates_it(rng):
    x = rng.normal(10.0, 3.0, (16, 2)).astype(np.float32)
    norm = Normalization()
    model = loopkit.Sequential([loopkit.Input(shape=(2,)), norm])
    norm.adapt(x)
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(out, (x - x.mean(0)) / x.std(0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"mean": 1.0}, ConfigError, r"mean=1\.0 and variance=None; pass both"),
        ({"mean": [1.0, 2.0], "variance": 1.0}, ConfigError, r"same shape"),
        ({"mean": [[1.0]], "variance": [[1.0]]}, ConfigError, r"at most 1 axes"),
        ({"mean": 0.0, "variance": -1.0}, ConfigError, r"variance=-1\.0"),
        ({"axis": "last"}, TypeError, r"axis='last'"),
        ({"invert": "yes"}, TypeError, r"invert"),
    ],
)
def test_normalization_refuses_bad_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        Normalization(**kwargs)


def test_normalization_refuses_the_batch_axis_and_mismatched_adapt_data(rng):
    with pytest.raises(ShapeError, match=r"axis=\(0,\).*non-batch axes"):
        Normalization(axis=0).setup((3,))
    layer = Normalization()
    layer.setup((3,))
    with pytest.raises(ShapeError, match=r"built for samples of shape \(3,\).*\(4, 5\)"):
        layer.adapt(rng.standard_normal((4, 5)))
    with pytest.raises(ConfigError, match=r"was given mean= and variance="):
        Normalization(mean=0.0, variance=1.0).adapt(np.zeros((2, 3)))


# --- UpSampling2D -------------------------------------------------------------------


def test_upsampling2d_repeats_rows_and_columns(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    layer = UpSampling2D(size=(2, 3))
    assert layer.setup((3, 4, 5)) == (6, 12, 5)
    y = layer.forward(x)
    np.testing.assert_array_equal(y, x.repeat(2, axis=1).repeat(3, axis=2))


def test_upsampling2d_keras_docstring_example():
    x = np.arange(12, dtype=np.float32).reshape(2, 2, 1, 3)
    y = UpSampling2D(size=(1, 2))(x)
    np.testing.assert_array_equal(y[0, 0], [[0, 1, 2], [0, 1, 2]])
    np.testing.assert_array_equal(y[1, 1], [[9, 10, 11], [9, 10, 11]])


def test_upsampling2d_backward_matches_finite_differences(rng):
    check_layer_gradients(UpSampling2D(size=(2, 3)), (2, 3, 2), rng=rng)
    check_layer_gradients(UpSampling2D(), (1, 2, 1), rng=rng)


def test_upsampling2d_in_a_model_trains(rng):
    x = rng.standard_normal((32, 4, 4, 1)).astype(np.float32)
    model = loopkit.Sequential(
        [
            loopkit.Input(shape=(4, 4, 1)),
            UpSampling2D(2),
            layers.Conv2D(2, 3, padding="same"),
            layers.GlobalAveragePooling2D(),
            Dense(1),
        ]
    )
    model.compile(optimizer=loopkit.optimizers.SGD(0.1), loss="mse")
    target = x.mean(axis=(1, 2))
    losses = model.fit(x, target, epochs=10, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    assert model.layers[0].get_config()["size"] == (2, 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"size": -1}, ConfigError, r"size=-1; expected ints > 0"),
        ({"size": (2, 0)}, ConfigError, r"size=\(2, 0\)"),
        ({"size": 1.5}, TypeError, r"size=1\.5"),
        ({"interpolation": "bilinear"}, ConfigError, r"'bilinear'.*only 'nearest'"),
        ({"interpolation": "nearst"}, ConfigError, r"'nearst'.*expected 'nearest'"),
        ({"data_format": "channels_first"}, ConfigError, r"channels-last only"),
    ],
)
def test_upsampling2d_refuses_bad_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        UpSampling2D(**kwargs)


def test_upsampling2d_refuses_inputs_that_are_not_images():
    with pytest.raises(ShapeError, match=r"\(height, width, channels\)"):
        UpSampling2D().setup((4, 4))


def test_rescaling_and_upsampling2d_survive_save_and_load_model(rng, tmp_path):
    x = rng.uniform(0, 255, (4, 3, 3, 2)).astype(np.float32)
    model = loopkit.Sequential(
        [
            loopkit.Input(shape=(3, 3, 2)),
            Rescaling([1 / 255, 2 / 255], offset=-1.0),
            UpSampling2D((2, 1)),
            layers.Flatten(),
            Dense(2),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    assert loaded.layers[0].get_config() == model.layers[0].get_config()
    assert loaded.layers[1].size == (2, 1)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


# --- configs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [
        Rescaling(1 / 255),
        Rescaling([1.0, 2.0], offset=[0.0, -1.0]),
        Normalization(),
        Normalization(axis=None, mean=2.0, variance=3.0, invert=True),
        Normalization(axis=(1, 2), mean=[[1.0, 2.0]], variance=[[1.0, 4.0]]),
        UpSampling2D(size=(3, 1), interpolation="NEAREST"),
    ],
)
def test_preprocessing_layer_configs_round_trip(layer):
    config = layers.serialize(layer)
    rebuilt = layers.deserialize(config)
    assert type(rebuilt) is type(layer)
    assert rebuilt.get_config() == layer.get_config()
    assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()


def test_preprocessing_layer_configs_use_keras_names_and_defaults():
    assert Normalization().get_config()["axis"] == (-1,)
    assert {"axis", "mean", "variance", "invert"} <= set(Normalization().get_config())
    assert UpSampling2D().get_config()["interpolation"] == "nearest"
    assert layers.get("UpSampling2D").size == (2, 2)
