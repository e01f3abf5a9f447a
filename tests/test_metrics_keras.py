"""Keras 3's metric API and the metrics added for it, against Keras's published values.

Expected numbers are those of keras/src/metrics/*_test.py and of the docstring
examples in keras/src/metrics/*.py (Keras 3, keras-team/keras), cited per test.
"""

from __future__ import annotations

import numpy as np
import pytest

from loopkit import metrics as M
from loopkit.errors import ConfigError, ShapeError

BINARY_TRUE = np.array([[0, 1, 0, 1, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 0], [0, 0, 0, 0, 1]])
BINARY_PRED = np.array([[0, 0, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 0], [1, 1, 1, 1, 1]])


# --- the Metric API ---------------------------------------------------------------------


def test_calling_a_metric_updates_its_state_and_returns_the_result() -> None:
    mse = M.MeanSquaredError()
    assert mse(BINARY_TRUE, BINARY_PRED) == pytest.approx(0.5)  # MeanSquaredErrorTest
    assert mse.result() == pytest.approx(0.5)
    mse.reset_state()
    weights = np.array([1.0, 1.5, 2.0, 2.5])
    assert mse(BINARY_TRUE, BINARY_PRED, sample_weight=weights) == pytest.approx(
        0.54285, abs=1e-5
    )


def test_the_name_comes_first_and_dtype_second_as_in_keras() -> None:
    mean = M.Mean("loss_mean", "float32")
    assert (mean.name, mean.dtype) == ("loss_mean", "float32")
    accuracy = M.BinaryAccuracy("acc", None, 0.3)
    assert (accuracy.name, accuracy.threshold) == ("acc", 0.3)
    top = M.TopKCategoricalAccuracy(3, "top3")
    assert (top.k, top.name) == (3, "top3")
    assert M.MeanMetricWrapper("mse", "my_mse").name == "my_mse"
    assert M.Precision(0.7, name="p").thresholds == 0.7  # thresholds stay first


def test_variables_are_the_accumulators() -> None:
    fp = M.FalsePositives(name="my_fp", thresholds=[0.4, 0.9])
    assert len(fp.variables) == 1  # FalsePositivesTest.test_config
    mean = M.Mean()
    mean.update_state([1.0, 3.0])
    np.testing.assert_allclose(mean.variables, [4.0, 2.0])


def test_dtype_accepts_the_float_dtypes_only() -> None:
    assert M.Mean(dtype=np.float64).get_config()["dtype"] == "float64"
    with pytest.raises(ConfigError, match=r"Mean got dtype='int8'; expected None"):
        M.Mean(dtype="int8")


# --- regression metrics (regression_metrics_test.py) ------------------------------------


def test_root_mean_squared_error_matches_keras() -> None:
    assert M.RootMeanSquaredError()([2, 4, 6], [1, 3, 2]) == pytest.approx(np.sqrt(6))
    weighted = M.RootMeanSquaredError()(
        [2, 4, 6, 8], [1, 3, 2, 3], sample_weight=[0, 1, 0, 1]
    )
    assert weighted == pytest.approx(np.sqrt(13))


def test_cosine_similarity_metric_is_the_positive_cosine() -> None:
    # The docstring example of keras.metrics.CosineSimilarity(axis=1).
    metric = M.CosineSimilarity(axis=1)
    assert metric([[0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [1.0, 1.0]]) == pytest.approx(
        0.49999997
    )
    metric.reset_state()
    weighted = metric([[0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [1.0, 1.0]], [0.3, 0.7])
    assert weighted == pytest.approx(0.6999999)


@pytest.mark.parametrize(
    ("aggregation", "regressors", "expected"),
    [
        (None, 0, [0.17305559, -8.836666, -0.521]),
        (None, 1, [-0.65388882, -18.673332, -2.042]),
        (None, 2, [0.17305559, -8.836666, -0.521]),
        ("uniform_average", 0, -3.0615367889404297),
        ("uniform_average", 1, -7.123073577880859),
        ("variance_weighted_average", 0, -1.3710224628448486),
        ("variance_weighted_average", 1, -3.742044448852539),
    ],
)
def test_r2_score_matches_keras(
    aggregation: str | None, regressors: int, expected: object
) -> None:
    r2 = M.R2Score(aggregation, regressors, dtype="float32")  # test_r2_tfa_comparison
    r2.update_state(
        [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]],
        [[0.4, 0.9, 1.6], [0.1, 1.2, 0.6], [1.5, 0.8, 0.6]],
        [0.8, 0.1, 0.4],
    )
    np.testing.assert_allclose(r2.result(), expected, atol=1e-5)


def test_r2_score_refuses_bad_settings_and_shapes() -> None:
    with pytest.raises(ConfigError, match=r"class_aggregation='median'; expected one of"):
        M.R2Score("median")
    with pytest.raises(ConfigError, match=r"num_regressors=-1; expected an int >= 0"):
        M.R2Score(num_regressors=-1)
    with pytest.raises(ShapeError, match=r"expected both \(batch, outputs\)"):
        M.R2Score()(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))


