"""Functional models list their layers, and so their weights, in Keras 3's order.

Keras 3 orders a functional model's layers by depth (longest distance to an output,
deepest first), ties by a depth-first walk from the outputs. The expected orders and
weight shapes below were recorded from Keras 3.15.1 (JAX backend) by building the
same three graphs with ``keras.layers`` and printing ``[l.name for l in
model.layers]`` and ``[w.shape for w in model.weights]``. Calling order alone gives
another order for the two multi-input graphs, which made Keras's ``get_weights()``
fail to load with ``set_weights``.
"""

from __future__ import annotations

import numpy as np

import loopkit as lk
from loopkit import layers


def encoder_decoder() -> lk.Model:
    """The RNN guide's encoder-decoder: the decoder starts from the encoder's states."""
    encoder_in = layers.Input(shape=(5,), name="encoder_in")
    encoded = layers.Embedding(1000, 8, name="encoder_embedding")(encoder_in)
    _, h, c = layers.LSTM(8, return_state=True, name="encoder")(encoded)
    decoder_in = layers.Input(shape=(5,), name="decoder_in")
    decoded = layers.Embedding(2000, 8, name="decoder_embedding")(decoder_in)
    decoded = layers.LSTM(8, name="decoder")(decoded, initial_state=[h, c])
    return lk.Model([encoder_in, decoder_in], layers.Dense(10, name="dense")(decoded))


def two_inputs() -> lk.Model:
    a, b = layers.Input((4,), name="a"), layers.Input((3,), name="b")
    xa = layers.Dense(5, name="da")(a)
    xb = layers.Dense(7, name="db2")(layers.Dense(6, name="db")(b))
    merged = layers.Concatenate(name="concatenate")([xa, xb])
    return lk.Model([a, b], layers.Dense(1, name="out")(merged))


def two_branches() -> lk.Model:
    x = layers.Input((4,), name="x")
    left = layers.Dense(3, name="l1")(x)
    right = layers.Dense(3, name="r2")(layers.Dense(3, name="r1")(x))
    return lk.Model(x, layers.Add(name="add")([right, left]))


KERAS_ORDER = {  # recorded from Keras 3.15.1, see the module docstring
    encoder_decoder: [
        "encoder_in", "decoder_in", "encoder_embedding", "decoder_embedding",
        "encoder", "decoder", "dense",
    ],
    two_inputs: ["b", "a", "db", "da", "db2", "concatenate", "out"],
    two_branches: ["x", "r1", "r2", "l1", "add"],
}  # fmt: skip
KERAS_WEIGHT_SHAPES = {  # recorded with the orders above
    two_inputs: [(3, 6), (6,), (4, 5), (5,), (6, 7), (7,), (12, 1), (1,)],
    encoder_decoder: [
        (1000, 8), (2000, 8), (8, 32), (8, 32), (32,), (8, 32), (8, 32), (32,), (8, 10),
        (10,),
    ],
    two_branches: [(4, 3), (3,), (3, 3), (3,), (4, 3), (3,)],
}  # fmt: skip


def test_layers_come_in_keras_order() -> None:
    for build, names in KERAS_ORDER.items():
        assert [layer.name for layer in build().layers] == names, build.__name__


def test_weights_come_in_keras_order_so_keras_weights_load() -> None:
    for build, shapes in KERAS_WEIGHT_SHAPES.items():
        model = build()
        assert [tuple(w.shape) for w in model.get_weights()] == shapes, build.__name__
        rng = np.random.default_rng(0)
        keras_weights = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        model.set_weights(keras_weights)
        for mine, theirs in zip(model.get_weights(), keras_weights, strict=True):
            np.testing.assert_array_equal(mine, theirs)


def test_the_order_does_not_change_what_the_model_computes() -> None:
    model = two_inputs()
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    w = {layer.name: layer.get_weights() for layer in model.layers if layer.get_weights()}
    xa = a @ w["da"][0] + w["da"][1]
    xb = (b @ w["db"][0] + w["db"][1]) @ w["db2"][0] + w["db2"][1]
    expected = np.concatenate([xa, xb], axis=1) @ w["out"][0] + w["out"][1]
    got = model.predict([a, b], verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
