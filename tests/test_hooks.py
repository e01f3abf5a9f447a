"""The hook contract in real fits: call order, arguments, control flow and failures."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import loopkit
from loopkit import ConfigError, History, Sequential, hookimpl, hookspecs
from loopkit.layers import Dense


@pytest.fixture
def data(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """12 training samples (3 batches of 4) and 8 validation samples (2 batches)."""
    return {
        "x": rng.normal(size=(12, 3)).astype(np.float32),
        "y": rng.normal(size=(12, 2)).astype(np.float32),
        "xv": rng.normal(size=(8, 3)).astype(np.float32),
        "yv": rng.normal(size=(8, 2)).astype(np.float32),
    }


def tiny_model(metrics: list[str] | None = None) -> Sequential:
    model = Sequential([Dense(4, input_shape=(3,)), Dense(2)])
    model.compile(optimizer="sgd", loss="mse", metrics=metrics or [])
    return model


def fit(model: Sequential, data: dict[str, np.ndarray], **kwargs: Any) -> History:
    kwargs.setdefault("validation_data", (data["xv"], data["yv"]))
    kwargs.setdefault("epochs", 2)
    return model.fit(data["x"], data["y"], batch_size=4, verbose=0, shuffle=False, **kwargs)


class Recorder:
    """Records every hook call as (hook, epoch or batch index, state.mode)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None]] = []
        self.modes: list[str] = []

    def _add(self, hook: str, index: int | None, state: Any) -> None:
        self.calls.append((hook, index))
        self.modes.append(state.mode)

    @hookimpl
    def on_train_begin(self, state: Any) -> None:
        self._add("on_train_begin", None, state)

    @hookimpl
    def on_train_end(self, state: Any) -> None:
        self._add("on_train_end", None, state)

    @hookimpl
    def on_epoch_begin(self, state: Any, epoch: int) -> None:
        self._add("on_epoch_begin", epoch, state)

    @hookimpl
    def on_epoch_end(self, state: Any, epoch: int) -> None:
        self._add("on_epoch_end", epoch, state)

    @hookimpl
    def on_train_batch_begin(self, state: Any, batch: int) -> None:
        self._add("on_train_batch_begin", batch, state)

    @hookimpl
    def on_before_optimizer_step(self, state: Any) -> None:
        self._add("on_before_optimizer_step", state.batch, state)

    @hookimpl
    def on_after_optimizer_step(self, state: Any) -> None:
        self._add("on_after_optimizer_step", state.batch, state)

    @hookimpl
    def on_train_batch_end(self, state: Any, batch: int) -> None:
        self._add("on_train_batch_end", batch, state)

    @hookimpl
    def on_test_begin(self, state: Any) -> None:
        self._add("on_test_begin", None, state)

    @hookimpl
    def on_test_batch_begin(self, state: Any, batch: int) -> None:
        self._add("on_test_batch_begin", batch, state)

    @hookimpl
    def on_test_batch_end(self, state: Any, batch: int) -> None:
        self._add("on_test_batch_end", batch, state)

    @hookimpl
    def on_test_end(self, state: Any) -> None:
        self._add("on_test_end", None, state)

    @hookimpl
    def on_predict_begin(self, state: Any) -> None:
        self._add("on_predict_begin", None, state)

    @hookimpl
    def on_predict_batch_begin(self, state: Any, batch: int) -> None:
        self._add("on_predict_batch_begin", batch, state)

    @hookimpl
    def on_predict_batch_end(self, state: Any, batch: int) -> None:
        self._add("on_predict_batch_end", batch, state)

    @hookimpl
    def on_predict_end(self, state: Any) -> None:
        self._add("on_predict_end", None, state)

    @hookimpl
    def on_exception(self, state: Any) -> None:
        self._add("on_exception", None, state)


def train_batch(b: int) -> list[tuple[str, int | None]]:
    return [
        ("on_train_batch_begin", b),
        ("on_before_optimizer_step", b),
        ("on_after_optimizer_step", b),
        ("on_train_batch_end", b),
    ]


