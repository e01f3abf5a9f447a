"""The ``loopkit`` command: ``demo``, ``plugins`` and ``show-loop``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import loopkit as lk
from loopkit.cli import main, plain_text

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


class Marked:
    """Log :class:`~loopkit.plugins.EarlyStopping`'s ``wait`` via :func:`fit`
    and `best`, summarised on one line.

    Details the listing leaves out.
    """

    @loopkit.hookimpl
    def on_epoch_end(self):
        pass
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
lk_marked = "lk_cli_instances:Marked"

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
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "{demo,plugins,show-loop}" in error


def test_help_describes_the_plugins_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    assert "list installed plugins" in capsys.readouterr().out


def test_descriptions_are_the_summary_on_one_line_without_rest_markup(
    site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("LOOPKIT_DISABLE_PLUGINS", raising=False)
    main(["plugins"])
    found = listing(capsys.readouterr().out)
    assert found["lk_marked"][1] == (
        "Log EarlyStopping's wait via fit and best, summarised on one line."
    )
    sys.modules.pop("lk_cli_instances", None)


def test_plain_text_keeps_a_roles_full_target_without_a_tilde() -> None:
    assert plain_text(":meth:`Model.fit` and ``x``\n\nmore") == "Model.fit and x"


def test_the_built_in_plugins_are_listed_without_markup(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOOPKIT_DISABLE_PLUGINS", raising=False)
    assert main(["plugins"]) == 0
    found = listing(capsys.readouterr().out)
    source, description = found["early_stopping"]
    assert source.split() == [
        "early_stopping",
        "loopkit.plugins.early_stopping:EarlyStopping",
        "[loopkit]",
    ]
    assert description == "Stop training when monitor has not improved for patience epochs."
    assert not any("`" in description for _, description in found.values())


def test_show_loop_prints_the_hooks_in_call_order_with_the_named_plugins(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["show-loop", "early_stopping", "csv_logger"]) == 0
    lines = capsys.readouterr().out.splitlines()
    hooks = [line.split(":")[0] for line in lines]
    assert hooks == list(lk.HOOK_NAMES)
    assert "on_epoch_end: early_stopping, csv_logger, history" in lines
    assert "on_train_batch_end: -" in lines


def test_show_loop_with_verbose_includes_the_progress_plugin(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["show-loop", "--verbose", "2"])
    assert "on_epoch_end: progress, history" in capsys.readouterr().out.splitlines()


def test_an_unknown_plugin_name_is_one_line_on_stderr_and_exit_status_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["show-loop", "early_stoping"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(
        "loopkit show-loop: error: No installed loopkit plugin is named 'early_stoping'."
    )
    assert captured.err.count("\n") == 1


@pytest.mark.parametrize("epochs", ["0", "-3", "many"])
def test_demo_refuses_a_bad_epoch_count_in_one_line(
    epochs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["demo", "--epochs", epochs])
    assert caught.value.code == 2
    error = capsys.readouterr().err
    assert error == (
        "loopkit demo: error: argument --epochs: expected a positive whole number, got "
        f"{epochs!r} (see loopkit demo --help)\n"
    )


@pytest.mark.parametrize(
    ("command", "phrase"),
    [
        ("demo", "--logdir LOGDIR"),
        ("plugins", "Installed is not enabled"),
        ("show-loop", "model.show_loop(plugins=[...])"),
    ],
)
def test_every_command_has_help(
    command: str, phrase: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])
    assert caught.value.code == 0
    assert phrase in " ".join(capsys.readouterr().out.split())


def test_demo_trains_saves_the_best_model_and_says_how_to_open_tensorboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOOPKIT_PLUGINS", raising=False)
    status = main(["demo", "--epochs", "2", "--logdir", "runs", "--checkpoint", "best.npz"])
    assert status == 0
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out
    assert "Training ran all 2 epochs" in out
    accuracy = float(out.split("Test accuracy: ")[1].split()[0])
    assert 0.0 < accuracy <= 1.0
    assert "tensorboard --logdir runs" in out
    assert lk.load_model("best.npz").count_params() > 0
    assert list((tmp_path / "runs" / "train").glob("events.out.tfevents.*"))


def test_demo_without_scikit_learn_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert main(["demo", "--epochs", "1"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("loopkit demo: error: the demo needs scikit-learn")
    assert "pip install 'loopkit[examples]'" in error
    assert error.count("\n") == 1


@pytest.mark.parametrize("command", [["plugins"], ["show-loop", "early_stopping"]])
def test_output_into_a_closed_pipe_ends_quietly(command: list[str]) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # as `| head` does once it has read enough
    done = subprocess.run(
        [sys.executable, "-m", "loopkit.cli", *command],
        stdout=writer,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )
    os.close(writer)
    assert (done.returncode, done.stderr) == (0, "")


def test_ctrl_c_ends_a_command_with_one_line_and_status_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("loopkit.cli._demo", interrupted)
    assert main(["demo", "--epochs", "1"]) == 130
    assert capsys.readouterr().err == "loopkit demo: interrupted\n"
