"""SeparableConv1D: values, gradients, shapes, configs, errors and training."""

from __future__ import annotations

import numpy as np
import pytest

import loopkit
from loopkit import layers
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers import Conv1D, Dense, SeparableConv1D
from loopkit.testing import check_layer_gradients


def _naive(x, depthwise, pointwise, bias, stride, dilation, padding):
    """Separable 1-D convolution by its definition: loops over steps, taps, channels."""
    n, steps, c = x.shape
    k, _, dm = depthwise.shape
    window = (k - 1) * dilation + 1
    if padding == "valid":
        out, before = (steps - window) // stride + 1, 0
    else:  # "same": the extra zero after
        out = -(-steps // stride)
        before = max((out - 1) * stride + window - steps, 0) // 2
    xp = np.zeros((n, steps + window + stride, c))
    xp[:, before : before + steps] = x
    y = np.zeros((n, out, pointwise.shape[-1])) + bias
    for t in range(out):
        for ch in range(c):
            for mult in range(dm):
                d = sum(
                    xp[:, t * stride + a * dilation, ch] * depthwise[a, ch, mult]
                    for a in range(k)
                )
                y[:, t] += d[:, None] * pointwise[0, ch * dm + mult]
    return y


CASES = [
    ({"filters": 4, "kernel_size": 3}, (7, 2)),
    ({"filters": 2, "kernel_size": 2, "depth_multiplier": 3}, (5, 2)),
    ({"filters": 5, "kernel_size": 3, "padding": "same", "depth_multiplier": 2}, (6, 3)),
    ({"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"}, (7, 4)),
    ({"filters": 3, "kernel_size": 2, "dilation_rate": 3}, (8, 1)),
]


@pytest.mark.parametrize(("kwargs", "input_shape"), CASES)
def test_forward_matches_the_definition(rng, kwargs, input_shape):
    layer = SeparableConv1D(**kwargs, bias_initializer="random_normal")
    out_shape = layer.setup(input_shape, np.float64, rng)
    x = rng.standard_normal((3, *input_shape))
    y = layer.forward(x)
    assert y.shape == (3, *out_shape)
    expected = _naive(
        x,
        layer.depthwise_kernel.value,
        layer.pointwise_kernel.value,
        layer.bias.value,
        layer.strides,
        layer.dilation_rate,
        layer.padding,
    )
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_with_depth_multiplier_1_it_is_a_per_channel_conv1d_then_a_1x1(rng):
    x = rng.standard_normal((2, 9, 3))
    layer = SeparableConv1D(4, 3, padding="same", bias_initializer="random_normal")
    layer.setup((9, 3), np.float64, rng)
    pointwise = Conv1D(4, 1)
    pointwise.setup((9, 3), np.float64, rng)
    pointwise.set_weights([layer.pointwise_kernel.value, layer.bias.value])
    per_channel = []
    for ch in range(3):
        conv = Conv1D(1, 3, padding="same", use_bias=False)
        conv.setup((9, 1), np.float64, rng)
        conv.kernel.value[...] = layer.depthwise_kernel.value[:, ch : ch + 1]
        per_channel.append(conv.forward(x[..., ch : ch + 1]).copy())
    expected = pointwise.forward(np.concatenate(per_channel, axis=-1))
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "input_shape"),
    [
        ({"filters": 3, "kernel_size": 2, "depth_multiplier": 2}, (5, 2)),
        ({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}, (6, 3)),
        (
            {"filters": 2, "kernel_size": 2, "dilation_rate": 2, "activation": "tanh"},
            (5, 2),
        ),
        ({"filters": 1, "kernel_size": 3, "padding": "same", "use_bias": False}, (4, 1)),
    ],
)
def test_backward_matches_finite_differences(rng, kwargs, input_shape):
    layer = SeparableConv1D(**kwargs, bias_initializer="random_normal")
    results = check_layer_gradients(layer, input_shape, rng=rng)
    assert {"depthwise_kernel", "pointwise_kernel", "x"} <= set(results)


