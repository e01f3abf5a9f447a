"""Compiled (numba) LSTM and GRU step kernels: a step's element-wise work in few passes.

The transcendental functions stay in NumPy (``np.tanh`` on whole blocks, its
vectorized implementation); the kernels do the arithmetic between them, in the
arrays' dtype, IEEE only (no fastmath, no fused multiply-add), in the order of the
NumPy equations they replace (``tests/test_recurrent_kernels.py`` writes those out
and checks that results are bitwise equal). The sigmoid is
``0.5 * tanh(0.5 * z) + 0.5``, so one ``np.tanh`` over the LSTM's four gate blocks
serves the three sigmoid gates and the candidate. Arrays are C-contiguous ``(batch,
gates*units)`` or ``(batch, units)`` and share one dtype.
"""

from __future__ import annotations

from typing import Any

import numba

from loopkit.layers.recurrent._tanh import CLAMP, DENOMINATOR, NUMERATOR

__all__ = [
    "gru_backward_step",
    "gru_candidate_in",
    "gru_gates_in",
    "gru_state",
    "lstm_backward_step",
    "lstm_gates_in",
    "lstm_gates_out",
    "lstm_step",
]

_jit = numba.njit(nogil=True, cache=True, error_model="numpy", fastmath=False)


_P0, _P1, _P2, _P3, _P4, _P5, _P6 = NUMERATOR
_Q0, _Q1, _Q2, _Q3 = DENOMINATOR


@numba.njit(inline="always", error_model="numpy", fastmath=False)
def _tanh(x: Any) -> Any:
    """``_tanh.rational_tanh`` of one float32, inlined into the loops that call it."""
    x = min(max(x, -CLAMP), CLAMP)
    s = x * x
    numerator = ((((((_P6 * s + _P5) * s + _P4) * s + _P3) * s + _P2) * s + _P1) * s) + _P0
    denominator = (((_Q3 * s + _Q2) * s + _Q1) * s) + _Q0
    return (x * numerator) / denominator


@_jit
def lstm_step(
    a: Any, bias: Any, c_prev: Any, c: Any, tanh_c: Any, h: Any, units: int
) -> None:
    """One float32 LSTM step's element-wise work in one pass.

    ``a`` holds ``[x_t, h_prev] @ [kernel; recurrent_kernel]``. With ``z = a +
    bias`` (zeros if the layer has none: a branch, even outside the loop, stops LLVM
    from vectorizing it) and ``T`` the rational tanh of ``_tanh.py``,
    ``S(v) = 0.5 * T(0.5 * v) + 0.5``::

        a = [S(z_i), S(z_f), T(z_c), S(z_o)]      # the activated gates, in place
        c = f * c_prev + i * g;  tanh_c = T(c);  h = o * tanh_c
    """
    half = a.dtype.type(0.5)
    u = units
    b_i, b_f, b_g, b_o = bias[:u], bias[u : 2 * u], bias[2 * u : 3 * u], bias[3 * u :]
    for r in range(a.shape[0]):  # 1-D views per row: LLVM vectorizes the inner loop
        row = a[r]
        a_i, a_f, a_g, a_o = row[:u], row[u : 2 * u], row[2 * u : 3 * u], row[3 * u :]
        previous, cell, tc_row, h_row = c_prev[r], c[r], tanh_c[r], h[r]
        for j in range(u):
            i = _tanh((a_i[j] + b_i[j]) * half) * half + half
            f = _tanh((a_f[j] + b_f[j]) * half) * half + half
            g = _tanh(a_g[j] + b_g[j])
            o = _tanh((a_o[j] + b_o[j]) * half) * half + half
            a_i[j] = i
            a_f[j] = f
            a_g[j] = g
            a_o[j] = o
            new_c = f * previous[j] + i * g
            cell[j] = new_c
            t = _tanh(new_c)
            tc_row[j] = t
            h_row[j] = o * t


@_jit
def lstm_gates_in(z: Any, xw: Any, units: int) -> None:
    """``z = (z + xw) * s`` with ``s`` 0.5 on the i, f, o blocks and 1 on c.

    ``z`` holds ``h @ recurrent_kernel``; afterwards ``np.tanh(z)`` gives
    ``tanh(z_c)`` on the candidate block and ``2 sigmoid(z) - 1`` on the gates.
    """
    half = z.dtype.type(0.5)
    rows, cols = z.shape
    for r in range(rows):
        for j in range(cols):
            v = z[r, j] + xw[r, j]
            z[r, j] = v if 2 * units <= j < 3 * units else v * half


@_jit
def lstm_gates_out(a: Any, c_prev: Any, c: Any, units: int) -> None:
    """Finish the gates and write the new cell state.

    ``a`` holds ``tanh`` of ``lstm_gates_in``'s output; the i, f, o blocks become
    ``0.5 * a + 0.5`` (the sigmoids) in place, and ``c = f * c_prev + i * g``.
    One loop per row and block, over 1-D views, so that LLVM vectorizes each.
    """
    half = a.dtype.type(0.5)
    u = units
    for r in range(a.shape[0]):
        row, previous, cell = a[r], c_prev[r], c[r]
        i_and_f, g, o = row[: 2 * u], row[2 * u : 3 * u], row[3 * u :]
        for j in range(2 * u):
            i_and_f[j] = i_and_f[j] * half + half
        for j in range(u):
            o[j] = o[j] * half + half
        i, f = row[:u], row[u : 2 * u]
        for j in range(u):
            cell[j] = f[j] * previous[j] + i[j] * g[j]