VALIDATION = [
    ("on_test_begin", None),
    ("on_test_batch_begin", 0),
    ("on_test_batch_end", 0),
    ("on_test_batch_begin", 1),
    ("on_test_batch_end", 1),
    ("on_test_end", None),
]


# --- call order -----------------------------------------------------------------------


def test_fit_with_validation_calls_every_hook_in_keras_order(data: dict) -> None:
    recorder = Recorder()
    fit(tiny_model(), data, plugins=[recorder])
    epoch_0 = [("on_epoch_begin", 0), *train_batch(0), *train_batch(1), *train_batch(2)]
    epoch_1 = [("on_epoch_begin", 1), *train_batch(0), *train_batch(1), *train_batch(2)]
    expected = [
        ("on_train_begin", None),
        *epoch_0,
        *VALIDATION,
        ("on_epoch_end", 0),
        *epoch_1,
        *VALIDATION,
        ("on_epoch_end", 1),
        ("on_train_end", None),
    ]
    assert recorder.calls == expected


def test_validation_hooks_run_in_test_mode_and_the_rest_in_train_mode(data: dict) -> None:
    recorder = Recorder()
    fit(tiny_model(), data, plugins=[recorder], epochs=1)
    for (hook, _), mode in zip(recorder.calls, recorder.modes, strict=True):
        assert mode == ("test" if hook.startswith("on_test") else "train"), hook


def test_evaluate_calls_the_test_hooks_in_order(data: dict) -> None:
    recorder = Recorder()
    tiny_model().evaluate(
        data["xv"], data["yv"], batch_size=4, verbose=0, plugins=[recorder]
    )
    assert recorder.calls == VALIDATION
    assert set(recorder.modes) == {"test"}


def test_predict_calls_the_predict_hooks_in_order(data: dict) -> None:
    recorder = Recorder()
    tiny_model().predict(data["x"], batch_size=4, verbose=0, plugins=[recorder])
    assert recorder.calls == [
        ("on_predict_begin", None),
        ("on_predict_batch_begin", 0),
        ("on_predict_batch_end", 0),
        ("on_predict_batch_begin", 1),
        ("on_predict_batch_end", 1),
        ("on_predict_batch_begin", 2),
        ("on_predict_batch_end", 2),
        ("on_predict_end", None),
    ]
    assert set(recorder.modes) == {"predict"}


# --- arguments ------------------------------------------------------------------------


class ArgumentRecorder:
    """Keeps copies of the logs and steps each hook receives."""

    def __init__(self) -> None:
        self.begin_logs: list[dict] = []
        self.end_logs: list[dict] = []
        self.epoch_logs: list[tuple[int, dict]] = []
        self.batch_logs: list[dict] = []
        self.step_losses: list[float] = []
        self.test_batch_logs: list[dict] = []
        self.test_end_logs: list[dict] = []
        self.models: set[int] = set()
        self.global_steps: list[int] = []

    @hookimpl
    def on_train_begin(self, model: Sequential, logs: dict) -> None:
        self.models.add(id(model))
        self.begin_logs.append(dict(logs))

    @hookimpl
    def on_train_end(self, model: Sequential, logs: dict) -> None:
        self.models.add(id(model))
        self.end_logs.append(dict(logs))

    @hookimpl
    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.epoch_logs.append((epoch, dict(logs)))

    @hookimpl
    def on_before_optimizer_step(self, step: Any) -> None:
        self.step_losses.append(step.loss)

    @hookimpl
    def on_train_batch_end(self, state: Any, logs: dict) -> None:
        self.batch_logs.append(dict(logs))
        self.global_steps.append(state.global_step)

    @hookimpl
    def on_test_batch_end(self, logs: dict) -> None:
        self.test_batch_logs.append(dict(logs))

    @hookimpl
    def on_test_end(self, logs: dict) -> None:
        self.test_end_logs.append(dict(logs))


