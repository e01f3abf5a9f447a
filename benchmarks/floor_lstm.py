"""The LSTM floor: LSTM(units) -> Dense(10) softmax with Adam, by hand in NumPy.

The same design as the MLP floor (``benchmarks.floor``): float32, flat parameter,
gradient and moment buffers, everything allocated once, ``out=`` everywhere. The
sequence is copied once into a time-major buffer, every step's input projection is
one matrix product, the step loop does one ``h @ U`` product and NumPy's in-place
ufuncs for the gates (the sigmoid as ``0.5 tanh(z/2) + 0.5``, so one ``np.tanh``
serves all four gate blocks); backpropagation through time mirrors it, and the
kernels' gradients are one product each over all steps. No dx for the input.
"""

from __future__ import annotations

import numpy as np

from benchmarks.floor import F32, Phases, _FlatAdam, _NoPhases, _SoftmaxCE, glorot

__all__ = ["FloorLSTM"]


class FloorLSTM:
    """Hand-written LSTM classifier: Keras's gate order (i, f, c, o), last output.

    Args:
        input_shape: ``(steps, features)``.
        units: LSTM width.
        classes: Dense outputs.
        batch_size: Largest batch; buffers are this tall.
        seed: Seeds the weights (Glorot kernels, orthogonal recurrent kernel,
            forget bias 1).
    """

    def __init__(
        self, input_shape: tuple[int, ...], units: int, classes: int, batch_size: int,
        seed: int = 0,
    ) -> None:  # fmt: skip
        steps, features = input_shape
        rng = np.random.default_rng(seed)
        u, width = units, 4 * units
        self.opt = _FlatAdam(
            [(features, width), (u, width), (width,), (u, classes), (classes,)]
        )
        self.w, self.u, self.b, self.wd, self.bd = self.opt.values
        self.dw, self.du, self.db, self.dwd, self.dbd = self.opt.gradients
        self.w[...] = glorot(rng, features, width, (features, width))
        q, _ = np.linalg.qr(rng.standard_normal((width, u)))
        self.u[...] = q.T.astype(F32)
        self.b[u : 2 * u] = 1.0
        self.wd[...] = glorot(rng, u, classes, (u, classes))
        n, t = batch_size, steps
        # time-major buffers are flat: a short last batch views their leading part
        # as (steps, n, ...), contiguous, so reshapes for the big products are views
        self.flat = {
            "xt": np.empty(t * n * features, F32),
            "zs": np.empty(t * n * width, F32),  # activated gates per step
            "hs": np.empty((t + 1) * n * u, F32),
            "cs": np.empty((t + 1) * n * u, F32),
            "tcs": np.empty(t * n * u, F32),
            "dz": np.empty(t * n * width, F32),
        }
        self.tmp = np.empty((n, u), F32)
        self.der = np.empty((n, width), F32)
        self.dh = np.empty((n, u), F32)
        self.dc = np.empty((n, u), F32)
        self.logits = np.empty((n, classes), F32)
        self.dlogits = np.empty((n, classes), F32)
        self.ce = _SoftmaxCE(n)
        self.xbuf = np.empty((n, *input_shape), F32)
        self.ybuf = np.empty(n, np.int64)
        self.units, self.batch_size = u, n
        self.timer: Phases = _NoPhases()

    def _seq(self, key: str, steps: int, n: int, width: int) -> np.ndarray:
        return self.flat[key][: steps * n * width].reshape(steps, n, width)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Return the logits of ``x`` (a view of an owned buffer)."""
        n, steps, features = x.shape
        u, t = self.units, self.timer
        xt = self._seq("xt", steps, n, features)
        zs = self._seq("zs", steps, n, 4 * u)
        hs, cs = self._seq("hs", steps + 1, n, u), self._seq("cs", steps + 1, n, u)
        tcs = self._seq("tcs", steps, n, u)
        np.copyto(xt, x.transpose(1, 0, 2))
        xw = self._seq("dz", steps, n, 4 * u)  # shares dz's memory until backward
        np.matmul(xt.reshape(-1, features), self.w, out=xw.reshape(-1, 4 * u))
        xw += self.b
        t.mark("matmul")
        hs[0] = 0.0
        cs[0] = 0.0
        tmp = self.tmp[:n]
        for s in range(steps):
            z = zs[s]
            np.matmul(hs[s], self.u, out=z)
            t.mark("matmul")
            z += xw[s]
            z[:, : 2 * u] *= 0.5
            z[:, 3 * u :] *= 0.5
            np.tanh(z, out=z)
            z[:, : 2 * u] *= 0.5
            z[:, : 2 * u] += 0.5
            z[:, 3 * u :] *= 0.5
            z[:, 3 * u :] += 0.5
            np.multiply(z[:, u : 2 * u], cs[s], out=cs[s + 1])
            np.multiply(z[:, :u], z[:, 2 * u : 3 * u], out=tmp)
            cs[s + 1] += tmp
            np.tanh(cs[s + 1], out=tcs[s])
            np.multiply(z[:, 3 * u :], tcs[s], out=hs[s + 1])
            t.mark("elementwise")
        logits = self.logits[:n]
        np.matmul(hs[steps], self.wd, out=logits)
        logits += self.bd
        t.mark("matmul")
        return logits

    def train_on_batch(self, x: np.ndarray, y: np.ndarray) -> float:
        """One step on the batch ``x``, ``y``; return its loss."""
        n, steps, features = x.shape
        u, t = self.units, self.timer
        logits = self.forward(x)
        dlogits = self.dlogits[:n]
        loss = self.ce(logits, y, dlogits)
        t.mark("loss")
        hs, cs = self._seq("hs", steps + 1, n, u), self._seq("cs", steps + 1, n, u)
        tcs, zs = self._seq("tcs", steps, n, u), self._seq("zs", steps, n, 4 * u)
        np.matmul(hs[steps].T, dlogits, out=self.dwd)
        np.sum(dlogits, axis=0, out=self.dbd)
        dh, dc, tmp = self.dh[:n], self.dc[:n], self.tmp[:n]
        dz = self._seq("dz", steps, n, 4 * u)
        der = self.der[:n]
        np.matmul(dlogits, self.wd.T, out=dh)
        t.mark("matmul")
        dc[...] = 0.0
        for s in range(steps - 1, -1, -1):
            a, d = zs[s], dz[s]
            i, f, g, o = a[:, :u], a[:, u : 2 * u], a[:, 2 * u : 3 * u], a[:, 3 * u :]
            np.multiply(dh, tcs[s], out=d[:, 3 * u :])  # dL/do
            np.square(tcs[s], out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            dc += tmp
            np.multiply(dc, g, out=d[:, :u])  # dL/di
            np.multiply(dc, cs[s], out=d[:, u : 2 * u])  # dL/df
            np.multiply(dc, i, out=d[:, 2 * u : 3 * u])  # dL/dg
            dc *= f
            # through the activations: sigmoid' = y (1 - y), tanh' = 1 - y^2
            np.subtract(1.0, a, out=der)
            der *= a
            np.square(g, out=der[:, 2 * u : 3 * u])
            np.subtract(1.0, der[:, 2 * u : 3 * u], out=der[:, 2 * u : 3 * u])
            d *= der
            t.mark("elementwise")
            np.matmul(d, self.u.T, out=dh)
            t.mark("matmul")
        np.matmul(hs[:steps].reshape(-1, u).T, dz.reshape(-1, 4 * u), out=self.du)
        xt = self._seq("xt", steps, n, features)
        np.matmul(xt.reshape(-1, features).T, dz.reshape(-1, 4 * u), out=self.dw)
        t.mark("matmul")
        np.sum(dz.reshape(-1, 4 * u), axis=0, out=self.db)
        t.mark("elementwise")
        self.opt.step()
        t.mark("adam")
        return loss

    def fit_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray) -> float:
        """One epoch over ``x`` in ``order`` (a permutation); return the mean loss."""
        size, total, t = self.batch_size, 0.0, self.timer
        for start in range(0, len(order), size):
            index = order[start : start + size]
            n = len(index)
            t.start()
            xb, yb = self.xbuf[:n], self.ybuf[:n]
            np.take(x, index, axis=0, out=xb)
            np.take(y, index, out=yb)
            t.mark("gather")
            total += self.train_on_batch(xb, yb) * n
        return total / len(order)

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean loss over ``x`` (at most ``batch_size`` samples at a time)."""
        total = 0.0
        for start in range(0, len(x), self.batch_size):
            xb, yb = x[start : start + self.batch_size], y[start : start + self.batch_size]
            grad = self.dlogits[: len(xb)]
            total += self.ce(self.forward(xb), yb, grad) * len(xb)
        return total / len(x)
