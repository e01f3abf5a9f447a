from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from loopkit import losses
from loopkit import metrics as M
from loopkit.errors import CheckpointError, ConfigError, ShapeError

Batch = tuple[Any, Any, Any]  # y_true, y_pred, sample_weight


def run(metric: M.Metric, batches: list[Batch]) -> Any:
    for y_true, y_pred, weight in batches:
        metric.update_state(np.asarray(y_true), np.asarray(y_pred), weight)
    return metric.result()


def exact_roc_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    """Weighted Mann-Whitney statistic: the exact trapezoid ROC AUC, ties counting 1/2."""
    w = np.ones(len(y)) if w is None else w
    pos, neg = y == 1, y == 0
    above = (p[pos][:, None] > p[neg][None, :]) + 0.5 * (p[pos][:, None] == p[neg][None, :])
    pair_weights = w[pos][:, None] * w[neg][None, :]
    return float((above * pair_weights).sum() / pair_weights.sum())


# --- Mean and the accuracies ---------------------------------------------------------


def test_mean_weights_values_and_resets() -> None:
    m = M.Mean()
    m.update_state([1.0, 2.0, 3.0])
    m.update_state([4.0, 5.0], sample_weight=[1.0, 3.0])
    assert m.result() == pytest.approx((1 + 2 + 3 + 4 + 15) / (3 + 4))
    m.reset_state()
    assert m.result() == 0.0
    m.update_state([[1.0, 3.0], [5.0, 7.0]])  # per-sample means 2 and 6
    assert m.result() == pytest.approx(4.0)


def test_mean_with_element_weights_weighs_each_element_then_averages_per_sample() -> None:
    m = M.Mean()
    m.update_state([[1.0, 3.0], [5.0, 7.0]], sample_weight=[[1.0, 0.0], [1.0, 1.0]])
    # Keras: per sample mean(v * w) / mean(w) summed: (0.5 + 6) / (0.5 + 1)
    assert m.result() == pytest.approx(6.5 / 1.5)


def test_accuracy_counts_exact_matches_over_batches() -> None:
    batches: list[Batch] = [
        ([1, 2, 3, 4], [1.0, 2.0, 0.0, 4.0], None),  # 3 of 4
        ([[5], [6]], [[5.0], [0.0]], None),  # 1 of 2
    ]
    assert run(M.Accuracy(), batches) == pytest.approx(4 / 6)
    weighted: list[Batch] = [([1, 2], [1.0, 0.0], [3.0, 1.0]), ([7], [7.0], [2.0])]
    assert run(M.Accuracy(), weighted) == pytest.approx((3 + 2) / 6)


def test_binary_accuracy_thresholds_predictions_and_averages_labels() -> None:
    batches: list[Batch] = [
        ([[1], [0], [1]], [[0.9], [0.6], [0.5]], None),  # 0.5 is not > 0.5: 1 of 3
        ([0, 1], [[0.2], [0.7]], None),  # (batch,) labels against (batch, 1): 2 of 2
    ]
    m = M.BinaryAccuracy()
    assert run(m, batches) == pytest.approx(3 / 5)
    m.reset_state()
    assert run(m, batches[1:]) == pytest.approx(1.0)
    high = M.BinaryAccuracy(threshold=0.8)  # only 0.9 is positive: rows 1, 2, 4 right
    assert run(high, batches) == pytest.approx(3 / 5)
    multilabel = [([[1, 0], [1, 1]], [[0.9, 0.1], [0.2, 0.8]], np.array([1.0, 3.0]))]
    assert run(M.BinaryAccuracy(), multilabel) == pytest.approx((1 * 1.0 + 3 * 0.5) / 4)


def test_categorical_and_sparse_accuracy_compare_argmax_with_the_class() -> None:
    p = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.4, 0.5, 0.1]])
    labels = np.array([1, 2, 2, 0])  # hits: rows 0 and 2
    onehot = np.eye(3)[labels]
    w = np.array([1.0, 2.0, 3.0, 4.0])
    assert (
        run(M.CategoricalAccuracy(), [(onehot[:2], p[:2], None), (onehot[2:], p[2:], None)])
        == 0.5
    )
    assert run(M.CategoricalAccuracy(), [(onehot, p, w)]) == pytest.approx(4 / 10)
    for y in (labels, labels[:, None], labels.astype(np.float32)):
        sparse = M.SparseCategoricalAccuracy()
        assert run(sparse, [(y[:3], p[:3], w[:3]), (y[3:], p[3:], w[3:])]) == pytest.approx(
            0.4
        )


