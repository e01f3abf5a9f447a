"""Train a small convolutional network on scikit-learn's bundled 8x8 digits (no download).

Early stopping restores the best epoch's weights, a checkpoint keeps the best model in
``checkpoints/digits.npz``, and TensorBoard logs go to ``logs/``
(view them with ``tensorboard --logdir logs``).

Run: python examples/digits_cnn.py
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import loopkit as lk
from loopkit.layers import Conv2D, Dense, Dropout, GlobalAveragePooling2D, MaxPooling2D
from loopkit.plugins import EarlyStopping, ModelCheckpoint, TensorBoard


def main() -> float:
    lk.set_random_seed(42)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]  # (n, 8, 8, 1)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=y
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
        optimizer=lk.optimizers.Adam(learning_rate=3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        epochs=40,
        batch_size=32,
        validation_split=0.1,
        plugins=[
            EarlyStopping(monitor="val_loss", patience=8, restore_best_weights=True),
            ModelCheckpoint("checkpoints/digits.npz", save_best_only=True),
            TensorBoard(log_dir="logs"),
        ],
    )
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test loss: {loss:.4f} - test accuracy: {accuracy:.4f}")
    best = lk.load_model("checkpoints/digits.npz")
    _, best_accuracy = best.evaluate(x_test, y_test, verbose=0)
    print(f"checkpointed model: test accuracy {best_accuracy:.4f}")
    return float(accuracy)


if __name__ == "__main__":
    main()
