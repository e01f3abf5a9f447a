"""Compiled convolution and max-pooling kernels against float64 loop references."""

from __future__ import annotations

import numpy as np
import pytest

from loopkit.layers import _conv_kernels as conv_kernels

# (strides, dilation, pads, out_hw) on 5x6 images with 3x2 windows (3x3 for pooling):
# stride 1, stride 2 with "same"-style padding, dilation, and padding past the edge.
GEOMETRIES = [
    ((1, 1), (1, 1), (0, 0), (3, 5)),
    ((2, 2), (1, 1), (1, 0), (3, 3)),
    ((1, 2), (2, 1), (0, 1), (1, 3)),
    ((2, 1), (1, 2), (1, 2), (3, 6)),
]


def source(n, i, j, a, b, strides, dilation, pads):
    """Return the input row and column that window ``(n, i, j)`` reads at ``(a, b)``."""
    (sh, sw), (dh, dw), (top, left) = strides, dilation, pads
    return i * sh + a * dh - top, j * sw + b * dw - left


def reference_im2col(x, window, strides, dilation, pads, out_hw):
    """Windows by explicit loops in float64; positions outside the image are zero."""
    batch, h, w, channels = x.shape
    (kh, kw), (oh, ow) = window, out_hw
    cols = np.zeros((batch, oh, ow, kh, kw, channels))
    for n in range(batch):
        for i in range(oh):
            for j in range(ow):
                for a in range(kh):
                    for b in range(kw):
                        r, s = source(n, i, j, a, b, strides, dilation, pads)
                        if 0 <= r < h and 0 <= s < w:
                            cols[n, i, j, a, b] = x[n, r, s]
    return cols


def reference_col2im(dcols, image_shape, strides, dilation, pads):
    """The adjoint of ``reference_im2col``: add each entry back where it was read."""
    _, h, w, _ = image_shape
    batch, oh, ow, kh, kw, _ = dcols.shape
    dx = np.zeros(image_shape)
    for n in range(batch):
        for i in range(oh):
            for j in range(ow):
                for a in range(kh):
                    for b in range(kw):
                        r, s = source(n, i, j, a, b, strides, dilation, pads)
                        if 0 <= r < h and 0 <= s < w:
                            dx[n, r, s] += dcols[n, i, j, a, b]
    return dx


def reference_max_pool(x, pool, strides, pads, out_hw):
    """Maxima and first-maximum positions (``a * pool_w + b``) over the real inputs."""
    batch, h, w, channels = x.shape
    (ph, pw), (oh, ow) = pool, out_hw
    y = np.full((batch, oh, ow, channels), -np.inf)
    where = np.full((batch, oh, ow, channels), -1)
    for n in range(batch):
        for i in range(oh):
            for j in range(ow):
                for c in range(channels):
                    best, at = None, -1
                    for a in range(ph):
                        for b in range(pw):
                            r, s = source(n, i, j, a, b, strides, (1, 1), pads)
                            if 0 <= r < h and 0 <= s < w:
                                v = float(x[n, r, s, c])
                                if best is None or v > best:  # strict: ties keep the first
                                    best, at = v, a * pw + b
                    y[n, i, j, c], where[n, i, j, c] = best, at
    return y, where


def tolerance(dtype):
    return (
        {"rtol": 1e-12, "atol": 1e-12}
        if dtype == np.float64
        else {
            "rtol": 1e-5,
            "atol": 1e-5,
        }
    )


# --- im2col and col2im -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 3, 9])
@pytest.mark.parametrize(("strides", "dilation", "pads", "out_hw"), GEOMETRIES)
def test_im2col_copies_every_window_with_zeros_for_padding(
    rng, dtype, channels, strides, dilation, pads, out_hw
):
    x = rng.standard_normal((2, 5, 6, channels)).astype(dtype)
    cols = np.full((2, *out_hw, 3, 2, channels), np.nan, dtype)  # every entry is written
    conv_kernels.im2col(x, strides, dilation, pads, cols)
    expected = reference_im2col(
        x.astype(np.float64), (3, 2), strides, dilation, pads, out_hw
    )
    np.testing.assert_array_equal(cols, expected.astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("strides", "dilation", "pads", "out_hw"), GEOMETRIES)
def test_im2col_transposed_is_im2col_laid_out_tap_major(
    rng, dtype, channels, strides, dilation, pads, out_hw
):
    x = rng.standard_normal((2, 5, 6, channels)).astype(dtype)
    cols = np.full((3, 2, channels, 2, *out_hw), np.nan, dtype)
    conv_kernels.im2col_transposed(x, strides, dilation, pads, cols)
    expected = reference_im2col(
        x.astype(np.float64), (3, 2), strides, dilation, pads, out_hw
    )
    np.testing.assert_array_equal(cols, expected.transpose(3, 4, 5, 0, 1, 2).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 9])
