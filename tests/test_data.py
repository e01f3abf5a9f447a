"""Data input: array batching and shuffling, memmaps, generators, Sequences, prefetching."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loopkit
from loopkit import ConfigError, Sequential, ShapeError
from loopkit._data.datasets import (
    ArrayDataset,
    Prefetcher,
    as_array,
    class_weight_vector,
    epoch_permutation,
    make_dataset,
    split_validation,
    unpack_batch,
)
from loopkit.layers import Dense, Dropout


def _dataset(x: Any, y: Any = None, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "batch_size": 4,
        "shuffle": False,
        "seed": 0,
        "dtype": np.float32,
        "steps": None,
        "integer_targets": False,
        "class_weight": None,
        "call": "fit()",
    }
    options.update(kwargs)
    sample_weight = options.pop("sample_weight", None)
    return make_dataset(x, y, sample_weight, **options)


def _model(seed: int = 0) -> Sequential:
    loopkit.set_random_seed(seed)
    model = Sequential([Dense(6, activation="relu", input_dim=3), Dropout(0.2), Dense(1)])
    model.compile("adam", "mse")
    return model


def _xy(rng: np.random.Generator, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return x, (x.sum(1, keepdims=True) > 0).astype(np.float32)


def _same_weights(a: Sequential, b: Sequential) -> bool:
    return all(
        np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights(), strict=True)
    )


class BatchSequence:
    """A Keras-style Sequence that records the batches it is asked for."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size
        self.requested: list[int] = []
        self.epochs_ended = 0

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        self.requested.append(index)
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[rows], self.y[rows]

    def on_epoch_end(self) -> None:
        self.epochs_ended += 1


# --- arrays ---------------------------------------------------------------------------


def test_unshuffled_batches_are_slices_in_order_with_a_short_last_batch():
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    y = np.arange(10, dtype=np.float32)
    dataset = _dataset(x, y)
    assert dataset.steps == 3
    batches = list(dataset.batches(0))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    assert all(np.shares_memory(b[0], x) for b in batches)  # views: no copy of the data


def test_shuffled_epochs_are_permutations_that_change_and_reproduce():
    x = np.arange(22, dtype=np.float32).reshape(11, 2)
    dataset = _dataset(x, x[:, 0].copy(), batch_size=3, shuffle=True, seed=42)

    def order(epoch: int) -> np.ndarray:
        return np.concatenate([y.copy() for _, y, _ in dataset.batches(epoch)])

    first = order(0)
    assert sorted(first) == list(x[:, 0])
    np.testing.assert_array_equal(order(0), first)  # a function of (seed, epoch)
    assert not np.array_equal(order(1), first)
    np.testing.assert_array_equal(first, x[epoch_permutation(42, 0, 11), 0])
    other = _dataset(x, x[:, 0].copy(), batch_size=3, shuffle=True, seed=43)
    assert not np.array_equal(
        np.concatenate([y.copy() for _, y, _ in other.batches(0)]), first
    )


def test_shuffled_batches_are_gathered_into_one_reused_buffer():
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    w = np.linspace(0, 1, 20, dtype=np.float32)
    dataset = _dataset(x, x[:, 1].copy(), batch_size=6, shuffle=True, sample_weight=w)
    seen: list[tuple[np.ndarray, ...]] = []
    for xb, yb, wb in dataset.batches(0):
        np.testing.assert_array_equal(xb[:, 1], yb)  # rows stay aligned
        np.testing.assert_array_equal(wb, xb[:, 0] / 38)
        assert not np.shares_memory(xb, x)
        seen.append((xb, yb, wb))
    for later in seen[1:]:
        for a, b in zip(seen[0], later, strict=True):
            assert np.shares_memory(a, b)  # the same buffer, refilled


def test_epoch_permutation_depends_only_on_seed_and_epoch():
    np.testing.assert_array_equal(epoch_permutation(1, 5, 50), epoch_permutation(1, 5, 50))
    assert sorted(epoch_permutation(1, 5, 50)) == list(range(50))
    assert not np.array_equal(epoch_permutation(1, 5, 50), epoch_permutation(1, 6, 50))


