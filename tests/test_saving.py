"""Weights files and whole-model files: pickle-free round trips, checks, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from attrs import define

import loopkit
from loopkit import CheckpointError, Sequential
from loopkit.layers import BatchNormalization, Dense, Dropout, Layer
from loopkit.optimizers import SGD, Adam
from loopkit.saving.atomic import atomic_write, write_atomically
from loopkit.saving.model_files import load_model, restore_training_state, training_state


def _model(seed: int = 0, units: int = 4, compiled: bool = True) -> Sequential:
    loopkit.set_random_seed(seed)
    model = Sequential(
        [
            Dense(units, activation="relu", input_dim=3),
            BatchNormalization(),
            Dropout(0.3),
            Dense(2, activation="softmax"),
        ]
    )
    if compiled:
        model.compile(
            Adam(learning_rate=0.01),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    return model


def _data(rng: np.random.Generator, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def _weights_equal(a: Sequential, b: Sequential) -> bool:
    return all(
        np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights(), strict=True)
    )


# --- weights files --------------------------------------------------------------------


def test_save_weights_and_load_weights_round_trip_without_pickle(rng, tmp_path):
    x, y = _data(rng)
    trained = _model(1)
    trained.fit(x, y, epochs=2, batch_size=8, verbose=0)
    path = tmp_path / "model.weights.npz"
    trained.save_weights(str(path))
    with np.load(path, allow_pickle=False) as data:  # plain arrays and a JSON manifest
        assert (
            "dense/kernel" in data.files and "batch_normalization/moving_mean" in data.files
        )
        manifest = json.loads(data["__manifest__"].tobytes())
    assert manifest["format"] == "loopkit.weights"
    fresh = _model(2)
    assert not _weights_equal(trained, fresh)
    fresh.load_weights(str(path))
    assert _weights_equal(trained, fresh)
    np.testing.assert_array_equal(
        fresh.predict(x, verbose=0), trained.predict(x, verbose=0)
    )
    for p in fresh.weights:  # loaded in place: still views of the flat buffer
        assert np.shares_memory(p.value, fresh.flat_weights)


def test_load_weights_with_a_shape_mismatch_names_the_layer_and_both_shapes(tmp_path):
    path = tmp_path / "small.weights.npz"
    _model(units=4).save_weights(path)
    wider = _model(units=5)
    before = wider.get_weights()
    with pytest.raises(
        CheckpointError,
        match=r"layer 'dense' weight 'kernel' has shape \(3, 5\) in the model but "
        r"\(3, 4\) in "
        r"the file\. Build the model with the same layer sizes",
    ):
        wider.load_weights(path)
    for kept, now in zip(before, wider.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)  # nothing was half loaded


def test_load_weights_names_missing_and_unexpected_weights(tmp_path):
    path = tmp_path / "w.weights.npz"
    Sequential([Dense(2, input_dim=3, name="encoder")]).save_weights(path)
    model = Sequential([Dense(2, input_dim=3, name="decoder")])
    before = model.get_weights()
    with pytest.raises(
        CheckpointError,
        match=r"Missing from the file: \['decoder/kernel', 'decoder/bias'\]; "
        r"in the file but "
        r"not the model: \['encoder/kernel', 'encoder/bias'\]",
    ):
        model.load_weights(path)
    np.testing.assert_array_equal(before[0], model.get_weights()[0])


def test_load_weights_reads_the_weights_of_a_whole_model_file(tmp_path):
    source = _model(3)
    source.save(tmp_path / "model.npz")
    target = _model(4)
    target.load_weights(tmp_path / "model.npz")
    assert _weights_equal(source, target)


def test_save_weights_replaces_an_existing_file(tmp_path):
    path = tmp_path / "w.weights.npz"
    _model(1).save_weights(path)
    second = _model(2)
    second.save_weights(path)
    loaded = _model(3)
    loaded.load_weights(path)
    assert _weights_equal(second, loaded)
    assert sorted(os.listdir(tmp_path)) == ["w.weights.npz"]  # no temporary file is left


# --- whole-model files ----------------------------------------------------------------


def test_load_model_restores_architecture_compile_config_and_optimizer_state(rng, tmp_path):
    x, y = _data(rng)
    model = _model(5)
    model.layers[0].trainable = False
    model.optimizer.learning_rate = 0.003
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    assert [type(layer) for layer in loaded.layers] == [
        type(layer) for layer in model.layers
    ]
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.layers[0].activation.name == "relu" and loaded.layers[2].rate == 0.3
    assert (
        not loaded.layers[0].trainable and loaded.trainable_spans == model.trainable_spans
    )
    assert loaded.input_shape == (3,) and loaded.output_shape == (2,)
    assert type(loaded.optimizer) is Adam and loaded.optimizer.learning_rate == 0.003
    assert loaded.loss.name == "sparse_categorical_crossentropy"
    assert [m.name for m in loaded.metrics] == ["accuracy"]
    original, restored = model.optimizer.get_state(), loaded.optimizer.get_state()
    assert restored["iterations"] == original["iterations"] == 6
    for name, slot in original["slots"].items():
        np.testing.assert_array_equal(restored["slots"][name], slot)
    assert _weights_equal(model, loaded)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_loaded_model_continues_training_exactly_like_the_original(
    rng, tmp_path, shuffle
):
    x, y = _data(rng)
    model = _model(6)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    for m in (model, loaded):  # dropout masks and shuffles continue from the saved state
        m.fit(x, y, epochs=2, initial_epoch=1, batch_size=8, shuffle=shuffle, verbose=0)
    assert _weights_equal(model, loaded)
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6


def test_a_dropout_layer_with_its_own_seed_continues_its_masks_after_loading(rng, tmp_path):
    x, y = _data(rng)
    loopkit.set_random_seed(0)
    model = Sequential([Dense(8, input_dim=3), Dropout(0.5, seed=3), Dense(2)])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    for m in (model, loaded):
        m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert _weights_equal(model, loaded)


def test_load_model_without_compile_gives_a_model_that_predicts(rng, tmp_path):
    x, _ = _data(rng)
    model = _model(7)
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz", compile=False)
    assert not loaded.compiled
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    uncompiled = _model(7, compiled=False)
    uncompiled.save(tmp_path / "plain.npz")
    assert not load_model(tmp_path / "plain.npz").compiled


@define(eq=False, slots=False)
class Doubling(Layer):
    """Multiplies its input by ``factor``: a layer loopkit does not define."""

    factor: float = 2.0

    def forward(self, x: Any, training: bool = False) -> Any:
        return np.multiply(x, self.factor, out=self.buffer("y", x.shape))

    def backward(self, dy: Any) -> Any:
        return np.multiply(dy, self.factor, out=self.buffer("dx", dy.shape))


def test_a_custom_layer_needs_custom_objects_to_load(tmp_path):
    model = Sequential([Dense(2, input_dim=3), Doubling(factor=3.0)])
    model.save(tmp_path / "custom.npz")
    with pytest.raises(
        CheckpointError,
        match=r"uses layer class 'Doubling', which loopkit does "
        r"not define\..*custom_objects=\{'Doubling'",
    ):
        load_model(tmp_path / "custom.npz")
    loaded = load_model(tmp_path / "custom.npz", custom_objects={"Doubling": Doubling})
    assert loaded.layers[1].factor == 3.0
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(loaded.predict_on_batch(x), model.predict_on_batch(x))


def test_saving_an_unbuilt_model_is_refused_before_writing(tmp_path):
    with pytest.raises(
        CheckpointError,
        match=r"save\(\): model 'sequential' has no weights yet; "
        r"build or fit it first",
    ):
        Sequential([Dense(2)]).save(tmp_path / "never.npz")
    assert not (tmp_path / "never.npz").exists()


def test_restoring_a_state_that_does_not_fit_leaves_the_model_untouched(rng, tmp_path):
    x, y = _data(rng)
    source = _model(8)
    source.fit(x, y, epochs=1, batch_size=8, verbose=0)
    arrays, meta = training_state(source)
    target = _model(9)
    target.compile(SGD(momentum=0.9), "sparse_categorical_crossentropy")  # other slots
    before = target.get_weights()
    with pytest.raises(
        CheckpointError,
        match=r"the state has slots .* but this 'SGD' uses "
        r"\['momentum'\]",
    ):
        restore_training_state(target, arrays, meta, "resume")
    for kept, now in zip(before, target.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)


# --- damaged and foreign files --------------------------------------------------------


def _damaged(tmp_path: Path, kind: str) -> Path:
    good = tmp_path / "good.npz"
    _model(0).save(good)
    data = good.read_bytes()
    path = tmp_path / f"{kind}.npz"
    if kind == "truncated_early":
        path.write_bytes(data[:40])
    elif kind == "truncated_late":
        path.write_bytes(data[: len(data) - 30])
    elif kind == "garbage":
        path.write_bytes(b"\x00not a checkpoint\xff" * 50)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "npy":
        np.save(path.with_suffix(".npy"), np.ones(3))
        path.with_suffix(".npy").rename(path)
    elif kind == "pickled":
        np.savez(path, weights=np.array([{"a": 1}], dtype=object))
    elif kind == "no_manifest":
        np.savez(path, weights=np.ones(3))
    elif kind == "bad_json":
        np.savez(path, __manifest__=np.frombuffer(b"{oops", np.uint8))
    elif kind == "json_list":
        np.savez(path, __manifest__=np.frombuffer(b"[1, 2]", np.uint8))
    elif kind == "incomplete":
        np.savez(path, __manifest__=np.frombuffer(b'{"format": "loopkit.model"}', np.uint8))
    return path


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("truncated_early", r"is not a readable loopkit .npz file .*truncated"),
        ("truncated_late", r"is not a readable loopkit .npz file .*truncated"),
        ("garbage", r"is not an .npz archive \(it may be truncated"),
        ("empty", r"is not an .npz archive"),
        ("npy", r"is not an .npz archive"),
        ("pickled", r"stores 'weights' with dtype object; loopkit files hold only bool"),
        ("no_manifest", r"has no loopkit manifest; expected a file written by"),
        ("bad_json", r"the manifest is not valid JSON .*Save it again"),
        ("json_list", r"the manifest is a list, not a JSON object"),
        ("incomplete", r"manifest is incomplete or malformed \(KeyError: 'model'\)"),
    ],
)
def test_a_damaged_or_foreign_file_gives_a_checkpoint_error(tmp_path, kind, match):
    path = _damaged(tmp_path, kind)
    with pytest.raises(CheckpointError, match=match):
        load_model(path)
    model = _model(1)
    before = model.get_weights()
    if kind != "incomplete":  # a model manifest with no weights is checked by load_weights
        with pytest.raises(CheckpointError, match=match):
            model.load_weights(path)
    for kept, now in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)


def test_load_model_and_load_weights_refuse_each_others_foreign_formats(tmp_path):
    _model(0).save_weights(tmp_path / "w.npz")
    with pytest.raises(
        CheckpointError,
        match=r"is a 'loopkit.weights' file, not a saved model. "
        r"Use model.load_weights\(\)",
    ):
        load_model(tmp_path / "w.npz")
    manifest = json.dumps({"format": "someone.else"}).encode()
    np.savez(tmp_path / "other.npz", __manifest__=np.frombuffer(manifest, np.uint8))
    with pytest.raises(
        CheckpointError, match=r"is a 'someone.else' file, not loopkit weights"
    ):
        _model(0).load_weights(tmp_path / "other.npz")


def test_a_missing_file_is_named_in_the_error(tmp_path):
    with pytest.raises(
        CheckpointError, match=r"no file at '.*nowhere.npz'. Check the path"
    ):
        load_model(tmp_path / "nowhere.npz")


# --- atomic writes --------------------------------------------------------------------


def test_an_atomic_write_that_raises_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old and complete")

    def writer(handle: Any) -> None:
        handle.write(b"new but hal")
        raise OSError("disk full")

    with pytest.raises(
        CheckpointError, match=r"writing '.*data.bin' failed: disk full .*is intact"
    ):
        write_atomically(path, writer)
    assert path.read_bytes() == b"old and complete"
    assert os.listdir(tmp_path) == ["data.bin"]


def test_an_atomic_write_replaces_the_file_whole_and_creates_parent_directories(tmp_path):
    path = tmp_path / "nested" / "dir" / "data.bin"
    with atomic_write(path) as handle:
        handle.write(b"first")
    with atomic_write(path) as handle:
        handle.write(b"second")
        assert path.read_bytes() == b"first"  # the old file stays until the new one is done
    assert path.read_bytes() == b"second"
    assert os.listdir(path.parent) == ["data.bin"]


def test_a_save_that_fails_midway_keeps_the_previous_model_file_loadable(
    tmp_path, monkeypatch
):
    path = tmp_path / "model.npz"
    first = _model(1)
    first.save(path)

    write_header = np.lib.format.write_array_header_1_0
    calls = []

    def header_then_fail(*args: Any) -> None:  # fails at the third array, mid-file
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("out of memory while saving")
        write_header(*args)

    monkeypatch.setattr(np.lib.format, "write_array_header_1_0", header_then_fail)
    with pytest.raises(MemoryError, match="out of memory"):
        _model(2).save(path)
    assert len(calls) == 3
    monkeypatch.undo()
    assert _weights_equal(load_model(path), first)
    assert os.listdir(tmp_path) == ["model.npz"]


def test_load_model_restores_a_learning_rate_changed_during_training(tmp_path) -> None:
    model = Sequential([Dense(2, input_dim=3)])
    model.compile(optimizer="adam", loss="mse")
    model.train_on_batch(np.ones((4, 3), np.float32), np.ones((4, 2), np.float32))
    model.optimizer.learning_rate = 0.0123
    model.optimizer.learning_rate_multiplier = 0.5
    model.save(str(tmp_path / "m.npz"))
    loaded = load_model(str(tmp_path / "m.npz"))
    assert loaded.optimizer.raw_learning_rate == pytest.approx(0.0123)
    assert loaded.optimizer.learning_rate_multiplier == 0.5
    assert loaded.optimizer.learning_rate == pytest.approx(0.00615)  # in force
    assert loaded.optimizer.current_learning_rate == pytest.approx(0.00615)


def test_write_arrays_writes_the_members_np_savez_writes(tmp_path: Path) -> None:
    import zipfile

    from loopkit.saving.weights import read_arrays, write_arrays

    arrays = {
        "kernel": np.arange(12, dtype=np.float32).reshape(3, 4),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 2), np.float32),
        "flags": np.array([True, False]),
        "steps": np.array([1, 2], np.int64),
    }
    write_arrays(tmp_path / "ours.npz", arrays, {"format": "test"})
    reference = tmp_path / "reference.npz"
    np.savez(reference, **arrays)
    with zipfile.ZipFile(tmp_path / "ours.npz") as ours, zipfile.ZipFile(reference) as ref:
        for name in arrays:
            assert ours.read(name + ".npy") == ref.read(name + ".npy")
    transposed = np.arange(6, dtype=np.float64).reshape(2, 3).T  # Fortran order
    write_arrays(tmp_path / "t.npz", {"t": transposed}, {})
    got, meta = read_arrays(tmp_path / "t.npz", "test")
    np.testing.assert_array_equal(got["t"], transposed)
    assert meta == {}


def test_load_weights_matches_a_second_model_of_the_same_function_by_structure(
    tmp_path,
) -> None:
    """Automatic layer names differ between two models built by one function
    (``dense`` then ``dense_2``); Keras 3 still loads, matching by structure."""
    import loopkit as lk

    def build() -> lk.Model:
        inputs = lk.Input((4,))
        return lk.Model(inputs, Dense(1)(Dense(8, activation="relu")(inputs)))

    first, second = build(), build()
    assert [w.name for w in first.weights] != [w.name for w in second.weights] or (
        first.layers[1].name != second.layers[1].name
    )
    path = str(tmp_path / "m.weights.h5")
    first.save_weights(path)
    second.load_weights(path)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_array_equal(second.predict(x, verbose=0), first.predict(x, verbose=0))

    def other() -> lk.Model:
        inputs = lk.Input((4,))
        return lk.Model(inputs, Dense(8)(Dense(1, activation="relu")(inputs)))

    before = other()
    weights = before.get_weights()
    with pytest.raises(CheckpointError):
        before.load_weights(path)  # same weight names, other shapes: refused
    for old, new in zip(weights, before.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
