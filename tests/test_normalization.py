from __future__ import annotations

import numpy as np
import pytest

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.normalization import BatchNormalization, LayerNormalization
from loopkit.testing import check_layer_gradients, numerical_gradient


def _set(layer, **values):
    """Overwrite parameters in place, so tests do not depend on the initializers."""
    for name, value in values.items():
        getattr(layer, name).value[...] = value


def _check_built_layer_gradients(layer, x, training, rng):
    """Finite-difference check of dL/dx and dL/dparam on a layer already set up."""
    dy = rng.standard_normal(x.shape[:1] + layer.compute_output_shape(x.shape[1:]))

    def loss() -> float:
        return float(np.sum(layer.forward(x, training=training) * dy))

    loss()
    dx = np.array(layer.backward(dy), copy=True)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-5, atol=1e-7)
    for p in layer.trainable_parameters:
        analytic = p.grad.copy()
        numeric = numerical_gradient(loss, p.value)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7, err_msg=p.name)


def _reference_norm(x, axes, epsilon):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + epsilon)


# --- BatchNormalization --------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_shape", "axis"),
    [((4,), -1), ((3, 3, 2), -1), ((3, 2, 2), 1), ((2, 3), 1)],
)
def test_batch_norm_training_backward_matches_finite_differences(rng, input_shape, axis):
    check_layer_gradients(
        BatchNormalization(axis=axis), input_shape, batch_size=5, rng=rng, training=True
    )


def test_batch_norm_training_backward_without_scale_or_center_matches_fd(rng):
    check_layer_gradients(
        BatchNormalization(center=False, scale=False),
        (3,),
        batch_size=4,
        rng=rng,
        training=True,
    )


@pytest.mark.parametrize("input_shape", [(4,), (2, 3, 3)])
def test_batch_norm_inference_backward_matches_finite_differences(rng, input_shape):
    layer = BatchNormalization()
    layer.setup(input_shape, np.float64, rng)
    c = input_shape[-1]
    _set(
        layer,
        gamma=rng.uniform(0.5, 2.0, c),
        beta=rng.standard_normal(c),
        moving_mean=rng.standard_normal(c),
        moving_variance=rng.uniform(0.5, 2.0, c),
    )
    _check_built_layer_gradients(layer, rng.standard_normal((3, *input_shape)), False, rng)


def test_batch_norm_training_output_uses_batch_statistics(rng):
    layer = BatchNormalization(epsilon=1e-3)
    layer.setup((3, 3, 2), np.float64, rng)
    gamma, beta = np.array([1.5, 0.5]), np.array([0.1, -0.2])
    _set(layer, gamma=gamma, beta=beta)
    x = rng.standard_normal((4, 3, 3, 2)) * 3 + 1
    expected = _reference_norm(x, (0, 1, 2), 1e-3) * gamma + beta
    np.testing.assert_allclose(layer.forward(x, training=True), expected, rtol=1e-12)


def test_batch_norm_moving_statistics_match_a_hand_computed_update_after_two_batches(rng):
    momentum, eps = 0.9, 1e-3
    layer = BatchNormalization(momentum=momentum, epsilon=eps)
    layer.setup((3,), np.float64, rng)
    gamma, beta = np.array([2.0, 1.0, 0.5]), np.array([0.0, 1.0, -1.0])
    _set(layer, gamma=gamma, beta=beta, moving_mean=0.0, moving_variance=1.0)
    x1 = rng.standard_normal((6, 3)) * [1.0, 2.0, 3.0] + [0.0, 1.0, -2.0]
    x2 = rng.standard_normal((4, 3)) * [0.5, 1.0, 2.0] + [1.0, 0.0, 2.0]
    layer.forward(x1, training=True)
    layer.forward(x2, training=True)

    mean, var = np.zeros(3), np.ones(3)
    for x in (x1, x2):
        batch_mean = x.sum(axis=0) / len(x)
        batch_var = ((x - batch_mean) ** 2).sum(axis=0) / len(x)  # biased, as Keras
        mean = mean * momentum + batch_mean * (1 - momentum)
        var = var * momentum + batch_var * (1 - momentum)
    np.testing.assert_allclose(layer.moving_mean.value, mean, rtol=1e-12)
    np.testing.assert_allclose(layer.moving_variance.value, var, rtol=1e-12)

    x3 = rng.standard_normal((5, 3))
    expected = (x3 - mean) / np.sqrt(var + eps) * gamma + beta
    np.testing.assert_allclose(layer.forward(x3, training=False), expected, rtol=1e-12)
    np.testing.assert_allclose(layer.moving_mean.value, mean, rtol=1e-12)  # unchanged


