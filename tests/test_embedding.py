from __future__ import annotations

import numpy as np
import pytest

from loopkit.errors import ConfigError
from loopkit.layers.embedding import Embedding
from loopkit.testing import check_layer_gradients


def test_embedding_gradient_matches_finite_differences(rng):
    x = np.array([[0, 3, 3], [5, 0, 1]])  # repeated indices, unused rows
    results = check_layer_gradients(Embedding(6, 4), (3,), x=x, rng=rng, check_input=False)
    assert set(results) == {"embeddings"}


def test_embedding_gradient_of_a_3d_index_batch_matches_finite_differences(rng):
    x = rng.integers(0, 5, (2, 3, 2))
    check_layer_gradients(Embedding(5, 3), (3, 2), x=x, rng=rng, check_input=False)


def test_embedding_gradient_is_the_one_hot_product_with_dy(rng):
    layer = Embedding(50, 8)
    layer.setup((30,), np.float64, rng)
    x = rng.integers(0, 50, (16, 30))
    layer.forward(x)
    dy = rng.standard_normal((16, 30, 8))
    assert layer.backward(dy) is None
    one_hot = (x.reshape(-1, 1) == np.arange(50)).astype(np.float64)  # (480, 50)
    np.testing.assert_allclose(layer.embeddings.grad, one_hot.T @ dy.reshape(-1, 8))


def test_embedding_forward_gathers_rows_for_int_and_float_indices(rng):
    layer = Embedding(10, 3)
    assert layer.setup((2, 2), np.float32, rng) == (2, 2, 3)
    x = np.array([[[1, 9], [0, 1]], [[4, 4], [2, 3]]])
    table = layer.embeddings.value.copy()
    y = layer.forward(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, table[x])
    np.testing.assert_array_equal(layer.forward(x.astype(np.float32)), table[x])
    np.testing.assert_array_equal(layer.forward(x[:1]), table[x[:1]])  # short batch


def test_frozen_embedding_leaves_its_gradient_alone(rng):
    layer = Embedding(4, 2, trainable=False)
    layer.setup((3,), np.float64, rng)
    layer.embeddings.grad[...] = 5.0
    layer.forward(np.array([[0, 1, 2]]))
    assert layer.backward(np.ones((1, 3, 2))) is None
    np.testing.assert_array_equal(layer.embeddings.grad, 5.0)


def test_embedding_input_dim_is_the_vocabulary_not_the_input_shape():
    layer = Embedding(1000, 64)
    assert layer.input_shape is None
    assert Embedding(1000, 64, input_shape=(20,)).input_shape == (20,)
    config = layer.get_config()
    assert (config["input_dim"], config["output_dim"]) == (1000, 64)
    assert config["embeddings_initializer"] == "uniform"


def test_embedding_rejects_an_index_at_or_above_input_dim(rng):
    layer = Embedding(10, 2)
    layer.setup((3,), np.float64, rng)
    with pytest.raises(
        IndexError,
        match=r"Embedding layer 'embedding' got index 12, outside \[0, input_dim=10\); "
        r"raise input_dim to at least 13",
    ):
        layer.forward(np.array([[1, 12, 3]]))
    with pytest.raises(IndexError, match=r"got index 10, outside \[0, input_dim=10\)"):
        layer.forward(np.array([[10.0, 0.0, 0.0]]))


def test_embedding_rejects_a_negative_index(rng):
    layer = Embedding(10, 2)
    layer.setup((2,), np.float64, rng)
    with pytest.raises(
        IndexError, match=r"got index -1, outside \[0, input_dim=10\); .*non-negative"
    ):
        layer.forward(np.array([[-1, 2]]))


def test_embedding_rejects_float_indices_that_are_not_whole_numbers(rng):
    layer = Embedding(10, 2)
    layer.setup((2,), np.float64, rng)
    with pytest.raises(
        IndexError,
        match=r"got index 2\.5, which is not a whole number; expected integer indices "
        r"in \[0, 10\)\. Pass token ids",
    ):
        layer.forward(np.array([[1.0, 2.5]]))
    with pytest.raises(IndexError, match=r"got index nan, which is not a whole number"):
        layer.forward(np.array([[np.nan, 1.0]]))


def test_embedding_rejects_indices_that_are_not_numbers(rng):
    layer = Embedding(10, 2)
    layer.setup((1,), np.float64, rng)
    with pytest.raises(TypeError, match=r"got indices of dtype <U1; expected an integer"):
        layer.forward(np.array([["a"]]))


def test_embedding_rejects_non_positive_sizes():
    with pytest.raises(
        ConfigError, match=r"Embedding got input_dim=0; expected an int > 0"
    ):
        Embedding(0, 4)
    with pytest.raises(
        TypeError, match=r"output_dim=4.0 of type float; expected a positive"
    ):
        Embedding(3, 4.0)


def test_keras_2s_input_length_warns_as_keras_3_and_is_left_out_of_the_config(rng):
    import loopkit as lk
    from loopkit import layers

    with pytest.warns(UserWarning, match=r"`input_length` is deprecated\. Just remove"):
        embedding = layers.Embedding(100, 8, input_length=12)
    assert "input_length" not in embedding.get_config()
    model = lk.Sequential([embedding, layers.LSTM(4), layers.Dense(1)])
    model.compile("adam", "mse")
    model.fit(rng.integers(0, 100, (8, 12)), rng.standard_normal((8, 1)), verbose=0)
    assert model.input_shape == (12,)  # from the data, as in Keras 3
