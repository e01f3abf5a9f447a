"""SeparableConv2D: values, gradients, shapes, configs, errors and training."""

from __future__ import annotations

import numpy as np
import pytest

import loopkit
from loopkit import layers
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers import Conv2D, Dense, DepthwiseConv2D, SeparableConv2D
from loopkit.testing import check_layer_gradients


def _naive(x, depthwise, pointwise, bias, strides, dilation, padding):
    """Separable convolution by its definition: loops over positions, taps, channels."""
    n, h, w, c = x.shape
    kh, kw, _, dm = depthwise.shape
    (sh, sw), (dh, dw) = strides, dilation
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if padding == "valid":
        oh, ow, top, left = (h - eh) // sh + 1, (w - ew) // sw + 1, 0, 0
    else:  # TensorFlow's "same": extra row/column at the bottom/right
        oh, ow = -(-h // sh), -(-w // sw)
        top = max((oh - 1) * sh + eh - h, 0) // 2
        left = max((ow - 1) * sw + ew - w, 0) // 2
    xp = np.zeros((n, h + eh + sh, w + ew + sw, c))
    xp[:, top : top + h, left : left + w] = x
    f = pointwise.shape[-1]
    y = np.zeros((n, oh, ow, f)) + bias
    for i in range(oh):
        for j in range(ow):
            for ch in range(c):
                for mult in range(dm):
                    d = np.zeros(n)
                    for a in range(kh):
                        for b in range(kw):
                            pixel = xp[:, i * sh + a * dh, j * sw + b * dw, ch]
                            d += pixel * depthwise[a, b, ch, mult]
                    y[:, i, j] += d[:, None] * pointwise[0, 0, ch * dm + mult]
    return y


CASES = [
    ({"filters": 4, "kernel_size": 3}, (5, 6, 2)),
    ({"filters": 2, "kernel_size": (2, 3), "depth_multiplier": 3}, (4, 5, 2)),
    ({"filters": 5, "kernel_size": 3, "padding": "same", "depth_multiplier": 2}, (5, 5, 3)),
    ({"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"}, (7, 6, 4)),
    ({"filters": 1, "kernel_size": (3, 2), "strides": (2, 1)}, (7, 5, 1)),
    ({"filters": 3, "kernel_size": 2, "dilation_rate": 2, "padding": "same"}, (6, 5, 3)),
]


@pytest.mark.parametrize(("kwargs", "input_shape"), CASES)
def test_forward_equals_depthwise_then_a_1x1_conv2d(rng, kwargs, input_shape):
    layer = SeparableConv2D(**kwargs, bias_initializer="random_normal")
    out_shape = layer.setup(input_shape, np.float64, rng)
    depth_args = {k: v for k, v in kwargs.items() if k != "filters"}
    depthwise = DepthwiseConv2D(**depth_args, use_bias=False)
    depthwise.setup(input_shape, np.float64, rng)
    depthwise.kernel.value[...] = layer.depthwise_kernel.value
    pointwise = Conv2D(kwargs["filters"], 1)
    pointwise.setup(depthwise.compute_output_shape(input_shape), np.float64, rng)
    pointwise.set_weights([layer.pointwise_kernel.value, layer.bias.value])
    x = rng.standard_normal((3, *input_shape))
    y = layer.forward(x)
    assert y.shape == (3, *out_shape)
    expected = pointwise.forward(depthwise.forward(x))
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("kwargs", "input_shape"), CASES[::2] + CASES[3:4])
def test_forward_matches_the_definition(rng, kwargs, input_shape):
    layer = SeparableConv2D(**kwargs, bias_initializer="random_normal")
    layer.setup(input_shape, np.float64, rng)
    x = rng.standard_normal((2, *input_shape))
    expected = _naive(
        x,
        layer.depthwise_kernel.value,
        layer.pointwise_kernel.value,
        layer.bias.value,
        layer.strides,
        layer.dilation_rate,
        layer.padding,
    )
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


