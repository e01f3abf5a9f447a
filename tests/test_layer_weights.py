"""Keras's weights API on every layer: weights, get_weights, set_weights, trainable."""

from __future__ import annotations

import numpy as np
import pytest

import loopkit as lk
from loopkit.layers import BatchNormalization, Dense, InputLayer


def test_an_unbuilt_layer_has_no_weights_as_in_keras() -> None:
    layer = Dense(3)
    assert layer.get_weights() == [] and layer.weights == []
    assert layer.trainable_weights == [] and layer.non_trainable_weights == []
    with pytest.raises(lk.ShapeError, match=r"got 1 arrays; the layer has 0 .*not built"):
        layer.set_weights([np.zeros((2, 3))])


def test_layer_weights_split_into_trainable_and_not_as_keras() -> None:
    model = lk.Sequential([BatchNormalization(input_shape=(3,)), Dense(2)])
    bn, dense = model.layers
    moving = ["moving_mean", "moving_variance"]
    assert [p.name for p in bn.weights] == ["gamma", "beta", *moving]
    assert [p.name for p in bn.trainable_weights] == ["gamma", "beta"]
    assert [p.name for p in bn.non_trainable_weights] == moving
    dense.trainable = False  # Keras: a frozen layer's weights are all non-trainable
    assert dense.trainable_weights == [] and len(dense.non_trainable_weights) == 2
    assert [w.shape for w in dense.get_weights()] == [(3, 2), (2,)]


def test_layer_get_weights_returns_copies_of_the_models_flat_buffer() -> None:
    model = lk.Sequential([Dense(2, input_dim=3), Dense(1)])
    kernel, _ = model.layers[1].get_weights()
    flat = model.flat_weights
    np.testing.assert_array_equal(kernel.ravel(), flat[8:10])  # after 3*2 + 2 weights
    kernel[...] = 7.0  # a copy: the model is unchanged
    assert not np.any(model.flat_weights == 7.0)
    assert model.layers[1].weights[0].value.base is flat  # the weight itself is a view


def test_layer_set_weights_after_compile_changes_predictions_and_training() -> None:
    model = lk.Sequential([Dense(2, input_dim=3), Dense(1)])
    model.compile(lk.optimizers.SGD(learning_rate=0.1), "mse")
    w1, b1 = np.arange(6, dtype=np.float32).reshape(3, 2) / 10, np.array([0.5, -0.5])
    w2, b2 = np.array([[1.0], [-2.0]]), np.array([0.25])
    model.layers[0].set_weights([w1, b1])
    model.layers[1].set_weights([w2, b2])
    x = np.array([[1.0, -1.0, 2.0], [0.5, 0.0, -1.0]])
    y = np.array([[1.0], [0.0]])
    h = x @ w1 + b1
    out = h @ w2 + b2
    np.testing.assert_allclose(model.predict(x, verbose=0), out, rtol=1e-6)
    # one SGD step on the whole batch, by hand: L = mean((out - y)^2)
    d_out = 2 * (out - y) / len(x)
    d_h = d_out @ w2.T
    model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0)
    got_w1, got_b1 = model.layers[0].get_weights()
    got_w2, got_b2 = model.layers[1].get_weights()
    np.testing.assert_allclose(got_w2, w2 - 0.1 * h.T @ d_out, rtol=1e-5)
    np.testing.assert_allclose(got_b2, b2 - 0.1 * d_out.sum(0), rtol=1e-5)
    np.testing.assert_allclose(got_w1, w1 - 0.1 * x.T @ d_h, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got_b1, b1 - 0.1 * d_h.sum(0), rtol=1e-5)


