"""Plugins of one run that share a name get unique, stable ones, which key their state."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import numpy as np

import loopkit as lk
from loopkit._dispatch.dispatcher import HookDispatcher
from loopkit._dispatch.ordering import unique_names
from loopkit.layers import Dense
from loopkit.plugins import EarlyStopping, ModelCheckpoint


class Named:
    def __init__(self, name: str) -> None:
        self.name = name

    @lk.hookimpl
    def on_train_begin(self) -> None:
        pass


def test_a_shared_name_is_numbered_in_list_order_as_keras_names_layers() -> None:
    plugins = [Named("a"), Named("b"), Named("a"), Named("a")]
    assert unique_names(plugins) == ["a", "b", "a_1", "a_2"]


def test_a_numbered_name_skips_a_name_another_plugin_already_goes_by() -> None:
    plugins = [Named("a"), Named("a"), Named("a_1")]
    assert unique_names(plugins) == ["a", "a_2", "a_1"]


def test_the_dispatcher_names_plugins_uniquely_in_call_order(tmp_path: Path) -> None:
    first = ModelCheckpoint(str(tmp_path / "a.npz"))
    second = ModelCheckpoint(str(tmp_path / "b.npz"))
    early = EarlyStopping(monitor="loss")
    hooks = HookDispatcher([first, early, second])
    assert hooks.named_plugins() == [
        ("early_stopping", early),
        ("model_checkpoint", first),
        ("model_checkpoint_1", second),
    ]
    assert "model_checkpoint, model_checkpoint_1" in hooks.describe()


def test_before_and_after_may_name_one_of_two_plugins_by_its_unique_name() -> None:
    class Last:
        name = "last"
        after = "a_1"

        @lk.hookimpl
        def on_train_begin(self) -> None:
            pass

    last, first, second = Last(), Named("a"), Named("a")
    last.order = -1  # type: ignore[attr-defined]  # would run first without after=
    hooks = HookDispatcher([last, first, second])
    assert [p for _, p in hooks.named_plugins()] == [first, second, last]


def _model() -> lk.Sequential:
    lk.set_random_seed(1)
    model = lk.Sequential([Dense(4, activation="relu", input_dim=3), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_a_checkpoint_gives_two_model_checkpoints_each_its_own_state_back(
    tmp_path: Path,
) -> None:
    x = np.random.default_rng(0).normal(size=(16, 3))
    y = x.sum(axis=1, keepdims=True)
    model = _model()
    on_loss = ModelCheckpoint(str(tmp_path / "l.npz"), monitor="loss", save_best_only=True)
    on_val = ModelCheckpoint(
        str(tmp_path / "v.npz"), monitor="val_loss", save_best_only=True
    )

    class Save:
        @lk.hookimpl
        def on_train_end(self, model: lk.Sequential) -> None:
            lk.save_checkpoint(model, tmp_path / "ckpt.npz")

    model.fit(
        x, y, epochs=2, validation_split=0.25, verbose=0, plugins=[on_loss, on_val, Save()]
    )
    assert on_loss.best != on_val.best
    fresh_loss = ModelCheckpoint(
        str(tmp_path / "l.npz"), monitor="loss", save_best_only=True
    )
    fresh_val = ModelCheckpoint(
        str(tmp_path / "v.npz"), monitor="val_loss", save_best_only=True
    )

    class Load:
        @lk.hookimpl
        def on_train_begin(self, model: lk.Sequential) -> None:
            lk.load_checkpoint(model, tmp_path / "ckpt.npz")
            model.stop_training = True

    _model().fit(
        x,
        y,
        epochs=1,
        verbose=0,
        validation_split=0.25,
        plugins=[fresh_loss, fresh_val, Load()],
    )
    assert (fresh_loss.best, fresh_val.best) == (on_loss.best, on_val.best)


TWO_OF_EACH = textwrap.dedent(
    """
    import json, os, signal, sys
    import numpy as np
    import loopkit as lk
    from loopkit.layers import Dense
    from loopkit.plugins import BackupAndRestore, EarlyStopping, ModelCheckpoint

    folder, kill_at = sys.argv[1], int(sys.argv[2])
    lk.set_random_seed(5)
    data = np.random.default_rng(0)
    x = data.standard_normal((120, 6)).astype(np.float32)
    y = x[:, :2].sum(axis=1, keepdims=True) + 0.3 * data.standard_normal((120, 1))
    model = lk.Sequential([Dense(8, activation="relu", input_dim=6), Dense(1)])
    model.compile(optimizer="adam", loss="mse")

    class Killer:
        @lk.hookimpl
        def on_train_batch_end(self, state):
            if kill_at and state.global_step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    plugins = [
        ModelCheckpoint(folder + "/val.npz", monitor="val_loss", save_best_only=True),
        ModelCheckpoint(folder + "/train.npz", monitor="loss", save_best_only=True),
        EarlyStopping(monitor="val_loss", patience=50),
        EarlyStopping(monitor="loss", mode="max", patience=50),
        BackupAndRestore(folder + "/backup", delete_checkpoint=False),
        Killer(),
    ]
    model.fit(x, y, epochs=6, batch_size=16, validation_split=0.25, verbose=0,
              shuffle=False, plugins=plugins)
    states = [p.state_dict() for p in plugins[:4]]
    for s in states:
        s.pop("best_weights", None)
        if "last_saved" in s:
            s["last_saved"] = os.path.basename(s["last_saved"])
    print(json.dumps(states))
    """
)


def _run(folder: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    script = folder / "train.py"
    script.write_text(TWO_OF_EACH)
    return subprocess.run(
        [sys.executable, str(script), str(folder), str(kill_at)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_two_checkpoints_and_two_early_stoppings_resume_each_its_own_state(
    tmp_path: Path,
) -> None:
    # Killed in the last of 6 epochs (6 batches each): the resumed epoch does not
    # improve on every restored best, so a plugin given another's state ends apart.
    kill_at = 32
    (tmp_path / "reference").mkdir()
    (tmp_path / "resumed").mkdir()
    reference = _run(tmp_path / "reference", 0)
    assert reference.returncode == 0, reference.stderr
    killed = _run(tmp_path / "resumed", kill_at)
    assert killed.returncode == -signal.SIGKILL
    resumed = _run(tmp_path / "resumed", 0)
    assert resumed.returncode == 0, resumed.stderr
    expected = json.loads(reference.stdout)
    got = json.loads(resumed.stdout)
    # The two of each kind hold different states, so a mix-up would show.
    assert expected[0] != expected[1] and expected[2] != expected[3]
    assert [s["last_saved"] for s in expected[:2]] == ["val.npz", "train.npz"]
    assert got == expected
    probe = lk.Sequential([Dense(8, activation="relu", input_dim=6), Dense(1)])
    probe.compile(optimizer="adam", loss="mse")
    meta = lk.load_checkpoint(probe, tmp_path / "resumed" / "backup" / "backup.npz")["meta"]
    assert {
        "model_checkpoint",
        "model_checkpoint_1",
        "early_stopping",
        "early_stopping_1",
    } <= set(meta["plugins"])


def test_every_built_in_plugin_declares_name_and_order_one_way() -> None:
    import loopkit.plugins

    for attr in loopkit.plugins.__all__:
        cls = getattr(loopkit.plugins, attr)
        if cls is lk.History:
            continue  # part of the training core, not of loopkit.plugins
        assert issubclass(cls, lk.Plugin), attr
        declared = {k for c in cls.__mro__[:-2] for k in vars(c)}  # up to Plugin
        assert {"default_name", "default_order"} <= declared, attr
        plugin_fields = {f.name for f in attrs.fields(cls)} & {"name", "order"}
        assert all(attrs.fields_dict(cls)[f].inherited for f in plugin_fields), (
            f"{attr} redeclares name/order"
        )
