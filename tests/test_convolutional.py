"""Conv2D: shapes, forward against a naive reference, gradients, freezing, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.convolutional import Conv2D
from loopkit.testing import check_layer_gradients


def reference_conv2d(x, kernel, bias, strides, padding, dilation):
    """Cross-correlation by explicit loops over output positions and kernel taps."""
    n, h, w, _ = x.shape
    kh, kw, _, filters = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    span_h, span_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if padding == "same":  # TensorFlow: out = ceil(n / s), the odd pad goes last
        oh, ow = math.ceil(h / sh), math.ceil(w / sw)
        pad_h = max((oh - 1) * sh + span_h - h, 0)
        pad_w = max((ow - 1) * sw + span_w - w, 0)
        x = np.pad(
            x,
            (
                (0, 0),
                (pad_h // 2, pad_h - pad_h // 2),
                (pad_w // 2, pad_w - pad_w // 2),
                (0, 0),
            ),
        )
    else:
        oh, ow = (h - span_h) // sh + 1, (w - span_w) // sw + 1
    y = np.zeros((n, oh, ow, filters))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    y[:, i, j, :] += (
                        x[:, i * sh + a * dh, j * sw + b * dw, :] @ kernel[a, b]
                    )
    return y + (0.0 if bias is None else bias)


def built_conv(rng, input_shape, **kwargs):
    layer = Conv2D(**kwargs)
    layer.setup(input_shape, np.float64, rng)
    if layer.bias is not None:  # the zeros initializer would hide a missing bias term
        layer.bias.value[...] = rng.standard_normal(layer.bias.shape)
    return layer


# --- shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hw", "kernel_size", "strides", "padding", "dilation_rate", "expected_hw"),
    [
        ((5, 6), 3, 1, "valid", 1, (3, 4)),
        ((5, 6), 3, 1, "same", 1, (5, 6)),
        ((5, 6), 3, 2, "valid", 1, (2, 2)),
        ((5, 6), 3, 2, "same", 1, (3, 3)),
        ((7, 7), (2, 3), 3, "valid", 1, (2, 2)),
        ((7, 7), (2, 3), 3, "same", 1, (3, 3)),
        ((28, 28), 5, 1, "valid", 1, (24, 24)),
        ((28, 28), 3, 2, "same", 1, (14, 14)),
        ((32, 32), 3, 2, "valid", 1, (15, 15)),
        ((9, 9), 3, 1, "valid", 2, (5, 5)),
        ((9, 9), 3, 1, "same", 2, (9, 9)),
        ((1, 1), 3, 1, "same", 1, (1, 1)),
    ],
)
def test_conv2d_output_shape_matches_keras_sizes(
    hw, kernel_size, strides, padding, dilation_rate, expected_hw
):
    layer = Conv2D(
        4, kernel_size, strides=strides, padding=padding, dilation_rate=dilation_rate
    )
    assert layer.setup((*hw, 3)) == (*expected_hw, 4)
    assert layer.compute_output_shape((*hw, 3)) == (*expected_hw, 4)


def test_conv2d_kernel_has_keras_layout_and_counts_params():
    layer = Conv2D(8, (2, 3))
    layer.setup((5, 6, 3))
    assert layer.kernel.shape == (2, 3, 3, 8)
    assert layer.bias is not None and layer.bias.shape == (8,)
    assert layer.count_params() == 2 * 3 * 3 * 8 + 8
    no_bias = Conv2D(8, 3, use_bias=False)
    no_bias.setup((5, 6, 3))
    assert no_bias.bias is None and [p.name for p in no_bias.parameters] == ["kernel"]


def test_conv2d_takes_keras_default_name():
    layer = Conv2D(2, 3)
    layer.setup((5, 5, 1))
    assert layer.name == "conv2d"


# --- forward ---------------------------------------------------------------------------


def test_conv2d_valid_is_a_cross_correlation_by_hand():
    layer = Conv2D(1, 2, use_bias=False)
    layer.setup((3, 3, 1), np.float64)
    layer.kernel.value[...] = np.array([[1.0, 0.0], [0.0, -1.0]]).reshape(2, 2, 1, 1)
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    # y[i, j] = x[i, j] - x[i + 1, j + 1] = -4; a flipped kernel (true convolution) gives +4
    np.testing.assert_array_equal(layer.forward(x)[0, :, :, 0], np.full((2, 2), -4.0))


def test_conv2d_same_padding_puts_the_odd_zero_row_and_column_at_bottom_right():
    layer = Conv2D(1, 2, padding="same", use_bias=False)
    layer.setup((2, 2, 1), np.float64)
    layer.kernel.value[...] = 1.0
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    expected = np.array([[1 + 2 + 3 + 4, 2 + 4], [3 + 4, 4]], dtype=np.float64)
    np.testing.assert_array_equal(layer.forward(x)[0, :, :, 0], expected)


def test_conv2d_same_padding_with_stride_two_splits_an_even_pad_evenly():
    layer = Conv2D(1, 3, strides=2, padding="same", use_bias=False)
    layer.setup((3, 3, 1), np.float64)
    layer.kernel.value[...] = 1.0
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # one zero row/column on each side
    expected = np.array([[1 + 2 + 4 + 5, 2 + 3 + 5 + 6], [4 + 5 + 7 + 8, 5 + 6 + 8 + 9]])
    np.testing.assert_array_equal(layer.forward(x)[0, :, :, 0], expected.astype(float))


@pytest.mark.parametrize("strides", [1, 2, (2, 1)])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("kernel_size", [3, (2, 3)])
@pytest.mark.parametrize("dilation_rate", [1, 2])
def test_conv2d_forward_matches_naive_reference(
    rng, strides, padding, kernel_size, dilation_rate
):
    layer = built_conv(
        rng,
        (5, 6, 3),
        filters=4,
        kernel_size=kernel_size,
        strides=strides,
        padding=padding,
        dilation_rate=dilation_rate,
    )
    x = rng.standard_normal((2, 5, 6, 3))
    expected = reference_conv2d(
        x,
        layer.kernel.value,
        layer.bias.value,
        layer.strides,
        padding,
        layer.dilation_rate,
    )
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("strides", "padding"), [(1, "valid"), (2, "same")])
def test_conv2d_with_many_input_channels_matches_naive_reference(
    rng, dtype, strides, padding
):
    layer = Conv2D(6, 3, strides=strides, padding=padding, dilation_rate=1)
    layer.setup((7, 8, 11), dtype, rng)  # 11 channels: the pixel-major im2col
    layer.bias.value[...] = rng.standard_normal(6)
    x = rng.standard_normal((3, 7, 8, 11)).astype(dtype)
    expected = reference_conv2d(
        x.astype(np.float64),
        layer.kernel.value.astype(np.float64),
        layer.bias.value.astype(np.float64),
        layer.strides,
        padding,
        (1, 1),
    )
    y = layer.forward(x)
    assert y.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)


def test_conv2d_applies_relu_after_the_bias_and_exposes_the_pre_activation(rng):
    layer = built_conv(rng, (5, 6, 3), filters=4, kernel_size=3, activation="relu")
    x = rng.standard_normal((2, 5, 6, 3))
    z = reference_conv2d(x, layer.kernel.value, layer.bias.value, (1, 1), "valid", (1, 1))
    y = layer.forward(x)
    np.testing.assert_allclose(y, np.maximum(z, 0.0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.pre_activation, z, rtol=1e-12, atol=1e-12)
    assert layer.output_activation is layer.activation


def test_conv2d_linear_activation_is_stored_as_none():
    assert Conv2D(2, 3, activation=None).output_activation is None


def test_conv2d_runs_in_float32_by_default(rng):
    layer = Conv2D(4, 3, padding="same")
    layer.setup((5, 6, 3), rng=rng)
    x = rng.standard_normal((2, 5, 6, 3)).astype(np.float32)
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == np.float32 and dx.dtype == np.float32
    assert layer.kernel.value.dtype == np.float32


def test_conv2d_reuses_its_buffers_across_calls_and_smaller_batches(rng):
    layer = built_conv(rng, (5, 6, 3), filters=4, kernel_size=3, padding="same")
    x = rng.standard_normal((4, 5, 6, 3))
    first = layer.forward(x)
    first_dx = layer.backward(np.ones_like(first))
    second = layer.forward(x[:2])
    second_dx = layer.backward(np.ones_like(second))
    assert np.shares_memory(first, second) and second.shape == (2, 5, 6, 4)
    assert np.shares_memory(first_dx, second_dx) and second_dx.shape == (2, 5, 6, 3)


# --- backward ----------------------------------------------------------------------------


@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("kernel_size", [3, (2, 3)])
@pytest.mark.parametrize("use_bias", [True, False])
def test_conv2d_backward_matches_finite_differences(
    rng, strides, padding, kernel_size, use_bias
):
    layer = Conv2D(4, kernel_size, strides=strides, padding=padding, use_bias=use_bias)
    results = check_layer_gradients(layer, (5, 6, 3), batch_size=2, rng=rng)
    assert set(results) == ({"x", "kernel", "bias"} if use_bias else {"x", "kernel"})


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv2d_backward_through_an_activation_matches_finite_differences(rng, padding):
    layer = Conv2D(3, 3, strides=2, padding=padding, activation="tanh")
    check_layer_gradients(layer, (5, 6, 2), batch_size=2, rng=rng)


@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv2d_dilated_backward_matches_finite_differences(rng, strides, padding):
    layer = Conv2D(3, (2, 3), strides=strides, padding=padding, dilation_rate=2)
    check_layer_gradients(layer, (5, 6, 2), batch_size=2, rng=rng)


def test_conv2d_fused_output_activation_treats_dy_as_pre_activation_gradient(rng):
    fused = built_conv(rng, (5, 6, 3), filters=4, kernel_size=3, activation="relu")
    linear = Conv2D(4, 3)
    linear.setup((5, 6, 3), np.float64, rng)
    linear.kernel.value[...] = fused.kernel.value
    linear.bias.value[...] = fused.bias.value
    fused.fuse_output_activation = True
    x = rng.standard_normal((2, 5, 6, 3))
    dz = rng.standard_normal((2, 3, 4, 4))
    fused.forward(x)
    linear.forward(x)
    np.testing.assert_array_equal(fused.backward(dz.copy()), linear.backward(dz.copy()))
    np.testing.assert_array_equal(fused.kernel.grad, linear.kernel.grad)


def test_conv2d_fused_output_activation_returns_the_pre_activation_in_training(rng):
    layer = built_conv(rng, (5, 6, 3), filters=4, kernel_size=3, activation="softmax")
    layer.fuse_output_activation = True  # the model's loss then reads the logits
    x = rng.standard_normal((2, 5, 6, 3))
    logits = layer.forward(x, training=True).copy()
    expected = reference_conv2d(
        x, layer.kernel.value, layer.bias.value, (1, 1), "valid", (1, 1)
    )
    np.testing.assert_allclose(logits, expected, rtol=1e-12, atol=1e-12)
    probabilities = layer.forward(x)  # inference still applies the activation
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("strides", [1, (2, 1)])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv2d_with_many_input_channels_backward_matches_finite_differences(
    rng, strides, padding
):
    layer = Conv2D(3, (2, 3), strides=strides, padding=padding, dilation_rate=(1, 2))
    check_layer_gradients(layer, (5, 6, 9), batch_size=2, rng=rng)


def test_conv2d_takes_numpy_integers_as_window_arguments():
    layer = Conv2D(2, (np.int64(3), np.int32(2)), strides=[np.int64(2), 1])
    assert layer.kernel_size == (3, 2) and layer.strides == (2, 1)
    assert all(type(v) is int for v in (*layer.kernel_size, *layer.strides))


def test_conv2d_frozen_leaves_parameter_gradients_untouched(rng):
    layer = built_conv(rng, (5, 6, 3), filters=4, kernel_size=3)
    layer.trainable = False
    layer.kernel.grad[...] = 7.0
    layer.bias.grad[...] = 7.0
    x = rng.standard_normal((2, 5, 6, 3))
    layer.forward(x)
    dx = layer.backward(rng.standard_normal((2, 3, 4, 4)))
    assert dx is not None and dx.shape == (2, 5, 6, 3)
    assert np.all(layer.kernel.grad == 7.0) and np.all(layer.bias.grad == 7.0)


def test_conv2d_without_input_gradient_returns_none_but_fills_parameter_gradients(rng):
    reference = built_conv(rng, (5, 6, 3), filters=4, kernel_size=3, padding="same")
    layer = Conv2D(4, 3, padding="same")
    layer.setup((5, 6, 3), np.float64, rng)
    layer.kernel.value[...] = reference.kernel.value
    layer.bias.value[...] = reference.bias.value
    layer.input_grad_needed = False
    x, dy = rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((2, 5, 6, 4))
    reference.forward(x)
    reference.backward(dy)
    layer.forward(x)
    assert layer.backward(dy) is None
    np.testing.assert_allclose(layer.kernel.grad, reference.kernel.grad, rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, reference.bias.grad, rtol=1e-12)


def test_conv2d_backward_overwrites_rather_than_accumulates_gradients(rng):
    layer = built_conv(rng, (5, 6, 3), filters=4, kernel_size=3)
    x, dy = rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((2, 3, 4, 4))
    layer.forward(x)
    layer.backward(dy)
    once = layer.kernel.grad.copy()
    layer.forward(x)
    layer.backward(dy)
    np.testing.assert_array_equal(layer.kernel.grad, once)


# --- arguments and errors --------------------------------------------------------------


def test_conv2d_accepts_ints_lists_and_upper_case_padding_like_keras():
    layer = Conv2D(4, [3, 2], strides=2, padding="SAME", data_format="channels_last")
    assert layer.kernel_size == (3, 2)
    assert layer.strides == (2, 2)
    assert layer.padding == "same"


def test_conv2d_rejects_rank_two_input_and_suggests_a_channel_axis():
    layer = Conv2D(4, 3)
    with pytest.raises(
        ShapeError,
        match=r"Conv2D layer 'conv2d' expects samples of shape "
        r"\(height, width, channels\), got input_shape=\(28, 28\)\. "
        r".*add Reshape\(\(28, 28, 1\)\)",
    ):
        layer.setup((28, 28))


def test_conv2d_rejects_an_input_shape_that_includes_the_batch_axis():
    with pytest.raises(
        ShapeError, match=r"got input_shape=\(32, 28, 28, 1\)\. .*input_shape=\(28, 28, 1\)"
    ):
        Conv2D(4, 3).setup((32, 28, 28, 1))


def test_conv2d_rejects_flat_input_and_suggests_reshape():
    with pytest.raises(
        ShapeError,
        match=r"got input_shape=\(784,\)\. Add Reshape\(\(height, width, channels",
    ):
        Conv2D(4, 3).setup((784,))


def test_conv2d_rejects_an_image_smaller_than_its_valid_window():
    with pytest.raises(
        ShapeError,
        match=r"Conv2D layer 'conv2d' with kernel_size=\(3, 3\), strides=\(1, 1\), "
        r"padding='valid' got input_shape=\(2, 5, 3\): the 3x3 window does not fit in "
        r"the 2x5 image, so the output would be 0x3\. Use padding='same'",
    ):
        Conv2D(4, 3).setup((2, 5, 3))


def test_conv2d_small_image_error_names_the_dilated_window():
    with pytest.raises(ShapeError, match=r"dilation_rate=\(2, 2\).* the 5x5 window"):
        Conv2D(4, 3, dilation_rate=2).setup((4, 9, 1))


def test_conv2d_rejects_unknown_padding_and_suggests_one():
    with pytest.raises(
        ConfigError, match=r"padding='vaild'; expected one of .*Did you mean 'valid'\?"
    ):
        Conv2D(4, 3, padding="vaild")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kernel_size": 0}, ConfigError, r"Conv2D got kernel_size=0; expected ints > 0"),
        (
            {"kernel_size": (3, -1)},
            ConfigError,
            r"kernel_size=\(3, -1\); expected ints > 0",
        ),
        ({"kernel_size": "3"}, TypeError, r"kernel_size='3'; expected an int or a pair"),
        (
            {"kernel_size": 3, "strides": (1, 2, 3)},
            TypeError,
            r"strides=\(1, 2, 3\); expected an int or a pair of ints, e\.g\. strides=3",
        ),
        ({"kernel_size": 3, "dilation_rate": 0}, ConfigError, r"dilation_rate=0"),
    ],
)
def test_conv2d_rejects_bad_window_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Conv2D(4, **kwargs)


def test_conv2d_rejects_channels_first_with_the_transpose_fix():
    with pytest.raises(
        ConfigError,
        match=r"data_format='channels_first'; .*channels-last only.*"
        r"x\.transpose\(0, 2, 3, 1\)",
    ):
        Conv2D(4, 3, data_format="channels_first")


def test_conv2d_rejects_unknown_data_format_and_suggests_one():
    with pytest.raises(
        ConfigError, match=r"data_format='channel_last'; .*Did you mean 'channels_last'\?"
    ):
        Conv2D(4, 3, data_format="channel_last")


def test_conv2d_rejects_non_positive_filters():
    with pytest.raises(ConfigError, match=r"filters=0; expected an int > 0"):
        Conv2D(0, 3)


def test_conv2d_takes_activation_and_later_arguments_by_keyword_only():
    # Keras's unsupported `groups` sits before activation positionally.
    with pytest.raises(TypeError):
        Conv2D(4, 3, 1, "valid", None, 1, "relu")


# --- groups ------------------------------------------------------------------------------


def test_grouped_convolution_equals_one_convolution_per_group(rng):
    x = rng.standard_normal((2, 6, 6, 4))
    grouped = Conv2D(6, 3, groups=2, padding="same")
    grouped.setup(x.shape[1:], dtype=np.float64, rng=rng)
    y = grouped.forward(x).copy()
    for g in range(2):
        alone = Conv2D(3, 3, padding="same")
        alone.setup((6, 6, 2), dtype=np.float64, rng=rng)
        alone.kernel.value[...] = grouped.kernel.value[..., 3 * g : 3 * (g + 1)]
        assert grouped.bias is not None and alone.bias is not None
        alone.bias.value[...] = grouped.bias.value[3 * g : 3 * (g + 1)]
        expected = alone.forward(x[..., 2 * g : 2 * (g + 1)])
        np.testing.assert_allclose(y[..., 3 * g : 3 * (g + 1)], expected, rtol=1e-12)


@pytest.mark.parametrize("groups", [2, 4])
def test_grouped_convolution_gradients_match_finite_differences(groups, rng):
    layer = Conv2D(4, 2, strides=2, groups=groups, activation="tanh", padding="same")
    check_layer_gradients(layer, (5, 5, 4), rng=rng)
    assert layer.kernel.value.shape == (2, 2, 4 // groups, 4)


def test_groups_must_divide_the_channels_and_the_filters():
    with pytest.raises(ShapeError, match=r"groups=3 got 4 input channels and filters=6"):
        Conv2D(6, 3, groups=3).setup((5, 5, 4))
    with pytest.raises(ConfigError, match=r"groups"):
        Conv2D(6, 3, groups=0)


def test_conv2d_takes_kerass_arguments_positionally_through_bias_regularizer():
    layer = Conv2D(8, 3, 1, "same", None, 1, 2, "relu", False)
    assert (layer.groups, layer.activation.name, layer.use_bias) == (2, "relu", False)
