"""attrs validators whose messages name the value received, the one expected, the fix.

Public on purpose: plugin authors validate their constructor arguments with them, as
the built-in plugins do. Each is an attrs validator (``field(validator=positive)``)
or returns one (``one_of("min", "max")``); numbers may be Python or NumPy scalars
(``np.float32(0.5)``, ``np.int64(3)``), never bools. A wrong kind raises TypeError,
a wrong value ConfigError (a ValueError), both as ``"EarlyStopping got
patience=-1; expected an int >= 0."``. Combine them with attrs's own
``attrs.validators.optional`` (None allowed) and ``and_``.
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import numpy as np

from loopkit.errors import ConfigError

__all__ = [
    "Validator",
    "boolean",
    "check_config_keys",
    "construct_from_config",
    "finite",
    "dtype_name",
    "float_dtype",
    "in_closed_range",
    "in_half_open_range",
    "in_open_range",
    "non_negative",
    "non_negative_int",
    "one_of",
    "positive",
    "positive_int",
    "positive_int_or",
    "suggest",
]

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]
"""An attrs validator: ``check(instance, attribute, value)``, raising on a bad value."""


def suggest(value: object, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_config_keys(call: str, cls: type[Any], config: Mapping[str, Any]) -> None:
    """Check that every key of ``config`` is a constructor argument of attrs class ``cls``.

    Args:
        call: The user's call, to start the message, e.g. ``"activations.get({...})"``.
        cls: The attrs class the config is for.
        config: Its ``"config"`` entry.

    Raises:
        ConfigError: A key is no argument; names it, the arguments and the closest.
    """
    if "__init__" in vars(cls) and "__attrs_attrs__" not in vars(cls):
        # a Keras-style subclass with its own __init__: its signature says what it takes
        parameters = inspect.signature(cls).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return  # **kwargs go on to the attrs base, which checks them itself
        known = [p.name for p in parameters]
    else:
        known = [a.alias or a.name for a in attrs.fields(cls) if a.init]  # init names
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ConfigError(
            f"{call}: {cls.__name__} takes no argument {unknown[0]!r}; it takes "
            f"{known}. Fix the config.{suggest(unknown[0], known)}"
        )


def construct_from_config(cls: type[Any], config: Mapping[str, Any]) -> Any:
    """Keras's default ``from_config``: check the keys, then ``cls(**config)``.

    Raises:
        ConfigError: a key is no constructor argument (``check_config_keys``).
    """
    check_config_keys(f"{cls.__name__}.from_config()", cls, config)
    return cls(**config)


def _owner(instance: Any) -> str:
    return type(instance).__name__


def one_of(*choices: Any) -> Validator:
    """Return a validator that accepts only the values in ``choices``."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            hint = suggest(value, [c for c in choices if isinstance(c, str)])
            raise ConfigError(
                f"{_owner(instance)} got {attribute.name}={value!r}; "
                f"expected one of {list(choices)}.{hint}"
            )

    return check


def _is_number(value: Any) -> bool:
    """Python or NumPy real numbers; bools (``np.bool_`` is no Real) are not numbers."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _number(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> float:
    if not _is_number(value):
        raise TypeError(
            f"{_owner(instance)} got {attribute.name}={value!r} of type "
            f"{type(value).__name__}; expected a number."
        )
    return float(value)


def positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept a number greater than zero."""
    if not _number(instance, attribute, value) > 0:
        raise ConfigError(
            f"{_owner(instance)} got {attribute.name}={value!r}; expected a number > 0."
        )


def positive_int(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept an integer greater than zero."""
    if not _is_int(value):
        raise TypeError(
            f"{_owner(instance)} got {attribute.name}={value!r} of type "
            f"{type(value).__name__}; expected a positive int."
        )
    if value <= 0:
        raise ConfigError(
            f"{_owner(instance)} got {attribute.name}={value!r}; expected an int > 0."
        )


def non_negative_int(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept an integer greater than or equal to zero."""
    if not _is_int(value):
        raise TypeError(
            f"{_owner(instance)} got {attribute.name}={value!r} of type "
            f"{type(value).__name__}; expected an int >= 0."
        )
    if value < 0:
        raise ConfigError(
            f"{_owner(instance)} got {attribute.name}={value!r}; expected an int >= 0."
        )


def boolean(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept only True or False (not 0, 1 or other truthy values)."""
    if not isinstance(value, bool):  # np.bool_ too is refused: store a real bool
        raise TypeError(
            f"{_owner(instance)} got {attribute.name}={value!r} of type "
            f"{type(value).__name__}; expected True or False."
        )


def non_negative(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept a number greater than or equal to zero."""
    if not _number(instance, attribute, value) >= 0:
        raise ConfigError(
            f"{_owner(instance)} got {attribute.name}={value!r}; expected a number >= 0."
        )


def in_half_open_range(low: float, high: float) -> Validator:
    """Return a validator that accepts numbers in ``[low, high)``."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not low <= _number(instance, attribute, value) < high:
            raise ConfigError(
                f"{_owner(instance)} got {attribute.name}={value!r}; "
                f"expected a number in [{low}, {high})."
            )

    return check


def in_closed_range(low: float, high: float) -> Validator:
    """Return a validator that accepts numbers in ``[low, high]``."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not low <= _number(instance, attribute, value) <= high:
            raise ConfigError(
                f"{_owner(instance)} got {attribute.name}={value!r}; "
                f"expected a number in [{low}, {high}]."
            )

    return check


def in_open_range(low: float, high: float) -> Validator:
    """Return a validator that accepts numbers in ``(low, high)``."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not low < _number(instance, attribute, value) < high:
            raise ConfigError(
                f"{_owner(instance)} got {attribute.name}={value!r}; "
                f"expected a number in ({low}, {high})."
            )

    return check


def finite(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept a finite number (not NaN nor +-inf)."""
    if not math.isfinite(_number(instance, attribute, value)):
        raise ConfigError(
            f"{_owner(instance)} got {attribute.name}={value!r}; expected a finite number."
        )


def positive_int_or(*words: str) -> Validator:
    """Return a validator that accepts an int > 0 or one of the strings ``words``.

    For frequencies such as ``save_freq="epoch"`` or ``save_freq=100``.
    """
    expected = f"{', '.join(repr(w) for w in words)} or a positive int: an int N > 0"

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, str):
            if value not in words:
                raise ConfigError(
                    f"{_owner(instance)} got {attribute.name}={value!r}; expected "
                    f"{expected}.{suggest(value, words)}"
                )
        elif not _is_int(value):
            raise TypeError(
                f"{_owner(instance)} got {attribute.name}={value!r} of type "
                f"{type(value).__name__}; expected {expected}."
            )
        elif value <= 0:
            raise ConfigError(
                f"{_owner(instance)} got {attribute.name}={value!r}; expected {expected}."
            )

    return check


def float_dtype(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept None, float32 or float64 (a name, type or dtype): loopkit's dtypes."""
    try:
        ok = value is None or np.dtype(value) in (np.float32, np.float64)
    except TypeError:
        ok = False
    if not ok:
        raise ConfigError(
            f"{_owner(instance)} got {attribute.name}={value!r}; expected None, "
            "'float32' or 'float64'."
        )


def dtype_name(value: Any) -> Any:
    """Write a NumPy dtype or type as its name, so configs stay JSON-ready (converter)."""
    if isinstance(value, (np.dtype, type)):
        try:
            return np.dtype(value).name
        except TypeError:
            return value
    return value