def test_batch_norm_moving_statistics_of_images_reduce_over_batch_height_and_width(rng):
    layer = BatchNormalization(momentum=0.0)  # moving stats become the batch stats
    layer.setup((4, 5, 2), np.float64, rng)
    x = rng.standard_normal((3, 4, 5, 2)) + np.array([1.0, -1.0])
    layer.forward(x, training=True)
    np.testing.assert_allclose(layer.moving_mean.value, x.mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(layer.moving_variance.value, x.var(axis=(0, 1, 2)))


def test_frozen_batch_norm_uses_moving_statistics_while_training(rng):
    eps = 1e-3
    layer = BatchNormalization(epsilon=eps, trainable=False)
    layer.setup((2,), np.float64, rng)
    gamma, beta = np.array([2.0, 0.5]), np.array([1.0, 0.0])
    mm, mv = np.array([0.5, -1.0]), np.array([4.0, 0.25])
    _set(layer, gamma=gamma, beta=beta, moving_mean=mm, moving_variance=mv)
    layer.gamma.grad[...] = 7.0  # a frozen layer leaves its gradients alone
    x = rng.standard_normal((5, 2))
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y, (x - mm) / np.sqrt(mv + eps) * gamma + beta, rtol=1e-12)
    np.testing.assert_array_equal(layer.moving_mean.value, mm)
    np.testing.assert_array_equal(layer.moving_variance.value, mv)
    dy = rng.standard_normal((5, 2))
    np.testing.assert_allclose(layer.backward(dy), dy * gamma / np.sqrt(mv + eps))
    np.testing.assert_array_equal(layer.gamma.grad, [7.0, 7.0])
    assert layer.trainable_parameters == []


def test_batch_norm_creates_keras_weights_in_keras_order(rng):
    layer = BatchNormalization()
    layer.setup((3, 3, 4), np.float32, rng)
    names = [(p.name, p.shape, p.trainable) for p in layer.parameters]
    assert names == [
        ("gamma", (4,), True),
        ("beta", (4,), True),
        ("moving_mean", (4,), False),
        ("moving_variance", (4,), False),
    ]
    no_scale = BatchNormalization(scale=False)
    no_scale.setup((4,), np.float32, rng)
    assert [p.name for p in no_scale.parameters] == [
        "beta",
        "moving_mean",
        "moving_variance",
    ]
    assert no_scale.gamma is None


def test_batch_norm_config_has_the_keras_defaults():
    config = BatchNormalization().get_config()
    assert {k: config[k] for k in ("axis", "momentum", "epsilon", "center", "scale")} == {
        "axis": -1,
        "momentum": 0.99,
        "epsilon": 1e-3,
        "center": True,
        "scale": True,
    }
    assert config["gamma_initializer"] == "ones"
    assert config["moving_variance_initializer"] == "ones"
    assert config["beta_initializer"] == config["moving_mean_initializer"] == "zeros"


def test_batch_norm_keeps_float32_and_handles_a_short_last_batch(rng):
    layer = BatchNormalization()
    layer.setup((3,), np.float32, rng)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    assert layer.forward(x, training=True).dtype == np.float32
    short = x[:3]
    expected = _reference_norm(short.astype(np.float64), (0,), 1e-3)
    expected = expected * layer.gamma.value + layer.beta.value
    np.testing.assert_allclose(layer.forward(short, training=True), expected, rtol=1e-4)
    assert layer.backward(np.ones((3, 3), np.float32)).dtype == np.float32


def test_batch_norm_backward_returns_none_but_writes_gradients_for_a_first_layer(rng):
    layer = BatchNormalization()
    layer.setup((3,), np.float64, rng)
    layer.input_grad_needed = False
    x, dy = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    layer.forward(x, training=True)
    assert layer.backward(dy) is None
    np.testing.assert_allclose(layer.beta.grad, dy.sum(axis=0))
    xhat = _reference_norm(x, (0,), 1e-3)
    np.testing.assert_allclose(layer.gamma.grad, (dy * xhat).sum(axis=0))


def test_batch_norm_rejects_samples_without_a_feature_axis(rng):
    with pytest.raises(
        ShapeError,
        match=r"BatchNormalization layer 'batch_normalization' needs samples with at "
        r"least one axis, got inputs of shape \(None,\); expected \(batch, features\)",
    ):
        BatchNormalization().setup((), np.float64, rng)


