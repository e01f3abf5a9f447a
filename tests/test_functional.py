"""The functional API: graphs of layers, merge layers, several inputs and outputs."""

from __future__ import annotations

import numpy as np
import pytest

import loopkit as lk
from loopkit import ConfigError, ShapeError
from loopkit.layers import (
    GRU,
    LSTM,
    Add,
    Average,
    Bidirectional,
    Concatenate,
    Dense,
    Dot,
    Flatten,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    TimeDistributed,
)
from loopkit.testing import check_model_gradients


def test_residual_block_with_fan_out_matches_finite_differences(rng) -> None:
    inputs = lk.Input(shape=(5,))
    h = Dense(6, activation="tanh")(inputs)
    branch = Dense(6, activation="tanh")(h)  # h feeds two nodes: its gradients add up
    out = Dense(3, activation="softmax")(Add()([h, branch]))
    model = lk.Model(inputs, out, dtype="float64")
    model.compile("sgd", "sparse_categorical_crossentropy")
    check_model_gradients(model, rng.standard_normal((7, 5)), rng.integers(0, 3, 7))


def test_inputs_merged_before_the_first_weight_train_and_match_finite_differences(
    rng,
) -> None:
    # Concatenate has no weight and only Inputs before it: no gradient reaches it
    a, b = lk.Input(shape=(4,)), lk.Input(shape=(2,))
    h = Dense(5, activation="tanh")(Concatenate()([a, b]))
    model = lk.Model(
        [a, b], [Dense(3, name="p")(h), Dense(1, name="q")(h)], dtype="float64"
    )
    model.compile("sgd", loss=["mse", "mse"])
    x = [rng.standard_normal((6, 4)), rng.standard_normal((6, 2))]
    check_model_gradients(
        model, x, [rng.standard_normal((6, 3)), rng.standard_normal((6, 1))]
    )


def test_a_shared_layer_has_one_set_of_weights_and_sums_its_gradients(rng) -> None:
    a, b = lk.Input(shape=(4,)), lk.Input(shape=(4,))
    shared = Dense(3, activation="tanh")
    merged = Concatenate()([shared(a), shared(b)])
    model = lk.Model([a, b], Dense(1)(merged), dtype="float64")
    model.compile("sgd", "mse")
    assert model.count_params() == (4 * 3 + 3) + (6 + 1)  # the shared layer counts once
    x = [rng.standard_normal((6, 4)), rng.standard_normal((6, 4))]
    check_model_gradients(model, x, rng.standard_normal((6, 1)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: Bidirectional(LSTM(3)),
        lambda: TimeDistributed(Dense(3, activation="tanh")),
        lambda: Bidirectional(GRU(2, return_sequences=True), merge_mode="sum"),
    ],
    ids=["bidirectional-lstm", "time-distributed-dense", "bidirectional-gru-sequences"],
)
def test_a_shared_wrapper_layer_sums_its_inner_layers_gradients(rng, make) -> None:
    """The inner layers of a wrapper called twice get their own buffers and gradients."""
    a, b = lk.Input(shape=(5, 2)), lk.Input(shape=(5, 2))
    shared = make()
    flatten = Flatten()
    merged = Concatenate()([flatten(shared(a)), flatten(shared(b))])
    model = lk.Model([a, b], Dense(1)(merged), dtype="float64")
    model.compile("sgd", "mse")
    alone = lk.Model(a, shared(a), dtype="float64")
    assert model.count_params() == alone.count_params() + model.layers[-1].count_params()
    x = [rng.standard_normal((4, 5, 2)), rng.standard_normal((4, 5, 2))]
    check_model_gradients(model, x, rng.standard_normal((4, 1)))


