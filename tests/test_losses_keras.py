"""Keras 3's loss options and the losses added for it, against Keras's published values.

Expected numbers are those of keras/src/losses/losses_test.py (Keras 3, the
keras-team/keras repository), cited per test; gradients are checked against
float64 central finite differences.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loopkit import losses
from loopkit.errors import ConfigError, ShapeError
from loopkit.losses import (
    BinaryFocalCrossentropy,
    CategoricalFocalCrossentropy,
    CategoricalGeneralizedCrossEntropy,
    CosineSimilarity,
    Dice,
    Loss,
    MeanSquaredError,
    Tversky,
)
from loopkit.testing import numerical_gradient

MSE_TRUE = np.array([[1, 9, 2], [-5, -2, 6]])
MSE_PRED = np.array([[4, 8, 12], [8, 1, 3]], dtype="float32")


# --- reduction and dtype (MeanSquaredErrorTest) -----------------------------------------


def test_reduction_none_gives_the_weighted_per_sample_values() -> None:
    loss = MeanSquaredError(reduction=None)(MSE_TRUE, MSE_PRED, sample_weight=2.3)
    np.testing.assert_allclose(loss, [84.3333, 143.3666], rtol=1e-5)  # test_no_reduction
    np.testing.assert_allclose(
        MeanSquaredError(reduction="none")(MSE_TRUE, MSE_PRED), [110 / 3, 187 / 3]
    )


def test_reduction_sum_adds_the_weighted_values() -> None:
    loss = MeanSquaredError(reduction="sum")(MSE_TRUE, MSE_PRED, sample_weight=2.3)
    assert loss == pytest.approx(227.69998, rel=1e-6)  # test_sum_reduction


def test_reduction_mean_is_sum_over_batch_size() -> None:
    weights = np.array([[1.2], [3.4]])
    mean = MeanSquaredError(reduction="mean")(MSE_TRUE, MSE_PRED, sample_weight=weights)
    default = MeanSquaredError()(MSE_TRUE, MSE_PRED, sample_weight=weights)
    assert mean == default == pytest.approx(767.8 / 6, rel=1e-6)  # test_sample_weighted


def test_reduction_mean_with_sample_weight_divides_by_the_weights() -> None:
    loss = MeanSquaredError(reduction="mean_with_sample_weight")(
        MSE_TRUE, MSE_PRED, sample_weight=np.array([[1.2], [3.4]])
    )
    expected = (110 / 3 * 1.2 + 187 / 3 * 3.4) / (1.2 + 3.4)
    assert loss == pytest.approx(expected, rel=1e-6)  # test_mean_with_sample_weight...


@pytest.mark.parametrize("reduction", ["sum", "mean_with_sample_weight"])
def test_every_training_reduction_has_the_gradient_of_its_value(
    reduction: str, rng: np.random.Generator
) -> None:
    loss = MeanSquaredError(reduction=reduction)
    y_true, y_pred = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    weights = rng.uniform(0.5, 2.0, 4)
    value, grad = loss.value_and_grad(y_true, y_pred, weights)
    numeric = numerical_gradient(lambda: loss(y_true, y_pred, weights), y_pred)
    assert value == pytest.approx(loss(y_true, y_pred, weights))
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_reduction_none_cannot_train_and_says_which_to_use() -> None:
    with pytest.raises(
        ConfigError, match=r"MeanSquaredError\(reduction=None\) gives per-sample values"
    ):
        MeanSquaredError(reduction=None).value_and_grad(MSE_TRUE, MSE_PRED)


def test_an_unknown_reduction_or_dtype_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"reduction='avg'; expected one of \['sum_over"):
        MeanSquaredError(reduction="avg")
    with pytest.raises(
        ConfigError, match=r"got dtype='bfloat16'; expected None, 'float32' or 'float64'"
    ):
        MeanSquaredError(dtype="bfloat16")


def test_dtype_sets_the_dtype_of_the_computation() -> None:
    values = MeanSquaredError(dtype="float64", reduction=None)(MSE_TRUE, MSE_PRED)
    assert values.dtype == np.float64
    assert MeanSquaredError(dtype=np.float32).get_config()["dtype"] == "float32"


# --- the added losses: Keras's values -------------------------------------------------


def test_cosine_similarity_matches_keras() -> None:
    y_true = np.asarray([[1, 9, 2], [-5, -2, 6]], dtype=np.float32)
    y_pred = np.asarray([[4, 8, 12], [8, 1, 3]], dtype=np.float32)
    norm = np.linalg.norm
    cosine = np.sum(y_true * y_pred, axis=1) / norm(y_true, axis=1) / norm(y_pred, axis=1)
    assert CosineSimilarity()(y_true, y_pred) == pytest.approx(-np.mean(cosine), abs=1e-3)
    weighted = CosineSimilarity()(y_true, y_pred, sample_weight=2.3)
    assert weighted == pytest.approx(-np.mean(cosine * 2.3), abs=1e-3)
    # The docstring example of keras.losses.cosine_similarity:
    values = losses.cosine_similarity(
        [[0.0, 1.0], [1.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [1.0, 1.0], [-1.0, -1.0]]
    )
    np.testing.assert_allclose(values, [0.0, -0.99999994, 0.99999994], atol=1e-6)


def test_binary_focal_crossentropy_matches_keras() -> None:
    y_true = np.asarray([1, 0, 1, 0]).reshape([2, 2])
    y_pred = np.asarray([0.9, 0.8, 0.7, 0.2], dtype=np.float32).reshape([2, 2])
    focal = BinaryFocalCrossentropy(gamma=2.0)
    assert focal(y_true, y_pred) == pytest.approx(0.268, abs=1e-3)  # test_unweighted
    assert focal(y_true, y_pred, sample_weight=1.23) == pytest.approx(0.3296, abs=1e-3)
    weights = np.array([1.2, 3.4]).reshape((2, 1))
    assert focal(y_true, y_pred, sample_weight=weights) == pytest.approx(0.34415, abs=1e-3)
    unreduced = BinaryFocalCrossentropy(gamma=2.0, reduction=None)(y_true, y_pred)
    np.testing.assert_allclose(unreduced, [0.515547, 0.020513], atol=1e-6)
    logit_true = np.array([[1, 1, 0], [0, 1, 0]], dtype="float32")
    logits = np.array([[1.5, -2.7, 2.9], [-3.8, 1.2, -4.5]])
    from_logits = BinaryFocalCrossentropy(gamma=3.0, from_logits=True)
    assert from_logits(logit_true, logits) == pytest.approx(0.799, abs=1e-3)
    assert from_logits(logit_true, logits, sample_weight=3.21) == pytest.approx(
        2.565, abs=1e-3
    )


def test_categorical_focal_crossentropy_matches_keras() -> None:
    y_true = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    y_pred = np.array(
        [[0.9, 0.05, 0.05], [0.5, 0.89, 0.6], [0.05, 0.01, 0.94]], dtype="float32"
    )
    focal = CategoricalFocalCrossentropy()
    assert focal(y_true, y_pred) == pytest.approx(0.02059, abs=1e-3)  # test_unweighted
    assert focal(y_true, y_pred, sample_weight=2.3) == pytest.approx(0.047368, abs=1e-3)
    weights = np.array([[1.2], [3.4], [5.6]])
    assert focal(y_true, y_pred, sample_weight=weights) == pytest.approx(0.06987, abs=1e-3)
    logits = np.array([[8.0, 1.0, 1.0], [0.0, 9.0, 1.0], [2.0, 3.0, 5.0]])
    from_logits = CategoricalFocalCrossentropy(from_logits=True)
    assert from_logits(y_true, logits) == pytest.approx(0.000345, abs=1e-3)
    assert from_logits(y_true, logits, sample_weight=2.3) == pytest.approx(
        0.000794, abs=1e-4
    )
    unreduced = CategoricalFocalCrossentropy(from_logits=True, reduction=None)
    np.testing.assert_allclose(
        unreduced(y_true, logits), [1.5096224e-09, 2.4136547e-11, 1.0360638e-03], rtol=1e-3
    )


def test_dice_and_tversky_match_keras() -> None:
    y_true, y_pred = np.array([[1, 2], [1, 2]]), np.array([[4, 1], [6, 1]])
    assert Dice()(y_true, y_pred) == pytest.approx(-0.55555546, rel=1e-6)
    assert Tversky()(y_true, y_pred) == pytest.approx(-0.55555558, rel=1e-6)
    assert Tversky(alpha=0.2, beta=0.8)(y_true, y_pred) == pytest.approx(-0.94444442)
    seg_true = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]])
    seg_pred = np.array([[0, 1, 0, 1], [1, 0, 1, 1], [0, 1, 0, 1], [1, 0, 1, 1]])
    assert Dice()(seg_true, seg_pred) == pytest.approx(0.77777773, rel=1e-6)
    assert Tversky(alpha=0.2, beta=0.8)(seg_true, seg_pred) == pytest.approx(0.76190472)
    images_true = np.array(
        [[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]]
    )
    images_pred = np.array(
        [[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]]
    )
    per_image = Dice(axis=(1, 2, 3), reduction=None)(images_true, images_pred)
    np.testing.assert_allclose(per_image, [0.5, 0.75757575], rtol=1e-6)
    tversky = Tversky(alpha=0.2, beta=0.8, axis=[1, 2, 3], reduction=None)
    np.testing.assert_allclose(
        tversky(images_true, images_pred), [0.5, 0.78494626], rtol=1e-6
    )


def test_generalized_crossentropy_matches_keras() -> None:
    y_true = np.array([0, 1, 0, 1])
    y_pred = np.array([[0.7, 0.3, 0.0], [0.2, 0.2, 0.6], [0.6, 0.4, 0.0], [0.2, 0.2, 0.6]])
    for q in (0.5, 0.8):
        picked = np.array([0.7, 0.2, 0.6, 0.2])
        expected = np.mean((1 - picked**q) / q)  # test_basic_correctness_for_multi_class
        loss = CategoricalGeneralizedCrossEntropy(q=q)(y_true, y_pred)
        assert loss == pytest.approx(expected)


def test_generalized_crossentropy_refuses_q_outside_the_open_unit_interval() -> None:
    with pytest.raises(ConfigError, match=r"got q=1\.0; expected a number in \(0, 1\)"):
        CategoricalGeneralizedCrossEntropy(q=1.0)
    with pytest.raises(TypeError, match=r"got q='half' of type str"):
        CategoricalGeneralizedCrossEntropy(q="half")  # type: ignore[arg-type]


def test_generalized_crossentropy_errors_name_it_not_its_base_class() -> None:
    probs = np.full((2, 3), 1 / 3)
    with pytest.raises(
        ShapeError, match=r"^CategoricalGeneralizedCrossEntropy\(\): y_true"
    ):
        CategoricalGeneralizedCrossEntropy()(np.eye(3)[:2], probs)  # one-hot, not ids
    with pytest.raises(
        ValueError, match=r"^CategoricalGeneralizedCrossEntropy\(\): .*label 5"
    ):
        CategoricalGeneralizedCrossEntropy()(np.array([0, 5]), probs)


# --- gradients ------------------------------------------------------------------------


def _cases(rng: np.random.Generator) -> dict[str, tuple[Loss, Any, np.ndarray]]:
    binary = rng.integers(0, 2, (4, 3)).astype(float)
    probs = rng.uniform(0.05, 0.95, (4, 3))
    logits = rng.normal(size=(4, 3))
    onehot = np.eye(3)[rng.integers(0, 3, 4)]
    return {
        "binary_focal": (BinaryFocalCrossentropy(gamma=2.0), binary, probs),
        "binary_focal_balanced": (
            BinaryFocalCrossentropy(
                apply_class_balancing=True, gamma=1.5, label_smoothing=0.1
            ),
            binary,
            probs,
        ),
        "binary_focal_logits": (BinaryFocalCrossentropy(from_logits=True), binary, logits),
        "categorical_focal": (CategoricalFocalCrossentropy(), onehot, probs),
        "categorical_focal_logits": (
            CategoricalFocalCrossentropy(from_logits=True, gamma=1.0, label_smoothing=0.2),
            onehot,
            logits,
        ),
        "cosine": (CosineSimilarity(), rng.normal(size=(4, 3)), logits),
        "dice": (Dice(), binary, probs),
        "dice_per_sample": (Dice(axis=1), binary, probs),
        "tversky": (Tversky(alpha=0.3, beta=0.7, axis=(1,)), binary, probs),
        "generalized": (CategoricalGeneralizedCrossEntropy(q=0.7), np.arange(4) % 3, probs),
    }


@pytest.mark.parametrize(
    "case",
    [
        "binary_focal",
        "binary_focal_balanced",
        "binary_focal_logits",
        "categorical_focal",
        "categorical_focal_logits",
        "cosine",
        "dice",
        "dice_per_sample",
        "tversky",
        "generalized",
    ],
)
def test_added_losses_have_the_gradient_of_their_value(
    case: str, rng: np.random.Generator
) -> None:
    loss, y_true, y_pred = _cases(rng)[case]
    weights = None if case == "dice" else rng.uniform(0.5, 2.0, len(y_pred))
    value, grad = loss.value_and_grad(y_true, y_pred, weights)
    numeric = numerical_gradient(lambda: loss(y_true, y_pred, weights), y_pred)
    assert value == pytest.approx(loss(y_true, y_pred, weights), rel=1e-10)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(
    "name",
    [
        "binary_focal_crossentropy",
        "categorical_focal_crossentropy",
        "categorical_generalized_cross_entropy",
        "cosine_similarity",
        "dice",
        "tversky",
    ],
)
def test_added_losses_are_reachable_by_name_and_round_trip(name: str) -> None:
    loss = losses.get(name)
    assert loss is not None and loss.name == name
    config = losses.serialize(loss)
    assert losses.deserialize(config).get_config() == loss.get_config()


def test_generalized_crossentropy_takes_no_logits() -> None:
    with pytest.raises(
        TypeError, match=r"CategoricalGeneralizedCrossEntropy takes no logits"
    ):
        CategoricalGeneralizedCrossEntropy().value_and_grad_from_logits(
            np.array([0, 1]), np.array([[2.0, 0.0], [0.0, 2.0]])
        )


def test_binary_crossentropy_averages_over_the_axis_given() -> None:
    from loopkit.losses import BinaryCrossentropy

    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 2, (2, 3, 4)).astype(float)
    y_pred = rng.uniform(0.05, 0.95, (2, 3, 4))
    per_element = -(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))
    loss = BinaryCrossentropy(axis=1, reduction=None)
    np.testing.assert_allclose(loss(y_true, y_pred), per_element.mean(axis=1), rtol=1e-6)
    value, grad = BinaryCrossentropy(axis=1).value_and_grad(y_true, y_pred)
    assert value == pytest.approx(per_element.mean())
    numeric = numerical_gradient(lambda: BinaryCrossentropy(axis=1)(y_true, y_pred), y_pred)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_loss_from_config_rebuilds_it_as_keras() -> None:
    # Keras's losses tests: Loss.from_config(loss.get_config()) keeps every argument
    for loss in (
        losses.MeanSquaredError(reduction="sum", name="mse_sum"),
        CategoricalGeneralizedCrossEntropy(q=0.7),
        losses.Huber(delta=2.0, reduction=None),
    ):
        twin = type(loss).from_config(loss.get_config())
        assert type(twin) is type(loss) and twin.get_config() == loss.get_config()
    with pytest.raises(ConfigError, match=r"Huber.from_config\(\).*'delt'"):
        losses.Huber.from_config({"delt": 1.0})