def test_named_loss_metrics_average_their_loss() -> None:
    y_true, y_pred = [[0.0, 1.0], [0.0, 0.0]], [[0.6, 0.4], [0.4, 0.6]]
    # The docstring example of keras.metrics.BinaryCrossentropy.
    assert M.BinaryCrossentropy()(y_true, y_pred) == pytest.approx(0.81492424)
    # keras.metrics.MeanAbsoluteError's docstring example:
    assert M.MeanAbsoluteError()([[0, 1], [0, 0]], [[1, 1], [0, 0]]) == pytest.approx(0.25)
    assert M.KLDivergence().name == "kl_divergence"
    assert M.LogCoshError().name == "logcosh"


# --- confusion counts and rates (confusion_metrics_test.py) ----------------------------


def test_confusion_counts_match_keras() -> None:
    assert M.FalsePositives()(BINARY_TRUE, BINARY_PRED) == 7.0
    weights = np.array((1.0, 1.5, 2.0, 2.5))
    assert M.FalsePositives()(BINARY_TRUE, BINARY_PRED, sample_weight=weights) == 14.0
    y_pred = np.array(
        ((0.9, 0.2, 0.8, 0.1), (0.2, 0.9, 0.7, 0.6), (0.1, 0.2, 0.4, 0.3), (0, 1, 0.7, 0.3))
    )
    y_true = np.array(((0, 1, 1, 0), (1, 0, 0, 0), (0, 0, 0, 0), (1, 1, 1, 1)))
    assert M.FalsePositives(thresholds=[0.15, 0.5, 0.85])(y_true, y_pred) == [7.0, 4.0, 2.0]
    element_weights = (
        (1.0, 2.0, 3.0, 5.0),
        (7.0, 11.0, 13.0, 17.0),
        (19.0, 23.0, 29.0, 31.0),
        (5.0, 15.0, 10.0, 0),
    )
    fp = M.FalsePositives(thresholds=[0.15, 0.5, 0.85])
    assert fp(y_true, y_pred, sample_weight=element_weights) == [125.0, 42.0, 12.0]
    assert M.TruePositives()(BINARY_TRUE, BINARY_PRED) == 7.0
    assert M.TrueNegatives()(BINARY_TRUE, BINARY_PRED) == 3.0
    assert M.FalseNegatives()(BINARY_TRUE, BINARY_PRED) == 3.0


def test_rates_at_a_target_rate_match_kerass_examples() -> None:
    y_true, y_pred = [0, 0, 0, 1, 1], [0, 0.3, 0.8, 0.3, 0.8]
    assert M.SensitivityAtSpecificity(0.5)(y_true, y_pred) == pytest.approx(0.5)
    assert M.SpecificityAtSensitivity(0.5)(y_true, y_pred) == pytest.approx(0.66666667)
    assert M.PrecisionAtRecall(0.5)(y_true, y_pred) == pytest.approx(0.5)
    weighted = M.PrecisionAtRecall(recall=0.5)
    weighted.update_state(y_true, y_pred, sample_weight=[2, 2, 2, 1, 1])
    assert weighted.result() == pytest.approx(0.33333333)
    assert M.RecallAtPrecision(0.8)([0, 0, 1, 1], [0, 0.5, 0.3, 0.9]) == pytest.approx(0.5)
    assert M.RecallAtPrecision(precision=0.8).get_config()["precision"] == 0.8