def test_two_weighted_outputs_match_finite_differences_and_log_each_loss(rng) -> None:
    inputs = lk.Input(shape=(4,))
    h = Dense(5, activation="relu")(inputs)
    cls = Dense(3, activation="softmax", name="cls")(h)
    reg = Dense(1, name="reg")(h)
    model = lk.Model(inputs, [cls, reg], dtype="float64")
    model.compile(
        "sgd",
        loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
        loss_weights={"cls": 1.0, "reg": 0.5},
    )
    x = rng.standard_normal((8, 4))
    y = [rng.integers(0, 3, 8), rng.standard_normal((8, 1))]
    check_model_gradients(model, x, y)
    model.compute_gradients(x, y)
    total = model.test_loss(y, None)
    cls_loss, reg_loss = model.loss_terms  # logged unweighted, as Keras does
    assert total == pytest.approx(cls_loss + 0.5 * reg_loss)


def test_a_nested_sequential_trains_as_one_layer_of_a_functional_model(rng) -> None:
    encoder = lk.Sequential(
        [Dense(5, activation="tanh", input_dim=4), Dense(3)],
        name="encoder",
        dtype="float64",
    )
    inputs = lk.Input(shape=(4,))
    out = Dense(2)(encoder(inputs))
    model = lk.Model(inputs, out, dtype="float64")
    model.compile("sgd", "mse")
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer",
        "Sequential",
        "Dense",
    ]
    check_model_gradients(model, rng.standard_normal((6, 4)), rng.standard_normal((6, 2)))
    before = encoder.get_weights()
    model.fit(rng.standard_normal((6, 4)), rng.standard_normal((6, 2)), epochs=1, verbose=0)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(before, encoder.get_weights(), strict=False)
    )


def test_a_sequential_without_input_shape_builds_when_called_on_a_tensor(
    rng, tmp_path
) -> None:
    # keras.io "Text classification with Transformer": the feed-forward part is
    # Sequential([Dense(ff_dim, activation="relu"), Dense(embed_dim)]) called on a tensor
    ffn = lk.Sequential([Dense(6, activation="relu"), Dense(4)], dtype="float64")
    assert not ffn.built
    inputs = lk.Input(shape=(3, 4))
    h = ffn(inputs)
    assert ffn.built and ffn.input_shape == (3, 4) and tuple(h.shape) == (None, 3, 4)
    model = lk.Model(inputs, Dense(1)(Flatten()(Add()([inputs, h]))), dtype="float64")
    model.compile("sgd", "mse")
    x, y = rng.standard_normal((5, 3, 4)), rng.standard_normal((5, 1))
    check_model_gradients(model, x, y)
    model.save(str(tmp_path / "m.npz"))
    loaded = lk.load_model(str(tmp_path / "m.npz"))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ShapeError, match=r"built for inputs of shape \(None, 3, 4\)"):
        ffn(lk.Input(shape=(3, 5)))  # built now: the shape is checked


def test_a_sequential_without_input_shape_builds_when_stacked_in_another(rng) -> None:
    block = lk.Sequential([Dense(5, activation="tanh"), Dense(3)], dtype="float64")
    model = lk.Sequential([lk.Input((4,)), block, Dense(1)], dtype="float64")
    assert block.built and model.output_shape == (1,)
    model.compile("sgd", "mse")
    check_model_gradients(model, rng.standard_normal((6, 4)), rng.standard_normal((6, 1)))


def test_a_model_called_twice_shares_its_weights(rng) -> None:
    tower = lk.Sequential([Dense(3, activation="tanh", input_dim=4)], dtype="float64")
    a, b = lk.Input(shape=(4,)), lk.Input(shape=(4,))
    model = lk.Model([a, b], Dense(1)(Subtract()([tower(a), tower(b)])), dtype="float64")
    model.compile("sgd", "mse")
    assert model.count_params() == 15 + 4
    x = [rng.standard_normal((5, 4)), rng.standard_normal((5, 4))]
    check_model_gradients(model, x, rng.standard_normal((5, 1)))


