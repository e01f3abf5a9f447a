from __future__ import annotations

import numpy as np
import pytest

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.reshaping import Flatten, Reshape
from loopkit.testing import check_layer_gradients


def test_flatten_backward_matches_finite_differences(rng):
    check_layer_gradients(Flatten(), (2, 3, 2), rng=rng)


def test_flatten_returns_a_view_of_each_sample_in_row_major_order(rng):
    layer = Flatten()
    assert layer.setup((2, 3, 4), np.float64, rng) == (24,)
    x = rng.standard_normal((5, 2, 3, 4))
    y = layer.forward(x)
    assert y.shape == (5, 24)
    assert np.shares_memory(y, x)
    np.testing.assert_array_equal(y[1, 4 * 1 + 2], x[1, 0, 1, 2])
    dy = rng.standard_normal((5, 24))
    np.testing.assert_array_equal(layer.backward(dy), dy.reshape(5, 2, 3, 4))


def test_flatten_turns_a_batch_of_scalars_into_one_column(rng):
    layer = Flatten()
    assert layer.setup((), np.float64, rng) == (1,)
    assert layer.forward(np.arange(3.0)).shape == (3, 1)
    assert layer.backward(np.ones((3, 1))).shape == (3,)


def test_flatten_handles_a_non_contiguous_input(rng):
    layer = Flatten()
    layer.setup((3, 2), np.float64, rng)
    x = rng.standard_normal((4, 2, 3)).transpose(0, 2, 1)
    np.testing.assert_array_equal(layer.forward(x), np.ascontiguousarray(x).reshape(4, 6))


def test_reshape_backward_matches_finite_differences(rng):
    check_layer_gradients(Reshape((3, -1)), (2, 6), rng=rng)


def test_reshape_infers_the_minus_one_entry(rng):
    layer = Reshape((-1, 4))
    assert layer.setup((2, 3, 4), np.float64, rng) == (6, 4)
    x = rng.standard_normal((2, 2, 3, 4))
    y = layer.forward(x)
    assert y.shape == (2, 6, 4)
    assert np.shares_memory(y, x)
    np.testing.assert_array_equal(layer.backward(y), x)


def test_reshape_of_an_empty_batch_keeps_the_target_shape(rng):
    layer = Reshape((-1, 2))
    layer.setup((4,), np.float64, rng)
    assert layer.forward(np.zeros((0, 4))).shape == (0, 2, 2)


def test_reshape_accepts_an_int_and_a_list():
    assert Reshape(6).target_shape == (6,)
    assert Reshape([2, 3]).target_shape == (2, 3)


def test_reshaping_backward_returns_none_for_a_first_layer(rng):
    for layer in (Flatten(), Reshape((4,))):
        layer.setup((2, 2), np.float64, rng)
        layer.input_grad_needed = False
        layer.forward(np.ones((3, 2, 2)))
        assert layer.backward(np.ones((3, 4))) is None


def test_reshape_rejects_a_target_shape_of_another_size(rng):
    with pytest.raises(
        ShapeError,
        match=r"Reshape layer 'reshape' cannot reshape samples of shape \(2, 3\) \(6 "
        r"values\) to target_shape=\(4,\) \(4 values\)\. Pick a target_shape with the "
        r"same number of values, or use -1",
    ):
        Reshape((4,)).setup((2, 3), np.float64, rng)


def test_reshape_rejects_a_minus_one_that_cannot_divide_the_size(rng):
    with pytest.raises(
        ShapeError,
        match=r"samples of shape \(7,\) \(7 values\) to target_shape=\(-1, 2\) "
        r"\(2 values times a whole number\)",
    ):
        Reshape((-1, 2)).setup((7,), np.float64, rng)


@pytest.mark.parametrize("target", [(-1, -1), (0, 3), (2, -2)])
def test_reshape_rejects_bad_target_sizes(target):
    with pytest.raises(
        ConfigError, match=r"target_shape=.*; expected positive sizes with at most one -1"
    ):
        Reshape(target)


def test_reshape_rejects_a_target_shape_that_is_not_ints():
    with pytest.raises(TypeError, match=r"target_shape='ab' of type str; expected a tuple"):
        Reshape("ab")
    with pytest.raises(
        TypeError, match=r"target_shape=\(2.0, 3\); expected a tuple of ints"
    ):
        Reshape((2.0, 3))


