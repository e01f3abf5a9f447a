"""Pooling layers: shapes, forward against naive references, gradients, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.pooling import (
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
)
from loopkit.testing import check_layer_gradients


def distinct_values(rng, shape):
    """Inputs without ties, spaced far beyond the finite-difference step."""
    return rng.permutation(math.prod(shape)).reshape(shape) * 0.1 - 3.0


def reference_pool(x, pool, strides, padding, reduce):
    """Reduce each window's real (non-padded) inputs, by loops over output positions."""
    _, h, w, _ = x.shape
    (ph, pw), (sh, sw) = pool, strides
    if padding == "same":  # TensorFlow: out = ceil(n / s), the odd pad goes last
        oh, ow = math.ceil(h / sh), math.ceil(w / sw)
        top = max((oh - 1) * sh + ph - h, 0) // 2
        left = max((ow - 1) * sw + pw - w, 0) // 2
    else:
        oh, ow, top, left = (h - ph) // sh + 1, (w - pw) // sw + 1, 0, 0
    y = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * sh - top, j * sw - left
            window = x[:, max(r0, 0) : min(r0 + ph, h), max(c0, 0) : min(c0 + pw, w)]
            y[:, i, j] = reduce(window, axis=(1, 2))
    return y


POOLS = {"max": (MaxPooling2D, np.max), "average": (AveragePooling2D, np.mean)}


# --- shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D])
@pytest.mark.parametrize(
    ("hw", "pool_size", "strides", "padding", "expected_hw"),
    [
        ((5, 6), 2, None, "valid", (2, 3)),
        ((5, 6), 2, None, "same", (3, 3)),
        ((5, 6), 3, 2, "valid", (2, 2)),
        ((5, 6), 3, 2, "same", (3, 3)),
        ((5, 6), 2, 1, "valid", (4, 5)),
        ((5, 6), 2, 1, "same", (5, 6)),
        ((4, 4), (2, 3), (1, 2), "valid", (3, 1)),
        ((4, 4), (2, 3), (1, 2), "same", (4, 2)),
        ((7, 7), 3, None, "valid", (2, 2)),
        ((7, 7), 3, None, "same", (3, 3)),
        ((28, 28), 2, None, "valid", (14, 14)),
    ],
)
def test_pooling_output_shape_matches_keras_sizes(
    cls, hw, pool_size, strides, padding, expected_hw
):
    layer = cls(pool_size, strides, padding)
    assert layer.setup((*hw, 3)) == (*expected_hw, 3)
    assert layer.compute_output_shape((*hw, 3)) == (*expected_hw, 3)


@pytest.mark.parametrize(
    ("cls", "keepdims", "expected"),
    [
        (GlobalAveragePooling2D, False, (3,)),
        (GlobalAveragePooling2D, True, (1, 1, 3)),
        (GlobalMaxPooling2D, False, (3,)),
        (GlobalMaxPooling2D, True, (1, 1, 3)),
    ],
)
def test_global_pooling_output_shape_follows_keepdims(cls, keepdims, expected):
    assert cls(keepdims=keepdims).setup((5, 6, 3)) == expected


@pytest.mark.parametrize(
    ("layer", "name"),
    [
        (MaxPooling2D(), "max_pooling2d"),
        (AveragePooling2D(), "average_pooling2d"),
        (GlobalAveragePooling2D(), "global_average_pooling2d"),
        (GlobalMaxPooling2D(), "global_max_pooling2d"),
    ],
)
def test_pooling_layers_take_keras_default_names_and_have_no_parameters(layer, name):
    layer.setup((4, 4, 2))
    assert layer.name == name
    assert layer.parameters == [] and layer.count_params() == 0


def test_pooling_strides_default_to_pool_size_and_accept_ints():
    layer = MaxPooling2D(3, padding="SAME")
    assert layer.pool_size == (3, 3) and layer.strides is None and layer.padding == "same"
    assert layer.setup((9, 9, 1)) == (3, 3, 1)
    assert AveragePooling2D((2, 3), [1, 2]).strides == (1, 2)


