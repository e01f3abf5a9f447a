"""Quickstart: the classic two-layer binary classifier, from data to a saved model.

Fits with a validation split, reads the History, evaluates, predicts, saves and loads
the model, and plots the learning curves when matplotlib is installed.

Run: python examples/quickstart.py [--epochs N]
"""

from __future__ import annotations

import argparse
import importlib.util

import numpy as np

import loopkit as lk
from loopkit.layers import Dense


def main(epochs: int = 10) -> float:
    lk.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 100)).astype(np.float32)
    y = (x[:, :10].sum(axis=1) > 0).astype(np.float32)  # a rule the model can learn

    model = lk.Sequential(
        [Dense(32, activation="relu", input_dim=100), Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=epochs, batch_size=32, validation_split=0.2)
    print("validation accuracy per epoch:", np.round(history.history["val_accuracy"], 3))

    x_new = rng.standard_normal((200, 100)).astype(np.float32)
    y_new = (x_new[:, :10].sum(axis=1) > 0).astype(np.float32)
    loss, accuracy = model.evaluate(x_new, y_new, verbose=0)
    print(f"new data: loss {loss:.4f}, accuracy {accuracy:.4f}")
    probabilities = model.predict(x_new[:5], verbose=0)  # (5, 1) float32
    print("first five predictions:", probabilities.ravel().round(3))

    model.save("quickstart.npz")
    again = lk.load_model("quickstart.npz")
    assert np.array_equal(again.predict(x_new, verbose=0), model.predict(x_new, verbose=0))
    if importlib.util.find_spec("matplotlib") is not None:
        history.plot(save="quickstart.png")
    return float(accuracy)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs (default 10)")
    main(parser.parse_args().epochs)
