"""The fit, evaluate and predict loops: forward, loss, backward, step, and hooks between."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from loopkit._data.datasets import Batch, Dataset
from loopkit._dispatch.dispatcher import HookDispatcher
from loopkit._training.loop_state import OptimizerStep
from loopkit.errors import ConfigError, LoopkitWarning

if TYPE_CHECKING:
    from loopkit._training.trainer import Trainer as Model

__all__ = ["BatchLogs", "run_evaluate", "run_fit", "run_predict"]


class _Means:
    """Running means of the loss (weighted by batch size) and the compiled metrics."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.loss_sum = 0.0
        self.count = 0
        self.term_sums = [0.0] * len(model.loss_term_names)

    def add(self, loss: float, n: int) -> None:
        self.loss_sum += loss * n
        self.count += n
        if self.term_sums:  # one loss per output: Keras logs each as <output>_loss
            for i, value in enumerate(self.model.loss_terms):
                self.term_sums[i] += value * n

    def logs(self, prefix: str = "") -> dict[str, float]:
        count = max(self.count, 1)
        logs = {prefix + "loss": self.loss_sum / count}
        for name, total in zip(self.model.loss_term_names, self.term_sums, strict=True):
            logs[prefix + name] = total / count
        for metric in self.model.metrics:
            logs[prefix + metric.name] = float(metric.result())
        return logs


class BatchLogs(Mapping[str, float]):
    """Per-batch logs computed on first access: the running means at that batch.

    The loop hands one to every batch hook; a plugin that looks at the logs only now
    and then (a progress bar redrawing every 0.1 s) then costs no metric work on the
    other batches. It reads like the dict Keras passes (``logs["loss"]``,
    ``logs.get``, ``dict(logs)``) and is read-only, as batch logs are in the contract.
    """

    __slots__ = ("_means", "_values")

    def __init__(self, means: _Means) -> None:
        self._means = means
        self._values: dict[str, float] | None = None

    def _resolve(self) -> dict[str, float]:
        if self._values is None:
            self._values = self._means.logs()
        return self._values

    def __getitem__(self, key: str) -> float:
        return self._resolve()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resolve())

    def __len__(self) -> int:
        return len(self._resolve())

    def __repr__(self) -> str:
        return repr(self._resolve())


def _note(error: BaseException, text: str) -> None:
    """Attach ``text`` to ``error`` (``add_note`` is Python 3.11+; 3.10 keeps the list)."""
    add_note = getattr(error, "add_note", None)
    if add_note is not None:
        add_note(text)
    else:  # pragma: no cover - Python 3.10
        error.__notes__ = [*getattr(error, "__notes__", []), text]


_Failures = list[tuple[str, Exception]]


def _fail(
    model: Model,
    hooks: HookDispatcher,
    error: BaseException,
    end: Callable[[], _Failures] | None,
) -> None:
    """Fire ``on_exception`` then ``end``, plugin by plugin; their errors become notes."""
    model.state.exception = error
    failures = hooks.call_each(
        "on_exception", model=model, state=model.state, exception=error
    )
    if end is not None:
        failures += end()
    for label, hook_error in failures:  # the original error stays the one raised
        _note(error, f"loopkit: {label} also failed: {hook_error!r}")


@contextmanager
def _guard(
    model: Model, hooks: HookDispatcher, end: Callable[[], _Failures] | None = None
) -> Iterator[None]:
    """Run a loop with ``state.hooks`` set; ``end`` always runs, ``on_exception`` on error.

    ``end`` fires the loop's closing hook (``on_train_end``) plugin by plugin and
    returns the failures, so one plugin raising does not keep the others from
    closing. On an error in the loop: ``on_exception``, then ``end``, then the error
    propagates. When ``end`` fails after a clean loop, ``on_exception`` fires for its
    first error, which then propagates. ``state.hooks`` and ``state.exception`` are
    restored afterwards, so an ``evaluate`` run by a plugin inside ``fit`` hands the
    fit's back.
    """
    state = model.state
    previous = state.hooks, state.exception
    state.hooks, state.exception = hooks, None
    try:
        try:
            yield
        except BaseException as error:
            _fail(model, hooks, error, end)
            raise
        failures = end() if end is not None else []
        if failures:
            first = failures[0][1]
            for label, other in failures[1:]:
                _note(first, f"loopkit: {label} also failed: {other!r}")
            _fail(model, hooks, first, None)
            raise first
    finally:
        state.hooks, state.exception = previous


def _targets(y: Any, call: str) -> Any:
    if y is None:
        raise ConfigError(
            f"{call}: a batch from the data has no targets; yield (x, y) or "
            "(x, y, sample_weight) tuples, or pass y= with array x."
        )
    return y


def batch_length(x: Any) -> int:
    """Return the number of samples in a batch: one array, or a list of them."""
    return len(x) if isinstance(x, np.ndarray) else batch_length(x[0])


