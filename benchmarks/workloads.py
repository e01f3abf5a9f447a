"""The workloads: sizes, synthetic learnable data from a fixed seed, FLOP counts."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "DATA_SEED",
    "QUICK_SIZES",
    "WORKLOADS",
    "Workload",
    "dense_flops",
    "get_workload",
    "make_data",
]

DATA_SEED = 20240611
"""Every runner trains on the same arrays: they are drawn from this seed."""

CLASSES = 10


@dataclass(frozen=True)
class Workload:
    """One benchmark: a model, a dataset size, a batch size and what is timed.

    Args:
        name: The workload's name on the command line and in the table.
        kind: ``"fit"`` (seconds per epoch of ``fit``), ``"train_on_batch"``
            (microseconds per call on distinct batches) or ``"plugins"`` (loopkit's
            fit with and without plugins).
        samples: Training samples.
        input_shape: Shape of one sample.
        hidden: Hidden Dense widths (ReLU), or conv filters for ``model="conv"``.
        batch_size: Samples per step; the last partial batch is trained on too.
        model: ``"mlp"``, ``"conv"`` (Conv2D(32, 3) -> MaxPooling2D ->
            Conv2D(64, 3) -> GlobalAveragePooling2D -> Dense(10)) or ``"lstm"``
            (LSTM(hidden[0]) -> Dense(10)).
        unit: How the table shows a time: ``"s/epoch"``, ``"us/step"`` or ``"us/call"``.
        epochs: Timed epochs per measurement process (``fit`` workloads).
        calls: Timed calls per repetition (``train_on_batch``).
        repeats: Repetitions per process (``train_on_batch`` and ``plugins``).
        rounds: Measurement processes per runner in a full run (runner order rotated).
        description: One line for the progress log.
    """

    name: str
    kind: str
    samples: int
    input_shape: tuple[int, ...]
    hidden: tuple[int, ...]
    batch_size: int
    model: str = "mlp"
    unit: str = "s/epoch"
    epochs: int = 2
    calls: int = 0
    repeats: int = 1
    rounds: int = 5
    description: str = ""

    @property
    def steps(self) -> int:
        """Steps per epoch, the last partial batch included."""
        return -(-self.samples // self.batch_size)

    @property
    def features(self) -> int:
        """Scalars per sample."""
        return int(np.prod(self.input_shape))

    @property
    def dataset_bytes(self) -> int:
        """Bytes of ``x`` (float32) and ``y`` (int64)."""
        return self.samples * (4 * self.features + 8)

    def flops_per_sample(self) -> int:
        """Matrix-product FLOPs of one training step per sample (the lower bound).

        Forward ``x @ W``, ``dW = x.T @ dy`` and ``dx = dy @ W.T`` cost ``2 m k n``
        each; the first layer needs no ``dx``. Element-wise work is not counted.
        """
        if self.model == "conv":
            return conv_flops(self.input_shape, self.hidden)
        if self.model == "lstm":
            return lstm_flops(self.input_shape, self.hidden[0])
        return dense_flops((self.features, *self.hidden, CLASSES))

    def flops_per_epoch(self) -> int:
        """Matrix-product FLOPs of one epoch (``train_on_batch``: of ``calls`` calls)."""
        if self.kind == "train_on_batch":
            return self.flops_per_sample() * self.batch_size * self.calls
        return self.flops_per_sample() * self.samples


def dense_flops(widths: tuple[int, ...]) -> int:
    """Training FLOPs per sample of a Dense stack ``widths[0] -> ... -> widths[-1]``."""
    total = 0
    for i, (k, n) in enumerate(itertools.pairwise(widths)):
        total += 2 * k * n * (2 if i == 0 else 3)
    return total


def lstm_flops(input_shape: tuple[int, ...], units: int) -> int:
    """Training FLOPs per sample of LSTM(units) -> Dense(10), no dx for the input.

    Per step: the input and recurrent products forward, their kernel gradients,
    and dL/dh through the recurrent kernel: ``2 * 4u * (2f + 3u)``.
    """
    steps, features = input_shape
    width = 4 * units
    return steps * 2 * width * (2 * features + 3 * units) + 2 * units * CLASSES * 3


def conv_flops(input_shape: tuple[int, ...], filters: tuple[int, ...]) -> int:
    """Training FLOPs per sample of the conv workload's im2col products."""
    h, w, c = input_shape
    f1, f2 = filters
    h1, w1 = h - 2, w - 2
    hp, wp = h1 // 2, w1 // 2
    h2, w2 = hp - 2, wp - 2
    conv1 = 2 * h1 * w1 * 9 * c * f1 * 2  # forward and dW, no dx
    conv2 = 2 * h2 * w2 * 9 * f1 * f2 * 3
    dense = 2 * f2 * CLASSES * 3
    return conv1 + conv2 + dense


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "mlp-mnist", "fit", 60_000, (784,), (256, 128), 128,
            description="MNIST-sized MLP 784-256-128-10, batch 128",
        ),
        Workload(
            "small-batch", "fit", 64_000, (32,), (256, 64), 32, unit="us/step", epochs=3,
            description="32-256-64-10, batch 32: per-step overhead",
        ),
        Workload(
            "train-on-batch", "train_on_batch", 64_000, (32,), (256, 64), 32,
            unit="us/call", calls=600, repeats=3,
            description="the small-batch model, one train_on_batch call per distinct batch",
        ),
        Workload(
            "wide", "fit", 20_000, (2048,), (2048, 2048), 256, epochs=1, rounds=4,
            description="2048-2048-2048-10, batch 256: matrix-product bound",
        ),
        Workload(
            "conv", "fit", 12_000, (28, 28, 1), (32, 64), 64, model="conv", rounds=3,
            description="28x28x1 Conv2D(32,3)-MaxPool-Conv2D(64,3)-GAP-Dense(10), batch 64",
        ),
        Workload(
            "lstm", "fit", 6_400, (50, 32), (128,), 64, model="lstm", epochs=1, rounds=3,
            description="50x32 sequences, LSTM(128)-Dense(10) softmax, batch 64, Adam",
        ),
        Workload(
            "plugins", "plugins", 60_000, (784,), (256, 128), 128, epochs=1, repeats=7,
            description="mlp-mnist under loopkit: plain, 10 idle plugins, the standard set",
        ),
    )
}  # fmt: skip

