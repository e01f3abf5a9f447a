"""Masks carried by models: Sequential and functional graphs, from the data each pass."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import loopkit as lk
from loopkit import ShapeError
from loopkit.layers import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    GlobalAveragePooling1D,
    Masking,
    TimeDistributed,
)
from loopkit.testing import check_model_gradients


def tokens(rng: np.random.Generator, n: int = 4, steps: int = 6) -> np.ndarray:
    """Token ids 1..9 with each row zero-padded after a random length (at least 1)."""
    ids = rng.integers(1, 10, (n, steps))
    lengths = rng.integers(1, steps + 1, n)
    ids[np.arange(steps) >= lengths[:, None]] = 0
    return ids


def pad(x: np.ndarray, steps: int, before: bool) -> np.ndarray:
    zeros = np.zeros((len(x), steps, *x.shape[2:]), x.dtype)
    return np.concatenate([zeros, x] if before else [x, zeros], axis=1)


def same_weights(build: Any, steps: int, other: int) -> tuple[Any, Any]:
    """Two copies of a model (one per sequence length) with the same weights."""
    a, b = build(steps), build(other)
    b.set_weights(a.get_weights())
    return a, b


def sequential_classifier(steps: int) -> lk.Sequential:
    model = lk.Sequential(
        [Embedding(10, 4, mask_zero=True), LSTM(5), Dense(3, activation="softmax")]
    )
    model.build((None, steps))
    return model


def functional_classifier(steps: int) -> lk.Model:
    ids = lk.Input(shape=(steps,))
    h = Bidirectional(LSTM(3, return_sequences=True))(Embedding(10, 4, mask_zero=True)(ids))
    pooled = GlobalAveragePooling1D()(Dropout(0.3)(Dense(4, activation="tanh")(h)))
    return lk.Model(ids, Dense(2, activation="softmax")(pooled))


@pytest.mark.parametrize("before", [False, True], ids=["post", "pre"])
@pytest.mark.parametrize("build", [sequential_classifier, functional_classifier])
def test_padding_does_not_change_a_masked_models_predictions(rng, build, before) -> None:
    x = tokens(rng)
    short, padded = same_weights(build, 6, 10)
    expected = short.predict(x, verbose=0)
    got = padded.predict(pad(x, 4, before), verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert short.graph.masked and not short.graph.is_chain


def test_without_mask_zero_the_padding_changes_the_predictions(rng) -> None:
    def build(steps: int) -> lk.Sequential:
        model = lk.Sequential([Embedding(10, 4), LSTM(5), Dense(3)])
        model.build((None, steps))
        return model

    x = tokens(rng)
    short, padded = same_weights(build, 6, 10)
    assert not short.graph.masked and short.graph.is_chain  # the plain loop, no masks
    assert not np.allclose(short.predict(x, verbose=0), padded.predict(pad(x, 4, False)))


def test_models_without_a_mask_making_layer_never_look_for_masks() -> None:
    seq = lk.Sequential([LSTM(3, return_sequences=True, input_shape=(4, 2)), Dense(1)])
    assert seq.graph.is_chain and not seq.graph.masked
    a, b = lk.Input(shape=(4, 2)), lk.Input(shape=(4, 2))
    merged = lk.layers.Add()([a, Dense(2)(b)])
    model = lk.Model([a, b], Dense(1)(GlobalAveragePooling1D()(merged)))
    assert not model.graph.masked and not model.graph.is_chain


def test_a_masked_sequential_matches_finite_differences(rng) -> None:
    model = lk.Sequential(
        [
            Embedding(10, 3, mask_zero=True),
            LSTM(3, return_sequences=True),
            GlobalAveragePooling1D(),
            Dense(2),
        ],
        dtype="float64",
    )
    model.build((None, 5))
    model.compile("sgd", "mse")
    x = tokens(rng, 4, 5).astype(np.float64)
    check_model_gradients(model, x, rng.standard_normal((4, 2)))


def test_a_masked_bidirectional_graph_matches_finite_differences(rng) -> None:
    ids = lk.Input(shape=(5,))
    h = Bidirectional(GRU(2, return_sequences=True), merge_mode="ave")(
        Embedding(10, 3, mask_zero=True)(ids)
    )
    last = Bidirectional(LSTM(2))(h)  # the mask reaches the second layer too
    model = lk.Model(ids, Dense(1)(last), dtype="float64")
    model.compile("sgd", "mse")
    check_model_gradients(
        model, tokens(rng, 3, 5).astype(np.float64), rng.standard_normal((3, 1))
    )


def test_masking_before_a_gru_skips_the_padded_steps(rng) -> None:
    x = rng.standard_normal((3, 4, 2)).astype(np.float32)
    masked = lk.Sequential([Masking(input_shape=(7, 2)), GRU(3)])
    plain = lk.Sequential([GRU(3, input_shape=(4, 2))])
    plain.set_weights(masked.get_weights())
    got = masked.predict(pad(x, 3, before=False), verbose=0)
    np.testing.assert_allclose(got, plain.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_the_mask_passes_per_step_layers_into_global_average_pooling(rng) -> None:
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    x[0, 3:] = 0.0  # sample 0 has 3 real steps, sample 1 all 5
    model = lk.Sequential(
        [
            Masking(input_shape=(5, 3)),
            Dense(4, activation="tanh"),
            Dropout(0.5),
            TimeDistributed(Dense(2)),
            GlobalAveragePooling1D(),
        ]
    )
    w1, b1, w2, b2 = model.get_weights()
    per_step = np.tanh(x @ w1 + b1) @ w2 + b2
    expected = np.stack([per_step[0, :3].mean(axis=0), per_step[1].mean(axis=0)])
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_each_slot_keeps_its_own_mask_in_a_graph(rng) -> None:
    def build(steps: int) -> lk.Model:
        source, target = lk.Input(shape=(steps,)), lk.Input(shape=(3, 2))
        _, h, c = LSTM(4, return_state=True)(Embedding(10, 3, mask_zero=True)(source))
        decoded = LSTM(4, return_sequences=True)(target, initial_state=[h, c])
        return lk.Model([source, target], Dense(1)(decoded))  # target: no mask

    source, target = tokens(rng, 3, 5), rng.standard_normal((3, 3, 2))
    short, padded = same_weights(build, 5, 8)
    expected = short.predict([source, target], verbose=0)
    got = padded.predict([pad(source, 3, before=True), target], verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_a_masked_classifier_learns_with_fit_on_mixed_lengths(rng) -> None:
    x = tokens(rng, 1024, 8)
    y = (x == 7).any(axis=1).astype(np.int64)  # holds a 7?
    model = lk.Sequential(
        [Embedding(10, 8, mask_zero=True), LSTM(16), Dense(2, activation="softmax")]
    )
    model.compile(
        optimizer=lk.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy"
    )
    model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    x_test = tokens(rng, 256, 8)
    y_test = (x_test == 7).any(axis=1)
    predictions = model.predict(x_test, verbose=0)
    assert np.mean(predictions.argmax(axis=1) == y_test) > 0.95
    longer = lk.Sequential.from_config(model.get_config())
    longer.build((None, 12))
    longer.set_weights(model.get_weights())
    padded = longer.predict(pad(x_test, 4, before=False), verbose=0)
    np.testing.assert_allclose(padded, predictions, rtol=1e-5, atol=1e-6)


def test_a_mask_of_the_wrong_length_fails_before_any_step(rng) -> None:
    layer = LSTM(3)
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    with pytest.raises(ShapeError, match=r"mask of shape \(2, 4\) .* expected .* \(2, 5\)"):
        layer(x, mask=np.ones((2, 4), bool))
    assert not layer.final_states  # no step ran
    np.testing.assert_array_equal(layer(x, mask=np.ones((2, 5), bool)), layer(x))


def test_a_layer_of_ones_own_with_supports_masking_passes_the_mask_on(rng) -> None:
    # keras.io "Understanding masking & padding": MyActivation sets
    # self.supports_masking = True so the Embedding's mask reaches the LSTM
    from attrs import define

    from loopkit.layers import Layer

    @define(eq=False, slots=False)
    class MyActivation(Layer):
        def __attrs_post_init__(self) -> None:
            super().__attrs_post_init__()
            self.supports_masking = True

        def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
            self._x = x
            return np.maximum(x, 0.0)

        def backward(self, dy: np.ndarray) -> np.ndarray:
            return dy * (self._x > 0)

    def build(steps: int) -> lk.Model:
        inputs = lk.Input(shape=(steps,), dtype="int32")
        x = MyActivation()(Embedding(input_dim=10, output_dim=4, mask_zero=True)(inputs))
        return lk.Model(inputs, LSTM(3)(x))

    short, padded = build(3), build(5)
    padded.set_weights(short.get_weights())
    ids = np.array([[4, 2, 7], [1, 9, 3]])
    np.testing.assert_allclose(
        padded.predict(pad(ids[..., None], 2, before=False)[..., 0], verbose=0),
        short.predict(ids, verbose=0),
        atol=1e-6,
    )


def test_a_residual_add_keeps_the_mask_as_keras_merges_it(rng) -> None:
    # x + attention(x) on masked embeddings: Keras's Add or-s its inputs' masks, so
    # the pooling after a residual block still skips the padding
    from loopkit.layers import LayerNormalization, MultiHeadAttention

    def build(steps: int) -> lk.Model:
        tokens = lk.Input(shape=(steps,), dtype="int32")
        x = Embedding(10, 4, mask_zero=True)(tokens)
        h = LayerNormalization()(x + MultiHeadAttention(2, 2)(x, x))
        h = lk.layers.Add()([h, Dense(4)(h)])
        return lk.Model(tokens, Dense(1)(GlobalAveragePooling1D()(h)), dtype="float64")

    short, padded = build(3), build(6)
    padded.set_weights(short.get_weights())
    ids = np.array([[4, 2, 7], [1, 9, 3]])
    np.testing.assert_allclose(
        padded.predict(np.pad(ids, ((0, 0), (0, 3))), verbose=0),
        short.predict(ids, verbose=0),
        atol=1e-10,
    )
    padded.compile("sgd", "mse")
    check_model_gradients(
        padded,
        np.array([[4, 2, 7, 0, 0, 0], [1, 9, 0, 0, 0, 0]]),
        rng.standard_normal((2, 1)),
    )


def test_merge_masks_follow_keras_rules() -> None:
    from loopkit.layers import Add, Concatenate, Dot

    x = np.zeros((2, 3, 4))
    a, b = np.array([[1, 1, 0], [1, 0, 0]], bool), np.array([[1, 0, 0], [1, 1, 1]], bool)
    np.testing.assert_array_equal(Add().compute_mask([x, x], [a, b]), a | b)
    assert Add().compute_mask([x, x], [a, None]) is None  # Keras: None unless all have one
    np.testing.assert_array_equal(
        Concatenate().compute_mask([x, x], [a, None]), np.ones((2, 3))
    )
    np.testing.assert_array_equal(
        Concatenate(axis=1).compute_mask([x, np.zeros((2, 2, 4))], [a, None]),
        np.concatenate([a, np.ones((2, 2), bool)], axis=1),
    )
    assert Concatenate().compute_mask([x, x], [None, None]) is None
    assert Dot(axes=2).compute_mask([x, x], [a, b]) is None