@pytest.mark.parametrize("axis", [0, 2, -3])
def test_batch_norm_rejects_an_axis_outside_the_feature_axes(rng, axis):
    with pytest.raises(
        ShapeError,
        match=rf"got axis={axis} for inputs of shape \(None, 4\); expected a non-batch "
        r"axis: 1\.\.1 or -1\.\.-1\. Use axis=-1",
    ):
        BatchNormalization(axis=axis).setup((4,), np.float64, rng)


def test_batch_norm_rejects_bad_settings():
    with pytest.raises(
        ConfigError, match=r"momentum=1.5; expected a number in \[0.0, 1.0\]"
    ):
        BatchNormalization(momentum=1.5)
    with pytest.raises(ConfigError, match=r"epsilon=0; expected a number > 0"):
        BatchNormalization(epsilon=0)
    with pytest.raises(
        TypeError, match=r"axis='-1' of type str; expected an int such as -1"
    ):
        BatchNormalization(axis="-1")


# --- LayerNormalization --------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_shape", "axis"), [((5,), -1), ((3, 4), -1), ((2, 3, 2), (-2, -1))]
)
def test_layer_norm_backward_matches_finite_differences(rng, input_shape, axis):
    check_layer_gradients(LayerNormalization(axis=axis), input_shape, batch_size=3, rng=rng)


def test_layer_norm_backward_without_scale_or_center_matches_fd(rng):
    layer = LayerNormalization(center=False, scale=False)
    check_layer_gradients(layer, (4,), rng=rng, training=True)


def test_layer_norm_normalizes_each_sample_over_the_last_axis(rng):
    eps = 1e-3
    layer = LayerNormalization(epsilon=eps)
    layer.setup((2, 4), np.float64, rng)
    gamma, beta = np.array([1.0, 2.0, 0.5, 1.5]), np.array([0.0, 0.1, 0.2, 0.3])
    _set(layer, gamma=gamma, beta=beta)
    x = rng.standard_normal((3, 2, 4)) * 5 + 2
    mean = x.sum(axis=-1, keepdims=True) / 4
    var = ((x - mean) ** 2).sum(axis=-1, keepdims=True) / 4
    expected = (x - mean) / np.sqrt(var + eps) * gamma + beta
    for training in (True, False):
        np.testing.assert_allclose(
            layer.forward(x, training=training), expected, rtol=1e-12
        )
    assert layer.gamma.shape == layer.beta.shape == (4,)


def test_layer_norm_over_two_axes_has_parameters_of_their_shape(rng):
    layer = LayerNormalization(axis=[1, 2])
    layer.setup((3, 2), np.float64, rng)
    assert layer.gamma.shape == (3, 2)
    _set(layer, gamma=1.0, beta=0.0)
    x = rng.standard_normal((4, 3, 2))
    expected = _reference_norm(x, (1, 2), 1e-3)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12)


def test_layer_norm_handles_a_short_last_batch_in_float32(rng):
    layer = LayerNormalization()
    layer.setup((6,), np.float32, rng)
    x = rng.standard_normal((8, 6)).astype(np.float32)
    layer.forward(x)
    y = layer.forward(x[:3])
    assert y.shape == (3, 6)
    assert y.dtype == np.float32
    expected = _reference_norm(x[:3].astype(np.float64), (1,), 1e-3)
    expected = expected * layer.gamma.value + layer.beta.value
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-6)
    assert layer.backward(np.ones((3, 6), np.float32)).shape == (3, 6)


def test_layer_norm_rejects_samples_without_an_axis(rng):
    with pytest.raises(
        ShapeError,
        match=r"LayerNormalization layer 'layer_normalization' needs samples with at "
        r"least one axis, got inputs of shape \(None,\)",
    ):
        LayerNormalization().setup((), np.float64, rng)


def test_layer_norm_rejects_the_batch_axis_and_repeated_axes(rng):
    with pytest.raises(ShapeError, match=r"got axis=0 for inputs of shape \(None, 3, 2\)"):
        LayerNormalization(axis=0).setup((3, 2), np.float64, rng)
    with pytest.raises(ShapeError, match=r"axis=\(1, -2\), which names an axis .* twice"):
        LayerNormalization(axis=[1, -2]).setup((3, 2), np.float64, rng)


def test_layer_norm_rejects_an_axis_that_is_not_an_int_or_list():
    with pytest.raises(TypeError, match=r"axis=\[\] of type list; expected an int"):
        LayerNormalization(axis=[])
    with pytest.raises(TypeError, match=r"axis='last' of type str; expected an int"):
        LayerNormalization(axis="last")