def _checked_first(batches: Iterator[Batch], model: Model, call: str) -> Iterator[Batch]:
    """Check the first batch of a pass before it is used (the data is a generator)."""
    first = True
    for x, y, w in batches:
        if first:
            model.check_batch(x, y, call)
            first = False
        yield x, y, w


class _Events:
    """A run's hooks with ``model`` and ``state`` bound: ``emit(name, event, **kwargs)``."""

    def __init__(self, hooks: HookDispatcher, model: Model) -> None:
        self.hooks, self.model, self.state = hooks, model, model.state
        self.batch_begin = hooks.active("on_train_batch_begin")
        self.batch_end = hooks.active("on_train_batch_end")
        self.before_step = hooks.active("on_before_optimizer_step")
        self.after_step = hooks.active("on_after_optimizer_step")

    def __call__(self, name: str, event: int = 1, /, **kwargs: Any) -> Any:
        return self.hooks.call(name, event, model=self.model, state=self.state, **kwargs)


def _padding(data: Any) -> bool:
    """Whether the batch ``data`` last yielded is padding (a sharded rank's filler).

    A dataset may report ``samples``, the real samples of that batch; padding rows
    carry weight 0 for the loss, but the unweighted metrics would count them.
    """
    return getattr(data, "samples", None) == 0


def _train_step(
    model: Model, emit: _Events, batch: Batch, event: int, padding: bool = False
) -> tuple[float, int]:
    """Forward, loss, backward and (unless a plugin skips it) the optimizer step."""
    x, y, w = batch
    n = batch_length(x)
    loss = model.compute_gradients(x, _targets(y, "fit()"), w)
    step = OptimizerStep(loss=loss, batch_size=n)
    if emit.before_step:
        emit("on_before_optimizer_step", event, step=step)
    if not step.skip:
        model.apply_gradients()
    if emit.after_step:
        emit("on_after_optimizer_step", event, step=step)
    if not padding:
        model.update_metrics(y, w)
    return loss, n


def _fit_epoch(
    model: Model, emit: _Events, train: Dataset, epoch: int, first: bool
) -> _Means | None:
    """Run one training epoch (resuming mid-epoch if a plugin asked); return its means.

    Returns None when the data ran out before the epoch's first batch (a finite
    generator on its second pass): as Keras does, training then stops with a warning.
    """
    state = model.state
    state.epoch, state.batch, state.mode = epoch, 0, "train"
    skip, state.resume_batch = state.resume_batch, 0
    model.reset_metrics()
    means = _Means(model)
    emit("on_epoch_begin", epoch + 1, epoch=epoch, logs={})
    batches = _checked_first(train.batches(epoch), model, "fit()")
    every, steps, ran = model.steps_per_execution, train.steps, skip
    # A resumed epoch skips the batches run before the interruption.
    for batch, data in enumerate(itertools.islice(batches, skip, None), start=skip):
        state.batch, event, ran = batch, state.global_step + 1, batch + 1
        if emit.batch_begin and batch % every == 0:
            emit("on_train_batch_begin", event, batch=batch, logs={})
        means.add(*_train_step(model, emit, data, event, _padding(train)))
        state.global_step += 1
        if emit.batch_end and ((batch + 1) % every == 0 or batch + 1 == steps):
            emit("on_train_batch_end", event, batch=batch, logs=BatchLogs(means))
        if model.stop_training:
            break
    if means.count == 0 and skip == 0:
        if first:
            raise _ran_out_of_data(epoch)
        _warn_out_of_data(model)
        return None
    if steps is not None and ran < steps and not model.stop_training:
        _warn_out_of_data(model)  # fewer batches than steps_per_epoch: the data ran dry
    return means


def _warn_out_of_data(model: Model) -> None:
    """Keras's warning when the data runs out: training stops after this epoch."""
    warnings.warn(
        "Your input ran out of data; interrupting training. Make sure that your "
        "dataset or generator can generate at least `steps_per_epoch * epochs` "
        "batches (a generator that loops forever, or a Sequence).",
        LoopkitWarning,
        stacklevel=5,
    )
    model.stop_training = True


