"""Transfer learning in two ``fit`` phases: a new head on a frozen base, then fine-tuning.

A small CNN learns digits 0-4 (scikit-learn's bundled 8x8 digits, no download). Its
convolutional base then serves a new task, digits 5-9, with only 150 labelled
images: phase 1 freezes the base (``layer.trainable = False``) and trains the new
head alone; phase 2 unfreezes everything and fine-tunes at a ten times lower
learning rate, continuing the epoch count with ``initial_epoch``.

Run: python examples/transfer_learning.py [--epochs N]   (N epochs per phase)
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.datasets import load_digits

import loopkit as lk
from loopkit.layers import Conv2D, Dense, GlobalAveragePooling2D, MaxPooling2D


def base_layers() -> list[lk.layers.Layer]:
    return [
        Conv2D(16, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
        MaxPooling2D(),
        Conv2D(32, 3, padding="same", activation="relu"),
        GlobalAveragePooling2D(),
    ]


def main(epochs: int = 15) -> dict[str, float]:
    lk.set_random_seed(1)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]
    y = digits.target
    old, new = y < 5, y >= 5
    x_new, y_new = x[new], y[new] - 5  # classes 0..4 of the new head
    x_few, y_few = x_new[:150], y_new[:150]
    x_test, y_test = x_new[150:], y_new[150:]

    # Pre-training on the first task.
    pretrained = lk.Sequential([*base_layers(), Dense(5, activation="softmax")])
    pretrained.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    pretrained.fit(x[old], y[old], epochs=2 * epochs, batch_size=32, verbose=0)

    # The same base with a new head; copy every base weight (all but the head's two).
    model = lk.Sequential([*base_layers(), Dense(5, activation="softmax")])
    model.build((None, 8, 8, 1))
    base_weights = pretrained.get_weights()[:-2]
    model.set_weights([*base_weights, *model.get_weights()[len(base_weights) :]])

    # Phase 1: the base is frozen, only the head learns.
    for layer in model.layers[:-1]:
        layer.trainable = False
    model.compile(
        optimizer=lk.optimizers.Adam(learning_rate=1e-2),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.summary()  # "Trainable params" counts the head alone
    first = model.fit(x_few, y_few, epochs=epochs, batch_size=16, verbose=2)
    frozen = pretrained.get_weights()[:-2]
    assert all(
        np.array_equal(a, b) for a, b in zip(frozen, model.get_weights(), strict=False)
    )
    _, head_only = model.evaluate(x_test, y_test, verbose=0)

    # Phase 2: unfreeze and fine-tune everything, gently; recompile to apply the change.
    for layer in model.layers:
        layer.trainable = True
    model.compile(
        optimizer=lk.optimizers.Adam(learning_rate=1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_few,
        y_few,
        epochs=2 * epochs,
        initial_epoch=len(first.epoch),
        batch_size=16,
        verbose=2,
    )
    _, fine_tuned = model.evaluate(x_test, y_test, verbose=0)
    print(
        f"new task, {len(x_test)} test images: head only {head_only:.3f}, "
        f"fine-tuned {fine_tuned:.3f}"
    )
    return {"head_only": float(head_only), "fine_tuned": float(fine_tuned)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="epochs per phase")
    main(parser.parse_args().epochs)
