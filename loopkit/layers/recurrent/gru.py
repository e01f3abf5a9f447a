"""GRU: the gated recurrent unit, Keras's gate order, bias layout and reset_after."""

from __future__ import annotations

from typing import Any

import numpy as np
from attrs import define, field

from loopkit import activations as _activations
from loopkit.activations.smooth import Sigmoid, Tanh
from loopkit.layers.recurrent import _kernels as kernels
from loopkit.layers.recurrent.base import Recurrent, activate, as_activation
from loopkit.typing import FloatArray, Shape

__all__ = ["GRU"]


@define(eq=False, slots=False)
class GRU(Recurrent):
    """Gated recurrent unit (Cho et al., 2014), as Keras's ``GRU``.

    Per step, with the kernels split into blocks of ``units`` in Keras's order
    z (update), r (reset), h (candidate) and ``x_* = x_t @ kernel_* + input_bias_*``::

        z = recurrent_activation(x_z + h @ U_z + b_z)
        r = recurrent_activation(x_r + h @ U_r + b_r)
        hh = activation(x_h + r * (h @ U_h + b_h))      # reset_after=True
        hh = activation(x_h + (r * h) @ U_h)            # reset_after=False
        h = z * h + (1 - z) * hh

    ``kernel`` is ``(features, 3*units)``, ``recurrent_kernel`` ``(units, 3*units)``;
    ``bias`` is ``(2, 3*units)`` (input bias, then recurrent bias) with
    ``reset_after`` and ``(3*units,)`` without, as in Keras. See ``Recurrent`` for
    the arguments shared with SimpleRNN and LSTM.

    Args:
        recurrent_activation: Activation of the gates z and r (``"sigmoid"``).
        reset_after: Apply the reset gate after the recurrent product (Keras's
            default and cuDNN's convention).
    """

    gates = 3
    compiled_kernels = True
    """Run the steps with the compiled kernels for Keras's defaults (tanh, sigmoid,
    ``reset_after``); False forces the NumPy cell (for comparisons)."""

    recurrent_activation: _activations.ActivationFunction = field(
        default=_activations.sigmoid, converter=as_activation, kw_only=True
    )
    reset_after: bool = field(default=True, kw_only=True)

    def bias_shape(self) -> Shape:
        width = 3 * self.units
        return (2, width) if self.reset_after else (width,)

    def input_bias(self) -> FloatArray | None:
        if self.bias is None:
            return None
        return self.bias.value[0] if self.reset_after else self.bias.value

    def input_bias_grad(self) -> FloatArray:
        assert self.bias is not None
        return self.bias.grad[0] if self.reset_after else self.bias.grad

    @property
    def _compiled(self) -> bool:
        """Whether the compiled kernels run the steps."""
        return (
            self.compiled_kernels
            and self.reset_after
            and isinstance(self.activation, Tanh)
            and isinstance(self.recurrent_activation, Sigmoid)
        )

    def _sequences(self, steps: int, n: int) -> tuple[FloatArray, ...]:
        """Per-step arrays: H, pre-activations, activations, recurrent products."""
        u, width = self.units, 3 * self.units
        return (
            self.seq_buffer("h", (steps + 1, n, u)),
            self.seq_buffer("z", (steps, n, width)),
            self.seq_buffer("a", (steps, n, width)),  # z, r, hh
            # reset_after: h @ U + recurrent bias; else: z/r columns unused, and
            # the h columns hold r * h (the input of the candidate's product)
            self.seq_buffer("rec", (steps, n, width)),
        )

    def run_forward(self, xw: FloatArray, training: bool) -> FloatArray:
        steps, n, _ = xw.shape
        u = self.units
        zr, hc = slice(0, 2 * u), slice(2 * u, 3 * u)
        h, z, a, rec = self._sequences(steps, n)
        keep = self._state_keep
        hd = self.seq_buffer("h_dropped", (steps, n, u)) if keep is not None else h
        tmp = self.buffer("tmp", (n, u))
        self.start_state(0, h[0])
        act, ract = self.activation, self.recurrent_activation
        kernel = self.recurrent_kernel.value
        rec_bias = None if self.bias is None or not self.reset_after else self.bias.value[1]
        compiled = self._compiled
        no_bias = kernel[0]  # never read: has_bias is False
        for t in range(steps):
            hp = h[t] if keep is None else np.multiply(h[t], keep, out=hd[t])
            zt, at, rt = z[t], a[t], rec[t]
            if compiled:  # three compiled passes and two tanh calls
                np.matmul(hp, kernel, out=rt)
                bias = no_bias if rec_bias is None else rec_bias
                kernels.gru_gates_in(rt, bias, rec_bias is not None, xw[t], at, u)
                np.tanh(at[:, zr], out=at[:, zr])
                kernels.gru_candidate_in(at, rt, xw[t], u)
                np.tanh(at[:, hc], out=at[:, hc])
                kernels.gru_state(at, h[t], h[t + 1], u)
                self.carry_state(t, h[t + 1], h[t])
                continue
            if self.reset_after:
                np.matmul(hp, kernel, out=rt)
                if rec_bias is not None:
                    rt += rec_bias
                np.add(xw[t][:, zr], rt[:, zr], out=zt[:, zr])
                activate(ract, zt[:, zr], at[:, zr])
                np.multiply(at[:, u : 2 * u], rt[:, hc], out=zt[:, hc])
            else:
                np.matmul(hp, kernel[:, zr], out=zt[:, zr])
                zt[:, zr] += xw[t][:, zr]
                activate(ract, zt[:, zr], at[:, zr])
                np.multiply(at[:, u : 2 * u], hp, out=rt[:, hc])
                np.matmul(rt[:, hc], kernel[:, hc], out=zt[:, hc])
            zt[:, hc] += xw[t][:, hc]
            activate(act, zt[:, hc], at[:, hc])
            # h = z * h_prev + (1 - z) * hh
            np.subtract(1.0, at[:, :u], out=tmp)
            tmp *= at[:, hc]
            np.multiply(at[:, :u], h[t], out=h[t + 1])
            h[t + 1] += tmp
            self.carry_state(t, h[t + 1], h[t])
        self.final_states = [h[steps]]
        return h

    def run_backward(self, dh_out: FloatArray | None, dh_last: FloatArray) -> FloatArray:
        n, u, width = dh_last.shape[0], self.units, 3 * self.units
        steps = self._x_shape[1]
        zr, hc = slice(0, 2 * u), slice(2 * u, 3 * u)
        h, z, a, rec = self._sequences(steps, n)
        act, ract = self.activation, self.recurrent_activation
        kernel, keep = self.recurrent_kernel.value, self._state_keep
        dz = self.seq_buffer("dz", (steps, n, width))  # dL/d(pre-activations)
        # dL/d(recurrent products): reset_after, (h @ U + b) per step; else the z/r
        # columns are dL/d(h @ U_zr) and the h columns dL/d((r * h) @ U_h)
        drec = self.seq_buffer("drec", (steps, n, width)) if self.reset_after else dz
        da = self.buffer("da", (n, width))
        direct = self.buffer("direct", (n, u))
        drh = self.buffer("drh", (n, u))
        carry = self.buffer("carry", (n, u))
        dh = dh_last
        compiled = self._compiled
        kernel_t = self.recurrent_kernel_transposed()
        for t in range(steps - 1, -1, -1):
            if dh_out is not None:
                dh += dh_out[t]
            skip = self.split_gradient(t, dh, carry)
            at, zt, dzt = a[t], z[t], dz[t]
            if compiled:
                kernels.gru_backward_step(dh, at, rec[t], h[t], dzt, drec[t], direct, u)
                np.matmul(drec[t], kernel_t, out=dh)
                if keep is not None:
                    dh *= keep
                dh += direct
                if skip is not None:
                    dh += skip
                continue
            hp = h[t] if keep is None else self.seq_buffer("h_dropped", (steps, n, u))[t]
            # h = z * h_prev + (1 - z) * hh
            np.subtract(h[t], at[:, hc], out=da[:, :u])
            da[:, :u] *= dh
            np.subtract(1.0, at[:, :u], out=da[:, hc])
            da[:, hc] *= dh
            np.multiply(dh, at[:, :u], out=direct)
            act.backward(da[:, hc], zt[:, hc], at[:, hc], dzt[:, hc])
            if self.reset_after:  # zt_h = x_h + r * rec_h
                np.multiply(dzt[:, hc], rec[t][:, hc], out=da[:, u : 2 * u])
                np.multiply(dzt[:, hc], at[:, u : 2 * u], out=drec[t][:, hc])
            else:  # zt_h = x_h + (r * h_prev) @ U_h
                np.matmul(dzt[:, hc], kernel[:, hc].T, out=drh)
                np.multiply(drh, hp, out=da[:, u : 2 * u])
            ract.backward(da[:, zr], zt[:, zr], at[:, zr], dzt[:, zr])
            if self.reset_after:
                drec[t][:, zr] = dzt[:, zr]
                np.matmul(drec[t], kernel_t, out=dh)
            else:
                np.matmul(dzt[:, zr], kernel[:, zr].T, out=dh)
                drh *= at[:, u : 2 * u]
                dh += drh
            if keep is not None:
                dh *= keep
            dh += direct
            if skip is not None:
                dh += skip
        if self.trainable:
            self._recurrent_grads(h, rec, dz, drec, steps, n)
        self.initial_state_gradients = [dh]
        return dz

    def _recurrent_grads(
        self,
        h: FloatArray,
        rec: FloatArray,
        dz: FloatArray,
        drec: FloatArray,
        steps: int,
        n: int,
    ) -> None:
        """Write the recurrent kernel and bias gradients, all steps at once."""
        u, width = self.units, 3 * self.units
        keep = self._state_keep
        hd = h[:steps] if keep is None else self.seq_buffer("h_dropped", (steps, n, u))
        grad = self.recurrent_kernel.grad
        if self.reset_after:
            np.matmul(hd.reshape(-1, u).T, drec.reshape(-1, width), out=grad)
            if self.bias is not None:
                ones = self.buffer("ones", (steps * n,))
                ones.fill(1.0)
                np.matmul(ones, drec.reshape(-1, width), out=self.bias.grad[1])
            return
        grad[:, : 2 * u] = hd.reshape(-1, u).T @ dz[:, :, : 2 * u].reshape(-1, 2 * u)
        grad[:, 2 * u :] = rec[:, :, 2 * u :].reshape(-1, u).T @ dz[:, :, 2 * u :].reshape(
            -1, u
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["activation"] = _activations.serialize(self.activation)
        config["recurrent_activation"] = _activations.serialize(self.recurrent_activation)
        return config
