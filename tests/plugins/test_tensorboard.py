"""TensorBoard plugin: runs read back by TensorBoard's event reader, against History."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import metadata as hparams_metadata

import loopkit as lk
from loopkit.layers import Conv2D, Dense, GlobalAveragePooling2D
from loopkit.plugins import TensorBoard
from loopkit.plugins.tensorboard import weight_image

# --- helpers --------------------------------------------------------------------------


def read_run(path: Path) -> EventAccumulator:
    """Load every event of one run directory, keeping all of them (no sampling)."""
    keep_all = {"scalars": 0, "histograms": 0, "images": 0, "tensors": 0}
    accumulator = EventAccumulator(str(path), size_guidance=keep_all)
    accumulator.Reload()
    return accumulator


def scalars(run: EventAccumulator) -> dict[str, tuple[list[int], list[float]]]:
    """Return tag -> (steps, values) for every scalar tag of ``run``."""
    found = {}
    for tag in run.Tags()["scalars"]:
        events = run.Scalars(tag)
        found[tag] = ([e.step for e in events], [e.value for e in events])
    return found


def text(run: EventAccumulator, tag: str) -> list[tuple[int, str]]:
    """Return (step, text) of every event of the text summary ``tag``."""
    return [
        (e.step, e.tensor_proto.string_val[0].decode())
        for e in run.Tensors(tag + "/text_summary")
    ]


def session_start_hparams(run_dir: Path) -> list[dict[str, Any]]:
    """Return the hyperparameters of every HParams session start in ``run_dir`` itself."""
    sessions = []
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == hparams_metadata.SESSION_START_INFO_TAG:
                    content = value.metadata.plugin_data.content
                    info = hparams_metadata.parse_session_start_info_plugin_data(content)
                    sessions.append({k: _hparam_value(v) for k, v in info.hparams.items()})
    return sessions


def _hparam_value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("kind"))


def tiny_model(seed: int = 0) -> lk.Sequential:
    lk.set_random_seed(seed)
    model = lk.Sequential(
        [Dense(8, activation="relu", input_dim=4), Dense(1, activation="sigmoid")]
    )
    model.compile(
        optimizer=lk.optimizers.Adam(learning_rate=0.01),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, :1] + 0.5 * x[:, 1:2] > 0).astype(np.float32)
    return x, y


def assert_float32_close(logged: list[float], expected: list[float]) -> None:
    np.testing.assert_allclose(logged, np.float32(expected), rtol=1e-6, atol=1e-7)


class Recorder:
    """Copies what the hooks see, for comparison with what was logged."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, dict[str, float]]] = []
        self.weights: dict[int, dict[str, np.ndarray]] = {}
        self.gradients: dict[int, dict[str, np.ndarray]] = {}

    @lk.hookimpl
    def on_train_batch_end(self, state: lk.LoopState, logs: dict[str, float]) -> None:
        self.batches.append((state.global_step, dict(logs)))

    @lk.hookimpl
    def on_epoch_end(self, model: lk.Sequential, state: lk.LoopState) -> None:
        step = state.epochs_completed
        self.weights[step] = {
            f"{layer.name}/{p.name}": p.value.copy()
            for layer in model.layers
            for p in layer.parameters
        }
        self.gradients[step] = {
            f"{layer.name}/{p.name}": p.grad.copy()
            for layer in model.layers
            for p in layer.trainable_parameters
        }


# --- scalars ----------------------------------------------------------------------------