def test_permute_moves_the_sample_axes_as_keras_docstring_says(rng):
    from loopkit.layers import Permute

    x = rng.standard_normal((2, 10, 64)).astype(np.float32)
    out = Permute((2, 1))(x)  # Keras: (None, 10, 64) -> (None, 64, 10)
    assert out.shape == (2, 64, 10)
    np.testing.assert_array_equal(out, np.transpose(x, (0, 2, 1)))
    y = Permute((3, 1, 2))(rng.standard_normal((2, 3, 4, 5)))
    assert y.shape == (2, 5, 3, 4)


def test_permute_and_repeat_vector_backward_match_finite_differences(rng):
    from loopkit.layers import Permute, RepeatVector

    check_layer_gradients(Permute((2, 3, 1)), (3, 4, 2), rng=rng)
    check_layer_gradients(RepeatVector(3), (4,), rng=rng)


def test_repeat_vector_repeats_each_sample_n_times(rng):
    from loopkit.layers import RepeatVector

    x = rng.standard_normal((2, 32)).astype(np.float32)
    out = RepeatVector(3)(x)  # Keras: (None, 32) -> (None, 3, 32)
    assert out.shape == (2, 3, 32)
    for k in range(3):
        np.testing.assert_array_equal(out[:, k], x)


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [
        (lambda: __import__("loopkit").layers.Permute((1, 3)), ConfigError, "1, 2, ..., n"),
        (lambda: __import__("loopkit").layers.Permute((0, 1)), ConfigError, "1, 2, ..., n"),
        (lambda: __import__("loopkit").layers.Permute(2), TypeError, "in their new order"),
        (lambda: __import__("loopkit").layers.RepeatVector(0), ConfigError, "n=0"),
    ],
)
def test_permute_and_repeat_vector_refuse_bad_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_permute_and_repeat_vector_refuse_samples_of_the_wrong_rank():
    from loopkit.layers import Permute, RepeatVector

    with pytest.raises(ShapeError, match=r"one entry per sample axis \(3\)"):
        Permute((2, 1)).setup((3, 4, 5))
    with pytest.raises(ShapeError, match=r"shape \(features,\), got \(3, 4\)"):
        RepeatVector(2).setup((3, 4))


def test_permute_and_repeat_vector_configs_round_trip():
    from loopkit import layers

    for layer in (layers.Permute((2, 1)), layers.RepeatVector(4)):
        rebuilt = layers.deserialize(layers.serialize(layer))
        assert type(rebuilt) is type(layer)
        assert rebuilt.get_config() == layer.get_config()
    assert layers.Permute((2, 1)).get_config()["dims"] == [2, 1]


def test_a_repeat_vector_seq2seq_trains_with_whole_model_gradients(rng):
    # the classic Keras "LSTM autoencoder": encode, RepeatVector, decode per step
    import loopkit as lk
    from loopkit.layers import LSTM, Dense, Permute, RepeatVector, TimeDistributed
    from loopkit.testing import check_model_gradients

    inputs = lk.Input((5, 2))
    encoded = LSTM(3)(inputs)
    decoded = LSTM(3, return_sequences=True)(RepeatVector(4)(encoded))
    outputs = Permute((2, 1))(TimeDistributed(Dense(2))(decoded))
    model = lk.Model(inputs, outputs, dtype="float64")
    model.compile(optimizer="adam", loss="mse")
    assert model.output_shape == (2, 4)
    check_model_gradients(
        model, rng.standard_normal((3, 5, 2)), rng.standard_normal((3, 2, 4))
    )


def test_identity_passes_values_gradients_and_masks_through(rng):
    import loopkit as lk
    from loopkit import layers

    x = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(layers.Identity()(x), x)
    check_layer_gradients(layers.Identity(), (4, 2), rng=rng)
    assert type(layers.deserialize(layers.serialize(layers.Identity()))) is layers.Identity

    def model(steps):
        return lk.Sequential(
            [
                layers.Embedding(9, 3, mask_zero=True, input_shape=(steps,)),
                layers.Identity(),
                layers.GRU(2),
            ]
        )

    short, padded = model(2), model(4)
    padded.set_weights(short.get_weights())
    np.testing.assert_allclose(
        padded.predict(np.array([[5, 6, 0, 0]]), verbose=0),
        short.predict(np.array([[5, 6]]), verbose=0),
        atol=1e-6,
    )
