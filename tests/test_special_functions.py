from __future__ import annotations

import math

import numpy as np
import pytest

from loopkit.activations._special import normal_cdf


def _reference(x: np.ndarray) -> np.ndarray:
    # Phi(x) = erfc(-x / sqrt(2)) / 2, from the standard library's erfc.
    return np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x.ravel()])


def test_normal_cdf_matches_erfc_to_near_float64_precision() -> None:
    x = np.linspace(-10.0, 10.0, 2001)
    out = np.empty_like(x)
    result = normal_cdf(x, out)
    assert result is out
    np.testing.assert_allclose(out, _reference(x), rtol=5e-14, atol=0.0)


def test_normal_cdf_keeps_its_relative_precision_deep_in_the_lower_tail() -> None:
    # Rounding x / sqrt(2) by one ulp moves exp(-z**2) by about z**2 * 2.2e-16 relative,
    # in the reference as in the code, so far out the two agree to that much only.
    x = np.array([-20.0, -30.0, -37.0])
    out = np.empty_like(x)
    normal_cdf(x, out)
    assert np.all(out > 0.0)
    np.testing.assert_allclose(out, _reference(x), rtol=2e-12, atol=0.0)


def test_normal_cdf_in_float32_is_within_a_few_float32_roundings(rng) -> None:
    x = rng.uniform(-6.0, 6.0, 1000).astype(np.float32)
    out = np.empty_like(x)
    normal_cdf(x, out)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _reference(x.astype(np.float64)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("x", "expected"), [(0.0, 0.5), (1.0, 0.8413447460685429)])
def test_normal_cdf_gives_table_values(x: float, expected: float) -> None:
    out = np.empty(1)
    normal_cdf(np.array([x]), out)
    assert out[0] == pytest.approx(expected, rel=1e-15)
