"""Hostile and damaged files: each refused with a CheckpointError, in bounded memory."""

from __future__ import annotations

import json
import os
import struct
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loopkit as lk
from loopkit import CheckpointError, Sequential
from loopkit.layers import Dense
from loopkit.saving.weights import write_arrays

MiB = 1 << 20


def _model(seed: int = 0, built: bool = True) -> Sequential:
    lk.set_random_seed(seed)
    first = (
        Dense(8, activation="relu", input_dim=4) if built else Dense(8, activation="relu")
    )
    model = Sequential([first, Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _trained(seed: int = 0) -> Sequential:
    model = _model(seed)
    x = np.random.default_rng(seed).standard_normal((16, 4)).astype(np.float32)
    model.fit(x, np.arange(16) % 3, epochs=1, batch_size=8, verbose=0)
    return model


def _contents(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a loopkit file with NumPy alone (an independent reader)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return arrays, json.loads(arrays.pop("__manifest__").tobytes())


def _write_foreign(path: Path, arrays: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write a file as another program would: np.savez, any dtype, any manifest."""
    blob = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with path.open("wb") as handle:
        np.savez(handle, **arrays, __manifest__=blob)
    return path


def _peak_bytes(call: Callable[[], Any]) -> int:
    """Run ``call`` (which must raise CheckpointError); return its peak traced memory.

    NumPy reports its array allocations to tracemalloc, so the peak covers them.
    """
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError):
            call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- memory bombs -------------------------------------------------------------------------


def _deflate_bomb(path: Path, inflated: int) -> Path:
    """Write an .npz whose one member inflates to ``inflated`` bytes of float32 zeros.

    The stream is built from one 16 MiB block of zeros compressed with a full flush
    (which resets the compressor, so every block compresses to the same bytes),
    repeated: a 3 GiB member costs 3 MB and no time. Its CRC is left 0: a loader
    must refuse the member from its declared size, before inflating (and checking
    the CRC of) anything.
    """
    header = bytearray()
    count = (inflated - 128) // 4
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({count},), }}"
    text = text.ljust(128 - 10 - 1) + "\n"
    header += b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()
    block = 16 * MiB
    head = zlib.compressobj(1, zlib.DEFLATED, -15)
    first = head.compress(bytes(header)) + head.flush(zlib.Z_FULL_FLUSH)
    body = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = body.compress(bytes(block)) + body.flush(zlib.Z_FULL_FLUSH)
    blocks, rest = divmod(count * 4, block)
    tail = zlib.compressobj(1, zlib.DEFLATED, -15)
    last = tail.compress(bytes(rest)) + tail.flush(zlib.Z_FINISH)
    data = first + chunk * blocks + last
    manifest = b'{"format": "loopkit.model"}'
    npy = np.lib.format
    man = bytearray()
    buffer = _Buffer()
    npy.write_array(buffer, np.frombuffer(manifest, np.uint8))
    man += buffer.data
    entries = [
        ("__manifest__.npy", bytes(man), len(man), zlib.crc32(man), 0),
        ("weights/dense/kernel.npy", data, len(header) + count * 4, 0, 8),
    ]
    out, central, offset = bytearray(), bytearray(), 0
    for name, payload, size, crc, method in entries:
        raw = name.encode()
        local = struct.pack(
            "<4s5H3I2H",
            b"PK\x03\x04",
            20,
            0,
            method,
            0,
            0,
            crc,
            len(payload),
            size,
            len(raw),
            0,
        )
        central += (
            struct.pack(
                "<4s6H3I5H2I",
                b"PK\x01\x02",
                20,
                20,
                0,
                method,
                0,
                0,
                crc,
                len(payload),
                size,
                len(raw),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + raw
        )
        out += local + raw + payload
        offset += len(local) + len(raw) + len(payload)
    end = struct.pack(
        "<4s4H2IH",
        b"PK\x05\x06",
        0,
        0,
        len(entries),
        len(entries),
        len(central),
        offset,
        0,
    )
    path.write_bytes(bytes(out + central + end))
    return path


class _Buffer:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, b: bytes) -> None:
        self.data += b


def test_a_deflate_bomb_is_refused_from_its_headers_without_inflating(tmp_path) -> None:
    bomb = _deflate_bomb(tmp_path / "bomb.npz", 3 << 30)  # 3 GiB inflated
    assert bomb.stat().st_size < 4 * MiB
    with zipfile.ZipFile(bomb) as archive:  # an honest zip: the size is declared
        assert archive.getinfo("weights/dense/kernel.npy").file_size == 3 << 30
    match = r"bomb.npz.*would inflate to over 32212\d+ bytes .*refusing to inflate"
    for load in (
        lambda: lk.load_model(bomb),
        lambda: _model().load_weights(bomb),
        lambda: lk.load_checkpoint(_model(), bomb),
    ):
        with pytest.raises(CheckpointError, match=match):
            load()
        assert _peak_bytes(load) < 16 * MiB


def test_an_architecture_bomb_is_refused_before_building(tmp_path) -> None:
    arrays, meta = _contents(_trained_file(tmp_path))
    meta["model"]["input_shape"] = [16000]
    meta["model"]["layers"][0]["config"].update(units=16000, input_shape=[16000])
    bomb = _write_foreign(tmp_path / "huge.npz", arrays, meta)
    assert bomb.stat().st_size < 64 * 1024
    match = r"weight 'kernel' has shape \(16000, 16000\) in the model but \(4, 8\)"
    with pytest.raises(CheckpointError, match=match):
        lk.load_model(bomb)
    assert _peak_bytes(lambda: lk.load_model(bomb)) < 16 * MiB  # a build is 2 GB


def test_load_checkpoint_into_an_unbuilt_model_checks_the_stored_input_shape_first(
    tmp_path,
) -> None:
    path = tmp_path / "ck.npz"
    lk.save_checkpoint(_trained(), path)
    arrays, meta = _contents(path)
    for shape, match in (
        (
            [4_000_000],
            r"weight 'kernel' has shape \(4000000, 8\) in the model but \(4, 8\)",
        ),
        ([10**9], r"declares the input shape \(1000000000,\).*refuses more than 67108864"),
        (["x"], r"declares the input shape \['x'\]; expected a list of 1 to 8 positive"),
    ):
        meta["model"]["input_shape"] = shape
        crafted = _write_foreign(tmp_path / "crafted.npz", arrays, meta)
        unbuilt = _model(built=False)
        with pytest.raises(CheckpointError, match=match):
            lk.load_checkpoint(unbuilt, crafted)
        assert not unbuilt.built
        fresh = _model(built=False)
        assert _peak_bytes(lambda: lk.load_checkpoint(fresh, crafted)) < 16 * MiB  # noqa: B023


def _trained_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.npz"
    _trained().save(path)
    return path


# --- a failed load changes nothing -------------------------------------------------------


def _everything(model: Sequential) -> list[Any]:
    state = model.optimizer.get_state()
    return [
        model.flat_weights.copy(),
        state["iterations"],
        {k: v.copy() for k, v in state["slots"].items()},
        json.dumps(model.rng.bit_generator.state),
        model.state.state_dict(),
        model.shuffle_seed,
        [m.get_state() for m in model.metrics],
    ]


def _same(a: list[Any], b: list[Any]) -> bool:
    return (
        np.array_equal(a[0], b[0])
        and a[1] == b[1]
        and all(np.array_equal(a[2][k], b[2][k]) for k in a[2])
        and a[3:] == b[3:]
    )


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m["loop"].update(epoch="abc"), r"loop.epoch is 'abc'; expected an int"),
        (lambda m: m["loop"].update(global_step=-1), r"loop.global_step is -1"),
        (
            lambda m: m.update(rng={"bit_generator": "PCG64"}),
            r"random generator state is not",
        ),
        (lambda m: m["optimizer"].update(iterations=1.5), r"optimizer iterations is 1.5"),
        (lambda m: m.update(shuffle_seed=True), r"shuffle_seed is True"),
        # applied after the weights: the metrics' refusal rolls the whole load back
        (
            lambda m: m["metrics"].update(accuracy={"bogus": 1}),
            r"got keys \['bogus'\]; expected",
        ),
        (lambda m: m.update(plugins=[1]), r"the checkpoint's 'plugins' is not a dict"),
    ],
)
def test_a_failed_checkpoint_load_leaves_the_model_bitwise_unchanged(
    tmp_path, edit, match
) -> None:
    path = tmp_path / "ck.npz"
    lk.save_checkpoint(_trained(1), path)
    arrays, meta = _contents(path)
    edit(meta)
    crafted = _write_foreign(tmp_path / "crafted.npz", arrays, meta)
    model = _trained(2)
    before = _everything(model)
    with pytest.raises(CheckpointError, match=match):
        lk.load_checkpoint(model, crafted)
    assert _same(before, _everything(model))


def test_the_same_checkpoint_unedited_loads(tmp_path) -> None:
    path = tmp_path / "ck.npz"
    source = _trained(1)
    lk.save_checkpoint(source, path)
    model = _trained(2)
    lk.load_checkpoint(model, _write_foreign(tmp_path / "copy.npz", *_contents(path)))
    assert _same(_everything(source), _everything(model))


# --- every malformed family raises CheckpointError naming the file -----------------------


def _retyped(dtype: Any) -> Callable[[dict[str, Any]], None]:
    def edit(arrays: dict[str, Any]) -> None:
        kernel = arrays["weights/dense/kernel"]
        arrays["weights/dense/kernel"] = np.zeros(kernel.shape, dtype)

    return edit


def _nan(arrays: dict[str, Any]) -> None:
    arrays["weights/dense_1/bias"] = arrays["weights/dense_1/bias"].copy()
    arrays["weights/dense_1/bias"][1] = np.nan


FAMILIES = [
    ("int", _retyped(np.int32), r"weight 'kernel' as int32; weights are floating point"),
    ("bool", _retyped(np.bool_), r"weight 'kernel' as bool; weights are floating point"),
    ("complex", _retyped(np.complex64), r"with dtype complex64; loopkit files hold only"),
    ("datetime", _retyped("datetime64[s]"), r"with dtype datetime64\[s\]; loopkit files"),
    ("nan", _nan, r"'weights/dense_1/bias' with NaN or inf \(first at index \(1,\)\)"),
]


@pytest.mark.parametrize(("kind", "edit", "match"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_weights_of_the_wrong_dtype_or_nan_are_refused_by_every_loader(
    tmp_path, kind, edit, match
) -> None:
    model_arrays, model_meta = _contents(_trained_file(tmp_path))
    edit(model_arrays)
    bad_model = _write_foreign(tmp_path / f"{kind}.npz", model_arrays, model_meta)
    ck = tmp_path / "ck.npz"
    lk.save_checkpoint(_trained(), ck)
    ck_arrays, ck_meta = _contents(ck)
    edit(ck_arrays)
    bad_ck = _write_foreign(tmp_path / f"{kind}.ck.npz", ck_arrays, ck_meta)
    target = _trained(3)
    before = _everything(target)
    for load, name in (
        (lambda: lk.load_model(bad_model), f"{kind}.npz"),
        (lambda: target.load_weights(bad_model), f"{kind}.npz"),
        (lambda: lk.load_checkpoint(target, bad_ck), f"{kind}.ck.npz"),
    ):
        with pytest.raises(CheckpointError, match=rf"{name}'\): .*{match}"):
            load()
    assert _same(before, _everything(target))


def test_duplicated_archive_members_are_refused(tmp_path) -> None:
    good = _trained_file(tmp_path)
    dup = tmp_path / "dup.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(dup, "w") as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # zipfile warns: it is the point
            out.writestr("weights/dense/kernel.npy", src.read("weights/dense/kernel.npy"))
    with pytest.raises(
        CheckpointError,
        match=r"dup.npz'\): the file holds the member\(s\) \['weights/dense/kernel.npy'\] "
        r"more than once",
    ):
        lk.load_model(dup)


def test_a_deeply_nested_manifest_is_refused_not_recursed_into(tmp_path) -> None:
    path = tmp_path / "deep.npz"
    blob = np.frombuffer(("[" * 100_000 + "]" * 100_000).encode(), np.uint8)
    np.savez(path, __manifest__=blob)
    with pytest.raises(CheckpointError, match=r"deep.npz'\): the manifest nests deeper"):
        lk.load_model(path)


def test_a_manifest_naming_an_array_the_file_lacks_is_refused(tmp_path) -> None:
    path = tmp_path / "ck.npz"
    lk.save_checkpoint(_trained(), path)
    arrays, meta = _contents(path)
    meta["extra"] = {"x": {"__ndarray__": "nowhere#0"}}
    crafted = _write_foreign(tmp_path / "ref.npz", arrays, meta)
    with pytest.raises(CheckpointError, match=r"refers to an array 'nowhere#0' that the"):
        lk.load_checkpoint(_trained(), crafted)


def test_an_unsupported_compression_is_refused(tmp_path) -> None:
    path = tmp_path / "bz.npz"
    with (
        zipfile.ZipFile(_trained_file(tmp_path)) as src,
        zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as out,
    ):
        for info in src.infolist():
            out.writestr(info.filename, src.read(info))
    with pytest.raises(CheckpointError, match=r"with zip method 12; only stored and"):
        lk.load_model(path)


def test_loaders_refuse_a_fifo_and_a_directory_without_blocking(tmp_path) -> None:
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)  # opening it for reading the usual way would wait for a writer
    with pytest.raises(CheckpointError, match=r"pipe.npz' is not a regular file \(a FIFO"):
        lk.load_model(fifo)
    with pytest.raises(CheckpointError, match=r"pipe.npz' is not a regular file"):
        lk.load_checkpoint(_model(), fifo)
    with pytest.raises(CheckpointError, match=r"dir.npz' is a directory; loopkit reads"):
        (tmp_path / "dir.npz").mkdir()
        _model().load_weights(tmp_path / "dir.npz")


# --- leftovers and permissions ------------------------------------------------------------


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def test_the_next_write_sweeps_temporaries_left_by_dead_writers_only(tmp_path) -> None:
    stale = tmp_path / f".model.npz.loopkit-{_dead_pid()}-abc123.tmp"
    ours = tmp_path / f".model.npz.loopkit-{os.getpid()}-inflight.tmp"
    foreign = tmp_path / ".model.npz.x7.tmp"  # not our naming: never touched
    for path in (stale, ours, foreign):
        path.write_bytes(b"partial")
    _trained().save(tmp_path / "model.npz")
    assert sorted(os.listdir(tmp_path)) == sorted(["model.npz", ours.name, foreign.name])


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_honour_the_umask(tmp_path, umask) -> None:
    previous = os.umask(umask)
    try:
        _trained().save(tmp_path / "m.npz")
        lk.save_checkpoint(_trained(), tmp_path / "ck.npz")
    finally:
        os.umask(previous)
    for name in ("m.npz", "ck.npz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_write_arrays_refuses_an_object_that_would_need_pickle(tmp_path) -> None:
    with pytest.raises(
        CheckpointError, match=r"state at ./state. holds a set, which cannot"
    ):
        write_arrays(tmp_path / "x.npz", {}, {"state": {1, 2}})
    assert not (tmp_path / "x.npz").exists()


def test_a_plugin_state_that_needs_pickle_is_named_by_its_path(tmp_path) -> None:
    class Holds:
        name = "holds"

        def state_dict(self) -> dict[str, Any]:
            return {"ok": [1, 2], "bad": [0, object()]}

        def load_state_dict(self, state: dict[str, Any]) -> None: ...

        @lk.hookimpl
        def on_epoch_end(self, model: Sequential) -> None:
            lk.save_checkpoint(model, tmp_path / "ck.npz")

    model = _model()
    x = np.ones((4, 4), np.float32)
    with pytest.raises(
        CheckpointError, match=r"state at '/plugins/holds/bad\[1\]' holds a object"
    ):
        model.fit(x, np.zeros(4), epochs=1, verbose=0, plugins=[Holds()])
    assert not (tmp_path / "ck.npz").exists()