QUICK_SIZES: dict[str, dict[str, int]] = {
    "mlp-mnist": {"samples": 6_000, "epochs": 1},
    "small-batch": {"samples": 6_400, "epochs": 1},
    "train-on-batch": {"samples": 6_400, "calls": 60, "repeats": 1},
    "wide": {"samples": 1_056, "epochs": 1},
    "conv": {"samples": 1_000, "epochs": 1},
    "lstm": {"samples": 640, "epochs": 1},
    "plugins": {"samples": 6_000, "epochs": 1, "repeats": 1},
}
"""``--quick``: the same models on smaller datasets, one repetition: a smoke run."""


def get_workload(name: str, quick: bool = False) -> Workload:
    """Return workload ``name``, shrunk to its ``--quick`` size when asked."""
    workload = WORKLOADS[name]
    return replace(workload, **QUICK_SIZES[name]) if quick else workload


def make_data(workload: Workload) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x, y)``: float32 inputs and int64 class ids, the same in every process.

    Dense workloads: ``x`` is standard normal and ``y = argmax(x @ T)`` for a fixed
    random teacher ``T``, so an MLP lowers its loss from ``ln 10`` within an epoch.
    Conv: each class is a stripe texture of its own frequency and orientation with
    a random phase per image, plus noise, so it is found anywhere in the image.
    The arrays are filled in chunks: building them needs no memory beyond their own.
    """
    rng = np.random.Generator(np.random.PCG64(DATA_SEED))
    n = workload.samples
    x = np.empty((n, *workload.input_shape), np.float32)
    y = np.empty(n, np.int64)
    chunk = 4096
    if workload.model == "conv":
        h, w, _ = workload.input_shape
        rows = np.arange(h, dtype=np.float32)[:, None]
        cols = np.arange(w, dtype=np.float32)[None, :]
        angles = np.linspace(0.0, np.pi, CLASSES, endpoint=False, dtype=np.float32)
        freqs = np.float32(2 * np.pi) / np.array([4, 6] * (CLASSES // 2), np.float32)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            cls = rng.integers(0, CLASSES, stop - start)
            phase = rng.uniform(0, 2 * np.pi, (stop - start, 1, 1)).astype(np.float32)
            u = (
                np.cos(angles[cls])[:, None, None] * rows
                + np.sin(angles[cls])[:, None, None] * cols
            )
            img = np.sin(freqs[cls][:, None, None] * u + phase)
            img += 0.5 * rng.standard_normal(img.shape, dtype=np.float32)
            x[start:stop, :, :, 0] = img
            y[start:stop] = cls
        return x, y
    if workload.model == "lstm":
        return _sequence_data(workload, rng, x, y)
    teacher = rng.standard_normal((workload.features, CLASSES), dtype=np.float32)
    # squared norm ~512 per sample: Adam's first steps on the 2048-wide model then
    # lower the loss at once instead of overshooting
    scale = np.float32(min(1.0, math.sqrt(512 / workload.features)))
    flat = x.reshape(n, -1)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        rng.standard_normal(out=flat[start:stop], dtype=np.float32)
        flat[start:stop] *= scale
        y[start:stop] = np.argmax(flat[start:stop] @ teacher, axis=1)
    return x, y


def _sequence_data(
    workload: Workload, rng: np.random.Generator, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Noise sequences whose class is set by a teacher on the mean of the last steps.

    The recurrent layer must carry the last ten steps' features to its final state.
    """
    teacher = rng.standard_normal((workload.input_shape[1], CLASSES), dtype=np.float32)
    for start in range(0, len(x), 1024):
        stop = min(len(x), start + 1024)
        rng.standard_normal(out=x[start:stop], dtype=np.float32)
        y[start:stop] = np.argmax(x[start:stop, -10:].mean(axis=1) @ teacher, axis=1)
    return x, y
