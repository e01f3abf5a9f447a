"""DepthwiseConv2D: values, gradients, shapes, configs, errors and training."""

from __future__ import annotations

import numpy as np
import pytest

import loopkit
from loopkit import layers
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers import Conv2D, Dense, DepthwiseConv2D
from loopkit.testing import check_layer_gradients


def _reference(x, kernel, bias, strides, dilation, padding):
    """Depthwise convolution by its definition: loops over positions and taps."""
    n, h, w, c = x.shape
    kh, kw, _, dm = kernel.shape
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
    y = np.zeros((n, oh, ow, c, dm))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    pixel = xp[:, i * sh + a * dh, j * sw + b * dw]  # (n, c)
                    y[:, i, j] += pixel[:, :, None] * kernel[a, b]
    return y.reshape(n, oh, ow, c * dm) + bias


@pytest.mark.parametrize(
    ("kwargs", "input_shape"),
    [
        ({"kernel_size": 3}, (5, 6, 2)),
        ({"kernel_size": (2, 3), "depth_multiplier": 3}, (4, 5, 2)),
        ({"kernel_size": 3, "padding": "same", "depth_multiplier": 2}, (5, 5, 3)),
        ({"kernel_size": 3, "strides": 2, "padding": "same"}, (7, 6, 4)),
        ({"kernel_size": (3, 2), "strides": (2, 1)}, (7, 5, 1)),
        ({"kernel_size": 2, "dilation_rate": 2, "padding": "same"}, (6, 5, 3)),
    ],
)
def test_forward_matches_the_definition(rng, kwargs, input_shape):
    layer = DepthwiseConv2D(**kwargs, bias_initializer="random_normal")
    out_shape = layer.setup(input_shape, np.float64, rng)
    x = rng.standard_normal((3, *input_shape))
    y = layer.forward(x)
    expected = _reference(
        x,
        layer.kernel.value,
        layer.bias.value,
        layer.strides,
        layer.dilation_rate,
        layer.padding,
    )
    assert y.shape == (3, *out_shape)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_a_hand_computed_example():
    # One 3x3 image, two channels, a 2x2 kernel of ones for channel 0 and of 2s for
    # channel 1, depth_multiplier 1: each output is the window sum (times 2).
    x = np.zeros((1, 3, 3, 2), np.float32)
    x[0, :, :, 0] = np.arange(9).reshape(3, 3)
    x[0, :, :, 1] = 1.0
    layer = DepthwiseConv2D(2, bias_initializer="ones")
    layer.setup((3, 3, 2))
    layer.kernel.value[..., 0, 0] = 1.0
    layer.kernel.value[..., 1, 0] = 2.0
    y = layer.forward(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[8 + 1, 12 + 1], [20 + 1, 24 + 1]])
    np.testing.assert_array_equal(y[0, :, :, 1], np.full((2, 2), 8 + 1))
    assert y.dtype == np.float32


def test_equals_conv2d_with_one_group_per_channel(rng):
    # Keras's output channel order c * depth_multiplier + m is Conv2D's group order.
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    depthwise = DepthwiseConv2D(3, padding="same", depth_multiplier=2)
    depthwise.setup((6, 6, 3))
    grouped = Conv2D(6, 3, padding="same", groups=3)
    grouped.setup((6, 6, 3))
    grouped.kernel.value[...] = depthwise.kernel.value.reshape(3, 3, 1, 6)
    np.testing.assert_allclose(
        depthwise.forward(x), grouped.forward(x), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    ("kwargs", "input_shape"),
    [
        ({"kernel_size": 2, "depth_multiplier": 2}, (3, 4, 2)),
        ({"kernel_size": 3, "strides": 2, "padding": "same"}, (5, 4, 3)),
        ({"kernel_size": 2, "dilation_rate": (2, 1), "activation": "tanh"}, (4, 3, 2)),
        ({"kernel_size": 3, "padding": "same", "use_bias": False}, (3, 3, 1)),
    ],
)
def test_backward_matches_finite_differences(rng, kwargs, input_shape):
    layer = DepthwiseConv2D(**kwargs, bias_initializer="random_normal")
    results = check_layer_gradients(layer, input_shape, rng=rng)
    assert "kernel" in results and "x" in results


def test_a_frozen_layer_first_in_a_model_writes_no_gradients(rng):
    layer = DepthwiseConv2D(2)
    layer.setup((3, 3, 2), np.float64, rng)
    layer.trainable = False
    layer.input_grad_needed = False
    layer.kernel.grad[...] = 7.0
    layer.forward(rng.standard_normal((2, 3, 3, 2)))
    assert layer.backward(rng.standard_normal((2, 2, 2, 2))) is None
    assert (layer.kernel.grad == 7.0).all()


def test_weights_have_keras_shapes_and_names():
    layer = DepthwiseConv2D((3, 2), depth_multiplier=4)
    layer.setup((8, 8, 5))
    assert layer.kernel.value.shape == (3, 2, 5, 4)
    assert layer.bias.value.shape == (20,)
    assert [w.shape for w in layer.get_weights()] == [(3, 2, 5, 4), (20,)]
    assert [p.name for p in layer.parameters] == ["kernel", "bias"]
    no_bias = DepthwiseConv2D(3, use_bias=False)
    no_bias.setup((4, 4, 2))
    assert len(no_bias.get_weights()) == 1


