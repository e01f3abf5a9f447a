"""Atomic file writes: a crash mid-write never leaves a half-written file behind.

Temporary files are named ``.<name>.loopkit-<pid>-<random>.tmp`` beside their target.
A process killed mid-write leaves one behind; the next write into that directory
removes those whose process is gone. Finished files get the permissions the
umask allows (as ``open`` would give), not ``mkstemp``'s private 0600.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from loopkit.errors import CheckpointError, ConfigError

__all__ = [
    "atomic_write",
    "check_destination",
    "sweep_stale_temporaries",
    "write_atomically",
]

_TEMP = re.compile(r"^\..+\.loopkit-(\d+)-[A-Za-z0-9_]+\.tmp$")
_umask_lock = threading.Lock()
_umask: int | None = None


def _current_umask() -> int:
    """Return the process umask.

    Linux shows it in ``/proc/self/status``, read at each write. Elsewhere it is read
    once by setting and restoring it (which races with threads creating files).
    """
    global _umask
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            line = next(ln for ln in status if ln.startswith("Umask:"))
        return int(line.split()[1], 8)
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    with _umask_lock:
        if _umask is None:
            _umask = os.umask(0o022)
            os.umask(_umask)
        return _umask


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # Windows: os.kill(pid, 0) is Ctrl-C
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def sweep_stale_temporaries(directory: str | os.PathLike[str]) -> list[str]:
    """Remove temporary files of loopkit's naming whose writing process is gone.

    Returns:
        The names removed.
    """
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = _TEMP.match(name)
        if match is None or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, name))
            removed.append(name)
    return removed


def check_destination(
    path: str | os.PathLike[str], owner: str, *, directory: bool = False
) -> None:
    """Raise ConfigError now if ``path`` could never be written (for ``on_train_begin``).

    A file (or, with ``directory=True``, a directory) at ``path`` needs every existing
    ancestor to be a directory, and ``path`` itself, if it exists, to be of that
    kind. Parts after a ``{`` (a format field filled per save) are not checked.

    Args:
        path: The destination.
        owner: Who writes there, e.g. ``"ModelCheckpoint(filepath='ck/m.npz')"``.
        directory: Whether ``path`` is a directory rather than a file.
    """
    text = os.fspath(path)
    fixed = text.split("{", 1)[0]
    templated = fixed != text
    target = Path(fixed) if not templated else Path(fixed).parent
    if not templated and target.exists() and target.is_dir() != directory:
        kind = "a directory" if target.is_dir() else "a file"
        want = "a directory" if directory else "a file"
        raise ConfigError(
            f"{owner}: {text!r} is {kind}, but it must be {want} to be written there. "
            "Remove it or choose another path."
        )
    for ancestor in [target, *target.parents] if templated else target.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise ConfigError(
                    f"{owner}: cannot write {text!r}: {str(ancestor)!r} is a file, not a "
                    "directory. Remove it or choose another path."
                )
            return


def _write_failed(target: Path, err: OSError) -> CheckpointError:
    reason = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EFBIG: "the file would exceed the size limit",
    }.get(err.errno or 0, err.strerror or str(err))
    return CheckpointError(
        f"writing {str(target)!r} failed: {reason} ({type(err).__name__} errno "
        f"{err.errno}). The previous file there, if any, is intact. Free space or "
        "choose another directory."
    )


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``path``; on success, move it over ``path``.

    The data is flushed and fsynced before ``os.replace``, and the directory is
    fsynced after, so ``path`` holds either the old complete file or the new one.
    On an exception the temporary file is removed and ``path`` is untouched.

    Raises:
        CheckpointError: the write failed for lack of space or a size limit (or any
            other OSError), naming the path; the previous file is intact.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temporaries(target.parent)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.loopkit-{os.getpid()}-", suffix=".tmp", dir=target.parent
    )
    try:
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
                if hasattr(os, "fchmod"):
                    os.fchmod(handle.fileno(), 0o666 & ~_current_umask())
            os.replace(tmp, target)
        except OSError as err:
            raise _write_failed(target, err) from err
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(target.parent)


def write_atomically(
    path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]
) -> None:
    """Call ``write(handle)`` inside ``atomic_write(path)``."""
    with atomic_write(path) as handle:
        write(handle)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