def test_a_hand_computed_example():
    # 3x3 image, channel 0 = 0..8, channel 1 = ones; 2x2 depthwise kernels of ones
    # and twos give the window sum and 8 per position; pointwise sums them (filter 0)
    # and takes their difference (filter 1); bias 1 and -1.
    x = np.zeros((1, 3, 3, 2), np.float32)
    x[0, :, :, 0] = np.arange(9).reshape(3, 3)
    x[0, :, :, 1] = 1.0
    layer = SeparableConv2D(2, 2)
    layer.setup((3, 3, 2))
    layer.set_weights(
        [
            np.stack([np.ones((2, 2)), np.full((2, 2), 2.0)], axis=-1)[..., None],
            np.array([[1.0, 1.0], [1.0, -1.0]]).reshape(1, 1, 2, 2),
            np.array([1.0, -1.0]),
        ]
    )
    y = layer.forward(x)
    sums = np.array([[8.0, 12.0], [20.0, 24.0]])
    np.testing.assert_array_equal(y[0, :, :, 0], sums + 8 + 1)
    np.testing.assert_array_equal(y[0, :, :, 1], sums - 8 - 1)
    assert y.dtype == np.float32


@pytest.mark.parametrize(
    ("kwargs", "input_shape"),
    [
        ({"filters": 3, "kernel_size": 2, "depth_multiplier": 2}, (3, 4, 2)),
        ({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}, (5, 4, 3)),
        (
            {"filters": 2, "kernel_size": 2, "dilation_rate": (2, 1), "activation": "tanh"},
            (4, 3, 2),
        ),
        ({"filters": 1, "kernel_size": 3, "padding": "same", "use_bias": False}, (3, 3, 1)),
        (
            {"filters": 2, "kernel_size": 2, "strides": 2, "dilation_rate": 2},
            (5, 5, 2),
        ),
    ],
)
def test_backward_matches_finite_differences(rng, kwargs, input_shape):
    layer = SeparableConv2D(**kwargs, bias_initializer="random_normal")
    results = check_layer_gradients(layer, input_shape, rng=rng)
    assert {"depthwise_kernel", "pointwise_kernel", "x"} <= set(results)
    assert ("bias" in results) == layer.use_bias


def test_a_frozen_first_layer_writes_no_gradients(rng):
    layer = SeparableConv2D(2, 2)
    layer.setup((3, 3, 2), np.float64, rng)
    layer.trainable = False
    layer.input_grad_needed = False
    for p in layer.parameters:
        p.grad[...] = 7.0
    layer.forward(rng.standard_normal((2, 3, 3, 2)))
    assert layer.backward(rng.standard_normal((2, 2, 2, 2))) is None
    assert all((p.grad == 7.0).all() for p in layer.parameters)


def test_a_frozen_layer_still_passes_the_input_gradient(rng):
    layer = SeparableConv2D(3, 2, depth_multiplier=2, bias_initializer="random_normal")
    layer.setup((4, 4, 2), np.float64, rng)
    x, dy = rng.standard_normal((2, 4, 4, 2)), rng.standard_normal((2, 3, 3, 3))
    layer.forward(x)
    trained_dx = layer.backward(dy).copy()  # checked by finite differences above
    layer.trainable = False
    for p in layer.parameters:
        p.grad[...] = 7.0
    layer.forward(x)
    np.testing.assert_allclose(layer.backward(dy), trained_dx, rtol=1e-12, atol=1e-12)
    assert all((p.grad == 7.0).all() for p in layer.parameters)


def test_weights_have_keras_shapes_names_and_order():
    layer = SeparableConv2D(6, (3, 2), depth_multiplier=4)
    layer.setup((8, 8, 5))
    assert [w.shape for w in layer.get_weights()] == [(3, 2, 5, 4), (1, 1, 20, 6), (6,)]
    assert [p.name for p in layer.parameters] == [
        "depthwise_kernel",
        "pointwise_kernel",
        "bias",
    ]
    no_bias = SeparableConv2D(2, 3, use_bias=False)
    no_bias.setup((4, 4, 2))
    assert len(no_bias.get_weights()) == 2
    assert no_bias.count_params() == 3 * 3 * 2 + 2 * 2


