"""The ``.npz`` container of every loopkit file, read with every size checked before use.

A file is a zip archive of ``.npy`` members plus a JSON manifest member. Reading
never trusts the file: it must be a regular file (a FIFO would block the reader),
members are listed from the zip directory and their ``.npy`` headers read before
any data, so a member's shape, dtype and size are known, checked against the
archive's real size (stored members) or a bound (compressed ones: a 3 MB member
can inflate to 3 GiB), and against what the caller expects, before a byte of
array data is allocated.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterable, Mapping
from typing import IO, Any

import numpy as np
from attrs import frozen

from loopkit.errors import CheckpointError
from loopkit.saving import _codec
from loopkit.saving.atomic import write_atomically

__all__ = [
    "MAX_INFLATED_BYTES",
    "MAX_MANIFEST_BYTES",
    "Archive",
    "Member",
    "write_archive",
]

MANIFEST = "__manifest__"
MAX_MANIFEST_BYTES = 64 << 20
"""Largest manifest read: loopkit's are kilobytes."""
MAX_INFLATED_BYTES = 256 << 20
"""Largest total of compressed members' inflated sizes (loopkit writes none)."""
_NUMERIC_KINDS = frozenset("biuf")


@frozen
class Member:
    """One ``.npy`` member as its headers declare it, before its data is read.

    Args:
        name: Member name without ``.npy``.
        shape: The array's shape.
        dtype: The array's dtype.
        nbytes: Bytes of array data.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    nbytes: int


def write_archive(
    path: str | os.PathLike[str], arrays: Mapping[str, Any], manifest: Mapping[str, Any]
) -> None:
    """Atomically write ``arrays`` and the JSON ``manifest`` (``_codec.encode``-d).

    The archive is what ``np.savez`` writes (stored ``.npy`` members, version 1.0
    headers), but each array's bytes go to the file straight from its memory, with
    no ``tobytes`` copy and no in-memory zip: a checkpoint written in a background
    thread then copies less while training runs.
    """
    blob = np.frombuffer(_codec.dumps(manifest), np.uint8)
    contents = {**arrays, MANIFEST: blob}
    write_atomically(path, lambda handle: _write_npz(handle, contents))


def _write_npz(handle: IO[bytes], arrays: Mapping[str, Any]) -> None:
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            array = np.asarray(value)
            if not array.flags.c_contiguous:
                array = array.copy(order="C")
            if array.dtype.hasobject:
                raise CheckpointError(f"write_arrays: {name!r} holds Python objects.")
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                header = np.lib.format.header_data_from_array_1_0(array)
                np.lib.format.write_array_header_1_0(member, header)
                member.write(array.reshape(-1).view(np.uint8).data)


class Archive:
    """An open loopkit archive: its manifest and member headers; data read on demand.

    Use as a context manager. ``members`` and ``manifest`` are read on opening;
    ``read(name)`` reads one member's data, refusing one that differs from its header.

    Args:
        path: The file.
        what: The user's call, e.g. ``"load_model('m.npz')"``, opening every message.

    Raises:
        CheckpointError: not a regular file, not a zip archive, duplicated or oversized
            members, members that are not plain numeric ``.npy`` arrays, a missing or
            malformed manifest.
    """

    def __init__(self, path: str | os.PathLike[str], what: str) -> None:
        self.path = os.fspath(path)
        self.what = what
        self._handle = _open_regular(self.path, what)
        try:
            self._zip = self._open_zip()
            self.members = self._list_members()
            self.manifest = self._read_manifest()
        except BaseException:
            self._handle.close()
            raise

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._zip.close()
        self._handle.close()

    def fail(self, problem: str) -> CheckpointError:
        """Return a CheckpointError naming the call (and so the file) and ``problem``."""
        return CheckpointError(f"{self.what}: the file {problem}")

    def _open_zip(self) -> zipfile.ZipFile:
        if self._handle.read(4) != b"PK\x03\x04":  # every .npz is a zip archive
            raise self.fail(
                "is not an .npz archive (it may be truncated, or written by another "
                "program). Pass a file written by model.save_weights(), model.save() or "
                "save_checkpoint()."
            )
        self._handle.seek(0)
        try:
            return zipfile.ZipFile(self._handle)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
            raise self.fail(
                f"is not a readable loopkit .npz file ({err}). It may be truncated or "
                "written by another program."
            ) from err

    def _list_members(self) -> dict[str, Member]:
        size = os.fstat(self._handle.fileno()).st_size
        infos = self._zip.infolist()
        names = [info.filename for info in infos]
        duplicated = (
            sorted({n for n in names if names.count(n) > 1})
            if len(set(names)) != len(names)
            else []
        )
        if duplicated:
            raise self.fail(
                f"holds the member(s) {duplicated} more than once; a reader would take "
                "one copy silently. loopkit never writes such archives: it was crafted "
                "or damaged."
            )
        inflated = 0
        members: dict[str, Member] = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise self.fail(f"holds {info.filename!r}, which is not an .npy member.")
            if info.compress_type == zipfile.ZIP_STORED:
                if info.file_size != info.compress_size or info.compress_size > size:
                    raise self.fail(
                        f"declares member {info.filename!r} as {info.file_size} bytes "
                        f"in a {size}-byte file; the archive is damaged."
                    )
            elif info.compress_type == zipfile.ZIP_DEFLATED:
                inflated += info.file_size
            else:
                raise self.fail(
                    f"compresses member {info.filename!r} with zip method "
                    f"{info.compress_type}; only stored and deflated members are read."
                )
            if inflated > MAX_INFLATED_BYTES:
                raise self.fail(
                    f"has compressed members that would inflate to over {inflated} bytes "
                    f"(the bound is {MAX_INFLATED_BYTES}); refusing to inflate them. "
                    "loopkit writes uncompressed archives: save the model again."
                )
            members[info.filename[:-4]] = self._header(info)
        return members

    def _header(self, info: zipfile.ZipInfo) -> Member:
        name = info.filename[:-4]
        try:
            with self._zip.open(info) as fp:
                version = np.lib.format.read_magic(fp)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
                else:
                    raise ValueError(f".npy format version {version} is not read")
                header_bytes = fp.tell()
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, SyntaxError) as err:
            raise self.fail(
                f"has a member {name!r} that is not a readable .npy array ({err})."
            ) from err
        if dtype.hasobject or dtype.kind not in _NUMERIC_KINDS or dtype.names is not None:
            raise self.fail(
                f"stores {name!r} with dtype {dtype}; loopkit files hold only bool, int "
                "and float arrays (never objects, which would need pickle)."
            )
        count = 1
        for d in shape:
            count *= int(d)
        nbytes = count * dtype.itemsize
        if header_bytes + nbytes != info.file_size:
            raise self.fail(
                f"declares {name!r} as shape {tuple(shape)} {dtype} ({nbytes} bytes) in a "
                f"{info.file_size}-byte member; the file is damaged or crafted."
            )
        return Member(name, tuple(int(d) for d in shape), dtype, nbytes)

    def _read_manifest(self) -> dict[str, Any]:
        member = self.members.get(MANIFEST)
        if member is None:
            raise self.fail(
                "has no loopkit manifest; expected a file written by "
                "model.save_weights(), model.save() or save_checkpoint()."
            )
        if (
            member.dtype != np.uint8
            or len(member.shape) != 1
            or member.nbytes > MAX_MANIFEST_BYTES
        ):
            raise self.fail(
                f"has a manifest of shape {member.shape} {member.dtype}; expected a 1-D "
                f"uint8 array of at most {MAX_MANIFEST_BYTES} bytes."
            )
        blob = self._read(member).tobytes()
        del self.members[MANIFEST]
        return _codec.loads(blob, f"{self.what}: the manifest")

    def read(self, name: str) -> Any:
        """Return member ``name``'s array (read now, its size known from its header)."""
        member = self.members.get(name)
        if member is None:
            raise self.fail(f"has no array {name!r}; the file is damaged. Save it again.")
        return self._read(member)

    def _read(self, member: Member) -> Any:
        try:
            with self._zip.open(member.name + ".npy") as fp:
                return np.lib.format.read_array(fp, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise self.fail(
                f"has a member {member.name!r} that cannot be read ({err}); the file is "
                "truncated or damaged."
            ) from err

    def read_all(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        """Return the named members' arrays (every member when None)."""
        return {n: self.read(n) for n in (self.members if names is None else names)}

    def decode(self, value: Any) -> Any:
        """Decode manifest data, reading the arrays it refers to."""
        refs = _codec.array_refs(value)
        return _codec.decode(value, self.read_all(refs), self.what)


def _open_regular(path: str, what: str) -> IO[bytes]:
    """Open ``path`` for reading; refuse what is missing or not a regular file."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before we can refuse it.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as err:
        raise CheckpointError(
            f"{what}: no file at {path!r}. Check the path; files are written by "
            "model.save_weights() / model.save() / save_checkpoint()."
        ) from err
    except OSError as err:
        raise CheckpointError(f"{what}: cannot open {path!r} ({err.strerror}).") from err
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = (
            "a directory"
            if stat.S_ISDIR(mode)
            else "not a regular file (a FIFO, socket or device)"
        )
        raise CheckpointError(
            f"{what}: {path!r} is {kind}; loopkit reads only regular files written by "
            "model.save_weights(), model.save() or save_checkpoint()."
        )
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")