def test_top_k_accuracies_count_ties_and_miss_out_of_range_labels() -> None:
    p = np.array([[0.5, 0.3, 0.2, 0.0], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.3, 0.0]])
    labels = np.array([2, 0, 2])  # row 0: 3rd best; row 1: worst; row 2: tied 2nd
    assert run(M.SparseTopKCategoricalAccuracy(k=2), [(labels, p, None)]) == pytest.approx(
        1 / 3
    )
    assert run(M.SparseTopKCategoricalAccuracy(k=3), [(labels, p, None)]) == pytest.approx(
        2 / 3
    )
    onehot = np.eye(4)[labels]
    top2 = M.TopKCategoricalAccuracy(k=2)
    assert run(
        top2, [(onehot[:1], p[:1], None), (onehot[1:], p[1:], None)]
    ) == pytest.approx(1 / 3)
    assert run(M.TopKCategoricalAccuracy(), [(onehot, p, None)]) == 1.0  # k=5 > 4 classes
    out_of_range = M.SparseTopKCategoricalAccuracy(k=4)
    assert run(out_of_range, [([[7], [-1]], p[:2], None)]) == 0.0


def test_accuracies_give_the_same_results_in_float32_and_float64(
    rng: np.random.Generator,
) -> None:
    p = rng.random((20, 4))
    labels = rng.integers(0, 4, 20)
    for make in (M.SparseCategoricalAccuracy, M.BinaryAccuracy):
        y = labels if make is M.SparseCategoricalAccuracy else (p > 0.3).astype(int)
        a = run(make(), [(y, p.astype(np.float32), None)])
        b = run(make(), [(y, p, None)])
        assert a == b


# --- losses as metrics ---------------------------------------------------------------


def test_mse_metric_is_the_weighted_mean_of_per_sample_squared_errors() -> None:
    y1, p1 = np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[1.0, 0.0], [1.0, 1.0]])
    y2, p2 = np.array([[3.0, 3.0]]), np.array([[0.0, 3.0]])
    per_sample = [2.0, 1.0, 4.5]  # mean over features of the squared error
    m = M.get("mse")
    assert m.name == "mse"
    assert run(m, [(y1, p1, None), (y2, p2, None)]) == pytest.approx(np.mean(per_sample))
    m.reset_state()
    result = run(m, [(y1, p1, np.array([1.0, 3.0])), (y2, p2, np.array([2.0]))])
    assert result == pytest.approx((2.0 + 3 * 1.0 + 2 * 4.5) / 6)


def test_binary_crossentropy_metric_averages_the_per_sample_loss() -> None:
    y = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    p = np.array([[0.8, 0.3], [0.4, 0.1], [0.6, 0.9]])
    per_sample = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p), axis=-1)
    w = np.array([0.5, 1.0, 2.0])
    m = M.get("binary_crossentropy")
    result = run(m, [(y[:2], p[:2], w[:2]), (y[2:], p[2:], w[2:])])
    assert result == pytest.approx(np.sum(w * per_sample) / np.sum(w), rel=1e-6)
    assert m.name == "binary_crossentropy"


def test_mean_metric_wrapper_takes_loss_objects_and_functions() -> None:
    y, p = np.array([[1.0], [3.0]]), np.array([[0.0], [1.0]])  # squared errors 1, 4
    from_loss = M.MeanMetricWrapper(losses.get("mse"))
    assert run(from_loss, [(y, p, None)]) == pytest.approx(2.5)
    rebuilt = M.get(M.serialize(from_loss))
    assert run(rebuilt, [(y, p, None)]) == pytest.approx(2.5)

    def abs_error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.abs(y_true - y_pred)[..., 0]

    from_function = M.get(abs_error)
    assert from_function.name == "abs_error"
    assert run(from_function, [(y, p, np.array([3.0, 1.0]))]) == pytest.approx(5 / 4)


