"""Custom metrics the Keras 3 way: add_variable in __init__, assign in update_state."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import loopkit as keras
from loopkit.errors import ShapeError

# A fixed, untrainable identity model: predictions are the inputs, so the metric
# values over an epoch can be counted by hand.
X = np.array([[0.9], [0.2], [0.7], [0.6], [0.1], [0.8]], np.float32)
Y = np.array([[1.0], [1.0], [0.0], [1.0], [0.0], [1.0]], np.float32)
W = np.array([2.0, 1.0, 3.0, 0.5, 1.0, 4.0], np.float32)
# y_pred > 0.5 and y_true: samples 0, 3, 5 -> 3 unweighted, 2 + 0.5 + 4 = 6.5 weighted.


class TP(keras.metrics.Metric):  # the brief's metric, as a Keras user writes it
    def __init__(self, name: str = "tp", **kw: Any) -> None:
        super().__init__(name=name, **kw)
        self.tp = self.add_variable(shape=(), name="tp", initializer="zeros")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true = np.asarray(y_true).astype(bool)
        y_pred = np.asarray(y_pred) > 0.5
        values = np.logical_and(y_true, y_pred).astype("float32")
        if sample_weight is not None:
            shape = values.shape[:1] + (1,) * (values.ndim - 1)
            values = values * np.asarray(sample_weight, "float32").reshape(shape)
        self.tp.assign_add(np.sum(values))

    def result(self) -> Any:
        return self.tp

    def reset_state(self) -> None:
        self.tp.assign(0.0)


class Positives(keras.metrics.Metric):
    """No reset_state: the base resets every add_weight variable, as Keras's does."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.count = self.add_weight(shape=(2,), initializer="ones", name="count")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        self.count.assign_add([np.sum(np.asarray(y_true) > 0.5), len(y_true)])

    def result(self) -> Any:
        return self.count[0] / self.count[1]


class MyMean(keras.metrics.Metric):
    """Keras's MeanMetricWrapper pattern by hand: weighted mean absolute error."""

    def __init__(self, name: str = "my_mean", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        err = np.abs(np.asarray(y_true) - np.asarray(y_pred)).reshape(len(y_true), -1)
        values = err.mean(axis=1)
        w = np.ones(len(values)) if sample_weight is None else np.asarray(sample_weight)
        self.total.assign_add(np.sum(values * w))
        self.count.assign_add(np.sum(w))

    def result(self) -> Any:
        return self.total / self.count


def identity_model(*metrics: Any, weighted: Any = None) -> keras.Sequential:
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(
                1, use_bias=False, kernel_initializer="ones", trainable=False
            ),
        ]
    )
    model.compile("sgd", "mse", metrics=list(metrics), weighted_metrics=weighted)
    return model


def test_tp_logs_the_epochs_count_in_fit_and_evaluate() -> None:
    model = identity_model(TP())
    history = model.fit(X, Y, epochs=2, batch_size=4, verbose=0)
    # Accumulated over the epoch's two batches, and reset between epochs.
    assert history.history["tp"] == [3.0, 3.0]
    assert all(type(v) is float for v in history.history["tp"])
    logs = model.evaluate(X, Y, batch_size=2, verbose=0, return_dict=True)
    assert logs["tp"] == 3.0 and type(logs["tp"]) is float


def test_tp_weights_samples_in_fit_and_evaluate() -> None:
    # As in Keras: weighted_metrics get sample_weight, metrics do not.
    model = identity_model(TP(), weighted=[TP(name="weighted_tp")])
    history = model.fit(X, Y, sample_weight=W, epochs=1, batch_size=4, verbose=0)
    assert history.history["weighted_tp"] == [6.5]
    assert history.history["tp"] == [3.0]
    logs = model.evaluate(X, Y, sample_weight=W, batch_size=3, verbose=0, return_dict=True)
    assert (logs["weighted_tp"], logs["tp"]) == (6.5, 3.0)


def test_tp_called_directly_updates_then_returns_result() -> None:
    m = TP()
    assert m.name == "tp"
    assert float(m(Y[:3], X[:3])) == 1.0  # sample 0
    assert float(m(Y[3:], X[3:], W[3:])) == 1.0 + 0.5 + 4.0  # samples 3, 5, weighted
    assert [float(v) for v in m.variables] == [5.5]
    m.reset_state()
    assert float(m.result()) == 0.0


def test_metric_without_reset_state_is_zeroed_between_epochs_as_in_keras() -> None:
    m = Positives()
    np.testing.assert_array_equal(m.count.numpy(), [1.0, 1.0])  # the initializer
    assert m.name == "positives"  # Keras's default: the class name in snake_case
    model = identity_model(m)
    history = model.fit(X, Y, epochs=2, batch_size=4, verbose=0)
    # Keras's default reset_state assigns zeros (not the initializer) to every
    # variable at each epoch's start: 4 positive targets of 6, each epoch.
    assert history.history["positives"] == pytest.approx([4 / 6, 4 / 6], abs=1e-7)
    np.testing.assert_array_equal(m.count.numpy(), [4.0, 6.0])
    m.reset_state()
    np.testing.assert_array_equal(m.count.numpy(), [0.0, 0.0])


def test_two_variable_mean_metric_matches_hand_computed_weighted_mean() -> None:
    err = np.abs(Y - X)[:, 0].astype(np.float64)
    model = identity_model(weighted=[MyMean()])
    history = model.fit(X, Y, epochs=1, batch_size=4, verbose=0)
    assert history.history["my_mean"] == pytest.approx([err.mean()], rel=1e-6)
    logs = model.evaluate(X, Y, sample_weight=W, batch_size=4, verbose=0, return_dict=True)
    expected = float(np.sum(err * W) / np.sum(W))
    assert logs["my_mean"] == pytest.approx(expected, rel=1e-6)
    m = model.metrics[-1]
    assert [v.name for v in m.variables] == ["total", "count"]
    assert float(m.variables[1]) == pytest.approx(float(np.sum(W)))


def test_variables_are_float32_unless_the_metric_or_call_says_otherwise() -> None:
    assert MyMean().total.dtype == "float32"
    assert MyMean(dtype="float64").total.dtype == "float64"


def test_state_of_add_variable_metrics_saves_and_restores() -> None:
    m = MyMean()
    m.update_state(Y, X, W)
    restored = MyMean()
    restored.set_state(m.get_state())
    assert float(restored.result()) == float(m.result())


def test_assign_of_another_shape_is_a_shape_error() -> None:
    m = TP()
    with pytest.raises(ShapeError, match="shape"):
        m.tp.assign(np.zeros(3))


def test_one_instance_in_metrics_and_weighted_metrics_is_copied_with_variables() -> None:
    m = TP()
    model = identity_model(m, weighted=[m])  # compile deep-copies the weighted one
    history = model.fit(X, Y, sample_weight=W, epochs=1, batch_size=4, verbose=0)
    assert history.history["tp"] == [3.0]
    assert history.history["weighted_tp"] == [6.5]
    copied = model.metrics[-1]
    assert copied.tp is not m.tp and copied.variables == [copied.tp]


def test_a_checkpoint_restores_add_variable_state(tmp_path: Any) -> None:
    model = identity_model(MyMean())
    model.evaluate(X, Y, batch_size=4, verbose=0)
    saved = float(model.metrics[-1].result())
    keras.save_checkpoint(model, tmp_path / "run.ckpt")
    model.metrics[-1].reset_state()
    keras.load_checkpoint(model, tmp_path / "run.ckpt")
    assert float(model.metrics[-1].result()) == saved
    assert float(model.metrics[-1].variables[1]) == len(X)
