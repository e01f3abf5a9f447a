"""keras.utils.PyDataset (alias Sequence) in fit, and keras.utils.set_random_seed."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

import loopkit as keras
from loopkit.layers import Dense, Dropout


class Batches(keras.utils.PyDataset):
    """Written as in Keras's PyDataset docs; counts the epoch hooks it receives."""

    def __init__(self, x: Any, y: Any, batch_size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.calls: list[str] = []

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, idx: int) -> tuple[Any, Any]:
        self.calls.append("getitem")
        low = idx * self.batch_size
        high = min(low + self.batch_size, len(self.x))
        return self.x[low:high], self.y[low:high]

    def on_epoch_begin(self) -> None:
        self.calls.append("begin")

    def on_epoch_end(self) -> None:
        self.calls.append("end")


def _data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return x, (x.sum(1, keepdims=True) > 0).astype(np.float32)


def _model() -> keras.Sequential:
    layers = [Dense(4, activation="relu", input_dim=3), Dropout(0.3), Dense(1)]
    model = keras.Sequential(layers)
    model.compile("adam", "mse")
    return model


def test_a_pydataset_subclass_trains_with_a_pydataset_for_validation(rng):
    train = Batches(*_data(rng, 10), batch_size=4, workers=2)  # 3 batches
    val = Batches(*_data(rng, 5), batch_size=2, use_multiprocessing=True)  # 3 batches
    keras.set_random_seed(0)
    model = _model()
    before = model.get_weights()
    history = model.fit(train, validation_data=val, epochs=2, verbose=0)
    assert len(history.history["loss"]) == len(history.history["val_loss"]) == 2
    assert not np.array_equal(before[0], model.get_weights()[0])
    assert history.params["steps"] == 3
    one_pass = ["begin", "getitem", "getitem", "getitem", "end"]
    assert train.calls == one_pass * 2  # each hook once per epoch, around the batches
    assert val.calls == one_pass * 2


def test_pydataset_keeps_the_keras_loading_options_and_defaults() -> None:
    x = np.zeros((5, 3), np.float32)
    plain = Batches(x, x, 2)
    assert plain.workers == 1 and plain.max_queue_size == 10
    assert plain.use_multiprocessing is False
    custom = Batches(x, x, 2, workers=2, use_multiprocessing=True, max_queue_size=3)
    assert custom.workers == 2 and custom.max_queue_size == 3
    assert custom.use_multiprocessing is True
    assert custom.num_batches == 3
    with pytest.raises(TypeError, match="unexpected keyword argument 'worker'"):
        Batches(x, x, 2, worker=2)


def test_the_base_hooks_do_nothing_and_sequence_is_the_same_class() -> None:
    assert keras.utils.Sequence is keras.utils.PyDataset
    base = keras.utils.PyDataset()
    assert base.on_epoch_begin() is None and base.on_epoch_end() is None


def test_a_pydataset_missing_len_or_getitem_says_what_to_implement() -> None:
    class Empty(keras.utils.Sequence):
        pass

    with pytest.raises(NotImplementedError, match=r"Empty defines no __len__: .* number"):
        len(Empty())
    with pytest.raises(NotImplementedError, match=r"Empty defines no __len__"):
        _ = Empty().num_batches
    with pytest.raises(NotImplementedError, match=r"Empty defines no __getitem__: .*"):
        Empty()[0]


def test_utils_set_random_seed_is_loopkits_and_makes_fits_bitwise_equal(rng):
    assert keras.utils.set_random_seed is keras.set_random_seed
    x, y = _data(rng, 24)

    def run() -> list[np.ndarray]:
        keras.utils.set_random_seed(1)  # builds, dropout masks and shuffles follow
        model = _model()
        model.fit(x, y, batch_size=5, epochs=3, verbose=0)
        return model.get_weights()

    first, second = run(), run()
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    keras.utils.set_random_seed(1)
    draws = (random.random(), np.random.random())  # noqa: NPY002 - the legacy state
    keras.utils.set_random_seed(1)
    assert draws == (random.random(), np.random.random())  # noqa: NPY002