def test_epoch_scalars_equal_history_in_train_and_validation_runs(
    tmp_path: Path, data: Any
) -> None:
    x, y = data
    model = tiny_model()
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        plugins=[TensorBoard(log_dir=tmp_path)],
    )
    train = scalars(read_run(tmp_path / "train"))
    validation = scalars(read_run(tmp_path / "validation"))
    assert set(train) == {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"}
    assert set(validation) == {"epoch_loss", "epoch_accuracy"}
    for key, values in history.history.items():
        run, tag = (validation, key[4:]) if key.startswith("val_") else (train, key)
        steps, logged = run["epoch_" + tag]
        assert steps == [0, 1, 2]
        assert_float32_close(logged, values)


def test_second_fit_continues_the_step_axis(tmp_path: Path, data: Any) -> None:
    x, y = data
    model = tiny_model()
    plugin = TensorBoard(log_dir=tmp_path)
    first = model.fit(
        x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0, plugins=[plugin]
    )
    second = model.fit(
        x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0, plugins=[plugin]
    )
    train = scalars(read_run(tmp_path / "train"))
    validation = scalars(read_run(tmp_path / "validation"))
    assert train["epoch_loss"][0] == [0, 1, 2, 3, 4]
    assert_float32_close(
        train["epoch_loss"][1], first.history["loss"] + second.history["loss"]
    )
    assert validation["epoch_loss"][0] == [0, 1, 2, 3, 4]
    assert_float32_close(
        validation["epoch_loss"][1], first.history["val_loss"] + second.history["val_loss"]
    )


def test_batch_scalars_every_n_batches_at_the_global_step(
    tmp_path: Path, data: Any
) -> None:
    x, y = data
    model = tiny_model()
    recorder = Recorder()
    plugins = [TensorBoard(log_dir=tmp_path, update_freq=2), recorder]
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, plugins=plugins)  # 4 batches each
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, plugins=plugins)
    train = scalars(read_run(tmp_path / "train"))
    expected = [(step, logs) for step, logs in recorder.batches if step % 2 == 0]
    assert [step for step, _ in expected] == [2, 4, 6, 8, 10, 12]
    for key in ("loss", "accuracy"):
        steps, logged = train["batch_" + key]
        assert steps == [step for step, _ in expected]
        assert_float32_close(logged, [logs[key] for _, logs in expected])
    assert_float32_close(train["batch_learning_rate"][1], [0.01] * 6)
    assert train["epoch_loss"][0] == [0, 1, 2]


def test_update_freq_batch_writes_every_batch(tmp_path: Path, data: Any) -> None:
    x, y = data
    model = tiny_model()
    model.fit(
        x,
        y,
        epochs=1,
        batch_size=16,
        verbose=0,
        plugins=[TensorBoard(log_dir=tmp_path, update_freq="batch")],
    )
    assert scalars(read_run(tmp_path / "train"))["batch_loss"][0] == [1, 2, 3, 4]


def test_epoch_update_freq_leaves_the_batch_hook_unimplemented(capsys: Any) -> None:
    model = tiny_model()
    by_epoch = model.show_loop(plugins=[TensorBoard()])
    by_batch = model.show_loop(plugins=[TensorBoard(update_freq=3)])
    capsys.readouterr()
    assert "on_train_batch_end: -" in by_epoch
    assert "on_train_batch_end: tensorboard" in by_batch


def test_steps_per_second_are_logged_per_epoch_and_per_batch_write(
    tmp_path: Path, data: Any
) -> None:
    x, y = data
    model = tiny_model()
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        verbose=0,
        plugins=[TensorBoard(log_dir=tmp_path, update_freq=2, write_steps_per_second=True)],
    )
    train = scalars(read_run(tmp_path / "train"))
    assert train["epoch_steps_per_second"][0] == [0, 1]
    assert train["batch_steps_per_second"][0] == [2, 4, 6, 8]
    assert all(v > 0 for v in train["epoch_steps_per_second"][1])
    assert all(v > 0 for v in train["batch_steps_per_second"][1])


def test_direct_epoch_end_routes_val_keys_to_the_validation_run(tmp_path: Path) -> None:
    model = tiny_model()
    plugin = TensorBoard(log_dir=tmp_path)
    state = lk.LoopState(epochs_completed=7)
    logs = {"loss": 1.5, "val_loss": 2.5, "learning_rate": 0.125, "note": "text"}
    plugin.on_epoch_end(model=model, state=state, logs=logs)
    plugin.on_exception()
    train = scalars(read_run(tmp_path / "train"))
    validation = scalars(read_run(tmp_path / "validation"))
    assert train == {"epoch_loss": ([7], [1.5]), "epoch_learning_rate": ([7], [0.125])}
    assert validation == {"epoch_loss": ([7], [2.5])}


# --- histograms and images ------------------------------------------------------------


