"""Custom training loops: ``train_on_batch`` with a per-batch learning rate, and manual
gradient accumulation with ``compute_gradients``/``apply_gradients``.

``train_on_batch`` runs one step (forward, loss, backward, optimizer) and no plugin:
the loop around it is yours. One level lower, ``compute_gradients`` leaves the batch's
gradients in ``model.flat_gradients`` (one flat array) and ``apply_gradients`` takes
one optimizer step with whatever that array holds, so summing several batches'
gradients before one step is three lines.

Run: python examples/custom_loop.py [--epochs N]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import loopkit as lk
from loopkit.layers import Dense


def make_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, 20)).astype(np.float32)
    y = (np.sin(x[:, 0]) + x[:, 1] * x[:, 2] > 0).astype(np.int64)  # 2 classes
    return x, y


def build() -> lk.Sequential:
    model = lk.Sequential(
        [Dense(64, activation="relu", input_dim=20), Dense(2, activation="softmax")]
    )
    model.compile(
        optimizer=lk.optimizers.SGD(learning_rate=0.1, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def per_batch_learning_rate(x, y, x_val, y_val, epochs: int, batch_size: int = 32) -> float:
    """Warm up linearly for 50 steps, then decay along a cosine, set before every batch."""
    model = build()
    rng = np.random.default_rng(0)
    steps = epochs * math.ceil(len(x) / batch_size)
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), batch_size):
            index = order[start : start + batch_size]
            warmup = min(1.0, (step + 1) / 50)
            model.optimizer.learning_rate = (
                0.1 * warmup * 0.5 * (1 + math.cos(math.pi * step / steps))
            )
            loss, _ = model.train_on_batch(x[index], y[index])
            losses.append(loss)
            step += 1
        val_loss, val_accuracy = model.test_on_batch(x_val, y_val)
        print(
            f"epoch {epoch + 1}: loss {np.mean(losses):.4f} - val_loss {val_loss:.4f} "
            f"- val_accuracy {val_accuracy:.4f} - lr {model.optimizer.learning_rate:.4f}"
        )
    return float(val_accuracy)


def gradient_accumulation(
    x, y, x_val, y_val, epochs: int, micro: int = 8, k: int = 4
) -> float:
    """One optimizer step per ``k`` micro-batches of ``micro`` samples, with their mean."""
    model = build()
    model.build((None, 20))
    total = np.zeros_like(model.flat_gradients)
    for epoch in range(epochs):
        for start in range(0, len(x) - micro * k + 1, micro * k):
            total[...] = 0.0
            for i in range(k):
                part = slice(start + i * micro, start + (i + 1) * micro)
                model.compute_gradients(x[part], y[part])  # gradients of this batch
                total += model.flat_gradients
            np.divide(total, k, out=model.flat_gradients)  # the mean of the k batches
            model.apply_gradients()
        val_loss, val_accuracy = model.test_on_batch(x_val, y_val)
        print(
            f"epoch {epoch + 1}: val_loss {val_loss:.4f} - val_accuracy {val_accuracy:.4f}"
        )
    return float(val_accuracy)


def main(epochs: int = 10) -> dict[str, float]:
    lk.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = make_data(rng, 2048)
    x_val, y_val = make_data(rng, 512)
    print("train_on_batch with a learning rate set per batch:")
    scheduled = per_batch_learning_rate(x, y, x_val, y_val, epochs)
    print("manual gradient accumulation (4 micro-batches of 8 per step):")
    accumulated = gradient_accumulation(x, y, x_val, y_val, epochs)
    return {"scheduled": scheduled, "accumulated": accumulated}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs (default 10)")
    main(parser.parse_args().epochs)
