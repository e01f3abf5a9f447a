"""Gradient checks for people writing layers and losses: backward vs finite differences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from loopkit.layers.base import Layer
from loopkit.typing import Array, FloatArray, Shape

__all__ = ["check_layer_gradients", "check_model_gradients", "numerical_gradient"]


def numerical_gradient(
    f: Callable[[], float], x: FloatArray, eps: float = 1e-6
) -> FloatArray:
    """Return df/dx by central differences, perturbing ``x`` in place and restoring it.

    Args:
        f: Computes a scalar from the current contents of ``x`` (and anything else).
        x: float64 array that ``f`` reads; modified during the call, restored after.
        eps: Step of the central difference ``(f(x+eps) - f(x-eps)) / (2 eps)``.
    """
    grad = np.zeros(x.shape, np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):  # a reference, not a hot path: one scalar at a time
        original = flat[i]
        flat[i] = original + eps
        up = f()
        flat[i] = original - eps
        down = f()
        flat[i] = original
        gflat[i] = (up - down) / (2 * eps)
    return grad


def check_layer_gradients(
    layer: Layer,
    input_shape: Shape,
    *,
    batch_size: int = 3,
    rng: np.random.Generator | None = None,
    x: Array | None = None,
    training: bool = False,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    check_input: bool = True,
) -> dict[str, Any]:
    """Assert that ``layer.backward`` matches float64 central differences.

    Builds ``layer`` in float64, draws ``x`` (unless given) and an upstream gradient
    ``dy``, and compares dL/dx and every parameter's dL/dparam for ``L = sum(y * dy)``.
    Layers that draw randomness in ``forward`` (dropout) must be reseeded by the
    caller or checked with ``training=False``.

    Returns:
        The analytic and numeric gradients, keyed ``"x"`` and by parameter name.

    Raises:
        AssertionError: a gradient differs beyond ``rtol``/``atol``.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    out_shape = layer.setup(input_shape, np.float64, rng)
    if x is None:
        x = rng.standard_normal((batch_size, *input_shape))
    x = np.array(x, copy=True)
    n = x.shape[0]
    dy = rng.standard_normal((n, *out_shape))

    def loss() -> float:
        return float(np.sum(layer.forward(x, training=training) * dy))

    loss()
    dx = layer.backward(dy.copy())
    results: dict[str, Any] = {}
    analytic = {p.name: p.grad.copy() for p in layer.parameters if p.trainable}
    if check_input and dx is not None:
        dx = np.array(dx, copy=True)
        numeric_x = numerical_gradient(loss, x)
        np.testing.assert_allclose(dx, numeric_x, rtol=rtol, atol=atol, err_msg="dL/dx")
        results["x"] = (dx, numeric_x)
    for p in layer.parameters:
        if not p.trainable:
            continue
        numeric = numerical_gradient(loss, p.value)
        np.testing.assert_allclose(
            analytic[p.name], numeric, rtol=rtol, atol=atol, err_msg=f"dL/d{p.name}"
        )
        results[p.name] = (analytic[p.name], numeric)
    return results


def check_model_gradients(
    model: Any,
    x: Any,
    y: Any,
    sample_weight: Any = None,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-8,
) -> dict[str, FloatArray]:
    """Assert that a whole model's gradients match float64 central differences.

    For a compiled float64 model (``dtype="float64"``): ``compute_gradients`` on the
    batch, then the loss of the same batch (``training=True``) differentiated
    numerically with respect to ``flat_weights``, compared on the trainable spans.
    Checks a graph of custom layers, shared layers, several outputs and loss weights
    as ``check_layer_gradients`` checks one layer. Layers that draw randomness in
    training (dropout) must be left out or reseeded by the caller.

    Returns:
        ``{"analytic": ..., "numeric": ...}``, both shaped as ``flat_weights``.

    Raises:
        AssertionError: the recomputed loss differs from ``compute_gradients``'s, the
            loss does not depend on the weights at all, or a gradient differs beyond
            ``rtol``/``atol``.
    """
    loss = model.compute_gradients(x, y, sample_weight)
    analytic = model.flat_gradients.copy()

    def total_loss() -> float:
        model.forward(x, training=True)
        return float(model.test_loss(y, sample_weight))

    again = total_loss()
    assert np.isclose(again, loss, rtol=1e-12, atol=0.0), (
        f"the loss recomputed for the same batch is {again!r}, not {loss!r}: the model "
        "is not deterministic in training mode (dropout?), so it cannot be checked"
    )
    numeric = numerical_gradient(total_loss, model.flat_weights)
    assert np.abs(numeric).max() > 1e-3, "the loss does not depend on the weights"
    for span in model.trainable_spans:
        np.testing.assert_allclose(analytic[span], numeric[span], rtol=rtol, atol=atol)
    return {"analytic": analytic, "numeric": numeric}
