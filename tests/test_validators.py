from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from attrs import define, field
from attrs.validators import optional

from loopkit import ConfigError
from loopkit.monitor import monitor_key
from loopkit.validators import (
    boolean,
    check_config_keys,
    finite,
    in_open_range,
    non_negative,
    non_negative_int,
    positive_int,
    positive_int_or,
)


@define
class Settings:
    flag: bool = field(default=False, validator=boolean)
    count: int = field(default=0, validator=non_negative_int)
    monitor: str = field(default="val_loss", validator=monitor_key)


def test_validators_accept_good_values() -> None:
    settings = Settings(flag=True, count=3, monitor="val_accuracy")
    assert (settings.flag, settings.count, settings.monitor) == (True, 3, "val_accuracy")
    assert Settings(count=0).count == 0


@pytest.mark.parametrize("value", [1, 0, "yes", None])
def test_boolean_rejects_anything_but_true_or_false(value: Any) -> None:
    match = rf"Settings got flag={re.escape(repr(value))} of type .*True or False"
    with pytest.raises(TypeError, match=match):
        Settings(flag=value)


@pytest.mark.parametrize("value", [1.0, "3", True, None])
def test_non_negative_int_rejects_other_kinds_with_a_type_error(value: Any) -> None:
    kind = type(value).__name__
    match = rf"count={re.escape(repr(value))} of type {kind}; expected an int >= 0"
    with pytest.raises(TypeError, match=match):
        Settings(count=value)


def test_non_negative_int_rejects_a_negative_int_with_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"Settings got count=-1; expected an int >= 0\."):
        Settings(count=-1)


@pytest.mark.parametrize("value", ["", 3, None])
def test_monitor_key_wants_a_non_empty_string(value: Any) -> None:
    match = rf"monitor={re.escape(repr(value))}; expected the log key .*'val_loss'"
    with pytest.raises(TypeError, match=match):
        Settings(monitor=value)


def test_check_config_keys_accepts_constructor_arguments() -> None:
    check_config_keys("get()", Settings, {"flag": True, "count": 2})
    check_config_keys("get()", Settings, {})


def test_check_config_keys_names_the_unknown_key_the_arguments_and_a_suggestion() -> None:
    with pytest.raises(
        ConfigError,
        match=(
            r"^get\(\{'cont': 2\}\): Settings takes no argument 'cont'; it takes "
            r"\['flag', 'count', 'monitor'\]\. Fix the config\. Did you mean 'count'\?$"
        ),
    ):
        check_config_keys("get({'cont': 2})", Settings, {"cont": 2})


# --- NumPy numbers, and the validators plugin authors combine -----------------------


@define
class Numbers:
    rate: float = field(default=0.5, validator=in_open_range(0, 1))
    steps: int = field(default=1, validator=positive_int)
    delta: float = field(default=0.0, validator=non_negative)
    limit: float | None = field(default=None, validator=optional(finite))
    freq: int | str = field(default="epoch", validator=positive_int_or("epoch", "batch"))


def test_validators_accept_numpy_numbers() -> None:
    made = Numbers(
        rate=np.float32(0.25),
        steps=np.int64(3),
        delta=np.float64(0.1),
        limit=np.float16(2.0),
        freq=np.int32(10),
    )
    assert (made.rate, made.steps, made.freq) == (0.25, 3, 10)


@pytest.mark.parametrize("value", [True, np.bool_(True)])
def test_number_validators_refuse_bools_numpy_ones_too(value: Any) -> None:
    with pytest.raises(TypeError, match=r"Numbers got steps=.*True_? of type bool"):
        Numbers(steps=value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate": 1}, r"Numbers got rate=1; expected a number in \(0, 1\)\.$"),
        ({"rate": np.float32(0)}, r"rate=.*0\.0.*; expected a number in \(0, 1\)"),
        ({"steps": np.int64(0)}, r"Numbers got steps=.*0.*; expected an int > 0\.$"),
        ({"limit": math.inf}, r"Numbers got limit=inf; expected a finite number\.$"),
        ({"limit": np.nan}, r"Numbers got limit=nan; expected a finite number\.$"),
        (
            {"freq": "epochs"},
            r"freq='epochs'; expected 'epoch', 'batch' or a positive int: an int N > 0\. "
            r"Did you mean 'epoch'\?$",
        ),
        ({"freq": -2}, r"Numbers got freq=-2; expected 'epoch', 'batch' or a positive"),
    ],
)
def test_bad_values_name_the_value_and_what_was_expected(
    kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        Numbers(**kwargs)


@pytest.mark.parametrize("value", [1.5, None, [4]])
def test_positive_int_or_refuses_other_kinds_with_a_type_error(value: Any) -> None:
    match = (
        rf"freq={re.escape(repr(value))} of type {type(value).__name__}; expected 'epoch'"
    )
    with pytest.raises(TypeError, match=match):
        Numbers(freq=value)