def test_mean_metric_wrapper_rejects_a_non_callable_fn() -> None:
    with pytest.raises(
        TypeError, match=r"fn=3 of type int; expected a loss name such as 'mse'"
    ):
        M.MeanMetricWrapper(3)


# --- precision and recall ------------------------------------------------------------

PR_BATCHES: list[Batch] = [
    ([1, 0, 1, 0], [0.9, 0.6, 0.4, 0.2], None),
    ([[1], [1], [0], [0]], [[0.55], [0.7], [0.3], [0.65]], None),
]


def test_precision_and_recall_at_the_default_threshold() -> None:
    # TP: 0.9, 0.55, 0.7; FP: 0.6, 0.65; FN: 0.4
    assert run(M.Precision(), PR_BATCHES) == pytest.approx(3 / 5)
    assert run(M.Recall(), PR_BATCHES) == pytest.approx(3 / 4)


def test_precision_and_recall_weight_samples() -> None:
    weights = [np.array([2.0, 1.0, 1.0, 1.0]), np.array([1.0, 1.0, 1.0, 3.0])]
    batches = [(y, p, w) for (y, p, _), w in zip(PR_BATCHES, weights, strict=True)]
    # TP = 2 + 1 + 1, FP = 1 + 3, FN = 1
    assert run(M.Precision(), batches) == pytest.approx(4 / 8)
    assert run(M.Recall(), batches) == pytest.approx(4 / 5)


def test_precision_and_recall_give_one_value_per_threshold_in_the_order_given() -> None:
    # At 0.7 (strictly above): TP 0.9; FP none; FN 0.4, 0.55, 0.7.
    # At 0.3: TP 0.9, 0.4, 0.55, 0.7; FP 0.6, 0.65; FN none.
    precision = M.Precision(thresholds=[0.7, 0.3])
    assert run(precision, PR_BATCHES) == pytest.approx([1.0, 4 / 6])
    recall = M.Recall(thresholds=(0.7, 0.3))
    assert run(recall, PR_BATCHES) == pytest.approx([1 / 4, 1.0])
    assert recall.get_config()["thresholds"] == [0.7, 0.3]
    assert run(M.Precision(thresholds=0.7), PR_BATCHES) == pytest.approx(1.0)


def test_precision_and_recall_with_top_k_and_class_id() -> None:
    y = [[1, 0, 1], [0, 1, 0]]
    p = [[0.9, 0.8, 0.1], [0.2, 0.1, 0.3]]
    # top 1: row 0 picks class 0 (a positive), row 1 picks class 2 (a negative)
    assert run(M.Precision(top_k=1), [(y, p, None)]) == pytest.approx(1 / 2)
    assert run(M.Recall(top_k=1), [(y, p, None)]) == pytest.approx(1 / 3)
    # top 2 above 0.5: only 0.9 (positive) and 0.8 (negative)
    assert run(M.Precision(thresholds=0.5, top_k=2), [(y, p, None)]) == pytest.approx(1 / 2)
    # class 1 above 0.05: 0.8 (negative) and 0.1 (positive)
    assert run(M.Precision(0.05, class_id=1), [(y, p, None)]) == pytest.approx(1 / 2)
    assert run(M.Recall(0.05, class_id=1), [(y, p, None)]) == pytest.approx(1.0)


def test_precision_with_no_predicted_positives_is_zero() -> None:
    assert run(M.Precision(), [([1, 0], [0.1, 0.2], None)]) == 0.0


# --- AUC -----------------------------------------------------------------------------

TINY_Y = np.array([0, 0, 1, 1])
TINY_P = np.array([0.2, 0.7, 0.6, 0.9])


@pytest.mark.parametrize(
    ("summation_method", "expected"),
    # num_thresholds=3: thresholds -eps, 0.5, 1+eps give (FPR, TPR) points
    # (1, 1), (1/2, 1), (0, 0).
    [("interpolation", 0.5 * 1 + 0.5 * 0.5), ("minoring", 0.5), ("majoring", 1.0)],
)
def test_roc_auc_of_a_tiny_case_by_hand(summation_method: str, expected: float) -> None:
    m = M.AUC(num_thresholds=3, summation_method=summation_method)
    assert run(m, [(TINY_Y[:2], TINY_P[:2], None), (TINY_Y[2:], TINY_P[2:], None)]) == (
        pytest.approx(expected)
    )


