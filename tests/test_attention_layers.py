"""Attention and AdditiveAttention: gradients, masks, graphs and bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from attention_checks import check_call_gradients

import loopkit as lk
from loopkit import ConfigError, ShapeError
from loopkit.layers import (
    AdditiveAttention,
    Attention,
    Dense,
    Embedding,
    GlobalAveragePooling1D,
)
from loopkit.testing import check_model_gradients

MAKERS = {
    "dot": lambda **kw: Attention(**kw),
    "dot_scaled": lambda **kw: Attention(use_scale=True, **kw),
    "concat": lambda **kw: Attention(score_mode="concat", **kw),
    "concat_scaled": lambda **kw: Attention(use_scale=True, score_mode="concat", **kw),
    "additive": lambda **kw: AdditiveAttention(**kw),
    "additive_unscaled": lambda **kw: AdditiveAttention(use_scale=False, **kw),
}
QUERY_MASK = np.array([[1, 1, 0, 1], [0, 1, 1, 1]], bool)
VALUE_MASK = np.array([[1, 0, 1, 1, 0], [1, 1, 0, 1, 1]], bool)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_gradients_with_a_key_match_finite_differences(rng, kind: str) -> None:
    q, v, k = (rng.standard_normal((2, t, d)) for t, d in [(4, 3), (5, 2), (5, 3)])
    check_call_gradients(MAKERS[kind](), [q, v, k], rng)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_gradients_with_masks_causal_and_key_as_value_match(rng, kind: str) -> None:
    q, v = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 5, 3))
    grads = check_call_gradients(
        MAKERS[kind](),
        [q, v],
        rng,
        mask=[QUERY_MASK, VALUE_MASK],
        use_causal_mask=True,
        return_attention_scores=True,
    )
    assert sorted(k for k in grads if k.startswith("x")) == ["x0", "x1"]


def test_dropout_in_training_only_with_exact_gradients(rng) -> None:
    x = [rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 5, 3))]
    layer = Attention(use_scale=True, dropout=0.4)
    check_call_gradients(layer, x, rng, training=True, seed=5)
    assert not np.allclose(layer.forward(x, True).copy(), layer.forward(x, False))


def test_masked_steps_get_no_attention_and_padded_queries_output_zeros(rng) -> None:
    q = rng.standard_normal((2, 4, 3)).astype(np.float32)
    v = rng.standard_normal((2, 5, 3)).astype(np.float32)
    out, scores = Attention()(
        [q, v], mask=[QUERY_MASK, VALUE_MASK], return_attention_scores=True
    )
    np.testing.assert_array_equal(scores * ~VALUE_MASK[:, None, :], 0.0)
    np.testing.assert_array_equal(out[~QUERY_MASK], 0.0)
    _, causal = AdditiveAttention()(
        [q, v], use_causal_mask=True, return_attention_scores=True
    )
    np.testing.assert_array_equal(np.triu(causal[0], 1), 0.0)


@pytest.mark.parametrize("kind", ["dot_scaled", "concat_scaled", "additive"])
def test_embedding_masks_reach_the_layer_in_a_graph_and_gradients_match(rng, kind) -> None:
    questions, answers = lk.Input((4,), dtype="int32"), lk.Input((5,), dtype="int32")
    embed_q, embed_v = Embedding(9, 3, mask_zero=True), Embedding(9, 3, mask_zero=True)
    q, v = embed_q(questions), embed_v(answers)
    attended = MAKERS[kind]()([q, v])
    pooled = GlobalAveragePooling1D()(attended)  # uses the query mask passed on
    model = lk.Model([questions, answers], Dense(1)(pooled), dtype="float64")
    model.compile("sgd", "mse")
    x = [
        np.array([[1, 2, 3, 0], [4, 5, 0, 0]]),
        np.array([[6, 7, 0, 0, 0], [8, 1, 2, 3, 0]]),
    ]
    check_model_gradients(model, x, rng.standard_normal((2, 1)))
    layer = next(lay for lay in model.layers if isinstance(lay, Attention))
    out = layer(
        [embed_q.forward(x[0]).copy(), embed_v.forward(x[1]).copy()],
        mask=[x[0] != 0, x[1] != 0],
    )
    np.testing.assert_allclose(
        model.predict(x, verbose=0),
        Dense_apply(model, out, x[0] != 0),
        rtol=1e-6,
    )


def Dense_apply(model: Any, out: np.ndarray, mask: np.ndarray) -> np.ndarray:
    kernel, bias = model.layers[-1].parameters
    pooled = (out * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    result: np.ndarray = pooled @ kernel.value + bias.value
    return result


def test_bad_arguments_and_shapes_fail_clearly(rng) -> None:
    with pytest.raises(ConfigError, match=r"score_mode='dott'.*Did you mean 'dot'"):
        Attention(score_mode="dott")
    q, v = lk.Input((4, 3)), lk.Input((5, 2))
    with pytest.raises(
        ShapeError, match=r"query and key must have the same last dimension"
    ):
        Attention()([q, v])
    with pytest.raises(
        ShapeError, match=r"value and key must have the same number of steps"
    ):
        AdditiveAttention()([q, v, lk.Input((6, 3))])
    with pytest.raises(TypeError, match=r"call it as layer\(\[a, b\]\)"):
        Attention()(q)
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    with pytest.raises(ShapeError, match=r"got a mask of shape \(2, 5\)"):
        Attention()([x, x], mask=[np.ones((2, 5)), None])
