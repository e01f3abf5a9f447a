"""compile(weighted_metrics=): Keras 3's split between weighted and unweighted metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import loopkit as lk
from loopkit.layers import Dense


def _classifier(**compile_args: object) -> lk.Sequential:
    lk.set_random_seed(1)
    model = lk.Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    model.compile("sgd", "sparse_categorical_crossentropy", **compile_args)
    return model


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=(30, 4)).astype(np.float32), rng.integers(0, 3, 30)


def test_class_weight_reaches_weighted_metrics_only(data) -> None:
    x, y = data
    model = _classifier(metrics=["accuracy"], weighted_metrics=["accuracy"])
    before = model.predict(x, verbose=0)
    table = {0: 5.0, 1: 1.0, 2: 0.0}
    history = model.fit(x, y, batch_size=30, epochs=1, class_weight=table, verbose=0)
    # one full batch: the epoch's metrics are those of the weights before the step
    right = (before.argmax(axis=1) == y).astype(np.float64)
    w = np.array([table[c] for c in y])
    assert list(history.history)[:3] == ["loss", "accuracy", "weighted_accuracy"]
    assert history.history["accuracy"][0] == pytest.approx(right.mean())
    assert history.history["weighted_accuracy"][0] == pytest.approx(
        np.sum(w * right) / np.sum(w)
    )


def test_metrics_alone_ignore_sample_weight_as_in_keras(data) -> None:
    x, y = data
    w = np.linspace(0.0, 2.0, 30)
    model = _classifier(metrics=["accuracy"])
    weighted = model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    plain = model.evaluate(x, y, verbose=0, return_dict=True)
    assert weighted["accuracy"] == plain["accuracy"]
    assert weighted["loss"] != plain["loss"]  # the loss does take them


def test_several_outputs_name_weighted_metrics_per_output(rng) -> None:
    inputs = lk.Input(shape=(3,))
    a, b = Dense(1, name="a")(inputs), Dense(1, name="b")(inputs)
    model = lk.Model(inputs, [a, b])
    model.compile(
        "sgd", "mse", metrics={"a": ["mae"]}, weighted_metrics={"a": ["mae"], "b": ["mse"]}
    )
    x = rng.normal(size=(8, 3))
    logs = model.evaluate(x, [x[:, :1], x[:, 1:2]], verbose=0, return_dict=True)
    assert [k for k in logs if "loss" not in k] == ["a_mae", "a_weighted_mae", "b_mse"]
    assert model.metrics_names[-3:] == ["a_mae", "a_weighted_mae", "b_mse"]


def test_a_saved_model_keeps_its_weighted_metrics(data, tmp_path: Path) -> None:
    x, y = data
    model = _classifier(metrics=["accuracy"], weighted_metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = lk.load_model(tmp_path / "m.npz")
    w = np.linspace(0.0, 2.0, 30)
    assert loaded.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True) == (
        model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    )
    assert loaded.metrics_names == ["loss", "accuracy", "weighted_accuracy"]


def test_a_weighted_metric_named_twice_is_refused(data) -> None:
    with pytest.raises(lk.ConfigError, match=r"weighted_metrics=.*'mae'.*twice"):
        _classifier(weighted_metrics=["mae", "mae"])
