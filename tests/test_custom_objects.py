"""Keras's global custom objects: register_keras_serializable, custom_object_scope."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from attrs import define

import loopkit as lk
from loopkit.layers import Dense, Layer
from loopkit.saving import (
    custom_object_scope,
    get_custom_objects,
    register_keras_serializable,
)


@define(eq=False, slots=False)
class Doubled(Layer):
    """y = 2x (a custom layer, not registered by itself)."""

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def forward(self, x: Any, training: bool = False) -> Any:
        return 2.0 * x

    def backward(self, dy: Any) -> Any:
        return 2.0 * dy


def _saved(tmp_path: Any) -> tuple[str, Any, Any]:
    model = lk.Sequential([lk.Input((3,)), Doubled(), Dense(1)])
    path = str(tmp_path / "m.keras")
    model.save(path)
    x = np.ones((2, 3), np.float32)
    return path, x, model.predict(x, verbose=0)


def test_a_file_with_a_custom_layer_needs_it_named_then_loads_in_a_scope(
    tmp_path: Any,
) -> None:
    path, x, expected = _saved(tmp_path)
    with pytest.raises(lk.CheckpointError, match="Doubled"):
        lk.load_model(path)
    with custom_object_scope({"Doubled": Doubled}):
        np.testing.assert_array_equal(lk.load_model(path).predict(x, verbose=0), expected)
    assert "Doubled" not in get_custom_objects()  # the scope ends with the block


def test_a_registered_class_loads_anywhere_as_in_keras(tmp_path: Any) -> None:
    path, x, expected = _saved(tmp_path)
    try:
        assert register_keras_serializable(package="mine")(Doubled) is Doubled
        assert get_custom_objects()["mine>Doubled"] is Doubled
        assert lk.utils.register_keras_serializable is register_keras_serializable
        np.testing.assert_array_equal(lk.load_model(path).predict(x, verbose=0), expected)
    finally:
        get_custom_objects().clear()
    with pytest.raises(lk.ConfigError, match="may not contain '>'"):
        register_keras_serializable(package="a>b")


class KerasStyleScale(Layer):
    """A Keras-style custom layer: a plain ``__init__`` and ``get_config``, no attrs."""

    def __init__(self, factor: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = factor

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def forward(self, x: Any, training: bool = False) -> Any:
        return x * self.factor

    def backward(self, dy: Any) -> Any:
        return dy * self.factor

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"factor": self.factor})
        return config


def test_a_keras_style_layer_round_trips_through_its_config_and_a_file(
    tmp_path: Any,
) -> None:
    again = KerasStyleScale.from_config(KerasStyleScale(3.0, name="s").get_config())
    assert again.factor == 3.0 and again.name == "s"
    model = lk.Sequential([lk.Input((3,)), KerasStyleScale(3.0), Dense(1)])
    path = str(tmp_path / "m.keras")
    model.save(path)
    x = np.ones((2, 3), np.float32)
    loaded = lk.load_model(path, custom_objects={"KerasStyleScale": KerasStyleScale})
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(TypeError, match="bogus"):
        KerasStyleScale.from_config({"factor": 1.0, "bogus": 2})
