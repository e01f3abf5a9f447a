"""Models of any length compute what fixed-length ones do, and their gradients check out."""

from __future__ import annotations

import numpy as np
import pytest

import loopkit as lk
from loopkit.layers import (
    GRU,
    LSTM,
    Add,
    Attention,
    AveragePooling1D,
    Bidirectional,
    Concatenate,
    Conv1D,
    Cropping1D,
    Dense,
    Embedding,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    Input,
    LayerNormalization,
    MaxPooling1D,
    MultiHeadAttention,
    SimpleRNN,
    TimeDistributed,
    UpSampling1D,
    ZeroPadding1D,
)
from loopkit.testing import check_model_gradients


def sequence_model(length: int | None, dtype: str = "float32") -> lk.Model:
    """Every sequence layer family on one input of ``length`` steps (None: any)."""
    inputs = Input((length, 3))
    x = Conv1D(4, 3, padding="same", activation="tanh")(inputs)
    x = AveragePooling1D(2, padding="same")(x)
    x = ZeroPadding1D((1, 2))(x)
    x = Conv1D(4, 2, strides=2, padding="valid")(x)
    x = UpSampling1D(2)(x)
    x = Cropping1D((1, 0))(x)
    h = LSTM(4, return_sequences=True)(x)
    h = Bidirectional(GRU(2, return_sequences=True))(h)
    h = TimeDistributed(Dense(4))(h)
    a = MultiHeadAttention(2, 2)(h, x)
    h = LayerNormalization()(Add()([h, a]))
    h = Concatenate()([h, Attention()([h, x])])
    h = Concatenate(axis=1)([h, Dense(8)(x)])
    h = MaxPooling1D(2, padding="same")(h)
    pooled = Concatenate()([GlobalAveragePooling1D()(h), GlobalMaxPooling1D()(h)])
    last = SimpleRNN(3)(h)
    return lk.Model(inputs, Dense(2)(Concatenate()([pooled, last])), dtype=dtype)


@pytest.mark.parametrize("length", [5, 8, 13])
def test_any_length_model_predicts_as_the_fixed_length_model_with_its_weights(
    rng, length
) -> None:
    free = sequence_model(None)
    fixed = sequence_model(length)
    fixed.set_weights(free.get_weights())  # the same weights fit both: no length in them
    x = rng.standard_normal((4, length, 3)).astype(np.float32)
    np.testing.assert_allclose(
        free.predict(x, verbose=0), fixed.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_alternating_lengths_give_each_batch_its_own_result(rng) -> None:
    """A long batch between two short ones leaves no stale plan or buffer behind."""
    free = sequence_model(None)
    x5 = rng.standard_normal((3, 5, 3)).astype(np.float32)
    x11 = rng.standard_normal((2, 11, 3)).astype(np.float32)
    first = free.predict(x5, verbose=0)
    free.predict(x11, verbose=0)
    np.testing.assert_array_equal(free.predict(x5, verbose=0), first)


@pytest.mark.parametrize("lengths", [(4, 7)])
def test_gradients_of_an_any_length_graph_match_finite_differences_at_two_lengths(
    rng, lengths
) -> None:
    inputs = Input((None, 2))
    x = Conv1D(3, 3, padding="same")(inputs)
    x = AveragePooling1D(2, padding="same")(x)
    h = LSTM(2, return_sequences=True)(x)
    h = Concatenate()([h, MultiHeadAttention(1, 2)(h, x)])
    h = Concatenate(axis=1)([h, Dense(4)(x)])
    pooled = Concatenate()([GlobalAveragePooling1D()(h), GlobalMaxPooling1D()(h)])
    model = lk.Model(inputs, Dense(1)(Concatenate()([pooled, GRU(2)(h)])), dtype="float64")
    model.compile("sgd", "mse")
    for steps in lengths:
        x_batch = rng.standard_normal((3, steps, 2))
        check_model_gradients(model, x_batch, rng.standard_normal((3, 1)), atol=1e-7)


def test_gradients_through_masked_embeddings_of_two_lengths_match(rng) -> None:
    inputs = Input((None,), dtype="int32")
    e = Embedding(9, 3, mask_zero=True)(inputs)
    h = Bidirectional(LSTM(2, return_sequences=True))(e)
    h = TimeDistributed(Dense(3, activation="tanh"))(h)
    model = lk.Model(inputs, Dense(1)(GlobalAveragePooling1D()(h)), dtype="float64")
    model.compile("sgd", "mse")
    for ids in (
        np.array([[3, 1, 4, 0], [2, 6, 0, 0]]),
        np.array([[5, 2, 7, 1, 8, 0], [1, 2, 0, 0, 0, 0], [4, 4, 4, 4, 4, 4]]),
    ):
        check_model_gradients(model, ids, rng.standard_normal((len(ids), 1)), atol=1e-7)