def test_weight_and_gradient_histograms_at_every_nth_epoch(
    tmp_path: Path, data: Any
) -> None:
    x, y = data
    model = tiny_model()
    recorder = Recorder()
    model.fit(
        x,
        y,
        epochs=5,
        batch_size=16,
        verbose=0,
        plugins=[TensorBoard(log_dir=tmp_path, histogram_freq=2), recorder],
    )
    train = read_run(tmp_path / "train")
    names = ["dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"]
    expected_tags = {f"{n}/{kind}" for n in names for kind in ("histogram", "gradient")}
    assert set(train.Tags()["histograms"]) == expected_tags
    for name in names:
        for kind, recorded in (
            ("histogram", recorder.weights),
            ("gradient", recorder.gradients),
        ):
            events = train.Histograms(f"{name}/{kind}")
            assert [e.step for e in events] == [0, 2, 4]
            for event in events:
                values = recorded[event.step][name].astype(np.float64)
                histogram = event.histogram_value
                assert histogram.num == values.size
                assert histogram.min == values.min()
                assert histogram.max == values.max()
                np.testing.assert_allclose(
                    histogram.sum, values.sum(), rtol=1e-5, atol=1e-6
                )
                np.testing.assert_allclose(
                    histogram.sum_squares, (values**2).sum(), rtol=1e-5, atol=1e-9
                )
                assert sum(histogram.bucket) == values.size


def test_frozen_layer_gets_weight_histograms_but_no_gradient_histograms(
    tmp_path: Path, data: Any
) -> None:
    x, y = data
    model = tiny_model()
    model.layers[0].trainable = False
    model.fit(
        x,
        y,
        epochs=1,
        batch_size=16,
        verbose=0,
        plugins=[TensorBoard(log_dir=tmp_path, histogram_freq=1)],
    )
    tags = set(read_run(tmp_path / "train").Tags()["histograms"])
    assert {"dense/kernel/histogram", "dense/bias/histogram"} <= tags
    assert "dense/kernel/gradient" not in tags
    assert "dense_1/kernel/gradient" in tags


def reference_image(weight: np.ndarray) -> np.ndarray:
    """The documented layout, written out cell by cell, min-max scaled to 0..255."""
    w = weight.astype(np.float64)
    if w.ndim == 1:
        grid = w[np.newaxis, :]
    elif w.ndim == 2:
        grid = w.T if w.shape[0] > w.shape[1] else w
    else:
        kh, kw, cin, cout = w.shape
        grid = np.zeros((cin * kh, cout * kw))
        for c in range(cin):  # one cell per (input channel, filter)
            for f in range(cout):
                grid[c * kh : (c + 1) * kh, f * kw : (f + 1) * kw] = w[:, :, c, f]
    return (grid - grid.min()) / (grid.max() - grid.min()) * 255.0


def test_write_images_tiles_every_weight_as_a_min_max_scaled_image(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    lk.set_random_seed(3)
    model = lk.Sequential(
        [
            Conv2D(4, 3, padding="same", activation="relu", input_shape=(5, 5, 2)),
            GlobalAveragePooling2D(),
            Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = rng.normal(size=(12, 5, 5, 2)).astype(np.float32)
    y = rng.integers(0, 3, size=12)
    recorder = Recorder()
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=6,
        verbose=0,
        plugins=[
            TensorBoard(log_dir=tmp_path, histogram_freq=1, write_images=True),
            recorder,
        ],
    )
    train = read_run(tmp_path / "train")
    names = ["conv2d/kernel", "conv2d/bias", "dense/kernel", "dense/bias"]
    assert set(train.Tags()["images"]) == {n + "/image" for n in names}
    shapes = {
        "conv2d/kernel": (2 * 3, 4 * 3),
        "conv2d/bias": (1, 4),
        "dense/kernel": (3, 4),
        "dense/bias": (1, 3),
    }
    for name in names:
        events = train.Images(name + "/image")
        assert [e.step for e in events] == [0, 1]
        for event in events:
            pixels = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))
            gray = pixels[..., 0] if pixels.ndim == 3 else pixels
            assert gray.shape == shapes[name]
            expected = reference_image(recorder.weights[event.step][name])
            np.testing.assert_allclose(gray, expected, atol=0.5 + 1e-9)


def test_weight_image_is_mid_gray_when_constant_and_black_where_not_finite() -> None:
    np.testing.assert_array_equal(weight_image(np.zeros(3, np.float32)), [[128, 128, 128]])
    image = weight_image(np.array([1.0, np.nan, 3.0, np.inf, 2.0], np.float32))
    np.testing.assert_array_equal(image, [[0, 0, 255, 0, 128]])


