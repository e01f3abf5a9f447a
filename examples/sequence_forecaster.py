"""Forecast the next value of noisy sine waves with a Conv1D + GRU model.

Each sample is a window of 40 noisy steps of a sine wave with its own frequency,
amplitude and phase; the target is the clean value one step after the window. A
causal Conv1D smooths the noise, a GRU reads the window, a Dense layer predicts.
The script prints the test error next to the naive forecast (repeat the last
noisy value) that it should beat by a wide margin.

Run: python examples/sequence_forecaster.py
"""

from __future__ import annotations

import numpy as np

import loopkit as lk
from loopkit.layers import GRU, Conv1D, Dense

WINDOW = 40


def make_waves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return noisy windows ``(n, WINDOW, 1)`` and the next clean values ``(n, 1)``."""
    t = np.arange(WINDOW + 1, dtype=np.float32)
    freq = rng.uniform(0.05, 0.25, (n, 1)).astype(np.float32)
    amp = rng.uniform(0.5, 1.5, (n, 1)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (n, 1)).astype(np.float32)
    clean = amp * np.sin(2 * np.pi * freq * t + phase)
    noisy = clean[:, :WINDOW] + 0.1 * rng.standard_normal((n, WINDOW)).astype(np.float32)
    return noisy[..., np.newaxis], clean[:, WINDOW:]


def main(epochs: int = 8) -> tuple[float, float]:
    """Train the forecaster; return its test mean squared error and the naive one."""
    lk.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_train, y_train = make_waves(4000, rng)
    x_test, y_test = make_waves(1000, rng)
    model = lk.Sequential(
        [
            Conv1D(16, 5, padding="causal", activation="relu", input_shape=(WINDOW, 1)),
            GRU(32),
            Dense(1),
        ]
    )
    model.summary()
    model.compile(optimizer=lk.optimizers.Adam(learning_rate=3e-3), loss="mse")
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, validation_split=0.1)
    mse = float(model.evaluate(x_test, y_test, verbose=0))
    naive = float(np.mean((x_test[:, -1] - y_test) ** 2))
    print(f"test MSE {mse:.4f}; repeating the last noisy value gives {naive:.4f}")
    return mse, naive


if __name__ == "__main__":
    main()