def test_weighted_roc_auc_of_a_tiny_case_by_hand() -> None:
    # weights 1, 2, 1, 1: (FPR, TPR) = (1, 1), (2/3, 1), (0, 0)
    m = M.AUC(num_thresholds=3)
    result = run(m, [(TINY_Y, TINY_P, np.array([1.0, 2.0, 1.0, 1.0]))])
    assert result == pytest.approx(1 / 3 + (2 / 3) * 0.5)


@pytest.mark.parametrize(
    ("summation_method", "expected"),
    # num_thresholds=5: (recall, precision) at -eps, .25, .5, .75, 1+eps is
    # (1, 1/2), (1, 2/3), (1, 2/3), (1/2, 1), (0, 0 by convention).
    [
        ("minoring", 0.5 * (2 / 3) + 0.5 * 0.0),
        ("majoring", 0.5 * 1.0 + 0.5 * 1.0),
        # Davis & Goadrich: from P=3 to P=1 predicted positives TP = (1 + P) / 2, so
        # the area is the integral of (1 + P) / (2P) * d(TP / 2) = 1/4 + ln(3) / 8;
        # from P=1 to P=0, precision stays 1 over recall 1/2.
        ("interpolation", 0.25 + math.log(3) / 8 + 0.5),
    ],
)
def test_pr_auc_of_a_tiny_case_by_hand(summation_method: str, expected: float) -> None:
    m = M.AUC(num_thresholds=5, curve="PR", summation_method=summation_method)
    assert run(m, [(TINY_Y, TINY_P, None)]) == pytest.approx(expected)


@pytest.mark.parametrize("num_thresholds", [200, 2001])
def test_roc_auc_approaches_the_exact_trapezoid_auc(
    rng: np.random.Generator, num_thresholds: int
) -> None:
    n = 3000
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(rng.standard_normal(n) + 1.2 * y)))
    w = rng.uniform(0.5, 2.0, n)
    m = M.AUC(num_thresholds=num_thresholds)
    batches = [(y[i : i + 500], p[i : i + 500], w[i : i + 500]) for i in range(0, n, 500)]
    result = run(m, batches)
    exact = exact_roc_auc(y, p, w)
    assert exact == pytest.approx(roc_auc_score(y, p, sample_weight=w), abs=1e-12)
    # Only pairs scored within one threshold step are misranked, each by at most 1/2.
    assert abs(result - exact) < 1 / (num_thresholds - 1)


def test_multi_label_auc_averages_the_auc_of_each_label(rng: np.random.Generator) -> None:
    y = rng.integers(0, 2, (400, 3))
    p = np.clip(0.3 * y + rng.random((400, 3)) * 0.7, 0, 1)
    m = M.AUC(num_thresholds=2001, multi_label=True)
    result = run(m, [(y[:100], p[:100], None), (y[100:], p[100:], None)])
    expected = np.mean([exact_roc_auc(y[:, j], p[:, j]) for j in range(3)])
    assert abs(result - expected) < 1 / 2000
    pooled = run(M.AUC(num_thresholds=2001), [(y, p, None)])
    assert abs(pooled - exact_roc_auc(y.ravel(), p.ravel())) < 1 / 2000


def test_auc_from_logits_equals_auc_of_sigmoid_probabilities(
    rng: np.random.Generator,
) -> None:
    logits = rng.standard_normal(50) * 3
    y = rng.integers(0, 2, 50)
    probabilities = 1 / (1 + np.exp(-logits))
    with_logits = run(M.AUC(from_logits=True), [(y, logits, None)])
    assert with_logits == pytest.approx(run(M.AUC(), [(y, probabilities, None)]))


def test_auc_with_explicit_thresholds_matches_the_even_grid() -> None:
    explicit = M.AUC(thresholds=[0.75, 0.25, 0.5])
    assert explicit.num_thresholds == 5
    assert explicit.get_config()["thresholds"] == [0.25, 0.5, 0.75]
    even = M.AUC(num_thresholds=5)
    assert run(explicit, [(TINY_Y, TINY_P, None)]) == run(even, [(TINY_Y, TINY_P, None)])


