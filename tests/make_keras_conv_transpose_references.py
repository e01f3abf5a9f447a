"""Write tests/keras_conv_transpose_references.py: Keras 3's Conv2DTranspose outputs.

Run in a throwaway environment that has Keras 3 and JAX (the project never imports
Keras)::

    python3 -m venv /tmp/kenv && /tmp/kenv/bin/pip install keras jax
    KERAS_BACKEND=jax /tmp/kenv/bin/python tests/make_keras_conv_transpose_references.py

The input is ``known((2, 3, 4, 3), 0.5)`` and the kernel and bias ``known(shape,
1.0)`` and ``known(shape, 2.0)``, formulas the tests repeat, so only Keras's outputs
(shape, and values in C order) are stored, one per set of layer arguments in ``CASES``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np
from make_keras_sequence_references import known, literal

INPUT_SHAPE, FILTERS = (3, 4, 3), 2

# Layer arguments besides filters=2: valid/same, strides 1-3, output_padding,
# dilation, rectangular kernels and strides.
CASES: dict[str, dict[str, Any]] = {
    "valid_k3_s1": {"kernel_size": 3},
    "valid_k3_s2": {"kernel_size": 3, "strides": 2},
    "valid_k2_s3": {"kernel_size": 2, "strides": 3},
    "valid_k3_s2_op1": {"kernel_size": 3, "strides": 2, "output_padding": 1},
    "valid_k32_s23_op10": {
        "kernel_size": (3, 2),
        "strides": (2, 3),
        "output_padding": (1, 0),
    },
    "same_k3_s1": {"kernel_size": 3, "padding": "same"},
    "same_k3_s2": {"kernel_size": 3, "strides": 2, "padding": "same"},
    "same_k4_s2": {"kernel_size": 4, "strides": 2, "padding": "same"},
    "same_k1_s2": {"kernel_size": 1, "strides": 2, "padding": "same"},
    "same_k3_s2_op1": {
        "kernel_size": 3,
        "strides": 2,
        "padding": "same",
        "output_padding": 1,
    },
    "same_k3_s2_op0": {
        "kernel_size": 3,
        "strides": 2,
        "padding": "same",
        "output_padding": 0,
    },
    "same_k4_s2_op0": {
        "kernel_size": 4,
        "strides": 2,
        "padding": "same",
        "output_padding": 0,
    },
    "same_k43_s32_op21": {
        "kernel_size": (4, 3),
        "strides": (3, 2),
        "padding": "same",
        "output_padding": (2, 1),
    },
    "same_k2_d2": {"kernel_size": 2, "dilation_rate": 2, "padding": "same"},
    "valid_k3_d2_relu": {"kernel_size": 3, "dilation_rate": 2, "activation": "relu"},
}


def main() -> None:
    lines = [
        '"""Keras 3 (JAX backend) results for tests/test_conv2d_transpose.py.',
        "",
        "Written by tests/make_keras_conv_transpose_references.py with Keras "
        f"{keras.__version__};",
        "do not edit by hand.",
        '"""',
        "",
        "import numpy as np",
        "",
        f"INPUT_SHAPE, FILTERS = {INPUT_SHAPE}, {FILTERS}",
        "",
        "# Conv2DTranspose(FILTERS, **CASES[name]) gives REFERENCES[name].",
        "CASES = {",
        *(
            line
            for name, kwargs in CASES.items()
            for line in (
                f"    {name!r}: {{",
                *(f"        {k!r}: {v!r}," for k, v in kwargs.items()),
                "    },",
            )
        ),
        "}",
        "",
        "# (output shape, output values in C order)",
        "REFERENCES = {",
    ]
    x = known((2, *INPUT_SHAPE), 0.5)
    for name, kwargs in CASES.items():
        layer = keras.layers.Conv2DTranspose(FILTERS, **kwargs)
        layer.build((None, *INPUT_SHAPE))
        kernel, bias = layer.weights
        kernel.assign(known(tuple(kernel.shape), 1.0))
        bias.assign(known(tuple(bias.shape), 2.0))
        y = np.asarray(layer(x))
        assert tuple(layer.compute_output_shape((2, *INPUT_SHAPE))) == y.shape
        lines.append(f"    {name!r}: (")
        lines.append(f"        {y.shape},")
        lines.append(literal(y.ravel(), 8, width=80) + ",")
        lines.append("    ),")
    lines.append("}")
    target = Path(__file__).with_name("keras_conv_transpose_references.py")
    target.write_text("\n".join(lines) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
