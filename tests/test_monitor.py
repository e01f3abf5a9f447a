from __future__ import annotations

import math

import pytest

from loopkit import ConfigError, Monitor, infer_mode


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("val_loss", "min"),
        ("loss", "min"),
        ("mae", "min"),
        ("accuracy", "max"),
        ("val_acc", "max"),
        ("val_auc", "max"),
        ("precision", "max"),
        ("r2_score", "max"),
        ("sparse_top_k_categorical_accuracy", "max"),
    ],
)
def test_infer_mode_maximizes_accuracy_like_names_and_minimizes_the_rest(
    name, mode
) -> None:
    assert infer_mode(name) == mode


def test_monitor_counts_only_improvements_beyond_min_delta() -> None:
    monitor = Monitor("val_loss", min_delta=0.1)
    assert monitor.best == math.inf
    assert monitor.improves(1.0)
    monitor.best = 1.0
    assert not monitor.improves(0.95)  # better, but by less than min_delta
    assert monitor.improves(0.85)
    assert not monitor.improves(float("nan"))


def test_monitor_in_max_mode_starts_from_minus_infinity_or_the_initial_value() -> None:
    assert Monitor("accuracy").best == -math.inf
    monitor = Monitor("accuracy", initial=0.5)
    assert not monitor.improves(0.5)
    assert monitor.improves(0.51)


def test_monitor_rejects_an_unknown_mode_and_says_which_exist() -> None:
    with pytest.raises(
        ConfigError, match=r"Monitor\('loss', mode='mn'\): expected mode 'min'"
    ):
        Monitor("loss", mode="mn")