def test_epoch_end_logs_hold_metrics_validation_keys_and_learning_rate(data: dict) -> None:
    seen = ArgumentRecorder()
    model = tiny_model(metrics=["mae"])
    fit(model, data, plugins=[seen])
    assert [epoch for epoch, _ in seen.epoch_logs] == [0, 1]
    for _, logs in seen.epoch_logs:
        assert set(logs) == {"loss", "mae", "val_loss", "val_mae", "learning_rate"}
        assert logs["learning_rate"] == pytest.approx(0.01)  # Keras's SGD default
    # val_loss is the plain MSE of the final weights on the validation data.
    error = model.predict(data["xv"], verbose=0) - data["yv"]
    assert seen.epoch_logs[-1][1]["val_loss"] == pytest.approx(np.mean(error**2), rel=1e-5)
    assert seen.epoch_logs[-1][1]["val_mae"] == pytest.approx(
        np.mean(np.abs(error)), rel=1e-5
    )


def test_batch_logs_are_running_means_of_the_step_losses(data: dict) -> None:
    seen = ArgumentRecorder()
    fit(tiny_model(metrics=["mae"]), data, plugins=[seen], epochs=1)
    assert [set(logs) for logs in seen.batch_logs] == [{"loss", "mae"}] * 3
    for b, logs in enumerate(seen.batch_logs):  # equal batches: the plain mean
        assert logs["loss"] == pytest.approx(np.mean(seen.step_losses[: b + 1]), rel=1e-6)
    assert seen.epoch_logs[0][1]["loss"] == pytest.approx(seen.batch_logs[-1]["loss"])
    assert [set(logs) for logs in seen.test_batch_logs] == [{"loss", "mae"}] * 2
    assert seen.test_end_logs[0]["loss"] == pytest.approx(seen.epoch_logs[0][1]["val_loss"])


def test_train_begin_gets_empty_logs_and_train_end_the_last_epoch_logs(data: dict) -> None:
    seen = ArgumentRecorder()
    model = tiny_model()
    fit(model, data, plugins=[seen])
    assert seen.begin_logs == [{}]
    assert seen.end_logs == [seen.epoch_logs[-1][1]]
    assert seen.models == {id(model)}


