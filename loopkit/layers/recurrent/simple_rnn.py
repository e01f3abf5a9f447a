"""SimpleRNN: the fully connected recurrent layer, ``h = activation(x W + h U + b)``."""

from __future__ import annotations

from typing import Any

import numpy as np
from attrs import define

from loopkit import activations as _activations
from loopkit.layers.recurrent.base import Recurrent, activate
from loopkit.typing import FloatArray

__all__ = ["SimpleRNN"]


@define(eq=False, slots=False)
class SimpleRNN(Recurrent):
    """Fully connected recurrent layer, as Keras's ``SimpleRNN``.

    Per step ``h = activation(x_t @ kernel + bias + h @ recurrent_kernel)`` with
    ``kernel`` ``(features, units)``, ``recurrent_kernel`` ``(units, units)`` and
    ``bias`` ``(units,)``. See ``Recurrent`` for the arguments.
    """

    def run_forward(self, xw: FloatArray, training: bool) -> FloatArray:
        steps, n, u = xw.shape
        h = self.seq_buffer("h", (steps + 1, n, u))
        z = self.seq_buffer("z", (steps, n, u))
        keep = self._state_keep
        hd = self.seq_buffer("h_dropped", (steps, n, u)) if keep is not None else h
        self.start_state(0, h[0])
        kernel = self.recurrent_kernel.value
        for t in range(steps):
            hp = h[t] if keep is None else np.multiply(h[t], keep, out=hd[t])
            np.matmul(hp, kernel, out=z[t])
            z[t] += xw[t]
            activate(self.activation, z[t], h[t + 1])
            self.carry_state(t, h[t + 1], h[t])
        self.final_states = [h[steps]]
        return h

    def run_backward(self, dh_out: FloatArray | None, dh_last: FloatArray) -> FloatArray:
        n, u = dh_last.shape
        steps = self._x_shape[1]
        h = self.seq_buffer("h", (steps + 1, n, u))
        z = self.seq_buffer("z", (steps, n, u))
        dz = self.seq_buffer("dz", (steps, n, u))
        keep = self._state_keep
        carry = self.buffer("carry", (n, u))
        dh = dh_last
        kernel_t = self.recurrent_kernel_transposed()
        for t in range(steps - 1, -1, -1):
            if dh_out is not None:
                dh += dh_out[t]
            skip = self.split_gradient(t, dh, carry)
            self.activation.backward(dh, z[t], h[t + 1], dz[t])
            np.matmul(dz[t], kernel_t, out=dh)
            if keep is not None:
                dh *= keep
            if skip is not None:
                dh += skip
        if self.trainable:
            hd = h[:steps] if keep is None else self.seq_buffer("h_dropped", (steps, n, u))
            np.matmul(
                hd.reshape(-1, u).T, dz.reshape(-1, u), out=self.recurrent_kernel.grad
            )
        self.initial_state_gradients = [dh]
        return dz

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["activation"] = _activations.serialize(self.activation)
        return config