@_jit
def lstm_backward_step(
    dh: Any, dc: Any, a: Any, tanh_c: Any, c_prev: Any, dz: Any, units: int
) -> None:
    """Backpropagate one step from dL/dh and dL/dc to dL/dz; ``dc`` becomes dL/dc_prev.

    With ``i, f, g, o`` the activated gates (``a``) and ``tc = tanh(c)``::

        dc = dc + (1 - tc * tc) * (dh * o)
        dz_i = ((1 - i) * i) * (dc * g)
        dz_f = ((1 - f) * f) * (dc * c_prev)
        dz_g = (1 - g * g) * (dc * i)
        dz_o = ((1 - o) * o) * (dh * tc)
        dc_prev = dc * f
    """
    one = a.dtype.type(1)
    u = units
    for r in range(a.shape[0]):  # 1-D views per row: LLVM vectorizes the inner loop
        row, d_row, tc_row, previous = a[r], dz[r], tanh_c[r], c_prev[r]
        dh_row, dc_row = dh[r], dc[r]
        a_i, a_f, a_g, a_o = row[:u], row[u : 2 * u], row[2 * u : 3 * u], row[3 * u :]
        dz_i, dz_f = d_row[:u], d_row[u : 2 * u]
        dz_g, dz_o = d_row[2 * u : 3 * u], d_row[3 * u :]
        for j in range(u):
            i, f, g, o = a_i[j], a_f[j], a_g[j], a_o[j]
            tc = tc_row[j]
            d_h = dh_row[j]
            d_c = dc_row[j] + (one - tc * tc) * (d_h * o)
            dz_i[j] = ((one - i) * i) * (d_c * g)
            dz_f[j] = ((one - f) * f) * (d_c * previous[j])
            dz_g[j] = (one - g * g) * (d_c * i)
            dz_o[j] = ((one - o) * o) * (d_h * tc)
            dc_row[j] = d_c * f


@_jit
def gru_gates_in(rec: Any, bias: Any, has_bias: bool, xw: Any, a: Any, units: int) -> None:
    """``rec += bias`` (the recurrent bias), and ``a_zr = (xw_zr + rec_zr) * 0.5``.

    ``rec`` holds ``h @ recurrent_kernel``; afterwards ``np.tanh`` of ``a``'s z and r
    blocks gives ``2 sigmoid - 1`` of the update and reset gates.
    """
    half = a.dtype.type(0.5)
    rows = a.shape[0]
    width = 3 * units
    for r in range(rows):
        for j in range(width):
            v = rec[r, j] + bias[j] if has_bias else rec[r, j]
            rec[r, j] = v
            if j < 2 * units:
                a[r, j] = (xw[r, j] + v) * half


@_jit
def gru_candidate_in(a: Any, rec: Any, xw: Any, units: int) -> None:
    """Finish the z and r sigmoids (``0.5 a + 0.5``); ``a_h = r * rec_h + xw_h``."""
    half = a.dtype.type(0.5)
    rows = a.shape[0]
    u = units
    for r in range(rows):
        for j in range(u):
            a[r, j] = a[r, j] * half + half
            reset = a[r, u + j] * half + half
            a[r, u + j] = reset
            a[r, 2 * u + j] = reset * rec[r, 2 * u + j] + xw[r, 2 * u + j]


@_jit
def gru_state(a: Any, h_prev: Any, h: Any, units: int) -> None:
    """``h = z * h_prev + (1 - z) * hh`` from the activated gates ``a``."""
    one = a.dtype.type(1)
    u = units
    for r in range(a.shape[0]):  # 1-D views per row: LLVM vectorizes the inner loop
        z, hh, previous, out = a[r, :u], a[r, 2 * u : 3 * u], h_prev[r], h[r]
        for j in range(u):
            out[j] = z[j] * previous[j] + (one - z[j]) * hh[j]


@_jit
def gru_backward_step(
    dh: Any, a: Any, rec: Any, h_prev: Any, dz: Any, drec: Any, direct: Any, units: int
) -> None:
    """Backpropagate one GRU step (``reset_after``) from dL/dh.

    Writes dL/d(pre-activations) ``dz``, dL/d(h @ U + recurrent bias) ``drec`` and
    the gradient reaching ``h_prev`` directly, ``direct = dh * z``::

        dz_h = (1 - hh * hh) * ((1 - z) * dh)
        dz_z = ((1 - z) * z) * ((h_prev - hh) * dh)
        dz_r = ((1 - r) * r) * (dz_h * rec_h)
        drec = [dz_z, dz_r, dz_h * r]
    """
    one = a.dtype.type(1)
    u = units
    for r in range(a.shape[0]):  # 1-D views per row: LLVM vectorizes the inner loop
        row, d_row, rec_h, previous = a[r], dh[r], rec[r, 2 * u :], h_prev[r]
        a_z, a_r, a_h = row[:u], row[u : 2 * u], row[2 * u :]
        dz_row, drec_row, direct_row = dz[r], drec[r], direct[r]
        dz_z, dz_r, dz_hh = dz_row[:u], dz_row[u : 2 * u], dz_row[2 * u :]
        drec_z, drec_r, drec_h = drec_row[:u], drec_row[u : 2 * u], drec_row[2 * u :]
        for j in range(u):
            z, reset, hh, d = a_z[j], a_r[j], a_h[j], d_row[j]
            d_hh = (one - hh * hh) * ((one - z) * d)
            d_z = ((one - z) * z) * ((previous[j] - hh) * d)
            d_r = ((one - reset) * reset) * (d_hh * rec_h[j])
            direct_row[j] = d * z
            dz_z[j] = d_z
            dz_r[j] = d_r
            dz_hh[j] = d_hh
            drec_z[j] = d_z
            drec_r[j] = d_r
            drec_h[j] = d_hh * reset