def run_fit(
    model: Model,
    hooks: HookDispatcher,
    train: Dataset,
    validation: Dataset | None,
    *,
    epochs: int,
    initial_epoch: int,
    validation_freq: Callable[[int], bool],
) -> None:
    """Train ``model`` for epochs ``initial_epoch .. epochs-1`` and call every hook.

    The caller (``Model.fit``) has checked every argument and built ``hooks``.
    """
    state, emit = model.state, _Events(hooks, model)
    state.mode = "train"
    logs: dict[str, float] = {}

    def end() -> _Failures:
        return hooks.call_each("on_train_end", model=model, state=state, logs=logs)

    with _guard(model, hooks, end):
        emit("on_train_begin", logs={})
        if state.train_data is not None:  # a plugin may have replaced it (sharding)
            train = state.train_data
        epoch = initial_epoch if state.resume_epoch is None else state.resume_epoch
        state.resume_epoch = None
        first = True
        while epoch < epochs and not model.stop_training:
            means = _fit_epoch(model, emit, train, epoch, first)
            if means is None:
                break
            logs, first = means.logs(), False
            # As in Keras, an epoch ended by stop_training mid-way still validates.
            if validation is not None and validation_freq(epoch):
                val_logs = _evaluate(model, hooks, validation, "fit() validation")
                logs.update({"val_" + k: v for k, v in val_logs.items()})
                state.mode = "train"
            logs["learning_rate"] = model.optimizer.current_learning_rate  # type: ignore[union-attr]
            emit("on_epoch_end", epoch + 1, epoch=epoch, logs=logs)
            state.epochs_completed += 1
            epoch += 1


def _ran_out_of_data(epoch: int) -> Exception:
    return ConfigError(
        f"fit(): the training data yielded no batch in epoch {epoch}, the first of this "
        "fit. A generator is "
        "exhausted after one pass: pass steps_per_epoch= and a generator that loops "
        "forever, or a re-iterable object (a list of batches, a Sequence)."
    )


def _evaluate(
    model: Model, hooks: HookDispatcher, data: Dataset, call: str
) -> dict[str, float]:
    state, emit = model.state, _Events(hooks, model)
    state.mode = "test"
    model.reset_metrics()
    means = _Means(model)
    begin, end = hooks.active("on_test_batch_begin"), hooks.active("on_test_batch_end")
    state.eval_data = data
    emit("on_test_begin", logs={})
    data = state.eval_data  # a plugin may have replaced it (sharding)
    for batch, (x, y, w) in enumerate(_checked_first(data.batches(0), model, call)):
        if begin:
            emit("on_test_batch_begin", batch + 1, batch=batch, logs={})
        model.forward(x, training=False)
        loss = model.test_loss(_targets(y, call), w)
        if not _padding(data):
            model.update_metrics(y, w)
        means.add(loss, batch_length(x))
        if end:
            emit("on_test_batch_end", batch + 1, batch=batch, logs=BatchLogs(means))
        if model.stop_evaluating:
            break
    if means.count == 0:
        raise ConfigError(
            f"{call}: the data yielded no batch; there is nothing to evaluate."
        )
    logs = means.logs()
    emit("on_test_end", logs=logs)
    state.eval_data = None
    return logs


def run_evaluate(model: Model, hooks: HookDispatcher, data: Dataset) -> dict[str, float]:
    """Evaluate ``model`` on ``data``; return the means of the loss and metrics."""
    result: dict[str, float] = {}
    with _guard(model, hooks):
        result = _evaluate(model, hooks, data, "evaluate()")
    return result


def run_predict(model: Model, hooks: HookDispatcher, data: Dataset) -> Any:
    """Return the model's outputs for every batch of ``data``, concatenated."""
    state, emit = model.state, _Events(hooks, model)
    state.mode = "predict"
    chunks: list[Any] = []
    begin, end = (
        hooks.active("on_predict_batch_begin"),
        hooks.active("on_predict_batch_end"),
    )
    with _guard(model, hooks):
        emit("on_predict_begin", logs={})
        for batch, (x, _, _) in enumerate(
            _checked_first(data.batches(0), model, "predict()")
        ):
            if begin:
                emit("on_predict_batch_begin", batch + 1, batch=batch, logs={})
            out = model.forward(x, training=False)
            chunks.append(
                out.copy() if isinstance(out, np.ndarray) else [o.copy() for o in out]
            )
            if end:
                emit("on_predict_batch_end", batch + 1, batch=batch, logs={"outputs": out})
            if model.stop_predicting:
                break
        emit("on_predict_end", logs={})
    if not chunks:
        raise ConfigError(
            "predict(): the data yielded no batch; there is nothing to predict."
        )
    return model.assemble_predictions(chunks)


def validation_schedule(
    validation_freq: int | Mapping[Any, Any] | Any,
) -> Callable[[int], bool]:
    """Return whether to validate after epoch ``e`` (Keras: a period or 1-based epochs)."""
    if isinstance(validation_freq, bool):
        raise ConfigError(
            f"fit() got validation_freq={validation_freq!r}; expected an int or a list."
        )
    if isinstance(validation_freq, int):
        if validation_freq <= 0:
            raise ConfigError(
                f"fit() got validation_freq={validation_freq}; expected a positive int "
                "(validate every N epochs) or a list of 1-based epoch numbers."
            )
        return lambda e: (e + 1) % validation_freq == 0
    try:
        chosen = {int(v) for v in validation_freq}
    except TypeError as err:
        raise ConfigError(
            f"fit() got validation_freq={validation_freq!r}; expected an int or a list "
            "of 1-based epoch numbers such as [1, 5, 10]."
        ) from err
    return lambda e: (e + 1) in chosen
