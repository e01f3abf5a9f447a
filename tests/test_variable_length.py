"""Sequences of any length, ``Input(shape=(None, ...))``: build, train, save, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import loopkit as lk
from loopkit import ShapeError
from loopkit.layers import (
    GRU,
    LSTM,
    Bidirectional,
    Concatenate,
    Conv1D,
    Cropping1D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    Input,
    Masking,
    MultiHeadAttention,
    Reshape,
    TimeDistributed,
)


def text_classifier() -> lk.Model:
    """keras.io "Text classification from scratch", with smaller sizes."""
    inputs = Input(shape=(None,), dtype="int64")
    x = Embedding(60, 8)(inputs)
    x = Dropout(0.5)(x)
    x = Conv1D(8, 7, padding="valid", activation="relu", strides=3)(x)
    x = Conv1D(8, 7, padding="valid", activation="relu", strides=3)(x)
    x = GlobalMaxPooling1D()(x)
    x = Dense(8, activation="relu")(x)
    x = Dropout(0.5)(x)
    predictions = Dense(1, activation="sigmoid", name="predictions")(x)
    return lk.Model(inputs, predictions)


def fit_two_lengths(
    model: Any, make_x: Any, y: Any, lengths: tuple[int, int]
) -> list[float]:
    """One epoch of two steps at each length; return the losses."""
    losses = []
    for steps in lengths:
        before = model.get_weights()
        history = model.fit(make_x(steps), y, batch_size=len(y) // 2, epochs=1, verbose=0)
        losses.append(history.history["loss"][0])
        changed = [
            not np.array_equal(a, b)
            for a, b in zip(before, model.get_weights(), strict=True)
        ]
        assert all(changed), f"a weight did not train on sequences of {steps} steps"
    return losses


def test_keras_io_text_classifier_trains_on_two_lengths_and_predicts_a_third(rng) -> None:
    model = text_classifier()
    assert model.inputs[0].shape == (None, None)
    # by kind, not by name: names are numbered per process, so they depend on which
    # tests ran before this one
    conv = next(layer for layer in model.layers if isinstance(layer, Conv1D))
    pool = next(layer for layer in model.layers if isinstance(layer, GlobalMaxPooling1D))
    assert conv.output.shape == (None, None, 8)
    assert pool.output.shape == (None, 8)
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    y = rng.integers(0, 2, (16, 1))
    losses = fit_two_lengths(model, lambda t: rng.integers(0, 60, (16, t)), y, (40, 57))
    assert all(np.isfinite(losses))
    assert model.predict(rng.integers(0, 60, (5, 90)), verbose=0).shape == (5, 1)
    loss, accuracy = model.evaluate(rng.integers(0, 60, (6, 25)), y[:6], verbose=0)
    assert np.isfinite(loss) and 0.0 <= accuracy <= 1.0


def test_keras_io_rnn_models_with_any_length_train_on_two_lengths(rng) -> None:
    # "Working with RNNs": Embedding + LSTM from token ids of any length ...
    tokens = lk.Sequential([Input(shape=(None,)), Embedding(100, 8), LSTM(6), Dense(3)])
    tokens.compile("adam", lk.losses.SparseCategoricalCrossentropy(from_logits=True))
    y = rng.integers(0, 3, 8)
    fit_two_lengths(tokens, lambda t: rng.integers(0, 100, (8, t)), y, (5, 11))
    # ... and Input((None, 5)) straight into an LSTM.
    inputs = Input((None, 5))
    outputs = Dense(1)(LSTM(4)(inputs))
    series = lk.Model(inputs, outputs)
    series.compile("adam", "mse")
    y = rng.standard_normal((8, 1))
    fit_two_lengths(series, lambda t: rng.standard_normal((8, t, 5)), y, (3, 9))


def test_keras_io_encoder_decoder_takes_two_inputs_of_their_own_lengths(rng) -> None:
    """ "Working with RNNs": the encoder's states start a decoder; both any length."""
    encoder_input = Input(shape=(None,))
    embedded = Embedding(input_dim=30, output_dim=6)(encoder_input)
    _, state_h, state_c = LSTM(6, return_state=True, name="encoder")(embedded)
    decoder_input = Input(shape=(None,))
    decoded = Embedding(input_dim=20, output_dim=6)(decoder_input)
    decoder_output = LSTM(6, name="decoder")(decoded, initial_state=[state_h, state_c])
    model = lk.Model([encoder_input, decoder_input], Dense(4)(decoder_output))
    model.compile("adam", lk.losses.SparseCategoricalCrossentropy(from_logits=True))

    def batches() -> Any:
        for te, td in ((5, 3), (8, 6), (2, 9)):
            xs = (rng.integers(0, 30, (4, te)), rng.integers(0, 20, (4, td)))
            yield xs, rng.integers(0, 4, 4)

    history = model.fit(batches(), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    out = model.predict(
        [rng.integers(0, 30, (3, 4)), rng.integers(0, 20, (3, 12))], verbose=0
    )
    assert out.shape == (3, 4)


def test_sequential_with_a_none_length_input_builds_and_shows_none(rng) -> None:
    model = lk.Sequential([Input(shape=(None, 3)), GRU(4, return_sequences=True), Dense(2)])
    assert model.input_shape == (None, 3)
    assert model.output_shape == (None, 2)
    printed: list[str] = []
    model.summary(print_fn=printed.append)
    assert "(None, None, 2)" in printed[0]
    first_layer = lk.Sequential([LSTM(4, input_shape=(None, 10)), Dense(1)])
    assert first_layer.input_shape == (None, 10) and first_layer.built
    built_later = lk.Sequential([Conv1D(3, 2), GlobalAveragePooling1D()])
    built_later.build((None, None, 4))
    assert built_later.output_shape == (3,)
    out = built_later.predict(rng.standard_normal((2, 7, 4)), verbose=0)
    assert out.shape == (2, 3)


def test_fit_from_a_generator_and_a_pydataset_of_batches_of_different_lengths(rng) -> None:
    model = lk.Sequential([Input(shape=(None, 3)), Masking(), GRU(4), Dense(1)])
    model.compile("adam", "mse")
    lengths = (4, 7, 2)

    def batches() -> Any:
        for t in lengths:
            yield rng.standard_normal((5, t, 3)), rng.standard_normal((5, 1))

    class Buckets(lk.utils.PyDataset):
        def __len__(self) -> int:
            return len(lengths)

        def __getitem__(self, index: int) -> Any:
            t = lengths[index]
            return rng.standard_normal((5, t, 3)), rng.standard_normal((5, 1))

    assert np.isfinite(model.fit(batches(), epochs=1, verbose=0).history["loss"][0])
    assert np.isfinite(model.fit(Buckets(), epochs=2, verbose=0).history["loss"][-1])
    assert np.isfinite(model.evaluate(Buckets(), verbose=0))
    assert model.predict(Buckets(), verbose=0).shape == (15, 1)


def test_per_step_targets_of_each_batch_length_train_a_sequence_output(rng) -> None:
    inputs = Input((None,), dtype="int32")
    x = GRU(5, return_sequences=True)(Embedding(30, 6, mask_zero=True)(inputs))
    outputs = TimeDistributed(Dense(4, activation="softmax"))(x)
    model = lk.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])

    def batches() -> Any:
        for t in (3, 7, 5):
            yield rng.integers(1, 30, (4, t)), rng.integers(0, 4, (4, t))

    history = model.fit(batches(), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_fit_on_one_length_validates_and_predicts_on_others(rng) -> None:
    model = text_classifier()
    model.compile("adam", "binary_crossentropy")
    x, y = rng.integers(0, 60, (8, 30)), rng.integers(0, 2, (8, 1))
    val = (rng.integers(0, 60, (4, 45)), rng.integers(0, 2, (4, 1)))
    history = model.fit(x, y, validation_data=val, epochs=1, verbose=0)
    assert np.isfinite(history.history["val_loss"][0])
    assert np.isfinite(model.train_on_batch(rng.integers(0, 60, (4, 33)), y[:4]))
    assert model.predict_on_batch(rng.integers(0, 60, (2, 70))).shape == (2, 1)


def test_the_padding_of_a_longer_batch_changes_no_prediction(rng) -> None:
    model = lk.Sequential(
        [Input(shape=(None,), dtype="int64"), Embedding(20, 4, mask_zero=True), LSTM(5)]
    )
    model.add(Dense(2))
    ids = rng.integers(1, 20, (3, 6))
    ids[0, 4:] = 0  # padded at the end already
    padded = np.concatenate([ids, np.zeros((3, 5), ids.dtype)], axis=1)
    np.testing.assert_allclose(
        model.predict(ids, verbose=0), model.predict(padded, verbose=0), atol=1e-6
    )
    masked = lk.Sequential([Input(shape=(None, 3)), Masking(), GRU(4)])
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    longer = np.concatenate([x, np.zeros((2, 4, 3), np.float32)], axis=1)
    np.testing.assert_allclose(
        masked.predict(x, verbose=0), masked.predict(longer, verbose=0), atol=1e-6
    )


def test_save_load_and_configs_keep_the_any_length_axis(rng, tmp_path) -> None:
    inputs = Input((None, 3))
    outputs = Dense(2)(LSTM(3, return_sequences=True)(inputs))
    model = lk.Model(inputs, outputs)
    model.compile("adam", "mse")
    x = rng.standard_normal((2, 6, 3))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = lk.load_model(path)
    assert loaded.inputs[0].shape == (None, None, 3)
    assert loaded.output_shape == (None, 2)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert lk.Model.from_config(model.get_config()).output_shape == (None, 2)
    assert lk.models.clone_model(model).inputs[0].shape == (None, None, 3)
    stack = lk.Sequential([Input((None, 3)), GRU(2)])
    assert stack.get_config()["input_shape"] == [None, 3]
    stack.save(str(tmp_path / "stack.keras"))
    reloaded = lk.load_model(str(tmp_path / "stack.keras"))
    assert reloaded.input_shape == (None, 3)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), stack.predict(x, verbose=0))


