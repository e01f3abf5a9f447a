"""loopkit.callbacks as Keras users call it: Keras's documented examples and test values.

Where a test says "Keras's test", its setup and expected value come from
keras/src/callbacks/*_test.py (Keras 3); "Keras's docs" from the callback's docstring.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loopkit as lk
from loopkit import callbacks
from loopkit.layers import Dense
from loopkit.plugins import (
    BackupAndRestore,
    CSVLogger,
    EarlyStopping,
    LambdaPlugin,
    LearningRateScheduler,
    ModelCheckpoint,
    ProgressBar,
    ReduceLROnPlateau,
    TensorBoard,
    TerminateOnNaN,
)


@pytest.fixture
def keras_data() -> dict[str, np.ndarray]:
    """Keras's ``get_test_data(10, 10, input_shape=(3,), num_classes=2)``, one-hot."""
    rng = np.random.default_rng(1337)
    labels = rng.integers(0, 2, size=20)
    return {
        "x": rng.random((10, 3)),
        "y": np.eye(2)[labels[:10]],
        "x_val": rng.random((10, 3)),
        "y_val": np.eye(2)[labels[10:]],
    }


def keras_model(optimizer: Any) -> lk.Sequential:
    lk.set_random_seed(0)
    model = lk.Sequential([Dense(5), Dense(2)])
    model.compile(loss="mse", optimizer=optimizer)
    return model


# --- the module -----------------------------------------------------------------------


def test_every_built_in_plugin_is_there_under_its_keras_name() -> None:
    assert callbacks.Callback is lk.Plugin
    assert callbacks.LambdaCallback is LambdaPlugin
    assert callbacks.ProgbarLogger is ProgressBar
    assert callbacks.History is lk.History
    named = {
        "BackupAndRestore": BackupAndRestore,
        "CSVLogger": CSVLogger,
        "EarlyStopping": EarlyStopping,
        "LearningRateScheduler": LearningRateScheduler,
        "ModelCheckpoint": ModelCheckpoint,
        "ReduceLROnPlateau": ReduceLROnPlateau,
        "TensorBoard": TensorBoard,
        "TerminateOnNaN": TerminateOnNaN,
    }
    for name, cls in named.items():
        assert getattr(callbacks, name) is cls
    assert set(callbacks.__all__) == {
        *named,
        "Callback",
        "CallbackList",
        "History",
        "LambdaCallback",
        "ProgbarLogger",
    }
    with pytest.raises(AttributeError, match="has no attribute 'RemoteMonitor'"):
        callbacks.RemoteMonitor  # noqa: B018


