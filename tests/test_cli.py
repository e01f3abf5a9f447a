"""The ``loopkit`` command: ``loopkit plugins`` lists installed plugins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loopkit.cli import main

MODULE = '''\
"""Plugins a test package installs for ``loopkit plugins`` to list."""

import loopkit


class Sparkline:
    """Draw the loss as a one-line sparkline after every epoch.

    A second paragraph that the listing leaves out.
    """

    @loopkit.hookimpl
    def on_epoch_end(self):
        pass
'''

INSTANCES = '''\
"""An entry point naming an object, which only an import can describe."""

import loopkit


class Ticker:
    """Print a dot after every training batch."""

    @loopkit.hookimpl
    def on_train_batch_end(self):
        print(".", end="")


TICKER = Ticker()
'''

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "lk-cli-probe"
version = "0.2"

[project.entry-points."loopkit.plugins"]
lk_sparkline = "lk_cli_probe:Sparkline"
lk_missing = "lk_cli_probe_missing:Gone"
lk_ticker = "lk_cli_instances:TICKER"

[tool.setuptools]
py-modules = ["lk_cli_probe", "lk_cli_instances"]
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli_probe")
    package = root / "package"
    package.mkdir()
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / "lk_cli_probe.py").write_text(MODULE)
    (package / "lk_cli_instances.py").write_text(INSTANCES)
    target = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"]
    options = ["--no-index", "--quiet", "--target", str(target)]
    subprocess.run([*pip, *options, str(package)], check=True, capture_output=True)
    return target


def listing(text: str) -> dict[str, tuple[str, str]]:
    """Map each plugin name to its (source line, description line)."""
    lines = text.splitlines()
    return {
        first.split()[0]: (first, second.strip())
        for first, second in zip(lines[::2], lines[1::2], strict=True)
    }


def test_python_m_loopkit_cli_plugins_lists_an_installed_plugin(site: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("LOOPKIT_DISABLE_PLUGINS", None)
    done = subprocess.run(
        [sys.executable, "-m", "loopkit.cli", "plugins"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    found = listing(done.stdout)
    source, description = found["lk_sparkline"]
    assert source.split() == ["lk_sparkline", "lk_cli_probe:Sparkline", "[lk-cli-probe]"]
    assert description == "Draw the loss as a one-line sparkline after every epoch."


def test_the_listing_reads_docstrings_without_importing_plugin_modules(
    site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("LOOPKIT_DISABLE_PLUGINS", raising=False)
    assert main(["plugins"]) == 0
    found = listing(capsys.readouterr().out)
    assert found["lk_sparkline"][1].startswith("Draw the loss")
    assert "lk_cli_probe" not in sys.modules
    # An object (not a class or function) is imported to read its class's docstring.
    assert found["lk_ticker"][1] == "Print a dot after every training batch."
    sys.modules.pop("lk_cli_instances", None)


def test_a_plugin_that_cannot_be_loaded_is_listed_with_the_reason(
    site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("LOOPKIT_DISABLE_PLUGINS", raising=False)
    main(["plugins"])
    found = listing(capsys.readouterr().out)
    source, description = found["lk_missing"]
    assert source.split() == ["lk_missing", "lk_cli_probe_missing:Gone", "[lk-cli-probe]"]
    assert description == "(cannot be loaded: No module named 'lk_cli_probe_missing')"
    sys.modules.pop("lk_cli_instances", None)


def test_disabled_plugins_are_marked_in_the_listing(
    site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("LOOPKIT_DISABLE_PLUGINS", "lk_sparkline")
    main(["plugins"])
    found = listing(capsys.readouterr().out)
    assert found["lk_sparkline"][0].endswith("(disabled: LOOPKIT_DISABLE_PLUGINS)")
    assert not found["lk_missing"][0].endswith(")")
    sys.modules.pop("lk_cli_instances", None)


def test_the_command_requires_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert "plugins" in capsys.readouterr().err


def test_help_describes_the_plugins_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    assert "list installed plugins" in capsys.readouterr().out