def test_global_step_counts_training_batches_across_fits(data: dict) -> None:
    seen = ArgumentRecorder()
    model = tiny_model()
    fit(model, data, plugins=[seen])
    fit(model, data, plugins=[seen], epochs=1)
    assert seen.global_steps == [1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_predict_batch_end_logs_hold_the_batch_outputs(data: dict) -> None:
    outputs: list[np.ndarray] = []

    class Outputs:
        @hookimpl
        def on_predict_batch_end(self, logs: dict) -> None:
            outputs.append(logs["outputs"].copy())

    model = tiny_model()
    predicted = model.predict(data["x"], batch_size=4, verbose=0, plugins=[Outputs()])
    assert [o.shape for o in outputs] == [(4, 2)] * 3
    np.testing.assert_array_equal(np.concatenate(outputs), predicted)
    w1, b1, w2, b2 = model.get_weights()  # the same outputs, computed independently
    np.testing.assert_allclose(predicted, (data["x"] @ w1 + b1) @ w2 + b2, rtol=1e-5)


# --- control flow ---------------------------------------------------------------------


class StopAt:
    """Sets model.stop_training in on_train_batch_end of one epoch and batch."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.at = (epoch, batch)

    @hookimpl
    def on_train_batch_end(self, model: Sequential, state: Any, batch: int) -> None:
        if (state.epoch, batch) == self.at:
            model.stop_training = True


def test_stop_training_in_a_batch_ends_fit_after_that_batch(data: dict) -> None:
    recorder = Recorder()
    model = tiny_model()
    history = fit(model, data, plugins=[StopAt(0, 1), recorder], epochs=3)
    assert recorder.calls == [
        ("on_train_begin", None),
        ("on_epoch_begin", 0),
        *train_batch(0),
        *train_batch(1),
        *VALIDATION,  # as in Keras, the stopped epoch still validates
        ("on_epoch_end", 0),
        ("on_train_end", None),
    ]
    assert history.epoch == [0]
    assert model.state.global_step == 2


def test_stop_training_is_reset_by_the_next_fit(data: dict) -> None:
    model = tiny_model()
    fit(model, data, plugins=[StopAt(0, 0)])
    recorder = Recorder()
    fit(model, data, plugins=[recorder], epochs=1)
    assert recorder.calls.count(("on_train_batch_end", 2)) == 1


def test_skipping_the_step_leaves_the_weights_unchanged(data: dict) -> None:
    skipped: list[bool] = []

    class Skip:
        @hookimpl
        def on_before_optimizer_step(self, step: Any) -> None:
            step.skip = True

        @hookimpl
        def on_after_optimizer_step(self, step: Any) -> None:
            skipped.append(step.skip)

    model = tiny_model()
    model.build((None, 3))
    before = model.flat_weights.copy()
    fit(model, data, plugins=[Skip()])
    np.testing.assert_array_equal(model.flat_weights, before)
    assert skipped == [True] * 6
    fit(model, data, epochs=1)  # without the plugin the same fit moves the weights
    assert not np.array_equal(model.flat_weights, before)


def one_step_models(data: dict) -> tuple[Sequential, Sequential, np.ndarray]:
    first, second = tiny_model(), tiny_model()
    first.build((None, 3))
    second.build((None, 3))
    second.set_weights(first.get_weights())
    return first, second, first.flat_weights.copy()


def test_a_plugin_scaling_the_gradients_scales_the_sgd_update(data: dict) -> None:
    class Double:
        @hookimpl
        def on_before_optimizer_step(self, model: Sequential) -> None:
            grads = model.flat_gradients  # a view: scaling it in place is the point
            grads *= 2.0

    plain, doubled, start = one_step_models(data)
    one_batch = {"batch_size": 12, "epochs": 1, "verbose": 0, "shuffle": False}
    plain.fit(data["x"], data["y"], **one_batch)
    doubled.fit(data["x"], data["y"], plugins=[Double()], **one_batch)
    # SGD without momentum: w1 - w0 = -lr * g, so doubling g doubles the update.
    np.testing.assert_allclose(
        doubled.flat_weights - start,
        2.0 * (plain.flat_weights - start),
        rtol=1e-5,
        atol=1e-7,
    )


def test_a_plugin_zeroing_the_gradients_freezes_the_weights(data: dict) -> None:
    class Zero:
        @hookimpl
        def on_before_optimizer_step(self, model: Sequential) -> None:
            model.flat_gradients[:] = 0.0

    model, _, start = one_step_models(data)
    fit(model, data, plugins=[Zero()])
    np.testing.assert_array_equal(model.flat_weights, start)


# --- failures -------------------------------------------------------------------------


class FailureRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.exceptions: list[BaseException] = []
        self.state_exceptions: list[BaseException | None] = []

    @hookimpl
    def on_exception(self, state: Any, exception: BaseException) -> None:
        self._add("on_exception", None, state)
        self.exceptions.append(exception)

    @hookimpl
    def on_train_end(self, state: Any) -> None:
        self._add("on_train_end", None, state)
        self.state_exceptions.append(state.exception)


class Boom(RuntimeError):
    pass


def test_an_error_in_a_plugin_fires_on_exception_then_on_train_end(data: dict) -> None:
    class Explode:
        @hookimpl
        def on_train_batch_end(self, state: Any, batch: int) -> None:
            if (state.epoch, batch) == (0, 1):
                raise Boom("plugin failed")

    recorder = FailureRecorder()
    model = tiny_model()
    with pytest.raises(Boom, match="plugin failed") as caught:
        fit(model, data, plugins=[recorder, Explode()])
    assert recorder.calls[-4:] == [
        ("on_after_optimizer_step", 1),
        ("on_train_batch_end", 1),
        ("on_exception", None),
        ("on_train_end", None),
    ]
    assert recorder.exceptions == [caught.value]
    assert recorder.state_exceptions == [caught.value]
    assert model.state.exception is None
    assert model.state.hooks is None


def test_an_error_in_the_data_mid_epoch_fires_on_exception_then_on_train_end(
    data: dict,
) -> None:
    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield data["x"][:4], data["y"][:4]
        raise Boom("data source failed")

    recorder = FailureRecorder()
    with pytest.raises(Boom, match="data source failed"):
        tiny_model().fit(batches(), epochs=1, verbose=0, plugins=[recorder])
    assert recorder.calls[-3:] == [
        ("on_train_batch_end", 0),
        ("on_exception", None),
        ("on_train_end", None),
    ]


def test_a_keyboard_interrupt_also_fires_on_exception_then_on_train_end(data: dict) -> None:
    class CtrlC:
        @hookimpl
        def on_epoch_end(self) -> None:
            raise KeyboardInterrupt

    recorder = FailureRecorder()
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), data, plugins=[recorder, CtrlC()])
    assert [call for call, _ in recorder.calls][-3:] == [
        "on_epoch_end",
        "on_exception",
        "on_train_end",
    ]
    assert isinstance(recorder.exceptions[0], KeyboardInterrupt)


def test_a_failing_on_exception_does_not_hide_the_original_error(data: dict) -> None:
    class Broken:
        @hookimpl
        def on_train_begin(self) -> None:
            raise Boom("original")

        @hookimpl
        def on_exception(self) -> None:
            raise ValueError("cleanup failed")

    recorder = FailureRecorder()
    with pytest.raises(Boom, match="original") as caught:
        fit(tiny_model(), data, plugins=[Broken(), recorder])
    assert any("broken.on_exception also failed" in n for n in caught.value.__notes__)
    assert any("cleanup failed" in note for note in caught.value.__notes__)
    # Broken ran first and failed; the recorder after it still flushes and closes.
    assert [call for call, _ in recorder.calls] == ["on_exception", "on_train_end"]


def test_an_error_in_on_train_end_after_a_clean_fit_fires_on_exception(data: dict) -> None:
    class FailAtEnd:
        @hookimpl
        def on_train_end(self) -> None:
            raise Boom("flush failed")

    recorder = FailureRecorder()
    with pytest.raises(Boom, match="flush failed") as caught:
        fit(tiny_model(), data, plugins=[FailAtEnd(), recorder], epochs=1)
    # The recorder after the failing plugin still gets on_train_end, then on_exception.
    assert [call for call, _ in recorder.calls][-2:] == ["on_train_end", "on_exception"]
    assert recorder.exceptions == [caught.value]


def test_evaluate_and_predict_fire_on_exception_on_failure(data: dict) -> None:
    class Explode:
        @hookimpl
        def on_test_batch_end(self) -> None:
            raise Boom("in evaluate")

        @hookimpl
        def on_predict_batch_end(self) -> None:
            raise Boom("in predict")

    recorder = FailureRecorder()
    model = tiny_model()
    with pytest.raises(Boom, match="in evaluate"):
        model.evaluate(data["xv"], data["yv"], verbose=0, plugins=[Explode(), recorder])
    with pytest.raises(Boom, match="in predict"):
        model.predict(data["xv"], verbose=0, plugins=[Explode(), recorder])
    assert [str(e) for e in recorder.exceptions] == ["in evaluate", "in predict"]


def test_fit_on_a_generator_without_targets_names_the_fix() -> None:
    def inputs_only() -> Iterator[np.ndarray]:
        yield np.zeros((4, 3), np.float32)

    with pytest.raises(
        ConfigError, match=r"fit\(\): a batch .* has no targets; yield \(x, y\)"
    ):
        tiny_model().fit(inputs_only(), epochs=1, verbose=0)


# --- Keras callbacks ------------------------------------------------------------------


class KerasStyle:
    """A callback written for Keras: plain methods, logs=None, set_model, set_params."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict | None = None
        self.events: list[tuple[str, Any]] = []

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None):  # as Keras users write it
        self.events.append(("train_begin", logs))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, sorted(logs)))
        if epoch == 1:
            self.model.stop_training = True

    def on_batch_end(self, batch, logs=None):
        self.events.append(("batch_end", batch))

    def on_test_end(self, logs=None):
        self.events.append(("test_end", sorted(logs)))


