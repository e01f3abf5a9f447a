"""Sequential: building, weights, compile, the *_on_batch calls and seeding."""

from __future__ import annotations

import numpy as np
import pytest

import loopkit
from loopkit import ConfigError, Sequential, ShapeError
from loopkit.layers import BatchNormalization, Dense, Dropout
from loopkit.losses import MeanSquaredError
from loopkit.metrics import MeanMetricWrapper
from loopkit.optimizers import SGD, RMSprop


def _linear(dtype: str = "float32") -> Sequential:
    """A 3 -> 2 linear model: easy to check by hand."""
    return Sequential([Dense(2, input_dim=3)], dtype=dtype)


def _data(rng: np.random.Generator, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    return (
        rng.standard_normal((n, 3)).astype(np.float32),
        rng.standard_normal((n, 2)).astype(np.float32),
    )


def _same_weights(a: Sequential, b: Sequential) -> bool:
    return all(
        np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights(), strict=True)
    )


# --- building -------------------------------------------------------------------------


def test_a_list_of_layers_and_add_build_the_same_model():
    loopkit.set_random_seed(5)
    listed = Sequential([Dense(4, activation="relu", input_dim=3), Dense(2)])
    loopkit.set_random_seed(5)
    added = Sequential()
    added.add(Dense(4, activation="relu", input_dim=3))
    added.add(Dense(2))
    assert [layer.name for layer in added.layers] == ["dense", "dense_1"]
    assert added.input_shape == (3,) and added.output_shape == (2,)
    assert _same_weights(listed, added)


def test_layers_get_numbered_default_names_and_explicit_names_are_kept():
    model = Sequential(
        [Dense(2, input_dim=2), Dense(2, name="head"), Dropout(0.1), Dense(1)]
    )
    assert [layer.name for layer in model.layers] == ["dense", "head", "dropout", "dense_1"]


def test_add_rejects_a_non_layer_with_its_type():
    with pytest.raises(
        TypeError, match=r"got 'dense' of type str; expected a loopkit layer"
    ):
        Sequential(["dense"])


def test_add_rejects_a_taken_layer_name():
    with pytest.raises(
        ConfigError, match=r"a layer named 'a' is already in model .* name="
    ):
        Sequential([Dense(2, name="a", input_dim=2), Dense(2, name="a")])


def test_only_the_first_layer_may_declare_an_input_shape():
    with pytest.raises(ConfigError, match=r"layer Dense got input_shape=\(2,\), but only"):
        Sequential([Dense(2, input_dim=3), Dense(1, input_dim=2)])


def test_build_without_a_shape_uses_the_declared_one_as_keras_does():
    declared = Sequential([Dense(2, input_shape=(3,))])
    weights = declared.get_weights()
    declared.build()  # built already: kept as it is
    assert declared.input_shape == (3,)
    for before, after in zip(weights, declared.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    with pytest.raises(
        ConfigError, match=r"build\(\) got no input_shape.*build\(\(None, 784\)\)"
    ):
        Sequential([Dense(2)]).build()


def test_a_model_without_an_input_shape_builds_from_the_first_data_it_sees(rng):
    model = Sequential([Dense(2)])
    assert not model.built
    with pytest.raises(
        ConfigError, match=r"has no weights yet: give the first layer input_shape"
    ):
        model.get_weights()
    x, _ = _data(rng)
    assert model.predict(x, verbose=0).shape == (8, 2)
    assert model.built and model.input_shape == (3,)
    assert model.count_params() == 3 * 2 + 2


def test_build_rejects_an_empty_model_and_non_positive_sizes():
    with pytest.raises(
        ConfigError, match=r"has no layers to build; add some with model.add"
    ):
        Sequential().build((None, 3))
    with pytest.raises(ShapeError, match=r"got input_shape=\(None, 0\); every axis after"):
        Sequential([Dense(1)]).build((None, 0))


def test_a_dtype_other_than_float32_or_float64_is_refused():
    with pytest.raises(ConfigError, match=r"dtype='float16'.*'float32', 'float64'"):
        Sequential([Dense(1)], dtype="float16")


# --- weights --------------------------------------------------------------------------


def test_get_weights_returns_copies_in_layer_order():
    model = Sequential([Dense(4, input_dim=3), Dense(2)])
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(3, 4), (4,), (4, 2), (2,)]
    weights[0][...] = 99.0
    assert not np.any(model.get_weights()[0] == 99.0)


