"""pandas DataFrames and Series wherever arrays go, as Keras takes them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import loopkit as lk
from loopkit.layers import Concatenate, Dense


def make_model(loss: str = "mse", units: int = 1, seed: int = 0) -> lk.Sequential:
    lk.set_random_seed(seed)
    model = lk.Sequential([Dense(4, activation="relu", input_shape=(3,)), Dense(units)])
    model.compile(optimizer="adam", loss=loss, metrics=["mae"] if loss == "mse" else None)
    return model


@pytest.fixture
def frames(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    x = pd.DataFrame(
        {
            "a": rng.normal(size=40),
            "b": rng.integers(0, 5, size=40),  # mixed int and float columns
            "c": rng.normal(size=40).astype(np.float32),
        },
        index=np.arange(100, 140),  # not 0..n-1: rows are taken by position, as Keras
    )
    y = pd.Series(rng.normal(size=40), index=x.index, name="target")
    w = pd.Series(rng.uniform(0.5, 2.0, size=40), index=x.index)
    return x, y, w


def test_fit_evaluate_predict_on_frames_match_the_same_data_as_arrays(frames) -> None:
    x, y, w = frames
    xa = x.to_numpy(np.float32)
    ya = y.to_numpy(np.float32)[:, None]  # a Series is one column, as in Keras 3
    wa = w.to_numpy(np.float32)
    on_frames, on_arrays = make_model(), make_model()
    history = on_frames.fit(
        x,
        y,
        sample_weight=w,
        batch_size=8,
        epochs=2,
        verbose=0,
        validation_data=(x.iloc[:10], y.iloc[:10], w.iloc[:10]),
    )
    expected = on_arrays.fit(
        xa,
        ya,
        sample_weight=wa,
        batch_size=8,
        epochs=2,
        verbose=0,
        validation_data=(xa[:10], ya[:10], wa[:10]),
    )
    assert history.history == expected.history
    np.testing.assert_array_equal(on_frames.flat_weights, on_arrays.flat_weights)
    assert on_frames.evaluate(x, y, verbose=0) == on_arrays.evaluate(xa, ya, verbose=0)
    np.testing.assert_array_equal(
        on_frames.predict(x, verbose=0), on_arrays.predict(xa, verbose=0)
    )


def test_validation_split_and_train_on_batch_take_frames(frames) -> None:
    x, y, _ = frames
    model, reference = make_model(), make_model()
    history = model.fit(x, y, validation_split=0.25, epochs=1, verbose=0)
    expected = reference.fit(
        x.to_numpy(), y.to_numpy()[:, None], validation_split=0.25, epochs=1, verbose=0
    )
    assert history.history == expected.history
    assert model.train_on_batch(x, y) == reference.train_on_batch(
        x.to_numpy(np.float32), y.to_numpy(np.float32)[:, None]
    )


def test_a_series_of_class_ids_trains_a_sparse_classifier(frames) -> None:
    x, _, _ = frames
    labels = pd.Series(np.arange(40) % 3, index=x.index)
    model = make_model("sparse_categorical_crossentropy", units=3)
    reference = make_model("sparse_categorical_crossentropy", units=3)
    history = model.fit(x, labels, epochs=1, verbose=0)
    expected = reference.fit(x.to_numpy(), labels.to_numpy(), epochs=1, verbose=0)
    assert history.history == expected.history


def test_a_frame_feeds_a_several_input_model_by_column_name(rng) -> None:
    a, b = lk.Input(shape=(1,), name="a"), lk.Input(shape=(1,), name="b")
    out = Dense(1)(Concatenate()([a, b]))
    model = lk.Model(inputs=[a, b], outputs=out)
    model.compile(optimizer="sgd", loss="mse")
    frame = pd.DataFrame({"b": rng.normal(size=6), "a": rng.normal(size=6)})
    by_name = model.predict(frame, verbose=0)
    as_arrays = model.predict([frame[["a"]].to_numpy(), frame[["b"]].to_numpy()], verbose=0)
    np.testing.assert_array_equal(by_name, as_arrays)


def test_a_frame_of_strings_says_to_encode_them(frames) -> None:
    x, y, _ = frames
    x = x.assign(b=["red", "green"] * 20)
    with pytest.raises(TypeError, match="Encode strings or categories as numbers"):
        make_model().fit(x, y, verbose=0)
