"""Built-in plugins check their arguments with loopkit.validators, NumPy numbers too."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import loopkit as lk
from loopkit.plugins import (
    EMA,
    EarlyStopping,
    GradientAccumulation,
    GradientClipping,
    ModelCheckpoint,
    ReduceLROnPlateau,
)


def test_model_checkpoint_refuses_a_monitor_that_is_no_string() -> None:
    with pytest.raises(
        TypeError,
        match=r"^ModelCheckpoint got monitor=3; expected the log key to watch as a "
        r"non-empty string, e\.g\. monitor='val_loss'\.$",
    ):
        ModelCheckpoint("m.npz", monitor=3)  # type: ignore[arg-type]


def test_model_checkpoint_names_itself_for_a_bad_mode() -> None:
    with pytest.raises(
        lk.ConfigError,
        match=r"^ModelCheckpoint got mode='bad'; expected one of "
        r"\['auto', 'min', 'max'\]\.$",
    ):
        ModelCheckpoint("m.npz", mode="bad")
    with pytest.raises(lk.ConfigError, match=r"mode='mx'; .* Did you mean 'max'\?$"):
        ModelCheckpoint("m.npz", mode="mx")


def test_model_checkpoint_refuses_a_verbose_that_is_no_int() -> None:
    with pytest.raises(
        TypeError,
        match=r"^ModelCheckpoint got verbose='x' of type str; expected an int >= 0\.$",
    ):
        ModelCheckpoint("m.npz", verbose="x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"save_best_only": 1}, TypeError, r"save_best_only=1 of type int; expected True"),
        ({"background": "no"}, TypeError, r"background='no' of type str; expected True"),
        (
            {"initial_value_threshold": float("nan")},
            lk.ConfigError,
            r"initial_value_threshold=nan; expected a finite number",
        ),
        (
            {"save_freq": "epochs"},
            lk.ConfigError,
            r"save_freq='epochs'; expected 'epoch' or a positive int.* Did you mean",
        ),
    ],
)
def test_model_checkpoint_checks_its_other_arguments(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=rf"^ModelCheckpoint got {match}"):
        ModelCheckpoint("m.npz", **kwargs)


def test_built_in_plugins_accept_numpy_numbers() -> None:
    stopper = EarlyStopping(patience=np.int64(2), min_delta=np.float32(0.01))
    assert stopper.patience == 2
    assert EMA(decay=np.float32(0.9)).decay == pytest.approx(0.9)
    assert GradientAccumulation(np.int32(4)).steps == 4
    assert GradientClipping(max_norm=np.float64(1.5)).max_norm == 1.5
    assert ReduceLROnPlateau(factor=np.float32(0.5)).factor == 0.5
    assert ModelCheckpoint("m.npz", save_freq=np.int64(10)).save_freq == 10


def test_every_built_in_plugin_takes_name_and_order_the_same_way() -> None:
    for cls in (EarlyStopping, GradientAccumulation, GradientClipping, ReduceLROnPlateau):
        default = cls()
        assert default.name == cls.default_name
        assert default.order == cls.default_order
        moved = cls(name="mine", order=7)
        assert (moved.name, moved.order) == ("mine", 7)
    with pytest.raises(lk.ConfigError, match=r"EarlyStopping got order='late'; expected a"):
        EarlyStopping(order="late")  # type: ignore[arg-type]
    with pytest.raises(lk.ConfigError, match=r"EarlyStopping got name=''; expected a non"):
        EarlyStopping(name="")
