"""The compiled LSTM step kernels give bitwise the NumPy equations they replace."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loopkit.layers import GRU, LSTM
from loopkit.layers.recurrent import _kernels as kernels
from loopkit.layers.recurrent._tanh import rational_tanh

U = 5


@pytest.fixture(params=[np.float32, np.float64])
def dtype(request: pytest.FixtureRequest) -> type:
    return request.param  # type: ignore[no-any-return]


def arrays(dtype: type, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def test_gates_in_adds_the_projection_and_halves_the_sigmoid_blocks(dtype: type) -> None:
    z, xw = arrays(dtype, (3, 4 * U), (3, 4 * U))
    expected = z + xw
    for block in (0, 1, 3):  # i, f, o
        expected[:, block * U : (block + 1) * U] *= dtype(0.5)
    kernels.lstm_gates_in(z, xw, U)
    np.testing.assert_array_equal(z, expected)


def test_gates_out_finishes_the_sigmoids_and_writes_the_cell(dtype: type) -> None:
    t, c_prev = arrays(dtype, (3, 4 * U), (3, U))
    a = np.tanh(t)
    half = dtype(0.5)
    i, f, g, o = (a[:, k * U : (k + 1) * U] * half + half for k in range(4))
    g = a[:, 2 * U : 3 * U].copy()
    expected_c = f * c_prev + i * g
    c = np.empty_like(c_prev)
    kernels.lstm_gates_out(a, c_prev, c, U)
    np.testing.assert_array_equal(c, expected_c)
    np.testing.assert_array_equal(a, np.concatenate([i, f, g, o], axis=1))


def test_backward_step_gives_the_gate_gradients_and_the_previous_cell_gradient(
    dtype: type,
) -> None:
    dh, dc, a, tc, c_prev = arrays(dtype, (3, U), (3, U), (3, 4 * U), (3, U), (3, U))
    i, f, g, o = (a[:, k * U : (k + 1) * U] for k in range(4))
    one = dtype(1)
    d_c = dc + (one - tc * tc) * (dh * o)
    expected = np.concatenate(
        [
            ((one - i) * i) * (d_c * g),
            ((one - f) * f) * (d_c * c_prev),
            (one - g * g) * (d_c * i),
            ((one - o) * o) * (dh * tc),
        ],
        axis=1,
    )
    dz = np.empty_like(a)
    kernels.lstm_backward_step(dh, dc, a, tc, c_prev, dz, U)
    np.testing.assert_array_equal(dz, expected)
    np.testing.assert_array_equal(dc, d_c * f)


@pytest.mark.parametrize("options", [{}, {"use_bias": False}, {"recurrent_dropout": 0.3}])
@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_the_compiled_cells_equal_the_numpy_cells_bitwise(
    monkeypatch: pytest.MonkeyPatch, dtype: type, cls: type, options: dict[str, Any]
) -> None:
    layer = cls(4, return_sequences=True, **options)
    layer.setup((6, 3), dtype, np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 6, 3)).astype(dtype)
    dy = np.random.default_rng(2).standard_normal((2, 6, 4)).astype(dtype)
    mask = np.array([[1, 1, 0, 1, 1, 0], [0, 1, 1, 1, 1, 1]], bool)
    results = []
    for compiled in (True, False):
        monkeypatch.setattr(cls, "compiled_kernels", compiled)
        layer.rng = np.random.default_rng(5)  # the same dropout masks
        y = layer.forward(x, training=True, mask=mask).copy()
        dx = layer.backward(dy).copy()
        results.append([y, dx, *(p.grad.copy() for p in layer.parameters)])
    fused = cls is LSTM and dtype == np.float32  # its own tanh: a few ulp from np.tanh
    for compiled, numpy_cell in zip(*results, strict=True):
        if fused:
            np.testing.assert_allclose(compiled, numpy_cell, rtol=2e-5, atol=2e-6)
        else:
            np.testing.assert_array_equal(compiled, numpy_cell)


def test_the_fused_lstm_step_gives_the_numpy_equations_with_the_rational_tanh() -> None:
    a, c_prev = arrays(np.float32, (3, 4 * U), (3, U))
    a *= 4  # reach the clamp at 9 too
    a[0, 0] = np.nan
    bias = arrays(np.float32, (4 * U,))[0]
    half = np.float32(0.5)
    z = a + bias
    blocks = [z[:, k * U : (k + 1) * U] for k in range(4)]
    i, f, o = (rational_tanh(blocks[k] * half) * half + half for k in (0, 1, 3))
    g = rational_tanh(blocks[2])
    c_expected = f * c_prev + i * g
    tc_expected = rational_tanh(c_expected)
    c, tc, h = (np.empty_like(c_prev) for _ in range(3))
    kernels.lstm_step(a, bias, c_prev, c, tc, h, U)
    np.testing.assert_array_equal(a, np.concatenate([i, f, g, o], axis=1))
    np.testing.assert_array_equal(c, c_expected)
    np.testing.assert_array_equal(tc, tc_expected)
    np.testing.assert_array_equal(h, o * tc_expected)
    assert np.isnan(h[0, 0])  # a diverged gate shows, it is not clamped away


def test_only_float32_with_keras_activations_takes_the_fused_steps() -> None:
    assert LSTM(4).steps_project_inputs(np.float32)
    assert not LSTM(4).steps_project_inputs(np.float64)
    assert not LSTM(4, activation="relu").steps_project_inputs(np.float32)
    assert not GRU(4).steps_project_inputs(np.float32)
