"""CSVLogger: stream every epoch's logs to a CSV file, flushed each epoch."""

from __future__ import annotations

import csv
import hashlib
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import attrs
import numpy as np
from attrs import define, field

from loopkit import ConfigError, LoopkitWarning, LoopState, Plugin, hookimpl
from loopkit.distributed import is_primary
from loopkit.saving import check_destination
from loopkit.validators import boolean

__all__ = ["CSVLogger"]


def _separator(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(
            f"CSVLogger got separator={value!r} of type {type(value).__name__}; expected "
            "a one-character string such as ',' or '\\t'."
        )
    if len(value) != 1 or value in '\r\n"':
        raise ConfigError(
            f"CSVLogger got separator={value!r}; expected one character other than a "
            "quote or line break, such as ',' ';' or '\\t' (CSV delimiters are single "
            "characters)."
        )


def _digest(path: Path, length: int) -> str:
    """Return the SHA-256 of the first ``length`` bytes of ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while length > 0:
            chunk = handle.read(min(length, 1 << 16))
            if not chunk:
                break
            digest.update(chunk)
            length -= len(chunk)
    return digest.hexdigest()


def _cell(value: Any) -> Any:
    """Format one log value as Keras does: strings as is, 1-D iterables as ``[a, b]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable) and not (
        isinstance(value, np.ndarray) and value.ndim == 0
    ):
        return f"[{', '.join(map(str, value))}]"
    return value


