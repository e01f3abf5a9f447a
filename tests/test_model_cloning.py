"""Keras's models.clone_model and models.model_from_json, and Layer.from_config."""

from __future__ import annotations

import numpy as np
import pytest

import loopkit as lk
from loopkit.layers import BatchNormalization, Concatenate, Dense, Dropout


def _functional() -> lk.Model:
    inputs = lk.Input((4,), name="x")
    shared = Dense(3, activation="tanh", name="shared")
    h = Concatenate(name="cat")([shared(inputs), Dense(2, name="side")(inputs)])
    return lk.Model(inputs, [Dense(1, name="a")(h), shared(Dense(4, name="back")(h))])


def _same_architecture_new_weights(old: lk.Model, new: lk.Model, x: np.ndarray) -> None:
    assert new.get_config() == old.get_config()
    assert all(a is not b for a, b in zip(old.layers, new.layers, strict=True))
    assert all(
        not np.array_equal(a, b)
        for a, b in zip(old.get_weights(), new.get_weights(), strict=True)
        if a.std() > 0  # freshly drawn, not zeros/ones
    )
    new.set_weights(old.get_weights())
    before, after = old.predict(x, verbose=0), new.predict(x, verbose=0)
    pairs = (
        zip(before, after, strict=True) if isinstance(before, list) else [(before, after)]
    )
    for a, b in pairs:
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_layer_from_config_makes_an_equal_unbuilt_layer() -> None:
    layer = Dense(3, activation="relu", use_bias=False, name="d")
    twin = Dense.from_config(layer.get_config())
    assert twin is not layer and twin.get_config() == layer.get_config()
    assert not twin.built
    with pytest.raises(lk.ConfigError, match=r"Dense.from_config\(\).*'unit'"):
        Dense.from_config({"unit": 3})


def test_clone_model_copies_a_sequential_architecture_with_new_weights(rng) -> None:
    model = lk.Sequential(
        [lk.Input((4,)), Dense(3, activation="relu"), BatchNormalization(), Dense(2)]
    )
    clone = lk.models.clone_model(model)
    assert type(clone) is lk.Sequential and clone.built and clone.name == model.name
    _same_architecture_new_weights(model, clone, rng.standard_normal((5, 4)))
    unbuilt = lk.models.clone_model(lk.Sequential([Dense(2)]))
    assert not unbuilt.built


def test_clone_model_copies_a_functional_graph_with_a_shared_layer(rng) -> None:
    model = _functional()
    clone = lk.models.clone_model(model)
    assert type(clone) is lk.Model and len(clone.outputs) == 2
    assert clone.count_params() == model.count_params()
    _same_architecture_new_weights(model, clone, rng.standard_normal((5, 4)))


def test_a_clone_trains_without_touching_the_original(rng) -> None:
    model = lk.Sequential([Dense(3, input_dim=4), Dense(1)])
    before = model.get_weights()
    clone = lk.models.clone_model(model)
    clone.compile("sgd", "mse")
    clone.fit(rng.standard_normal((8, 4)), rng.standard_normal((8, 1)), verbose=0)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_clone_function_replaces_or_shares_layers_as_keras() -> None:
    model = lk.Sequential([Dense(3, input_dim=4), Dropout(0.5), Dense(1)])

    def no_dropout(layer):
        if isinstance(layer, Dropout):
            return Dropout(0.1, name=layer.name)
        return layer  # the same object: shared with the original

    clone = lk.models.clone_model(model, clone_function=no_dropout)
    assert clone.layers[1].rate == 0.1 and clone.layers[0] is model.layers[0]
    functional = _functional()
    rebuilt = lk.models.clone_model(
        functional, clone_function=lambda layer: type(layer).from_config(layer.get_config())
    )
    assert rebuilt.get_config() == functional.get_config()
    with pytest.raises(TypeError, match=r"clone_function returned 3 for layer 'dense"):
        lk.models.clone_model(model, clone_function=lambda layer: 3)
    with pytest.raises(TypeError, match=r"clone_model\(\) got 'm' of type str"):
        lk.models.clone_model("m")  # type: ignore[arg-type]


def test_model_from_json_rebuilds_sequential_and_functional_models(rng) -> None:
    x = rng.standard_normal((5, 4))
    for model in (lk.Sequential([lk.Input((4,)), Dense(3), Dense(1)]), _functional()):
        rebuilt = lk.models.model_from_json(model.to_json())
        assert type(rebuilt) is type(model)
        _same_architecture_new_weights(model, rebuilt, x)


def test_model_from_json_rejects_other_json_with_a_clear_message() -> None:
    with pytest.raises(lk.ConfigError, match=r"not JSON .*model.to_json\(\)"):
        lk.models.model_from_json("{nope")
    with pytest.raises(lk.ConfigError, match=r"without those keys"):
        lk.models.model_from_json('{"layers": []}')
    with pytest.raises(lk.ConfigError, match=r"'Sequentail'. Did you mean 'Sequential'"):
        lk.models.model_from_json('{"class_name": "Sequentail", "config": {}}')
