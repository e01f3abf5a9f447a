"""TensorBoard logging through tensorboardX: curves, histograms, images, config, hparams."""

from __future__ import annotations

import itertools
import json
import numbers
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from attrs import define, field
from tensorboardX import SummaryWriter
from tensorboardX.summary import hparams as hparams_summaries

from loopkit import (
    BackgroundWriter,
    ConfigError,
    LoopState,
    Plugin,
    Sequential,
    hookimpl,
    plugin_name,
)
from loopkit.distributed import is_primary
from loopkit.validators import boolean, non_negative_int, positive_int_or

__all__ = ["TensorBoard", "weight_image"]

_FILE_NUMBER = itertools.count()


def _file_suffix() -> str:
    # tensorboardX names event files by the second: two writers opened on one directory
    # within a second (two quick fits) would share a file, the second truncating the first.
    return f".{os.getpid()}.{next(_FILE_NUMBER):06d}"


def _check_log_dir(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"TensorBoard got log_dir={value!r} of type {type(value).__name__}; expected "
            "a str or path such as log_dir='logs'."
        )
    if os.path.exists(value) and not os.path.isdir(value):
        raise ConfigError(
            f"TensorBoard got log_dir={os.fspath(value)!r}, which is a file; expected a "
            "directory (created if missing). Pass another log_dir= or move the file."
        )