def test_the_everyday_keras_callback_subclass_stops_training(keras_data) -> None:
    class StopAt2(callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch == 1:
                self.model.stop_training = True

    model = keras_model("sgd")
    stopper = StopAt2()
    history = model.fit(
        keras_data["x"], keras_data["y"], epochs=10, verbose=0, callbacks=[stopper]
    )
    assert history.epoch == [0, 1]
    assert stopper.model is model
    assert stopper.params["epochs"] == 10


def test_a_callback_subclass_implements_only_what_it_overrides() -> None:
    class OnBatch(callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[int] = []

        def on_batch_end(self, batch: int, logs: Any = None) -> None:
            self.batches.append(batch)

    model = keras_model("sgd")
    loop = model.show_loop(plugins=[OnBatch()])
    assert "on_train_batch_end: on_batch" in loop
    assert "on_epoch_end: history" in loop  # the empty methods are no hooks
    direct = OnBatch()
    direct.on_train_batch_end(4)  # Keras's base calls the alias
    assert direct.batches == [4]


# --- EarlyStopping --------------------------------------------------------------------


@pytest.mark.parametrize("patience", [0, 1, 2, 3])
def test_early_stopping_patience_by_hand_as_in_keras_test(patience: int) -> None:
    losses = [10.0, 9.0, 8.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5]
    stopper = callbacks.EarlyStopping(monitor="loss", patience=patience)
    stopper.set_model(keras_model("sgd"))
    stopper.on_train_begin()
    for epoch, loss in enumerate(losses):
        stopper.on_epoch_end(epoch=epoch, logs={"loss": loss})
        if stopper.model.stop_training:
            break
    assert stopper.stopped_epoch == max(patience, 1) + 2  # Keras's expected value


def _restoring_run(stopper: EarlyStopping, losses: list[float], stop_at: int = -1) -> int:
    """Keras's restore test, by hand: the weights hold the epoch number."""
    model = keras_model("sgd")
    model.build((None, 3))
    stopper.set_model(model)
    stopper.on_train_begin()
    epochs_trained = 0
    for epoch, loss in enumerate(losses):
        epochs_trained += 1
        model.flat_weights[:] = epoch
        stopper.on_epoch_end(epoch, logs={"val_loss": loss})
        if epoch == stop_at:
            model.stop_training = True
        if model.stop_training:
            break
    stopper.on_train_end()
    assert np.all(model.flat_weights == 2)  # Keras's expected value: epoch 2's weights
    return epochs_trained


def test_early_stopping_restores_the_best_weights_as_in_keras_test() -> None:
    stopper = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    _restoring_run(stopper, [0.2, 0.15, 0.1, 0.11, 0.12])
    # No epoch beats the baseline: 5 epochs (patience), epoch 2's weights.
    losses = [0.9, 0.8, 0.7, 0.71, 0.72, 0.73]
    stopper = callbacks.EarlyStopping(patience=5, baseline=0.5, restore_best_weights=True)
    assert _restoring_run(stopper, losses) == 5
    # Another callback stops at epoch 3: epoch 2's weights still.
    stopper = callbacks.EarlyStopping(patience=5, baseline=0.5, restore_best_weights=True)
    assert _restoring_run(stopper, losses, stop_at=3) == 4


def test_early_stopping_best_is_settable_and_a_new_fit_resets_it() -> None:
    stopper = callbacks.EarlyStopping(monitor="loss", patience=3)
    stopper.set_model(keras_model("sgd"))
    stopper.on_train_begin()
    stopper.best = 0.1  # as Keras's test_state_reset_across_fit_calls
    stopper.on_epoch_end(0, {"loss": 0.2})
    assert stopper.wait == 1  # 0.2 does not beat the best set by hand
    stopper.on_train_begin()
    assert (stopper.best, stopper.wait, stopper.best_epoch) == (math.inf, 0, 0)


# --- ModelCheckpoint ------------------------------------------------------------------


def test_model_checkpoint_best_is_settable_and_by_hand_saves_on_improvement(
    tmp_path: Path,
) -> None:
    model = keras_model("sgd")
    model.build((None, 3))
    checkpoint = callbacks.ModelCheckpoint(
        str(tmp_path / "best.weights.npz"),
        save_best_only=True,
        save_weights_only=True,
        background=False,
    )
    checkpoint.set_model(model)
    checkpoint.best = 0.5
    checkpoint.on_epoch_end(0, {"val_loss": 0.6})
    assert not (tmp_path / "best.weights.npz").exists()
    checkpoint.on_epoch_end(1, {"val_loss": 0.4})
    assert (tmp_path / "best.weights.npz").exists() and checkpoint.best == 0.4


# --- ReduceLROnPlateau (Keras's reduce_lr_on_plateau_test.py) -------------------------


def fit_with(model: lk.Sequential, data: dict, plugin: Any, epochs: int) -> None:
    model.fit(
        data["x"],
        data["y"],
        validation_data=(data["x_val"], data["y_val"]),
        callbacks=[plugin],
        epochs=epochs,
        verbose=0,
    )


def test_reduce_lr_on_plateau_reduces_lr_with_model_fit(keras_data, capsys) -> None:
    model = keras_model(lk.optimizers.Adam(0.1))
    reduce_lr = callbacks.ReduceLROnPlateau(
        patience=1, factor=0.1, monitor="val_loss", min_delta=100, verbose=1
    )
    fit_with(model, keras_data, reduce_lr, epochs=2)
    assert model.optimizer.learning_rate == pytest.approx(0.01, rel=1e-6)
    assert "ReduceLROnPlateau reducing learning rate to 0.01" in capsys.readouterr().out


def test_reduce_lr_on_plateau_honors_min_lr(keras_data) -> None:
    model = keras_model(lk.optimizers.Adam(0.1))
    reduce_lr = callbacks.ReduceLROnPlateau(
        patience=1, factor=0.1, monitor="val_loss", min_delta=10, min_lr=0.005
    )
    fit_with(model, keras_data, reduce_lr, epochs=4)
    assert model.optimizer.learning_rate == pytest.approx(0.005, rel=1e-6)


def test_reduce_lr_on_plateau_cooldown(keras_data) -> None:
    model = keras_model(lk.optimizers.Adam(0.1))
    reduce_lr = callbacks.ReduceLROnPlateau(
        patience=1, factor=0.1, monitor="val_loss", min_delta=100, cooldown=2
    )
    fit_with(model, keras_data, reduce_lr, epochs=4)
    # "With a cooldown of 2 epochs, we should only reduce the LR every other epoch,
    # so after 4 epochs we will have reduced 2 times."
    assert model.optimizer.learning_rate == pytest.approx(0.001, rel=1e-6)


def test_reduce_lr_on_plateau_state_resets_across_fit_calls() -> None:
    reduce_lr = callbacks.ReduceLROnPlateau(
        patience=1, factor=0.1, monitor="loss", min_delta=0, cooldown=2
    )
    reduce_lr.set_model(keras_model("sgd"))
    reduce_lr.on_train_begin()
    reduce_lr.best, reduce_lr.wait, reduce_lr.cooldown_counter = 0.5, 3, 2
    reduce_lr.on_train_begin()
    # Keras's best is None after the reset; loopkit's is the value to beat, +inf.
    assert (reduce_lr.best, reduce_lr.wait, reduce_lr.cooldown_counter) == (math.inf, 0, 0)


# --- LearningRateScheduler ------------------------------------------------------------


def test_learning_rate_scheduler_keras_docs_example() -> None:
    def scheduler(epoch: int, lr: float) -> float:
        return lr if epoch < 10 else lr * math.exp(-0.1)

    # Keras's example has Dense(10) with targets of shape (5,), which its mse
    # broadcasts; loopkit's losses refuse the mismatch, so one unit here. Its inputs
    # (0..99) make SGD diverge to overflow; scaled, the rates are the same.
    model = lk.Sequential([Dense(1)])
    model.compile(lk.optimizers.SGD(), loss="mse")
    assert round(model.optimizer.learning_rate, 5) == 0.01
    callback = callbacks.LearningRateScheduler(scheduler)
    model.fit(
        np.arange(100).reshape(5, 20) / 100,
        np.zeros(5),
        epochs=15,
        callbacks=[callback],
        verbose=0,
    )
    assert round(model.optimizer.learning_rate, 5) == 0.00607


def test_learning_rate_scheduler_keras_tests(keras_data) -> None:
    model = keras_model("sgd")
    model.fit(
        keras_data["x"],
        keras_data["y"],
        epochs=1,
        verbose=0,
        callbacks=[callbacks.LearningRateScheduler(lambda step: 1.0 / (2.0 + step))],
    )
    assert model.optimizer.learning_rate == 0.5
    model = keras_model(lk.optimizers.Adam(0.03))
    model.fit(
        keras_data["x"],
        keras_data["y"],
        epochs=2,
        verbose=0,
        callbacks=[callbacks.LearningRateScheduler(lambda step, lr: lr / 2)],
    )
    assert model.optimizer.learning_rate == pytest.approx(0.03 / 4.0, rel=1e-12)


# --- TerminateOnNaN (Keras's terminate_on_nan_test.py) --------------------------------


def test_terminate_on_nan_stops_gracefully_by_default() -> None:
    model = lk.Sequential([Dense(1, input_shape=(1,))])
    model.compile(optimizer="sgd", loss="mse")
    x, y = (
        np.array([[1.0], [2.0]]),
        np.array([[1e30], [1e30]]),
    )  # Keras uses inf; loopkit refuses inf data, 1e30 overflows the loss
    with (
        np.errstate(all="ignore"),
        pytest.warns(lk.LoopkitWarning, match="invalid loss, terminating training"),
    ):
        history = model.fit(
            x,
            y,
            epochs=2,
            batch_size=1,
            verbose=0,
            callbacks=[callbacks.TerminateOnNaN(raise_error=False)],
        )
    assert len(history.history["loss"]) < 4


def test_terminate_on_nan_raise_error_raises_before_the_update() -> None:
    model = lk.Sequential([Dense(1, input_shape=(1,))])
    model.compile(optimizer="sgd", loss="mse")
    before = model.flat_weights.copy()
    x, y = (
        np.array([[1.0], [2.0]]),
        np.array([[1e30], [1e30]]),
    )  # Keras uses inf; loopkit refuses inf data, 1e30 overflows the loss
    with (
        np.errstate(all="ignore"),
        pytest.raises(
            RuntimeError, match=r"NaN or Inf loss encountered at epoch 0, batch 0"
        ),
    ):
        model.fit(
            x,
            y,
            epochs=1,
            batch_size=1,
            verbose=0,
            callbacks=[callbacks.TerminateOnNaN(raise_error=True)],
        )
    np.testing.assert_array_equal(model.flat_weights, before)
    with pytest.raises(TypeError, match=r"TerminateOnNaN got raise_error='yes'"):
        callbacks.TerminateOnNaN(raise_error="yes")  # type: ignore[arg-type]


# --- LambdaCallback (Keras's docs) and CallbackList -----------------------------------


def test_lambda_callback_keras_docs_examples(tmp_path: Path, keras_data, capsys) -> None:
    batch_print_callback = callbacks.LambdaCallback(
        on_batch_begin=lambda batch, logs: print(batch)
    )
    log = (tmp_path / "loss_log.json").open("w")
    json_logging_callback = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: log.write(
            json.dumps({"epoch": epoch, "loss": logs["loss"]}) + "\n"
        ),
        on_train_end=lambda logs: log.close(),
    )
    model = keras_model("sgd")
    model.fit(
        keras_data["x"],
        keras_data["y"],
        batch_size=4,
        epochs=2,
        verbose=0,
        callbacks=[batch_print_callback, json_logging_callback],
    )
    assert capsys.readouterr().out == "0\n1\n2\n0\n1\n2\n"
    lines = (tmp_path / "loss_log.json").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1]


