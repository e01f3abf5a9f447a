"""Float64 finite-difference checks for the attention layers' tests (not a test module)."""

from __future__ import annotations

from typing import Any

import numpy as np

from loopkit.testing import numerical_gradient


def check_call_gradients(
    layer: Any,
    inputs: list[np.ndarray],
    rng: np.random.Generator,
    mask: Any = None,
    training: bool = False,
    seed: int | None = None,
    **options: Any,
) -> dict[str, np.ndarray]:
    """Assert that backward's dL/d(inputs) and dL/d(weights) match central differences.

    Builds ``layer`` in float64 for ``inputs`` (a list: float64 arrays, an attention
    mask last if the call takes one), runs ``forward(inputs, training, mask=mask,
    **options)`` and backward for the loss ``sum(y * r)`` with random ``r`` (one per
    output), and compares. With ``seed`` the layer's generator is reset before each
    forward, so dropout draws the same mask every time. Returns the analytic
    input gradients by position (``"x0"``...) and the weight gradients by name.
    """
    layer.setup([a.shape[1:] for a in inputs], dtype=np.float64, rng=rng)
    for p in layer.parameters:  # away from zero biases: every term matters
        p.value[...] = rng.standard_normal(p.shape) * 0.5

    def run() -> Any:
        if seed is not None:
            layer.rng = np.random.default_rng(seed)
        return layer.forward(inputs, training, mask=mask, **options)

    first = run()
    outs = first if isinstance(first, list) else [first]
    weights = [rng.standard_normal(o.shape) for o in outs]

    def loss() -> float:
        ys = run()
        ys = ys if isinstance(ys, list) else [ys]
        return float(sum(np.sum(y * r) for y, r in zip(ys, weights, strict=True)))

    loss()
    grads = layer.backward(weights if isinstance(first, list) else weights[0])
    analytic: dict[str, np.ndarray] = {}
    for i, g in enumerate(grads):
        if g is None:
            continue
        analytic[f"x{i}"] = np.array(g, copy=True)
    for p in layer.parameters:
        analytic[p.name] = p.grad.copy()
    checked = 0
    for i, x in enumerate(inputs):
        if f"x{i}" in analytic:
            numeric = numerical_gradient(loss, x)
            np.testing.assert_allclose(
                analytic[f"x{i}"], numeric, rtol=1e-6, atol=1e-8, err_msg=f"input {i}"
            )
            checked += int(np.abs(numeric).max() > 1e-4)
    for p in layer.parameters:
        numeric = numerical_gradient(loss, p.value)
        np.testing.assert_allclose(
            analytic[p.name], numeric, rtol=1e-6, atol=1e-8, err_msg=p.name
        )
        checked += int(np.abs(numeric).max() > 1e-4)
    assert checked > 0
    return analytic