@define(eq=False, slots=False)
class CSVLogger(Plugin):
    """Write one CSV row per epoch: ``epoch`` (zero-based) then every log key, sorted.

    The header is written at the first epoch: ``epoch``, then the sorted union of
    that epoch's keys and every key the run will log (so ``val_`` columns exist
    even when the first epoch has no validation, as Keras ensures). A key missing
    from a later epoch's logs is written as ``NA``, as in Keras; a key that first
    appears after the header is not written, with one warning. Rows end in a line
    feed (Keras's writer ends them in CR LF).

    Each row is flushed when written, and the file is closed when ``fit`` ends,
    normally or through an error (``on_exception``), so nothing logged is lost.
    Parent directories are created.

    With ``append=True`` an existing file is continued: no second header, and its
    columns are kept (Keras writes the new run's columns under the old header,
    misaligning them when they differ). With ``append=False`` it is overwritten.

    Resume: the state saved in checkpoints is the file's length after the last row,
    a SHA-256 digest of those bytes, and its columns. A resumed ``fit`` truncates the
    file to that length (dropping rows written after the checkpoint, which the
    resumed run writes again) and continues it, whatever ``append`` is, so after an
    interruption every epoch is in the file exactly once. The file is cut only if
    its first bytes still match the digest: a backup from another run, or a crafted
    one, cannot truncate a log it did not write (the new rows are appended, with a
    warning).

    ``plugins=["csv_logger"]`` writes ``training.log`` in the working directory.

    Args:
        filename: Path of the CSV file (str or path-like).
        separator: The one-character delimiter.
        append: Continue an existing file instead of overwriting it.
        order: Position among plugins (default 200, with the other loggers).
    """

    default_name = "csv_logger"
    default_order = 200

    filename: str = field(default="training.log", converter=os.fspath)
    separator: str = field(default=",", validator=_separator)
    append: bool = field(default=False, validator=boolean)
    keys: list[str] | None = field(init=False, default=None)
    """The log keys of the columns after ``epoch``, once the header is known."""
    _file: IO[str] | None = field(init=False, default=None, repr=False)
    _writer: Any = field(init=False, default=None, repr=False)
    _offset: int = field(init=False, default=0, repr=False)
    _resume: tuple[int, list[str] | None, str | None] | None = field(
        init=False, default=None, repr=False
    )
    _warned: bool = field(init=False, default=False, repr=False)

    @hookimpl
    def on_train_begin(self) -> None:
        self._warned = False
        if not is_primary():  # under DataParallel rank 0 alone writes: no file here
            self._close()
            return
        check_destination(self.filename, f"CSVLogger(filename={self.filename!r})")
        if self._resume is not None:
            self._continue(*self._resume)
            return
        self._close()
        path = Path(self.filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.keys = self._existing_columns() if self.append else None
        self._open("a" if self.append else "w")

    def _existing_columns(self) -> list[str] | None:
        """Return the columns of the file's header, to keep its rows aligned."""
        path = Path(self.filename)
        if not path.is_file():
            return None
        with path.open(newline="", encoding="utf-8") as existing:
            header = next(csv.reader(existing, delimiter=self.separator), None)
        return header[1:] if header and header[0] == "epoch" else None

    def _open(self, mode: str) -> None:
        # Kept open across epochs (closed in on_train_end/on_exception), not a `with`.
        self._file = Path(self.filename).open(mode, newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.writer(self._file, delimiter=self.separator, lineterminator="\n")
        self._offset = os.fstat(self._file.fileno()).st_size

    def _continue(self, offset: int, keys: list[str] | None, digest: str | None) -> None:
        """Resume: cut the file back to ``offset`` bytes and append from there."""
        self._close()
        self._resume = None
        path = Path(self.filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file() and path.stat().st_size >= offset:
            if digest is None or _digest(path, offset) != digest:
                warnings.warn(
                    f"CSVLogger: resuming, but the first {offset} bytes of "
                    f"{self.filename!r} are not those the checkpoint describes (another "
                    "run's file, or an edited one); appending instead of truncating.",
                    LoopkitWarning,
                    stacklevel=3,
                )
                self.keys = self._existing_columns()
                self._open("a")
                return
            os.truncate(path, offset)
            self.keys = keys if offset > 0 else None
            self._open("a")
            return
        warnings.warn(
            f"CSVLogger: resuming, but {self.filename!r} is missing or shorter than "
            f"when the checkpoint was written ({offset} bytes); starting a new file.",
            LoopkitWarning,
            stacklevel=3,
        )
        self.keys = None
        self._open("w")

    @hookimpl
    def on_epoch_end(self, state: LoopState, epoch: int, logs: Mapping[str, Any]) -> None:
        if self._file is None or self._file.closed:
            return  # not in a fit (a direct call after on_train_end)
        if self.keys is None:
            self.keys = sorted((set(logs) | set(state.log_keys)) - {"epoch"})
            self._writer.writerow(["epoch", *self.keys])
        late = sorted(set(logs) - set(self.keys) - {"epoch"})
        if late and not self._warned:
            self._warned = True
            warnings.warn(
                f"CSVLogger: the logs of epoch {epoch} have key(s) {late} that are not "
                f"columns of {self.filename!r} (its columns: {self.keys}); they are not "
                "written. Warned once per fit.",
                LoopkitWarning,
                stacklevel=2,
            )
        self._writer.writerow(
            [epoch, *(_cell(logs[k]) if k in logs else "NA" for k in self.keys)]
        )
        self._file.flush()
        self._offset = os.fstat(self._file.fileno()).st_size

    @hookimpl
    def on_exception(self) -> None:
        self._close()

    @hookimpl
    def on_train_end(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._file = self._writer = None

    def state_dict(self) -> dict[str, Any]:
        """Return the file's length after the last row, its digest and its columns."""
        path = Path(self.filename)
        return {
            "offset": self._offset,
            "sha256": _digest(path, self._offset) if path.is_file() else None,
            "keys": None if self.keys is None else list(self.keys),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned; ``fit`` continues the file from there.

        Raises:
            ConfigError: the state is malformed (a damaged or crafted checkpoint).
        """
        offset, keys, digest = state.get("offset"), state.get("keys"), state.get("sha256")
        if (
            isinstance(offset, bool)
            or not isinstance(offset, int)
            or offset < 0
            or not (keys is None or isinstance(keys, list))
            or not (digest is None or isinstance(digest, str))
        ):
            raise ConfigError(
                f"CSVLogger(filename={self.filename!r}).load_state_dict() got "
                f"{dict(state)!r:.200}; expected offset (an int >= 0), keys (a list or "
                "None) and sha256 (a str or None), as state_dict() returns."
            )
        self._resume = (
            offset,
            None if keys is None else [str(k) for k in keys],
            digest,
        )
        if self._file is not None and not self._file.closed:  # restored mid-fit
            self._continue(*self._resume)
