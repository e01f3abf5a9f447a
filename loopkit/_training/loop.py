"""The fit, evaluate and predict loops: forward, loss, backward, step, and hooks between."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from loopkit._data.datasets import Dataset, check_sample_shape
from loopkit._dispatch.dispatcher import HookDispatcher
from loopkit._training.loop_state import OptimizerStep
from loopkit.errors import ConfigError
from loopkit.typing import Array

if TYPE_CHECKING:
    from loopkit._training.model import Sequential

__all__ = ["BatchLogs", "run_evaluate", "run_fit", "run_predict"]


class _Means:
    """Running means of the loss (weighted by batch size) and the compiled metrics."""

    def __init__(self, model: Sequential) -> None:
        self.model = model
        self.loss_sum = 0.0
        self.count = 0

    def add(self, loss: float, n: int) -> None:
        self.loss_sum += loss * n
        self.count += n

    def logs(self, prefix: str = "") -> dict[str, float]:
        logs = {prefix + "loss": self.loss_sum / max(self.count, 1)}
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
    model: Sequential,
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
    model: Sequential, hooks: HookDispatcher, end: Callable[[], _Failures] | None = None
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


def _targets(y: Array | None, call: str) -> Array:
    if y is None:
        raise ConfigError(
            f"{call}: a batch from the data has no targets; yield (x, y) or "
            "(x, y, sample_weight) tuples, or pass y= with array x."
        )
    return y


def _first_batch_check(model: Sequential, x: Array, y: Array | None, call: str) -> None:
    """Check a batch that arrived only inside the loop (generators), before it is used."""
    model.ensure_built(x)
    assert model.input_shape is not None
    check_sample_shape(np.shape(x), model.input_shape, call)
    if y is not None:  # bad targets fail here, before a forward pass moves any state
        model.check_targets(x, y, call)


def run_fit(
    model: Sequential,
    hooks: HookDispatcher,
    train: Dataset,
    validation: Dataset | None,
    *,
    epochs: int,
    initial_epoch: int,
    validation_freq: Callable[[int], bool],
) -> None:
    """Train ``model`` for epochs ``initial_epoch .. epochs-1`` and call every hook.

    The caller (``Sequential.fit``) has checked every argument and built ``hooks``.
    """
    state = model.state
    state.mode = "train"
    logs: dict[str, float] = {}
    batch_begin = hooks.active("on_train_batch_begin")
    batch_end = hooks.active("on_train_batch_end")
    before_step = hooks.active("on_before_optimizer_step")
    after_step = hooks.active("on_after_optimizer_step")

    def end() -> _Failures:
        return hooks.call_each("on_train_end", model=model, state=state, logs=logs)

    with _guard(model, hooks, end):
        hooks.call("on_train_begin", model=model, state=state, logs={})
        if state.train_data is not None:  # a plugin may have replaced it (sharding)
            train = state.train_data
        epoch = initial_epoch if state.resume_epoch is None else state.resume_epoch
        state.resume_epoch = None
        while epoch < epochs and not model.stop_training:
            state.epoch, state.batch, state.mode = epoch, 0, "train"
            skip_batches, state.resume_batch = state.resume_batch, 0
            model.reset_metrics()
            means = _Means(model)
            hooks.call(
                "on_epoch_begin", epoch + 1, model=model, state=state, epoch=epoch, logs={}
            )
            for batch, (x, y, w) in enumerate(train.batches(epoch)):
                if batch < skip_batches:
                    continue  # resumed: done before the interruption
                if not model.built or state.global_step == 0:
                    _first_batch_check(model, x, y, "fit()")
                state.batch = batch
                event = state.global_step + 1
                if batch_begin:
                    hooks.call(
                        "on_train_batch_begin",
                        event,
                        model=model,
                        state=state,
                        batch=batch,
                        logs={},
                    )
                y = _targets(y, "fit()")
                loss = model.compute_gradients(x, y, w)
                step = OptimizerStep(loss=loss, batch_size=len(x))
                if before_step:
                    hooks.call(
                        "on_before_optimizer_step",
                        event,
                        model=model,
                        state=state,
                        step=step,
                    )
                if not step.skip:
                    model.apply_gradients()
                if after_step:
                    hooks.call(
                        "on_after_optimizer_step",
                        event,
                        model=model,
                        state=state,
                        step=step,
                    )
                model.update_metrics(y, w)
                means.add(loss, len(x))
                state.global_step += 1
                if batch_end:
                    hooks.call(
                        "on_train_batch_end",
                        event,
                        model=model,
                        state=state,
                        batch=batch,
                        logs=BatchLogs(means),
                    )
                if model.stop_training:
                    break
            if means.count == 0 and skip_batches == 0:
                raise _ran_out_of_data(epoch)
            logs = means.logs()
            if (
                validation is not None
                and not model.stop_training
                and validation_freq(epoch)
            ):
                val_logs = _evaluate(model, hooks, validation, "fit() validation")
                logs.update({"val_" + k: v for k, v in val_logs.items()})
                state.mode = "train"
            logs["learning_rate"] = model.optimizer.current_learning_rate  # type: ignore[union-attr]
            hooks.call(
                "on_epoch_end", epoch + 1, model=model, state=state, epoch=epoch, logs=logs
            )
            state.epochs_completed += 1
            epoch += 1


def _ran_out_of_data(epoch: int) -> Exception:
    return ConfigError(
        f"fit(): the training data yielded no batch in epoch {epoch}. A generator is "
        "exhausted after one pass: pass steps_per_epoch= and a generator that loops "
        "forever, or a re-iterable object (a list of batches, a Sequence)."
    )


def _evaluate(
    model: Sequential, hooks: HookDispatcher, data: Dataset, call: str
) -> dict[str, float]:
    state = model.state
    state.mode = "test"
    model.reset_metrics()
    means = _Means(model)
    batch_hooks = hooks.active("on_test_batch_begin"), hooks.active("on_test_batch_end")
    hooks.call("on_test_begin", model=model, state=state, logs={})
    for batch, (x, y, w) in enumerate(data.batches(0)):
        if batch == 0:
            _first_batch_check(model, x, y, call)
        if batch_hooks[0]:
            hooks.call(
                "on_test_batch_begin",
                batch + 1,
                model=model,
                state=state,
                batch=batch,
                logs={},
            )
        y = _targets(y, call)
        model.forward(x, training=False)
        loss = model.test_loss(y, w)
        model.update_metrics(y, w)
        means.add(loss, len(x))
        if batch_hooks[1]:
            hooks.call(
                "on_test_batch_end",
                batch + 1,
                model=model,
                state=state,
                batch=batch,
                logs=BatchLogs(means),
            )
    if means.count == 0:
        raise ConfigError(
            f"{call}: the data yielded no batch; there is nothing to evaluate."
        )
    logs = means.logs()
    hooks.call("on_test_end", model=model, state=state, logs=logs)
    return logs


def run_evaluate(
    model: Sequential, hooks: HookDispatcher, data: Dataset
) -> dict[str, float]:
    """Evaluate ``model`` on ``data``; return the means of the loss and metrics."""
    result: dict[str, float] = {}
    with _guard(model, hooks):
        result = _evaluate(model, hooks, data, "evaluate()")
    return result


def run_predict(model: Sequential, hooks: HookDispatcher, data: Dataset) -> Array:
    """Return the model's outputs for every batch of ``data``, concatenated."""
    state = model.state
    state.mode = "predict"
    outputs: list[Array] = []
    begin, end = (
        hooks.active("on_predict_batch_begin"),
        hooks.active("on_predict_batch_end"),
    )
    with _guard(model, hooks):
        hooks.call("on_predict_begin", model=model, state=state, logs={})
        for batch, (x, _, _) in enumerate(data.batches(0)):
            if batch == 0:
                _first_batch_check(model, x, None, "predict()")
            if begin:
                hooks.call(
                    "on_predict_batch_begin",
                    batch + 1,
                    model=model,
                    state=state,
                    batch=batch,
                    logs={},
                )
            out = model.forward(x, training=False)
            outputs.append(out.copy())
            if end:
                hooks.call(
                    "on_predict_batch_end",
                    batch + 1,
                    model=model,
                    state=state,
                    batch=batch,
                    logs={"outputs": out},
                )
        hooks.call("on_predict_end", model=model, state=state, logs={})
    if not outputs:
        raise ConfigError(
            "predict(): the data yielded no batch; there is nothing to predict."
        )
    return np.concatenate(outputs, axis=0)


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
