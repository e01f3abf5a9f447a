"""The compiled updates equal, bit for bit, the NumPy equations they replace."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loopkit.activations import _kernels as activation_kernels
from loopkit.losses import _kernels as loss_kernels
from loopkit.optimizers import _kernels as optimizer_kernels


def numpy_adam(p, g, m, v, v_hat, c1, c2, alpha, eps):
    """Keras's Adam as separate NumPy ufuncs in the buffers' dtype (the old code path)."""
    s = np.empty_like(p)
    np.subtract(g, m, out=s)
    s *= c1
    m += s
    np.square(g, out=s)
    s -= v
    s *= c2
    v += s
    if v_hat is not None:
        v = np.maximum(v_hat, v, out=v_hat)
    np.sqrt(v, out=s)
    s += eps
    np.divide(m, s, out=s)
    s *= alpha
    p -= s


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_kernel_is_bitwise_equal_to_the_numpy_equations(dtype, amsgrad, rng) -> None:
    n = 10_007  # not a multiple of any vector width
    p_kernel = rng.standard_normal(n).astype(dtype)
    p_numpy = p_kernel.copy()
    state_k = [np.zeros(n, dtype) for _ in range(3)]
    state_n = [np.zeros(n, dtype) for _ in range(3)]
    b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-7
    for t in range(1, 8):
        g = (rng.standard_normal(n) * 10.0 ** rng.integers(-6, 3, n)).astype(dtype)
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        scalars = [dtype(1 - b1), dtype(1 - b2), dtype(alpha), dtype(eps)]
        if amsgrad:
            optimizer_kernels.adam_amsgrad(p_kernel, g, *state_k, *scalars)
        else:
            optimizer_kernels.adam(p_kernel, g, state_k[0], state_k[1], *scalars)
        numpy_adam(
            p_numpy,
            g,
            state_n[0],
            state_n[1],
            state_n[2] if amsgrad else None,
            1 - b1,
            1 - b2,
            alpha,
            eps,
        )
    np.testing.assert_array_equal(p_kernel, p_numpy)
    np.testing.assert_array_equal(state_k[0], state_n[0])
    np.testing.assert_array_equal(state_k[1], state_n[1])
    if amsgrad:
        np.testing.assert_array_equal(state_k[2], state_n[2])


def test_adam_kernel_propagates_nan_like_numpy() -> None:
    p = np.ones(4, np.float32)
    g = np.array([np.nan, np.inf, 1.0, -np.inf], np.float32)
    m, v = np.zeros(4, np.float32), np.zeros(4, np.float32)
    f = np.float32
    with np.errstate(invalid="ignore"):
        optimizer_kernels.adam(p, g, m, v, f(0.1), f(0.001), f(0.001), f(1e-7))
    assert np.isnan(p[0]) and np.isnan(p[1]) and np.isnan(p[3])
    assert np.isfinite(p[2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_relu_kernel_equals_numpy_add_then_maximum(dtype, rng) -> None:
    z = rng.standard_normal((33, 17)).astype(dtype)
    z[0, :3] = [np.nan, -0.0, 0.0]
    bias = rng.standard_normal(17).astype(dtype)
    bias[:3] = 0.0
    expected_z = z + bias
    expected = np.maximum(expected_z, 0.0)
    out = np.empty_like(z)
    activation_kernels.bias_relu(z, bias, out)
    np.testing.assert_array_equal(z, expected_z)
    np.testing.assert_array_equal(out, expected)
    assert np.signbit(out[0, 1]) == np.signbit(expected[0, 1])  # -0.0 as np.maximum


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_kernel_equals_numpy_mask_multiply(dtype, rng) -> None:
    x = rng.standard_normal(1001).astype(dtype)
    dy = rng.standard_normal(1001).astype(dtype)
    dy[:4] = [np.nan, np.nan, np.inf, -np.inf]
    x[:4] = [1.0, -1.0, -1.0, 2.0]
    out = np.empty_like(dy)
    with np.errstate(invalid="ignore"):
        expected = dy * (x > 0)
        activation_kernels.relu_backward(dy, x, out)
    np.testing.assert_array_equal(out, expected)  # NaN * 0 stays NaN, as in NumPy


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_softmax_crossentropy_kernel_matches_the_float64_formula(dtype, rng) -> None:
    z = (rng.standard_normal((40, 7)) * 30).astype(dtype)  # saturated rows included
    labels = rng.integers(0, 7, 40)
    grad = np.empty_like(z)
    total, bad = loss_kernels.sparse_softmax_crossentropy(z, labels, grad, dtype(1 / 40))
    assert bad == -1
    z64 = z.astype(np.float64)
    shifted = z64 - z64.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected_loss = -log_softmax[np.arange(40), labels].sum()
    expected_grad = (np.exp(log_softmax) - np.eye(7)[labels]) / 40
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    assert total == pytest.approx(expected_loss, rel=tolerance)
    np.testing.assert_allclose(
        grad, expected_grad, rtol=tolerance * 10, atol=tolerance / 40
    )


def test_sparse_softmax_crossentropy_kernel_reports_the_first_bad_label() -> None:
    z = np.zeros((3, 4), np.float32)
    grad = np.empty_like(z)
    _, bad = loss_kernels.sparse_softmax_crossentropy(
        z, np.array([0, 4, -1]), grad, np.float32(1)
    )
    assert bad == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_bias_kernel_masks_like_numpy_and_sums_columns_exactly(
    dtype, rng
) -> None:
    dy = rng.normal(size=(301, 7)).astype(dtype)
    x = rng.normal(size=(301, 7)).astype(dtype)
    x[0, :3] = [0.0, -0.0, np.nan]
    dy[1, 4] = np.nan
    out = np.empty_like(dy)
    bias_grad = np.empty(7, dtype)
    activation_kernels.relu_backward_bias(dy, x, out, bias_grad)
    expected = dy * (x > 0).astype(dtype)
    np.testing.assert_array_equal(out, expected)  # bitwise, NaN where dy is NaN
    reference = np.sum(expected.astype(np.float64), axis=0)
    if dtype == np.float32:  # a float64 sum rounded once: the correctly rounded result
        np.testing.assert_array_equal(bias_grad, reference.astype(dtype))
    else:  # sequential against pairwise float64 summation
        np.testing.assert_allclose(bias_grad, reference, rtol=1e-13)


def test_relu_backward_with_bias_grad_equals_backward_then_column_sums(rng) -> None:
    from loopkit.activations import ReLU, Tanh

    dy, x = rng.normal(size=(2, 5, 4, 3))
    for activation in (ReLU(), ReLU(negative_slope=0.1), Tanh()):
        y = activation(x)
        expected = activation.backward(dy, x, y, np.empty_like(dy))
        out, bias_grad = np.empty_like(dy), np.empty(3)
        got = activation.backward_with_bias_grad(dy, x, y, out, bias_grad)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_allclose(bias_grad, expected.sum(axis=(0, 1)), rtol=1e-12)