def _refuse_profile(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return
    raise ConfigError(
        f"TensorBoard got profile_batch={value!r}; loopkit cannot write profiler traces "
        "(Keras writes TensorFlow's, which need TensorFlow). Pass profile_batch=0, and "
        "profile with `python -m cProfile -o fit.prof your_script.py` instead."
    )


def _refuse_embeddings(instance: Any, attribute: Any, value: Any) -> None:
    off = 0 if attribute.name == "embeddings_freq" else None
    if value == off and not isinstance(value, bool):
        return
    raise ConfigError(
        f"TensorBoard got {attribute.name}={value!r}; loopkit does not write TensorBoard "
        f"projector embeddings. Pass {attribute.name}={off!r}, and write Embedding weights "
        "yourself with tensorboardX's SummaryWriter.add_embedding if you need them."
    )


class _NullWriter:
    """A SummaryWriter that writes nothing: ranks other than 0 under DataParallel."""

    def __getattr__(self, name: str) -> Any:
        return self  # writer.add_scalar(...), writer.file_writer.add_summary(...)

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _code_block(text: str) -> str:
    """Return ``text`` as a Markdown code block (TensorBoard renders text as Markdown)."""
    return "\n".join("    " + line for line in text.splitlines())


def weight_image(value: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Return a weight as a 2-D uint8 grayscale image, min-max scaled to 0..255.

    A vector is one row; a matrix is shown wide (transposed when taller than wide, as
    Keras does); a kernel of shape ``(*spatial, in, out)`` (Conv2D: ``(kh, kw, in,
    out)``) is tiled with one ``kh x kw`` cell per (input channel, filter) pair:
    input channels down, filters across. Non-finite values are black.
    """
    w = np.asarray(value, dtype=np.float64)
    if w.ndim <= 1:
        w = w.reshape(1, -1)
    elif w.ndim == 2:
        w = w.T if w.shape[0] > w.shape[1] else w
    else:
        n = w.ndim
        tiled = w.transpose(n - 2, 0, n - 1, *range(1, n - 2))
        w = tiled.reshape(w.shape[-2] * w.shape[0], -1)
    finite = np.isfinite(w)
    if not finite.any():
        return np.zeros(w.shape, np.uint8)
    low, high = w[finite].min(), w[finite].max()
    scaled = (w - low) / (high - low) if high > low else np.full(w.shape, 0.5)
    return np.rint(np.where(finite, scaled, 0.0) * 255.0).astype(np.uint8)


def _steps_per_second(mark: tuple[float, int], global_step: int) -> float:
    """Return the training batches per second since ``mark`` (time, global step)."""
    start, start_step = mark
    return (global_step - start_step) / max(time.perf_counter() - start, 1e-9)


def _hparam(value: Any) -> str | float | bool:
    if isinstance(value, (str, bool)):
        return value
    if _is_number(value):
        return float(value)
    return json.dumps(value, sort_keys=True, default=repr)


@define(eq=False, slots=False)
class TensorBoard(Plugin):
    """Log the run for TensorBoard (``tensorboard --logdir <log_dir>``), as Keras's does.

    Runs written under ``log_dir``:

    - ``train``: ``epoch_<key>`` for every training log key (``epoch_loss``,
      ``epoch_accuracy``, ``epoch_learning_rate``) at step = epochs the model has
      completed over every ``fit`` (``state.epochs_completed``), so a second ``fit``
      continues the curves; ``batch_<key>`` (and ``batch_learning_rate``) every
      ``update_freq`` batches at step = the model's global batch count; histograms
      and images.
    - ``validation``: the ``val_`` keys without their prefix (``epoch_loss``), so
      TensorBoard overlays train and validation curves of the same tag.
    - ``log_dir`` itself: once per ``fit``, the compiled configuration (text
      ``config``), the run's plugins in call order (``plugins``) and, with
      ``write_graph``, the layer table (``graph``); when ``fit`` ends without error, an
      HParams session (hyperparameters from the optimizer, loss, metrics, batch size
      and epochs) whose metrics are the last epoch's logs as ``final/<key>`` scalars.
      TensorBoard keeps the first session of a directory: later fits into it update
      its ``final/`` metrics, not its hyperparameters.

    Events go through tensorboardX's writer thread, so no batch waits on the disk. The
    files are flushed at every epoch end, by a background thread (tensorboardX's flush
    fsyncs, which would stall training a few milliseconds per epoch), and flushed and
    closed when ``fit`` ends, and on ``on_exception``: a crashed run keeps everything
    logged before the crash.
    ``evaluate`` and ``predict`` write nothing (Keras logs ``evaluation_*_vs_iterations``).

    Args:
        log_dir: Directory of the runs, created if missing. Give each model its own
            (``logs/model_a``, ``logs/model_b``) and point TensorBoard at the parent
            to compare them.
        histogram_freq: Every N epochs (steps 0, N, 2N, ...), write a histogram of
            every weight (``<layer>/<weight>/histogram``) and of every trainable
            weight's gradient from the epoch's last batch, as the optimizer applied it
            (``<layer>/<weight>/gradient``); 0 writes none. Keras names tags by the
            weight's name alone, so two Dense kernels collide; ours include the layer.
        write_graph: Write the model's layer table as text. loopkit has no graph to
            draw, so this is the ``model.summary()`` table; off by default (Keras: on).
        write_images: At histogram epochs, also write every weight as a grayscale image
            (``<layer>/<weight>/image``, see ``weight_image``), scaled to the full gray
            range (Keras writes raw weights, which TensorBoard clips to [0, 1], so every
            negative weight shows black). Needs ``histogram_freq > 0`` and Pillow
            (installed with TensorBoard).
        write_steps_per_second: Also log ``epoch_steps_per_second`` (training batches
            per second of the epoch, validation included, as in Keras) and, with
            ``update_freq``, ``batch_steps_per_second`` since the last batch write.
        update_freq: ``"epoch"`` writes epoch scalars only; ``"batch"`` or an int N
            also writes ``batch_<key>``, the running epoch means (Keras semantics),
            every N batches. With ``"epoch"`` the plugin implements no batch hook, so
            the loop builds no per-batch logs for it.
        profile_batch: Must be 0: loopkit has no profiler trace to write.
        embeddings_freq: Must be 0: loopkit writes no projector embeddings.
        embeddings_metadata: Must be None, for the same reason.

    Raises:
        ConfigError: a refused Keras feature, ``write_images`` without
            ``histogram_freq``, or a bad ``update_freq``/``log_dir``.
        TypeError: an argument of the wrong kind.
    """

    default_name = "tensorboard"
    default_order = 200  # a logger: sees keys monitors add

    log_dir: str | os.PathLike[str] = field(default="logs", validator=_check_log_dir)
    histogram_freq: int = field(default=0, validator=non_negative_int)
    write_graph: bool = field(default=False, validator=boolean)
    write_images: bool = field(default=False, validator=boolean)
    write_steps_per_second: bool = field(default=False, validator=boolean)
    update_freq: str | int = field(
        default="epoch", validator=positive_int_or("epoch", "batch")
    )
    profile_batch: int = field(default=0, validator=_refuse_profile)
    embeddings_freq: int = field(default=0, validator=_refuse_embeddings)
    embeddings_metadata: Any = field(default=None, validator=_refuse_embeddings)
    _batch_every: int | None = field(default=None, init=False, repr=False)
    _writers: dict[str, Any] = field(factory=dict, init=False, repr=False)
    _flusher: BackgroundWriter = field(factory=BackgroundWriter, init=False, repr=False)
    _last_logs: dict[str, float] = field(factory=dict, init=False, repr=False)
    # (perf_counter time, global step) at the epoch's start and at the last batch write
    _epoch_mark: tuple[float, int] = field(default=(0.0, 0), init=False, repr=False)
    _batch_mark: tuple[float, int] = field(default=(0.0, 0), init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.write_images:
            if not self.histogram_freq:
                raise ConfigError(
                    "TensorBoard got write_images=True with histogram_freq=0; images are "
                    "written at histogram epochs (as in Keras), so none would be. Pass "
                    "histogram_freq=1 (or N) too, or drop write_images."
                )
            try:
                import PIL  # noqa: F401 - tensorboardX encodes images with Pillow
            except ImportError as err:
                raise ConfigError(
                    "TensorBoard got write_images=True, but Pillow is not installed to "
                    "encode the images; install it with pip install 'loopkit[tensorboard]' "
                    "(TensorBoard depends on it) or pip install pillow."
                ) from err
        if self.update_freq != "epoch":
            self._batch_every = 1 if self.update_freq == "batch" else int(self.update_freq)

            def on_train_batch_end(
                model: Sequential, state: LoopState, logs: Mapping[str, float]
            ) -> None:
                self._write_batch(model, state, logs)

            # Only a batch-logging TensorBoard implements the batch hook: the loop builds
            # per-batch logs only when some plugin does, so "epoch" costs nothing per batch.
            self.on_train_batch_end = hookimpl(on_train_batch_end)

    # --- writers ------------------------------------------------------------------------

    def _writer(self, run: str) -> Any:
        """Return the open writer of ``run`` ("" is ``log_dir`` itself), opening it once."""
        writer = self._writers.get(run)
        if writer is None and not is_primary():  # under DataParallel rank 0 alone writes
            writer = self._writers[run] = _NullWriter()
        if writer is None:
            path = os.path.join(os.fspath(self.log_dir), run) if run else self.log_dir
            writer = SummaryWriter(
                os.fspath(path),
                max_queue=1000,
                flush_secs=10,
                filename_suffix=_file_suffix(),
            )
            self._writers[run] = writer
        return writer

    def _flush(self) -> None:
        """Flush every writer in a background thread: tensorboardX fsyncs on flush."""
        writers = list(self._writers.values())

        def flush() -> None:
            for writer in writers:
                writer.flush()

        self._flusher.submit(flush)

    def _close(self) -> None:
        self._flusher.wait()
        writers, self._writers = self._writers, {}
        for writer in writers.values():
            writer.close()

    # --- hooks --------------------------------------------------------------------------

    @hookimpl
    def on_train_begin(self, model: Sequential, state: LoopState) -> None:
        self._close()
        self._last_logs = {}
        step = state.epochs_completed
        root = self._writer("")
        config = json.dumps(self.compiled_config(model, state), indent=2, default=repr)
        root.add_text("config", _code_block(config), step)
        plugins = state.hooks.originals() if state.hooks is not None else []
        listing = [f"{i}. **{plugin_name(p)}**: `{p!r}`" for i, p in enumerate(plugins, 1)]
        root.add_text("plugins", "\n".join(listing) or "(none)", step)
        if self.write_graph:
            lines: list[str] = []
            model.summary(print_fn=lines.append)
            root.add_text("graph", _code_block("\n".join(lines)), step)
        self._flush()

    @hookimpl
    def on_epoch_begin(self, state: LoopState) -> None:
        self._epoch_mark = self._batch_mark = (time.perf_counter(), state.global_step)

    def _write_batch(
        self, model: Sequential, state: LoopState, logs: Mapping[str, float]
    ) -> None:
        step = state.global_step
        assert self._batch_every is not None
        if step % self._batch_every:
            return
        train = self._writer("train")
        for key, value in logs.items():
            if _is_number(value):
                train.add_scalar("batch_" + key, value, step)
        if model.optimizer is not None:
            train.add_scalar(
                "batch_learning_rate", model.optimizer.current_learning_rate, step
            )
        if self.write_steps_per_second:
            rate = _steps_per_second(self._batch_mark, step)
            self._batch_mark = (time.perf_counter(), step)
            train.add_scalar("batch_steps_per_second", rate, step)

    @hookimpl
    def on_epoch_end(
        self, model: Sequential, state: LoopState, logs: Mapping[str, float]
    ) -> None:
        step = state.epochs_completed
        train = self._writer("train")
        for key, value in logs.items():
            if not _is_number(value):
                continue
            if key.startswith("val_"):
                self._writer("validation").add_scalar("epoch_" + key[4:], value, step)
            else:
                train.add_scalar("epoch_" + key, value, step)
        if self.write_steps_per_second:
            rate = _steps_per_second(self._epoch_mark, state.global_step)
            train.add_scalar("epoch_steps_per_second", rate, step)
        if self.histogram_freq and step % self.histogram_freq == 0:
            self._write_weights(model, train, step)
        self._last_logs = {k: float(v) for k, v in logs.items() if _is_number(v)}
        self._flush()

    @hookimpl
    def on_train_end(self, model: Sequential, state: LoopState) -> None:
        if state.exception is None and self._last_logs:
            self._write_hparams(model, state)
        self._close()

    @hookimpl
    def on_exception(self) -> None:
        self._close()

    # --- what is written ----------------------------------------------------------------

    def _write_weights(self, model: Sequential, writer: Any, step: int) -> None:
        trainable = {id(p) for p in model.trainable_weights}
        for layer in model.layers:
            for param in layer.parameters:
                tag = f"{layer.name}/{param.name}"
                writer.add_histogram(tag + "/histogram", param.value, step)
                if id(param) in trainable:
                    writer.add_histogram(tag + "/gradient", param.grad, step)
                if self.write_images:
                    image = weight_image(param.value)
                    writer.add_image(tag + "/image", image, step, dataformats="HW")

    def compiled_config(self, model: Sequential, state: LoopState) -> dict[str, Any]:
        """Return what the run was compiled and fit with, as written to text ``config``."""
        optimizer, loss = model.optimizer, model.loss
        return {
            "model": model.name,
            "dtype": str(model.dtype),
            "params": model.count_params(),
            "optimizer": None
            if optimizer is None
            else {"class_name": type(optimizer).__name__, "config": optimizer.get_config()},
            "loss": None
            if loss is None
            else {"class_name": type(loss).__name__, "config": loss.get_config()},
            "loss_weight": model.loss_weight,
            "metrics": [m.name for m in model.metrics],
            "fit": {
                "epochs": state.epochs,
                "initial_epoch": state.initial_epoch,
                "batch_size": state.batch_size,
                "steps_per_epoch": state.steps_per_epoch,
            },
        }

    def hyperparameters(self, model: Sequential, state: LoopState) -> dict[str, Any]:
        """Return the HParams session's hyperparameters: flat names, str/float/bool."""
        found: dict[str, Any] = {}
        for prefix, part in (("optimizer", model.optimizer), ("loss", model.loss)):
            if part is not None:  # the class of the optimizer, the name of the loss
                found[prefix] = part.name if prefix == "loss" else type(part).__name__
                config = part.get_config().items()
                found.update({f"{prefix}.{k}": v for k, v in config if k != "name"})
        found["metrics"] = ", ".join(m.name for m in model.metrics)
        found.update(
            batch_size=state.batch_size, epochs=state.epochs, params=model.count_params()
        )
        return {key: _hparam(value) for key, value in found.items() if value is not None}

    def _write_hparams(self, model: Sequential, state: LoopState) -> None:
        root = self._writer("")
        metrics = {"final/" + key: value for key, value in self._last_logs.items()}
        # What add_hparams writes, through our writer: add_hparams opens a second one in a
        # sub-directory named by the clock, whose file name has no _file_suffix. Here
        # log_dir itself is the session, so each model's run directory is one.
        for summary in hparams_summaries(self.hyperparameters(model, state), metrics):
            root.file_writer.add_summary(summary)
        for tag, value in metrics.items():
            root.add_scalar(tag, value, state.epochs_completed - 1)
