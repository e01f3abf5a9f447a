"""Two inputs and two outputs: an image and its metadata in, a class and a score out.

The digits' pixels go through a Dense tower; a small metadata vector (the digit's ink
amount and its row of maximum ink) joins them with ``Concatenate``; one head
classifies the digit, another regresses its mean intensity. Losses, metrics and loss
weights are given per output by name, and the logs carry ``label_loss``,
``score_loss`` and ``label_accuracy`` beside the weighted total ``loss``.

Run: python examples/two_heads.py [--epochs N]
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.datasets import load_digits

import loopkit as lk
from loopkit.layers import Concatenate, Dense, Dropout


def make_data() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    digits = load_digits()
    pixels = (digits.data / 16.0).astype(np.float32)
    ink = pixels.sum(axis=1, keepdims=True) / 64.0
    busiest_row = digits.images.sum(axis=2).argmax(axis=1)[:, None] / 7.0
    x = {"pixels": pixels, "meta": np.hstack([ink, busiest_row]).astype(np.float32)}
    y = {
        "label": digits.target.astype(np.int64),
        "score": pixels.mean(axis=1, keepdims=True),
    }
    return x, y


def build_model() -> lk.Model:
    pixels = lk.Input(shape=(64,), name="pixels")
    meta = lk.Input(shape=(2,), name="meta")
    h = Dense(64, activation="relu")(pixels)
    h = Concatenate()([Dropout(0.1)(h), Dense(8, activation="relu")(meta)])
    label = Dense(10, activation="softmax", name="label")(h)
    score = Dense(1, name="score")(h)
    return lk.Model({"pixels": pixels, "meta": meta}, {"label": label, "score": score})


def main(epochs: int = 20) -> dict[str, float]:
    lk.set_random_seed(0)
    x, y = make_data()
    model = build_model()
    model.compile(
        optimizer="adam",
        loss={"label": "sparse_categorical_crossentropy", "score": "mse"},
        loss_weights={"label": 1.0, "score": 10.0},
        metrics={"label": ["accuracy"], "score": ["mae"]},
    )
    history = model.fit(x, y, epochs=epochs, batch_size=32, validation_split=0.2, verbose=2)
    print("logged:", sorted(history.history))
    predictions = model.predict({k: v[:3] for k, v in x.items()}, verbose=0)
    print(
        "first three labels:",
        predictions["label"].argmax(axis=1),
        "scores:",
        predictions["score"].ravel().round(3),
    )
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    print({k: round(v, 4) for k, v in logs.items()})
    return logs


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    main(parser.parse_args().epochs)
