"""The fused LSTM step's rational tanh: within 6 ulp of tanh everywhere, NaN kept."""

from __future__ import annotations

import numpy as np

from loopkit.layers.recurrent._tanh import rational_tanh


def ulp_errors(x: np.ndarray) -> np.ndarray:
    exact = np.tanh(x.astype(np.float64))  # float64: the reference, ~2^29 times finer
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return np.abs(rational_tanh(x).astype(np.float64) - exact) / ulp


def test_within_six_ulp_over_the_line() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            rng.uniform(-12, 12, 400_000),
            rng.uniform(-1, 1, 400_000),
            rng.standard_normal(200_000) * 1e-3,
            np.geomspace(1e-38, 30, 20_000),
            -np.geomspace(1e-38, 30, 20_000),
        ]
    ).astype(np.float32)
    errors = ulp_errors(x)
    assert errors.max() <= 6.0, (x[errors.argmax()], errors.max())
    assert errors.mean() < 1.0


def test_odd_exact_at_zero_and_saturating() -> None:
    x = np.array([0.0, -0.0, 1e-30, -1e-30, 9.0, 50.0, np.inf, -np.inf], np.float32)
    y = rational_tanh(x)
    np.testing.assert_array_equal(y[:4], x[:4])
    assert np.signbit(y[1])
    assert np.all(np.abs(1 - np.abs(y[4:])) <= 2 * np.spacing(np.float32(1)))
    np.testing.assert_array_equal(np.sign(y[4:]), np.sign(x[4:]))
    assert np.all(rational_tanh(-x) == -y)


def test_nan_stays_nan() -> None:
    assert np.isnan(rational_tanh(np.array([np.nan], np.float32))).all()