@pytest.mark.parametrize(
    "merge", [Add(), Subtract(), Multiply(), Average(), Maximum(), Minimum(), Concatenate()]
)
def test_each_merge_layer_matches_finite_differences(rng, merge) -> None:
    a, b = lk.Input(shape=(3,)), lk.Input(shape=(3,))
    merged = merge([Dense(3)(a), Dense(3)(b)])
    model = lk.Model([a, b], Dense(2)(merged), dtype="float64")
    model.compile("sgd", "mse")
    x = [rng.standard_normal((6, 3)), rng.standard_normal((6, 3))]
    check_model_gradients(model, x, rng.standard_normal((6, 2)))


def test_dot_of_two_vectors_matches_finite_differences(rng) -> None:
    a, b = lk.Input(shape=(3,)), lk.Input(shape=(3,))
    model = lk.Model([a, b], Dot(axes=1)([Dense(4)(a), Dense(4)(b)]), dtype="float64")
    model.compile("sgd", "mse")
    x = [rng.standard_normal((5, 3)), rng.standard_normal((5, 3))]
    check_model_gradients(model, x, rng.standard_normal((5, 1)))


def test_merge_values_are_what_keras_computes(rng) -> None:
    x1, x2 = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    np.testing.assert_allclose(lk.layers.Add()([x1, x2]), x1 + x2, rtol=1e-6)
    np.testing.assert_allclose(lk.layers.Subtract()([x1, x2]), x1 - x2, rtol=1e-6)
    np.testing.assert_allclose(lk.layers.Multiply()([x1, x2]), x1 * x2, rtol=1e-6)
    np.testing.assert_allclose(lk.layers.Average()([x1, x2]), (x1 + x2) / 2, rtol=1e-6)
    np.testing.assert_allclose(lk.layers.Maximum()([x1, x2]), np.maximum(x1, x2), rtol=1e-6)
    np.testing.assert_allclose(lk.layers.Minimum()([x1, x2]), np.minimum(x1, x2), rtol=1e-6)
    np.testing.assert_allclose(
        lk.layers.Concatenate()([x1, x2]), np.concatenate([x1, x2], -1), rtol=1e-6
    )
    np.testing.assert_allclose(
        lk.layers.Dot(axes=1)([x1, x2]), (x1 * x2).sum(1, keepdims=True), rtol=1e-6
    )


def test_a_functional_chain_predicts_and_trains_like_the_same_sequential(rng) -> None:
    lk.set_random_seed(3)
    seq = lk.Sequential(
        [Dense(8, activation="relu", input_dim=4), Dense(3, activation="softmax")]
    )
    inputs = lk.Input(shape=(4,))
    out = Dense(3, activation="softmax")(Dense(8, activation="relu")(inputs))
    fun = lk.Model(inputs, out)
    fun.set_weights(seq.get_weights())
    assert fun.graph.is_chain
    x, y = rng.standard_normal((32, 4)).astype("float32"), rng.integers(0, 3, 32)
    for model in (seq, fun):
        model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    np.testing.assert_array_equal(seq.predict(x, verbose=0), fun.predict(x, verbose=0))
    hs = seq.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    hf = fun.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    assert hs.history == hf.history
    for a, b in zip(seq.get_weights(), fun.get_weights(), strict=False):
        np.testing.assert_array_equal(a, b)


def _two_in_two_out():
    image = lk.Input(shape=(6,), name="image")
    meta = lk.Input(shape=(2,), name="meta")
    h = Concatenate()([Dense(8, activation="relu")(image), meta])
    label = Dense(3, activation="softmax", name="label")(h)
    score = Dense(1, name="score")(h)
    return image, meta, label, score