# --- forward ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["max", "average"])
@pytest.mark.parametrize(
    ("pool_size", "strides"), [(2, None), (3, 2), (2, 1), ((2, 3), (1, 2)), (3, (2, 1))]
)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pooling_forward_matches_naive_reference(rng, kind, pool_size, strides, padding):
    cls, reduce = POOLS[kind]
    layer = cls(pool_size, strides, padding)
    layer.setup((5, 6, 3), np.float64)
    x = rng.standard_normal((2, 5, 6, 3))
    steps = layer.pool_size if strides is None else layer.strides
    expected = reference_pool(x, layer.pool_size, steps, padding, reduce)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


def test_average_pooling_same_divides_by_the_real_inputs_only():
    layer = AveragePooling2D(2, padding="same")
    layer.setup((3, 3, 1), np.float64)
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # padding: one row below, one column right
    expected = np.array([[(1 + 2 + 4 + 5) / 4, (3 + 6) / 2], [(7 + 8) / 2, 9 / 1]])
    np.testing.assert_allclose(layer.forward(x)[0, :, :, 0], expected, rtol=1e-15)


def test_max_pooling_same_padding_never_wins_over_negative_inputs():
    layer = MaxPooling2D(2, padding="same")
    layer.setup((3, 3, 1))
    x = -np.arange(1.0, 10.0, dtype=np.float32).reshape(1, 3, 3, 1)
    y = layer.forward(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[-1.0, -3.0], [-7.0, -9.0]])
    assert y.dtype == np.float32


def test_global_pooling_forward_matches_per_channel_mean_and_max(rng):
    x = rng.standard_normal((2, 5, 6, 3))
    mean_layer, max_layer = GlobalAveragePooling2D(), GlobalMaxPooling2D(keepdims=True)
    mean_layer.setup((5, 6, 3), np.float64)
    max_layer.setup((5, 6, 3), np.float64)
    for n in range(2):
        for c in range(3):
            channel = [x[n, i, j, c] for i in range(5) for j in range(6)]
            assert mean_layer.forward(x)[n, c] == pytest.approx(
                sum(channel) / 30, rel=1e-12
            )
            assert max_layer.forward(x)[n, 0, 0, c] == max(channel)


def test_pooling_reuses_its_buffers_for_smaller_batches(rng):
    layer = AveragePooling2D(3, 2, "same")
    layer.setup((5, 6, 3), np.float64)
    x = rng.standard_normal((4, 5, 6, 3))
    first = layer.forward(x)
    first_dx = layer.backward(np.ones_like(first))
    second = layer.forward(x[:2])
    second_dx = layer.backward(np.ones_like(second))
    assert np.shares_memory(first, second) and np.shares_memory(first_dx, second_dx)
    assert second_dx.shape == (2, 5, 6, 3)


# --- backward ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["max", "average"])
@pytest.mark.parametrize(
    ("pool_size", "strides"), [(2, None), (3, 2), (2, 1), ((2, 3), (1, 2)), (3, 1)]
)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pooling_backward_matches_finite_differences(
    rng, kind, pool_size, strides, padding
):
    layer = POOLS[kind][0](pool_size, strides, padding)
    x = distinct_values(rng, (2, 5, 6, 3))
    check_layer_gradients(layer, (5, 6, 3), x=x, rng=rng)


@pytest.mark.parametrize("cls", [GlobalAveragePooling2D, GlobalMaxPooling2D])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_backward_matches_finite_differences(rng, cls, keepdims):
    x = distinct_values(rng, (2, 5, 6, 3))
    check_layer_gradients(cls(keepdims=keepdims), (5, 6, 3), x=x, rng=rng)


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ([[1.0, 3.0], [3.0, 2.0]], [[0.0, 5.0], [0.0, 0.0]]),
        ([[3.0, 3.0], [3.0, 3.0]], [[5.0, 0.0], [0.0, 0.0]]),
        ([[1.0, 2.0], [4.0, 4.0]], [[0.0, 0.0], [5.0, 0.0]]),
    ],
)
def test_max_pooling_routes_a_tie_to_the_first_maximum_in_row_major_order(window, expected):
    layer = MaxPooling2D(2)
    layer.setup((2, 2, 1), np.float64)
    layer.forward(np.array(window).reshape(1, 2, 2, 1))
    dx = layer.backward(np.full((1, 1, 1, 1), 5.0))
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


