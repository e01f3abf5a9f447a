"""Write tests/keras_vision_references.py: Keras 3's outputs of 2-D vision layers.

DepthwiseConv2D, ZeroPadding2D and Cropping2D.

Run in a throwaway environment that has Keras 3 and JAX (the project never imports
Keras)::

    python3 -m venv /tmp/kenv && /tmp/kenv/bin/pip install keras jax
    KERAS_BACKEND=jax /tmp/kenv/bin/python tests/make_keras_vision_references.py

The input is ``known((2, 5, 6, 3), 0.5)`` and the kernel and bias ``known(shape,
1.0)`` and ``known(shape, 2.0)``, formulas the tests repeat, so only Keras's outputs
(shape, and values in C order) are stored, one per set of layer arguments.
"""

from __future__ import annotations

import os
import pprint
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np
from make_keras_sequence_references import known, literal

INPUT_SHAPE = (5, 6, 3)

# DepthwiseConv2D arguments: valid/same, strides, depth multipliers, dilation,
# rectangular kernels, an activation (Keras refuses strides and dilation both > 1).
DEPTHWISE: dict[str, dict[str, Any]] = {
    "valid_k3": {"kernel_size": 3},
    "valid_k3_m2": {"kernel_size": 3, "depth_multiplier": 2},
    "same_k3_s2_m3": {
        "kernel_size": 3,
        "strides": 2,
        "padding": "same",
        "depth_multiplier": 3,
    },
    "same_k4_s2": {"kernel_size": 4, "strides": 2, "padding": "same"},
    "valid_k23_s12": {"kernel_size": (2, 3), "strides": (1, 2)},
    "same_k2_d2_m2": {
        "kernel_size": 2,
        "dilation_rate": 2,
        "padding": "same",
        "depth_multiplier": 2,
    },
    "valid_k3_d21_relu": {"kernel_size": 3, "dilation_rate": (2, 1), "activation": "relu"},
}

# ZeroPadding2D(padding) and Cropping2D(cropping) in Keras's three spellings.
PADDING: dict[str, Any] = {"int": 2, "pair": (1, 3), "sides": ((0, 2), (3, 1))}
CROPPING: dict[str, Any] = {"int": 1, "pair": (2, 0), "sides": ((1, 2), (0, 3))}


def _block(name: str, y: np.ndarray) -> list[str]:
    return [
        f"    {name!r}: (",
        f"        {y.shape},",
        literal(y.ravel(), 8, width=80) + ",",
        "    ),",
    ]


def main() -> None:
    lines = [
        '"""Keras 3 (JAX backend) results for tests/test_keras_vision_references.py.',
        "",
        f"Written by tests/make_keras_vision_references.py with Keras {keras.__version__};",
        "do not edit by hand.",
        '"""',
        "",
        "import numpy as np",
        "",
        f"INPUT_SHAPE = {INPUT_SHAPE}",
        "DEPTHWISE = " + pprint.pformat(DEPTHWISE, width=80, sort_dicts=False),
        f"PADDING = {PADDING!r}",
        f"CROPPING = {CROPPING!r}",
        "",
        "# (output shape, output values in C order)",
        "DEPTHWISE_REFERENCES = {",
    ]
    x = known((2, *INPUT_SHAPE), 0.5)
    for name, kwargs in DEPTHWISE.items():
        layer = keras.layers.DepthwiseConv2D(**kwargs)
        layer.build((None, *INPUT_SHAPE))
        kernel, bias = layer.weights
        kernel.assign(known(tuple(kernel.shape), 1.0))
        bias.assign(known(tuple(bias.shape), 2.0))
        y = np.asarray(layer(x))
        assert tuple(layer.compute_output_shape((2, *INPUT_SHAPE))) == y.shape
        lines += _block(name, y)
    lines += ["}", "", "PADDING_REFERENCES = {"]
    for name, padding in PADDING.items():
        lines += _block(name, np.asarray(keras.layers.ZeroPadding2D(padding)(x)))
    lines += ["}", "", "CROPPING_REFERENCES = {"]
    for name, cropping in CROPPING.items():
        lines += _block(name, np.asarray(keras.layers.Cropping2D(cropping)(x)))
    lines.append("}")
    target = Path(__file__).with_name("keras_vision_references.py")
    target.write_text("\n".join(lines) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