def test_single_arrays_in_a_list_tuple_or_dict_are_unwrapped():
    x = np.ones((5, 3))
    for wrapped in ([x], (x,), {"input": x}):
        assert as_array(wrapped, np.float32, "x", "fit()").shape == (5, 3)
    with pytest.raises(
        ConfigError,
        match=r"got x as a dict with keys \['a', 'b'\]; a "
        r"Sequential model has one input",
    ):
        as_array({"a": x, "b": x}, np.float32, "x", "fit()")
    with pytest.raises(TypeError, match=r"got x of dtype object; expected numbers"):
        as_array(np.array([None, 1.0], dtype=object), np.float32, "x", "fit()")


def test_fit_takes_one_array_wrapped_in_a_list_tuple_or_dict(rng):
    x, y = _xy(rng, 12)
    plain = _model(4)
    plain.fit(x, y, batch_size=4, epochs=2, verbose=0)
    wrapped = _model(4)
    wrapped.fit({"features": x}, [y], batch_size=4, epochs=2, verbose=0)
    assert _same_weights(plain, wrapped)
    np.testing.assert_array_equal(
        wrapped.predict((x,), verbose=0), plain.predict(x, verbose=0)
    )


def test_evaluate_draws_steps_batches_from_a_generator(rng):
    x, y = _xy(rng, 12)
    model = _model()
    drawn = []

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(0, 12, 4):
            drawn.append(i)
            yield x[i : i + 4], y[i : i + 4]

    loss = model.evaluate(batches(), steps=2, verbose=0)
    assert drawn == [0, 4]
    assert loss == pytest.approx(model.evaluate(x[:8], y[:8], verbose=0), rel=1e-6)


def test_a_float32_array_is_used_without_a_copy():
    x = np.ones((5, 3), np.float32)
    assert as_array(x, np.float32, "x", "fit()") is x


def test_integer_targets_stay_integers_for_sparse_losses_only():
    x, labels = np.ones((4, 2)), np.array([0, 2, 1, 1])
    assert _dataset(x, labels, integer_targets=True).y.dtype.kind == "i"
    assert _dataset(x, labels).y.dtype == np.float32


# --- memmaps --------------------------------------------------------------------------


def _write_npy(path: Path, array: np.ndarray) -> np.memmap:
    out = np.lib.format.open_memmap(path, mode="w+", dtype=array.dtype, shape=array.shape)
    out[...] = array
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def test_memmap_input_trains_bitwise_like_the_same_arrays_in_memory(rng, tmp_path):
    x, y = _xy(rng, 30)
    mapped = _write_npy(tmp_path / "x.npy", x)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    in_memory, from_disk = _model(6), _model(6)
    kwargs = {"batch_size": 8, "epochs": 2, "validation_split": 0.2, "verbose": 0}
    expected = in_memory.fit(x, y, **kwargs)
    history = from_disk.fit(mapped, y, **kwargs)
    assert _same_weights(in_memory, from_disk)
    assert history.history == expected.history
    np.testing.assert_array_equal(
        from_disk.predict(mapped, verbose=0), in_memory.predict(x, verbose=0)
    )


def test_a_memmap_is_kept_as_is_and_converted_batch_by_batch(tmp_path):
    pixels = np.arange(60, dtype=np.uint8).reshape(20, 3)
    mapped = _write_npy(tmp_path / "pixels.npy", pixels)
    for shuffle in (False, True):
        dataset = _dataset(mapped, np.zeros(20), batch_size=8, shuffle=shuffle)
        assert dataset.x is mapped  # never loaded whole
        batches = [xb.copy() for xb, _, _ in dataset.batches(0)]
        assert all(b.dtype == np.float32 for b in batches)
        rows = np.concatenate(batches)
        np.testing.assert_array_equal(np.sort(rows[:, 0]), pixels[:, 0].astype(np.float32))


# --- generators, iterables and Sequences ----------------------------------------------


def test_a_generator_with_steps_per_epoch_trains_steps_times_epochs_batches(rng):
    x, y = _xy(rng, 12)
    drawn = []

    def endless() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while True:
            start = (len(drawn) % 3) * 4
            drawn.append(start)
            yield x[start : start + 4], y[start : start + 4]

    model = _model()
    history = model.fit(endless(), steps_per_epoch=3, epochs=4, verbose=0)
    assert len(drawn) == 12  # no batch is drawn ahead and lost between epochs
    assert model.state.global_step == 12 and len(history.history["loss"]) == 4
    assert history.params["steps"] == 3
    reference = _model()
    reference.fit(x, y, batch_size=4, epochs=4, shuffle=False, verbose=0)
    assert _same_weights(model, reference)