def test_a_model_of_any_length_nests_in_another(rng) -> None:
    inputs = Input((None, 3))
    inner = lk.Model(inputs, Dense(2)(LSTM(3, return_sequences=True)(inputs)))
    outer_in = Input((None, 3))
    outer = lk.Model(outer_in, GlobalMaxPooling1D()(inner(outer_in)))
    outer.compile("adam", "mse")
    outer.fit(rng.standard_normal((4, 6, 3)), rng.standard_normal((4, 2)), verbose=0)
    assert outer.predict(rng.standard_normal((2, 9, 3)), verbose=0).shape == (2, 2)


def test_buffers_of_a_shorter_length_reuse_the_memory_of_a_longer_one(rng) -> None:
    layer = Dense(3)
    layer.setup((None, 4), np.float32)
    long_out = layer.forward(rng.standard_normal((2, 9, 4)).astype(np.float32))
    short_out = layer.forward(rng.standard_normal((2, 5, 4)).astype(np.float32))
    assert short_out.shape == (2, 5, 3) and short_out.flags.c_contiguous
    assert np.shares_memory(long_out, short_out)


# --- what needs a fixed length fails when the model is made ------------------------


def test_flatten_then_dense_on_any_length_says_why_and_how_to_fix() -> None:
    with pytest.raises(
        ShapeError,
        match=r"Dense\)\.add_weight\(\) asked for weight 'kernel' of shape \(None, 2\)"
        r".*input shape \(None,\).*cannot change with the sequence length.*"
        r"GlobalAveragePooling1D.*instead of Flatten.*Input\(shape=",
    ):
        lk.Sequential([Input(shape=(None, 3)), Flatten(), Dense(2)])
    with pytest.raises(ShapeError, match=r"shape \(None, 2\).*input shape \(None, None\)"):
        lk.Sequential([Input(shape=(None, None)), Dense(2)])