def test_rates_refuse_a_target_outside_the_unit_interval() -> None:
    with pytest.raises(ConfigError, match=r"specificity"):
        M.SensitivityAtSpecificity(1.5)
    with pytest.raises(ConfigError, match=r"num_thresholds=0; expected an int > 0"):
        M.PrecisionAtRecall(0.5, num_thresholds=0)


# --- F-scores (f_score_metrics_test.py) --------------------------------------------------

ONE_HOT = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [1, 0, 0], [0, 0, 1]]
SCORES = [
    [0.9, 0.1, 0],
    [0.2, 0.6, 0.2],
    [0, 0, 1],
    [0.4, 0.3, 0.3],
    [0, 0.9, 0.1],
    [0, 0, 1],
]


@pytest.mark.parametrize(
    ("average", "beta", "weights", "expected"),
    [
        (None, 0.5, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [0.909091, 0.555556, 1.0]),
        (None, 1.0, [0.5, 1.0, 1.0, 1.0, 0.5, 1.0], [0.857143, 0.8, 1.0]),
        ("micro", 2.0, [0.5, 1.0, 1.0, 1.0, 0.5, 1.0], 0.9),
        ("macro", 0.5, [1.0, 0.0, 1.0, 1.0, 0.0, 1.0], 0.666667),
        ("macro", 2.0, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 0.849206),
        ("weighted", 1.0, [0.5, 1.0, 1.0, 1.0, 0.5, 1.0], 0.902857),
    ],
)
def test_fbeta_score_matches_keras(
    average: str | None, beta: float, weights: list[float], expected: object
) -> None:
    fbeta = M.FBetaScore(average, beta, None, dtype="float32")
    fbeta.update_state(ONE_HOT, SCORES, weights)  # test_fbeta_weighted_random_score_none
    np.testing.assert_allclose(fbeta.result(), expected, atol=1e-5)


def test_f1_score_with_a_threshold_matches_keras() -> None:
    # test_fbeta_random_score with beta=1 (and F1Score's own test with threshold 0.5).
    f1 = M.F1Score(None, 0.5)
    f1.update_state(
        [[0, 0, 1], [1, 1, 0], [1, 1, 1]], [[0.7, 0.7, 0.7], [1, 0, 0], [0.9, 0.8, 0]]
    )
    np.testing.assert_allclose(f1.result(), [0.8, 0.5, 0.6666667], atol=1e-5)


def test_fbeta_score_refuses_bad_settings() -> None:
    with pytest.raises(ConfigError, match=r"average='mean'; expected one of"):
        M.FBetaScore(average="mean")
    with pytest.raises(ConfigError, match=r"beta=0; expected a number > 0"):
        M.FBetaScore(beta=0)
    with pytest.raises(ConfigError, match=r"threshold=1\.5; expected None or a float"):
        M.FBetaScore(threshold=1.5)


@pytest.mark.parametrize(
    "name",
    [
        "f1_score",
        "fbeta_score",
        "r2_score",
        "root_mean_squared_error",
        "true_positives",
        "false_negatives",
    ],
)
def test_added_metrics_are_reachable_by_name_and_round_trip(name: str) -> None:
    metric = M.get(name)
    assert metric.name == name
    assert M.deserialize(M.serialize(metric)).get_config() == metric.get_config()


@pytest.mark.parametrize(
    "cls",
    [M.MeanSquaredError, M.SensitivityAtSpecificity, M.TruePositives, M.CosineSimilarity],
)
def test_added_metric_classes_round_trip_through_their_config(cls: type) -> None:
    metric = cls(0.5) if cls is M.SensitivityAtSpecificity else cls()
    config = M.serialize(metric)
    assert config["class_name"] == cls.__name__
    assert M.deserialize(config).get_config() == metric.get_config()


def test_the_cosine_similarity_metric_name_gives_the_positive_cosine() -> None:
    metric = M.get("cosine_similarity")
    assert isinstance(metric, M.CosineSimilarity)
    assert metric([[0.0, 1.0]], [[0.0, 2.0]]) == pytest.approx(1.0)


# --- AUC's precision-recall gain curve (AUCTest in confusion_metrics_test.py) ------------

