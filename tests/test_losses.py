"""Tests for the losses: hand-computed values, finite-difference gradients, fusion, get."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from attrs import define

from loopkit import losses
from loopkit.errors import ConfigError, ShapeError
from loopkit.losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CategoricalHinge,
    ElementwiseLoss,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    Loss,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)
from loopkit.testing import numerical_gradient

EPS = 1e-7
Case = Callable[[np.random.Generator], tuple[Loss, Any, np.ndarray]]


# --- independent references -----------------------------------------------------------


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def one_hot(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]


def distributions(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    p = rng.uniform(0.1, 1.0, shape)
    return p / p.sum(axis=-1, keepdims=True)


def _normal(
    rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0
) -> np.ndarray:
    return rng.normal(scale=scale, size=shape)


# --- cases: (loss, y_true, y_pred) away from kinks and clip bounds ------------------------

CASES: dict[str, Case] = {
    "mse": lambda r: (MeanSquaredError(), _normal(r, (4, 3)), _normal(r, (4, 3))),
    "mse_sequence": lambda r: (
        MeanSquaredError(),
        _normal(r, (4, 5, 2)),
        _normal(r, (4, 5, 2)),
    ),
    "mse_1d": lambda r: (MeanSquaredError(), _normal(r, (6,)), _normal(r, (6,))),
    "mae": lambda r: (MeanAbsoluteError(), _normal(r, (4, 3)), _normal(r, (4, 3))),
    "mape": lambda r: (
        MeanAbsolutePercentageError(),
        r.uniform(0.5, 2.0, (4, 3)) * r.choice([-1.0, 1.0], (4, 3)),
        _normal(r, (4, 3)),
    ),
    "msle": lambda r: (
        MeanSquaredLogarithmicError(),
        r.uniform(0.0, 3.0, (4, 3)),
        r.uniform(-1.0, 3.0, (4, 3)),  # negatives lie in the clipped, flat region
    ),
    "poisson": lambda r: (
        Poisson(),
        r.poisson(2.0, (4, 3)).astype(float),
        r.uniform(0.2, 3.0, (4, 3)),
    ),
    "log_cosh": lambda r: (LogCosh(), _normal(r, (4, 3)), _normal(r, (4, 3), 2.0)),
    "huber": lambda r: (Huber(), _normal(r, (4, 3)), _normal(r, (4, 3), 1.5)),
    "huber_delta": lambda r: (Huber(delta=0.5), _normal(r, (4, 3)), _normal(r, (4, 3))),
    "hinge_binary": lambda r: (
        Hinge(),
        r.integers(0, 2, (4, 3)).astype(float),
        _normal(r, (4, 3)),
    ),
    "hinge_signed": lambda r: (Hinge(), r.choice([-1.0, 1.0], (4, 3)), _normal(r, (4, 3))),
    "squared_hinge": lambda r: (
        SquaredHinge(),
        r.integers(0, 2, (4, 3)).astype(float),
        _normal(r, (4, 3)),
    ),
    "categorical_hinge": lambda r: (
        CategoricalHinge(),
        one_hot(r, (4, 3)),
        _normal(r, (4, 3), 0.3),
    ),
    "kl_divergence": lambda r: (
        KLDivergence(),
        distributions(r, (4, 3)),
        distributions(r, (4, 3)),
    ),
    "bce": lambda r: (
        BinaryCrossentropy(),
        r.uniform(0.0, 1.0, (4, 3)),
        r.uniform(0.05, 0.95, (4, 3)),
    ),
    "bce_smoothing": lambda r: (
        BinaryCrossentropy(label_smoothing=0.2),
        r.integers(0, 2, (4, 3)).astype(float),
        r.uniform(0.05, 0.95, (4, 3)),
    ),
    "bce_logits": lambda r: (
        BinaryCrossentropy(from_logits=True),
        r.uniform(0.0, 1.0, (4, 3)),
        _normal(r, (4, 3), 3.0),
    ),
    "cce": lambda r: (
        CategoricalCrossentropy(),
        one_hot(r, (4, 3)),
        r.uniform(0.1, 1.0, (4, 3)),  # not normalised: the gradient goes through p / sum(p)
    ),
    "cce_smoothing": lambda r: (
        CategoricalCrossentropy(label_smoothing=0.3),
        one_hot(r, (4, 3)),
        distributions(r, (4, 3)),
    ),
    "cce_logits": lambda r: (
        CategoricalCrossentropy(from_logits=True),
        one_hot(r, (4, 3)),
        _normal(r, (4, 3), 3.0),
    ),
    "cce_logits_unnormalised_targets": lambda r: (
        CategoricalCrossentropy(from_logits=True),
        r.uniform(0.0, 1.0, (4, 3)),
        _normal(r, (4, 3)),
    ),
    "cce_axis_1": lambda r: (
        CategoricalCrossentropy(axis=1),
        np.moveaxis(one_hot(r, (4, 2, 3)), -1, 1),
        r.uniform(0.1, 1.0, (4, 3, 2)),
    ),
    "scce": lambda r: (
        SparseCategoricalCrossentropy(),
        r.integers(0, 3, 4),
        r.uniform(0.1, 1.0, (4, 3)),
    ),
    "scce_logits": lambda r: (
        SparseCategoricalCrossentropy(from_logits=True),
        r.integers(0, 3, (4, 1)),
        _normal(r, (4, 3), 3.0),
    ),
    "scce_sequence": lambda r: (
        SparseCategoricalCrossentropy(from_logits=True),
        r.integers(0, 3, (4, 5)),
        _normal(r, (4, 5, 3)),
    ),
    "scce_ignore_class": lambda r: (
        SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1),
        np.array([0, -1, 2, 1]),
        _normal(r, (4, 3)),
    ),
}


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_value_and_grad_matches_call_and_its_finite_differences(
    case: str, weighted: bool, rng: np.random.Generator
) -> None:
    loss, y_true, y_pred = CASES[case](rng)
    weights = rng.uniform(0.1, 2.0, len(y_pred)) if weighted else None

    value, grad = loss.value_and_grad(y_true, y_pred, weights)
    grad = grad.copy()
    numeric = numerical_gradient(lambda: loss(y_true, y_pred, weights), y_pred)

    assert value == pytest.approx(loss(y_true, y_pred, weights), rel=1e-10)
    assert grad.shape == y_pred.shape and grad.dtype == np.float64
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("case", sorted(CASES))
def test_float32_inputs_give_a_float32_gradient_close_to_float64(
    case: str, rng: np.random.Generator
) -> None:
    loss, y_true, y_pred = CASES[case](rng)
    value64, grad64 = loss.value_and_grad(y_true, y_pred)
    grad64 = grad64.copy()

    value32, grad32 = loss.value_and_grad(
        np.asarray(y_true, np.float32), y_pred.astype(np.float32)
    )

    assert grad32.dtype == np.float32 and grad32.shape == y_pred.shape
    assert loss.per_sample(y_true, y_pred.astype(np.float32)).dtype == np.float32
    assert value32 == pytest.approx(value64, rel=1e-5)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-4, atol=1e-5)


# --- hand-computed values ---------------------------------------------------------------

HAND: list[tuple[str, Loss, list[Any], list[Any], list[float]]] = [
    ("mse", MeanSquaredError(), [[0, 1], [1, 1]], [[1, 1], [1, 0]], [0.5, 0.5]),
    ("mae", MeanAbsoluteError(), [[0, 1], [2, 2]], [[1, 1], [1, 4]], [0.5, 1.5]),
    ("mape", MeanAbsolutePercentageError(), [[2, 4]], [[1, 5]], [37.5]),
    # |y| = 0 divides by 1e-7: 100 * 0.5 / 1e-7 = 5e8.
    ("mape_zero_target", MeanAbsolutePercentageError(), [[0, 2]], [[0.5, 1]], [2.5e8 + 25]),
    ("msle", MeanSquaredLogarithmicError(), [[math.e - 1]], [[math.e**2 - 1]], [1.0]),
    ("msle_clipped", MeanSquaredLogarithmicError(), [[0.0]], [[-1.0]], [0.0]),
    ("poisson", Poisson(), [[2.0]], [[1.0]], [1 - 2 * math.log(1 + EPS)]),
    ("hinge_binary", Hinge(), [[0, 1]], [[0.5, 0.5]], [1.0]),  # labels -> -1, 1
    ("hinge_signed", Hinge(), [[-1, 1]], [[0.3, 2.0]], [0.65]),
    ("squared_hinge", SquaredHinge(), [[0, 1]], [[0.5, 0.5]], [1.25]),
    ("categorical_hinge", CategoricalHinge(), [[0, 1, 0]], [[0.3, 0.5, 0.4]], [0.9]),
    ("categorical_hinge_met", CategoricalHinge(), [[1, 0]], [[3.0, 1.0]], [0.0]),
    (
        "log_cosh",
        LogCosh(),
        [[0, 0]],
        [[1, -2]],
        [(math.log(math.cosh(1)) + math.log(math.cosh(2))) / 2],
    ),
    ("huber", Huber(), [[0, 0]], [[0.5, 3.0]], [(0.125 + 2.5) / 2]),
    ("huber_delta", Huber(delta=2.0), [[0]], [[-3.0]], [4.0]),
    (
        "kld",
        KLDivergence(),
        [[0.5, 0.5]],
        [[0.25, 0.75]],
        [0.5 * math.log(2) + 0.5 * math.log(2 / 3)],
    ),
    (
        "kld_zero_target",
        KLDivergence(),
        [[1, 0]],
        [[0.5, 0.5]],
        [math.log(2) + EPS * math.log(EPS / 0.5)],
    ),
    (
        "bce",
        BinaryCrossentropy(),
        [[1, 0]],
        [[0.8, 0.4]],
        [-(math.log(0.8) + math.log(0.6)) / 2],
    ),
    (
        "bce_smoothing",
        BinaryCrossentropy(label_smoothing=0.2),  # targets 0.9 and 0.1
        [[1, 0]],
        [[0.7, 0.2]],
        [
            -(
                0.9 * math.log(0.7)
                + 0.1 * math.log(0.3)
                + 0.1 * math.log(0.2)
                + 0.9 * math.log(0.8)
            )
            / 2
        ],
    ),
    (
        "bce_logits",
        BinaryCrossentropy(from_logits=True),
        [[1, 0]],
        [[2.0, -1.0]],
        [(math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2],
    ),
    (
        "cce",
        CategoricalCrossentropy(),
        [[0, 1, 0], [0, 0, 1]],
        [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]],
        [-math.log(0.95), -math.log(0.1)],
    ),
    ("cce_renormalised", CategoricalCrossentropy(), [[1, 0]], [[1.0, 3.0]], [math.log(4)]),
    (
        "cce_smoothing",
        CategoricalCrossentropy(label_smoothing=0.3),  # targets 0.1, 0.8, 0.1
        [[0, 1, 0]],
        [[0.2, 0.5, 0.3]],
        [-(0.1 * math.log(0.2) + 0.8 * math.log(0.5) + 0.1 * math.log(0.3))],
    ),
    (
        "cce_logits",
        CategoricalCrossentropy(from_logits=True),
        [[0, 0, 1]],
        [[1.0, 2.0, 3.0]],
        [-math.log(math.exp(3) / (math.exp(1) + math.exp(2) + math.exp(3)))],
    ),
    (
        "scce",
        SparseCategoricalCrossentropy(),
        [1, 2],
        [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]],
        [-math.log(0.95), -math.log(0.1)],
    ),
    (
        "scce_float_labels",
        SparseCategoricalCrossentropy(from_logits=True),
        [[2.0]],
        [[1.0, 2.0, 3.0]],
        [-math.log(math.exp(3) / (math.exp(1) + math.exp(2) + math.exp(3)))],
    ),
]


@pytest.mark.parametrize(
    ("loss", "y_true", "y_pred", "expected"),
    [case[1:] for case in HAND],
    ids=[case[0] for case in HAND],
)
def test_per_sample_values_match_hand_computed_ones(
    loss: Loss, y_true: list[Any], y_pred: list[Any], expected: list[float]
) -> None:
    y_pred64 = np.array(y_pred, np.float64)
    per_sample = loss.per_sample(y_true, y_pred64)

    np.testing.assert_allclose(per_sample, expected, rtol=1e-9)
    assert loss(y_true, y_pred64) == pytest.approx(np.mean(expected), rel=1e-9)
    assert loss.value_and_grad(y_true, y_pred64)[0] == pytest.approx(
        np.mean(expected), rel=1e-9
    )


@pytest.mark.parametrize(
    ("loss", "expected"),
    [(Huber(), 0.155), (LogCosh(), 0.108)],
    ids=["huber", "log_cosh"],
)
def test_reduced_values_match_keras_documentation_examples(
    loss: Loss, expected: float
) -> None:
    examples = {
        "huber_loss": ([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]),
        "log_cosh": ([[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]),
    }
    y_true, y_pred = examples[loss.name]
    assert loss(y_true, y_pred) == pytest.approx(expected, abs=5e-4)


def test_binary_crossentropy_matches_keras_documentation_example() -> None:
    per_sample = BinaryCrossentropy().per_sample([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])
    np.testing.assert_allclose(per_sample, [0.916, 0.714], atol=5e-4)


# --- reduction and shapes ---------------------------------------------------------------


def test_sum_over_batch_size_divides_by_the_number_of_values_not_the_weight_sum() -> None:
    y_true = np.zeros((4, 1))
    y_pred = np.array([[1.0], [2.0], [3.0], [4.0]])  # per-sample losses 1, 4, 9, 16
    weights = np.array([1.0, 0.0, 2.0, 0.5])  # sums to 3.5, not 4

    value, grad = MeanSquaredError().value_and_grad(y_true, y_pred, weights)

    assert value == pytest.approx((1 + 0 + 18 + 8) / 4)
    assert MeanSquaredError()(y_true, y_pred, weights) == pytest.approx(6.75)
    np.testing.assert_allclose(grad, 2 * y_pred * weights[:, None] / 4)


def test_sequence_losses_take_per_sample_or_per_timestep_weights(
    rng: np.random.Generator,
) -> None:
    loss = MeanSquaredError()
    y_true, y_pred = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 4, 2))
    per_step = ((y_true - y_pred) ** 2).mean(axis=-1)  # (3, 4)
    by_sample, by_step = rng.uniform(0, 2, 3), rng.uniform(0, 2, (3, 4))

    assert loss.per_sample(y_true, y_pred).shape == (3, 4)
    assert loss(y_true, y_pred, by_sample) == pytest.approx(
        (per_step * by_sample[:, None]).sum() / 12
    )
    assert loss(y_true, y_pred, by_step) == pytest.approx((per_step * by_step).sum() / 12)
    assert loss(y_true, y_pred, by_step[..., None]) == pytest.approx(
        (per_step * by_step).sum() / 12
    )
    numeric = numerical_gradient(lambda: loss(y_true, y_pred, by_step), y_pred)
    np.testing.assert_allclose(
        loss.value_and_grad(y_true, y_pred, by_step)[1], numeric, atol=1e-8
    )


def test_targets_without_the_trailing_unit_axis_match_predictions() -> None:
    loss = MeanSquaredError()
    y_pred = np.array([[1.0], [3.0]])
    assert loss([0.0, 1.0], y_pred) == pytest.approx((1 + 4) / 2)
    assert loss.per_sample([0.0, 1.0], y_pred).shape == (2,)


def test_one_dimensional_predictions_hold_one_value_per_sample() -> None:
    loss = MeanAbsoluteError()
    per_sample = loss.per_sample([0.0, 0.0, 0.0], np.array([1.0, -2.0, 3.0]))
    np.testing.assert_allclose(per_sample, [1.0, 2.0, 3.0])
    assert loss([0, 0, 0], [1.0, -2.0, 3.0], [1.0, 0.0, 0.0]) == pytest.approx(1 / 3)


def test_sparse_labels_equal_to_ignore_class_add_no_loss_and_no_gradient() -> None:
    loss = SparseCategoricalCrossentropy(ignore_class=255)
    y_pred = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])

    value, grad = loss.value_and_grad([0, 255, 1], y_pred, [2.0, 7.0, 1.0])

    assert value == pytest.approx((2 * math.log(2) + 1 * -math.log(0.8)) / 2)  # 2 valid
    np.testing.assert_array_equal(grad[1], 0.0)
    np.testing.assert_array_equal(loss.per_sample([0, 255, 1], y_pred)[1], 0.0)


def test_sparse_crossentropy_with_every_label_ignored_is_zero() -> None:
    loss = SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    value, grad = loss.value_and_grad([-1, -1], np.ones((2, 3)))
    assert value == 0.0 and loss([-1, -1], np.ones((2, 3))) == 0.0
    np.testing.assert_array_equal(grad, 0.0)


def test_categorical_crossentropy_along_axis_1_equals_it_along_the_last_axis(
    rng: np.random.Generator,
) -> None:
    y_true = one_hot(rng, (4, 5, 3))
    y_pred = rng.uniform(0.1, 1.0, (4, 5, 3))
    moved = CategoricalCrossentropy(axis=1, label_smoothing=0.1)
    last = CategoricalCrossentropy(label_smoothing=0.1)

    value, grad = moved.value_and_grad(
        np.moveaxis(y_true, -1, 1), np.moveaxis(y_pred, -1, 1)
    )
    expected_value, expected_grad = last.value_and_grad(y_true, y_pred)

    assert value == pytest.approx(expected_value)
    np.testing.assert_allclose(grad, np.moveaxis(expected_grad, -1, 1))


def test_clipped_probabilities_give_kerass_capped_loss_and_a_zero_gradient() -> None:
    cap = -math.log(EPS)  # ~16.12, Keras's loss for a certain wrong prediction
    value, grad = CategoricalCrossentropy().value_and_grad(
        [[0.0, 1.0]], np.array([[1.0, 0.0]])
    )
    assert value == pytest.approx(cap, rel=1e-6)
    np.testing.assert_array_equal(grad, 0.0)

    value, grad = BinaryCrossentropy().value_and_grad([[0.0, 1.0]], np.array([[1.0, 0.0]]))
    assert value == pytest.approx(-math.log(EPS), rel=1e-6)
    np.testing.assert_array_equal(grad, 0.0)


def test_value_and_grad_reuses_its_gradient_buffer_and_views_it_for_short_batches(
    rng: np.random.Generator,
) -> None:
    loss = MeanSquaredError()
    y = rng.normal(size=(8, 3)).astype(np.float32)
    _, first = loss.value_and_grad(y, y + 1)
    _, second = loss.value_and_grad(y, y - 1)
    _, short = loss.value_and_grad(y[:5], y[:5] + 2)

    assert np.shares_memory(first, second) and np.shares_memory(first, short)
    np.testing.assert_allclose(short, 2 * 2 / 15)


# --- fused activation paths -------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        (CategoricalCrossentropy(), "softmax"),
        (SparseCategoricalCrossentropy(), "softmax"),
        (BinaryCrossentropy(), "sigmoid"),
        (CategoricalCrossentropy(from_logits=True), None),
        (SparseCategoricalCrossentropy(from_logits=True), None),
        (BinaryCrossentropy(from_logits=True), None),
        (CategoricalCrossentropy(axis=1), None),
        (MeanSquaredError(), None),
        (KLDivergence(), None),
    ],
    ids=repr,
)
def test_fuses_with_names_the_matching_output_activation(
    loss: Loss, expected: str | None
) -> None:
    assert loss.fuses_with == expected


FUSED: dict[str, Case] = {
    "cce": lambda r: (
        CategoricalCrossentropy(),
        one_hot(r, (5, 4)),
        _normal(r, (5, 4), 2.0),
    ),
    "cce_smoothing": lambda r: (
        CategoricalCrossentropy(label_smoothing=0.2),
        one_hot(r, (5, 4)),
        _normal(r, (5, 4), 2.0),
    ),
    "scce": lambda r: (
        SparseCategoricalCrossentropy(),
        r.integers(0, 4, 5),
        _normal(r, (5, 4), 2.0),
    ),
    "bce": lambda r: (
        BinaryCrossentropy(),
        r.integers(0, 2, (5, 2)),
        _normal(r, (5, 2), 2.0),
    ),
    "bce_smoothing": lambda r: (
        BinaryCrossentropy(label_smoothing=0.1),
        r.uniform(0, 1, (5, 2)),
        _normal(r, (5, 2), 2.0),
    ),
}


def _activate(loss: Loss, logits: np.ndarray) -> np.ndarray:
    return softmax(logits) if loss.fuses_with == "softmax" else sigmoid(logits)


@pytest.mark.parametrize("case", sorted(FUSED))
def test_fused_loss_equals_the_loss_of_the_activated_logits(
    case: str, rng: np.random.Generator
) -> None:
    loss, y_true, logits = FUSED[case](rng)
    weights = rng.uniform(0.1, 2.0, len(logits))

    value, _ = loss.value_and_grad_from_logits(y_true, logits, weights)

    assert value == pytest.approx(loss(y_true, _activate(loss, logits), weights), rel=1e-9)


@pytest.mark.parametrize("case", sorted(FUSED))
def test_fused_gradient_matches_finite_differences_in_the_logits(
    case: str, rng: np.random.Generator
) -> None:
    loss, y_true, logits = FUSED[case](rng)
    weights = rng.uniform(0.1, 2.0, len(logits))

    grad = loss.value_and_grad_from_logits(y_true, logits, weights)[1].copy()
    numeric = numerical_gradient(
        lambda: loss.value_and_grad_from_logits(y_true, logits, weights)[0], logits
    )

    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_fused_softmax_gradient_is_probabilities_minus_targets_scaled_by_the_reduction(
    rng: np.random.Generator,
) -> None:
    y_true, logits = one_hot(rng, (5, 4)), rng.normal(size=(5, 4))
    weights = rng.uniform(0.1, 2.0, 5)
    _, grad = CategoricalCrossentropy().value_and_grad_from_logits(y_true, logits, weights)
    np.testing.assert_allclose(grad, (softmax(logits) - y_true) * weights[:, None] / 5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [100.0, 1e4])
def test_saturated_logits_give_the_exact_finite_loss_and_gradient(
    scale: float, dtype: type
) -> None:
    # Sample 0 is confidently wrong (loss 2 * scale), sample 1 confidently right (loss 0).
    logits = np.array([[scale, -scale, 0.0], [-scale, scale, 0.0]], dtype)
    y_true = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    expected_grad = np.array([[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]])

    with np.errstate(over="raise", divide="raise", invalid="raise"):
        results = [
            CategoricalCrossentropy().value_and_grad_from_logits(y_true, logits),
            CategoricalCrossentropy(from_logits=True).value_and_grad(y_true, logits),
            SparseCategoricalCrossentropy().value_and_grad_from_logits([1, 1], logits),
            SparseCategoricalCrossentropy(from_logits=True).value_and_grad([1, 1], logits),
        ]
    for value, grad in results:
        assert value == pytest.approx(scale, rel=1e-6)
        assert grad.dtype == dtype
        np.testing.assert_allclose(grad, expected_grad, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [100.0, 1e4])
def test_saturated_sigmoid_logits_give_the_exact_finite_loss_and_gradient(
    scale: float, dtype: type
) -> None:
    logits = np.array([[scale], [-scale], [scale]], dtype)
    y_true = np.array([[0.0], [0.0], [1.0]])  # wrong by `scale`, right, right

    with np.errstate(over="raise", divide="raise", invalid="raise"):
        fused = BinaryCrossentropy().value_and_grad_from_logits(y_true, logits)
        given = BinaryCrossentropy(from_logits=True).value_and_grad(y_true, logits)
    for value, grad in (fused, given):
        assert value == pytest.approx(scale / 3, rel=1e-6)
        np.testing.assert_allclose(grad, [[1 / 3], [0.0], [0.0]], atol=1e-7)


def test_logits_path_is_refused_by_losses_that_fuse_with_nothing() -> None:
    with pytest.raises(
        TypeError, match=r"MeanSquaredError takes no logits .*value_and_grad"
    ):
        MeanSquaredError().value_and_grad_from_logits([[1.0]], [[0.0]])


# --- errors -----------------------------------------------------------------------------


def test_mismatched_target_shape_is_rejected_with_both_shapes() -> None:
    with pytest.raises(
        ShapeError,
        match=r"MeanSquaredError\(\): y_true has shape \(4, 3\) but y_pred has shape "
        r"\(4, 2\).*Pass targets",
    ):
        MeanSquaredError().value_and_grad(np.zeros((4, 3)), np.zeros((4, 2)))


def test_sample_weight_of_the_wrong_shape_is_rejected() -> None:
    with pytest.raises(
        ShapeError, match=r"sample_weight has shape \(5,\) .* shape \(4,\).*pass weights"
    ):
        MeanSquaredError()(np.zeros((4, 2)), np.zeros((4, 2)), np.ones(5))


def test_categorical_losses_reject_predictions_without_a_class_axis() -> None:
    with pytest.raises(
        ShapeError, match=r"y_pred has shape \(4,\); expected \(batch, \.\.\., classes\)"
    ):
        CategoricalCrossentropy()(np.zeros(4), np.ones(4))


def test_sparse_crossentropy_rejects_one_hot_targets_and_names_the_fix() -> None:
    with pytest.raises(
        ShapeError,
        match=r"y_true has shape \(2, 3\).*For one-hot targets use CategoricalCrossentropy",
    ):
        SparseCategoricalCrossentropy()(np.eye(3)[:2], np.full((2, 3), 1 / 3))


def test_sparse_crossentropy_rejects_labels_out_of_range() -> None:
    with pytest.raises(
        ValueError, match=r"holds the label 3, outside \[0, 3\).*ignore_class=3"
    ):
        SparseCategoricalCrossentropy()([0, 3], np.full((2, 3), 1 / 3))


def test_categorical_crossentropy_rejects_a_missing_axis() -> None:
    with pytest.raises(
        ShapeError, match=r"CategoricalCrossentropy\(axis=3\): y_pred has shape \(2, 3\)"
    ):
        CategoricalCrossentropy(axis=3)(np.eye(3)[:2], np.full((2, 3), 1 / 3))


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (
            lambda: BinaryCrossentropy(label_smoothing=1.5),
            r"label_smoothing=1\.5; expected a number in \[0\.0, 1\.0\]",
        ),
        (lambda: CategoricalCrossentropy(label_smoothing=-0.1), r"label_smoothing=-0\.1"),
        (lambda: Huber(delta=0.0), r"Huber got delta=0\.0; expected a number > 0"),
    ],
    ids=["bce_smoothing", "cce_smoothing", "huber_delta"],
)
def test_invalid_constructor_arguments_are_rejected(
    build: Callable[[], Loss], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        build()


def test_a_custom_loss_without_call_and_grad_says_what_to_implement() -> None:
    @define(eq=False)
    class Doubled(Loss):
        def call(self, y_true: Any, y_pred: Any) -> Any:
            return 2 * y_pred.sum(axis=-1)

    loss = Doubled()
    assert loss.name == "doubled"
    assert loss([[0.0]], [[3.0]]) == 6.0
    with pytest.raises(
        NotImplementedError, match=r"Doubled has no gradient: implement call_and_grad"
    ):
        loss.value_and_grad([[0.0]], [[3.0]])


def test_a_custom_elementwise_loss_gets_the_reduction_and_gradient_scaling(
    rng: np.random.Generator,
) -> None:
    @define(eq=False)
    class QuarticError(ElementwiseLoss):
        def elementwise(self, y_true: Any, y_pred: Any) -> Any:
            return (y_pred - y_true) ** 4

        def elementwise_and_grad(
            self, y_true: Any, y_pred: Any, out: Any, grad: Any
        ) -> None:
            out[...] = (y_pred - y_true) ** 4
            grad[...] = 4 * (y_pred - y_true) ** 3

    loss = QuarticError()
    y_true, y_pred = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    weights = rng.uniform(0.1, 2.0, 3)
    numeric = numerical_gradient(lambda: loss(y_true, y_pred, weights), y_pred)
    np.testing.assert_allclose(
        loss.value_and_grad(y_true, y_pred, weights)[1], numeric, rtol=1e-6
    )


# --- names, get and serialize -----------------------------------------------------------

NAMES = {
    MeanSquaredError: ["mean_squared_error", "mse", "MSE", "MeanSquaredError"],
    MeanAbsoluteError: ["mean_absolute_error", "mae", "MAE", "MeanAbsoluteError"],
    MeanAbsolutePercentageError: ["mean_absolute_percentage_error", "mape", "MAPE"],
    MeanSquaredLogarithmicError: ["mean_squared_logarithmic_error", "msle", "MSLE"],
    BinaryCrossentropy: ["binary_crossentropy", "bce", "BinaryCrossentropy"],
    CategoricalCrossentropy: ["categorical_crossentropy", "CategoricalCrossentropy"],
    SparseCategoricalCrossentropy: ["sparse_categorical_crossentropy"],
    Hinge: ["hinge", "Hinge"],
    SquaredHinge: ["squared_hinge"],
    CategoricalHinge: ["categorical_hinge"],
    LogCosh: ["log_cosh", "logcosh", "LogCosh"],
    Huber: ["huber", "huber_loss", "Huber"],
    KLDivergence: ["kl_divergence", "kld", "KLD", "kullback_leibler_divergence"],
    Poisson: ["poisson", "Poisson"],
}


@pytest.mark.parametrize(
    ("name", "cls"),
    [(name, cls) for cls, names in NAMES.items() for name in names],
)
def test_get_resolves_keras_names_and_aliases(name: str, cls: type[Loss]) -> None:
    assert type(losses.get(name)) is cls


@pytest.mark.parametrize(
    ("cls", "name"),
    [
        (MeanSquaredError, "mean_squared_error"),
        (MeanAbsolutePercentageError, "mean_absolute_percentage_error"),
        (SparseCategoricalCrossentropy, "sparse_categorical_crossentropy"),
        (KLDivergence, "kl_divergence"),
        (LogCosh, "log_cosh"),
        (Huber, "huber_loss"),
    ],
)
def test_losses_carry_kerass_default_names(cls: type[Loss], name: str) -> None:
    assert cls().name == name
    assert cls(name="custom").name == "custom"


def test_get_passes_instances_through_and_instantiates_classes_and_functions() -> None:
    loss = Huber(delta=2.0)
    assert losses.get(loss) is loss
    assert losses.get(None) is None
    assert type(losses.get(Poisson)) is Poisson
    assert type(losses.get(losses.mean_squared_error)) is MeanSquaredError


def test_get_rejects_an_unknown_name_listing_the_options() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^losses\.get\('mean_sqared_error'\): unknown loss 'mean_sqared_error'; "
        r"expected one of \[.*'mse'.*\]\. Pass one of those names or a Loss instance "
        r"such as MeanSquaredError\(\)\. Did you mean 'mean_squared_error'\?$",
    ):
        losses.get("mean_sqared_error")


def test_get_rejects_plain_functions_and_says_to_subclass_loss() -> None:
    def my_loss(y_true: Any, y_pred: Any) -> Any:
        return y_pred

    with pytest.raises(
        TypeError, match=r"got <function .*my_loss.*subclass loopkit\.losses\.Loss"
    ):
        losses.get(my_loss)
    with pytest.raises(TypeError, match=r"got 42 of type int; expected None, a loss name"):
        losses.get(42)


def test_serialize_round_trips_through_get() -> None:
    loss = CategoricalCrossentropy(
        from_logits=True, label_smoothing=0.1, axis=1, name="cce"
    )
    config = losses.serialize(loss)

    assert config == {
        "class_name": "CategoricalCrossentropy",
        "config": {
            "name": "cce",
            "reduction": "sum_over_batch_size",
            "dtype": None,
            "from_logits": True,
            "label_smoothing": 0.1,
            "axis": 1,
        },
    }
    restored = losses.get(config)
    assert (
        type(restored) is CategoricalCrossentropy
        and restored.get_config() == config["config"]
    )
    assert losses.deserialize(config).get_config() == config["config"]
    assert type(losses.deserialize("kld")) is KLDivergence
    assert losses.serialize("mse") == {
        "class_name": "MeanSquaredError",
        "config": {
            "name": "mean_squared_error",
            "reduction": "sum_over_batch_size",
            "dtype": None,
        },
    }


def test_deserialize_rejects_anything_but_a_config_or_name() -> None:
    with pytest.raises(
        TypeError,
        match=r"^losses\.deserialize\(\) got 3 of type int; expected None, a loss",
    ):
        losses.deserialize(3)  # type: ignore[arg-type]


def test_get_rejects_configs_with_unknown_classes_or_keys() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown loss 'MeanSquaredErr'.*Did you mean 'mean_squared_error'",
    ):
        losses.get({"class_name": "MeanSquaredErr", "config": {}})
    with pytest.raises(
        ConfigError,
        match=r"Huber takes no argument 'delt'; it takes \['reduction', 'dtype', 'delta', "
        r"'name'\]\. Fix the config\. Did you mean 'delta'\?",
    ):
        losses.get({"class_name": "Huber", "config": {"delt": 2.0}})


def test_functional_forms_return_per_sample_values_and_take_the_loss_arguments() -> None:
    y_true, logits = [[1.0, 0.0]], np.array([[2.0, -1.0]])
    np.testing.assert_allclose(losses.mean_squared_error([[0.0, 0.0]], [[1.0, 3.0]]), [5.0])
    np.testing.assert_allclose(
        losses.binary_crossentropy(y_true, logits, from_logits=True),
        BinaryCrossentropy(from_logits=True).per_sample(y_true, logits),
    )
    np.testing.assert_allclose(losses.huber([[0.0]], [[3.0]], delta=2.0), [4.0])
    assert (
        losses.sparse_categorical_crossentropy.__name__ == "sparse_categorical_crossentropy"
    )


def test_sparse_crossentropy_fast_path_agrees_with_the_general_path(rng) -> None:
    from loopkit.losses import SparseCategoricalCrossentropy

    logits = (rng.standard_normal((32, 10)) * 5).astype(np.float32)
    labels = rng.integers(0, 10, 32)
    loss = SparseCategoricalCrossentropy()
    fast_value, fast_grad = loss.value_and_grad_from_logits(labels, logits)
    fast_grad = fast_grad.copy()
    # float labels and explicit unit weights take the general NumPy path
    slow_value, slow_grad = loss.value_and_grad_from_logits(
        labels.astype(np.float32), logits, np.ones(32, np.float32)
    )
    assert fast_value == pytest.approx(slow_value, rel=1e-6)
    np.testing.assert_allclose(fast_grad, slow_grad, rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match=r"label 12, outside \[0, 10\)"):
        loss.value_and_grad_from_logits(np.where(labels == labels[3], 12, labels), logits)