def test_two_inputs_and_two_outputs_log_keras_keys_and_return_keras_structures(rng) -> None:
    image, meta, label, score = _two_in_two_out()
    model = lk.Model({"image": image, "meta": meta}, {"label": label, "score": score})
    model.compile(
        "adam",
        loss={"label": "sparse_categorical_crossentropy", "score": "mse"},
        metrics={"label": ["accuracy"]},
    )
    x = {"image": rng.standard_normal((40, 6)), "meta": rng.standard_normal((40, 2))}
    y = {"label": rng.integers(0, 3, 40), "score": rng.standard_normal((40, 1))}
    history = model.fit(x, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0)
    assert set(history.history) == {
        "loss",
        "label_loss",
        "score_loss",
        "label_accuracy",
        "val_loss",
        "val_label_loss",
        "val_score_loss",
        "val_label_accuracy",
        "learning_rate",
    }
    result = model.evaluate(x, y, verbose=0)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert result == [
        logs["loss"],
        logs["label_loss"],
        logs["score_loss"],
        logs["label_accuracy"],
    ]
    assert logs["loss"] == pytest.approx(logs["label_loss"] + logs["score_loss"], rel=1e-5)
    predictions = model.predict(x, verbose=0)
    assert set(predictions) == {"label", "score"}
    assert predictions["label"].shape == (40, 3) and predictions["score"].shape == (40, 1)


def test_lists_of_inputs_and_outputs_train_and_predict_lists(rng) -> None:
    image, meta, label, score = _two_in_two_out()
    model = lk.Model([image, meta], [label, score])
    model.compile(
        "adam", ["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.1]
    )
    x = [rng.standard_normal((32, 6)), rng.standard_normal((32, 2))]
    y = [rng.integers(0, 3, 32), rng.standard_normal((32, 1))]
    first = model.evaluate(x, y, verbose=0)[0]
    model.fit(x, y, epochs=20, batch_size=8, verbose=0)
    assert model.evaluate(x, y, verbose=0)[0] < first
    out = model.predict(x, verbose=0)
    assert isinstance(out, list) and [o.shape for o in out] == [(32, 3), (32, 1)]
    logs = model.train_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "label_loss", "score_loss"}


def test_layers_and_models_compute_eagerly_on_arrays(rng) -> None:
    x = rng.standard_normal((4, 3)).astype("float32")
    layer = Dense(2)
    out = layer(x)
    np.testing.assert_allclose(out, x @ layer.kernel.value + layer.bias.value, rtol=1e-6)
    inputs = lk.Input(shape=(3,))
    model = lk.Model(inputs, layer(inputs))
    np.testing.assert_allclose(model(x), out, rtol=1e-6)


def test_get_layer_by_name_and_index() -> None:
    inputs = lk.Input(shape=(3,))
    hidden = Dense(4, name="hidden")
    model = lk.Model(inputs, Dense(1)(hidden(inputs)))
    assert model.get_layer("hidden") is hidden
    assert model.get_layer(index=1) is hidden
    with pytest.raises(
        ConfigError, match=r"get_layer\(name='hiden'\).*Did you mean 'hidden'"
    ):
        model.get_layer("hiden")


def test_an_output_not_computed_from_the_inputs_fails_with_the_path() -> None:
    a, b = lk.Input(shape=(3,), name="a"), lk.Input(shape=(3,), name="b")
    out = Dense(1, name="head")(Add()([a, b]))
    with pytest.raises(ConfigError, match=r"depends on the input 'b'.*not in inputs="):
        lk.Model(a, out)


def test_two_layers_with_one_name_fail_when_the_model_is_built() -> None:
    inputs = lk.Input(shape=(3,))
    out = Dense(1, name="same")(Dense(2, name="same")(inputs))
    with pytest.raises(
        ConfigError, match=r"two layers are named 'same'.*Pass another name="
    ):
        lk.Model(inputs, out)


def test_a_list_for_a_model_built_with_a_dict_of_inputs_fails_before_any_step(rng) -> None:
    image, meta, label, _score = _two_in_two_out()
    model = lk.Model({"image": image, "meta": meta}, label)
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = model.get_weights()
    with pytest.raises(ConfigError, match=r"built with a dict of inputs, so pass a dict"):
        model.fit(
            [rng.standard_normal((8, 6)), rng.standard_normal((8, 2))],
            rng.integers(0, 3, 8),
            verbose=0,
        )
    for a, b in zip(before, model.get_weights(), strict=False):
        np.testing.assert_array_equal(a, b)


