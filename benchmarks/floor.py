"""The floor: the workloads' math written by hand in NumPy, the bar for a NumPy framework.

Everything is float32 and allocated once: the parameters live in one flat buffer
(so are their gradients and Adam's two moments), every activation and gradient
buffer is sized for the largest batch and sliced for the last partial one, every
ufunc writes in place (``out=``), softmax and cross-entropy are fused into one
gradient ``(softmax(z) - onehot(y)) / n``, the first layer's ``dx`` is skipped,
and a shuffled batch is gathered with ``np.take`` into a reused buffer. Adam
follows Keras's equations on the whole flat buffer in a dozen ufunc calls:
``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``, ``m += (g - m)(1 - b1)``,
``v += (g^2 - v)(1 - b2)``, ``w -= lr_t m / (sqrt(v) + eps)``.

The conv floor runs the same im2col design: ``sliding_window_view`` windows are
copied into a reused column matrix and multiplied by the kernel in one matmul;
``dx`` goes back by one strided add per kernel offset (col2im).

``timer``: an optional ``Phases`` object; when given, each step adds its time per
phase (gather, matmul, elementwise, loss, adam) for the anatomy table.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["FloorConv", "FloorMLP", "Phases", "glorot"]

F32 = np.float32


class Phases:
    """Accumulates seconds per phase of a step (the floor's anatomy)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = 0.0

    def start(self) -> None:
        self._last = time.perf_counter()

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._last
        self._last = now


class _NoPhases(Phases):
    def start(self) -> None:
        pass

    def mark(self, phase: str) -> None:
        pass


def glorot(
    rng: np.random.Generator, fan_in: int, fan_out: int, shape: tuple[int, ...]
) -> np.ndarray:
    """Glorot-uniform weights (Keras's default kernel initializer)."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(F32)


class _FlatAdam:
    """Parameters, gradients and Adam's moments in flat float32 buffers."""

    def __init__(self, shapes: list[tuple[int, ...]], lr: float = 1e-3) -> None:
        sizes = [math.prod(s) for s in shapes]
        total = sum(sizes)
        self.params = np.zeros(total, F32)
        self.grads = np.zeros(total, F32)
        self.m = np.zeros(total, F32)
        self.v = np.zeros(total, F32)
        self.scratch = np.empty(total, F32)
        self.lr, self.b1, self.b2, self.eps = lr, 0.9, 0.999, 1e-7
        self.t = 0
        self.values: list[np.ndarray] = []
        self.gradients: list[np.ndarray] = []
        offset = 0
        for shape, size in zip(shapes, sizes, strict=True):
            self.values.append(self.params[offset : offset + size].reshape(shape))
            self.gradients.append(self.grads[offset : offset + size].reshape(shape))
            offset += size

    def step(self) -> None:
        """One Adam update of the whole flat buffer: twelve ufunc calls."""
        self.t += 1
        b1, b2 = self.b1, self.b2
        lr_t = self.lr * math.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        g, m, v, s = self.grads, self.m, self.v, self.scratch
        np.subtract(g, m, out=s)
        s *= 1.0 - b1
        m += s
        np.square(g, out=s)
        s -= v
        s *= 1.0 - b2
        v += s
        np.sqrt(v, out=s)
        s += self.eps
        np.divide(m, s, out=s)
        s *= lr_t
        self.params -= s


class _SoftmaxCE:
    """Fused softmax + sparse categorical cross-entropy: loss and dL/dlogits in place."""

    def __init__(self, batch_size: int) -> None:
        self.rowmax = np.empty((batch_size, 1), F32)
        self.rowsum = np.empty((batch_size, 1), F32)
        self.rows = np.arange(batch_size)

    def __call__(self, logits: np.ndarray, y: np.ndarray, grad: np.ndarray) -> float:
        """Return the mean loss; write ``(softmax(logits) - onehot(y)) / n`` into ``grad``.

        ``logits`` is shifted in place by its row maximum.
        """
        n = len(logits)
        mx, s, rows = self.rowmax[:n], self.rowsum[:n], self.rows[:n]
        np.max(logits, axis=1, keepdims=True, out=mx)
        logits -= mx
        np.exp(logits, out=grad)
        np.sum(grad, axis=1, keepdims=True, out=s)
        picked = logits[rows, y]
        loss = float(np.log(s).sum() - picked.sum()) / n
        grad /= s
        grad[rows, y] -= 1.0
        grad *= 1.0 / n
        return loss


class FloorMLP:
    """Hand-written MLP: ReLU hidden layers, softmax + sparse CE, Adam, flat buffers.

    Args:
        widths: ``(in, hidden..., classes)``.
        batch_size: Largest batch; buffers are this tall.
        seed: Seeds the initial weights (Glorot uniform, zero biases).
    """

    def __init__(self, widths: tuple[int, ...], batch_size: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        pairs = list(itertools.pairwise(widths))
        shapes: list[tuple[int, ...]] = []
        for k, n in pairs:
            shapes += [(k, n), (n,)]
        self.opt = _FlatAdam(shapes)
        self.w = self.opt.values[0::2]
        self.b = self.opt.values[1::2]
        self.dw = self.opt.gradients[0::2]
        self.db = self.opt.gradients[1::2]
        for w, (k, n) in zip(self.w, pairs, strict=True):
            w[...] = glorot(rng, k, n, (k, n))
        b = batch_size
        self.act = [np.empty((b, n), F32) for _, n in pairs]  # ReLU applied in place
        self.delta = [np.empty((b, n), F32) for _, n in pairs]  # dL/d(pre-activation)
        self.mask = [np.empty((b, n), F32) for _, n in pairs[:-1]]
        self.ce = _SoftmaxCE(b)
        self.xbuf = np.empty((b, widths[0]), F32)
        self.ybuf = np.empty(b, np.int64)
        self.batch_size = b
        self.timer: Phases = _NoPhases()

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Return the logits of ``x`` (a view of an owned buffer)."""
        n, t, last = len(x), self.timer, len(self.w) - 1
        a = x
        for i, (w, b) in enumerate(zip(self.w, self.b, strict=True)):
            z = self.act[i][:n]
            np.matmul(a, w, out=z)
            t.mark("matmul")
            z += b
            if i < last:
                np.maximum(z, 0.0, out=z)
            t.mark("elementwise")
            a = z
        return a

    def train_on_batch(self, x: np.ndarray, y: np.ndarray) -> float:
        """One step on the batch ``x``, ``y``; return its loss."""
        n, t = len(x), self.timer
        logits = self.forward(x)
        d = self.delta[-1][:n]
        loss = self.ce(logits, y, d)
        t.mark("loss")
        for i in range(len(self.w) - 1, -1, -1):
            a_prev = x if i == 0 else self.act[i - 1][:n]
            np.matmul(a_prev.T, d, out=self.dw[i])
            t.mark("matmul")
            np.sum(d, axis=0, out=self.db[i])
            t.mark("elementwise")
            if i == 0:
                break  # no dx for the first layer
            d_prev = self.delta[i - 1][:n]
            np.matmul(d, self.w[i].T, out=d_prev)
            t.mark("matmul")
            mask = self.mask[i - 1][:n]
            np.greater(a_prev, 0.0, out=mask)
            d_prev *= mask
            t.mark("elementwise")
            d = d_prev
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
        grad = np.empty((self.batch_size, self.w[-1].shape[1]), F32)
        for start in range(0, len(x), self.batch_size):
            xb, yb = x[start : start + self.batch_size], y[start : start + self.batch_size]
            total += self.ce(self.forward(xb), yb, grad[: len(xb)]) * len(xb)
        return total / len(x)


class FloorConv:
    """Hand-written Conv2D(f1, 3) -> MaxPool(2) -> Conv2D(f2, 3) -> GAP -> Dense(10).

    Valid padding, stride 1, ReLU after each convolution, channels last; im2col
    through ``sliding_window_view`` and one matmul per convolution.

    Args:
        input_shape: ``(height, width, channels)``.
        filters: ``(f1, f2)``.
        batch_size: Largest batch.
        seed: Seeds the initial weights.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        filters: tuple[int, ...],
        batch_size: int,
        seed: int = 0,
        classes: int = 10,
    ) -> None:
        rng = np.random.default_rng(seed)
        h, w, c = input_shape
        f1, f2 = filters
        self.h1, self.w1 = h - 2, w - 2
        self.hp, self.wp = self.h1 // 2, self.w1 // 2
        self.h2, self.w2 = self.hp - 2, self.wp - 2
        self.opt = _FlatAdam(
            [(3, 3, c, f1), (f1,), (3, 3, f1, f2), (f2,), (f2, classes), (classes,)]
        )
        k1, _, k2, _, wd, _ = self.opt.values
        k1[...] = glorot(rng, 9 * c, 9 * f1, k1.shape)
        k2[...] = glorot(rng, 9 * f1, 9 * f2, k2.shape)
        wd[...] = glorot(rng, f2, classes, wd.shape)
        b = batch_size
        self.c, self.f1, self.f2, self.classes = c, f1, f2, classes
        self.cols1 = np.empty((b, self.h1, self.w1, 3, 3, c), F32)
        self.a1 = np.empty((b, self.h1, self.w1, f1), F32)
        self.p1 = np.empty((b, self.hp, self.wp, f1), F32)
        self.cols2 = np.empty((b, self.h2, self.w2, 3, 3, f1), F32)
        self.a2 = np.empty((b, self.h2, self.w2, f2), F32)
        self.g = np.empty((b, f2), F32)
        self.logits = np.empty((b, classes), F32)
        self.dlogits = np.empty((b, classes), F32)
        self.dg = np.empty((b, f2), F32)
        self.da2 = np.empty((b, self.h2, self.w2, f2), F32)
        self.mask2 = np.empty((b, self.h2, self.w2, f2), F32)
        self.dcols2 = np.empty((b, self.h2, self.w2, 3, 3, f1), F32)
        self.dp1 = np.empty((b, self.hp, self.wp, f1), F32)
        self.da1 = np.empty((b, self.h1, self.w1, f1), F32)
        self.mask1 = np.empty((b, self.h1, self.w1, f1), F32)
        self.ce = _SoftmaxCE(b)
        self.xbuf = np.empty((b, h, w, c), F32)
        self.ybuf = np.empty(b, np.int64)
        self.batch_size = b
        self.timer: Phases = _NoPhases()

    def _corners(self, a: np.ndarray) -> list[np.ndarray]:
        """The four strided views of ``a`` that a 2x2 pooling window's offsets read."""
        rows, cols = 2 * self.hp, 2 * self.wp
        return [a[:, i:rows:2, j:cols:2] for i in (0, 1) for j in (0, 1)]

    def _conv(
        self,
        x: np.ndarray,
        cols: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray,
        out: np.ndarray,
    ) -> None:
        n, oh, ow = len(x), out.shape[1], out.shape[2]
        windows = sliding_window_view(x, (3, 3), axis=(1, 2))  # (n, oh, ow, c, 3, 3)
        np.copyto(cols, windows.transpose(0, 1, 2, 4, 5, 3))
        self.timer.mark("im2col")
        k = cols.shape[3] * cols.shape[4] * cols.shape[5]
        np.matmul(
            cols.reshape(n * oh * ow, k),
            kernel.reshape(k, -1),
            out=out.reshape(n * oh * ow, -1),
        )
        self.timer.mark("matmul")
        out += bias
        np.maximum(out, 0.0, out=out)
        self.timer.mark("elementwise")

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Return the logits of ``x`` (a view of an owned buffer)."""
        n = len(x)
        k1, b1, k2, b2, wd, bd = self.opt.values
        a1, p1, a2 = self.a1[:n], self.p1[:n], self.a2[:n]
        self._conv(x, self.cols1[:n], k1, b1, a1)
        corners = self._corners(a1)
        np.maximum(corners[0], corners[1], out=p1)  # one strided maximum per offset
        np.maximum(p1, corners[2], out=p1)
        np.maximum(p1, corners[3], out=p1)
        self.timer.mark("pool")
        self._conv(p1, self.cols2[:n], k2, b2, a2)
        g = self.g[:n]
        np.mean(a2, axis=(1, 2), out=g)
        self.timer.mark("pool")
        logits = self.logits[:n]
        np.matmul(g, wd, out=logits)
        logits += bd
        self.timer.mark("matmul")
        return logits

    def train_on_batch(self, x: np.ndarray, y: np.ndarray) -> float:
        """One step on the batch ``x``, ``y``; return its loss."""
        n, t = len(x), self.timer
        _, _, k2, _, wd, _ = self.opt.values
        dk1, db1, dk2, db2, dwd, dbd = self.opt.gradients
        logits = self.forward(x)
        dz = self.dlogits[:n]
        loss = self.ce(logits, y, dz)
        t.mark("loss")
        g, dg = self.g[:n], self.dg[:n]
        np.matmul(g.T, dz, out=dwd)
        np.sum(dz, axis=0, out=dbd)
        np.matmul(dz, wd.T, out=dg)
        t.mark("matmul")
        # GAP backward and ReLU: da2 = dg / (h2 w2) where a2 > 0
        a2, da2, mask2 = self.a2[:n], self.da2[:n], self.mask2[:n]
        np.greater(a2, 0.0, out=mask2)
        dg *= 1.0 / (self.h2 * self.w2)
        np.multiply(mask2, dg[:, None, None, :], out=da2)
        np.sum(da2, axis=(0, 1, 2), out=db2)
        t.mark("elementwise")
        m2, k2n = n * self.h2 * self.w2, 9 * self.f1
        dz2 = da2.reshape(m2, self.f2)
        np.matmul(self.cols2[:n].reshape(m2, k2n).T, dz2, out=dk2.reshape(k2n, self.f2))
        dcols2 = self.dcols2[:n]
        np.matmul(dz2, k2.reshape(k2n, self.f2).T, out=dcols2.reshape(m2, k2n))
        t.mark("matmul")
        dp1 = self.dp1[:n]
        dp1.fill(0.0)
        for a in range(3):  # col2im: one strided add per kernel offset
            for b in range(3):
                dp1[:, a : a + self.h2, b : b + self.w2] += dcols2[:, :, :, a, b]
        t.mark("im2col")
        # max-pool backward: dy to every input equal to its window's max; ties (ReLU
        # zeros) get no gradient anyway because the ReLU mask below zeroes them
        a1, p1, da1 = self.a1[:n], self.p1[:n], self.da1[:n]
        if 2 * self.hp != self.h1 or 2 * self.wp != self.w1:
            da1.fill(0.0)  # an odd row or column no window reads
        for corner, dst in zip(self._corners(a1), self._corners(da1), strict=True):
            np.equal(corner, p1, out=dst)
            dst *= dp1
        t.mark("pool")
        mask1 = self.mask1[:n]
        np.greater(a1, 0.0, out=mask1)
        da1 *= mask1
        np.sum(da1, axis=(0, 1, 2), out=db1)
        t.mark("elementwise")
        m1, k1n = n * self.h1 * self.w1, 9 * self.c
        np.matmul(
            self.cols1[:n].reshape(m1, k1n).T,
            da1.reshape(m1, self.f1),
            out=dk1.reshape(k1n, self.f1),
        )
        t.mark("matmul")
        self.opt.step()
        t.mark("adam")
        return loss

    fit_epoch = FloorMLP.fit_epoch

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean loss over ``x`` (at most ``batch_size`` samples at a time)."""
        total = 0.0
        for start in range(0, len(x), self.batch_size):
            xb, yb = x[start : start + self.batch_size], y[start : start + self.batch_size]
            total += self.ce(self.forward(xb), yb, self.dlogits[: len(xb)]) * len(xb)
        return total / len(x)