# --- text and hparams ---------------------------------------------------------------------


def test_config_plugin_list_and_graph_are_written_as_text_once_per_fit(
    tmp_path: Path, data: Any
) -> None:
    x, y = data
    model = tiny_model()
    plugin, recorder = TensorBoard(log_dir=tmp_path, write_graph=True), Recorder()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, plugins=[plugin, recorder])
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, plugins=[plugin])
    root = read_run(tmp_path)
    configs = text(root, "config")
    assert [step for step, _ in configs] == [0, 2]
    config = json.loads("\n".join(line[4:] for line in configs[0][1].splitlines()))
    assert config["optimizer"] == {
        "class_name": "Adam",
        "config": model.optimizer.get_config(),
    }
    assert config["loss"] == {
        "class_name": type(model.loss).__name__,
        "config": model.loss.get_config(),
    }
    assert config["metrics"] == ["accuracy"]
    assert config["fit"] == {
        "epochs": 2,
        "initial_epoch": 0,
        "batch_size": 16,
        "steps_per_epoch": 4,
    }
    listing = text(root, "plugins")
    assert listing[0][1].splitlines()[:2] == [
        f"1. **recorder**: `{recorder!r}`",  # order 0, before loggers (200)
        f"2. **tensorboard**: `{plugin!r}`",
    ]
    assert listing[0][1].splitlines()[2].startswith("3. **history**")
    assert listing[1][1].splitlines()[0] == f"1. **tensorboard**: `{plugin!r}`"
    summary: list[str] = []
    model.summary(print_fn=summary.append)
    graph = text(root, "graph")
    assert [step for step, _ in graph] == [0, 2]
    assert graph[0][1] == "\n".join("    " + line for line in summary[0].splitlines())


def test_no_graph_text_without_write_graph(tmp_path: Path, data: Any) -> None:
    x, y = data
    tiny_model().fit(x, y, epochs=1, verbose=0, plugins=[TensorBoard(log_dir=tmp_path)])
    tensors = read_run(tmp_path).Tags()["tensors"]
    assert sorted(tensors) == ["config/text_summary", "plugins/text_summary"]


def test_hparams_session_holds_the_config_and_final_metrics_equal_the_last_epoch(
    tmp_path: Path, data: Any
) -> None:
    x, y = data
    model = tiny_model()
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        plugins=[TensorBoard(log_dir=tmp_path)],
    )
    (hparams,) = session_start_hparams(tmp_path)
    assert hparams["optimizer"] == "Adam"
    assert hparams["optimizer.learning_rate"] == 0.01
    assert hparams["optimizer.beta_1"] == 0.9
    assert hparams["optimizer.amsgrad"] is False
    assert hparams["loss"] == "binary_crossentropy"
    assert hparams["metrics"] == "accuracy"
    assert hparams["batch_size"] == 16.0
    assert hparams["epochs"] == 3.0
    assert hparams["params"] == float(model.count_params())
    final = scalars(read_run(tmp_path))
    assert set(final) == {"final/" + key for key in history.history}
    for key, values in history.history.items():
        steps, logged = final["final/" + key]
        assert steps == [2]
        assert_float32_close(logged, values[-1:])


# --- failures, entry point, several models ------------------------------------------------


