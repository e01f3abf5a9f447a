"""The fit, evaluate and predict loops: forward, loss, backward, step, and hooks between."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from loopkit.data import Batch, Dataset, check_sample_shape
from loopkit.loop_state import OptimizerStep
from loopkit.pluginmanager import HookDispatcher
from loopkit.typing import Array

if TYPE_CHECKING:
    from loopkit.model import Sequential

__all__ = ["run_evaluate", "run_fit", "run_predict"]


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


def _guard(model: Sequential, hooks: HookDispatcher, end: Callable[[], None]) -> Any:
    """Context for one loop: on error, fire ``on_exception`` then ``end``, then re-raise."""

    class Guard:
        def __enter__(self) -> None:
            model.state.exception = None
            model.state.hooks = hooks

        def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> bool:
            if error is None:
                end()
                return False
            model.state.exception = error
            for label, call in (
                ("on_exception", lambda: hooks.call(
                    "on_exception", model=model, state=model.state, exception=error)),
                ("the end hook", end),
            ):
                try:
                    call()
                except Exception as hook_error:  # keep the original error the one raised
                    error.add_note(f"loopkit: {label} also failed: {hook_error!r}")
            model.state.exception = None
            return False

    return Guard()


def _first_batch_check(model: Sequential, x: Array, call: str) -> None:
    model.ensure_built(x)
    assert model.input_shape is not None
    check_sample_shape(np.shape(x), model.input_shape, call)


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

    def end() -> None:
        hooks.call("on_train_end", model=model, state=state, logs=logs)

    with _guard(model, hooks, end):
        hooks.call("on_train_begin", model=model, state=state, logs={})
        epoch = initial_epoch if state.resume_epoch is None else state.resume_epoch
        state.resume_epoch = None
        while epoch < epochs and not model.stop_training:
            state.epoch, state.batch, state.mode = epoch, 0, "train"
            skip_batches, state.resume_batch = state.resume_batch, 0
            model.reset_metrics()
            means = _Means(model)
            hooks.call("on_epoch_begin", epoch + 1, model=model, state=state, epoch=epoch, logs={})
            for batch, (x, y, w) in enumerate(train.batches(epoch)):
                if batch < skip_batches:
                    continue  # resumed: done before the interruption
                if not model.built or state.global_step == 0:
                    _first_batch_check(model, x, "fit()")
                state.batch = batch
                event = state.global_step + 1
                if batch_begin:
                    hooks.call("on_train_batch_begin", event, model=model, state=state,
                               batch=batch, logs={})
                loss = model.compute_gradients(x, y, w)
                step = OptimizerStep(loss=loss, batch_size=len(x))
                if before_step:
                    hooks.call("on_before_optimizer_step", event, model=model, state=state,
                               step=step)
                if not step.skip:
                    model.apply_gradients()
                if after_step:
                    hooks.call("on_after_optimizer_step", event, model=model, state=state,
                               step=step)
                model.update_metrics(y, w)
                means.add(loss, len(x))
                state.global_step += 1
                if batch_end:
                    hooks.call("on_train_batch_end", event, model=model, state=state,
                               batch=batch, logs=means.logs())
                if model.stop_training:
                    break
            if means.count == 0 and skip_batches == 0:
                raise _ran_out_of_data(epoch)
            logs = means.logs()
            if validation is not None and not model.stop_training and validation_freq(epoch):
                val_logs = _evaluate(model, hooks, validation, "fit() validation")
                logs.update({"val_" + k: v for k, v in val_logs.items()})
                state.mode = "train"
            logs["learning_rate"] = model.optimizer.current_learning_rate  # type: ignore[union-attr]
            hooks.call("on_epoch_end", epoch + 1, model=model, state=state, epoch=epoch, logs=logs)
            state.epochs_completed += 1
            epoch += 1


def _ran_out_of_data(epoch: int) -> Exception:
    from loopkit.errors import ConfigError

    return ConfigError(
        f"fit(): the training data yielded no batch in epoch {epoch}. A generator is "
        "exhausted after one pass: pass steps_per_epoch= and a generator that loops "
        "forever, or a re-iterable object (a list of batches, a Sequence)."
    )


def _evaluate(model: Sequential, hooks: HookDispatcher, data: Dataset, call: str) -> dict[str, float]:
    state = model.state
    state.mode = "test"
    model.reset_metrics()
    means = _Means(model)
    batch_hooks = hooks.active("on_test_batch_begin"), hooks.active("on_test_batch_end")
    hooks.call("on_test_begin", model=model, state=state, logs={})
    for batch, (x, y, w) in enumerate(data.batches(0)):
        if batch == 0:
            _first_batch_check(model, x, call)
        if batch_hooks[0]:
            hooks.call("on_test_batch_begin", batch + 1, model=model, state=state, batch=batch,
                       logs={})
        model.forward(x, training=False)
        loss = model.test_loss(y, w)
        model.update_metrics(y, w)
        means.add(loss, len(x))
        if batch_hooks[1]:
            hooks.call("on_test_batch_end", batch + 1, model=model, state=state, batch=batch,
                       logs=means.logs())
    if means.count == 0:
        from loopkit.errors import ConfigError

        raise ConfigError(f"{call}: the data yielded no batch; there is nothing to evaluate.")
    logs = means.logs()
    hooks.call("on_test_end", model=model, state=state, logs=logs)
    return logs


def run_evaluate(model: Sequential, hooks: HookDispatcher, data: Dataset) -> dict[str, float]:
    """Evaluate ``model`` on ``data``; return the means of the loss and metrics."""
    result: dict[str, float] = {}
    with _guard(model, hooks, lambda: None):
        result = _evaluate(model, hooks, data, "evaluate()")
    return result


def run_predict(model: Sequential, hooks: HookDispatcher, data: Dataset) -> Array:
    """Return the model's outputs for every batch of ``data``, concatenated."""
    state = model.state
    state.mode = "predict"
    outputs: list[Array] = []
    begin, end = hooks.active("on_predict_batch_begin"), hooks.active("on_predict_batch_end")
    with _guard(model, hooks, lambda: None):
        hooks.call("on_predict_begin", model=model, state=state, logs={})
        for batch, (x, _, _) in enumerate(data.batches(0)):
            if batch == 0:
                _first_batch_check(model, x, "predict()")
            if begin:
                hooks.call("on_predict_batch_begin", batch + 1, model=model, state=state,
                           batch=batch, logs={})
            out = model.forward(x, training=False)
            outputs.append(out.copy())
            if end:
                hooks.call("on_predict_batch_end", batch + 1, model=model, state=state,
                           batch=batch, logs={"outputs": out})
        hooks.call("on_predict_end", model=model, state=state, logs={})
    if not outputs:
        from loopkit.errors import ConfigError

        raise ConfigError("predict(): the data yielded no batch; there is nothing to predict.")
    return np.concatenate(outputs, axis=0)


def iterate(batches: Iterator[Batch]) -> Iterator[Batch]:
    """Yield ``batches``: a seam for prefetching wrappers."""
    yield from batches


def validation_schedule(validation_freq: int | Mapping[Any, Any] | Any) -> Callable[[int], bool]:
    """Return whether to validate after epoch ``e`` (Keras: an int period or 1-based list)."""
    from loopkit.errors import ConfigError

    if isinstance(validation_freq, bool):
        raise ConfigError(f"fit() got validation_freq={validation_freq!r}; expected an int or a list.")
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