def test_a_generator_of_weighted_batches_trains_like_weighted_arrays(rng):
    x, y = _xy(rng, 12)
    w = np.linspace(0.5, 2.0, 12).astype(np.float32)
    batches = ((x[i : i + 4], y[i : i + 4], w[i : i + 4]) for i in range(0, 12, 4))
    from_generator = _model(2)
    from_generator.fit(batches, epochs=1, verbose=0)
    from_arrays = _model(2)
    from_arrays.fit(x, y, sample_weight=w, batch_size=4, shuffle=False, verbose=0)
    assert _same_weights(from_generator, from_arrays)


def test_a_list_of_batches_is_reiterated_every_epoch(rng):
    x, y = _xy(rng, 12)
    model = _model()
    batches = [(x[i : i + 4], y[i : i + 4]) for i in range(0, 12, 4)]
    model.fit(batches, epochs=3, verbose=0)
    assert model.state.global_step == 9
    with pytest.raises(
        ConfigError, match=r"got a list of \(x, y\) batches together with y"
    ):
        model.fit(batches, y, verbose=0)


def test_a_sequence_has_every_batch_visited_once_per_epoch(rng):
    x, y = _xy(rng, 18)
    sequence = BatchSequence(x, y, 4)  # 5 batches, the last of 2 samples
    model = _model()
    history = model.fit(sequence, epochs=3, verbose=0)
    assert len(sequence.requested) == 15
    for epoch in range(3):
        assert sorted(sequence.requested[epoch * 5 : (epoch + 1) * 5]) == [0, 1, 2, 3, 4]
    assert sequence.requested[:5] != sequence.requested[5:10]  # batches are shuffled
    assert sequence.epochs_ended == 3
    assert history.params["steps"] == 5 and model.state.global_step == 15


def test_an_unshuffled_sequence_trains_like_the_arrays_it_serves(rng):
    x, y = _xy(rng, 18)
    sequence = BatchSequence(x, y, 4)
    from_sequence = _model(3)
    from_sequence.fit(sequence, epochs=2, shuffle=False, verbose=0)
    assert sequence.requested == [0, 1, 2, 3, 4] * 2
    from_arrays = _model(3)
    from_arrays.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert _same_weights(from_sequence, from_arrays)
    sequence.requested.clear()
    _model().fit(sequence, steps_per_epoch=2, shuffle=False, verbose=0)
    assert sequence.requested == [0, 1]


def test_generator_and_sequence_batches_are_prepared_in_a_background_thread(rng):
    x, y = _xy(rng, 8)
    threads = []

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(0, 8, 4):
            threads.append(threading.current_thread())
            yield x[i : i + 4], y[i : i + 4]

    _model().fit(batches(), verbose=0)
    assert len(threads) == 2
    assert all(t is not threading.main_thread() for t in threads)
    assert all(t.name == "loopkit-prefetch" for t in threads)


def test_the_prefetcher_reraises_a_generator_error_in_the_consumer():
    def failing() -> Iterator[int]:
        yield 1
        raise KeyError("broken record")

    prefetcher = Prefetcher(failing(), lambda item: item * 10)
    results = iter(prefetcher)
    assert next(results) == 10
    with pytest.raises(KeyError, match="broken record"):
        next(results)
    assert not prefetcher._thread.is_alive()


def test_the_prefetcher_thread_ends_when_the_consumer_stops_early():
    def endless() -> Iterator[int]:
        n = 0
        while True:
            n += 1
            yield n

    prefetcher = Prefetcher(endless(), lambda item: item)
    for item in prefetcher:
        if item == 3:
            break
    prefetcher.close()
    assert not prefetcher._thread.is_alive()


def test_a_generator_error_during_fit_reaches_the_caller(rng):
    x, y = _xy(rng, 8)

    def broken() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield x[:4], y[:4]
        raise RuntimeError("disk unplugged")

    with pytest.raises(RuntimeError, match="disk unplugged"):
        _model().fit(broken(), verbose=0)


