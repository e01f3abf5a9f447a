"""Functional models give Keras 3's numbers: predictions, logs and one SGD step.

The expected values in keras_functional_data.py were recorded from Keras 3.15.1 on
JAX with the same architectures, weights and inputs as below (see that file).
"""

from __future__ import annotations

import numpy as np
import pytest
from keras_functional_data import KERAS

import loopkit as lk
from loopkit.layers import Add, Concatenate, Dense
from loopkit.optimizers import SGD


def known_weights(model: lk.Model, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal(w.shape) * 0.5).astype("float32") for w in model.get_weights()
    ]


def check_against_keras(model, key, seed, x, y, predictions, **compile_args) -> None:
    expected = KERAS[key]
    assert [list(w.shape) for w in model.get_weights()] == expected["shapes"]
    model.set_weights(known_weights(model, seed))
    got_all = predictions(model.predict(x, verbose=0))
    want_all = expected["predictions"] if len(got_all) > 1 else [expected["predictions"]]
    for got, want in zip(got_all, want_all, strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    model.compile(optimizer=SGD(0.1), **compile_args)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert set(logs) == set(expected["logs"])
    for name, value in expected["logs"].items():
        assert logs[name] == pytest.approx(value, rel=2e-5)
    for got, want in zip(model.get_weights(), expected["weights_after"], strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


def test_a_residual_model_matches_keras() -> None:
    inputs = lk.Input(shape=(5,), name="x")
    d1 = Dense(6, activation="relu", name="d1")(inputs)
    d2 = Dense(6, activation="tanh", name="d2")(d1)
    out = Dense(3, activation="softmax", name="out")(Add(name="add")([d1, d2]))
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 5)).astype("float32")
    check_against_keras(
        lk.Model(inputs, out),
        "residual",
        1,
        x,
        np.array([0, 2, 1, 2]),
        lambda p: [p],
        loss="sparse_categorical_crossentropy",
    )


def test_a_two_input_model_matches_keras() -> None:
    a, b = lk.Input(shape=(4,), name="a"), lk.Input(shape=(2,), name="b")
    ha = Dense(3, activation="relu", name="da")(a)
    hb = Dense(3, activation="tanh", name="db")(b)
    out = Dense(1, name="out")(Concatenate(name="cat")([ha, hb]))
    rng = np.random.default_rng(20)
    xa = rng.standard_normal((4, 4)).astype("float32")
    xb = rng.standard_normal((4, 2)).astype("float32")
    y = rng.standard_normal((4, 1)).astype("float32")
    check_against_keras(
        lk.Model([a, b], out), "two_inputs", 2, [xa, xb], y, lambda p: [p], loss="mse"
    )


def test_a_two_output_model_matches_keras_and_logs_unweighted_output_losses() -> None:
    inputs = lk.Input(shape=(4,), name="x")
    h = Dense(5, activation="relu", name="h")(inputs)
    cls = Dense(3, activation="softmax", name="cls")(h)
    reg = Dense(1, name="reg")(h)
    rng = np.random.default_rng(30)
    x = rng.standard_normal((4, 4)).astype("float32")
    y = [np.array([2, 0, 1, 1]), rng.standard_normal((4, 1)).astype("float32")]
    check_against_keras(
        lk.Model(inputs, [cls, reg]),
        "two_outputs",
        3,
        x,
        y,
        lambda p: p,
        loss=["sparse_categorical_crossentropy", "mse"],
        loss_weights=[1.0, 0.5],
    )