def test_layer_set_weights_rejects_a_wrong_count_or_shape_and_changes_nothing() -> None:
    model = lk.Sequential([Dense(2, input_dim=3, name="d")])
    before = model.get_weights()
    layer = model.layers[0]
    with pytest.raises(lk.ShapeError, match=r"'d' \(Dense\)\.set_weights\(\) got 1 arrays"):
        layer.set_weights([np.zeros((3, 2))])
    shapes = r"weight 'bias' has shape \(2,\), got an array of shape \(3,\)"
    with pytest.raises(ValueError, match=shapes):
        layer.set_weights([np.ones((3, 2)), np.zeros(3)])
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_weight_reads_and_assigns_like_a_keras_variable() -> None:
    model = lk.Sequential([Dense(2, input_dim=3)])
    bias = model.layers[0].weights[1]
    bias.assign([1.0, 2.0])
    np.testing.assert_array_equal(bias.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(model.flat_weights[-2:], [1.0, 2.0])
    with pytest.raises(lk.ShapeError, match=r"assign\(\): weight 'bias' has shape \(2,\)"):
        bias.assign([1.0])


# --- Sequential started from an input, as in Keras 3 ---------------------------------


def test_sequential_starting_with_input_is_built_and_does_not_list_it() -> None:
    model = lk.Sequential([lk.Input((4,)), Dense(2)])
    assert model.built and model.input_shape == (4,)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense"]
    assert model.count_params() == 10
    assert model.predict(np.ones((3, 4)), verbose=0).shape == (3, 2)


def test_sequential_starting_with_an_input_layer_is_built() -> None:
    for first in (InputLayer(shape=(4,)), InputLayer(batch_shape=(None, 4))):
        model = lk.Sequential([first, Dense(2)])
        assert model.built and model.input_shape == (4,)
    model = lk.Sequential()
    model.add(lk.Input((3,)))
    assert not model.built
    model.add(Dense(1))
    assert model.built and model.layers[0].get_weights()[0].shape == (3, 1)
    rebuilt = lk.Sequential.from_config(model.get_config())
    assert rebuilt.built and rebuilt.input_shape == (3,)
    empty = lk.Sequential.from_config(lk.Sequential([lk.Input((5,))]).get_config())
    empty.add(Dense(1))  # the input survives the round trip without layers
    assert empty.built and empty.input_shape == (5,)


def test_sequential_rejects_an_input_that_is_not_first_or_a_layer_output() -> None:
    with pytest.raises(lk.ConfigError, match=r"already has 1 layers; an input may only"):
        lk.Sequential([Dense(2), lk.Input((4,))])
    with pytest.raises(lk.ConfigError, match=r"has an input layer of shape \(4,\)"):
        lk.Sequential([lk.Input((4,)), InputLayer(shape=(4,))])
    with pytest.raises(TypeError, match=r"the output of a layer call"):
        lk.Sequential([Dense(2)(lk.Input((4,)))])
    clash = r"input_shape=\(5,\), but the model's input has shape \(4,\)"
    with pytest.raises(lk.ConfigError, match=clash):
        lk.Sequential([lk.Input((4,)), Dense(2, input_shape=(5,))])
    with pytest.raises(lk.ConfigError, match=r"batch_shape=\(None, 3\)\): the two"):
        InputLayer(shape=(4,), batch_shape=(None, 3))


# --- add_weight as Keras 3 calls it ---------------------------------------------------


def test_add_weight_takes_keras_arguments_and_names_unnamed_weights() -> None:
    from attrs import define

    @define(eq=False, slots=False)
    class Scale(lk.layers.Layer):
        def build(self, input_shape: tuple[int, ...]) -> None:
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")
            self.add_weight((input_shape[-1], 2))  # Keras's positional form, unnamed
            self.add_weight(shape=(2,), dtype="float32", trainable=False)

        def forward(self, x, training=False):
            return x * self.w.value

    layer = Scale()
    layer.setup((3,))
    assert [(p.name, p.shape) for p in layer.weights] == [
        ("w", (3,)),
        ("variable", (3, 2)),
        ("variable_1", (2,)),
    ]
    np.testing.assert_array_equal(layer.get_weights()[0], np.ones(3))
    kernel = layer.get_weights()[1]  # Keras's default initializer: glorot_uniform
    assert np.all(np.abs(kernel) <= np.sqrt(6 / 5)) and np.any(kernel != 0)
    assert [p.name for p in layer.non_trainable_weights] == ["variable_1"]

    @define(eq=False, slots=False)
    class Counter(lk.layers.Layer):
        def build(self, input_shape: tuple[int, ...]) -> None:
            self.add_weight(shape=(), dtype="int32")

    with pytest.raises(lk.ConfigError, match=r"add_weight\(\) got dtype='int32'"):
        Counter().setup((3,))


def test_a_weight_converts_to_its_values_as_a_keras_variable_does() -> None:
    import loopkit as lk

    kernel = lk.Sequential([lk.Input((4,)), Dense(2)]).layers[0].kernel
    values = np.array(kernel)
    assert values.shape == (4, 2) and values.dtype == np.float32 == kernel.dtype
    np.testing.assert_array_equal(values, kernel.numpy())
    values[0, 0] += 1.0  # a copy: the weight is unchanged
    assert kernel.value[0, 0] != values[0, 0]


def test_build_called_by_hand_says_how_to_build_instead() -> None:
    import loopkit as lk

    with pytest.raises(lk.ConfigError, match=r"build\(\) was called directly.*setup"):
        Dense(3).build((None, 4))
