"""Tests for loopkit.regularizers: penalties, their gradients, lookup."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loopkit import regularizers
from loopkit.errors import ConfigError
from loopkit.regularizers import L1, L1L2, L2, Regularizer
from loopkit.testing import numerical_gradient

# sum(|w|) = 6, sum(w**2) = 14
W = np.array([[1.0, -2.0], [0.0, 3.0]])


@pytest.mark.parametrize(
    ("regularizer", "expected"),
    [
        (L1(0.1), 0.6),
        (L2(0.01), 0.14),
        (L1L2(l1=0.1, l2=0.01), 0.74),
        (L1L2(), 0.0),
        (L1(), 0.06),  # Keras default factor 0.01
        (L2(), 0.14),
    ],
    ids=repr,
)
def test_penalty_matches_hand_computed_values(
    regularizer: Regularizer, expected: float
) -> None:
    assert regularizer.penalty(W) == pytest.approx(expected, rel=1e-12)
    assert regularizer(W) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("regularizer", [L1(0.3), L2(0.2), L1L2(l1=0.05, l2=0.4)], ids=repr)
def test_add_gradient_matches_finite_differences_of_the_penalty(
    regularizer: Regularizer, rng: np.random.Generator
) -> None:
    w = rng.standard_normal((4, 3))
    w = np.where(np.abs(w) < 0.05, 0.1, w)  # |w| is not differentiable at 0
    start = rng.standard_normal(w.shape)
    grad = start.copy()

    regularizer.add_gradient(w, grad)

    numeric = numerical_gradient(lambda: regularizer.penalty(w), w)
    np.testing.assert_allclose(grad - start, numeric, rtol=1e-6, atol=1e-9)


def test_l1_gradient_is_zero_at_zero_weights() -> None:
    grad = np.zeros_like(W)
    L1(0.5).add_gradient(W, grad)
    np.testing.assert_array_equal(grad, [[0.5, -0.5], [0.0, 0.5]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_weights_are_handled_across_chunks(
    dtype: type, rng: np.random.Generator
) -> None:
    w = rng.standard_normal((130, 300)).astype(dtype)  # 39,000 > one 16,384 chunk
    grad = np.ones_like(w)
    reg = L1L2(l1=0.01, l2=0.02)

    reg.add_gradient(w, grad)

    w64 = w.astype(np.float64)
    expected = 1.0 + 0.01 * np.sign(w64) + 0.04 * w64
    np.testing.assert_allclose(grad, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)
    assert grad.dtype == dtype
    expected_penalty = 0.01 * np.abs(w64).sum() + 0.02 * np.square(w64).sum()
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    assert reg.penalty(w) == pytest.approx(expected_penalty, rel=rtol)


def test_add_gradient_writes_into_a_non_contiguous_grad(rng: np.random.Generator) -> None:
    w = rng.standard_normal((5, 4))
    storage = np.zeros((5, 8))
    grad = storage[:, ::2]

    L2(0.5).add_gradient(w, grad)

    np.testing.assert_allclose(storage[:, ::2], w)  # 2 * 0.5 * w
    np.testing.assert_array_equal(storage[:, 1::2], 0.0)


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("l1", L1(0.01)),
        ("l2", L2(0.01)),
        ("l1_l2", L1L2(l1=0.01, l2=0.01)),
        ("L2", L2()),
        ("L1L2", L1L2()),
        ({"class_name": "L2", "config": {"l2": 1e-4}}, L2(1e-4)),
        (
            {
                "module": "keras.regularizers",
                "class_name": "L1L2",
                "config": {"l1": 0.0, "l2": 0.001},
                "registered_name": None,
            },
            L1L2(l2=0.001),
        ),
    ],
)
def test_get_understands_names_and_keras_configs(
    identifier: object, expected: Regularizer
) -> None:
    assert regularizers.get(identifier) == expected


def test_get_passes_none_and_instances_through() -> None:
    reg = L2(1e-4)
    assert regularizers.get(None) is None
    assert regularizers.get(reg) is reg


def test_lowercase_aliases_build_regularizers_like_keras() -> None:
    assert regularizers.l2(1e-4) == L2(1e-4)
    assert regularizers.l1(0.2) == L1(0.2)
    assert regularizers.l1_l2() == L1L2(0.01, 0.01)
    assert regularizers.l1_l2(l2=0.5) == L1L2(0.01, 0.5)


@pytest.mark.parametrize(
    "reg", [L1(), L2(), L1L2(0.01, 0.01), L1L2(), L2(1e-4), L1(np.float32(0.5))], ids=repr
)
def test_serialize_round_trips_through_json_and_get(reg: Regularizer) -> None:
    data = json.loads(json.dumps(regularizers.serialize(reg)))
    assert regularizers.get(data) == reg


def test_serialize_gives_the_bare_name_for_defaults_and_a_dict_otherwise() -> None:
    assert regularizers.serialize(L2()) == "l2"
    assert regularizers.serialize(L1L2(0.01, 0.01)) == "l1_l2"
    assert regularizers.serialize(None) is None
    assert regularizers.serialize(L2(1e-4)) == {"class_name": "L2", "config": {"l2": 1e-4}}


def test_get_rejects_an_unknown_name_listing_names_and_a_suggestion() -> None:
    with pytest.raises(
        ConfigError,
        match=r"regularizers.get\('l1l2'\): unknown regularizer 'l1l2'; expected one of "
        r"\['l1', 'l1_l2', 'l2'\]\. Pass one of those names or a Regularizer.*"
        r"Did you mean 'l1_l2'\?",
    ):
        regularizers.get("l1l2")


def test_get_rejects_a_wrong_kind_with_type_error() -> None:
    with pytest.raises(TypeError, match=r"got 0.01 of type float; expected None, 'l1'"):
        regularizers.get(0.01)


def test_get_rejects_an_unknown_class_name_in_a_dict() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown class_name 'L3'; expected one of \['L1', 'L1L2', 'L2'\]",
    ):
        regularizers.get({"class_name": "L3", "config": {}})


def test_get_rejects_an_unknown_config_key_and_suggests_one() -> None:
    with pytest.raises(
        ConfigError,
        match=r"L2 takes no argument 'l'; it takes \['l2'\]\. Fix the config\.",
    ):
        regularizers.get({"class_name": "L2", "config": {"l": 0.1}})


def test_serialize_rejects_what_is_not_a_regularizer() -> None:
    with pytest.raises(TypeError, match=r"serialize\(\) got 'l2' of type str; expected"):
        regularizers.serialize("l2")  # type: ignore[arg-type]


def test_constructors_validate_their_factors() -> None:
    with pytest.raises(ConfigError, match=r"L2 got l2=-1.0; expected a number >= 0"):
        L2(-1)
    with pytest.raises(TypeError, match=r"L1 got l1='a' of type str; expected a number"):
        L1("a")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"L1L2 got l2=True of type bool; expected a number"
    ):
        L1L2(l2=True)


def test_the_base_class_says_what_to_implement() -> None:
    with pytest.raises(NotImplementedError):
        Regularizer().penalty(W)
    with pytest.raises(NotImplementedError):
        Regularizer().add_gradient(W, np.zeros_like(W))
