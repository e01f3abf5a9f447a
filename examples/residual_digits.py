"""A residual CNN on scikit-learn's bundled 8x8 digits, built with the functional API.

Two convolutions with a skip connection (``Add``) around the second, then global
pooling and a softmax head; the same code runs in Keras with ``keras`` for ``loopkit``.

Run: python examples/residual_digits.py [--epochs N]
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import loopkit as lk
from loopkit.layers import Add, Conv2D, Dense, GlobalAveragePooling2D, MaxPooling2D


def build_model() -> lk.Model:
    inputs = lk.Input(shape=(8, 8, 1), name="digit")
    x = Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = MaxPooling2D()(x)
    shortcut = x
    x = Conv2D(16, 3, padding="same", activation="relu")(x)
    x = Conv2D(16, 3, padding="same")(x)
    x = Add()([x, shortcut])  # the residual connection
    x = GlobalAveragePooling2D()(x)
    outputs = Dense(10, activation="softmax", name="digit_class")(x)
    return lk.Model(inputs, outputs, name="residual_cnn")


def main(epochs: int = 30) -> float:
    lk.set_random_seed(0)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=y
    )
    model = build_model()
    model.summary()
    model.compile(
        optimizer=lk.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train, y_train, epochs=epochs, batch_size=32, validation_split=0.1, verbose=2
    )
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test loss: {loss:.4f} - test accuracy: {accuracy:.4f}")
    return float(accuracy)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    main(parser.parse_args().epochs)
