"""Weight constraints: Keras's values (keras/src/constraints/constraints_test.py), lookup
by name, the layers' *_constraint arguments, and their application after a step."""

from __future__ import annotations

import numpy as np
import pytest

from loopkit import constraints, layers
from loopkit.constraints import Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm
from loopkit.errors import ConfigError


def example_array() -> np.ndarray:
    rng = np.random.default_rng(3537)
    array = rng.random((100, 100)) * 100.0 - 50.0
    array[0, 0] = 0.0
    return array


def test_max_norm_matches_keras() -> None:
    x = np.array([[0, 0, 0], [1.0, 0, 0], [3, 0, 0], [3, 3, 3]]).T
    target = np.array(
        [[0, 0, 0], [1.0, 0, 0], [2.0, 0, 0], [2.0 / np.sqrt(3)] * 3]
    ).T  # test_max_norm
    np.testing.assert_allclose(MaxNorm(2.0)(x), target, rtol=1e-6)


def test_non_neg_unit_norm_and_min_max_norm_hold_as_in_keras() -> None:
    assert (NonNeg()(example_array()) >= 0).all()
    norms = np.sqrt(np.sum(np.square(UnitNorm()(example_array())), axis=0))
    np.testing.assert_allclose(norms, 1.0, rtol=1e-6)
    bounded = np.sqrt(np.sum(np.square(MinMaxNorm(0.2, 0.5)(example_array())), axis=0))
    assert np.all(bounded >= 0.2) and np.all(bounded <= 0.5 + 1e-6)
    halfway = MinMaxNorm(0.0, 1.0, rate=0.5)(np.array([[4.0], [0.0]]))
    np.testing.assert_allclose(halfway, [[2.5], [0.0]], rtol=1e-6)


def test_the_base_constraint_is_the_identity_with_an_empty_config() -> None:
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(Constraint()(x), x)
    assert Constraint().get_config() == {}
    assert isinstance(Constraint.from_config({}), Constraint)


@pytest.mark.parametrize(
    "constraint",
    [MaxNorm(3.0, axis=1), NonNeg(), UnitNorm(axis=[0, 1]), MinMaxNorm(0.1, 2.0)],
)
def test_constraints_round_trip_by_name_and_config(constraint: Constraint) -> None:
    assert constraints.get(constraints.serialize(constraint)) == constraint
    assert constraints.deserialize(constraints.serialize(constraint)) == constraint


def test_get_takes_names_callables_and_refuses_unknown_names() -> None:
    assert constraints.get("unit_norm") == UnitNorm()
    assert constraints.get(None) is None

    def clip(w: np.ndarray) -> np.ndarray:
        return np.clip(w, -1, 1)

    assert constraints.get(clip) is clip
    with pytest.raises(
        ConfigError,
        match=r"^constraints\.get\('max_nrom'\): unknown constraint 'max_nrom'; expected "
        r"one of \['max_norm', 'min_max_norm', 'non_neg', 'unit_norm'\]\..*"
        r"Did you mean 'max_norm'\?$",
    ):
        constraints.get("max_nrom")
    with pytest.raises(ConfigError, match=r"max_value must be >= min_value; swap them"):
        MinMaxNorm(min_value=2.0, max_value=1.0)
    with pytest.raises(TypeError, match=r"MaxNorm got axis='rows'; expected an int"):
        MaxNorm(axis="rows")  # type: ignore[arg-type]


def test_a_layer_with_an_unknown_constraint_fails_where_it_is_written() -> None:
    with pytest.raises(ConfigError, match=r"unknown constraint 'nonneg'.*'non_neg'"):
        layers.Dense(3, kernel_constraint="nonneg")


def test_apply_constraints_projects_each_constrained_parameter_in_place() -> None:
    dense = layers.Dense(2, kernel_constraint=MaxNorm(1.0), bias_constraint="non_neg")
    dense.setup((3,))
    dense.kernel.value[...] = [[3.0, 0.1], [4.0, 0.2], [0.0, 0.2]]
    assert dense.bias is not None
    dense.bias.value[...] = [-1.0, 2.0]
    kernel = dense.kernel.value
    dense.apply_constraints()
    assert dense.kernel.value is kernel  # written in place: the flat buffer keeps it
    np.testing.assert_allclose(kernel[:, 0], [0.6, 0.8, 0.0], rtol=1e-6)
    np.testing.assert_allclose(kernel[:, 1], [0.1, 0.2, 0.2], rtol=1e-6)
    np.testing.assert_array_equal(dense.bias.value, [0.0, 2.0])


def test_frozen_layers_keep_their_weights_unconstrained() -> None:
    dense = layers.Dense(1, kernel_constraint="non_neg", trainable=False)
    dense.setup((2,))
    dense.kernel.value[...] = [[-1.0], [1.0]]
    dense.apply_constraints()
    np.testing.assert_array_equal(dense.kernel.value, [[-1.0], [1.0]])


@pytest.mark.parametrize(
    ("layer", "names"),
    [
        (
            layers.Conv2D(2, 3, kernel_constraint="unit_norm", bias_constraint="non_neg"),
            {"kernel": UnitNorm(), "bias": NonNeg()},
        ),
        (
            layers.Embedding(5, 2, embeddings_constraint=MaxNorm(1.0)),
            {"embeddings": MaxNorm(1.0)},
        ),
        (
            layers.BatchNormalization(
                beta_constraint="non_neg", gamma_constraint="unit_norm"
            ),
            {"beta": NonNeg(), "gamma": UnitNorm()},
        ),
        (layers.LayerNormalization(gamma_constraint="non_neg"), {"gamma": NonNeg()}),
    ],
)
def test_every_weighted_layer_takes_kerass_constraint_arguments(
    layer: layers.Layer, names: dict[str, Constraint]
) -> None:
    layer.setup((4, 4, 3) if isinstance(layer, layers.Conv2D) else (4,))
    given = {p.name: p.constraint for p in layer.parameters if p.constraint is not None}
    assert given == names


def test_conv1d_takes_keras_constraints_and_the_model_applies_them() -> None:
    import loopkit as lk

    rng = np.random.default_rng(0)
    conv = layers.Conv1D(
        4, 3, kernel_constraint=NonNeg(), bias_constraint=NonNeg(), name="conv"
    )
    model = lk.Sequential([lk.Input((8, 2)), conv, layers.Flatten(), layers.Dense(1)])
    model.compile("sgd", "mse")
    x = rng.standard_normal((16, 8, 2)).astype(np.float32)
    model.fit(x, -10.0 * np.ones((16, 1), np.float32), epochs=2, verbose=0)
    kernel, bias = conv.get_weights()
    assert kernel.min() >= 0.0 and bias.min() >= 0.0
    again = layers.Conv1D.from_config(conv.get_config())
    assert isinstance(again.kernel_constraint, NonNeg)