def test_keras_defaults_and_argument_order():
    layer = DepthwiseConv2D(3, (2, 2), "same", 2, None, (1, 1), "relu", False)
    assert layer.strides == (2, 2) and layer.padding == "same"
    assert layer.depth_multiplier == 2 and not layer.use_bias
    config = DepthwiseConv2D(3).get_config()
    expected = {
        "kernel_size": (3, 3),
        "strides": (1, 1),
        "padding": "valid",
        "depth_multiplier": 1,
        "data_format": None,
        "dilation_rate": (1, 1),
        "activation": None,
        "use_bias": True,
        "depthwise_initializer": "glorot_uniform",
        "bias_initializer": "zeros",
        "depthwise_regularizer": None,
        "bias_regularizer": None,
        "depthwise_constraint": None,
        "bias_constraint": None,
    }
    assert {k: config[k] for k in expected} == expected


def test_shapes_in_sequential_and_functional_models(rng):
    model = loopkit.Sequential(
        [
            loopkit.Input(shape=(9, 8, 3)),
            DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2),
            DepthwiseConv2D((2, 3)),
        ]
    )
    assert model.output_shape == (4, 2, 6)
    inputs = loopkit.Input(shape=(6, 6, 4))
    out = DepthwiseConv2D(3, depth_multiplier=3)(inputs)
    assert tuple(out.shape[1:]) == (4, 4, 12)
    functional = loopkit.Model(inputs, out)
    x = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
    assert functional.predict(x, verbose=0).shape == (2, 4, 4, 12)


@pytest.mark.parametrize(
    "layer",
    [
        DepthwiseConv2D(3),
        DepthwiseConv2D(
            (3, 1),
            strides=2,
            padding="SAME",
            depth_multiplier=2,
            activation="relu",
            use_bias=False,
            depthwise_initializer="he_normal",
            depthwise_regularizer="l2",
            depthwise_constraint="max_norm",
        ),
    ],
)
def test_configs_round_trip(layer):
    config = layer.get_config()
    rebuilt = layers.deserialize(layers.serialize(layer))
    assert type(rebuilt) is DepthwiseConv2D
    assert rebuilt.get_config() == config
    assert DepthwiseConv2D.from_config(config).get_config() == config


def test_a_saved_model_loads_and_predicts_the_same(rng, tmp_path):
    from loopkit.saving.model_files import load_model

    model = loopkit.Sequential(
        [
            loopkit.Input(shape=(5, 5, 2)),
            DepthwiseConv2D(3, depth_multiplier=2, bias_initializer="random_normal"),
            layers.Flatten(),
            Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    x = rng.standard_normal((3, 5, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"kernel_size": 0}, ConfigError, r"kernel_size=0; expected ints > 0"),
        ({"kernel_size": 3, "strides": (1, -1)}, ConfigError, r"strides=\(1, -1\)"),
        ({"kernel_size": 3, "depth_multiplier": 0}, ConfigError, r"depth_multiplier"),
        ({"kernel_size": 3, "padding": "causal"}, ConfigError, r"padding"),
        ({"kernel_size": 3, "data_format": "channels_first"}, ConfigError, r"last only"),
        ({"kernel_size": 3, "activation": "relux"}, ValueError, r"relux"),
        ({"kernel_size": 2.5}, TypeError, r"kernel_size=2\.5"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        DepthwiseConv2D(**kwargs)


def test_bad_input_shapes_are_refused_at_build(rng):
    with pytest.raises(ShapeError, match=r"\(height, width, channels\)"):
        DepthwiseConv2D(3).setup((5, 5))
    with pytest.raises(ShapeError, match=r"window does not fit"):
        loopkit.Sequential([loopkit.Input(shape=(2, 5, 1)), DepthwiseConv2D(3)])


def test_a_tiny_separable_model_trains(rng):
    # A depthwise then pointwise block, as keras.io's MobileNet-style examples.
    x = rng.standard_normal((64, 6, 6, 2)).astype(np.float32)
    target = (x[..., 0].mean(axis=(1, 2)) - x[..., 1].mean(axis=(1, 2)))[:, None]
    model = loopkit.Sequential(
        [
            loopkit.Input(shape=(6, 6, 2)),
            DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu"),
            Conv2D(4, 1),
            layers.GlobalAveragePooling2D(),
            Dense(1),
        ]
    )
    model.compile(optimizer=loopkit.optimizers.Adam(0.01), loss="mse")
    before = model.evaluate(x, target, verbose=0)
    model.fit(x, target, epochs=15, batch_size=16, verbose=0)
    assert model.evaluate(x, target, verbose=0) < 0.5 * before


def test_depthwise_initializer_regularizer_and_constraint_reach_the_kernel():
    layer = DepthwiseConv2D(
        2,
        depthwise_initializer="ones",
        bias_initializer="ones",
        depthwise_regularizer="l2",
        bias_regularizer="l1",
        depthwise_constraint="non_neg",
    )
    layer.setup((3, 3, 2))
    np.testing.assert_array_equal(layer.kernel.value, np.ones((2, 2, 2, 1)))
    np.testing.assert_array_equal(layer.bias.value, np.ones(2))
    assert layer.kernel.regularizer is not None and layer.bias.regularizer is not None
    assert layer.kernel.constraint is not None and layer.bias.constraint is None
    layer.kernel.value[0, 0, 0, 0] = -3.0
    layer.apply_constraints()
    assert layer.kernel.value[0, 0, 0, 0] == 0.0  # non_neg projected it


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"depthwise_initializer": "glorot"}, r"'glorot'.*glorot_normal"),
        ({"depthwise_regularizer": "l3"}, r"'l3'"),
        ({"depthwise_constraint": "maxnorm"}, r"'maxnorm'.*max_norm"),
    ],
)
def test_unknown_depthwise_options_fail_at_construction(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        DepthwiseConv2D(3, **kwargs)