def test_a_keras_callback_class_runs_unchanged(data: dict) -> None:
    callback = KerasStyle()
    model = tiny_model()
    history = fit(model, data, callbacks=[callback], epochs=5)
    assert callback.model is model
    assert callback.params == {"verbose": 0, "epochs": 5, "steps": 3}
    keys = ["learning_rate", "loss", "val_loss"]
    assert callback.events == [
        ("train_begin", {}),
        ("batch_end", 0),
        ("batch_end", 1),
        ("batch_end", 2),
        ("test_end", ["loss"]),
        ("epoch_end", 0, keys),
        ("batch_end", 0),
        ("batch_end", 1),
        ("batch_end", 2),
        ("test_end", ["loss"]),
        ("epoch_end", 1, keys),
    ]
    assert history.epoch == [0, 1]  # stopped by self.model.stop_training


def test_keras_style_methods_with_loopkit_argument_names_are_called_by_name(
    data: dict,
) -> None:
    seen: list[Any] = []

    class Plain:
        def on_train_end(self) -> None:
            seen.append("end")

        def on_before_optimizer_step(self, model: Sequential, step: Any) -> None:
            seen.append((type(model).__name__, step.batch_size))

    fit(tiny_model(), data, plugins=[Plain()], epochs=1)
    assert seen == [("Sequential", 4)] * 3 + ["end"]


