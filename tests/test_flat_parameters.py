"""The flat weight and gradient buffers: views, spans, and frozen layers."""

from __future__ import annotations

import numpy as np

import loopkit
from loopkit import Sequential
from loopkit._training.flat_parameters import FlatParameters, merge_spans
from loopkit.layers import BatchNormalization, Dense, Parameter


def _param(name: str, shape: tuple[int, ...], fill: float) -> Parameter:
    value = np.full(shape, fill, np.float32)
    return Parameter(name, value, np.zeros_like(value))


def _mlp() -> Sequential:
    return Sequential(
        [
            Dense(5, activation="relu", input_dim=3),
            BatchNormalization(),
            Dense(4, activation="tanh"),
            Dense(2),
        ]
    )


def test_merge_spans_joins_adjacent_slices_and_keeps_gaps():
    spans = [slice(5, 7), slice(0, 2), slice(2, 5), slice(9, 10)]
    assert merge_spans(spans) == [slice(0, 7), slice(9, 10)]
    assert merge_spans([]) == []


def test_pack_copies_values_in_order_and_makes_views():
    a, b = _param("a", (2, 3), 1.5), _param("b", (4,), -2.0)
    flat = FlatParameters.pack([a, b], np.float32)
    np.testing.assert_array_equal(flat.values, [1.5] * 6 + [-2.0] * 4)
    assert flat.slices == [slice(0, 6), slice(6, 10)]
    assert a.value.shape == (2, 3) and b.grad.shape == (4,)
    for p in (a, b):
        assert np.shares_memory(p.value, flat.values)
        assert np.shares_memory(p.grad, flat.grads)
    flat.values[6:] = 7.0
    np.testing.assert_array_equal(b.value, np.full(4, 7.0))
    a.grad[1, 2] = 3.0
    assert flat.grads[5] == 3.0


def test_spans_of_selected_parameters_merge_where_adjacent():
    params = [_param(n, (2,), 0.0) for n in "abcd"]
    flat = FlatParameters.pack(params, np.float64)
    assert flat.values.dtype == np.float64
    assert flat.spans_of([params[0], params[1], params[3]]) == [slice(0, 4), slice(6, 8)]


def test_every_model_parameter_is_a_view_of_the_flat_buffers():
    model = _mlp()
    total = sum(p.size for p in model.weights)
    assert model.flat_weights.shape == (total,) == model.flat_gradients.shape
    assert model.flat_weights.dtype == np.float32
    assert model.flat_weights.flags.c_contiguous and model.flat_gradients.flags.c_contiguous
    for p in model.weights:
        assert np.shares_memory(p.value, model.flat_weights)
        assert np.shares_memory(p.grad, model.flat_gradients)
        assert not np.shares_memory(p.value, model.flat_gradients)
    assert model.count_params() == total == 3 * 5 + 5 + 4 * 5 + 5 * 4 + 4 + 4 * 2 + 2


def test_writes_through_flat_weights_reach_the_layers_output():
    model = Sequential([Dense(2, input_dim=3)])
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    model.flat_weights[:] = 0.0
    model.flat_weights[-2:] = [0.5, -1.0]  # the bias comes after the kernel
    np.testing.assert_array_equal(model.predict_on_batch(x), [[0.5, -1.0]])
    model.flat_weights[:6] = 1.0
    np.testing.assert_array_equal(model.layers[0].kernel.value, np.ones((3, 2)))
    np.testing.assert_array_equal(model.predict_on_batch(x), [[6.5, 5.0]])


def test_backward_writes_gradients_into_the_flat_gradient_buffer(rng):
    model = Sequential([Dense(3, input_dim=4)])
    model.compile("sgd", "mse")
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = rng.standard_normal((5, 3)).astype(np.float32)
    model.compute_gradients(x, y)
    kernel = model.layers[0].kernel.value.astype(np.float64)
    bias = model.layers[0].bias.value.astype(np.float64)
    residual = x.astype(np.float64) @ kernel + bias - y
    scale = 2.0 / residual.size  # d mean((out - y)^2) / d out
    expected = np.concatenate([(x.T @ residual * scale).ravel(), residual.sum(0) * scale])
    np.testing.assert_allclose(model.flat_gradients, expected, rtol=1e-5, atol=1e-6)


