"""Plugins from installed packages: a real package with a loopkit.plugins entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from loopkit import PluginError, Sequential
from loopkit._dispatch.entry_points import (
    InstalledPlugin,
    enabled_from_environment,
    installed_plugins,
    load_plugin,
)
from loopkit.layers import Dense

PLUGIN_MODULE = '''\
"""A probe plugin installed by loopkit's tests."""

import os

import loopkit


def _write(line):
    with open(os.environ["LK_PROBE_OUT"], "a") as out:
        out.write(line + "\\n")


class Probe:
    """Write the epochs a fit ran to the file named by LK_PROBE_OUT."""

    def __init__(self):
        self.epochs = []

    @loopkit.hookimpl
    def on_epoch_end(self, epoch):
        self.epochs.append(epoch)

    @loopkit.hookimpl
    def on_train_end(self):
        _write(f"probe {self.epochs}")


INSTANCE = Probe()


@loopkit.hookimpl
def on_train_begin(state):
    _write(f"module began {state.epochs} epochs")
'''

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "lk-probe-plugin"
version = "0.1"

[project.entry-points."loopkit.plugins"]
lk_probe = "lk_probe_plugin:Probe"
lk_probe_module = "lk_probe_plugin"
lk_probe_instance = "lk_probe_plugin:INSTANCE"
lk_probe_broken = "lk_probe_missing:Nothing"

[tool.setuptools]
py-modules = ["lk_probe_plugin"]
"""

FIT_SCRIPT = """\
import numpy as np
from loopkit import Sequential
from loopkit.layers import Dense

x = np.ones((8, 3), np.float32)
model = Sequential([Dense(2, input_shape=(3,))])
model.compile(optimizer="sgd", loss="mse")
model.fit(x, x[:, :2], batch_size=4, epochs=2, verbose=0, plugins=PLUGINS)
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the probe package and pip-install it into a directory of its own."""
    root = tmp_path_factory.mktemp("probe")
    package = root / "package"
    package.mkdir()
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / "lk_probe_plugin.py").write_text(PLUGIN_MODULE)
    target = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--target",
            str(target),
            str(package),
        ],
        check=True,
        capture_output=True,
    )
    return target


@pytest.fixture
def installed(
    site: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Path]:
    """Put the installed package on sys.path; return the file the probe writes to."""
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("LOOPKIT_PLUGINS", raising=False)
    monkeypatch.delenv("LOOPKIT_DISABLE_PLUGINS", raising=False)
    out = tmp_path / "probe.txt"
    out.touch()
    monkeypatch.setenv("LK_PROBE_OUT", str(out))
    yield out
    sys.modules.pop("lk_probe_plugin", None)


def tiny_fit(plugins: list | None = None, epochs: int = 2) -> Sequential:
    x = np.ones((8, 3), np.float32)
    model = Sequential([Dense(2, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, x[:, :2], batch_size=4, epochs=epochs, verbose=0, plugins=plugins)
    return model


def run_python(site: Path, out: Path, code: str, **env: str) -> None:
    environment = {**os.environ, "PYTHONPATH": str(site), "LK_PROBE_OUT": str(out), **env}
    environment.pop("LOOPKIT_DISABLE_PLUGINS", None)
    if "LOOPKIT_PLUGINS" not in env:
        environment.pop("LOOPKIT_PLUGINS", None)
    subprocess.run([sys.executable, "-c", code], check=True, env=environment, timeout=60)


# --- a separate interpreter, as a user would run it -----------------------------------


def test_a_fit_in_a_fresh_interpreter_enables_an_installed_plugin_by_name(
    site: Path, tmp_path: Path
) -> None:
    out = tmp_path / "probe.txt"
    run_python(site, out, FIT_SCRIPT.replace("PLUGINS", '["lk_probe"]'))
    assert out.read_text() == "probe [0, 1]\n"


def test_loopkit_plugins_environment_variable_enables_plugins_in_a_fresh_interpreter(
    site: Path, tmp_path: Path
) -> None:
    out = tmp_path / "probe.txt"
    code = FIT_SCRIPT.replace("PLUGINS", "None")
    run_python(site, out, code, LOOPKIT_PLUGINS=" lk_probe_module, lk_probe ")
    assert sorted(out.read_text().splitlines()) == ["module began 2 epochs", "probe [0, 1]"]


# --- in this interpreter, with the package on sys.path --------------------------------


def test_installed_plugins_lists_the_packages_entry_points(installed: Path) -> None:
    found = {p.name: p for p in installed_plugins()}
    assert found["lk_probe"] == InstalledPlugin(
        name="lk_probe", value="lk_probe_plugin:Probe", distribution="lk-probe-plugin"
    )
    assert found["lk_probe_module"].value == "lk_probe_plugin"
    names = [p.name for p in installed_plugins()]
    assert names == sorted(names)


def test_a_class_is_instantiated_and_a_module_or_object_is_used_as_is(
    installed: Path,
) -> None:
    import lk_probe_plugin  # type: ignore[import-not-found]

    probe = load_plugin("lk_probe")
    assert type(probe) is lk_probe_plugin.Probe
    assert load_plugin("lk_probe_module") is lk_probe_plugin
    assert load_plugin("lk_probe_instance") is lk_probe_plugin.INSTANCE


def test_plugins_by_name_in_fit(installed: Path) -> None:
    tiny_fit(plugins=["lk_probe", "lk_probe_module"])
    assert installed.read_text().splitlines() == ["module began 2 epochs", "probe [0, 1]"]


def test_an_unknown_name_lists_the_installed_plugins(installed: Path) -> None:
    with pytest.raises(
        PluginError,
        match=r"No installed loopkit plugin is named 'lk_prob'\. Did you mean 'lk_probe'\? "
        r"Installed: \[.*'lk_probe'.*\]\. Install the package",
    ):
        tiny_fit(plugins=["lk_prob"])


def test_a_plugin_that_fails_to_load_names_its_entry_point(installed: Path) -> None:
    with pytest.raises(
        PluginError,
        match=r"Loading plugin 'lk_probe_broken' \(lk_probe_missing:Nothing\) failed: "
        r"ModuleNotFoundError.*LOOPKIT_DISABLE_PLUGINS",
    ):
        tiny_fit(plugins=["lk_probe_broken"])


def test_the_environment_variable_enables_plugins_for_every_fit(
    installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPKIT_PLUGINS", "lk_probe")
    tiny_fit(epochs=1)
    tiny_fit(epochs=1, plugins=["lk_probe"])  # named twice: loaded once
    assert installed.read_text().splitlines() == ["probe [0]", "probe [0]"]


def test_disabled_names_are_never_loaded(
    installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPKIT_PLUGINS", "lk_probe_module")
    monkeypatch.setenv("LOOPKIT_DISABLE_PLUGINS", "lk_probe_module,lk_probe_broken")
    tiny_fit(plugins=["lk_probe_broken", "lk_probe"])
    assert installed.read_text().splitlines() == ["probe [0, 1]"]


def test_a_registered_plugin_name_stays_across_fits(installed: Path) -> None:
    x = np.ones((8, 3), np.float32)
    model = Sequential([Dense(2, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    probe = model.plugins.register("lk_probe")
    model.fit(x, x[:, :2], batch_size=4, epochs=1, verbose=0)
    model.fit(x, x[:, :2], batch_size=4, epochs=2, verbose=0)
    assert installed.read_text().splitlines() == ["probe [0]", "probe [0, 0, 1]"]
    assert list(model.plugins) == [probe]


def test_the_environment_list_ignores_spaces_and_empty_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOOPKIT_PLUGINS", " a, b,,c ,")
    assert enabled_from_environment() == ["a", "b", "c"]
    monkeypatch.delenv("LOOPKIT_PLUGINS")
    assert enabled_from_environment() == []


def test_an_unknown_name_fails_without_the_probe_installed_too() -> None:
    with pytest.raises(PluginError, match=r"named 'no_such_plugin'\. .*Installed: \["):
        load_plugin("no_such_plugin")
