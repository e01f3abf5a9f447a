"""ModelCheckpoint and BackupAndRestore: atomic saves, and exact resume after a crash."""

from __future__ import annotations

import os
import string
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from attrs import define, field
from attrs.validators import optional

from loopkit import (
    BackgroundWriter,
    CheckpointError,
    ConfigError,
    LoopkitWarning,
    LoopState,
    Monitor,
    Plugin,
    Sequential,
    hookimpl,
    load_checkpoint,
    save_checkpoint,
    snapshot_model,
)
from loopkit.distributed import is_primary
from loopkit.monitor import monitor_key
from loopkit.saving import atomic_write, check_destination
from loopkit.validators import (
    boolean,
    finite,
    non_negative_int,
    one_of,
    positive_int_or,
)

__all__ = ["BackupAndRestore", "ModelCheckpoint"]

WEIGHTS_SUFFIXES = (".weights.npz", ".weights.h5")
"""File names ModelCheckpoint takes for weights only: loopkit's, and Keras 3's."""
MODEL_SUFFIXES = (".npz", ".keras")
"""File names it takes for a whole model: loopkit's, and Keras 3's."""


def _add_batch_hook(plugin: Any, method: Any, trylast: bool = False) -> None:
    """Give ``plugin`` an ``on_train_batch_end`` implementation calling ``method``.

    Set per instance, so a plugin saving per epoch has no batch hook at all and the
    loop skips the batch hook's dispatch (and its logs) on every batch.
    """

    def on_train_batch_end(
        model: Sequential, state: LoopState, batch: int, logs: Mapping[str, float]
    ) -> None:
        method(model, state, batch, logs)

    plugin.on_train_batch_end = hookimpl(trylast=trylast)(on_train_batch_end)


@define(eq=False)
class _BatchCounter:
    """Keras's ``save_freq`` count: batches seen by this fit since the last save.

    Counted from the batch indexes the hook sees (so ``steps_per_execution``, which
    calls it every N batches, counts N), restarted by each ``fit``: earlier fits
    of the model do not shift when a new one saves.
    """

    seen: int = 0
    last: int = -1

    def restart(self) -> None:
        self.seen, self.last = 0, -1

    def due(self, batch: int, every: int) -> bool:
        """Count the batches up to ``batch``; True (and restart) every ``every`` batches."""
        self.seen += batch + 1 if batch <= self.last else batch - self.last
        self.last = batch
        if self.seen < every:
            return False
        self.seen = 0
        return True


def _format_fields(filepath: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(filepath) if name}