def test_max_pooling_overlapping_windows_add_their_gradients():
    layer = MaxPooling2D((1, 2), strides=1)
    layer.setup((1, 3, 1), np.float64)
    y = layer.forward(np.array([1.0, 5.0, 2.0]).reshape(1, 1, 3, 1))
    np.testing.assert_array_equal(y.ravel(), [5.0, 5.0])
    dx = layer.backward(np.array([1.0, 10.0]).reshape(1, 1, 2, 1))
    np.testing.assert_array_equal(dx.ravel(), [0.0, 11.0, 0.0])


@pytest.mark.parametrize("training", [False, True])
def test_max_pooling_tie_rule_holds_whether_forward_ran_in_training_or_not(training):
    layer = MaxPooling2D(2)
    layer.setup((2, 4, 1), np.float64)
    x = np.array([[3.0, 3.0, 1.0, 2.0], [3.0, 3.0, 4.0, 4.0]]).reshape(1, 2, 4, 1)
    layer.forward(x, training=training)
    dx = layer.backward(np.array([5.0, 7.0]).reshape(1, 1, 2, 1))
    np.testing.assert_array_equal(
        dx[0, :, :, 0], [[5.0, 0.0, 0.0, 0.0], [0.0, 0.0, 7.0, 0.0]]
    )


def test_max_pooling_training_forward_and_inference_forward_give_one_gradient(rng):
    x = rng.integers(-2, 3, (3, 7, 6, 4)).astype(np.float32)  # ties everywhere
    dy = rng.standard_normal((3, 4, 3, 4)).astype(np.float32)
    grads = []
    for training in (True, False):
        layer = MaxPooling2D(3, 2, "same")
        layer.setup((7, 6, 4))
        layer.forward(x, training=training)
        grads.append(layer.backward(dy).copy())
    np.testing.assert_array_equal(grads[0], grads[1])


def test_max_pooling_window_with_nan_outputs_nan_and_passes_no_gradient():
    layer = MaxPooling2D(2)
    layer.setup((2, 4, 1), np.float64)
    x = np.array([[1.0, np.nan, 1.0, 2.0], [5.0, 2.0, 0.0, 0.0]]).reshape(1, 2, 4, 1)
    y = layer.forward(x, training=True)
    assert np.isnan(y[0, 0, 0, 0]) and y[0, 0, 1, 0] == 2.0
    dx = layer.backward(np.array([5.0, 7.0]).reshape(1, 1, 2, 1))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0.0, 0.0, 0.0, 7.0], [0.0] * 4])


def test_max_pooling_gradient_of_a_window_over_127_positions_matches_finite_differences(
    rng,
):
    x = distinct_values(rng, (2, 12, 12, 2))  # 144 positions: the int32 record
    check_layer_gradients(MaxPooling2D(12), (12, 12, 2), x=x, rng=rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pooling_forward_matches_naive_reference_in_both_dtypes(rng, dtype):
    layer = MaxPooling2D(3, 2, "same")
    layer.setup((7, 9, 5), dtype)
    x = rng.standard_normal((3, 7, 9, 5)).astype(dtype)
    y = layer.forward(x, training=True)
    assert y.dtype == dtype
    expected = reference_pool(x.astype(np.float64), (3, 3), (2, 2), "same", np.max)
    np.testing.assert_array_equal(y, expected.astype(dtype))


def test_max_pooling_backward_rejects_a_gradient_not_shaped_like_its_output(rng):
    layer = MaxPooling2D(2, name="pool")
    layer.setup((4, 4, 3), np.float64)
    layer.forward(rng.standard_normal((2, 4, 4, 3)), training=True)
    with pytest.raises(ShapeError, match=r"'pool'.*\(2, 2, 2, 3\).*got \(2, 3, 2, 3\)"):
        layer.backward(np.ones((2, 3, 2, 3)))


def test_global_max_pooling_routes_a_tie_to_the_first_maximum():
    layer = GlobalMaxPooling2D()
    layer.setup((2, 2, 1), np.float64)
    layer.forward(np.array([[1.0, 4.0], [4.0, 0.0]]).reshape(1, 2, 2, 1))
    dx = layer.backward(np.array([[2.0]]))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0.0, 2.0], [0.0, 0.0]])


