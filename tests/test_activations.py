"""Tests for loopkit.activations: gradients, reference values, stability, lookup."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from loopkit import activations
from loopkit.activations import (
    ELU,
    GELU,
    SELU,
    ActivationFunction,
    Exponential,
    HardSigmoid,
    LeakyReLU,
    Linear,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    Softmax,
    Softplus,
    Swish,
    Tanh,
)
from loopkit.errors import ConfigError
from loopkit.testing import numerical_gradient

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# Each activation with the points where it is not differentiable (finite differences
# must stay away from them).
CASES = [
    (ReLU(), [0.0]),
    (ReLU(negative_slope=0.1, max_value=4.0, threshold=0.5), [0.5, 4.0]),
    (LeakyReLU(), [0.0]),
    (LeakyReLU(negative_slope=0.05), [0.0]),
    (ELU(), []),
    (ELU(alpha=0.5), [0.0]),
    (SELU(), [0.0]),
    (Sigmoid(), []),
    (Tanh(), []),
    (Softmax(), []),
    (Softmax(axis=0), []),
    (GELU(), []),
    (GELU(approximate=True), []),
    (Softplus(), []),
    (Swish(), []),
    (Mish(), []),
    (Linear(), []),
    (Exponential(), []),
    (HardSigmoid(), [-3.0, 3.0]),
    (ReLU6(), [0.0, 6.0]),
    (Softmax(axis=(0, 1)), []),
    (activations.CELU(alpha=0.7), []),
    (activations.Softsign(), [0.0]),
    (activations.Squareplus(), []),
    (activations.TanhShrink(), []),
    (activations.LogSigmoid(), []),
    (activations.LogSoftmax(), []),
    (activations.LogSoftmax(axis=(0, 1)), []),
    (activations.HardTanh(), [-1.0, 1.0]),
    (activations.HardShrink(), [-0.5, 0.5]),
    (activations.SoftShrink(threshold=1.0), [-1.0, 1.0]),
    (activations.Threshold(threshold=0.3, default_value=-1.0), [0.3]),
    (activations.SparseSigmoid(), [-1.0, 1.0]),
    (activations.SparsePlus(), [-1.0, 1.0]),
    (activations.HardSilu(), [-3.0, 3.0]),
    (activations.Sparsemax(), []),
    (activations.Sparsemax(axis=0), []),
]
IDS = [f"{type(fn).__name__}{fn.get_config()}" for fn, _ in CASES]


def away_from(x: np.ndarray, kinks: list[float]) -> np.ndarray:
    for k in kinks:
        x = np.where(np.abs(x - k) < 0.05, x + 0.1, x)
    return x


@pytest.mark.parametrize(("fn", "kinks"), CASES, ids=IDS)
def test_backward_matches_float64_central_differences(
    fn: ActivationFunction, kinks: list[float], rng: np.random.Generator
) -> None:
    x = away_from(rng.uniform(-5.0, 7.0, (4, 6)), kinks)
    dy = rng.standard_normal(x.shape)
    y = fn.forward(x, np.empty_like(x))

    dx = fn.backward(dy, x, y, np.empty_like(x))

    def loss() -> float:
        return float(np.sum(fn.forward(x, np.empty_like(x)) * dy))

    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("fn", "kinks"), CASES, ids=IDS)
def test_forward_and_backward_give_the_same_result_in_place(
    fn: ActivationFunction, kinks: list[float], rng: np.random.Generator
) -> None:
    x = rng.uniform(-5.0, 7.0, (3, 5))
    dy = rng.standard_normal(x.shape)
    y = fn.forward(x, np.empty_like(x))
    dx = fn.backward(dy, x, y, np.empty_like(x))

    x_inplace = x.copy()
    assert fn.forward(x_inplace, x_inplace) is x_inplace
    dy_inplace = dy.copy()
    assert fn.backward(dy_inplace, x, y, dy_inplace) is dy_inplace

    np.testing.assert_array_equal(x_inplace, y)
    np.testing.assert_allclose(dy_inplace, dx, rtol=1e-15, atol=0)


@pytest.mark.parametrize(("fn", "kinks"), CASES, ids=IDS)
def test_float32_input_gives_float32_output_and_gradient(
    fn: ActivationFunction, kinks: list[float], rng: np.random.Generator
) -> None:
    x = rng.uniform(-5.0, 7.0, (3, 5)).astype(np.float32)
    y = fn.forward(x, np.empty_like(x))
    dx = fn.backward(np.ones_like(x), x, y, np.empty_like(x))
    called = fn(x)

    assert y.dtype == dx.dtype == called.dtype == np.float32
    np.testing.assert_array_equal(called, y)


def test_relu_matches_keras_documented_examples() -> None:
    x = [-10.0, -5.0, 0.0, 5.0, 10.0]
    np.testing.assert_array_equal(activations.relu(x), [0, 0, 0, 5, 10])
    np.testing.assert_array_equal(
        activations.relu(x, negative_slope=0.5), [-5, -2.5, 0, 5, 10]
    )
    np.testing.assert_array_equal(activations.relu(x, max_value=5.0), [0, 0, 0, 5, 5])
    np.testing.assert_array_equal(activations.relu(x, threshold=5.0), [0, 0, 0, 0, 10])


def test_relu_derivative_is_zero_at_zero_and_one_above() -> None:
    x = np.array([-1.0, 0.0, 2.0])
    dx = ReLU().backward(np.ones(3), x, ReLU()(x), np.empty(3))
    np.testing.assert_array_equal(dx, [0.0, 0.0, 1.0])


def test_forward_matches_hand_computed_values() -> None:
    ln2, ln3 = math.log(2.0), math.log(3.0)
    np.testing.assert_allclose(activations.sigmoid([-ln3, 0.0, ln3]), [0.25, 0.5, 0.75])
    np.testing.assert_allclose(activations.tanh([ln2]), [0.6])  # (2 - 1/2) / (2 + 1/2)
    np.testing.assert_allclose(
        activations.softmax([[0.0, ln2, ln3]]), [[1 / 6, 2 / 6, 3 / 6]]
    )
    np.testing.assert_allclose(activations.leaky_relu([-10.0, 0.0, 5.0]), [-2.0, 0.0, 5.0])
    np.testing.assert_allclose(activations.leaky_relu([-10.0], 0.1), [-1.0])
    np.testing.assert_allclose(activations.elu([math.log(0.5), 2.0]), [-0.5, 2.0])
    np.testing.assert_allclose(activations.elu([math.log(0.5)], alpha=2.0), [-1.0])
    np.testing.assert_allclose(
        activations.selu([math.log(0.5), 1.0]),
        [SELU_SCALE * SELU_ALPHA * -0.5, SELU_SCALE],
    )
    np.testing.assert_allclose(activations.softplus([0.0, ln3]), [ln2, math.log(4.0)])
    np.testing.assert_allclose(activations.swish([ln3]), [0.75 * ln3])
    np.testing.assert_allclose(activations.silu([-ln3]), [-0.25 * ln3])
    np.testing.assert_allclose(activations.mish([0.0, ln3]), [0.0, ln3 * 15 / 17])
    np.testing.assert_allclose(activations.linear([-1.5, 2.0]), [-1.5, 2.0])
    np.testing.assert_allclose(activations.exponential([ln2]), [2.0])
    np.testing.assert_allclose(
        activations.hard_sigmoid([-4.0, -3.0, 0.0, 1.5, 3.0, 4.0]),
        [0.0, 0.0, 0.5, 0.75, 1.0, 1.0],
    )
    np.testing.assert_allclose(activations.relu6([-1.0, 3.0, 7.0]), [0.0, 3.0, 6.0])


def test_gelu_matches_x_times_normal_cdf_from_math_erfc_in_float64() -> None:
    x = np.linspace(-10.0, 10.0, 2001)
    expected = np.array([0.5 * v * math.erfc(-v / math.sqrt(2.0)) for v in x])
    nonzero = expected != 0.0
    got = activations.gelu(x)
    assert got[~nonzero].tolist() == [0.0]
    np.testing.assert_allclose(got[nonzero], expected[nonzero], rtol=1e-13)
    np.testing.assert_allclose(activations.gelu([1.0]), [0.8413447460685429], rtol=1e-14)


def test_gelu_in_float32_is_within_float32_rounding() -> None:
    x = np.linspace(-10.0, 10.0, 2001).astype(np.float32)
    expected = np.array([0.5 * float(v) * math.erfc(-float(v) / math.sqrt(2.0)) for v in x])
    err = np.abs(activations.gelu(x).astype(np.float64) - expected)
    assert np.all(err <= 2.5e-7 * np.maximum(1.0, np.abs(x)))


def test_gelu_approximate_matches_the_tanh_formula() -> None:
    x = np.linspace(-6.0, 6.0, 101)
    expected = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(activations.gelu(x, approximate=True), expected, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_sum_to_one_and_stay_finite_on_huge_inputs(dtype: type) -> None:
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [3.0, 1.0, 0.2]], dtype)
    y = activations.softmax(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(y[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(y[1], [1 / 3, 1 / 3, 1 / 3], rtol=1e-6)


def test_softmax_axis_zero_normalizes_columns(rng: np.random.Generator) -> None:
    y = activations.softmax(rng.standard_normal((4, 3)), axis=0)
    np.testing.assert_allclose(y.sum(axis=0), 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_softplus_stay_finite_at_plus_minus_1e4(dtype: type) -> None:
    x = np.array([-1e4, 1e4], dtype)
    np.testing.assert_array_equal(activations.sigmoid(x), [0.0, 1.0])
    np.testing.assert_array_equal(activations.softplus(x), [0.0, 1e4])
    dx = Sigmoid().backward(np.ones_like(x), x, activations.sigmoid(x), np.empty_like(x))
    np.testing.assert_array_equal(dx, [0.0, 0.0])


def test_sigmoid_keeps_relative_precision_in_the_negative_tail() -> None:
    x = np.array([-30.0, -700.0])
    expected = [1 / (1 + math.exp(30.0)), math.exp(-700.0)]
    np.testing.assert_allclose(activations.sigmoid(x), expected, rtol=1e-12)


def test_integer_input_is_converted_to_float32() -> None:
    y = activations.relu(np.array([-2, 3]))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [0.0, 3.0])


def test_module_functions_are_activation_objects_usable_as_identifiers() -> None:
    assert activations.get(activations.relu) is activations.relu
    assert activations.silu is activations.swish
    assert activations.relu.name == "relu"


def test_get_returns_none_for_none_and_instances_unchanged() -> None:
    fn = ELU(alpha=0.3)
    assert activations.get(None) is None
    assert activations.get(fn) is fn


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("relu", ReLU()),
        ("silu", Swish()),
        ("swish", Swish()),
        ("leaky_relu", LeakyReLU(negative_slope=0.2)),
        ("gelu", GELU(approximate=False)),
        ("elu", ELU(alpha=1.0)),
        ("softmax", Softmax(axis=-1)),
        ("linear", Linear()),
        ("LeakyReLU", LeakyReLU()),
    ],
)
def test_get_builds_keras_defaults_from_a_name(
    name: str, expected: ActivationFunction
) -> None:
    assert activations.get(name) == expected


@pytest.mark.parametrize(("fn", "kinks"), CASES, ids=IDS)
def test_serialize_round_trips_through_json_and_get(
    fn: ActivationFunction, kinks: list[float]
) -> None:
    data = json.loads(json.dumps(activations.serialize(fn)))
    assert activations.get(data) == fn


def test_serialize_gives_the_bare_name_for_defaults_and_a_dict_otherwise() -> None:
    assert activations.serialize(ReLU()) == "relu"
    assert activations.serialize(Sigmoid()) == "sigmoid"
    assert activations.serialize(None) is None
    assert activations.serialize(ELU(alpha=0.5)) == {
        "class_name": "ELU",
        "config": {"alpha": 0.5},
    }


def test_get_accepts_a_snake_case_class_name_in_a_dict() -> None:
    assert activations.get(
        {"class_name": "leaky_relu", "config": {"negative_slope": 0.1}}
    ) == (LeakyReLU(0.1))


def test_get_rejects_an_unknown_name_listing_names_and_a_suggestion() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown activation 'rleu'; expected one of \[.*'relu'.*\]\. "
        r"Pass one of those names.*Did you mean 'relu'\?",
    ):
        activations.get("rleu")


def test_get_rejects_a_wrong_kind_with_type_error() -> None:
    with pytest.raises(TypeError, match=r"got 3 of type int; expected None, an activation"):
        activations.get(3)
    with pytest.raises(TypeError, match=r"got <built-in function abs>"):
        activations.get(abs)


def test_get_rejects_an_unknown_config_key_and_suggests_one() -> None:
    with pytest.raises(
        ConfigError,
        match=r"ELU takes no argument 'alpah'; it takes \['alpha'\]\. "
        r"Fix the config\. Did you mean 'alpha'\?",
    ):
        activations.get({"class_name": "ELU", "config": {"alpah": 0.5}})


def test_get_rejects_an_unknown_class_name_in_a_dict() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown activation 'Relu'.*Did you mean 'relu'"
    ):
        activations.get({"class_name": "Relu", "config": {}})


def test_serialize_rejects_what_is_not_an_activation() -> None:
    with pytest.raises(TypeError, match=r"serialize\(\) got 'relu' of type str; expected"):
        activations.serialize("relu")  # type: ignore[arg-type]


def test_constructors_validate_their_arguments() -> None:
    with pytest.raises(
        ConfigError, match=r"ReLU got negative_slope=-1; expected a number >= 0"
    ):
        ReLU(negative_slope=-1)
    with pytest.raises(ConfigError, match=r"LeakyReLU got negative_slope=-0.2; expected"):
        LeakyReLU(-0.2)
    with pytest.raises(
        TypeError, match=r"Softmax got axis=1.5 of type float; expected an int"
    ):
        Softmax(axis=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"GELU got approximate='yes'; expected one of"):
        GELU(approximate="yes")  # type: ignore[arg-type]


def test_calling_with_too_many_arguments_names_the_accepted_ones() -> None:
    with pytest.raises(
        TypeError, match=r"elu\(\) takes x and at most 1 more arguments \['alpha'\]"
    ):
        activations.elu([1.0], 1.0, 2.0)


def test_softmax_has_no_elementwise_derivative() -> None:
    x = np.zeros((1, 2))
    with pytest.raises(
        NotImplementedError, match=r"Softmax is not element-wise: call backward"
    ):
        Softmax().derivative(x, x, np.empty_like(x))


# --- Keras 3's added activations: values of keras/src/activations/activations_test.py ---


def test_added_activations_match_kerass_formulas_at_known_points() -> None:
    x = np.array([-3.5, -1.0, -0.25, 0.0, 0.4, 2.0])
    np.testing.assert_allclose(activations.hard_tanh(x), np.clip(x, -1, 1))
    np.testing.assert_allclose(activations.softsign(x), x / (1 + np.abs(x)))
    np.testing.assert_allclose(activations.squareplus(x), (x + np.sqrt(x**2 + 4)) / 2)
    np.testing.assert_allclose(activations.tanh_shrink(x), x - np.tanh(x))
    np.testing.assert_allclose(activations.log_sigmoid(x), np.log(1 / (1 + np.exp(-x))))
    np.testing.assert_allclose(
        activations.celu(x), np.maximum(x, 0) + np.expm1(np.minimum(x, 0))
    )
    np.testing.assert_allclose(activations.hard_shrink(x), [-3.5, -1.0, 0, 0, 0, 2.0])
    np.testing.assert_allclose(activations.soft_shrink(x), [-3.0, -0.5, 0, 0, 0, 1.5])
    np.testing.assert_allclose(
        activations.threshold(x, 0.1, 9.0), [9.0, 9.0, 9.0, 9.0, 0.4, 2.0]
    )
    np.testing.assert_allclose(activations.sparse_sigmoid(x), [0, 0, 0.375, 0.5, 0.7, 1])
    np.testing.assert_allclose(activations.sparse_plus(x), [0, 0, 0.140625, 0.25, 0.49, 2])
    np.testing.assert_allclose(activations.hard_silu(x), x * np.clip((x + 3) / 6, 0, 1))
    log_probs = activations.log_softmax(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(np.exp(log_probs).sum(), 1.0)
    np.testing.assert_allclose(log_probs, [[-2.40760596, -1.40760596, -0.40760596]])


def test_softmax_over_a_tuple_of_axes_sums_to_one_over_them() -> None:
    x = np.arange(24.0).reshape(2, 3, 4) / 10
    y = activations.softmax(x, axis=(1, 2))
    np.testing.assert_allclose(y.sum(axis=(1, 2)), [1.0, 1.0])
    flat = activations.softmax(x.reshape(2, 12))
    np.testing.assert_allclose(y.reshape(2, 12), flat)
    assert Softmax(axis=[1, 2]).axis == (1, 2)
    with pytest.raises(TypeError, match=r"axis=\(1, 'x'\) of type tuple; expected an int"):
        Softmax(axis=(1, "x"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    [
        "celu",
        "hard_shrink",
        "hard_silu",
        "hard_swish",
        "hard_tanh",
        "log_sigmoid",
        "log_softmax",
        "soft_shrink",
        "softsign",
        "sparse_plus",
        "sparse_sigmoid",
        "squareplus",
        "tanh_shrink",
        "threshold",
    ],
)
def test_added_activations_are_reachable_by_name(name: str) -> None:
    fn = activations.get(name)
    assert fn is not None
    assert activations.get(activations.serialize(fn)) == fn
    assert getattr(activations, name) == fn


# --- glu and sparsemax (Keras 3's keras.activations.glu / sparsemax) -------------------


def test_glu_matches_keras_docstring_and_hand_values() -> None:
    # keras.activations.glu docstring: glu([-1, 0, 1, 1]) = [-0.73105858, 0]
    np.testing.assert_allclose(
        activations.glu(np.array([-1.0, 0.0, 1.0, 1.0])), [-0.73105858, 0.0], rtol=1e-7
    )
    # axis=0 of [[1, 2], [0, ln 3]]: a = [1, 2], b = [0, ln 3] -> [1/2, 2 * 3/4]
    x = np.array([[1.0, 2.0], [0.0, math.log(3.0)]])
    np.testing.assert_allclose(activations.glu(x, axis=0), [[0.5, 1.5]], rtol=1e-12)


def test_glu_backward_matches_float64_central_differences(rng: np.random.Generator) -> None:
    for fn, shape in ((activations.GLU(), (3, 6)), (activations.GLU(axis=1), (2, 4, 3))):
        x = rng.uniform(-4.0, 4.0, shape)
        y = fn.forward(x, np.empty(fn.output_shape(x.shape)))
        dy = rng.standard_normal(y.shape)
        dx = fn.backward(dy, x, y, np.empty_like(x))

        def loss(
            fn: ActivationFunction = fn, dy: np.ndarray = dy, x: np.ndarray = x
        ) -> float:
            return float(np.sum(fn(x) * dy))

        np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)


def test_glu_as_an_activation_layer_halves_the_axis_and_has_exact_gradients(
    rng: np.random.Generator,
) -> None:
    from loopkit.layers import Activation
    from loopkit.testing import check_layer_gradients

    check_layer_gradients(Activation("glu"), (3, 8), rng=rng)
    import loopkit as lk

    model = lk.Sequential([lk.Input((6,)), Activation("glu"), lk.layers.Dense(1)])
    assert model.layers[0].compute_output_shape((6,)) == (3,)
    assert model.output_shape == (1,)


def test_glu_rejects_an_odd_axis_and_a_layers_builtin_activation() -> None:
    from loopkit.errors import ShapeError
    from loopkit.layers import Conv2D, Dense

    with pytest.raises(
        ShapeError, match=r"glu\(axis=-1\) .* odd size 3 \(input shape \(2, 3\)\)"
    ):
        activations.glu(np.ones((2, 3)))
    for make in (
        lambda: Dense(4, activation="glu"),
        lambda: Conv2D(2, 3, activation="glu"),
    ):
        with pytest.raises(ConfigError, match=r"activation='glu'.* Activation\('glu'\)"):
            make()


def test_sparsemax_matches_keras_docstring_and_hand_values() -> None:
    # keras.activations.sparsemax docstring: sparsemax([-1, 0, 1]) = [0, 0, 1]
    np.testing.assert_array_equal(
        activations.sparsemax(np.array([-1.0, 0.0, 1.0])), [0, 0, 1]
    )
    # [0.5, 0.2, 0.1]: every entry is in the support, tau = (0.8 - 1) / 3 = -1/15
    np.testing.assert_allclose(
        activations.sparsemax(np.array([[0.5, 0.2, 0.1]])),
        [[0.5 + 1 / 15, 0.2 + 1 / 15, 0.1 + 1 / 15]],
        rtol=1e-12,
    )
    # column [0, 2, 1.5]: support {2, 1.5}, tau = (3.5 - 1) / 2 = 1.25 -> [0, 0.75, 0.25]
    x = np.array([[0.0, 0.5], [2.0, 0.2], [1.5, 0.1]])
    np.testing.assert_allclose(
        activations.sparsemax(x, axis=0),
        [[0.0, 0.5 + 1 / 15], [0.75, 0.2 + 1 / 15], [0.25, 0.1 + 1 / 15]],
        rtol=1e-12,
    )


def test_sparsemax_and_glu_take_an_int_axis_only() -> None:
    with pytest.raises(TypeError, match=r"Sparsemax got axis=\(0, 1\) of type tuple"):
        activations.Sparsemax(axis=(0, 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"GLU got axis='x'"):
        activations.GLU(axis="x")  # type: ignore[arg-type]


def test_glu_and_sparsemax_are_found_by_name_and_serialize_to_it() -> None:
    assert activations.get("glu") == activations.GLU()
    assert activations.get("sparsemax") == activations.Sparsemax()
    assert activations.serialize(activations.sparsemax) == "sparsemax"
    assert activations.get(
        activations.serialize(activations.GLU(axis=1))
    ) == activations.GLU(axis=1)


def test_deserialize_reads_what_serialize_writes_as_keras() -> None:
    assert activations.deserialize("relu") == ReLU()
    capped = ReLU(max_value=2.0)
    assert activations.deserialize(activations.serialize(capped)) == capped
    with pytest.raises(
        ConfigError, match=r"unknown activation 'rleu'.*Did you mean 'relu'"
    ):
        activations.deserialize("rleu")
