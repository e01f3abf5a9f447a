"""LSTM: the long short-term memory layer, Keras's gate order and weight layout."""

from __future__ import annotations

from typing import Any

import numpy as np
from attrs import define, field

from loopkit import activations as _activations
from loopkit.activations.smooth import Sigmoid, Tanh
from loopkit.layers.recurrent import _kernels as kernels
from loopkit.layers.recurrent.base import Recurrent, activate, as_activation
from loopkit.typing import FloatArray, Shape

__all__ = ["LSTM"]


@define(eq=False, slots=False)
class LSTM(Recurrent):
    """Long short-term memory (Hochreiter and Schmidhuber, 1997), as Keras's ``LSTM``.

    Per step, with ``z = x_t @ kernel + h @ recurrent_kernel + bias`` split into
    four blocks of ``units`` in Keras's order i, f, c, o::

        i, f, o = recurrent_activation(z_i), recurrent_activation(z_f), ...(z_o)
        c = f * c + i * activation(z_c)
        h = o * activation(c)

    ``kernel`` is ``(features, 4*units)``, ``recurrent_kernel`` ``(units, 4*units)``
    and ``bias`` ``(4*units,)``, so weights copied from Keras give the same outputs.
    See ``Recurrent`` for the arguments shared with SimpleRNN and GRU.

    Args:
        recurrent_activation: Activation of the gates i, f, o (``"sigmoid"``).
        unit_forget_bias: Start the forget gate's bias at 1 (Jozefowicz et al., 2015).
    """

    gates = 4
    state_names = ("h", "c")
    compiled_kernels = True
    """Run the steps with the compiled kernels when the activations are Keras's
    defaults (tanh, sigmoid); False forces the NumPy cell (for comparisons)."""

    recurrent_activation: _activations.ActivationFunction = field(
        default=_activations.sigmoid, converter=as_activation, kw_only=True
    )
    unit_forget_bias: bool = field(default=True, kw_only=True)

    def build(self, input_shape: Shape) -> None:
        super().build(input_shape)
        if self.bias is not None and self.unit_forget_bias:
            self.bias.value[self.units : 2 * self.units] = 1.0

    def _sequences(self, steps: int, n: int) -> tuple[FloatArray, ...]:
        """The per-step arrays forward fills and backward reads: H, C, z, a, tanh(c)."""
        u, width = self.units, 4 * self.units
        return (
            self.seq_buffer("h", (steps + 1, n, u)),
            self.seq_buffer("c", (steps + 1, n, u)),
            self.seq_buffer("z", (steps, n, width)),  # pre-activations
            self.seq_buffer("a", (steps, n, width)),  # activated i, f, g, o
            self.seq_buffer("tanh_c", (steps, n, u)),
        )

    def run_forward(self, xw: FloatArray, training: bool) -> FloatArray:
        steps, n, _ = xw.shape
        h, c, z, a, tc = self._sequences(steps, n)
        self.start_state(0, h[0])
        self.start_state(1, c[0])
        if self._steps_project:
            self._run_fused(xw, h, c, a, tc)
        else:
            self._run_cells(xw, h, c, z, a, tc)
        self.final_states = [h[steps], c[steps]]
        return h

    def _run_fused(
        self, xh: FloatArray, h: FloatArray, c: FloatArray, a: FloatArray, tc: FloatArray
    ) -> None:
        """Float32 steps: ``[x_t, h] @ [kernel; recurrent_kernel]``, then one fused pass.

        ``xh[t]`` holds ``x_t`` and the state multiplied at step ``t`` (with the
        recurrent dropout), which backward reads for both kernels' gradients.
        """
        steps, u = xh.shape[0], self.units
        features = xh.shape[2] - u
        kernels_stacked = self.buffer("kernels_stacked", (features + u, 4 * u))
        np.copyto(kernels_stacked[:features], self.kernel.value)
        np.copyto(kernels_stacked[features:], self.recurrent_kernel.value)
        bias = self.input_bias()
        if bias is None:
            bias = self.buffer("zero_bias", (4 * u,))
            bias.fill(0.0)
        keep = self._state_keep
        for t in range(steps):
            state_in = xh[t, :, features:]
            if keep is None:
                np.copyto(state_in, h[t])
            else:
                np.multiply(h[t], keep, out=state_in)
            np.matmul(xh[t], kernels_stacked, out=a[t])
            kernels.lstm_step(a[t], bias, c[t], c[t + 1], tc[t], h[t + 1], u)
            self.carry_state(t, h[t + 1], h[t])
            self.carry_state(t, c[t + 1], c[t])

    def _run_cells(
        self,
        xw: FloatArray,
        h: FloatArray,
        c: FloatArray,
        z: FloatArray,
        a: FloatArray,
        tc: FloatArray,
    ) -> None:
        """Steps over the projected inputs: compiled (float64) or NumPy cells."""
        steps, n, _ = xw.shape
        u = self.units
        keep = self._state_keep
        hd = self.seq_buffer("h_dropped", (steps, n, u)) if keep is not None else h
        ig = self.buffer("ig", (n, u))
        act, rec = self.activation, self.recurrent_activation
        kernel = self.recurrent_kernel.value
        fast = self._compiled
        for t in range(steps):
            hp = h[t] if keep is None else np.multiply(h[t], keep, out=hd[t])
            zt, at = z[t], a[t]
            if fast:  # three passes for the gates and the cell
                np.matmul(hp, kernel, out=at)
                kernels.lstm_gates_in(at, xw[t], u)
                np.tanh(at, out=at)
                kernels.lstm_gates_out(at, c[t], c[t + 1], u)
                np.tanh(c[t + 1], out=tc[t])
                np.multiply(at[:, 3 * u :], tc[t], out=h[t + 1])
                self.carry_state(t, h[t + 1], h[t])
                self.carry_state(t, c[t + 1], c[t])
                continue
            np.matmul(hp, kernel, out=zt)
            zt += xw[t]
            activate(rec, zt[:, : 2 * u], at[:, : 2 * u])
            activate(act, zt[:, 2 * u : 3 * u], at[:, 2 * u : 3 * u])
            activate(rec, zt[:, 3 * u :], at[:, 3 * u :])
            np.multiply(at[:, u : 2 * u], c[t], out=c[t + 1])
            np.multiply(at[:, :u], at[:, 2 * u : 3 * u], out=ig)
            c[t + 1] += ig
            activate(act, c[t + 1], tc[t])
            np.multiply(at[:, 3 * u :], tc[t], out=h[t + 1])
            self.carry_state(t, h[t + 1], h[t])
            self.carry_state(t, c[t + 1], c[t])

    def steps_project_inputs(self, dtype: Any) -> bool:
        """Float32 with Keras's activations: one product and one fused pass a step."""
        return self._compiled and np.dtype(dtype) == np.float32

    @property
    def _compiled(self) -> bool:
        """Whether the compiled kernels run the steps (Keras's default activations)."""
        return (
            self.compiled_kernels
            and isinstance(self.activation, Tanh)
            and isinstance(self.recurrent_activation, Sigmoid)
        )

    def run_backward(self, dh_out: FloatArray | None, dh_last: FloatArray) -> FloatArray:
        n, u, width = dh_last.shape[0], self.units, 4 * self.units
        steps = self._x_shape[1]
        h, c, _, a, tc = self._sequences(steps, n)
        keep = self._state_keep
        dz = self.seq_buffer("dz", (steps, n, width))
        dc = self.buffer("dc", (n, u))
        carry_h, carry_c = self.buffer("carry_h", (n, u)), self.buffer("carry_c", (n, u))
        dh = dh_last  # dL/dH[t+1] from later steps and the last output
        dc_last = self.final_state_gradient(1)  # the returned cell state's (return_state)
        if dc_last is None:
            dc.fill(0.0)
        else:
            np.copyto(dc, dc_last)
        compiled = self._compiled
        kernel_t = self.recurrent_kernel_transposed()
        for t in range(steps - 1, -1, -1):
            if dh_out is not None:
                dh += dh_out[t]
            skip_h = self.split_gradient(t, dh, carry_h)
            skip_c = self.split_gradient(t, dc, carry_c)
            if compiled:
                kernels.lstm_backward_step(dh, dc, a[t], tc[t], c[t], dz[t], u)
            else:
                self._backward_cell(t, dh, dc, steps)
            np.matmul(dz[t], kernel_t, out=dh)  # dL/dh_prev through the recurrent product
            if keep is not None:
                dh *= keep
            if skip_h is not None and skip_c is not None:
                dh += skip_h
                dc += skip_c
        if self.trainable and self._steps_project:  # both kernels in one product
            xh = self.seq_buffer("xh", (steps, n, self._x_shape[2] + u))
            grads = self.buffer("kernels_stacked_grad", (xh.shape[2], width))
            np.matmul(xh.reshape(-1, xh.shape[2]).T, dz.reshape(-1, width), out=grads)
            np.copyto(self.kernel.grad, grads[: self._x_shape[2]])
            np.copyto(self.recurrent_kernel.grad, grads[self._x_shape[2] :])
        elif self.trainable:
            hd = h[:steps] if keep is None else self.seq_buffer("h_dropped", (steps, n, u))
            np.matmul(
                hd.reshape(-1, u).T, dz.reshape(-1, width), out=self.recurrent_kernel.grad
            )
        self.initial_state_gradients = [dh, dc]
        return dz

    def _backward_cell(self, t: int, dh: FloatArray, dc: FloatArray, steps: int) -> None:
        """NumPy step of any activations: write dz[t]; turn ``dc`` into dL/dc_prev."""
        n, u = dh.shape
        width = 4 * u
        _, c, z, a, tc = self._sequences(steps, n)
        at, zt, dzt = a[t], z[t], self.seq_buffer("dz", (steps, n, width))[t]
        act, rec = self.activation, self.recurrent_activation
        da, dtmp = self.buffer("da", (n, width)), self.buffer("dtmp", (n, u))
        # h = o * act(c)
        np.multiply(dh, tc[t], out=da[:, 3 * u :])
        np.multiply(dh, at[:, 3 * u :], out=dtmp)
        act.backward(dtmp, c[t + 1], tc[t], dtmp)
        dc += dtmp
        # c = f * c_prev + i * g
        np.multiply(dc, at[:, 2 * u : 3 * u], out=da[:, :u])
        np.multiply(dc, c[t], out=da[:, u : 2 * u])
        np.multiply(dc, at[:, :u], out=da[:, 2 * u : 3 * u])
        dc *= at[:, u : 2 * u]  # dL/dc_prev
        ifo, g, o = slice(0, 2 * u), slice(2 * u, 3 * u), slice(3 * u, width)
        rec.backward(da[:, ifo], zt[:, ifo], at[:, ifo], dzt[:, ifo])
        act.backward(da[:, g], zt[:, g], at[:, g], dzt[:, g])
        rec.backward(da[:, o], zt[:, o], at[:, o], dzt[:, o])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["activation"] = _activations.serialize(self.activation)
        config["recurrent_activation"] = _activations.serialize(self.recurrent_activation)
        return config
