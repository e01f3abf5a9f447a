"""Keras's namespaces and small model APIs: models, utils, metrics_names, trainable."""

from __future__ import annotations

import numpy as np
import pytest

import loopkit as lk
from loopkit.layers import Dense


def test_keras_utils_to_categorical_matches_keras_docs_example() -> None:
    # keras.utils.to_categorical([0, 1, 2, 3], num_classes=4) is the 4x4 identity
    np.testing.assert_array_equal(lk.utils.to_categorical([0, 1, 2, 3], 4), np.eye(4))
    out = lk.utils.to_categorical(np.array([[1], [0]]))
    assert out.dtype == np.float32 and out.tolist() == [[0, 1], [1, 0]]
    with pytest.raises(lk.ConfigError, match=r"num_classes=2\) got the id 2"):
        lk.utils.to_categorical([0, 2], num_classes=2)


def test_keras_utils_normalize_gives_unit_rows_and_keeps_zero_rows() -> None:
    out = lk.utils.normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)


def test_loopkit_models_holds_the_keras_names() -> None:
    assert lk.models.Sequential is lk.Sequential and lk.models.Model is lk.Model
    assert lk.models.load_model is lk.load_model


def test_metrics_names_lists_what_evaluate_returns_in_order(rng) -> None:
    inputs = lk.Input(shape=(3,))
    h = Dense(4)(inputs)
    model = lk.Model(
        inputs, [Dense(2, activation="softmax", name="a")(h), Dense(1, name="b")(h)]
    )
    model.compile(
        "sgd", ["sparse_categorical_crossentropy", "mse"], metrics={"a": ["accuracy"]}
    )
    assert model.metrics_names == ["loss", "a_loss", "b_loss", "a_accuracy"]
    x, y = rng.standard_normal((8, 3)), [rng.integers(0, 2, 8), rng.standard_normal((8, 1))]
    assert len(model.evaluate(x, y, verbose=0)) == len(model.metrics_names)


def test_model_trainable_false_freezes_every_layer(rng) -> None:
    model = lk.Sequential([Dense(4, input_dim=3), Dense(1)])
    model.compile("sgd", "mse")
    model.trainable = False
    before = model.get_weights()
    model.fit(
        rng.standard_normal((16, 3)), rng.standard_normal((16, 1)), epochs=1, verbose=0
    )
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.trainable_weights == []
    model.trainable = True
    model.fit(
        rng.standard_normal((16, 3)), rng.standard_normal((16, 1)), epochs=1, verbose=0
    )
    assert any(
        not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)
    )


def test_model_trainable_sets_every_layers_flag_as_keras() -> None:
    inner = lk.Sequential([Dense(2, input_dim=3)])
    model = lk.Sequential([inner, Dense(1)])
    model.layers[1].trainable = False
    model.trainable = False  # Keras sets each sublayer's trainable, nested models too
    assert [layer.trainable for layer in model.layers] == [False, False]
    assert inner.layers[0].trainable is False and inner.layers[0].trainable_weights == []
    model.trainable = True  # ...and True unfreezes layers frozen one by one, as Keras
    assert [layer.trainable for layer in model.layers] == [True, True]
    assert inner.layers[0].trainable and len(model.trainable_weights) == 4


def test_keras_preprocessing_paths_hold_pad_sequences_and_timeseries_windows() -> None:
    # keras.io's "Bidirectional LSTM on IMDB" pads with this path
    from loopkit.preprocessing.sequence import pad_sequences

    padded = lk.preprocessing.sequence.pad_sequences([[1, 2], [3]], maxlen=3)
    assert padded.tolist() == [[0, 1, 2], [0, 0, 3]]
    assert pad_sequences is lk.utils.pad_sequences
    windows = lk.preprocessing.timeseries_dataset_from_array(np.arange(5), None, 2)
    assert windows[0].tolist() == [[0, 1], [1, 2], [2, 3], [3, 4]]


def test_keras_second_layer_names_are_the_same_classes() -> None:
    from loopkit import layers
    from loopkit.layers import GlobalMaxPool1D, MaxPool1D

    assert MaxPool1D is layers.MaxPooling1D and GlobalMaxPool1D is layers.GlobalMaxPooling1D
    pairs = {
        "AvgPool1D": "AveragePooling1D",
        "AvgPool2D": "AveragePooling2D",
        "MaxPool2D": "MaxPooling2D",
        "GlobalAvgPool1D": "GlobalAveragePooling1D",
        "GlobalAvgPool2D": "GlobalAveragePooling2D",
        "GlobalMaxPool2D": "GlobalMaxPooling2D",
        "Convolution1D": "Conv1D",
        "Convolution2D": "Conv2D",
        "Convolution2DTranspose": "Conv2DTranspose",
    }
    for alias, name in pairs.items():
        assert getattr(layers, alias) is getattr(layers, name)
    # serialized under the main name, as Keras writes it
    assert layers.serialize(MaxPool1D(2))["class_name"] == "MaxPooling1D"
