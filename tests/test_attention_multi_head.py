"""MultiHeadAttention: gradients by finite differences, masks, graphs and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from attention_checks import check_call_gradients

import loopkit as lk
from loopkit import ConfigError, ShapeError
from loopkit.layers import (
    Add,
    Dense,
    Embedding,
    GlobalAveragePooling1D,
    LayerNormalization,
    MultiHeadAttention,
)
from loopkit.testing import check_model_gradients

PADDING = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1]], bool)


def test_cross_attention_gradients_match_finite_differences(rng) -> None:
    q, v, k = (rng.standard_normal((2, t, d)) for t, d in [(4, 5), (3, 6), (3, 4)])
    layer = MultiHeadAttention(2, 3, value_dim=2, output_shape=(2, 3))
    grads = check_call_gradients(layer, [q, v, k], rng)
    assert grads["attention_output_kernel"].shape == (2, 2, 2, 3)


def test_attention_causal_and_padding_masks_gradients_match(rng) -> None:
    t = 5
    x = [rng.standard_normal((3, t, 4)) for _ in range(3)]
    attention = (rng.random((3, t, t)) > 0.3).astype(np.float64)
    attention[:, :, 0] = 1.0  # no fully masked row: every query sees the first step
    padding = PADDING.copy()
    padding[:, 0] = True
    check_call_gradients(
        MultiHeadAttention(2, 3),
        [*x, attention],
        rng,
        mask=[padding, padding, None, None],
        use_causal_mask=True,
    )


def test_key_defaults_to_value_and_scores_output_has_gradients(rng) -> None:
    q, v = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 6, 3))
    layer = MultiHeadAttention(3, 2)
    # The call binds key=value, so the model sums both gradients into value.
    inputs, options = layer.call_arguments(q, v, return_attention_scores=True)
    assert inputs[2] is v and options["return_attention_scores"]
    check_call_gradients(layer, [q, v, v.copy()], rng, return_attention_scores=True)


def test_dropout_on_probabilities_in_training_only_with_exact_gradients(rng) -> None:
    x = [rng.standard_normal((2, 4, 3)) for _ in range(3)]
    layer = MultiHeadAttention(2, 2, dropout=0.5)
    check_call_gradients(layer, x, rng, training=True, seed=3)
    _, scores = layer.forward(x, True, return_attention_scores=True)
    np.testing.assert_allclose(scores.sum(-1), 1.0)  # scores are before dropout
    y_train = layer.forward(x, True).copy()
    y_test = layer.forward(x, False).copy()
    assert not np.allclose(y_train, y_test)
    np.testing.assert_array_equal(layer.forward(x, False), y_test)


def test_fully_masked_rows_give_zero_probabilities_as_in_keras(rng) -> None:
    layer = MultiHeadAttention(1, 2)
    x = rng.standard_normal((1, 3, 2)).astype(np.float32)
    _, scores = layer(
        x,
        x,
        mask=[np.array([[1, 1, 0]]), np.array([[1, 0, 1]])],
        return_attention_scores=True,
    )
    np.testing.assert_array_equal(scores[0, 0, 2], 0.0)  # a padded query sees nothing
    np.testing.assert_array_equal(scores[0, 0, :2, 1], 0.0)  # nor a padded value
    np.testing.assert_allclose(scores[0, 0, :2].sum(-1), 1.0, rtol=1e-6)


def self_attention_model(vocab: int = 7) -> lk.Model:
    tokens = lk.Input((5,), dtype="int32")
    emb = Embedding(vocab, 4, mask_zero=True)(tokens)
    mha = MultiHeadAttention(2, 3, name="mha")
    h = mha(emb, emb, use_causal_mask=True)
    h = mha(h, emb)  # a shared layer, called twice, key = value = emb
    return lk.Model(tokens, Dense(1)(GlobalAveragePooling1D()(h)), dtype="float64")


def test_embedding_masks_self_attention_and_a_shared_layer_match_gradients(rng) -> None:
    model = self_attention_model()
    model.compile("sgd", "mse")
    tokens = np.array([[3, 1, 4, 0, 0], [2, 6, 5, 3, 0], [1, 2, 3, 4, 5]])
    check_model_gradients(model, tokens, rng.standard_normal((3, 1)))


def test_the_output_carries_the_query_mask(rng) -> None:
    tokens = np.array([[3, 1, 4, 0, 0], [2, 6, 5, 3, 0]])
    inputs = lk.Input((5,), dtype="int32")
    emb = Embedding(7, 4, mask_zero=True)(inputs)
    h = MultiHeadAttention(2, 3)(emb, emb)
    pooled = GlobalAveragePooling1D()(h)  # averages the unmasked steps only
    model = lk.Model(inputs, [pooled, h])
    pooled_out, steps = model.predict(tokens, verbose=0)
    mask = tokens != 0
    expected = (steps * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    np.testing.assert_allclose(pooled_out, expected, rtol=1e-5)


def test_self_attention_on_one_tensor_sums_both_gradients(rng) -> None:
    x = lk.Input((4, 3))
    h = Dense(3, name="proj")(x)
    out = MultiHeadAttention(2, 2)(h, h, key=h)  # one tensor as query, value and key
    model = lk.Model(x, out, dtype="float64")
    model.compile("sgd", "mse")
    check_model_gradients(
        model, rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 3))
    )


def test_attention_mask_input_and_scores_output_in_a_graph(rng) -> None:
    q, v, am = lk.Input((3, 2)), lk.Input((4, 2)), lk.Input((3, 4))
    out, scores = MultiHeadAttention(2, 2)(
        q, v, attention_mask=am, return_attention_scores=True
    )
    assert out.shape == (None, 3, 2) and scores.shape == (None, 2, 3, 4)
    model = lk.Model([q, v, am], [Dense(1)(out), scores], dtype="float64")
    model.compile("sgd", ["mse", "mse"])
    mask = (rng.random((2, 3, 4)) > 0.4).astype(np.float64)
    mask[:, :, 0] = 1
    x = [rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 4, 2)), mask]
    check_model_gradients(
        model, x, [rng.standard_normal((2, 3, 1)), rng.random((2, 2, 3, 4))]
    )
    _, probs = model.predict(x, verbose=0)
    np.testing.assert_array_equal(probs * (mask[:, None] == 0), 0.0)


def test_a_transformer_block_trains_with_fit(rng) -> None:
    inputs = lk.Input((6, 4))
    attended = MultiHeadAttention(2, 4)(inputs, inputs)
    h = LayerNormalization()(Add()([inputs, attended]))
    ff = Dense(4)(Dense(8, activation="relu")(h))
    h = LayerNormalization()(Add()([h, ff]))
    model = lk.Model(inputs, Dense(1)(GlobalAveragePooling1D()(h)))
    model.compile("adam", "mse")
    x = rng.standard_normal((64, 6, 4)).astype(np.float32)
    y = x[:, :, 0].max(axis=1, keepdims=True)  # needs to look across steps
    history = model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_a_model_with_attention_saves_and_loads(rng, tmp_path) -> None:
    q, v, am = lk.Input((3, 2)), lk.Input((4, 2)), lk.Input((3, 4))
    out = MultiHeadAttention(2, 2, output_shape=3)(
        q, v, attention_mask=am, use_causal_mask=True
    )
    model = lk.Model([q, v, am], out)
    x = [rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 4, 2)), np.ones((2, 3, 4))]
    model.save(str(tmp_path / "m.keras"))
    loaded = lk.saving.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(
        TypeError, match=r"MultiHeadAttention\(num_heads=2\) needs key_dim="
    ):
        MultiHeadAttention(2)
    with pytest.raises(
        ConfigError, match=r"attention_axes=\(1, 2\).*Leave attention_axes=None"
    ):
        MultiHeadAttention(2, 4, attention_axes=(1, 2))
    with pytest.raises(ConfigError, match=r"output_shape=-3"):
        MultiHeadAttention(2, 4, output_shape=-3)
    with pytest.raises(ConfigError, match=r"use_gate=True"):
        MultiHeadAttention(2, 4, use_gate=True)


def test_bad_shapes_fail_when_the_graph_is_built() -> None:
    q, v = lk.Input((3, 2)), lk.Input((4, 2))
    with pytest.raises(
        ShapeError, match=r"value and key must have the same number of steps"
    ):
        MultiHeadAttention(2, 2)(q, v, key=lk.Input((5, 2)))
    with pytest.raises(
        ShapeError, match=r"attention_mask of shape \(None, 4, 3\); expected"
    ):
        MultiHeadAttention(2, 2)(q, v, attention_mask=lk.Input((4, 3)))
    with pytest.raises(
        ShapeError, match=r"expects query of shape \(batch, steps, features\)"
    ):
        MultiHeadAttention(2, 2)(lk.Input((3,)), v)


def test_a_mask_of_the_wrong_shape_fails_eagerly(rng) -> None:
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    with pytest.raises(ShapeError, match=r"got a mask of shape \(2, 4\)"):
        MultiHeadAttention(1, 2)(x, x, mask=[None, np.ones((2, 4))])
    with pytest.raises(
        ShapeError,
        match=r"attention_mask of shape \(None, 3, 2\); expected .* \(None, 3, 3\)",
    ):
        MultiHeadAttention(1, 2)(x, x, attention_mask=np.ones((2, 3, 2)))