AUC_TRUE = np.array([0, 0, 1, 1])
AUC_PRED = np.array([0, 0.5, 0.3, 0.9], dtype="float32")
AUC_WEIGHTS = [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("summation", "expected"),
    [("majoring", 1.0), ("minoring", 0.0), ("interpolation", 0.5)],
)
def test_auc_prgain_matches_keras_weighted(summation: str, expected: float) -> None:
    auc = M.AUC(num_thresholds=3, curve="PRGAIN", summation_method=summation)
    assert auc(AUC_TRUE, AUC_PRED, sample_weight=AUC_WEIGHTS) == pytest.approx(
        expected, abs=1e-3
    )


def test_auc_prgain_interpolation_matches_keras() -> None:
    y_true = np.array([0, 0, 0, 1, 0, 1, 0, 1, 1, 1])
    y_pred = np.array([0.1, 0.2, 0.3, 0.3, 0.4, 0.4, 0.6, 0.6, 0.8, 0.9])
    expected = 0.666666 * 0.333333 + 0.333333 * 0.833333
    assert M.AUC(num_thresholds=3, curve="PRGAIN")(y_true, y_pred) == pytest.approx(
        expected, abs=1e-3
    )


def test_sum_adds_the_weighted_values_as_kerass_example() -> None:
    total = M.Sum()
    total.update_state([1, 3, 5, 7])
    assert total.result() == 16.0  # keras.metrics.Sum's docstring example
    total.reset_state()
    total.update_state([1, 3, 5, 7], sample_weight=[1, 0, 0, 1])
    assert total.result() == 8.0
    assert M.Sum()([[1.0, 2.0], [3.0, 4.0]], sample_weight=[1.0, 0.5]) == pytest.approx(6.5)
    with pytest.raises(ShapeError, match=r"Sum\(name='sum'\) got sample_weight with shape"):
        M.Sum()([[1.0, 2.0]], sample_weight=[[1.0, 2.0, 3.0]])


def test_the_metric_functions_keras_exports_are_here() -> None:
    from loopkit import losses

    assert M.mean_squared_error is losses.mean_squared_error
    np.testing.assert_array_equal(
        M.binary_accuracy([[1], [0]], [[0.9], [0.8]]), [[1.0], [0.0]]
    )
    np.testing.assert_array_equal(
        M.sparse_categorical_accuracy([1, 0], [[0.2, 0.8], [0.3, 0.7]]), [1.0, 0.0]
    )


# --- class_id, as keras/src/metrics/confusion_metrics_test.py --------------------------

MULTI_PRED = np.array(
    [[0.1, 0.2, 0.7], [0.5, 0.3, 0.2], [0.2, 0.6, 0.2], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]
)
MULTI_TRUE = np.eye(3)[[2, 0, 1, 0, 2]]


def test_precision_and_recall_with_class_id_match_keras_multiclass_tests() -> None:
    # PrecisionTest/RecallTest.test_unweighted_class_id_multiclass: 1.0, TP 1, FP/FN 0
    precision = M.Precision(class_id=1)
    assert precision(MULTI_TRUE, MULTI_PRED) == pytest.approx(1.0)
    assert precision.true_positives == pytest.approx(1.0)
    assert precision.false_positives == pytest.approx(0.0)
    recall = M.Recall(class_id=1)
    assert recall(MULTI_TRUE, MULTI_PRED) == pytest.approx(1.0)
    assert recall.false_negatives == pytest.approx(0.0)


