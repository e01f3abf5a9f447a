"""Conv2DTranspose: Keras sizes and outputs, a naive scatter, Conv2D adjoint, gradients."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from keras_conv_transpose_references import CASES, FILTERS, INPUT_SHAPE, REFERENCES

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers import Conv2D, Conv2DTranspose
from loopkit.testing import check_layer_gradients


def reference_conv_transpose(x, kernel, bias, strides, dilation, out_hw, crop):
    """The scatter definition by explicit loops, float64.

    Every input pixel adds itself times the kernel (``(kh, kw, filters, in)``) into the
    full output ``((h - 1) * sh + span_h, ...)``; the result is the ``out_hw`` window
    starting ``crop = (top, left)`` into it, zeros where the window passes its end.
    """
    n, h, w, _ = x.shape
    kh, kw, filters, _ = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    full_h, full_w = (h - 1) * sh + (kh - 1) * dh + 1, (w - 1) * sw + (kw - 1) * dw + 1
    (oh, ow), (top, left) = out_hw, crop
    full = np.zeros((n, max(full_h, top + oh), max(full_w, left + ow), filters))
    for i in range(h):
        for j in range(w):
            for a in range(kh):
                for b in range(kw):
                    full[:, i * sh + a * dh, j * sw + b * dw, :] += (
                        x[:, i, j, :] @ kernel[a, b].T
                    )
    y = full[:, top : top + oh, left : left + ow, :]
    return y + (0.0 if bias is None else bias)


# Per axis: (in, kernel, stride, dilation, padding, output_padding, out, crop before).
# out: Keras's deconv_output_length. "valid": (in-1)*s + span + op, op defaulting to
# max(span, s) - span. "same": in*s; with op: (in-1)*s + span%2 + op. The crop is
# where Keras's (JAX) padding puts the window: total padding of the dilated input
# pad = s + span - 2 (no op) or span + span%2 - 2 + op, the larger half before but at
# most span-1, so crop = span-1 - min(ceil(pad/2), span-1).
AXIS_CASES = [
    (3, 3, 1, 1, "valid", None, 5, 0),  # 2*1 + 3
    (3, 3, 2, 1, "valid", None, 7, 0),  # 2*2 + 3
    (3, 2, 3, 1, "valid", None, 9, 0),  # 2*3 + 2 + (3-2): a zero row at the end
    (3, 3, 2, 1, "valid", 1, 8, 0),  # 2*2 + 3 + 1
    (3, 3, 1, 1, "same", None, 3, 1),  # pad 2: 1 before
    (3, 3, 2, 1, "same", None, 6, 0),  # pad 3: min(2, 2) before
    (3, 4, 2, 1, "same", None, 6, 1),  # pad 4: 2 before
    (3, 1, 2, 1, "same", None, 6, 0),  # pad 1: min(1, 0) before; one zero row after
    (3, 3, 2, 1, "same", 1, 6, 0),  # 2*2 + 1 + 1; pad 3: min(2, 2) before
    (3, 3, 2, 1, "same", 0, 5, 1),  # 2*2 + 1 + 0; pad 2: 1 before
    (3, 4, 2, 1, "same", 0, 4, 2),  # 2*2 + 0 + 0; pad 2: 1 before
    (3, 2, 1, 2, "same", None, 3, 1),  # span 3, pad 2: 1 before
    (3, 2, 1, 2, "valid", None, 5, 0),  # 2*1 + 3
]


@pytest.mark.parametrize(
    ("row", "col"),
    [(r, r) for r in AXIS_CASES]
    + [
        (AXIS_CASES[1], AXIS_CASES[2]),  # "valid", strides (2, 3), kernels (3, 2)
        (AXIS_CASES[4], AXIS_CASES[5]),  # strides (1, 2), "same"
    ],
)
def test_output_size_and_values_match_keras_formula_and_the_scatter(row, col) -> None:
    rng = np.random.default_rng(1)
    layer = Conv2DTranspose(
        filters=2,
        kernel_size=(row[1], col[1]),
        strides=(row[2], col[2]),
        dilation_rate=(row[3], col[3]),
        padding=row[4],
        output_padding=None if row[5] is None else (row[5], col[5]),
    )
    out_shape = layer.setup((row[0], col[0] + 1, 3), np.float64, rng)
    col_out = col[6] + col[2]  # one more input column: one more stride in every formula
    assert out_shape == (row[6], col_out, 2)
    assert layer.compute_output_shape((row[0], col[0] + 1, 3)) == out_shape
    layer.bias.value[...] = rng.standard_normal(2)
    x = rng.standard_normal((2, row[0], col[0] + 1, 3))
    expected = reference_conv_transpose(
        x,
        layer.kernel.value,
        layer.bias.value,
        layer.strides,
        layer.dilation_rate,
        (row[6], col_out),
        (row[7], col[7]),
    )
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


def known(shape: tuple[int, ...], k: float) -> np.ndarray:
    """The formula tests/make_keras_conv_transpose_references.py gave Keras."""
    n = int(np.prod(shape))
    return (0.6 * np.sin(0.7 * np.arange(n) + k)).reshape(shape).astype(np.float32)


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_keras(name: str) -> None:
    shape, values = REFERENCES[name]
    layer = Conv2DTranspose(FILTERS, **CASES[name])
    assert layer.setup(INPUT_SHAPE) == tuple(shape[1:])
    layer.set_weights([known(w.shape, 1.0 + i) for i, w in enumerate(layer.weights)])
    y = layer.forward(known((2, *INPUT_SHAPE), 0.5))
    np.testing.assert_allclose(y, values.reshape(shape), rtol=1e-5, atol=1e-6)


def test_kernel_is_out_before_in_and_keras_weights_load() -> None:
    layer = Conv2DTranspose(5, (3, 2))
    layer.setup((4, 4, 3))
    assert [p.shape for p in layer.weights] == [(3, 2, 5, 3), (5,)]
    assert [p.name for p in layer.weights] == ["kernel", "bias"]
    kernel = np.arange(90, dtype=np.float32).reshape(3, 2, 5, 3)
    layer.set_weights([kernel, np.ones(5)])
    assert layer.kernel.value.dtype == np.float32
    y = layer.forward(np.ones((1, 4, 4, 3), np.float32))
    assert y.dtype == np.float32 and y.shape == (1, 6, 5, 5)
    # the top-left output pixel is only reached by input (0, 0) with tap (0, 0)
    np.testing.assert_allclose(y[0, 0, 0], kernel[0, 0].sum(axis=1) + 1)


@pytest.mark.parametrize(
    ("hw", "kernel_size", "strides", "padding", "dilation_rate"),
    [
        ((4, 5), 3, 1, "valid", 1),
        ((4, 5), 3, 2, "valid", 1),
        ((4, 5), 2, 3, "valid", 1),
        ((4, 5), 3, 1, "same", 1),
        ((4, 5), 3, 2, "same", 1),
        ((4, 5), (4, 3), 2, "same", 1),
        ((4, 5), 2, 1, "same", 2),
    ],
)
def test_forward_is_the_adjoint_of_conv2d(
    hw, kernel_size, strides, padding, dilation_rate
) -> None:
    """<conv(u), x> = <u, conv_transpose(x)> with the same (kh, kw, filters, in) array.

    Conv2D maps the transposed layer's output (``filters`` channels) back to its input
    (``in`` channels); its kernel ``(kh, kw, in_conv, filters_conv)`` is that array.
    """
    rng = np.random.default_rng(2)
    convt = Conv2DTranspose(
        4,
        kernel_size,
        strides=strides,
        padding=padding,
        dilation_rate=dilation_rate,
        use_bias=False,
    )
    out_shape = convt.setup((*hw, 3), np.float64, rng)
    conv = Conv2D(
        3,
        kernel_size,
        strides=strides,
        padding=padding,
        dilation_rate=dilation_rate,
        use_bias=False,
    )
    assert conv.setup(out_shape, np.float64, rng) == (*hw, 3)
    conv.kernel.value[...] = convt.kernel.value
    x = rng.standard_normal((2, *hw, 3))
    u = rng.standard_normal((2, *out_shape))
    lhs = np.sum(conv.forward(u) * x)
    rhs = np.sum(u * convt.forward(x))
    assert lhs == pytest.approx(rhs, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 3, "padding": "valid"},
        {"kernel_size": 3, "padding": "same"},
        {"kernel_size": 3, "strides": 2, "padding": "valid"},
        {"kernel_size": (3, 4), "strides": 2, "padding": "same"},
        {"kernel_size": 3, "strides": 2, "padding": "same", "output_padding": (0, 1)},
        {"kernel_size": 2, "dilation_rate": 2, "padding": "same"},
        {
            "kernel_size": 3,
            "strides": 2,
            "padding": "same",
            "activation": "tanh",
            "bias_initializer": "random_normal",
        },
        {"kernel_size": 3, "strides": 2, "activation": "relu", "use_bias": False},
    ],
)
def test_gradients_match_finite_differences(kwargs) -> None:
    check_layer_gradients(Conv2DTranspose(2, **kwargs), (3, 4, 3), batch_size=2)


def test_frozen_layer_writes_no_kernel_gradient_but_passes_dx() -> None:
    rng = np.random.default_rng(3)
    layer = Conv2DTranspose(2, 3, strides=2, padding="same", trainable=False)
    layer.setup((3, 3, 2), np.float64, rng)
    layer.forward(rng.standard_normal((2, 3, 3, 2)))
    dx = layer.backward(rng.standard_normal((2, 6, 6, 2)))
    assert dx is not None and dx.shape == (2, 3, 3, 2)
    assert not layer.kernel.grad.any()


def test_an_autoencoder_on_digits_learns() -> None:
    from sklearn.datasets import load_digits

    from loopkit import Sequential
    from loopkit.optimizers import Adam

    x = (load_digits().images / 16.0).astype(np.float32)[..., None]
    model = Sequential(
        [
            Conv2D(
                16, 3, strides=2, padding="same", activation="relu", input_shape=(8, 8, 1)
            ),
            Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid"),
        ]
    )
    model.compile(Adam(0.01), "mse")
    losses = model.fit(x, x, epochs=5, batch_size=32, verbose=0).history["loss"]
    assert model.predict(x[:2], verbose=0).shape == (2, 8, 8, 1)
    assert all(b < a for a, b in itertools.pairwise(losses))
    # Well under the error of the best constant output, the mean image (0.073).
    assert losses[-1] < 0.1 * float(np.mean((x - x.mean(axis=0)) ** 2))


def test_config_round_trip_and_model_save_load(tmp_path: Path) -> None:
    from loopkit import Sequential, load_model
    from loopkit.layers import deserialize, serialize

    layer = Conv2DTranspose(
        3,
        (3, 2),
        strides=2,
        padding="same",
        output_padding=1,
        activation="relu",
        kernel_regularizer="l2",
    )
    config = layer.get_config()
    assert config["output_padding"] == (1, 1) and config["strides"] == (2, 2)
    clone = Conv2DTranspose.from_config(config)
    assert clone.get_config() == config
    assert deserialize(serialize(layer)).get_config() == config

    model = Sequential([layer, Conv2DTranspose(1, 2)])
    model.build((None, 4, 4, 2))
    model.compile("adam", "mse")
    path = tmp_path / "model.keras"
    model.save(str(path))
    x = np.random.default_rng(4).random((2, 4, 4, 2)).astype(np.float32)
    loaded = load_model(str(path))
    assert type(loaded.layers[0]) is Conv2DTranspose
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_bad_arguments_fail_clearly() -> None:
    with pytest.raises(
        ConfigError, match=r"output_padding=\(2, 2\) with strides=\(2, 2\).*< its stride"
    ):
        Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ConfigError, match=r"output_padding=\(1, 1\) with strides=\(1, 1\)"):
        Conv2DTranspose(2, 3, output_padding=1)
    with pytest.raises(ConfigError, match=r"output_padding=\(-1, 0\)"):
        Conv2DTranspose(2, 3, strides=2, output_padding=(-1, 0))
    with pytest.raises(TypeError, match=r"output_padding='1'; expected None, an int"):
        Conv2DTranspose(2, 3, strides=2, output_padding="1")
    with pytest.raises(ConfigError, match=r"kernel_size=0; expected ints > 0"):
        Conv2DTranspose(2, 0)
    with pytest.raises(
        TypeError, match=r"kernel_size=\(3, 3, 3\); expected an int or a pair"
    ):
        Conv2DTranspose(2, (3, 3, 3))
    with pytest.raises(
        ConfigError, match=r"strides > 1 cannot be combined with dilation_rate"
    ):
        Conv2DTranspose(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ConfigError, match=r"padding='full'"):
        Conv2DTranspose(2, 3, padding="full")
    with pytest.raises(ConfigError, match=r"channels-last"):
        Conv2DTranspose(2, 3, data_format="channels_first")
    with pytest.raises(
        ShapeError, match=r"expects samples of shape \(height, width, channels\)"
    ):
        Conv2DTranspose(2, 3).setup((8, 8))