def test_set_weights_copies_every_array_into_the_model():
    model = Sequential([Dense(4, input_dim=3), Dense(2)])
    new = [np.full(w.shape, i, np.float64) for i, w in enumerate(model.get_weights())]
    model.set_weights(new)
    for i, w in enumerate(model.get_weights()):
        assert w.dtype == np.float32
        np.testing.assert_array_equal(w, np.full(w.shape, i))
    assert np.shares_memory(model.layers[1].kernel.value, model.flat_weights)


def test_set_weights_with_a_wrong_count_names_both_counts():
    model = _linear()
    with pytest.raises(ShapeError, match=r"got 1 arrays; model 'sequential' has 2 weights"):
        model.set_weights(model.get_weights()[:1])


def test_set_weights_with_a_wrong_shape_names_layer_and_shapes_and_changes_nothing():
    model = Sequential([Dense(4, input_dim=3), Dense(2)])
    before = model.get_weights()
    bad = [np.zeros_like(w) for w in before]
    bad[2] = np.zeros((5, 2))
    with pytest.raises(
        ShapeError,
        match=r"weight 'kernel' of layer 'dense_1' has shape \(4, 2\), got an array of "
        r"shape \(5, 2\)",
    ):
        model.set_weights(bad)
    for kept, now in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)  # the good arrays were not written either


# --- compile --------------------------------------------------------------------------


def test_compile_resolves_names_and_keeps_objects():
    model = _linear()
    model.compile()  # Keras's default optimizer
    assert isinstance(model.optimizer, RMSprop) and model.loss is None
    optimizer, loss, metric = (
        SGD(learning_rate=0.5),
        MeanSquaredError(),
        MeanMetricWrapper("mae"),
    )
    model.compile(optimizer=optimizer, loss=loss, metrics=[metric, "mse"])
    assert model.optimizer is optimizer and model.loss is loss
    assert model.metrics[0] is metric and [m.name for m in model.metrics] == ["mae", "mse"]
    model.compile(optimizer="sgd", loss="mean_squared_error")
    assert isinstance(model.optimizer, SGD) and isinstance(model.loss, MeanSquaredError)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"optimizer": "adamm"},
            r"unknown optimizer 'adamm'; expected one of "
            r"\['adadelta', .*'sgd'\]\. .*Did you mean 'adam'\?",
        ),
        (
            {"loss": "msee"},
            r"unknown loss 'msee'; expected one of \[.*'mse'.*\].*"
            r"Did you mean 'mse'\?",
        ),
        (
            {"metrics": ["acuracy"]},
            r"unknown metric 'acuracy'; "
            r"expected .*'accuracy'.*Did you mean 'accuracy'\?",
        ),
    ],
)
def test_compile_rejects_unknown_names_listing_the_valid_ones(kwargs, match):
    model = Sequential([Dense(2)])  # unbuilt: metric names are still checked now
    with pytest.raises(ConfigError, match=match):
        model.compile(**{"loss": "mse", **kwargs})
    assert isinstance(ConfigError("x"), ValueError)


def test_compile_wants_a_list_of_metrics_not_a_string():
    with pytest.raises(
        TypeError,
        match=r"got metrics='mae'; expected a list such as "
        r"metrics=\['mae'\]",
    ):
        _linear().compile("sgd", "mse", metrics="mae")


def test_compile_refuses_metrics_logged_under_one_key_twice():
    with pytest.raises(ConfigError, match=r"logs the key\(s\) \['mae'\] twice"):
        _linear().compile("sgd", "mse", metrics=["mae", "mae"])
    with pytest.raises(ConfigError, match=r"logs the key\(s\) \['loss'\]"):
        _linear().compile("sgd", "mse", metrics=[MeanMetricWrapper("mae", name="loss")])


def test_a_failed_compile_leaves_the_previous_compile_in_place(rng):
    model = _linear()
    model.compile("adam", "mse", metrics=["mae"])
    model.train_on_batch(*_data(rng))
    optimizer, loss, metrics = model.optimizer, model.loss, model.metrics
    for bad in (
        {"loss": "mse", "loss_weights": [1.0, 2.0]},
        {"loss": "mse", "metrics": ["mae", "mae"]},
        {"loss": "nope"},
    ):
        with pytest.raises(ConfigError):
            model.compile("sgd", **bad)
    assert model.optimizer is optimizer and model.optimizer.iterations == 1
    assert model.loss is loss and model.metrics == metrics