@pytest.mark.parametrize(
    "layer",
    [
        MaxPooling2D(2, padding="same"),
        AveragePooling2D(2, padding="same"),
        GlobalAveragePooling2D(),
        GlobalMaxPooling2D(),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_pooling_without_input_gradient_returns_none(rng, layer):
    out_shape = layer.setup((5, 6, 3), np.float64)
    layer.input_grad_needed = False
    layer.forward(rng.standard_normal((2, 5, 6, 3)))
    assert layer.backward(rng.standard_normal((2, *out_shape))) is None


# --- arguments and errors --------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [MaxPooling2D(), AveragePooling2D(), GlobalAveragePooling2D(), GlobalMaxPooling2D()],
    ids=lambda layer: type(layer).__name__,
)
def test_pooling_rejects_rank_two_input_and_suggests_a_channel_axis(layer):
    kind = type(layer).__name__
    with pytest.raises(
        ShapeError,
        match=rf"{kind} layer '\w+' expects samples of shape \(height, width, channels\), "
        r"got input_shape=\(28, 28\)\. .*add Reshape\(\(28, 28, 1\)\)",
    ):
        layer.setup((28, 28))


def test_pooling_rejects_an_image_smaller_than_its_valid_window():
    with pytest.raises(
        ShapeError,
        match=r"MaxPooling2D layer 'max_pooling2d' with pool_size=\(3, 3\), "
        r"strides=\(3, 3\), padding='valid' got input_shape=\(2, 2, 4\): the 3x3 window "
        r"does not fit in the 2x2 image, so the output would be 0x0\. Use padding='same'",
    ):
        MaxPooling2D(3).setup((2, 2, 4))


def test_pooling_rejects_unknown_padding_and_suggests_one():
    with pytest.raises(ConfigError, match=r"padding='smae'; .*Did you mean 'same'\?"):
        AveragePooling2D(padding="smae")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"pool_size": 0}, ConfigError, r"MaxPooling2D got pool_size=0; expected ints > 0"),
        ({"strides": (0, 1)}, ConfigError, r"strides=\(0, 1\); expected ints > 0"),
        ({"pool_size": 2.5}, TypeError, r"pool_size=2\.5; expected an int or a pair"),
    ],
)
def test_pooling_rejects_bad_window_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        MaxPooling2D(**kwargs)


def test_global_pooling_rejects_channels_first_with_the_transpose_fix():
    with pytest.raises(
        ConfigError, match=r"data_format='channels_first'; .*x\.transpose\(0, 2, 3, 1\)"
    ):
        GlobalAveragePooling2D(data_format="channels_first")


@pytest.mark.parametrize("kind", ["GlobalAveragePooling1D", "GlobalMaxPooling1D"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_1d_pooling_channels_first_pools_the_last_axis(kind, keepdims, rng) -> None:
    # keras.io "Timeseries classification with a Transformer model" ends with
    # GlobalAveragePooling1D(data_format="channels_first")
    from loopkit import layers
    from loopkit.testing import check_layer_gradients

    x = rng.standard_normal((2, 3, 5)).astype(np.float32)  # (batch, channels, steps)
    first = getattr(layers, kind)(data_format="channels_first", keepdims=keepdims)
    last = getattr(layers, kind)(keepdims=keepdims)
    expected = last(x.transpose(0, 2, 1))
    got = first(x)
    assert got.shape == ((2, 3, 1) if keepdims else (2, 3))
    np.testing.assert_allclose(got.reshape(2, 3), expected.reshape(2, 3), rtol=1e-6)
    assert first.compute_output_shape((3, 5)) == ((3, 1) if keepdims else (3,))
    check_layer_gradients(
        getattr(layers, kind)(data_format="channels_first", keepdims=keepdims),
        (3, 5),
        rng=rng,
    )
    config = layers.serialize(first)
    assert layers.deserialize(config).get_config() == first.get_config()


def test_global_1d_pooling_channels_first_refuses_a_mask(rng) -> None:
    from loopkit import ShapeError
    from loopkit.layers import GlobalAveragePooling1D

    layer = GlobalAveragePooling1D(data_format="channels_first")
    with pytest.raises(
        ShapeError, match=r"'channels_first' got a mask.*Permute\(\(2, 1\)\)"
    ):
        layer(rng.standard_normal((2, 3, 5)), mask=np.ones((2, 3), bool))