def test_keras_on_train_batch_end_wins_over_its_alias_on_batch_end(data: dict) -> None:
    seen: list[str] = []

    class Both:
        def on_batch_end(self, batch, logs=None):
            seen.append("alias")

        def on_train_batch_end(self, batch, logs=None):
            seen.append("explicit")

    fit(tiny_model(), data, plugins=[Both()], epochs=1)
    assert seen == ["explicit"] * 3


# --- History and log keys -------------------------------------------------------------


def test_fit_returns_a_history_of_every_epoch_and_sets_model_history(data: dict) -> None:
    seen = ArgumentRecorder()
    model = tiny_model(metrics=["mae"])
    history = fit(model, data, plugins=[seen])
    assert isinstance(history, History)
    assert model.history is history
    assert history.epoch == [0, 1]
    assert history.params == {"verbose": 0, "epochs": 2, "steps": 3}
    assert history.model is model
    for key in ("loss", "mae", "val_loss", "val_mae", "learning_rate"):
        assert history.history[key] == [logs[key] for _, logs in seen.epoch_logs]
    second = fit(model, data, epochs=1)
    assert model.history is second
    assert second.epoch == [0]


def test_history_pads_epochs_without_validation_with_nan(data: dict) -> None:
    history = fit(tiny_model(), data, epochs=3, validation_freq=2)
    assert len(history.history["loss"]) == 3
    val = history.history["val_loss"]
    assert np.isnan(val[0]) and np.isfinite(val[1]) and np.isnan(val[2])


def test_history_state_dict_round_trips() -> None:
    history = History()
    history.on_epoch_end(epoch=0, logs={"loss": 1.0})
    history.on_epoch_end(epoch=1, logs={"loss": 0.5, "val_loss": 0.7})
    restored = History()
    restored.load_state_dict(history.state_dict())
    assert restored.epoch == [0, 1]
    assert restored.history["loss"] == [1.0, 0.5]
    assert np.isnan(restored.history["val_loss"][0])
    assert restored.history["val_loss"][1] == 0.7