class FailAt:
    """Raises before the training batch with global step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    @lk.hookimpl
    def on_train_batch_begin(self, state: lk.LoopState) -> None:
        if state.global_step == self.step:
            raise RuntimeError("disk on fire")


def test_fit_that_raises_mid_epoch_leaves_earlier_scalars_readable(
    tmp_path: Path, data: Any
) -> None:
    x, y = data
    model = tiny_model()
    recorder = Recorder()
    plugins = [TensorBoard(log_dir=tmp_path, update_freq=1), recorder, FailAt(step=9)]
    with pytest.raises(RuntimeError, match="disk on fire"):
        model.fit(
            x, y, epochs=5, batch_size=16, validation_split=0.25, verbose=0, plugins=plugins
        )  # 3 batches per epoch: fails in the 4th epoch
    history = model.history.history
    train = scalars(read_run(tmp_path / "train"))
    validation = scalars(read_run(tmp_path / "validation"))
    assert train["epoch_loss"][0] == [0, 1, 2]
    assert_float32_close(train["epoch_loss"][1], history["loss"])
    assert_float32_close(validation["epoch_accuracy"][1], history["val_accuracy"])
    assert train["batch_loss"][0] == list(range(1, 10))  # the last batch before the crash
    assert_float32_close(
        train["batch_loss"][1], [logs["loss"] for _, logs in recorder.batches]
    )
    assert session_start_hparams(tmp_path) == []  # a failed fit is no HParams session


def test_enabled_by_entry_point_name_logs_under_logs(
    tmp_path: Path, data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    x, y = data
    history = tiny_model().fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        plugins=["tensorboard"],
    )
    train = scalars(read_run(tmp_path / "logs" / "train"))
    validation = scalars(read_run(tmp_path / "logs" / "validation"))
    assert_float32_close(train["epoch_loss"][1], history.history["loss"])
    assert_float32_close(validation["epoch_loss"][1], history.history["val_loss"])


def test_several_models_log_to_sibling_run_directories(tmp_path: Path, data: Any) -> None:
    x, y = data
    histories = {}
    for seed, name in enumerate(("a", "b")):
        histories[name] = tiny_model(seed).fit(
            x,
            y,
            epochs=2,
            batch_size=16,
            validation_split=0.25,
            verbose=0,
            plugins=[TensorBoard(log_dir=tmp_path / name)],
        )
    assert histories["a"].history["loss"] != histories["b"].history["loss"]
    for name, history in histories.items():
        train = scalars(read_run(tmp_path / name / "train"))
        validation = scalars(read_run(tmp_path / name / "validation"))
        assert_float32_close(train["epoch_loss"][1], history.history["loss"])
        assert_float32_close(validation["epoch_loss"][1], history.history["val_loss"])
        assert len(session_start_hparams(tmp_path / name)) == 1


# --- argument checks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"profile_batch": 2},
            r"profile_batch=2; loopkit cannot write profiler .* "
            r"Pass profile_batch=0",
        ),
        ({"profile_batch": (10, 20)}, r"profile_batch=\(10, 20\);.*Pass profile_batch=0"),
        ({"embeddings_freq": 1}, r"embeddings_freq=1; .*Pass embeddings_freq=0"),
        (
            {"embeddings_metadata": {"e": "m.tsv"}},
            r"embeddings_metadata=\{'e': 'm.tsv'\}; .*Pass embeddings_metadata=None",
        ),
        (
            {"update_freq": "epochs"},
            r"update_freq='epochs'; expected 'epoch', 'batch' .*"
            r"Did you mean 'epoch'\?",
        ),
        ({"update_freq": 0}, r"update_freq=0; expected .* an int N > 0"),
        ({"histogram_freq": -1}, r"histogram_freq=-1; expected an int >= 0"),
        (
            {"write_images": True},
            r"write_images=True with histogram_freq=0; .* Pass "
            r"histogram_freq=1",
        ),
    ],
)
def test_refused_values_name_the_value_and_the_fix(
    kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(lk.ConfigError, match=match):
        TensorBoard(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"log_dir": 3}, r"log_dir=3 of type int; expected a str or path"),
        ({"update_freq": 1.5}, r"update_freq=1.5 of type float; expected 'epoch'"),
        ({"histogram_freq": "2"}, r"histogram_freq='2' of type str; expected an int >= 0"),
        ({"write_graph": "yes"}, r"write_graph='yes' of type str; expected True or False"),
    ],
)
def test_wrong_kinds_raise_type_error(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(TypeError, match=match):
        TensorBoard(**kwargs)


def test_log_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "logs"
    path.write_text("not a directory")
    with pytest.raises(
        lk.ConfigError,
        match=r"log_dir='.*logs', which is a file; .* "
        r"Pass another log_dir=",
    ):
        TensorBoard(log_dir=path)


def test_write_images_without_pillow_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)  # makes `import PIL` fail
    with pytest.raises(
        lk.ConfigError,
        match=r"Pillow is not installed.*"
        r"pip install 'loopkit\[tensorboard\]'",
    ):
        TensorBoard(histogram_freq=1, write_images=True)