def test_reshape_with_the_length_in_it_says_to_use_minus_one() -> None:
    with pytest.raises(
        ShapeError,
        match=r"Reshape layer 'reshape' got samples of shape \(None, 3\).*"
        r"target_shape=\(12,\) has a fixed number of values.*target_shape=\(-1,\)",
    ):
        lk.Sequential([Input(shape=(None, 3)), Reshape((12,), name="reshape")])
    model = lk.Sequential([Input(shape=(None, 3)), Reshape((-1, 1)), LSTM(2)])
    assert model.layers[0].output.shape == (None, None, 1)
    assert model.predict(np.ones((2, 4, 3), np.float32), verbose=0).shape == (2, 2)


def test_a_layer_that_needs_every_size_names_the_shape_and_the_fix() -> None:
    with pytest.raises(
        ShapeError,
        match=r"Conv2D layer 'conv2d' got samples of shape \(None, None, 3\), where "
        r"None is an axis of any length.*Give the size in Input\(shape=",
    ):
        lk.Sequential([Input((None, None, 3)), lk.layers.Conv2D(2, 3, name="conv2d")])


def test_a_batch_shorter_than_a_window_names_its_length(rng) -> None:
    model = lk.Sequential([Input((None, 4)), Conv1D(2, 5)])
    with pytest.raises(ShapeError, match=r"sequences of 3 steps, shorter than its window"):
        model.predict(np.ones((2, 3, 4), np.float32), verbose=0)
    crop = lk.Sequential([Input((None, 4)), Cropping1D(3)])
    with pytest.raises(ShapeError, match=r"sequences of 5 steps, leaving -1"):
        crop.predict(np.ones((2, 5, 4), np.float32), verbose=0)