def test_weights_config_and_second_name():
    layer = SeparableConv1D(6, 3, depth_multiplier=4)
    layer.setup((8, 5))
    assert [w.shape for w in layer.get_weights()] == [(3, 5, 4), (1, 20, 6), (6,)]
    assert [p.name for p in layer.parameters] == [
        "depthwise_kernel",
        "pointwise_kernel",
        "bias",
    ]
    positional = SeparableConv1D(8, (3,), 2, "same", None, 1, 2, "relu", False)
    assert positional.kernel_size == 3 and positional.strides == 2
    assert positional.depth_multiplier == 2 and not positional.use_bias
    config = layer.get_config()
    assert {k: config[k] for k in ("filters", "kernel_size", "strides", "padding")} == {
        "filters": 6,
        "kernel_size": 3,
        "strides": 1,
        "padding": "valid",
    }
    rebuilt = layers.deserialize(layers.serialize(layer))
    assert type(rebuilt) is SeparableConv1D and rebuilt.get_config() == config
    assert layers.SeparableConvolution1D is SeparableConv1D


def test_shapes_in_models_and_any_length_sequences(rng):
    model = loopkit.Sequential(
        [
            loopkit.Input(shape=(9, 3)),
            SeparableConv1D(5, 3, strides=2, padding="same", depth_multiplier=2),
            SeparableConv1D(7, 2),
        ]
    )
    assert model.output_shape == (4, 7)
    inputs = loopkit.Input(shape=(None, 2))
    out = SeparableConv1D(3, 3)(inputs)
    assert tuple(out.shape[1:]) == (None, 3)
    functional = loopkit.Model(inputs, out)
    for steps in (5, 8):
        x = rng.standard_normal((2, steps, 2)).astype(np.float32)
        assert functional.predict(x, verbose=0).shape == (2, steps - 2, 3)


def test_a_saved_model_loads_and_predicts_the_same(rng, tmp_path):
    from loopkit.saving.model_files import load_model

    model = loopkit.Sequential(
        [
            loopkit.Input(shape=(6, 2)),
            SeparableConv1D(3, 3, depth_multiplier=2, bias_initializer="random_normal"),
            layers.Flatten(),
            Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    x = rng.standard_normal((3, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"filters": 0, "kernel_size": 3}, ConfigError, r"filters"),
        ({"filters": 2, "kernel_size": 0}, ConfigError, r"kernel_size"),
        ({"filters": 2, "kernel_size": 3, "padding": "causal"}, ConfigError, r"padding"),
        (
            {"filters": 2, "kernel_size": 3, "data_format": "channels_first"},
            ConfigError,
            r"last only",
        ),
        (
            {"filters": 2, "kernel_size": 3, "depth_multiplier": -1},
            ConfigError,
            r"depth_mu",
        ),
        (
            {"filters": 2, "kernel_size": 3, "pointwise_initializer": "glorot"},
            ConfigError,
            r"'glorot'",
        ),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        SeparableConv1D(**kwargs)


def test_bad_input_shapes_are_refused_at_build():
    with pytest.raises(ShapeError, match=r"\(steps, channels\)"):
        SeparableConv1D(2, 3).setup((5, 5, 1))
    with pytest.raises(ShapeError, match=r"shorter than its window"):
        loopkit.Sequential([loopkit.Input(shape=(2, 1)), SeparableConv1D(2, 3)])


def test_a_tiny_model_trains(rng):
    x = rng.standard_normal((64, 10, 2)).astype(np.float32)
    target = (x[..., 0].mean(axis=1) - x[..., 1].mean(axis=1))[:, None]
    model = loopkit.Sequential(
        [
            loopkit.Input(shape=(10, 2)),
            SeparableConv1D(4, 3, padding="same", depth_multiplier=2, activation="relu"),
            layers.GlobalAveragePooling1D(),
            Dense(1),
        ]
    )
    model.compile(optimizer=loopkit.optimizers.Adam(0.01), loss="mse")
    before = model.evaluate(x, target, verbose=0)
    model.fit(x, target, epochs=15, batch_size=16, verbose=0)
    assert model.evaluate(x, target, verbose=0) < 0.5 * before