def test_a_plugin_needing_a_missing_log_key_fails_before_the_first_step(data: dict) -> None:
    class NeedsValidation:
        required_log_keys = ("val_loss",)

        @hookimpl
        def on_train_batch_begin(self) -> None:
            raise AssertionError("no step may run")

    model = tiny_model()
    with pytest.raises(ConfigError, match=r"needs the log key\(s\) \['val_loss'\].*'loss'"):
        model.fit(data["x"], data["y"], epochs=1, verbose=0, plugins=[NeedsValidation()])
    assert model.state.global_step == 0


def test_a_key_provided_by_another_plugin_satisfies_a_requirement(data: dict) -> None:
    class Needs:
        required_log_keys = ("grad_norm",)

        @hookimpl
        def on_epoch_end(self, logs: dict) -> None:
            assert "grad_norm" in logs

    class Provides:
        provided_log_keys = ("grad_norm",)
        order = -10

        @hookimpl
        def on_epoch_end(self, logs: dict) -> None:
            logs["grad_norm"] = 1.0

    history = fit(tiny_model(), data, plugins=[Needs(), Provides()], epochs=1)
    assert history.history["grad_norm"] == [1.0]


# --- state.hooks ----------------------------------------------------------------------


def test_state_hooks_is_the_runs_dispatcher_and_survives_a_nested_evaluate(
    data: dict,
) -> None:
    seen: list[bool] = []

    class Nested:
        @hookimpl
        def on_epoch_end(self, model: Sequential, state: Any) -> None:
            outer = state.hooks
            assert self in outer.originals()
            model.evaluate(data["xv"], data["yv"], verbose=0)
            seen.append(state.hooks is outer)

    model = tiny_model()
    fit(model, data, plugins=[Nested()])
    assert seen == [True, True]
    assert model.state.hooks is None


def test_hook_arguments_are_documented_in_every_spec() -> None:
    for name in loopkit.HOOK_NAMES:
        spec = getattr(hookspecs, name)
        doc = inspect.getdoc(spec) or ""
        for argument in inspect.signature(spec).parameters:
            assert f"{argument}:" in doc, (name, argument)


def test_keras_callbacks_get_set_model_and_set_params_in_evaluate_and_predict() -> None:
    import loopkit as lk
    from loopkit.layers import Dense

    class KerasStyle:
        def set_model(self, model):
            self.model = model

        def set_params(self, params):
            self.params = params

        def on_test_end(self, logs=None):
            self.seen_test = self.model.count_params()

        def on_predict_end(self, logs=None):
            self.seen_predict = self.params["steps"]

    model = lk.Sequential([Dense(1, input_dim=2)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((6, 2), np.float32)
    callback = KerasStyle()
    model.evaluate(x, x[:, :1], batch_size=3, verbose=0, callbacks=[callback])
    assert callback.seen_test == 3
    model.predict(x, batch_size=2, verbose=0, callbacks=[callback])
    assert callback.seen_predict == 3


def test_batch_logs_are_computed_only_when_a_plugin_reads_them() -> None:
    import loopkit as lk
    from loopkit.layers import Dense

    calls = {"n": 0}

    class CountingAccuracy(lk.metrics.SparseCategoricalAccuracy):
        def result(self) -> float:
            calls["n"] += 1
            return super().result()

    model = lk.Sequential([Dense(2, activation="softmax", input_dim=3)])
    model.compile(
        optimizer="sgd",
        loss="sparse_categorical_crossentropy",
        metrics=[CountingAccuracy(name="accuracy")],
    )
    seen = []

    class EveryFourth:
        @lk.hookimpl
        def on_train_batch_end(self, batch, logs):
            if batch % 4 == 3:
                seen.append((logs["loss"], logs.get("accuracy"), dict(logs)))

    x = np.random.default_rng(0).standard_normal((64, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model.fit(
        x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, plugins=[EveryFourth()]
    )
    # 16 batches, logs read on 4 of them, plus the epoch-end logs: 5 metric results
    assert calls["n"] == 5
    assert len(seen) == 4
    assert all(set(d) == {"loss", "accuracy"} and d["loss"] == loss for loss, _, d in seen)