def test_batches_that_are_not_tuples_are_refused_with_their_type():
    with pytest.raises(
        ConfigError,
        match=r"a batch from the data is list; expected a tuple "
        r"\(x, y\) or \(x, y, sample_weight\)",
    ):
        unpack_batch([np.ones(2), np.ones(2)], np.float32, "fit()")
    x, _, w = unpack_batch((np.ones((2, 3), np.float64), np.zeros(2)), np.float32, "fit()")
    assert x.dtype == np.float32 and w is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"y": np.ones(3)},
            ConfigError,
            r"got a generator as x together with y/sample_weight",
        ),
        (
            {"batch_size": 8},
            ConfigError,
            r"got batch_size=8 with a generator, which makes its "
            r"own batches; leave batch_size=None",
        ),
        (
            {"steps": 0, "batch_size": None},
            ConfigError,
            r"got steps=0; expected a positive int",
        ),
    ],
)
def test_generators_refuse_arguments_that_only_arrays_take(kwargs, error, match):
    def gen() -> Iterator[Any]:
        yield np.ones((2, 3)), np.ones(2)

    options = {"batch_size": None, **kwargs}
    with pytest.raises(error, match=match):
        _dataset(gen(), **options)


def test_an_empty_sequence_and_missing_x_are_refused():
    with pytest.raises(ConfigError, match=r"got an empty Sequence \(len 0\)"):
        _dataset(BatchSequence(np.ones((0, 3)), np.ones(0), 4), batch_size=None)
    with pytest.raises(ConfigError, match=r"got x=None; pass the input data as an array"):
        _dataset(None)


# --- validation split and class weights -----------------------------------------------


def test_split_validation_keeps_the_last_samples_for_validation_as_keras_does():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    train, validation = split_validation(
        _dataset(x, x[:, 0].copy(), shuffle=True), 0.3, "fit()"
    )
    np.testing.assert_array_equal(train.y, np.arange(7))  # floor(10 * 0.7) = 7
    np.testing.assert_array_equal(validation.y, [7, 8, 9])
    assert train.shuffle and not validation.shuffle


def test_split_validation_needs_samples_on_both_sides():
    x = np.ones((3, 1))
    with pytest.raises(
        ConfigError,
        match=r"validation_split=0.7 with 3 samples, which leaves "
        r"0 for training and 3 for validation",
    ):
        split_validation(_dataset(x, x), 0.7, "fit()")
    with pytest.raises(
        ConfigError, match=r"validation_batch_size=0; expected a positive int"
    ):
        split_validation(_dataset(x, x), 0.5, "fit()", validation_batch_size=0)


def test_class_weights_become_per_sample_weights_for_labels_and_one_hot_targets():
    x = np.ones((4, 2))
    table = {0: 0.5, 2: 4.0}  # class 1 is not listed: weight 1
    labels = np.array([0, 1, 2, 2])
    np.testing.assert_array_equal(
        _dataset(x, labels, class_weight=table).sample_weight, [0.5, 1.0, 4.0, 4.0]
    )
    one_hot = np.eye(3)[labels]
    np.testing.assert_array_equal(
        _dataset(
            x, one_hot, class_weight=table, sample_weight=np.full(4, 2.0)
        ).sample_weight,
        [1.0, 2.0, 8.0, 8.0],
    )


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({}, r"got class_weight=\{\}; expected a dict mapping class index to weight"),
        (
            {"cat": 1.0},
            r"got class_weight keys \['cat'\]; expected non-negative int class ids",
        ),
        ({-1: 1.0}, r"got class_weight keys \[-1\]; expected non-negative int class ids"),
    ],
)
def test_class_weight_vector_refuses_malformed_tables(table, match):
    with pytest.raises(ConfigError, match=match):
        class_weight_vector(table, "fit()")


def test_class_weight_without_targets_is_refused():
    with pytest.raises(ConfigError, match=r"got class_weight without y"):
        _dataset(np.ones((3, 2)), None, class_weight={0: 1.0})


def test_sample_weight_must_have_one_value_per_sample():
    with pytest.raises(ShapeError, match=r"sample_weight of shape \(2,\) for 3 samples"):
        _dataset(np.ones((3, 2)), np.ones(3), sample_weight=np.ones(2))


def test_array_dataset_stops_after_max_steps():
    dataset = ArrayDataset(np.ones((10, 1)), None, None, 3, max_steps=2)
    assert dataset.steps == 2 and len(list(dataset.batches(0))) == 2