def test_keras_defaults_and_argument_order():
    layer = SeparableConv2D(8, 3, (2, 2), "same", None, (1, 1), 2, "relu", False)
    assert layer.filters == 8 and layer.kernel_size == (3, 3)
    assert layer.strides == (2, 2) and layer.padding == "same"
    assert layer.depth_multiplier == 2 and not layer.use_bias
    with pytest.raises(TypeError):  # activity_regularizer's place: keyword-only after
        args = (8, 3, 1, "valid", None, 1, 1, None, True, *["zeros"] * 3, *[None] * 4)
        SeparableConv2D(*args)
    config = SeparableConv2D(4, 3).get_config()
    expected = {
        "filters": 4,
        "kernel_size": (3, 3),
        "strides": (1, 1),
        "padding": "valid",
        "data_format": None,
        "dilation_rate": (1, 1),
        "depth_multiplier": 1,
        "activation": None,
        "use_bias": True,
        "depthwise_initializer": "glorot_uniform",
        "pointwise_initializer": "glorot_uniform",
        "bias_initializer": "zeros",
        "depthwise_regularizer": None,
        "pointwise_regularizer": None,
        "bias_regularizer": None,
        "depthwise_constraint": None,
        "pointwise_constraint": None,
        "bias_constraint": None,
    }
    assert {k: config[k] for k in expected} == expected


def test_keras_second_name_is_the_same_class():
    assert layers.SeparableConvolution2D is SeparableConv2D
    assert layers.serialize(SeparableConv2D(2, 3))["class_name"] == "SeparableConv2D"


def test_shapes_in_sequential_and_functional_models(rng):
    model = loopkit.Sequential(
        [
            loopkit.Input(shape=(9, 8, 3)),
            SeparableConv2D(5, 3, strides=2, padding="same", depth_multiplier=2),
            SeparableConv2D(7, (2, 3)),
        ]
    )
    assert model.output_shape == (4, 2, 7)
    inputs = loopkit.Input(shape=(6, 6, 4))
    out = SeparableConv2D(2, 3, depth_multiplier=3)(inputs)
    assert tuple(out.shape[1:]) == (4, 4, 2)
    functional = loopkit.Model(inputs, out)
    x = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
    assert functional.predict(x, verbose=0).shape == (2, 4, 4, 2)


@pytest.mark.parametrize(
    "layer",
    [
        SeparableConv2D(3, 3),
        SeparableConv2D(
            4,
            (3, 1),
            strides=2,
            padding="SAME",
            depth_multiplier=2,
            activation="relu",
            use_bias=False,
            depthwise_initializer="he_normal",
            pointwise_initializer="lecun_normal",
            depthwise_regularizer="l2",
            pointwise_regularizer="l1",
            depthwise_constraint="max_norm",
            pointwise_constraint="non_neg",
        ),
    ],
)
def test_configs_round_trip(layer):
    config = layer.get_config()
    rebuilt = layers.deserialize(layers.serialize(layer))
    assert type(rebuilt) is SeparableConv2D
    assert rebuilt.get_config() == config
    assert SeparableConv2D.from_config(config).get_config() == config