def test_timeseries_windows_are_those_of_keras_docstring_examples() -> None:
    from loopkit.utils import timeseries_dataset_from_array

    # Example 1: indices 0..98, sequence_length=10, sampling_rate=2, sequence_stride=3
    ds = timeseries_dataset_from_array(
        np.arange(99), None, sequence_length=10, sampling_rate=2, sequence_stride=3
    )
    windows = np.concatenate(list(ds))
    assert windows[0].tolist() == list(range(0, 20, 2))
    assert windows[1].tolist() == list(range(3, 23, 2))
    assert windows[-1].tolist() == list(range(78, 98, 2))
    assert len(windows) == 27
    # Example 2: the past 10 steps predict the next one
    data = np.arange(100.0)
    x, y = timeseries_dataset_from_array(data[:-10], data[10:], sequence_length=10)[0]
    np.testing.assert_array_equal(x[0], data[:10])
    assert y[0] == data[10] and x.shape == (81, 10) and y.shape == (81,)
    # Example 3: non-overlapping many-to-many windows
    xs = np.arange(100)
    ds = timeseries_dataset_from_array(xs, None, sequence_length=20, sequence_stride=20)
    assert [w.tolist() for w in ds[0]] == [
        list(range(k, k + 20)) for k in range(0, 100, 20)
    ]


def test_timeseries_batches_start_end_and_a_seeded_shuffle() -> None:
    from loopkit.utils import timeseries_dataset_from_array

    data = np.arange(50.0)[:, None] * np.ones((1, 3))
    ds = timeseries_dataset_from_array(
        data, np.arange(50.0), sequence_length=4, batch_size=8, start_index=5, end_index=30
    )
    batches = list(ds)
    assert len(ds) == len(batches) == 3 and [len(b[0]) for b in batches] == [8, 8, 6]
    x, y = batches[0]
    assert x.shape == (8, 4, 3) and x[0, :, 0].tolist() == [5, 6, 7, 8] and y[0] == 5
    assert batches[-1][0][-1, -1, 0] == 29  # end_index is exclusive
    single = timeseries_dataset_from_array(data, None, sequence_length=4, batch_size=None)
    assert single[3].shape == (4, 3) and len(single) == 47

    def starts(seed):
        ds = timeseries_dataset_from_array(
            data, None, sequence_length=4, shuffle=True, seed=seed, batch_size=None
        )
        return [int(w[0, 0]) for w in ds]

    assert starts(1) == starts(1) != starts(2)
    assert sorted(starts(1)) == list(range(47))
    expected = np.arange(47)
    np.random.RandomState(1).shuffle(expected)  # Keras shuffles its start positions so
    assert starts(1) == expected.tolist()


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"sequence_length": 0}, keras.ConfigError, "sequence_length=0"),
        ({"sequence_length": 4, "sampling_rate": 0}, keras.ConfigError, "sampling_rate=0"),
        ({"sequence_length": 4, "sequence_stride": 1.5}, TypeError, "sequence_stride"),
        ({"sequence_length": 4, "start_index": 20}, keras.ConfigError, "start_index=20"),
        (
            {"sequence_length": 4, "start_index": 5, "end_index": 5},
            keras.ConfigError,
            "end",
        ),
        ({"sequence_length": 30}, keras.ConfigError, "no window of sequence_length=30"),
    ],
)
def test_timeseries_arguments_out_of_range_fail_clearly(kwargs, error, pattern) -> None:
    from loopkit.utils import timeseries_dataset_from_array

    with pytest.raises(error, match=pattern):
        timeseries_dataset_from_array(np.zeros((20, 2)), None, **kwargs)


def test_keras_weather_forecasting_trains_on_timeseries_datasets(rng) -> None:
    # keras.io "Timeseries forecasting for weather prediction", on generated data
    from loopkit.layers import LSTM, Dense

    features = rng.standard_normal((400, 7)).astype(np.float32)
    past, future, step = 24, 6, 3
    x_train, y_train = features[:300], features[past + future :, 1:2]
    dataset_train = keras.utils.timeseries_dataset_from_array(
        x_train, y_train, sequence_length=past // step, sampling_rate=step, batch_size=32
    )
    dataset_val = keras.utils.timeseries_dataset_from_array(
        features[300:370],
        features[300 + past + future :, 1:2],
        sequence_length=past // step,
        sampling_rate=step,
        batch_size=32,
    )
    inputs, targets = dataset_train[0]
    assert inputs.shape == (32, 8, 7) and targets.shape == (32, 1)
    inputs = keras.Input(shape=(inputs.shape[1], inputs.shape[2]))
    outputs = Dense(1)(LSTM(8)(inputs))
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")
    history = model.fit(dataset_train, epochs=2, validation_data=dataset_val, verbose=0)
    assert len(history.history["val_loss"]) == 2
    assert model.predict(dataset_val, verbose=0).shape == (len(dataset_val.positions), 1)