def test_loss_weights_scale_the_loss_and_reject_several_outputs(rng):
    x, y = _data(rng)
    model = _linear()
    model.compile("sgd", "mse")
    plain = model.test_on_batch(x, y)
    model.compile("sgd", "mse", loss_weights=2.5)
    assert model.test_on_batch(x, y) == pytest.approx(2.5 * plain, rel=1e-6)
    model.compile("sgd", "mse", loss_weights=[0.5])
    assert model.test_on_batch(x, y) == pytest.approx(0.5 * plain, rel=1e-6)
    with pytest.raises(
        ConfigError, match=r"loss_weights=\[1, 2\]; a Sequential model has one"
    ):
        model.compile("sgd", "mse", loss_weights=[1, 2])


@pytest.mark.parametrize("call", ["fit", "evaluate", "train_on_batch", "test_on_batch"])
def test_training_calls_before_compile_say_to_compile_first(rng, call):
    model = _linear()
    with pytest.raises(
        ConfigError,
        match=rf"{call}\(\) was called before compile\(\); call "
        r"model.compile\(",
    ):
        getattr(model, call)(*_data(rng))


def test_fit_without_a_loss_asks_for_one(rng):
    model = _linear()
    model.compile("sgd")
    with pytest.raises(
        ConfigError, match=r"fit\(\) needs a loss, but compile\(\) got loss=None"
    ):
        model.fit(*_data(rng), verbose=0)


# --- one batch ------------------------------------------------------------------------


def test_train_on_batch_returns_the_loss_before_the_update_and_takes_an_sgd_step(rng):
    model = _linear("float64")
    model.compile(SGD(learning_rate=0.1), "mse")
    x, y = (a.astype(np.float64) for a in _data(rng))
    kernel, bias = (w.copy() for w in model.get_weights())
    residual = x @ kernel + bias - y
    loss = model.train_on_batch(x, y)
    assert isinstance(loss, float)
    assert loss == pytest.approx(np.mean(residual**2), rel=1e-12)
    grad_out = 2.0 * residual / residual.size
    np.testing.assert_allclose(
        model.get_weights()[0], kernel - 0.1 * x.T @ grad_out, rtol=1e-12
    )
    np.testing.assert_allclose(
        model.get_weights()[1], bias - 0.1 * grad_out.sum(0), rtol=1e-12
    )


def test_on_batch_calls_return_a_list_with_metrics_and_a_dict_when_asked(rng):
    model = _linear("float64")
    model.compile("sgd", "mse", metrics=["mae"])
    x, y = (a.astype(np.float64) for a in _data(rng))
    residual = model.predict_on_batch(x) - y
    expected = [np.mean(residual**2), np.mean(np.abs(residual))]
    assert model.test_on_batch(x, y) == pytest.approx(expected, rel=1e-12)
    assert model.test_on_batch(x, y, return_dict=True) == pytest.approx(
        {"loss": expected[0], "mae": expected[1]}, rel=1e-12
    )
    result = model.train_on_batch(x, y, return_dict=True)
    assert result == pytest.approx({"loss": expected[0], "mae": expected[1]}, rel=1e-12)


def test_test_on_batch_and_predict_on_batch_leave_the_weights_alone(rng):
    model = Sequential(
        [Dense(4, input_dim=3), BatchNormalization(), Dropout(0.5), Dense(2)]
    )
    model.compile("sgd", "mse")
    x, y = _data(rng)
    before = model.get_weights()
    first = model.predict_on_batch(x)
    model.test_on_batch(x, y)
    second = model.predict_on_batch(x[:3])
    np.testing.assert_array_equal(second, first[:3])  # inference: no dropout, fixed stats
    np.testing.assert_array_equal(first, model.predict(x, verbose=0))
    for kept, now in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)


def test_predict_on_batch_returns_a_new_array_each_call(rng):
    model = _linear()
    x, _ = _data(rng)
    first = model.predict_on_batch(x)
    kept = first.copy()
    model.predict_on_batch(-x)
    np.testing.assert_array_equal(first, kept)