def test_callback_list_drives_keras_callbacks_and_plugins_by_hand() -> None:
    seen: list[tuple[str, Any]] = []

    class Plain:  # no base class, no set_model
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            seen.append(("plain", epoch, self.model is model))

    class Marked:  # a loopkit plugin that is no Plugin subclass
        @lk.hookimpl
        def on_epoch_end(self, model: lk.Sequential, state: Any, logs: Any) -> None:
            seen.append(("marked", state is model.state, dict(logs)))

    model = keras_model("sgd")
    stopper = callbacks.EarlyStopping(monitor="loss", patience=0)
    cb_list = callbacks.CallbackList(
        [Plain(), Marked(), stopper], add_history=True, model=model, epochs=3
    )
    assert model.history is cb_list.callbacks[-1]
    assert stopper.params == {"epochs": 3}
    cb_list.on_train_begin()
    cb_list.on_epoch_begin(0)
    cb_list.on_epoch_end(0, {"loss": 1.0})
    cb_list.on_epoch_end(1, {"loss": 2.0})
    assert seen == [
        ("plain", 0, True),
        ("marked", True, {"loss": 1.0}),
        ("plain", 1, True),
        ("marked", True, {"loss": 2.0}),
    ]
    assert model.stop_training and stopper.stopped_epoch == 1
    assert model.history.history == {"loss": [1.0, 2.0]}
    assert list(cb_list) == cb_list.callbacks and len(cb_list) == 4


def test_a_plugin_driven_by_hand_before_set_model_says_so() -> None:
    stopper = callbacks.EarlyStopping()
    with pytest.raises(
        lk.PluginError,
        match=r"EarlyStopping.on_epoch_end\(\) was called "
        r"by hand before set_model\(\); call set_model\(model\) first",
    ):
        stopper.on_epoch_end(0, {"val_loss": 0.2})


def test_on_batch_end_sees_the_model_state_current_as_in_keras_test() -> None:
    seen: list[tuple[int, int]] = []

    class CBK(callbacks.Callback):  # Keras's callback_test: on_batch_end, current state
        def on_batch_end(self, batch: int, logs: Any) -> None:
            seen.append((int(self.model.optimizer.iterations), batch + 1))

    model = lk.Sequential([Dense(1, input_shape=(1,))])
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    model.fit(
        rng.random((8, 1)), rng.random((8, 1)), callbacks=[CBK()], batch_size=2, verbose=0
    )
    assert seen == [(1, 1), (2, 2), (3, 3), (4, 4)]