def test_only_an_axis_left_as_none_may_change_between_batches(rng) -> None:
    model = lk.Sequential([Input(shape=(None, 3)), GRU(2)])
    model.compile("adam", "mse")

    def batches() -> Any:
        yield rng.standard_normal((2, 4, 3)), np.zeros((2, 2))
        yield rng.standard_normal((2, 4, 5)), np.zeros((2, 2))

    with pytest.raises(ShapeError, match=r"batch 1 .*shape \(2, 4, 5\).*None"):
        model.fit(batches(), epochs=1, verbose=0)
    fixed = lk.Sequential([Input(shape=(6, 3)), GRU(2)])
    with pytest.raises(ShapeError, match=r"expects samples of shape \(6, 3\)"):
        fixed.predict(np.ones((1, 7, 3), np.float32), verbose=0)


def test_input_still_refuses_zero_and_non_int_axes() -> None:
    with pytest.raises(lk.ConfigError, match=r"positive int, or None for an axis of any"):
        Input(shape=(0, 3))
    with pytest.raises(lk.ConfigError, match=r"Input\(shape=\(None, 2.5\)\)"):
        Input(shape=(None, 2.5))  # type: ignore[arg-type]


def test_concatenate_over_time_and_attention_keep_the_length_unknown() -> None:
    a, b = Input((None, 4)), Input((None, 4))
    assert Concatenate(axis=1)([a, b]).shape == (None, None, 4)
    assert MultiHeadAttention(2, 3)(a, b).shape == (None, None, 4)
    assert Bidirectional(LSTM(3, return_sequences=True))(a).shape == (None, None, 6)


def test_preprocessing_layers_take_sequences_of_any_length(rng) -> None:
    x = rng.standard_normal((6, 5, 4)).astype(np.float32)
    norm = lk.layers.Normalization()
    model = lk.Sequential([Input((None, 4)), lk.layers.Rescaling(2.0, offset=1.0), norm])
    norm.adapt(2.0 * x + 1.0)
    out = model.predict(x[:, :3], verbose=0)
    mean, std = (2.0 * x + 1.0).mean(axis=(0, 1)), (2.0 * x + 1.0).std(axis=(0, 1))
    np.testing.assert_allclose(
        out, (2.0 * x[:, :3] + 1.0 - mean) / std, rtol=1e-4, atol=1e-5
    )
    with pytest.raises(ShapeError, match=r"scale of shape \(5, 1\), which does not"):
        lk.Sequential([Input((None, 4)), lk.layers.Rescaling(np.ones((5, 1)))])


def test_an_any_length_model_nested_on_a_known_length_gives_that_length() -> None:
    inputs = Input((None, 3))
    inner = lk.Model(
        inputs, Conv1D(2, 3, strides=2)(LSTM(3, return_sequences=True)(inputs))
    )
    outer_in = Input((9, 3))
    nested = inner(outer_in)
    assert nested.shape == (None, 4, 2)  # as Keras: the length is known again
    outer = lk.Model(outer_in, Dense(1)(Flatten()(nested)))
    assert outer.output_shape == (1,)


def test_predict_over_lengths_of_a_sequence_output_says_no_array_holds_them(rng) -> None:
    model = lk.Sequential([Input((None, 3)), GRU(2, return_sequences=True)])

    def batches() -> Any:
        for t in (3, 5):
            yield rng.standard_normal((2, t, 3))

    with pytest.raises(
        ShapeError,
        match=r"predict\(\) got batches whose outputs have samples of shapes "
        r"\[\(3, 2\), \(5, 2\)\].*predict_on_batch.*pad_sequences",
    ):
        model.predict(batches(), verbose=0)


def test_an_elementwise_merge_of_any_and_a_known_length_takes_the_known_one() -> None:
    free, fixed = Input((None, 4)), Input((5, 4))
    assert lk.layers.Add()([free, fixed]).shape == (None, 5, 4)
    with pytest.raises(ShapeError, match=r"needs inputs of one shape"):
        lk.layers.Add()([free, Input((5, 3))])


def test_padding_masked_through_self_attention_changes_no_prediction(rng) -> None:
    inputs = Input((None,), dtype="int64")
    embedded = Embedding(20, 4, mask_zero=True)(inputs)
    attended = lk.layers.LayerNormalization()(MultiHeadAttention(2, 3)(embedded, embedded))
    h = Bidirectional(LSTM(3, return_sequences=True))(attended)
    model = lk.Model(inputs, Dense(1)(GlobalAveragePooling1D()(h)))
    ids = rng.integers(1, 20, (3, 6))
    ids[1, 4:] = 0
    padded = np.concatenate([ids, np.zeros((3, 5), ids.dtype)], axis=1)
    np.testing.assert_allclose(
        model.predict(ids, verbose=0), model.predict(padded, verbose=0), atol=1e-6
    )
