"""Write tests/keras_attention_references.py: Keras 3's outputs for the attention layers.

Run in a throwaway environment that has Keras 3 and JAX (the project never imports
Keras)::

    python3 -m venv /tmp/kenv && /tmp/kenv/bin/pip install keras jax
    KERAS_BACKEND=jax /tmp/kenv/bin/python tests/make_keras_attention_references.py

As in ``make_keras_sequence_references.py`` (whose ``known`` formula this reuses),
every weight and input is ``known(shape, k)``, so only Keras's results are stored.
For each case the script records the model's outputs (and the attention scores)
and the weights after one ``train_on_batch`` of ``SGD(learning_rate=0.5)`` on the
mean squared error to the target ``known(output shape, 7)``. Masked cases record
outputs only: Keras masks the loss with the output's mask, loopkit does not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np
from make_keras_sequence_references import known, literal

BATCH = 2
QUERY, VALUE, KEY = known((2, 4, 5), 0.5), known((2, 3, 6), 1.5), known((2, 3, 4), 2.5)
VALUE5, KEY5 = known((2, 3, 5), 1.5), known((2, 3, 5), 2.5)
ATTENTION_MASK = np.array(
    [
        [[1, 0, 1], [1, 1, 0], [1, 1, 1], [1, 0, 0]],
        [[1, 1, 1], [1, 0, 1], [1, 1, 0], [1, 1, 1]],
    ],
    np.float32,
)
PADDING = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1]], np.float32)
SELF_X = known((2, 5, 4), 0.5) * PADDING[:, :, None]  # padded steps all zero
QUERY_MASK = np.array([[1, 1, 1, 0], [0, 1, 1, 1]], bool)
VALUE_MASK = np.array([[1, 0, 1], [1, 1, 0]], bool)


def set_known(layer: keras.layers.Layer) -> None:
    for i, w in enumerate(layer.weights):
        w.assign(known(tuple(w.shape), 1.0 + i))


def train(model: keras.Model, x: Any, out: np.ndarray) -> list[np.ndarray]:
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="mse")
    model.train_on_batch(x, known(tuple(out.shape), 7.0))
    return [np.asarray(w) for w in model.weights]


def mha_cross() -> dict[str, Any]:
    q, v, k = keras.Input((4, 5)), keras.Input((3, 6)), keras.Input((3, 4))
    am = keras.Input((4, 3))
    mha = keras.layers.MultiHeadAttention(2, 3, value_dim=2, output_shape=7)
    kwargs = {"key": k, "attention_mask": am, "use_causal_mask": True}
    # The scores keep Keras on its explicit path: its fused JAX kernel fails when
    # value_dim differs from key_dim (Keras 3.15.1).
    out, _ = mha(q, v, **kwargs, return_attention_scores=True)
    model = keras.Model([q, v, k, am], out)
    set_known(mha)
    x = [QUERY, VALUE, KEY, ATTENTION_MASK]
    output, scores = (
        np.asarray(a)
        for a in mha(
            QUERY,
            VALUE,
            key=KEY,
            attention_mask=ATTENTION_MASK,
            use_causal_mask=True,
            return_attention_scores=True,
        )
    )
    return {
        "output": output,
        "scores": scores,
        "weight_names": [w.path for w in mha.weights],
        "trained": train(model, x, output),
    }


def mha_self() -> dict[str, Any]:
    x = keras.Input((5, 4))
    mha = keras.layers.MultiHeadAttention(2, 3, use_bias=True)
    model = keras.Model(x, mha(x, x, use_causal_mask=True))
    set_known(mha)
    output = np.asarray(model.predict(SELF_X, verbose=0))
    return {
        "output": output,
        "weight_names": [w.path for w in mha.weights],
        "trained": train(model, SELF_X, output),
    }


def mha_self_masked() -> dict[str, Any]:
    x = keras.Input((5, 4))
    masked = keras.layers.Masking()(x)
    mha = keras.layers.MultiHeadAttention(2, 3, value_dim=2)
    out, _ = mha(masked, masked, use_causal_mask=True, return_attention_scores=True)
    model = keras.Model(x, out)  # the explicit path, as in mha_cross
    set_known(mha)
    output = np.asarray(model.predict(SELF_X, verbose=0))
    # Eagerly a query mask cannot be passed (Keras reads it from the tensor), so the
    # scores are recorded with the value mask alone.
    _, scores = mha(
        SELF_X,
        SELF_X,
        value_mask=PADDING.astype(bool),
        use_causal_mask=True,
        return_attention_scores=True,
    )
    return {"output": output, "value_masked_scores": np.asarray(scores)}


def attention_case(make: Any, value: np.ndarray, key: np.ndarray) -> dict[str, Any]:
    q = keras.Input((4, 5))
    v, k = keras.Input(value.shape[1:]), keras.Input(key.shape[1:])
    layer = make()
    model = keras.Model([q, v, k], layer([q, v, k], use_causal_mask=True))
    set_known(layer)
    x = [QUERY, value, key]
    output = np.asarray(model.predict(x, verbose=0))
    masked, scores = layer(x, mask=[QUERY_MASK, VALUE_MASK], return_attention_scores=True)
    pair = layer([QUERY, VALUE5], mask=[QUERY_MASK, VALUE_MASK])  # key = value
    return {
        "output": output,
        "masked_output": np.asarray(masked),
        "masked_scores": np.asarray(scores),
        "pair_output": np.asarray(pair),
        "weight_names": [w.path for w in layer.weights],
        "trained": train(model, x, output),
    }


CASES = {
    "mha_cross": mha_cross,
    "mha_self": mha_self,
    "mha_self_masked": mha_self_masked,
    "attention_dot": lambda: attention_case(
        lambda: keras.layers.Attention(use_scale=True), VALUE, KEY5
    ),
    "attention_concat": lambda: attention_case(
        lambda: keras.layers.Attention(use_scale=True, score_mode="concat"), VALUE5, KEY5
    ),
    "additive": lambda: attention_case(keras.layers.AdditiveAttention, VALUE, KEY5),
}


def main() -> None:
    lines = [
        '"""Keras 3 (JAX backend) results for tests/test_attention_keras.py.',
        "",
        "Written by tests/make_keras_attention_references.py with Keras "
        f"{keras.__version__}; do not edit by hand.",
        '"""',
        "",
        "import numpy as np",
        "",
        "REFERENCES = {",
    ]
    for name, make in CASES.items():
        lines.append(f"    {name!r}: {{")
        for key, value in make().items():
            if key == "weight_names":
                lines.append("        'weight_names': [")
                lines.extend(f"            {n!r}," for n in value)
                lines.append("        ],")
            elif key == "trained":
                lines.append("        'trained': [")
                lines.extend(literal(w, 12, width=72) + "," for w in value)
                lines.append("        ],")
            else:
                lines.append(f"        {key!r}: (")
                lines.append(literal(value, 12, width=72) + "),")
        lines.append("    },")
    lines.append("}")
    target = Path(__file__).with_name("keras_attention_references.py")
    target.write_text("\n".join(lines) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
