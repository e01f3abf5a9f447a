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