def test_auc_gives_the_same_result_in_float32_and_float64(rng: np.random.Generator) -> None:
    y = rng.integers(0, 2, 100)
    p = rng.random(100)
    a = run(M.AUC(), [(y, p.astype(np.float32), None)])
    assert a == pytest.approx(run(M.AUC(), [(y, p, None)]), abs=1e-6)


# --- state for checkpoints -----------------------------------------------------------


def _classification(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    labels = rng.integers(0, 4, 12)
    p = rng.random((12, 4))
    p /= p.sum(axis=1, keepdims=True)
    binary = (rng.random((12, 4)) > 0.5).astype(np.float32)
    return labels, np.eye(4)[labels], p, binary


CASES: dict[str, tuple[Callable[[], M.Metric], str]] = {
    "mean_of_mse": (lambda: M.get("mse"), "onehot"),
    "accuracy": (M.Accuracy, "binary"),
    "binary_accuracy": (M.BinaryAccuracy, "binary"),
    "categorical_accuracy": (M.CategoricalAccuracy, "onehot"),
    "sparse_categorical_accuracy": (M.SparseCategoricalAccuracy, "labels"),
    "top_k": (lambda: M.TopKCategoricalAccuracy(k=2), "onehot"),
    "sparse_top_k": (lambda: M.SparseTopKCategoricalAccuracy(k=2), "labels"),
    "precision": (lambda: M.Precision(thresholds=[0.2, 0.4]), "binary"),
    "recall": (lambda: M.Recall(top_k=2), "binary"),
    "auc": (lambda: M.AUC(curve="PR"), "binary"),
    "multi_label_auc": (lambda: M.AUC(multi_label=True), "binary"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_state_round_trip_through_json_continues_identically(
    rng: np.random.Generator, case: str
) -> None:
    make, target = CASES[case]
    labels, onehot, p, binary = _classification(rng)
    y = {"labels": labels, "onehot": onehot, "binary": binary}[target]
    w = rng.uniform(0.5, 2.0, 12)
    original = make()
    original.update_state(y[:6], p[:6], w[:6])
    saved = json.loads(json.dumps(original.get_state()))
    resumed = make()
    resumed.update_state(y[6:], p[6:])  # state before set_state must not leak through
    resumed.set_state(saved)
    for metric in (original, resumed):
        metric.update_state(y[6:], p[6:], w[6:])
    assert resumed.result() == original.result()
    assert resumed.get_state() == original.get_state()


def test_set_state_rejects_other_keys_and_shapes() -> None:
    with pytest.raises(
        CheckpointError, match=r"got keys \['total'\]; expected \['count', 'total'\]"
    ):
        M.Accuracy().set_state({"total": 1.0})
    state = M.AUC(num_thresholds=5).get_state()
    with pytest.raises(
        CheckpointError, match=r"'true_positives' with shape \(5,\); expected \(7,\)"
    ):
        M.AUC(num_thresholds=7).set_state(state)


# --- get, serialize and errors -------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "output_shape", "expected"),
    [
        ("binary_crossentropy", (3,), M.BinaryAccuracy),
        (losses.get("binary_crossentropy"), (3,), M.BinaryAccuracy),
        ("BinaryCrossentropy", (3,), M.BinaryAccuracy),
        ("mse", (1,), M.BinaryAccuracy),
        ("sparse_categorical_crossentropy", (10,), M.SparseCategoricalAccuracy),
        (losses.get("sparse_categorical_crossentropy"), (10,), M.SparseCategoricalAccuracy),
        ("categorical_crossentropy", (10,), M.CategoricalAccuracy),
        (losses.get("categorical_crossentropy"), (10,), M.CategoricalAccuracy),
        ("mse", (3,), M.Accuracy),
        (None, None, M.Accuracy),
    ],
)
@pytest.mark.parametrize("name", ["accuracy", "acc"])
def test_accuracy_resolves_from_the_loss_and_output_and_keeps_its_name(
    loss: Any, output_shape: tuple[int, ...] | None, expected: type, name: str
) -> None:
    metric = M.get(name, loss=loss, output_shape=output_shape)
    assert type(metric) is expected
    assert metric.name == name


def test_get_builds_metrics_from_names_instances_and_configs() -> None:
    auc = M.AUC(num_thresholds=50, curve="PR", name="pr_auc")
    assert M.get(auc) is auc
    for name, cls in [("precision", M.Precision), ("auc", M.AUC), ("Recall", M.Recall)]:
        metric = M.get(name)
        assert type(metric) is cls
        assert metric.name == name
    rebuilt = M.get(M.serialize(auc))
    assert type(rebuilt) is M.AUC
    assert rebuilt.get_config() == auc.get_config()
    assert json.loads(json.dumps(M.serialize(M.Precision([0.3, 0.6], class_id=2))))


def test_get_rejects_an_unknown_name_listing_names_and_a_suggestion() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^metrics\.get\('precission'\): unknown metric 'precission'; expected one "
        r"of \['acc', 'accuracy', 'auc', .*'mean_squared_error'.*\]\. Pass one of those "
        r"names or a Metric instance such as AUC\(curve='PR'\)\. "
        r"Did you mean 'precision'\?$",
    ):
        M.get("precission")


def test_get_rejects_other_kinds_and_unknown_classes() -> None:
    with pytest.raises(
        TypeError, match=r"got 3 of type int; expected a metric or loss name"
    ):
        M.get(3)
    with pytest.raises(
        ConfigError, match=r"unknown metric 'Precison'; .*Did you mean 'precision'\?"
    ):
        M.get({"class_name": "Precison", "config": {}})
    with pytest.raises(
        ConfigError, match=r"BinaryAccuracy takes no argument 'treshold'; it takes "
    ):
        M.get({"class_name": "BinaryAccuracy", "config": {"treshold": 0.3}})


def test_constructors_reject_bad_settings_with_the_fix() -> None:
    with pytest.raises(
        ConfigError, match=r"thresholds=\[0.5, 1.5\]; every threshold must be in \[0, 1\]"
    ):
        M.Precision(thresholds=[0.5, 1.5])
    with pytest.raises(
        TypeError, match=r"thresholds='high'; expected a number or a non-empty list"
    ):
        M.Recall(thresholds="high")
    with pytest.raises(
        ConfigError,
        match=r"curve='ROCC'; expected one of \['ROC', 'PR', 'PRGAIN'\]\. "
        r"Did you mean 'ROC'\?",
    ):
        M.AUC(curve="ROCC")
    with pytest.raises(ConfigError, match=r"num_thresholds=1; expected an int > 1"):
        M.AUC(num_thresholds=1)
    with pytest.raises(ConfigError, match=r"top_k=0; expected an int > 0"):
        M.Precision(top_k=0)
    with pytest.raises(ConfigError, match=r"class_id=-1; expected an int >= 0"):
        M.Recall(class_id=-1)
    with pytest.raises(TypeError, match=r"threshold='0.5' of type str; expected a number"):
        M.BinaryAccuracy(threshold="0.5")
    with pytest.raises(TypeError, match=r"name=3 of type int; expected a str"):
        M.Accuracy(name=3)


def test_mismatched_shapes_raise_shape_errors_naming_both_shapes() -> None:
    with pytest.raises(
        ShapeError, match=r"y_true with shape \(2, 3\) and y_pred with shape \(2, 2\)"
    ):
        M.Precision().update_state(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ShapeError, match=r"class_id=3 but got y_pred with shape \(2, 3\)"):
        M.Recall(class_id=3).update_state(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(
        ShapeError, match=r"y_true with shape \(2, 3\) and y_pred with shape \(2, 4\)"
    ):
        M.Accuracy().update_state(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(
        ShapeError, match=r"sample_weight with shape \(3,\) for values of shape \(2,\)"
    ):
        M.Mean().update_state([1.0, 2.0], sample_weight=[1.0, 1.0, 1.0])
    with pytest.raises(
        ShapeError, match=r"sample_weight with shape \(3,\) for y_pred with shape \(2,\)"
    ):
        M.AUC().update_state([0, 1], [0.2, 0.8], sample_weight=[1.0, 1.0, 1.0])
    m = M.AUC(multi_label=True)
    m.update_state(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(
        ShapeError, match=r"has 3 labels but got y_pred with shape \(2, 4\)"
    ):
        m.update_state(np.zeros((2, 4)), np.zeros((2, 4)))