@define(eq=False, slots=False)
class ModelCheckpoint(Plugin):
    """Save the model (or its weights) every epoch, every N batches, or on improvement.

    ``filepath`` may hold Keras format fields, filled with the 1-based ``epoch``, the
    1-based ``batch`` (batch saves) and every log key:
    ``"ckpt/epoch{epoch:02d}-{val_loss:.3f}.weights.npz"``. A field naming a key this
    run cannot log fails at the start of ``fit``.

    Every write is atomic (temporary file, flush, fsync, rename): a crash mid-save
    leaves the previous checkpoint intact. Unlike Keras, a model whose weights hold
    NaN or inf is never saved (a warning says so), so a diverged run cannot overwrite
    a good checkpoint.

    Args:
        filepath: Where to save: ``*.weights.npz`` with ``save_weights_only=True``
            (load with ``model.load_weights``), else ``*.npz`` (``loopkit.load_model``).
            Keras's names ``*.weights.h5`` and ``*.keras`` are accepted too; the file
            is loopkit's ``.npz`` format whatever its name, as with ``model.save``.
            Keras has no default; ours, ``checkpoints/model.npz``, lets the entry point
            ``plugins=["model_checkpoint"]`` work.
        monitor: Log key compared by ``save_best_only``.
        verbose: 1 prints a line per save.
        save_best_only: Save only when ``monitor`` improves on the best so far.
        save_weights_only: Save weights only, not architecture and optimizer.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (from the monitor's name).
        save_freq: ``"epoch"``, or an int: save every that many training batches.
        initial_value_threshold: The value ``monitor`` must beat for the first save.
        background: Write in a background thread (not in Keras): the save costs the
            training loop only a copy of the arrays. Writes land in order; ``fit``
            waits for the last one before it returns or re-raises, so every file
            exists when ``fit`` is over. False writes before the hook returns.
    """

    default_name = "model_checkpoint"
    default_order = 150  # after monitors (EMA swap, early stop)

    filepath: str = field(default="checkpoints/model.npz", converter=os.fspath)
    monitor: str = field(default="val_loss", validator=monitor_key)
    verbose: int = field(default=0, validator=non_negative_int)
    save_best_only: bool = field(default=False, validator=boolean)
    save_weights_only: bool = field(default=False, validator=boolean)
    mode: str = field(default="auto", validator=one_of("auto", "min", "max"))
    save_freq: int | str = field(default="epoch", validator=positive_int_or("epoch"))
    initial_value_threshold: float | None = field(default=None, validator=optional(finite))
    background: bool = field(default=True, validator=boolean)
    _tracker: Monitor = field(init=False, repr=False)
    _warned: bool = field(default=False, init=False, repr=False)
    _writer: BackgroundWriter = field(factory=BackgroundWriter, init=False, repr=False)
    last_saved: str | None = field(default=None, init=False)
    """Path of the last file written."""
    _writing: str | None = field(default=None, init=False, repr=False)
    _batches: _BatchCounter = field(factory=_BatchCounter, init=False, repr=False)

    @property
    def _label(self) -> str:
        return f"ModelCheckpoint(filepath={self.filepath!r})"

    @hookimpl
    def on_train_begin(self) -> None:
        check_destination(self.filepath, self._label)
        self._batches.restart()

    def _finish(self) -> None:
        """Wait for the write in flight; a failure names this plugin and its path."""
        try:
            self._writer.wait()
        except (CheckpointError, OSError) as err:
            raise CheckpointError(
                f"{self._label}: saving {self._writing!r} failed: {err}"
            ) from err

    def __attrs_post_init__(self) -> None:
        weights_file = self.filepath.endswith(WEIGHTS_SUFFIXES)
        if weights_file != self.save_weights_only or not self.filepath.endswith(
            WEIGHTS_SUFFIXES + MODEL_SUFFIXES
        ):
            wanted = (
                "name.weights.npz (or Keras's name.weights.h5)"
                if self.save_weights_only
                else "name.npz (or Keras's name.keras)"
            )
            raise ConfigError(
                f"ModelCheckpoint(filepath={self.filepath!r}, save_weights_only="
                f"{self.save_weights_only}): the file name must say what it holds, "
                f"{'weights only' if self.save_weights_only else 'the whole model'}; "
                f"use e.g. {wanted}."
            )
        self._tracker = Monitor(
            self.monitor, self.mode, initial=self.initial_value_threshold
        )
        if self.save_freq != "epoch":  # only then a batch hook: an idle one still costs
            _add_batch_hook(self, self._batch_end)

    @property
    def best(self) -> float:
        """The best value of ``monitor`` so far; settable, as Keras's ``best``."""
        return self._tracker.best

    @best.setter
    def best(self, value: float) -> None:
        self._tracker.best = float(value)

    @property
    def required_log_keys(self) -> tuple[str, ...]:
        fields = _format_fields(self.filepath) - {"epoch", "batch"}
        needed = set(fields) | ({self.monitor} if self.save_best_only else set())
        return tuple(sorted(needed))

    def _batch_end(
        self, model: Sequential, state: LoopState, batch: int, logs: Mapping[str, float]
    ) -> None:
        if self._batches.due(batch, int(self.save_freq)):
            self._save(model, state.epoch, logs, batch=batch)

    @hookimpl
    def on_epoch_end(
        self, model: Sequential, epoch: int, logs: Mapping[str, float]
    ) -> None:
        if self.save_freq == "epoch":
            self._save(model, epoch, logs)

    def _save(
        self,
        model: Sequential,
        epoch: int,
        logs: Mapping[str, float],
        batch: int | None = None,
    ) -> None:
        fields: dict[str, Any] = {**logs, "epoch": epoch + 1}
        if batch is not None:
            fields["batch"] = batch + 1
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                if not self._warned:
                    warnings.warn(
                        f"ModelCheckpoint: monitor {self.monitor!r} is not in the logs at "
                        f"this save; available keys: {sorted(logs)}. Skipping the save.",
                        LoopkitWarning,
                        stacklevel=2,
                    )
                    self._warned = True
                return
            if not self._tracker.improves(float(current)):
                if self.verbose:
                    print(
                        f"Epoch {epoch + 1}: {self.monitor} did not improve from "
                        f"{self._tracker.best:.5f}"
                    )
                return
            previous = self._tracker.best
        try:
            path = self.filepath.format(**fields)
        except KeyError as err:  # a batch-level save has only batch logs
            warnings.warn(
                f"ModelCheckpoint: filepath {self.filepath!r} names {err}, which these "
                f"logs lack ({sorted(logs)}); skipping the save.",
                LoopkitWarning,
                stacklevel=2,
            )
            return
        if not np.all(np.isfinite(model.flat_weights)):
            warnings.warn(
                f"ModelCheckpoint: the weights hold NaN or inf at epoch {epoch + 1}; not "
                f"saving them over {path!r}.",
                LoopkitWarning,
                stacklevel=2,
            )
            return
        if is_primary():  # under DataParallel rank 0 alone writes; every rank tracks
            if self.background:
                snapshot = snapshot_model(model, weights_only=self.save_weights_only)
                self._finish()
                self._writing = path
                self._writer.submit(lambda: snapshot.write(path))
            else:
                self._writing = path
                try:
                    if self.save_weights_only:
                        model.save_weights(path)
                    else:
                        model.save(path)
                except (CheckpointError, OSError) as err:
                    raise CheckpointError(
                        f"{self._label}: saving {path!r} failed: {err}"
                    ) from err
        self.last_saved = path
        if self.save_best_only:
            self._tracker.best = float(logs[self.monitor])
            if self.verbose:
                print(
                    f"Epoch {epoch + 1}: {self.monitor} improved from {previous:.5f} to "
                    f"{self._tracker.best:.5f}, saving model to {path}"
                )
        elif self.verbose:
            print(f"Epoch {epoch + 1}: saving model to {path}")

    @hookimpl(tryfirst=True)
    def on_train_end(self) -> None:
        self._finish()

    @hookimpl(tryfirst=True)
    def on_exception(self) -> None:
        self._finish()

    def state_dict(self) -> dict[str, Any]:
        """Return the best value so far (for resume)."""
        return {"best": self._tracker.best, "last_saved": self.last_saved}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self._tracker.best = float(state["best"])
        self.last_saved = state["last_saved"]