def test_adding_a_layer_after_build_keeps_the_old_weights_in_a_new_buffer():
    model = Sequential([Dense(3, input_dim=2)])
    before = model.get_weights()
    old_buffer = model.flat_weights
    model.add(Dense(4))
    assert model.output_shape == (4,)
    assert model.flat_weights.size == 2 * 3 + 3 + 3 * 4 + 4
    assert not np.shares_memory(old_buffer, model.flat_weights)
    for kept, now in zip(before, model.get_weights()[:2], strict=True):
        np.testing.assert_array_equal(kept, now)
    for p in model.weights:
        assert np.shares_memory(p.value, model.flat_weights)


def test_float64_models_keep_float64_buffers():
    model = Sequential([Dense(2, input_dim=3)], dtype="float64")
    assert model.flat_weights.dtype == np.float64 == model.flat_gradients.dtype
    assert all(p.value.dtype == np.float64 for p in model.weights)


def test_trainable_spans_skip_frozen_layers_and_moving_statistics():
    model = _mlp()
    sizes = [p.size for p in model.weights]  # k0 b0 gamma beta mean var k2 b2 k3 b3
    offsets = np.cumsum([0, *sizes])
    assert model.trainable_spans == [
        slice(0, int(offsets[4])),  # dense, then gamma and beta
        slice(int(offsets[6]), int(offsets[-1])),  # the moving statistics are left out
    ]
    model.layers[2].trainable = False
    assert model.trainable_spans == [
        slice(0, int(offsets[4])),
        slice(int(offsets[8]), int(offsets[-1])),
    ]
    names = [p.name for p in model.non_trainable_weights]
    assert names == ["moving_mean", "moving_variance", "kernel", "bias"]


def test_a_frozen_layer_keeps_its_weights_bitwise_while_the_others_train(rng):
    loopkit.set_random_seed(11)
    model = _mlp()
    model.compile("adam", "mse")
    model.layers[0].trainable = False
    frozen = [w.copy() for w in (model.layers[0].kernel.value, model.layers[0].bias.value)]
    others = [model.layers[2].kernel.value.copy(), model.layers[3].kernel.value.copy()]
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = rng.standard_normal((32, 2)).astype(np.float32)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    np.testing.assert_array_equal(model.layers[0].kernel.value, frozen[0])
    np.testing.assert_array_equal(model.layers[0].bias.value, frozen[1])
    assert not np.array_equal(model.layers[2].kernel.value, others[0])
    assert not np.array_equal(model.layers[3].kernel.value, others[1])


def test_a_frozen_layer_does_no_parameter_gradient_work(rng):
    model = Sequential([Dense(4, input_dim=3), Dense(2)])
    model.compile("sgd", "mse")
    model.layers[0].trainable = False
    model.flat_gradients[:] = np.nan  # any write by backward would replace these
    x = rng.standard_normal((6, 3)).astype(np.float32)
    model.compute_gradients(x, rng.standard_normal((6, 2)).astype(np.float32))
    first = model.layers[0]
    assert np.isnan(first.kernel.grad).all() and np.isnan(first.bias.grad).all()
    assert np.isfinite(model.layers[1].kernel.grad).all()
    # nothing below the only trainable layer needs dL/dx
    assert [layer.input_grad_needed for layer in model.layers] == [False, False]


def test_unfreezing_a_layer_makes_fit_update_it_again(rng):
    model = Sequential([Dense(3, input_dim=2), Dense(1)])
    model.compile("sgd", "mse")
    x = rng.standard_normal((16, 2)).astype(np.float32)
    y = rng.standard_normal((16, 1)).astype(np.float32)
    model.layers[0].trainable = False
    kernel = model.layers[0].kernel.value.copy()
    model.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.layers[0].kernel.value, kernel)
    model.layers[0].trainable = True
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(model.layers[0].kernel.value, kernel)
    assert model.trainable_spans == [slice(0, model.count_params())]
