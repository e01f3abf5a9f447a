"""Write tests/keras_sequence_references.py: Keras 3's outputs for the sequence layers.

Run in a throwaway environment that has Keras 3 and JAX (the project never imports
Keras)::

    python3 -m venv /tmp/kenv && /tmp/kenv/bin/pip install keras jax
    KERAS_BACKEND=jax /tmp/kenv/bin/python tests/make_keras_sequence_references.py

Every weight and input is ``known(shape, k)`` below, a formula the tests repeat, so
only Keras's results are stored. For each case the script records the layer's
output for ``x`` (and with a mask where given), and the weights after one
``train_on_batch`` of ``SGD(learning_rate=0.5)`` on the mean squared error to the
target ``known(output shape, 7)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

BATCH, STEPS, FEATURES, UNITS = 2, 5, 3, 2
MASK = [[1, 1, 1, 0, 0], [0, 1, 1, 1, 1]]


def known(shape: tuple[int, ...], k: float) -> np.ndarray:
    """Deterministic values in [-0.6, 0.6]: ``0.6 sin(0.7 i + k)`` in C order."""
    n = int(np.prod(shape))
    return (0.6 * np.sin(0.7 * np.arange(n) + k)).reshape(shape).astype(np.float32)


def set_known(model: keras.Model) -> None:
    for i, w in enumerate(model.weights):
        w.assign(known(tuple(w.shape), 1.0 + i))


def case(
    name: str, make: Any, input_shape: tuple[int, ...], masked: bool
) -> dict[str, Any]:
    x = known((BATCH, *input_shape), 0.5)
    model = keras.Sequential([keras.Input(input_shape), make()])
    set_known(model)
    out: dict[str, Any] = {"output": np.asarray(model(x))}
    if masked:
        layer = model.layers[-1]
        out["masked_output"] = np.asarray(layer(x, mask=np.array(MASK, bool)))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="mse")
    y = known(tuple(out["output"].shape), 7.0)
    model.train_on_batch(x, y)
    out["trained"] = [np.asarray(w) for w in model.weights]
    out["weight_names"] = [w.path for w in model.weights]
    return out


def conv_stack() -> keras.Sequential:
    return keras.Sequential(
        [
            keras.layers.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="tanh"),
            keras.layers.Conv1D(3, 2, strides=2, padding="same"),
            keras.layers.MaxPooling1D(2, padding="same"),
            keras.layers.UpSampling1D(2),
            keras.layers.AveragePooling1D(2, strides=1),
            keras.layers.GlobalAveragePooling1D(),
        ]
    )


CASES = {
    "lstm": (lambda: keras.layers.LSTM(UNITS, return_sequences=True), True),
    "gru": (lambda: keras.layers.GRU(UNITS, return_sequences=True), True),
    "gru_reset_before": (
        lambda: keras.layers.GRU(UNITS, reset_after=False, go_backwards=True),
        True,
    ),
    "simple_rnn": (
        lambda: keras.layers.SimpleRNN(UNITS, return_sequences=True, go_backwards=True),
        True,
    ),
    "bidirectional_lstm": (
        lambda: keras.layers.Bidirectional(keras.layers.LSTM(UNITS, return_sequences=True)),
        True,
    ),
    "bidirectional_gru_sum": (
        lambda: keras.layers.Bidirectional(keras.layers.GRU(UNITS), merge_mode="sum"),
        True,
    ),
}


def literal(a: np.ndarray, indent: int, width: int = 88) -> str:
    """``np.array([...], np.float32)`` source for ``a``, 8 digits, ``width`` columns."""
    prefix = " " * indent + "np.array("
    body = np.array2string(
        np.asarray(a, np.float64),
        separator=", ",
        precision=8,
        threshold=10**6,
        floatmode="maxprec",
        max_line_width=width,
        prefix=prefix,
    )
    return f"{prefix}{body}, np.float32)"


def main() -> None:
    lines = [
        '"""Keras 3 (JAX backend) results for tests/test_keras_sequence_references.py.',
        "",
        "Written by tests/make_keras_sequence_references.py with Keras "
        f"{keras.__version__}; do not edit by hand.",
        '"""',
        "",
        "import numpy as np",
        "",
        "REFERENCES = {",
    ]
    results = {
        name: case(name, make, (STEPS, FEATURES), masked)
        for name, (make, masked) in CASES.items()
    }
    results["conv1d_stack"] = case("conv1d_stack", conv_stack, (9, FEATURES), False)
    for name, out in results.items():
        lines.append(f"    {name!r}: {{")
        lines.append("        'output': (")
        lines.append(literal(out["output"], 12) + "),")
        if "masked_output" in out:
            lines.append("        'masked_output': (")
            lines.append(literal(out["masked_output"], 12) + "),")
        lines.append("        'weight_names': [")
        lines.extend(f"            {n!r}," for n in out["weight_names"])
        lines.append("        ],")
        lines.append("        'trained': [")
        for w in out["trained"]:
            lines.append(literal(w, 12) + ",")
        lines.append("        ],")
        lines.append("    },")
    lines.append("}")
    target = Path(__file__).with_name("keras_sequence_references.py")
    target.write_text("\n".join(lines) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
