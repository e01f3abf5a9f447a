"""Write tests/keras_separable_references.py: Keras 3's SeparableConv1D/2D outputs.

Run in a throwaway environment that has Keras 3 and JAX (the project never imports
Keras)::

    python3 -m venv /tmp/kenv && /tmp/kenv/bin/pip install keras jax
    KERAS_BACKEND=jax /tmp/kenv/bin/python tests/make_keras_separable_references.py

The input is ``known((2, 5, 6, 3), 0.5)`` (2-D) or ``known((2, 7, 3), 0.5)`` (1-D)
and the weights, in Keras's order (depthwise_kernel, pointwise_kernel, bias),
``known(shape, 1.0 + i)`` for the i-th, formulas the tests repeat, so only Keras's
outputs (shape, and values in C order) are stored, one per set of layer arguments.
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
INPUT_SHAPE_1D = (7, 3)

# SeparableConv2D arguments: valid/same, strides, depth multipliers, dilation,
# rectangular kernels, no bias, an activation (Keras refuses strides and dilation
# both > 1).
SEPARABLE: dict[str, dict[str, Any]] = {
    "valid_k3_f4": {"filters": 4, "kernel_size": 3},
    "valid_k3_m2_f5": {"filters": 5, "kernel_size": 3, "depth_multiplier": 2},
    "same_k3_s2_m3_f2": {
        "filters": 2,
        "kernel_size": 3,
        "strides": 2,
        "padding": "same",
        "depth_multiplier": 3,
    },
    "same_k4_s2_f3": {"filters": 3, "kernel_size": 4, "strides": 2, "padding": "same"},
    "valid_k23_s12_f2_nobias": {
        "filters": 2,
        "kernel_size": (2, 3),
        "strides": (1, 2),
        "use_bias": False,
    },
    "same_k2_d2_m2_f3": {
        "filters": 3,
        "kernel_size": 2,
        "dilation_rate": 2,
        "padding": "same",
        "depth_multiplier": 2,
    },
    "valid_k3_d21_relu_f4": {
        "filters": 4,
        "kernel_size": 3,
        "dilation_rate": (2, 1),
        "activation": "relu",
    },
}

SEPARABLE_1D: dict[str, dict[str, Any]] = {
    "valid_k3_f4": {"filters": 4, "kernel_size": 3},
    "same_k3_s2_m2_f3": {
        "filters": 3,
        "kernel_size": 3,
        "strides": 2,
        "padding": "same",
        "depth_multiplier": 2,
    },
    "valid_k2_d3_f2_nobias": {
        "filters": 2,
        "kernel_size": 2,
        "dilation_rate": 3,
        "use_bias": False,
    },
    "same_k4_m3_tanh_f2": {
        "filters": 2,
        "kernel_size": 4,
        "padding": "same",
        "depth_multiplier": 3,
        "activation": "tanh",
    },
}


def _record(make: Any, kwargs: dict[str, Any], input_shape: tuple[int, ...]) -> np.ndarray:
    layer = make(**kwargs)
    layer.build((None, *input_shape))
    names = [w.path.split("/")[-1] for w in layer.weights]
    expected = ["depthwise_kernel", "pointwise_kernel", "bias"]
    assert names == expected[: len(names)], names
    for i, w in enumerate(layer.weights):
        w.assign(known(tuple(w.shape), 1.0 + i))
    y = np.asarray(layer(known((2, *input_shape), 0.5)))
    assert tuple(layer.compute_output_shape((2, *input_shape))) == y.shape
    return y


def _block(name: str, y: np.ndarray) -> list[str]:
    return [
        f"    {name!r}: (",
        f"        {y.shape},",
        literal(y.ravel(), 8, width=80) + ",",
        "    ),",
    ]


def main() -> None:
    lines = [
        '"""Keras 3 (JAX backend) results for tests/test_keras_separable_references.py.',
        "",
        "Written by tests/make_keras_separable_references.py with Keras "
        f"{keras.__version__}; do not edit by hand.",
        '"""',
        "",
        "import numpy as np",
        "",
        f"INPUT_SHAPE = {INPUT_SHAPE}",
        "SEPARABLE = " + pprint.pformat(SEPARABLE, width=80, sort_dicts=False),
        f"INPUT_SHAPE_1D = {INPUT_SHAPE_1D}",
        "SEPARABLE_1D = " + pprint.pformat(SEPARABLE_1D, width=80, sort_dicts=False),
        "",
        "# (output shape, output values in C order)",
        "SEPARABLE_REFERENCES = {",
    ]
    for name, kwargs in SEPARABLE.items():
        lines += _block(name, _record(keras.layers.SeparableConv2D, kwargs, INPUT_SHAPE))
    lines += ["}", "", "SEPARABLE_1D_REFERENCES = {"]
    for name, kwargs in SEPARABLE_1D.items():
        y = _record(keras.layers.SeparableConv1D, kwargs, INPUT_SHAPE_1D)
        lines += _block(name, y)
    lines.append("}")
    target = Path(__file__).with_name("keras_separable_references.py")
    target.write_text("\n".join(lines) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
