"""Attention layers against Keras 3: outputs, scores and one SGD step from known weights.

The numbers in ``keras_attention_references.py`` were produced with Keras 3 on JAX
by ``make_keras_attention_references.py`` (its docstring says how to re-run it);
weights and inputs are the formula ``known`` in both places, so only Keras's
results are stored. CI does not need Keras.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from keras_attention_references import REFERENCES

import loopkit as lk
from loopkit.layers import AdditiveAttention, Attention, Masking, MultiHeadAttention
from loopkit.optimizers import SGD

QUERY_MASK = np.array([[1, 1, 1, 0], [0, 1, 1, 1]], bool)
VALUE_MASK = np.array([[1, 0, 1], [1, 1, 0]], bool)
ATTENTION_MASK = np.array(
    [
        [[1, 0, 1], [1, 1, 0], [1, 1, 1], [1, 0, 0]],
        [[1, 1, 1], [1, 0, 1], [1, 1, 0], [1, 1, 1]],
    ],
    np.float32,
)
PADDING = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1]], np.float32)


def known(shape: tuple[int, ...], k: float) -> np.ndarray:
    """The generator's formula: ``0.6 sin(0.7 i + k)`` in C order, as float32."""
    n = int(np.prod(shape))
    return (0.6 * np.sin(0.7 * np.arange(n) + k)).reshape(shape).astype(np.float32)


QUERY, VALUE, KEY = known((2, 4, 5), 0.5), known((2, 3, 6), 1.5), known((2, 3, 4), 2.5)
VALUE5, KEY5 = known((2, 3, 5), 1.5), known((2, 3, 5), 2.5)
SELF_X = known((2, 5, 4), 0.5) * PADDING[:, :, None]


def set_known(model: Any) -> None:
    model.set_weights([known(w.shape, 1.0 + i) for i, w in enumerate(model.get_weights())])


def check_one_sgd_step(model: Any, x: Any, expected: dict[str, Any]) -> None:
    output = model.predict(x, verbose=0)
    np.testing.assert_allclose(output, expected["output"], rtol=1e-5, atol=1e-6)
    model.compile(optimizer=SGD(learning_rate=0.5), loss="mse")
    model.train_on_batch(x, known(output.shape, 7.0))
    assert [w.shape for w in model.get_weights()] == [w.shape for w in expected["trained"]]
    for mine, theirs in zip(model.get_weights(), expected["trained"], strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


def test_cross_attention_with_key_attention_and_causal_masks_matches_keras() -> None:
    expected = REFERENCES["mha_cross"]
    q, v, k = lk.Input((4, 5)), lk.Input((3, 6)), lk.Input((3, 4))
    am = lk.Input((4, 3))
    mha = MultiHeadAttention(2, 3, value_dim=2, output_shape=7)
    out = mha(q, v, key=k, attention_mask=am, use_causal_mask=True)
    model = lk.Model([q, v, k, am], out)
    names = [p.name for p in mha.parameters]
    assert names == [n.split("/", 1)[1].replace("/", "_") for n in expected["weight_names"]]
    set_known(model)
    x = [QUERY, VALUE, KEY, ATTENTION_MASK]
    _, scores = mha(
        QUERY,
        VALUE,
        key=KEY,
        attention_mask=ATTENTION_MASK,
        use_causal_mask=True,
        return_attention_scores=True,
    )
    np.testing.assert_allclose(scores, expected["scores"], rtol=1e-5, atol=1e-7)
    check_one_sgd_step(model, x, expected)


def test_self_attention_on_one_tensor_matches_keras_after_one_step() -> None:
    x = lk.Input((5, 4))
    model = lk.Model(x, MultiHeadAttention(2, 3)(x, x, use_causal_mask=True))
    set_known(model)
    check_one_sgd_step(model, SELF_X, REFERENCES["mha_self"])


def test_padding_masks_from_masking_combine_as_in_keras() -> None:
    expected = REFERENCES["mha_self_masked"]
    x = lk.Input((5, 4))
    masked = Masking()(x)
    mha = MultiHeadAttention(2, 3, value_dim=2)
    model = lk.Model(x, mha(masked, masked, use_causal_mask=True))
    set_known(model)
    np.testing.assert_allclose(
        model.predict(SELF_X, verbose=0), expected["output"], rtol=1e-5, atol=1e-6
    )
    _, scores = mha(
        SELF_X,
        SELF_X,
        mask=[None, PADDING],
        use_causal_mask=True,
        return_attention_scores=True,
    )
    np.testing.assert_allclose(
        scores, expected["value_masked_scores"], rtol=1e-5, atol=1e-7
    )


ATTENTION_CASES = {
    "attention_dot": (lambda: Attention(use_scale=True), VALUE, KEY5),
    "attention_concat": (
        lambda: Attention(use_scale=True, score_mode="concat"),
        VALUE5,
        KEY5,
    ),
    "additive": (AdditiveAttention, VALUE, KEY5),
}


@pytest.mark.parametrize("name", sorted(ATTENTION_CASES))
def test_attention_layers_match_keras_with_masks_and_after_one_step(name: str) -> None:
    make, value, key = ATTENTION_CASES[name]
    expected = REFERENCES[name]
    q, v, k = lk.Input((4, 5)), lk.Input(value.shape[1:]), lk.Input(key.shape[1:])
    layer = make()
    model = lk.Model([q, v, k], layer([q, v, k], use_causal_mask=True))
    assert [p.name for p in layer.parameters] == [
        n.rsplit("/", 1)[1] for n in expected["weight_names"]
    ]
    set_known(model)
    x = [QUERY, value, key]
    masked, scores = layer(x, mask=[QUERY_MASK, VALUE_MASK], return_attention_scores=True)
    np.testing.assert_allclose(masked, expected["masked_output"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores, expected["masked_scores"], rtol=1e-5, atol=1e-7)
    pair = make()
    pair.setup([(4, 5), (3, 5)])
    for mine, theirs in zip(pair.parameters, layer.parameters, strict=True):
        mine.value[...] = theirs.value
    np.testing.assert_allclose(
        pair([QUERY, VALUE5], mask=[QUERY_MASK, VALUE_MASK]),
        expected["pair_output"],
        rtol=1e-5,
        atol=1e-6,
    )
    check_one_sgd_step(model, x, expected)