@pytest.mark.parametrize(("strides", "dilation", "pads", "out_hw"), GEOMETRIES)
def test_col2im_adds_window_gradients_back_onto_the_image(
    rng, dtype, channels, strides, dilation, pads, out_hw
):
    dcols = rng.standard_normal((2, *out_hw, 3, 2, channels)).astype(dtype)
    dx = np.full((2, 5, 6, channels), np.nan, dtype)  # overwritten, not accumulated
    conv_kernels.col2im(dcols, strides, dilation, pads, dx)
    expected = reference_col2im(dcols.astype(np.float64), dx.shape, strides, dilation, pads)
    np.testing.assert_allclose(dx, expected, **tolerance(dtype))


def test_col2im_is_the_adjoint_of_im2col(rng):
    strides, dilation, pads, out_hw = GEOMETRIES[3]
    x = rng.standard_normal((2, 5, 6, 4))
    d = rng.standard_normal((2, *out_hw, 3, 2, 4))
    cols, dx = np.empty_like(d), np.empty_like(x)
    conv_kernels.im2col(x, strides, dilation, pads, cols)
    conv_kernels.col2im(d, strides, dilation, pads, dx)
    assert np.sum(cols * d) == pytest.approx(np.sum(x * dx), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_then_one_product_matches_an_einsum_convolution(rng, dtype):
    x = rng.standard_normal((3, 9, 8, 5)).astype(dtype)
    kernel = rng.standard_normal((3, 3, 5, 7)).astype(dtype)
    cols = np.empty((3, 7, 6, 3, 3, 5), dtype)
    conv_kernels.im2col(x, (1, 1), (1, 1), (0, 0), cols)
    y = cols.reshape(-1, 45) @ kernel.reshape(45, 7)
    x64, k64 = x.astype(np.float64), kernel.astype(np.float64)
    expected = sum(
        np.einsum("nhwc,cf->nhwf", x64[:, a : a + 7, b : b + 6], k64[a, b])
        for a in range(3)
        for b in range(3)
    )
    np.testing.assert_allclose(y.reshape(3, 7, 6, 7), expected, **tolerance(dtype))


# --- max pooling -------------------------------------------------------------------------


POOL_GEOMETRIES = [  # (pool, strides, pads, out_hw) on 5x6 images
    ((2, 2), (2, 2), (0, 0), (2, 3)),  # the common case: windows tile, a row is left
    ((2, 2), (2, 2), (0, 0), (2, 2)),  # tiles leaving a row and two columns uncovered
    ((3, 3), (3, 3), (1, 1), (2, 2)),  # padded tiles
    ((3, 3), (1, 1), (1, 1), (5, 6)),  # overlapping, padded on every side
    ((2, 3), (1, 2), (0, 0), (4, 2)),
    ((3, 2), (2, 1), (1, 0), (3, 5)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("pool", "strides", "pads", "out_hw"), POOL_GEOMETRIES)
def test_max_pool_gives_window_maxima_and_first_maximum_positions(
    rng, dtype, pool, strides, pads, out_hw
):
    x = rng.integers(-3, 4, (2, 5, 6, 3)).astype(dtype)  # small integers: many ties
    y = np.empty((2, *out_hw, 3), dtype)
    argmax = np.full(y.shape, 99, np.int8)
    conv_kernels.max_pool2d(x, pool, strides, pads, y, argmax, True)
    expected_y, expected_at = reference_max_pool(x, pool, strides, pads, out_hw)
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(argmax, expected_at)


def test_max_pool_without_record_leaves_the_positions_alone(rng):
    x = rng.standard_normal((1, 4, 4, 2))
    y, argmax = np.empty((1, 2, 2, 2)), np.full((1, 2, 2, 2), 7, np.int8)
    conv_kernels.max_pool2d(x, (2, 2), (2, 2), (0, 0), y, argmax, False)
    np.testing.assert_array_equal(
        y, reference_max_pool(x, (2, 2), (2, 2), (0, 0), (2, 2))[0]
    )
    assert np.all(argmax == 7)


@pytest.mark.parametrize(
    ("window", "expected_at"),
    [
        ([[3.0, 3.0], [3.0, 3.0]], 0),
        ([[1.0, 3.0], [3.0, 2.0]], 1),
        ([[1.0, 2.0], [4.0, 4.0]], 2),
        ([[-np.inf, -np.inf], [-np.inf, -np.inf]], 0),
    ],
)
def test_max_pool_ties_go_to_the_first_maximum_in_row_major_order(window, expected_at):
    x = np.array(window).reshape(1, 2, 2, 1)
    y, argmax = np.empty((1, 1, 1, 1)), np.empty((1, 1, 1, 1), np.int8)
    conv_kernels.max_pool2d(x, (2, 2), (2, 2), (0, 0), y, argmax, True)
    assert y[0, 0, 0, 0] == np.max(window) and argmax[0, 0, 0, 0] == expected_at


def test_max_pool_tie_in_a_padded_window_goes_to_its_first_real_input():
    x = np.full((1, 5, 5, 1), 2.0)  # 3x3 windows, one row and column of padding first
    y, argmax = np.empty((1, 5, 5, 1)), np.empty((1, 5, 5, 1), np.int8)
    conv_kernels.max_pool2d(x, (3, 3), (1, 1), (1, 1), y, argmax, True)
    assert argmax[0, 0, 0, 0] == 4  # (a, b) = (1, 1): (0, *) and (*, 0) are padding
    assert argmax[0, 0, 1, 0] == 3  # (1, 0): only the top row is padding
    assert argmax[0, 2, 2, 0] == 0


def test_max_pool_window_with_nan_outputs_nan_and_records_no_position():
    x = np.array([[1.0, np.nan], [5.0, 2.0]]).reshape(1, 2, 2, 1)
    y, argmax = np.empty((1, 1, 1, 1)), np.empty((1, 1, 1, 1), np.int8)
    conv_kernels.max_pool2d(x, (2, 2), (2, 2), (0, 0), y, argmax, True)
    assert np.isnan(y[0, 0, 0, 0]) and argmax[0, 0, 0, 0] == -1


def test_max_pool_records_positions_past_127_in_an_int32_array(rng):
    x = rng.standard_normal((2, 12, 12, 3))
    y, argmax = np.empty((2, 1, 1, 3)), np.empty((2, 1, 1, 3), np.int32)
    conv_kernels.max_pool2d(x, (12, 12), (12, 12), (0, 0), y, argmax, True)
    expected = np.argmax(x.reshape(2, 144, 3), axis=1)
    np.testing.assert_array_equal(argmax.reshape(2, 3), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("pool", "strides", "pads", "out_hw"), POOL_GEOMETRIES)
def test_max_pool_backward_adds_each_gradient_at_its_window_maximum(
    rng, dtype, pool, strides, pads, out_hw
):
    x = rng.integers(-3, 4, (2, 5, 6, 3)).astype(dtype)
    _, at = reference_max_pool(x, pool, strides, pads, out_hw)
    dy = rng.standard_normal(at.shape).astype(dtype)
    expected = np.zeros(x.shape)
    for n, i, j, c in np.ndindex(*at.shape):  # a reference: one output at a time
        a, b = divmod(int(at[n, i, j, c]), pool[1])
        r, s = source(n, i, j, a, b, strides, (1, 1), pads)
        expected[n, r, s, c] += dy[n, i, j, c]
    dx = np.full(x.shape, np.nan, dtype)
    conv_kernels.max_pool2d_backward(dy, at.astype(np.int8), pool, strides, pads, dx)
    np.testing.assert_allclose(dx, expected, **tolerance(dtype))


def test_max_pool_backward_skips_windows_without_a_position():
    dy = np.array([3.0, np.nan]).reshape(1, 1, 2, 1)
    argmax = np.array([1, -1], np.int8).reshape(1, 1, 2, 1)
    dx = np.empty((1, 2, 4, 1))
    conv_kernels.max_pool2d_backward(dy, argmax, (2, 2), (2, 2), (0, 0), dx)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0.0, 3.0, 0.0, 0.0], [0.0] * 4])


# --- global average pooling --------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_average_pool_matches_a_float64_mean_and_spreads_gradients(rng, dtype):
    x = rng.standard_normal((3, 5, 7, 4)).astype(dtype)
    y = np.full((3, 4), np.nan, dtype)
    conv_kernels.global_average_pool2d(x, y)
    np.testing.assert_allclose(
        y, x.astype(np.float64).mean(axis=(1, 2)), **tolerance(dtype)
    )
    dy = rng.standard_normal((3, 4)).astype(dtype)
    dx = np.full(x.shape, np.nan, dtype)
    conv_kernels.global_average_pool2d_backward(dy, dx)
    expected = np.broadcast_to(dy.astype(np.float64)[:, None, None, :] / 35, x.shape)
    np.testing.assert_allclose(dx, expected, **tolerance(dtype))
