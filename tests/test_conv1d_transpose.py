"""Conv1DTranspose: Conv2DTranspose on height-1 images, Keras sizes, gradients, config."""

from __future__ import annotations

import numpy as np
import pytest

import loopkit as lk
from loopkit import layers
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers import Conv1D, Conv1DTranspose, Conv2DTranspose, Dropout
from loopkit.testing import check_layer_gradients

SETTINGS = [
    {"kernel_size": 3},
    {"kernel_size": 3, "strides": 2},
    {"kernel_size": 7, "strides": 2, "padding": "same"},
    {"kernel_size": 4, "strides": 3, "padding": "same", "output_padding": 1},
    {"kernel_size": 4, "strides": 3, "output_padding": 2},
    {"kernel_size": 3, "dilation_rate": 2, "padding": "same"},
    {"kernel_size": 2, "strides": 2, "use_bias": False},
]


def two_d(kwargs: dict) -> dict:
    out = dict(kwargs)
    for key in ("kernel_size", "strides", "dilation_rate"):
        if key in out:
            out[key] = (1, out[key])
    if out.get("output_padding") is not None:
        out["output_padding"] = (0, out["output_padding"])
    return out


@pytest.mark.parametrize("kwargs", SETTINGS, ids=str)
def test_conv1d_transpose_is_conv2d_transpose_on_a_height_one_image(kwargs, rng) -> None:
    one = Conv1DTranspose(5, **kwargs, bias_initializer="random_normal")
    one.setup((6, 3), np.float64, rng)
    two = Conv2DTranspose(5, **two_d(kwargs))
    two.setup((1, 6, 3), np.float64, rng)
    weights = one.get_weights()
    assert weights[0].shape == (kwargs["kernel_size"], 5, 3)  # Keras's layout
    two.set_weights([weights[0][None], *weights[1:]])
    x = rng.standard_normal((2, 6, 3))
    y = one.forward(x)
    np.testing.assert_allclose(y, two.forward(x[:, None])[:, 0], rtol=1e-12)
    assert y.shape[1:] == one.compute_output_shape((6, 3))


@pytest.mark.parametrize("kwargs", SETTINGS, ids=str)
def test_conv1d_transpose_backward_matches_finite_differences(kwargs, rng) -> None:
    check_layer_gradients(
        Conv1DTranspose(2, **kwargs, activation="tanh", bias_initializer="random_normal"),
        (5, 3),
        batch_size=2,
        rng=rng,
    )


def test_conv1d_transpose_lengths_follow_keras() -> None:
    def steps(**kwargs):
        return Conv1DTranspose(4, **kwargs).compute_output_shape((10, 3))

    assert steps(kernel_size=7, strides=2, padding="same") == (20, 4)  # steps * strides
    assert steps(kernel_size=7, strides=2) == (25, 4)  # (10 - 1) * 2 + 7
    assert steps(kernel_size=1, strides=3) == (30, 4)  # max(kernel, stride) covers
    assert steps(kernel_size=3, strides=2, output_padding=1) == (22, 4)


def test_conv1d_transpose_refuses_what_keras_refuses() -> None:
    with pytest.raises(ConfigError, match="output_padding must be >= 0 and < strides"):
        Conv1DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ConfigError, match="strides > 1 cannot be combined"):
        Conv1DTranspose(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ShapeError, match=r"\(steps, channels\)"):
        Conv1DTranspose(2, 3).setup((10,))
    with pytest.raises(ConfigError):
        Conv1DTranspose(2, 3, padding="causal")


def test_conv1d_transpose_config_round_trips() -> None:
    layer = Conv1DTranspose(8, (5,), strides=2, padding="same", activation="relu")
    rebuilt = layers.deserialize(layers.serialize(layer))
    assert type(rebuilt) is Conv1DTranspose
    assert rebuilt.get_config() == layer.get_config()
    assert layer.get_config()["kernel_size"] == 5
    assert layers.Convolution1DTranspose is Conv1DTranspose


def test_keras_timeseries_anomaly_autoencoder_trains(rng, tmp_path) -> None:
    # keras.io "Timeseries anomaly detection using an Autoencoder", on generated data
    x_train = rng.standard_normal((64, 32, 1)).astype(np.float32)
    model = lk.Sequential(
        [
            layers.Input(shape=(x_train.shape[1], x_train.shape[2])),
            Conv1D(filters=8, kernel_size=7, padding="same", strides=2, activation="relu"),
            Dropout(rate=0.2),
            Conv1D(filters=4, kernel_size=7, padding="same", strides=2, activation="relu"),
            Conv1DTranspose(
                filters=4, kernel_size=7, padding="same", strides=2, activation="relu"
            ),
            Dropout(rate=0.2),
            Conv1DTranspose(
                filters=8, kernel_size=7, padding="same", strides=2, activation="relu"
            ),
            Conv1DTranspose(filters=1, kernel_size=7, padding="same"),
        ]
    )
    model.compile(optimizer=lk.optimizers.Adam(learning_rate=0.001), loss="mse")
    history = model.fit(
        x_train, x_train, epochs=3, batch_size=16, validation_split=0.1, verbose=0
    )
    assert np.isfinite(history.history["val_loss"]).all()
    assert model.predict(x_train, verbose=0).shape == x_train.shape
    model.save(str(tmp_path / "ae.npz"))
    loaded = lk.load_model(str(tmp_path / "ae.npz"))
    np.testing.assert_allclose(
        loaded.predict(x_train, verbose=0), model.predict(x_train, verbose=0), rtol=1e-6
    )


def test_conv1d_transpose_takes_sequences_of_any_length(rng) -> None:
    inputs = lk.Input((None, 3))
    outputs = Conv1DTranspose(2, 3, strides=2, padding="same")(inputs)
    assert tuple(outputs.shape) == (None, None, 2)
    model = lk.Model(inputs, outputs)
    for steps in (5, 7, 5):
        fixed_in = lk.Input((steps, 3))
        fixed = lk.Model(
            fixed_in, Conv1DTranspose(2, 3, strides=2, padding="same")(fixed_in)
        )
        fixed.set_weights(model.get_weights())
        x = rng.standard_normal((2, steps, 3)).astype(np.float32)
        got = model.predict(x, verbose=0)
        assert got.shape == (2, 2 * steps, 2)
        np.testing.assert_allclose(got, fixed.predict(x, verbose=0), rtol=1e-6)
    model.compile("sgd", "mse")
    model.fit(rng.standard_normal((4, 6, 3)), rng.standard_normal((4, 12, 2)), verbose=0)