def test_merge_shape_mismatch_fails_when_the_graph_is_built() -> None:
    a, b = lk.Input(shape=(3,)), lk.Input(shape=(4,))
    with pytest.raises(
        ShapeError, match=r"Add needs inputs of one shape; got \[\(None, 3\), \(None, 4\)\]"
    ):
        Add()([a, b])


def test_fit_with_a_wrong_number_of_inputs_names_them(rng) -> None:
    image, meta, label, _ = _two_in_two_out()
    model = lk.Model([image, meta], label)
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(
        ConfigError, match=r"x as one array; the model has 2 inputs \['image', 'meta'\]"
    ):
        model.fit(rng.standard_normal((8, 6)), rng.integers(0, 3, 8), verbose=0)


def test_an_output_compiled_without_a_loss_is_not_trained_through_nor_logged(rng) -> None:
    """Keras's ``loss=[None, ...]``: only the outputs with a loss make the gradient."""
    inputs = lk.Input(shape=(4,))
    a = Dense(1, name="a")(inputs)
    b = Dense(3, activation="softmax", name="b")(inputs)
    model = lk.Model(inputs, [a, b])
    model.compile("sgd", loss=[None, "categorical_crossentropy"], metrics=[["mae"], []])
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = [
        rng.standard_normal((16, 1)).astype(np.float32),
        np.eye(3, dtype=np.float32)[rng.integers(0, 3, 16)],
    ]
    head_a = model.get_layer("a").get_weights()
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert sorted(history.history) == ["a_mae", "b_loss", "learning_rate", "loss"]
    for before, after in zip(head_a, model.get_layer("a").get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    assert model.metrics_names == ["loss", "b_loss", "a_mae"]
    loss, b_loss, _ = model.evaluate(x, y, verbose=0)
    assert loss == pytest.approx(b_loss)


def test_a_wrong_input_of_a_two_input_model_is_named_with_its_whole_shape() -> None:
    a, b = lk.Input(shape=(4,), name="a"), lk.Input(shape=(6,), name="b")
    model = lk.Model([a, b], Dense(1)(Concatenate()([a, b])))
    model.compile("sgd", "mse")
    x = [np.zeros((16, 4), np.float32), np.zeros((16, 4), np.float32)]
    with pytest.raises(
        ShapeError, match=r"fit\(\) got input 'b' of shape \(16, 4\); the model expects "
    ):
        model.fit(x, np.zeros((16, 1), np.float32), verbose=0)


def test_layer_input_and_output_are_its_first_calls_tensors() -> None:
    """Keras's feature-extraction pattern: ``Model(m.inputs, [l.output ...])``."""
    inputs = lk.Input(shape=(8,))
    hidden = Dense(4, name="d1")(inputs)
    model = lk.Model(inputs, Dense(2, name="d2")(hidden))
    assert model.get_layer("d1").output is hidden
    assert model.get_layer("d1").input is inputs
    extractor = lk.Model(model.inputs, [layer.output for layer in model.layers[1:]])
    x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    features, out = extractor.predict(x, verbose=0)
    np.testing.assert_array_equal(out, model.predict(x, verbose=0))
    assert features.shape == (3, 4)
    stack = lk.Sequential([Dense(4, input_shape=(8,)), Dense(2)])
    per_layer = lk.Model(stack.inputs, [layer.output for layer in stack.layers])
    np.testing.assert_array_equal(
        per_layer.predict(x, verbose=0)[-1], stack.predict(x, verbose=0)
    )
    with pytest.raises(AttributeError, match=r"never been called.*no output"):
        Dense(3).output  # noqa: B018


def test_a_call_with_training_false_stays_in_inference_mode_during_fit(rng) -> None:
    """Keras's fine-tuning pattern: ``base(inputs, training=False)`` keeps BatchNorm's
    moving statistics frozen while the layers around it train."""
    from loopkit.layers import BatchNormalization, Dropout

    base_in = lk.Input(shape=(4,))
    norm = BatchNormalization()
    base = lk.Model(base_in, Dense(3, activation="tanh")(norm(base_in)), dtype="float64")
    inputs = lk.Input(shape=(4,))
    model = lk.Model(inputs, Dense(1)(base(inputs, training=False)), dtype="float64")
    model.compile("sgd", "mse")
    x = rng.standard_normal((16, 4)) * 5 + 3
    y = rng.standard_normal((16, 1))
    check_model_gradients(model, x, y)  # the inference-mode backward is exact too
    stats = [w.copy() for w in norm.get_weights()[2:]]
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for before, after in zip(stats, norm.get_weights()[2:], strict=True):
        np.testing.assert_array_equal(before, after)
    # training=True always trains: dropout also at predict, and it survives a reload
    dropped = lk.Model(inputs, Dropout(0.5)(inputs, training=True))
    assert (dropped.predict(np.ones((64, 4)), verbose=0) == 0).any()
    again = lk.Model.from_config(dropped.get_config())
    assert (again.predict(np.ones((64, 4)), verbose=0) == 0).any()


def test_check_model_gradients_catches_a_wrong_backward(rng) -> None:
    """The whole-model check is not vacuous: a layer whose backward is off fails it."""
    from attrs import define

    from loopkit.layers import Layer

    @define(eq=False, slots=False)
    class OffByHalf(Layer):
        def compute_output_shape(self, input_shape):
            return input_shape

        def forward(self, x, training=False):
            return 2.0 * x

        def backward(self, dy):
            return 1.0 * dy  # the true gradient is 2 * dy

    inputs = lk.Input(shape=(3,))
    model = lk.Model(inputs, Dense(1)(OffByHalf()(Dense(2)(inputs))), dtype="float64")
    model.compile("sgd", "mse")
    with pytest.raises(AssertionError):
        check_model_gradients(
            model, rng.standard_normal((4, 3)), rng.standard_normal((4, 1))
        )


def test_model_input_and_output_rebuild_keras_seq2seq_inference_models(
    rng, tmp_path
) -> None:
    # keras.io "Character-level recurrent sequence-to-sequence model" (lstm_seq2seq)
    encoder_inputs = lk.Input(shape=(6, 5))
    _, state_h, state_c = LSTM(4, return_state=True)(encoder_inputs)
    decoder_inputs = lk.Input(shape=(7, 3))
    decoder_lstm = LSTM(4, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=[state_h, state_c])
    outputs = Dense(3, activation="softmax")(decoder_outputs)
    model = lk.Model([encoder_inputs, decoder_inputs], outputs)
    assert model.input == [encoder_inputs, decoder_inputs] and model.output is outputs
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    enc, dec = rng.standard_normal((8, 6, 5)), rng.standard_normal((8, 7, 3))
    model.fit([enc, dec], np.eye(3)[rng.integers(0, 3, (8, 7))], epochs=1, verbose=0)
    model.save(str(tmp_path / "s2s.npz"))
    model = lk.load_model(str(tmp_path / "s2s.npz"))

    encoder_model = lk.Model(model.input[0], model.layers[2].output[1:])
    state_inputs = [lk.Input(shape=(4,)), lk.Input(shape=(4,))]
    seq, h, c = model.layers[3](model.input[1], initial_state=state_inputs)
    decoder_model = lk.Model([model.input[1], *state_inputs], [model.layers[4](seq), h, c])
    states = encoder_model.predict(enc, verbose=0)
    decoded = decoder_model.predict([dec, *states], verbose=0)[0]
    np.testing.assert_allclose(decoded, model.predict([enc, dec], verbose=0), atol=1e-6)
    a = lk.Input(shape=(2,), name="a")
    out = Dense(1, name="out")(a)
    named = lk.Model({"a": a}, {"out": out})
    assert named.input == {"a": a} and named.output == {"out": out}
    with pytest.raises(AttributeError, match="not built"):
        _ = lk.Sequential([Dense(2)]).input


def test_arithmetic_on_symbolic_tensors_adds_layers_as_keras_3_does(rng) -> None:
    # Keras 3 functional code writes residuals as `inputs + attention_output`
    inputs = lk.Input(shape=(3, 4))
    h = Dense(4, activation="tanh")(inputs)
    offsets = rng.standard_normal((3, 4))
    out = (inputs + h) * h - 0.5 * inputs
    out = (2.0 - out) / 4.0 + offsets
    out = -(np.ones(4) + out) - h
    model = lk.Model(inputs, Dense(1)(Flatten()(out)), dtype="float64")
    names = [type(layer).__name__ for layer in model.layers]
    assert names.count("Add") == 1 and names.count("Multiply") == 1
    assert names.count("Subtract") == 2 and names.count("Rescaling") == 6
    model.compile("sgd", "mse")
    x = rng.standard_normal((5, 3, 4))
    check_model_gradients(model, x, rng.standard_normal((5, 1)))
    probe = lk.Model(inputs, [h, out], dtype="float64")
    hx, got = probe.predict(x, verbose=0)
    expected = -(1.0 + (2.0 - ((x + hx) * hx - 0.5 * x)) / 4.0 + offsets) - hx
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_arithmetic_on_symbolic_tensors_refuses_what_no_layer_computes() -> None:
    a, b = lk.Input(shape=(4,)), lk.Input(shape=(4,))
    with pytest.raises(TypeError, match="no division layer"):
        _ = a / b
    with pytest.raises(TypeError, match="no reciprocal layer"):
        _ = 1.0 / a
    with pytest.raises(TypeError, match=r"'input_layer.*' \+ str"):
        _ = a + "x"
    with pytest.raises(ShapeError, match="Add needs inputs of one shape"):
        _ = a + lk.Input(shape=(3,))


def test_input_takes_keras_3s_arguments_in_keras_3s_order(rng) -> None:
    # Keras 3: Input(shape, batch_size, dtype, sparse, batch_shape, name)
    assert lk.Input((4,), 32).name != 32  # the second positional is batch_size
    ids = lk.Input((5,), None, "int32", name="ids")
    assert ids.dtype == "int32" and ids.name == "ids"
    # a stateful model declares its batch as Keras 3 asks: Input(batch_shape=...)
    inputs = lk.Input(batch_shape=(4, 6, 2))
    assert inputs.sample_shape == (6, 2)
    model = lk.Model(inputs, Dense(1)(LSTM(3, stateful=True)(inputs)))
    model.compile("adam", "mse")
    model.fit(
        rng.standard_normal((8, 6, 2)),
        rng.standard_normal((8, 1)),
        batch_size=4,
        shuffle=False,
        verbose=0,
    )
    assert tuple(inputs.shape) == (4, 6, 2)
    # keras.layers.TimeDistributed's docstring: the batch size carries through
    frames = lk.Input(shape=(10, 8, 8, 3), batch_size=32)
    out = TimeDistributed(lk.layers.Conv2D(4, (3, 3)))(frames)
    assert tuple(out.shape) == (32, 10, 6, 6, 4)
    mixed = Add()([Dense(4)(lk.Input((3,), 2)), Dense(4)(lk.Input((3,)))])
    assert tuple(mixed.shape) == (None, 4)  # the inputs' batch sizes differ
    with pytest.raises(ConfigError, match="disagree"):
        lk.Input(shape=(5, 2), batch_shape=(4, 6, 2))
    with pytest.raises(ConfigError, match="needs shape="):
        lk.Input()
    with pytest.raises(ConfigError, match="sparse=True"):
        lk.Input((3,), sparse=True)