def test_sample_weight_and_class_weight_weight_the_batch_loss_as_keras_does(rng):
    model = Sequential([Dense(3, activation="softmax", input_dim=3)], dtype="float64")
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = rng.standard_normal((6, 3))
    labels = np.array([0, 1, 2, 2, 1, 0])
    per_sample = -np.log(model.predict_on_batch(x)[np.arange(6), labels])
    weights = np.array([0.0, 1.0, 2.0, 0.5, 3.0, 1.0])
    # Keras's "sum_over_batch_size": the divisor counts samples, not weights
    expected = np.sum(weights * per_sample) / 6
    assert model.test_on_batch(x, labels, sample_weight=weights) == pytest.approx(expected)
    table = {0: 2.0, 1: 0.5, 2: 3.0}
    by_class = np.array([table[c] for c in labels])
    twin = Sequential([Dense(3, activation="softmax", input_dim=3)], dtype="float64")
    twin.set_weights(model.get_weights())
    twin.compile("sgd", "sparse_categorical_crossentropy")
    loss = model.train_on_batch(x, labels, class_weight=table)
    assert loss == pytest.approx(np.sum(by_class * per_sample) / 6)
    twin.train_on_batch(x, labels, sample_weight=by_class)
    assert _same_weights(model, twin)


def test_on_batch_calls_check_shapes_and_targets(rng):
    model = _linear()
    model.compile("sgd", "mse")
    x, y = _data(rng)
    with pytest.raises(
        ShapeError,
        match=r"train_on_batch\(\) got x of shape \(8, 4\); the model "
        r"expects samples of shape \(3,\)",
    ):
        model.train_on_batch(np.zeros((8, 4)), y)
    with pytest.raises(ShapeError, match=r"got x with 8 samples and y with 5 samples"):
        model.train_on_batch(x, y[:5])
    with pytest.raises(
        ConfigError, match=r"test_on_batch\(\) got y=None; pass the targets"
    ):
        model.test_on_batch(x)
    with pytest.raises(ShapeError, match=r"predict_on_batch\(\) got x of shape \(2, 5\)"):
        model.predict_on_batch(np.zeros((2, 5)))


def test_train_on_batch_with_targets_of_the_wrong_shape_changes_no_state(rng):
    model = Sequential([Dense(4, input_dim=3), BatchNormalization(), Dense(2)])
    model.compile("adam", "mse")
    x, y = _data(rng)
    before = model.get_weights()  # includes the batch-norm moving statistics
    with pytest.raises(
        ShapeError,
        match=r"train_on_batch\(\) got y of shape \(8, 3\), which "
        r"does not fit the model's output of shape \(None, 2\)",
    ):
        model.train_on_batch(x, np.zeros((8, 3), np.float32))
    for kept, now in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)
    assert model.optimizer.iterations == 0
    model.train_on_batch(x, y)  # the good batch still trains
    assert model.optimizer.iterations == 1


# --- seeding --------------------------------------------------------------------------


def _seeded_run(seed: int, x: np.ndarray, y: np.ndarray) -> Sequential:
    loopkit.set_random_seed(seed)
    model = Sequential([Dense(8, activation="relu", input_dim=3), Dropout(0.5), Dense(2)])
    model.compile("adam", "mse")
    model.fit(x, y, batch_size=4, epochs=2, shuffle=True, verbose=0)
    return model


def test_set_random_seed_makes_initializers_dropout_and_shuffling_bitwise_reproducible(rng):
    x, y = _data(rng, 20)
    first, second = _seeded_run(7, x, y), _seeded_run(7, x, y)
    assert _same_weights(first, second)
    assert first.shuffle_seed == second.shuffle_seed
    assert not _same_weights(first, _seeded_run(8, x, y))


def test_set_random_seed_seeds_the_masks_of_dropout_not_just_the_initial_weights(rng):
    x, y = _data(rng, 20)
    loopkit.set_random_seed(3)
    model = Sequential([Dense(8, activation="relu", input_dim=3), Dropout(0.5), Dense(2)])
    model.compile("adam", "mse")
    start = model.get_weights()
    loopkit.set_random_seed(3)
    twin = Sequential([Dense(8, activation="relu", input_dim=3), Dropout(0.5), Dense(2)])
    twin.compile("adam", "mse")
    twin.rng = np.random.default_rng(123)  # same weights, other masks
    for layer in twin.layers:
        layer.rng = twin.rng
    twin.set_weights(start)
    model.fit(x, y, batch_size=20, epochs=1, shuffle=False, verbose=0)
    twin.fit(x, y, batch_size=20, epochs=1, shuffle=False, verbose=0)
    assert not _same_weights(model, twin)


def test_set_random_seed_rejects_non_ints_and_negative_seeds():
    with pytest.raises(
        TypeError, match=r"got seed=1.5 of type float; expected a non-negative"
    ):
        loopkit.set_random_seed(1.5)
    with pytest.raises(ValueError, match=r"got seed=-1; expected a non-negative int"):
        loopkit.set_random_seed(-1)
