"""Train a small convolutional network on scikit-learn's bundled 8x8 digits (no download).

Early stopping ends the run once validation loss has not improved for 5 epochs (about
35 of the 60 allowed) and restores the best epoch's weights; a checkpoint keeps the
best model in ``checkpoints/digits.npz``; TensorBoard logs go to ``logs/`` (view them
with ``tensorboard --logdir logs``); the learning curves are saved to
``plots/digits.png`` when matplotlib is installed.

Run: python examples/digits_cnn.py [--epochs N]   (``loopkit demo`` runs the same)
"""

from __future__ import annotations

import argparse
import importlib.util

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import loopkit as lk
from loopkit.layers import Conv2D, Dense, Dropout, GlobalAveragePooling2D, MaxPooling2D
from loopkit.plugins import EarlyStopping, ModelCheckpoint, TensorBoard


def main(epochs: int = 60) -> lk.History:
    lk.set_random_seed(42)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]  # (1797, 8, 8, 1)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.2, random_state=0, stratify=digits.target
    )
    model = lk.Sequential(
        [
            Conv2D(32, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
            MaxPooling2D(),
            Conv2D(64, 3, padding="same", activation="relu"),
            GlobalAveragePooling2D(),
            Dropout(0.2),
            Dense(10, activation="softmax"),
        ]
    )
    model.summary()
    model.compile(
        optimizer=lk.optimizers.Adam(learning_rate=1e-2),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=32,
        validation_split=0.1,
        plugins=[
            EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True),
            ModelCheckpoint("checkpoints/digits.npz", save_best_only=True),
            TensorBoard(log_dir="logs"),
        ],
    )
    print(f"ran {len(history.epoch)} of {epochs} epochs")
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test loss: {loss:.4f} - test accuracy: {accuracy:.4f}")
    best = lk.load_model("checkpoints/digits.npz")
    _, best_accuracy = best.evaluate(x_test, y_test, verbose=0)
    print(f"checkpointed model: test accuracy {best_accuracy:.4f}")
    if importlib.util.find_spec("matplotlib") is not None:
        history.plot(save="plots/digits.png")
        print("learning curves: plots/digits.png")
    return history


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60, help="most epochs (default 60)")
    main(parser.parse_args().epochs)