@define(eq=False, slots=False)
class BackupAndRestore(Plugin):
    """Back up the whole training state so a killed run resumes exactly where it was.

    Started again with the same script, ``fit`` restores the last backup in
    ``on_train_begin``: weights, optimizer state, epoch and batch position, the
    dropout and layer random generators, metric states, and the state of every plugin
    of the run that has ``state_dict()`` (History included, so it holds the epochs
    before the interruption). Each epoch's sample order depends only on the seed and
    the epoch, so the resumed run ends with weights **bitwise identical** to a run
    that was never interrupted. Backups are written atomically over one file, so a
    kill during a write leaves the previous backup intact.

    The backup is deleted (``delete_checkpoint``) only when the whole ``fit`` has
    succeeded, its closing hooks included: should another plugin fail in
    ``on_train_end`` (a last checkpoint that cannot be written), the backup is put
    back. A resumed run continues ``state.epochs_completed`` and ``global_step``
    exactly, so loggers never reuse a step.

    Backups are taken at the end of every epoch, and every ``save_freq`` batches when
    it is an int (Keras saves only at the chosen frequency; the extra epoch-end save
    makes a resumed epoch's validation and logs whole). Logs of an epoch resumed
    mid-way cover only the batches run after the resume.

    Args:
        backup_dir: Directory of the backup (``backup.npz`` inside it); ``"backup"``
            by default, so the entry point ``plugins=["backup_and_restore"]`` works.
        save_freq: ``"epoch"``, or an int: also back up every that many batches.
        delete_checkpoint: Delete the backup when ``fit`` completes without error.
    """

    default_name = "backup_and_restore"
    default_order = 2000  # after History and every monitor

    backup_dir: str = field(default="backup", converter=os.fspath)
    save_freq: int | str = field(default="epoch", validator=positive_int_or("epoch"))
    delete_checkpoint: bool = field(default=True, validator=boolean)
    restored: bool = field(default=False, init=False)
    """Whether the last ``fit`` started from a backup."""
    _resume_epoch: int = field(default=0, init=False, repr=False)
    _resume_batch: int = field(default=0, init=False, repr=False)
    _epochs_completed: int = field(default=0, init=False, repr=False)
    _loaded: tuple[int, int] | None = field(default=None, init=False, repr=False)
    _deleted: bytes | None = field(default=None, init=False, repr=False)
    _batches: _BatchCounter = field(factory=_BatchCounter, init=False, repr=False)

    @property
    def _label(self) -> str:
        return f"BackupAndRestore(backup_dir={self.backup_dir!r})"

    @property
    def path(self) -> Path:
        """The backup file."""
        return Path(self.backup_dir) / "backup.npz"

    @hookimpl(tryfirst=True)
    def on_train_begin(self, model: Sequential, state: LoopState) -> None:
        self.restored, self._deleted, self._loaded = False, None, None
        self._batches.restart()
        check_destination(self.backup_dir, self._label, directory=True)
        if not os.path.lexists(self.path):
            return
        load_checkpoint(model, self.path)  # on_load_checkpoint below reads the position
        epoch, batch = self._loaded or (0, 0)
        steps = state.steps_per_epoch
        if steps is not None and batch >= steps:
            epoch, batch = epoch + 1, 0
        state.resume_epoch, state.resume_batch = epoch, batch
        self.restored = True

    @hookimpl
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[self.name] = {
            "epoch": self._resume_epoch,
            "batch": self._resume_batch,
            "epochs_completed": self._epochs_completed,
        }

    @hookimpl
    def on_load_checkpoint(self, state: LoopState, checkpoint: Mapping[str, Any]) -> None:
        # Checked here, inside load_checkpoint: a bad entry makes the whole load fail
        # and roll back, instead of failing after the model was overwritten.
        position = checkpoint.get(self.name, {})
        if not isinstance(position, Mapping):
            raise CheckpointError(
                f"{self._label}: the backup {str(self.path)!r} holds position "
                f"{position!r:.40}; expected a dict. Remove it to start afresh."
            )
        values = {k: position.get(k, 0) for k in ("epoch", "batch")}
        if "epochs_completed" in position:
            values["epochs_completed"] = position["epochs_completed"]
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CheckpointError(
                    f"{self._label}: the backup {str(self.path)!r} holds position "
                    f"{key}={value!r:.40}; expected an int >= 0. It is damaged or "
                    "crafted: remove it to start afresh."
                )
        self._loaded = (values["epoch"], values["batch"])
        if "epochs_completed" in values:
            state.epochs_completed = values["epochs_completed"]

    def _backup(self, model: Sequential, epoch: int, batch: int) -> None:
        if not np.all(np.isfinite(model.flat_weights)):
            warnings.warn(
                "BackupAndRestore: the weights hold NaN or inf; keeping the previous "
                f"backup at {str(self.path)!r} instead of overwriting it.",
                LoopkitWarning,
                stacklevel=2,
            )
            return
        self._resume_epoch, self._resume_batch = epoch, batch
        # at an epoch's end the loop has not yet counted the epoch that just ended
        self._epochs_completed = model.state.epochs_completed + (batch == 0)
        if not is_primary():  # under DataParallel rank 0 alone writes; every rank restores
            return
        try:
            save_checkpoint(model, self.path)
        except CheckpointError as err:
            raise CheckpointError(f"{self._label}: backing up failed: {err}") from err

    def __attrs_post_init__(self) -> None:
        if self.save_freq != "epoch":  # only then a batch hook: an idle one still costs
            _add_batch_hook(self, self._batch_end, trylast=True)

    def _batch_end(
        self, model: Sequential, state: LoopState, batch: int, logs: Mapping[str, float]
    ) -> None:
        if not self._batches.due(batch, int(self.save_freq)):
            return
        if state.steps_per_epoch is not None and batch + 1 >= state.steps_per_epoch:
            return  # the epoch-end backup follows and also covers validation
        self._backup(model, state.epoch, batch + 1)

    @hookimpl(trylast=True)
    def on_epoch_end(self, model: Sequential, epoch: int) -> None:
        self._backup(model, epoch + 1, 0)

    @hookimpl
    def on_train_end(self, state: LoopState) -> None:
        primary = is_primary()  # under DataParallel rank 0 alone owns the file
        if (
            self.delete_checkpoint
            and state.exception is None
            and primary
            and self.path.is_file()
        ):
            # Kept in memory until the run is over: if a closing hook of another
            # plugin fails, on_exception follows and writes the backup back.
            self._deleted = self.path.read_bytes()
            self.path.unlink()

    @hookimpl
    def on_exception(self) -> None:
        deleted, self._deleted = self._deleted, None
        if deleted is not None:
            with atomic_write(self.path) as handle:
                handle.write(deleted)
