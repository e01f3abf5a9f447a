from __future__ import annotations

import re
from typing import Any

import pytest
from attrs import define, field

from loopkit import ConfigError
from loopkit.monitor import monitor_key
from loopkit.validators import boolean, check_config_keys, non_negative_int


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