def test_a_saved_model_loads_and_predicts_the_same(rng, tmp_path):
    from loopkit.saving.model_files import load_model

    model = loopkit.Sequential(
        [
            loopkit.Input(shape=(5, 5, 2)),
            SeparableConv2D(3, 3, depth_multiplier=2, bias_initializer="random_normal"),
            layers.Flatten(),
            Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    assert type(loaded.layers[0]) is SeparableConv2D
    x = rng.standard_normal((3, 5, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"filters": 0, "kernel_size": 3}, ConfigError, r"filters"),
        ({"filters": 2, "kernel_size": 0}, ConfigError, r"kernel_size=0; expected ints"),
        ({"filters": 2, "kernel_size": 3, "strides": (1, -1)}, ConfigError, r"strides"),
        ({"filters": 2, "kernel_size": 3, "depth_multiplier": 0}, ConfigError, r"depth_mu"),
        ({"filters": 2, "kernel_size": 3, "padding": "causal"}, ConfigError, r"padding"),
        (
            {"filters": 2, "kernel_size": 3, "data_format": "channels_first"},
            ConfigError,
            r"last only",
        ),
        ({"filters": 2, "kernel_size": 3, "activation": "relux"}, ValueError, r"relux"),
        ({"filters": 2, "kernel_size": 2.5}, TypeError, r"kernel_size=2\.5"),
        (
            {"filters": 2, "kernel_size": 3, "pointwise_initializer": "glorot"},
            ConfigError,
            r"'glorot'.*glorot_normal",
        ),
        (
            {"filters": 2, "kernel_size": 3, "pointwise_regularizer": "l3"},
            ConfigError,
            r"'l3'",
        ),
        (
            {"filters": 2, "kernel_size": 3, "depthwise_constraint": "maxnorm"},
            ConfigError,
            r"'maxnorm'.*max_norm",
        ),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        SeparableConv2D(**kwargs)


def test_bad_input_shapes_are_refused_at_build():
    with pytest.raises(ShapeError, match=r"\(height, width, channels\)"):
        SeparableConv2D(2, 3).setup((5, 5))
    with pytest.raises(ShapeError, match=r"window does not fit"):
        loopkit.Sequential([loopkit.Input(shape=(2, 5, 1)), SeparableConv2D(2, 3)])


def test_initializers_regularizers_and_constraints_reach_their_weights():
    layer = SeparableConv2D(
        3,
        2,
        depthwise_initializer="ones",
        pointwise_initializer="zeros",
        bias_initializer="ones",
        depthwise_regularizer="l2",
        pointwise_regularizer="l1",
        pointwise_constraint="non_neg",
    )
    layer.setup((3, 3, 2))
    depthwise, pointwise, bias = layer.parameters
    np.testing.assert_array_equal(depthwise.value, np.ones((2, 2, 2, 1)))
    np.testing.assert_array_equal(pointwise.value, np.zeros((1, 1, 2, 3)))
    np.testing.assert_array_equal(bias.value, np.ones(3))
    assert depthwise.regularizer is not None and pointwise.regularizer is not None
    assert bias.regularizer is None
    assert depthwise.constraint is None and pointwise.constraint is not None
    pointwise.value[0, 0, 0, 0] = -3.0
    depthwise.value[0, 0, 0, 0] = -3.0
    layer.apply_constraints()
    assert pointwise.value[0, 0, 0, 0] == 0.0  # non_neg projected it
    assert depthwise.value[0, 0, 0, 0] == -3.0  # no constraint there


def test_a_tiny_separable_model_trains(rng):
    x = rng.standard_normal((64, 6, 6, 2)).astype(np.float32)
    target = (x[..., 0].mean(axis=(1, 2)) - x[..., 1].mean(axis=(1, 2)))[:, None]
    model = loopkit.Sequential(
        [
            loopkit.Input(shape=(6, 6, 2)),
            SeparableConv2D(4, 3, padding="same", depth_multiplier=2, activation="relu"),
            SeparableConv2D(4, 3, padding="same"),
            layers.GlobalAveragePooling2D(),
            Dense(1),
        ]
    )
    model.compile(optimizer=loopkit.optimizers.Adam(0.01), loss="mse")
    before = model.evaluate(x, target, verbose=0)
    first = model.layers[1].depthwise_kernel.value.copy()
    model.fit(x, target, epochs=15, batch_size=16, verbose=0)
    assert model.evaluate(x, target, verbose=0) < 0.5 * before
    assert not np.array_equal(model.layers[1].depthwise_kernel.value, first)
