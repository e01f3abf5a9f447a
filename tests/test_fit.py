"""fit, evaluate and predict: Keras semantics, validation, weighting, early checks."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import loopkit
from loopkit import ConfigError, Sequential, ShapeError, hookimpl
from loopkit.layers import BatchNormalization, Dense, Dropout
from loopkit.optimizers import SGD


class BatchCounter:
    """Counts the training and validation batches of a run."""

    def __init__(self) -> None:
        self.train = 0
        self.test = 0

    @hookimpl
    def on_train_batch_end(self) -> None:
        self.train += 1

    @hookimpl
    def on_test_batch_end(self) -> None:
        self.test += 1


def _regression(rng: np.random.Generator, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x @ rng.standard_normal((4, 2)) + 0.1).astype(np.float32)
    return x, y


def _mlp(seed: int = 0, dropout: bool = False, optimizer: Any = "adam") -> Sequential:
    loopkit.set_random_seed(seed)
    layers = [Dense(8, activation="tanh", input_dim=4)]
    layers += [Dropout(0.25)] if dropout else []
    model = Sequential([*layers, Dense(2)])
    model.compile(optimizer, "mse", metrics=["mae"])
    return model


def _same_weights(a: Sequential, b: Sequential) -> bool:
    return all(
        np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights(), strict=True)
    )


# --- the seed scenarios ---------------------------------------------------------------


def test_the_keras_two_layer_binary_classifier_learns_a_separable_problem(rng):
    x = rng.standard_normal((1000, 100)).astype(np.float32)
    y = (x @ rng.standard_normal(100) > 0).astype(np.float32)
    loopkit.set_random_seed(0)
    model = Sequential()
    model.add(Dense(32, activation="relu", input_dim=100))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=5, batch_size=32, validation_split=0.2, verbose=0)

    assert model.history is history
    assert history.epoch == [0, 1, 2, 3, 4]
    assert set(history.history) == {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
    }
    assert all(len(values) == 5 for values in history.history.values())
    assert history.history["learning_rate"] == pytest.approx([0.001] * 5)  # RMSprop default
    losses = history.history["loss"]
    assert all(later < earlier for earlier, later in itertools.pairwise(losses))
    assert history.history["accuracy"][-1] > 0.8
    assert history.history["val_accuracy"][-1] > 0.75
    # val_accuracy is the accuracy on the last 200 samples, checked independently
    predicted = model.predict(x[800:], verbose=0)[:, 0] > 0.5
    assert history.history["val_accuracy"][-1] == pytest.approx(
        np.mean(predicted == y[800:])
    )


def test_three_fit_calls_with_learning_rate_changes_follow_the_sgd_equation(rng):
    x, y = (a.astype(np.float64) for a in _regression(rng, 16))
    model = Sequential([Dense(2, input_dim=4)], dtype="float64")
    model.compile(SGD(learning_rate=0.05), "mse")
    kernel, bias = (w.copy() for w in model.get_weights())
    histories = []
    for rate in (0.05, 0.2, 0.01):  # whole-batch steps, so order does not matter
        model.optimizer.learning_rate = rate
        histories.append(model.fit(x, y, batch_size=16, epochs=2, verbose=0))
        for _ in range(2):
            grad_out = 2.0 * (x @ kernel + bias - y) / y.size
            kernel = kernel - rate * x.T @ grad_out
            bias = bias - rate * grad_out.sum(0)
    np.testing.assert_allclose(model.get_weights()[0], kernel, rtol=1e-10)
    np.testing.assert_allclose(model.get_weights()[1], bias, rtol=1e-10)
    assert [h.history["learning_rate"] for h in histories] == [
        [0.05] * 2,
        [0.2] * 2,
        [0.01] * 2,
    ]
    assert model.history is histories[-1] and model.optimizer.iterations == 6
    assert histories[1].history["loss"][0] < histories[0].history["loss"][0]


def test_successive_fit_calls_continue_weights_optimizer_state_and_shuffles(rng):
    x, y = _regression(rng)
    whole = _mlp(3, dropout=True)
    whole.fit(x, y, batch_size=8, epochs=3, verbose=0)
    pieces = _mlp(3, dropout=True)
    for epoch in range(3):
        history = pieces.fit(
            x, y, batch_size=8, epochs=epoch + 1, initial_epoch=epoch, verbose=0
        )
        assert history.epoch == [epoch]
    assert _same_weights(whole, pieces)
    assert whole.optimizer.iterations == pieces.optimizer.iterations == 15
    assert pieces.state.global_step == 15


def test_train_on_batch_in_a_custom_loop_matches_fit_without_shuffling(rng):
    x, y = _regression(rng)
    fitted = _mlp(4, dropout=True)
    fitted.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    looped = _mlp(4, dropout=True)
    losses = []
    for _ in range(2):
        for start in range(0, 40, 8):
            losses.append(
                looped.train_on_batch(x[start : start + 8], y[start : start + 8])[0]
            )
    assert _same_weights(fitted, looped)
    assert fitted.history.history["loss"][-1] == pytest.approx(
        np.mean(losses[5:]), rel=1e-6
    )


# --- validation -----------------------------------------------------------------------


def test_validation_split_holds_out_the_last_fraction_before_shuffling(rng):
    x, y = _regression(rng, 10)
    counter = BatchCounter()
    model = _mlp(1)
    history = model.fit(
        x, y, batch_size=1, epochs=1, validation_split=0.3, verbose=0, plugins=[counter]
    )
    assert (counter.train, counter.test) == (7, 3)  # Keras: floor(10 * 0.7) train samples
    tail = model.evaluate(x[7:], y[7:], batch_size=1, verbose=0, return_dict=True)
    head = model.evaluate(x[:3], y[:3], batch_size=1, verbose=0, return_dict=True)
    assert history.history["val_loss"] == [pytest.approx(tail["loss"], rel=1e-12)]
    assert history.history["val_mae"] == [pytest.approx(tail["mae"], rel=1e-12)]
    assert history.history["val_loss"][0] != pytest.approx(head["loss"], rel=1e-3)


def test_validation_split_trains_on_the_first_samples_only(rng):
    x, y = _regression(rng, 20)
    split = _mlp(2, optimizer="sgd")
    split.fit(
        x, y, batch_size=15, epochs=1, shuffle=False, validation_split=0.25, verbose=0
    )
    head = _mlp(2, optimizer="sgd")
    head.train_on_batch(x[:15], y[:15])
    assert _same_weights(split, head)


def test_validation_data_with_sample_weights_gives_the_weighted_validation_loss(rng):
    x, y = _regression(rng)
    xv, yv = _regression(rng, 12)
    wv = np.linspace(0.0, 2.0, 12)
    model = _mlp(5)
    history = model.fit(x, y, epochs=1, verbose=0, validation_data=(xv, yv, wv))
    pred = model.predict(xv, verbose=0).astype(np.float64)
    per_sample = np.mean((pred - yv) ** 2, axis=1)
    assert history.history["val_loss"][0] == pytest.approx(
        np.sum(wv * per_sample) / 12, rel=1e-5
    )
    as_list = model.fit(x, y, epochs=1, verbose=0, validation_data=[xv, yv])
    assert "val_loss" in as_list.history


def test_validation_freq_validates_on_the_listed_epochs_and_pads_the_others(rng):
    x, y = _regression(rng)
    counter = BatchCounter()
    history = _mlp().fit(
        x,
        y,
        batch_size=40,
        epochs=4,
        validation_data=(x, y),
        validation_freq=2,
        verbose=0,
        plugins=[counter],
    )
    assert counter.test == 2
    val = history.history["val_loss"]
    assert (
        np.isnan(val[0])
        and np.isnan(val[2])
        and np.isfinite(val[1])
        and np.isfinite(val[3])
    )


def test_validation_batch_size_and_steps_apply_to_a_validation_split(rng):
    x, y = _regression(rng, 20)
    counter = BatchCounter()
    _mlp().fit(
        x,
        y,
        batch_size=5,
        validation_split=0.5,
        validation_batch_size=2,
        validation_steps=3,
        verbose=0,
        plugins=[counter],
    )
    assert (counter.train, counter.test) == (2, 3)


# --- weighting ------------------------------------------------------------------------


def test_sample_weight_in_fit_follows_the_hand_weighted_gradient(rng):
    x, y = (a.astype(np.float64) for a in _regression(rng, 12))
    w = np.arange(12, dtype=np.float64) / 6.0
    model = Sequential([Dense(2, input_dim=4)], dtype="float64")
    model.compile(SGD(learning_rate=0.1), "mse")
    kernel, bias = (v.copy() for v in model.get_weights())
    model.fit(x, y, batch_size=12, epochs=1, sample_weight=w, verbose=0)
    # L = sum_i w_i mean_j (out_ij - y_ij)^2 / n
    grad_out = 2.0 * w[:, None] * (x @ kernel + bias - y) / y.size
    np.testing.assert_allclose(
        model.get_weights()[0], kernel - 0.1 * x.T @ grad_out, rtol=1e-10
    )
    np.testing.assert_allclose(
        model.get_weights()[1], bias - 0.1 * grad_out.sum(0), rtol=1e-10
    )


def test_class_weight_in_fit_equals_the_matching_sample_weights(rng):
    x = rng.standard_normal((30, 4)).astype(np.float32)
    labels = rng.integers(0, 3, 30)
    table = {0: 1.0, 1: 4.0, 2: 0.25}

    def run(**weights: Any) -> Sequential:
        loopkit.set_random_seed(9)
        model = Sequential([Dense(3, activation="softmax", input_dim=4)])
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, labels, batch_size=7, epochs=2, verbose=0, **weights)
        return model

    by_class = run(class_weight=table)
    by_sample = run(sample_weight=np.array([table[c] for c in labels], np.float32))
    unweighted = run()
    assert _same_weights(by_class, by_sample)
    assert not _same_weights(by_class, unweighted)


def test_evaluate_with_sample_weight_gives_the_hand_weighted_mean(rng):
    x, y = _regression(rng, 23)
    w = rng.uniform(0.0, 3.0, 23)
    model = _mlp()
    model.compile(model.optimizer, "mse", metrics=["mae"], weighted_metrics=["mae"])
    pred = model.predict(x, verbose=0).astype(np.float64)
    per_sample = np.mean((pred - y) ** 2, axis=1)
    logs = model.evaluate(x, y, batch_size=5, sample_weight=w, verbose=0, return_dict=True)
    # Keras 3: metrics= ignore sample weights; weighted_metrics= use them, and the one
    # also in metrics= is logged as weighted_<name>
    assert list(logs) == ["loss", "mae", "weighted_mae"]
    assert logs["loss"] == pytest.approx(np.sum(w * per_sample) / 23, rel=1e-5)
    mae_per_sample = np.mean(np.abs(pred - y), axis=1)
    assert logs["mae"] == pytest.approx(np.mean(mae_per_sample), rel=1e-5)
    assert logs["weighted_mae"] == pytest.approx(
        np.sum(w * mae_per_sample) / np.sum(w), rel=1e-5
    )


# --- evaluate and predict -------------------------------------------------------------


def test_evaluate_returns_a_scalar_a_list_or_a_dict_as_keras_does(rng):
    x, y = _regression(rng, 10)
    model = _mlp()
    pred = model.predict(x, verbose=0).astype(np.float64)
    mse, mae = np.mean((pred - y) ** 2), np.mean(np.abs(pred - y))
    assert model.evaluate(x, y, batch_size=3, verbose=0) == pytest.approx(
        [mse, mae], rel=1e-5
    )
    assert model.evaluate(x, y, verbose=0, return_dict=True) == pytest.approx(
        {"loss": mse, "mae": mae}, rel=1e-5
    )
    model.compile("adam", "mse")
    result = model.evaluate(x, y, verbose=0)
    assert isinstance(result, float) and result == pytest.approx(mse, rel=1e-5)


def test_predict_concatenates_batches_in_order(rng):
    x, _ = _regression(rng, 11)
    model = _mlp()
    whole = model.predict_on_batch(x)
    np.testing.assert_array_equal(model.predict(x, batch_size=3, verbose=0), whole)
    batches = [x[i : i + 4] for i in range(0, 11, 4)]
    np.testing.assert_array_equal(model.predict(iter(batches), verbose=0), whole)
    np.testing.assert_array_equal(
        model.predict(iter(batches), steps=2, verbose=0), whole[:8]
    )


# --- checks before the first step -----------------------------------------------------


def _endless(x: np.ndarray, y: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    while True:
        yield x[:8], y[:8]


@pytest.mark.parametrize(
    ("case", "error", "match"),
    [
        (
            "lengths",
            ShapeError,
            r"fit\(\) got x with 40 samples and y with 39 samples; they "
            r"must match along axis 0",
        ),
        (
            "features",
            ShapeError,
            r"fit\(\) got x of shape \(40, 3\); the model expects "
            r"samples of shape \(4,\).*Reshape x",
        ),
        (
            "targets",
            ShapeError,
            r"fit\(\) got y of shape \(40, 3\), which does not fit the "
            r"model's output of shape \(None, 2\).*Pass targets shaped",
        ),
        ("empty", ConfigError, r"fit\(\) got x of shape \(0, 4\): there are no samples"),
        (
            "split_high",
            ConfigError,
            r"validation_split=1.0; expected a fraction in \[0, 1\)",
        ),
        (
            "split_low",
            ConfigError,
            r"validation_split=-0.1; expected a fraction in \[0, 1\)",
        ),
        (
            "validation_generator",
            ConfigError,
            r"generator as validation_data with no "
            r"validation_steps.*Pass validation_steps=",
        ),
        (
            "sample_weight",
            ShapeError,
            r"sample_weight of shape \(39,\) for 40 samples; "
            r"expected shape \(40,\)",
        ),
        ("batch_size", ConfigError, r"batch_size=0; expected a positive int"),
        ("verbose", ConfigError, r"verbose=3; expected 0 \(silent\), 1"),
        ("strings", TypeError, r"got x of dtype <U1; expected numbers.*Encode strings"),
        (
            "split_generator",
            ConfigError,
            r"validation_split=0.5 with a generator; a split "
            r"needs arrays. Pass validation_data=",
        ),
    ],
)
def test_bad_fit_arguments_fail_before_any_state_changes(rng, case, error, match):
    x, y = _regression(rng)
    loopkit.set_random_seed(0)
    model = Sequential(
        [Dense(4, input_dim=4), BatchNormalization(), Dropout(0.5), Dense(2)]
    )
    model.compile("adam", "mse")
    before = model.get_weights()  # the batch-norm moving statistics included
    rng_state = model.rng.bit_generator.state
    kwargs: dict[str, Any] = {"x": x, "y": y, "verbose": 0}
    kwargs.update(
        {
            "lengths": {"y": y[:-1]},
            "features": {"x": x[:, :3]},
            "targets": {"y": np.zeros((40, 3), np.float32)},
            "empty": {"x": x[:0], "y": y[:0]},
            "split_high": {"validation_split": 1.0},
            "split_low": {"validation_split": -0.1},
            "validation_generator": {"epochs": 2, "validation_data": _endless(x, y)},
            "sample_weight": {"sample_weight": np.ones(39)},
            "batch_size": {"batch_size": 0},
            "verbose": {"verbose": 3},
            "strings": {"x": np.array([["a"] * 4] * 40)},
            "split_generator": {
                "x": _endless(x, y),
                "y": None,
                "validation_split": 0.5,
                "steps_per_epoch": 1,
            },
        }[case]
    )
    with pytest.raises(error, match=match):
        model.fit(**kwargs)
    for kept, now in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)
    assert model.optimizer.iterations == 0 and model.state.global_step == 0
    assert model.rng.bit_generator.state == rng_state  # no dropout mask was drawn


def test_fit_on_an_unbuilt_model_checks_the_data_it_builds_from(rng):
    x, y = _regression(rng)
    model = Sequential([Dense(3), Dense(2)])
    model.compile("sgd", "mse")
    with pytest.raises(ShapeError, match=r"got x with 40 samples and y with 10 samples"):
        model.fit(x, y[:10], verbose=0)
    model.fit(x, y, epochs=1, verbose=0)
    assert model.input_shape == (4,)


def test_generator_targets_of_the_wrong_shape_fail_before_any_state_moves() -> None:
    model = Sequential([Dense(3, input_dim=2), BatchNormalization(), Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    before = model.flat_weights.copy()  # includes BatchNormalization's moving statistics

    def batches():
        while True:
            yield np.ones((4, 2), np.float32), np.ones((4, 5), np.float32)  # 5 != 2 outputs

    with pytest.raises(ShapeError, match=r"fit\(\)"):
        model.fit(batches(), steps_per_epoch=2, verbose=0)
    np.testing.assert_array_equal(model.flat_weights, before)


def test_a_finite_generator_trains_one_pass_then_stops_with_keras_warning() -> None:
    model = Sequential([Dense(1, input_dim=4)])
    model.compile("sgd", "mse")
    x, y = np.ones((8, 4), np.float32), np.ones((8, 1), np.float32)
    batches = ((x[i : i + 4], y[i : i + 4]) for i in (0, 4))
    with pytest.warns(
        loopkit.LoopkitWarning, match=r"Your input ran out of data; interrupting"
    ):
        history = model.fit(batches, epochs=3, verbose=0)
    assert history.epoch == [0]  # the empty second pass logs no epoch
    assert model.state.global_step == 2


def test_steps_per_epoch_shorter_than_the_data_continues_where_the_last_epoch_stopped() -> (
    None
):
    from loopkit._data.streams import batch_rows, epoch_permutation

    starts = [
        [start for start, _, _ in batch_rows(10, 2, 2, False, 0, epoch)]
        for epoch in range(4)
    ]
    # 5 batches a pass: epochs continue through them (0,2 | 4,6 | 8,0 | 2,4) as in Keras
    assert starts == [[0, 2], [4, 6], [8, 0], [2, 4]]
    orders = [order for _, _, order in batch_rows(10, 2, 2, True, 7, 2)]
    np.testing.assert_array_equal(orders[0], epoch_permutation(7, 0, 10))  # pass 0 ends
    np.testing.assert_array_equal(orders[1], epoch_permutation(7, 1, 10))  # pass 1 begins
    model = Sequential([Dense(1, input_dim=1)])
    model.compile("sgd", "mse")
    x = np.arange(10, dtype=np.float32)[:, None]
    history = model.fit(x, x, batch_size=2, epochs=4, steps_per_epoch=2, verbose=0)
    assert history.epoch == [0, 1, 2, 3] and model.state.global_step == 8