def _three_columns(scores: list[float], labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    # Keras: y_pred = transpose([scores] * 3), y_true = one_hot(labels, 3)
    return np.eye(3)[labels], np.array([scores] * 3).T


def test_rate_metrics_with_class_id_match_keras_tests() -> None:
    # SpecificityAtSensitivityTest.test_unweighted_class_id: 0.6
    y_true, y_pred = _three_columns(
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.01, 0.02, 0.25, 0.26, 0.26], [0] * 5 + [2] * 5
    )
    assert M.SpecificityAtSensitivity(0.4, class_id=2)(y_true, y_pred) == pytest.approx(0.6)
    # PrecisionAtRecallTest.test_unweighted_class_id: 0.75
    y_true, y_pred = _three_columns(
        [0.0, 0.1, 0.2, 0.5, 0.6, 0.2, 0.5, 0.6, 0.8, 0.9], [0] * 5 + [2] * 5
    )
    assert M.PrecisionAtRecall(0.6, class_id=2)(y_true, y_pred) == pytest.approx(0.75)
    # RecallAtPrecisionTest.test_unweighted_class_id: 5/6
    scores = [0.05, 0.1, 0.2, 0.3, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.9, 0.95]
    y_true, y_pred = _three_columns(scores, [0, 2, 0, 0, 0, 2, 2, 0, 2, 2, 0, 2])
    assert M.RecallAtPrecision(2 / 3, class_id=2)(y_true, y_pred) == pytest.approx(5 / 6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: M.Precision(class_id=2),
        lambda: M.Recall(class_id=2),
        lambda: M.PrecisionAtRecall(0.5, class_id=2),
    ],
)
def test_class_id_with_one_dimensional_predictions_is_refused_as_keras(make) -> None:
    # Precision/RecallTest.test_unweighted_class_id_should_throw_error_1d: ValueError
    with pytest.raises(ValueError, match=r"class_id=2, so y_pred must be \(num_samples, "):
        make()(np.array([0, 1, 1, 0, 0]), np.array([0.2, 0.1, 0.6, 0, 0.2]))


def test_metrics_round_trip_through_from_config_with_class_id() -> None:
    # PrecisionTest/RecallTest/...test_config: class_id=12 kept; checked at update time
    for metric in (
        M.Precision(name="my_precision", thresholds=[0.4, 0.9], top_k=15, class_id=12),
        M.Recall(name="my_recall", thresholds=[0.4, 0.9], top_k=15, class_id=12),
        M.SensitivityAtSpecificity(0.4, num_thresholds=100, class_id=12),
        M.PrecisionAtRecall(0.4, num_thresholds=100, class_id=12),
    ):
        twin = type(metric).from_config(metric.get_config())
        assert twin.get_config() == metric.get_config() and twin.class_id == 12
        assert len(twin.variables) == len(metric.variables)
    with pytest.raises(ShapeError, match=r"class_id=12 but got y_pred with shape \(5, 3\)"):
        M.Precision(class_id=12)(MULTI_TRUE, MULTI_PRED)
    with pytest.raises(ConfigError, match=r"Precision.from_config\(\).*'class_ids'"):
        M.Precision.from_config({"class_ids": 1})


def test_metric_state_is_readable_by_name_as_keras_variables() -> None:
    mean = M.Mean()
    mean.update_state([1.0, 3.0])
    assert mean.total == pytest.approx(4.0) and mean.count == pytest.approx(2.0)
    with pytest.raises(AttributeError, match=r"'Mean' object has no attribute 'totl'"):
        _ = mean.totl


def test_auc_thresholds_read_and_round_trip_as_keras() -> None:
    # AUCTest.test_manual_thresholds: num_thresholds=2, thresholds=[0.5] -> 3 thresholds
    # [0, 0.5, 1] (the ends are -1e-7 and 1 + 1e-7); the ROC AUC is 0.75
    auc = M.AUC(num_thresholds=2, thresholds=[0.5])
    assert auc.num_thresholds == 3
    np.testing.assert_allclose(auc.thresholds, [0.0, 0.5, 1.0], atol=1e-6)
    y_true, y_pred = np.array([0, 0, 1, 1]), np.array([0, 0.5, 0.3, 0.9])
    assert auc(y_true, y_pred) == pytest.approx(0.75, abs=1e-3)
    # AUCTest.test_config_manual_thresholds: num_thresholds=None with thresholds=
    manual = M.AUC(num_thresholds=None, curve="PR", thresholds=[0.3, 0.5])
    assert manual.num_thresholds == 4
    np.testing.assert_allclose(manual.thresholds, [0.0, 0.3, 0.5, 1.0], atol=1e-6)
    twin = M.AUC.from_config(manual.get_config())
    assert twin.get_config() == manual.get_config() and twin.thresholds == manual.thresholds
    np.testing.assert_allclose(
        M.AUC(num_thresholds=3).thresholds, [0.0, 0.5, 1.0], atol=1e-6
    )
    with pytest.raises(ConfigError, match=r"num_thresholds=None and no thresholds="):
        M.AUC(num_thresholds=None)
