"""Keras's activation layers (ReLU, LeakyReLU, ELU, Softmax, PReLU): values, gradients."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import loopkit as lk
from loopkit import ConfigError, ShapeError, layers
from loopkit.layers import (
    ELU,
    LSTM,
    BatchNormalization,
    Conv1D,
    Dense,
    Embedding,
    GlobalAveragePooling1D,
    LeakyReLU,
    PReLU,
    ReLU,
    Softmax,
)
from loopkit.testing import check_layer_gradients, check_model_gradients

X = np.array([[-10.0, -5.0, 0.0, 5.0, 10.0]])


def test_relu_layer_gives_the_values_of_keras_docstring() -> None:
    # keras.layers.ReLU's docstring: max_value=10, negative_slope=0.5, threshold=0
    out = ReLU(max_value=10, negative_slope=0.5, threshold=0)(X)
    np.testing.assert_array_equal(out, [[-5.0, -2.5, 0.0, 5.0, 10.0]])
    np.testing.assert_array_equal(ReLU()(X), [[0.0, 0.0, 0.0, 5.0, 10.0]])
    np.testing.assert_array_equal(ReLU(max_value=6)(X), [[0.0, 0.0, 0.0, 5.0, 6.0]])
    # below the threshold: negative_slope * (x - threshold), by hand
    np.testing.assert_array_equal(
        ReLU(negative_slope=0.5, threshold=5.0)(X), [[-7.5, -5.0, -2.5, -0.0, 10.0]]
    )


def test_leaky_relu_layer_defaults_to_keras_3s_slope_and_takes_keras_2s_alpha() -> None:
    np.testing.assert_allclose(LeakyReLU()(X), [[-3.0, -1.5, 0.0, 5.0, 10.0]])
    np.testing.assert_array_equal(
        LeakyReLU(negative_slope=0.5)(X), [[-5.0, -2.5, 0.0, 5.0, 10.0]]
    )
    with pytest.warns(UserWarning, match="`alpha` is deprecated"):
        layer = LeakyReLU(alpha=0.1)
    assert layer.negative_slope == 0.1
    assert layer.get_config()["negative_slope"] == 0.1


def test_elu_and_softmax_layers_give_hand_derived_values() -> None:
    np.testing.assert_allclose(
        ELU(alpha=2.0)(np.array([[-1.0, 0.0, 3.0]])),
        [[2.0 * (np.exp(-1.0) - 1.0), 0.0, 3.0]],
        rtol=1e-6,
    )
    # keras.layers.Softmax's docstring
    np.testing.assert_allclose(
        Softmax()(np.array([[1.0, 2.0, 1.0]])),
        [[0.21194157, 0.5761169, 0.21194157]],
        rtol=1e-6,
    )
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    np.testing.assert_allclose(Softmax(axis=1)(x).sum(axis=1), np.ones((2, 4)), rtol=1e-6)
    np.testing.assert_allclose(
        Softmax(axis=(1, 2))(x).sum(axis=(1, 2)), [1.0, 1.0], rtol=1e-6
    )


def test_prelu_is_relu_at_first_and_learns_one_slope_per_unshared_entry() -> None:
    x = np.array([[[-2.0, 3.0], [-1.0, -4.0]]])
    layer = PReLU(shared_axes=[1])
    np.testing.assert_array_equal(layer(x), np.maximum(x, 0))  # alpha starts at zero
    assert [w.shape for w in layer.weights] == [(1, 2)]
    layer.set_weights([np.array([[0.5, 0.25]])])
    np.testing.assert_array_equal(layer(x), [[[-1.0, 3.0], [-0.5, -1.0]]])
    assert PReLU().setup((3, 2)) == (3, 2)


@pytest.mark.parametrize(
    "layer",
    [
        ReLU(),
        ReLU(max_value=0.5, negative_slope=0.1, threshold=0.2),
        LeakyReLU(),
        ELU(alpha=0.7),
        Softmax(),
        Softmax(axis=1),
        PReLU(alpha_initializer="random_normal"),
        PReLU(alpha_initializer="random_normal", shared_axes=[1]),
        PReLU(alpha_initializer="random_normal", shared_axes=[1, 2]),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_activation_layer_backward_matches_finite_differences(layer, rng) -> None:
    # inputs kept away from the kinks, where finite differences straddle two slopes
    x = rng.uniform(0.3, 2.0, (3, 4, 5)) * rng.choice([-1.0, 1.0], (3, 4, 5))
    check_layer_gradients(layer, (4, 5), x=x, rng=rng)


@pytest.mark.parametrize(
    "layer",
    [
        ReLU(max_value=6.0, negative_slope=0.1, threshold=0.5),
        LeakyReLU(negative_slope=0.2),
        ELU(alpha=0.5),
        Softmax(axis=(1, 2)),
        PReLU(alpha_initializer="ones", alpha_regularizer="l2", shared_axes=[1]),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_activation_layer_configs_round_trip(layer) -> None:
    config = layers.serialize(layer)
    rebuilt = layers.deserialize(config)
    assert type(rebuilt) is type(layer)
    assert rebuilt.get_config() == layer.get_config()
    assert "activation" not in layer.get_config()  # Keras's config: the layer's arguments


@pytest.mark.parametrize(
    "make",
    [
        lambda: ReLU(max_value=-1.0),
        lambda: ReLU(negative_slope=-0.1),
        lambda: ReLU(threshold=-1.0),
        lambda: LeakyReLU(negative_slope=-0.3),
        lambda: ELU(alpha=-1.0),
    ],
)
def test_activation_layers_refuse_negative_arguments_as_keras_does(make) -> None:
    with pytest.raises(ConfigError):
        make()


def test_prelu_refuses_a_shared_axis_the_input_lacks() -> None:
    with pytest.raises(ShapeError, match=r"shared_axes=\[3\].*1\.\.2"):
        PReLU(shared_axes=3).setup((4, 5))


def test_keras_timeseries_fcn_with_relu_layers_trains_and_loads(tmp_path, rng) -> None:
    # keras.io "Timeseries classification from scratch": Conv1D, BatchNormalization, ReLU
    inputs = lk.Input((20, 1))
    x = inputs
    for _ in range(2):
        x = Conv1D(filters=8, kernel_size=3, padding="same")(x)
        x = BatchNormalization()(x)
        x = ReLU()(x)
    outputs = Dense(2, activation="softmax")(GlobalAveragePooling1D()(x))
    model = lk.Model(inputs, outputs)
    model.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    x_train = rng.standard_normal((64, 20, 1)).astype(np.float32)
    y_train = (x_train[:, :, 0].mean(axis=1) > 0).astype(np.int64)
    history = model.fit(x_train, y_train, epochs=2, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.save(str(tmp_path / "fcn.npz"))
    loaded = lk.load_model(str(tmp_path / "fcn.npz"))
    assert [type(layer).__name__ for layer in loaded.layers].count("ReLU") == 2
    np.testing.assert_allclose(
        loaded.predict(x_train, verbose=0), model.predict(x_train, verbose=0), rtol=1e-6
    )


def test_a_graph_with_activation_layers_has_whole_model_gradients(rng) -> None:
    inputs = lk.Input((6, 3))
    h = Conv1D(4, 3, padding="same")(inputs)
    h = PReLU(alpha_initializer="random_normal", shared_axes=[1])(LeakyReLU()(h))
    h = ELU()(Dense(4)(h))
    outputs = Softmax()(Dense(3)(GlobalAveragePooling1D()(h)))
    model = lk.Model(inputs, outputs, dtype="float64")
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = rng.standard_normal((4, 6, 3))
    y = np.eye(3)[rng.integers(0, 3, 4)]
    check_model_gradients(model, x, y)


def test_activation_layers_pass_a_mask_on_to_the_lstm_after_them() -> None:
    def model(act):
        return lk.Sequential(
            [Embedding(10, 4, mask_zero=True, input_shape=(5,)), act, LSTM(3)]
        )

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        masked = model(ReLU())
    tokens = np.array([[3, 4, 0, 0, 0]])
    short = lk.Sequential([Embedding(10, 4, input_shape=(2,)), ReLU(), LSTM(3)])
    short.set_weights(masked.get_weights())
    np.testing.assert_allclose(
        masked.predict(tokens, verbose=0),
        short.predict(tokens[:, :2], verbose=0),
        atol=1e-6,
    )
