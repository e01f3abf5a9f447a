"""Conv1D, pooling over time and the time reshaping layers: shapes, values, gradients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers import (
    AveragePooling1D,
    Conv1D,
    Cropping1D,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    MaxPooling1D,
    UpSampling1D,
    ZeroPadding1D,
)
from loopkit.testing import check_layer_gradients

CONVS: dict[str, dict[str, Any]] = {
    "valid": {},
    "same_strided": {"padding": "same", "strides": 2},
    "causal_dilated": {"padding": "causal", "dilation_rate": 2, "activation": "tanh"},
    "same_strided_dilated_no_bias": {
        "padding": "same",
        "strides": 3,
        "dilation_rate": 2,
        "use_bias": False,
    },
}
LAYERS: dict[str, Any] = {
    "max_pool": lambda: MaxPooling1D(3, 2),
    "max_pool_same": lambda: MaxPooling1D(2, padding="same"),
    "average_pool": lambda: AveragePooling1D(),
    "average_pool_same": lambda: AveragePooling1D(3, 2, padding="same"),
    "global_average": lambda: GlobalAveragePooling1D(),
    "global_max_keepdims": lambda: GlobalMaxPooling1D(keepdims=True),
    "upsampling": lambda: UpSampling1D(3),
    "zero_padding": lambda: ZeroPadding1D((1, 2)),
    "cropping": lambda: Cropping1D((2, 1)),
}


@pytest.mark.parametrize("option", sorted(CONVS))
def test_conv1d_backward_matches_finite_differences(option: str) -> None:
    check_layer_gradients(Conv1D(4, 3, **CONVS[option]), (9, 2))


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_backward_matches_finite_differences(kind: str) -> None:
    check_layer_gradients(LAYERS[kind](), (7, 2))


def test_conv1d_is_a_cross_correlation_with_keras_kernel_layout() -> None:
    layer = Conv1D(1, 2, use_bias=False)
    layer.setup((4, 1), np.float64)
    layer.kernel.value[...] = np.array([1.0, 10.0]).reshape(2, 1, 1)
    y = layer.forward(np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1))
    np.testing.assert_array_equal(y.ravel(), [21.0, 32.0, 43.0])


def test_causal_output_depends_only_on_the_past() -> None:
    layer = Conv1D(2, 3, padding="causal", dilation_rate=2)
    layer.setup((10, 1), np.float64, np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((1, 10, 1))
    before = layer.forward(x).copy()
    x[0, 6:] += 5.0
    after = layer.forward(x)
    assert before.shape == (1, 10, 2)
    np.testing.assert_array_equal(after[0, :6], before[0, :6])
    assert not np.allclose(after[0, 6:], before[0, 6:])


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (Conv1D(3, 4), (7, 3)),
        (Conv1D(3, 4, padding="same", strides=2), (5, 3)),
        (Conv1D(3, 3, padding="causal", strides=2), (5, 3)),
        (MaxPooling1D(2), (5, 2)),
        (AveragePooling1D(3, 2, padding="same"), (5, 2)),
        (UpSampling1D(2), (20, 2)),
        (ZeroPadding1D(2), (14, 2)),
        (Cropping1D((1, 3)), (6, 2)),
    ],
)
def test_output_shapes_follow_keras(layer: Any, shape: tuple[int, int]) -> None:
    assert layer.setup((10, 3 if isinstance(layer, Conv1D) else 2)) == shape


def test_global_average_pooling_counts_only_unmasked_steps() -> None:
    layer = GlobalAveragePooling1D()
    layer.setup((3, 1), np.float64)
    x = np.array([[1.0, 2.0, 9.0], [4.0, 5.0, 6.0]]).reshape(2, 3, 1)
    mask = np.array([[True, True, False], [True, True, True]])
    np.testing.assert_allclose(layer.forward(x, mask=mask).ravel(), [1.5, 5.0])
    np.testing.assert_allclose(
        layer.backward(np.ones((2, 1)))[..., 0], [[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]]
    )


def test_global_max_pooling_never_picks_a_masked_step() -> None:
    layer = GlobalMaxPooling1D()
    layer.setup((3, 1), np.float64)
    x = np.array([[1.0, 2.0, 9.0]]).reshape(1, 3, 1)
    assert layer.forward(x, mask=np.array([[True, True, False]]))[0, 0] == 2.0
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1)))[0, :, 0], [0, 1, 0])


def test_a_window_longer_than_the_sequence_fails_with_the_fix() -> None:
    with pytest.raises(
        ShapeError, match=r"sequences of 3 steps, shorter than its window of 5"
    ):
        Conv1D(2, 3, dilation_rate=2).setup((3, 1))
    with pytest.raises(ShapeError, match=r"crop fewer steps"):
        Cropping1D(2).setup((4, 1))


def test_an_image_into_conv1d_fails_with_the_expected_shape() -> None:
    with pytest.raises(ShapeError, match=r"expects samples of shape \(steps, channels\)"):
        Conv1D(2, 3).setup((8, 8, 1))
    with pytest.raises(ShapeError, match=r"add Reshape\(\(8, 1\)\)"):
        MaxPooling1D().setup((8,))


def test_bad_arguments_are_refused_at_construction() -> None:
    with pytest.raises(ConfigError, match=r"padding='full'"):
        Conv1D(2, 3, padding="full")
    with pytest.raises(ConfigError, match=r"padding=\(-1, -1\); expected an int >= 0"):
        ZeroPadding1D(-1)
    assert Conv1D(2, (3,), strides=[2]).kernel_size == 3


def test_a_sequence_model_saves_loads_and_names_its_layers_as_keras(tmp_path: Path) -> None:
    from loopkit import Sequential, load_model
    from loopkit.layers import GRU, Dense, Masking, SimpleRNN

    model = Sequential(
        [
            Masking(input_shape=(8, 3)),
            Conv1D(4, 3, padding="causal", activation="relu", dilation_rate=2),
            MaxPooling1D(2, padding="same"),
            UpSampling1D(2),
            ZeroPadding1D((1, 0)),
            Cropping1D((0, 1)),
            AveragePooling1D(2, strides=1, padding="same"),
            SimpleRNN(3, return_sequences=True, activation="relu"),
            GRU(3, reset_after=False, return_sequences=True),
            GlobalMaxPooling1D(),
            Dense(2),
        ]
    )
    assert [layer.name for layer in model.layers[1:7]] == [
        "conv1d",
        "max_pooling1d",
        "up_sampling1d",
        "zero_padding1d",
        "cropping1d",
        "average_pooling1d",
    ]
    model.compile("adam", "mse")
    model.save(str(tmp_path / "model.npz"))
    x = np.random.default_rng(0).random((2, 8, 3)).astype(np.float32)
    loaded = load_model(str(tmp_path / "model.npz"))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
