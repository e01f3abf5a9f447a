"""Every example runs as a user runs it: a fresh Python, its own folder, few epochs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import loopkit as lk

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, cwd: Path, *args: str, timeout: float = 240) -> str:
    """Run ``examples/<name>`` in ``cwd`` with warnings as errors; return its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPKIT_")}
    done = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_quickstart_learns_saves_loads_and_plots(tmp_path: Path) -> None:
    out = run_example("quickstart.py", tmp_path, "--epochs", "3")
    assert "Epoch 3/3" in out
    accuracy = float(re.search(r"new data: loss \S+, accuracy (\S+)", out)[1])  # type: ignore[index]
    assert accuracy > 0.6  # a learnable rule: better than the 0.5 of guessing
    assert lk.load_model(str(tmp_path / "quickstart.npz")).count_params() == 3265
    assert (tmp_path / "quickstart.png").stat().st_size > 0


def test_digits_stops_early_keeps_the_best_model_and_saves_its_curves(
    tmp_path: Path,
) -> None:
    out = run_example("digits_cnn.py", tmp_path)  # the full run: up to 60 epochs
    ran = int(re.search(r"ran (\d+) of 60 epochs", out)[1])  # type: ignore[index]
    assert 6 <= ran < 60, out[-2000:]  # early stopping ended it (patience 5)
    accuracy = float(re.search(r"test accuracy: (\S+)", out)[1])  # type: ignore[index]
    assert accuracy > 0.9
    assert (tmp_path / "checkpoints" / "digits.npz").exists()
    assert list((tmp_path / "logs" / "train").glob("events.out.tfevents.*"))
    with Image.open(tmp_path / "plots" / "digits.png") as image:
        assert image.format == "PNG"
        assert image.size == (900, 340)  # two axes side by side, 4.5 x 3.4 in at 100 dpi
        pixels = np.asarray(image.convert("RGB")).astype(int)
    for half in (pixels[:, :450], pixels[:, 450:]):  # the loss axis, the accuracy axis
        for rgb in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)):  # training, validation
            assert (np.abs(half - np.array(rgb)).sum(axis=-1) < 30).sum() > 50


def test_transfer_learning_trains_a_frozen_base_then_fine_tunes(tmp_path: Path) -> None:
    out = run_example("transfer_learning.py", tmp_path, "--epochs", "2")
    assert "Trainable params: 165" in out  # phase 1: the new head alone
    assert re.search(r"Epoch 4/4", out)  # phase 2 continued the epoch count
    assert re.search(r"head only \d\.\d+, fine-tuned \d\.\d+", out)


def test_custom_loop_schedules_the_rate_and_accumulates_gradients(tmp_path: Path) -> None:
    out = run_example("custom_loop.py", tmp_path, "--epochs", "2")
    rates = [float(r) for r in re.findall(r"- lr (\S+)", out)]
    assert len(rates) == 2 and rates[0] > rates[1]  # cosine decay, set per batch
    accuracies = [float(a) for a in re.findall(r"val_accuracy (\S+)", out)]
    assert len(accuracies) == 4 and min(accuracies) > 0.6


def test_resume_after_kill_ends_bitwise_identical(tmp_path: Path) -> None:
    out = run_example("resume_after_kill.py", tmp_path, "--epochs", "2")
    assert "exit status -9" in out
    assert "weights bitwise identical to the uninterrupted run: True" in out
    assert not (tmp_path / "backup").exists() or not any((tmp_path / "backup").iterdir())


def test_the_plugin_package_installs_in_a_fresh_venv_and_runs_by_name(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The fresh environment sees this one's packages (loopkit, numpy, setuptools...)
    # through a site directory, the way --system-site-packages would.
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib, "outer.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            str(EXAMPLES / "plugin-package"),
        ],
        check=True,
        capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPKIT_")}
    listed = subprocess.run(
        [str(python), "-m", "loopkit.cli", "plugins"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    ).stdout
    assert re.search(
        r"epoch_timer\s+loopkit_epoch_timer:EpochTimer\s+\[loopkit-epoch-timer\]", listed
    )
    assert "Log each epoch's wall time as epoch_seconds, the total as" in listed
    script = """
import numpy as np, loopkit as lk
from loopkit.layers import Dense

class Slow:
    seen = []
    @lk.hookimpl
    def on_slow_epoch(self, epoch):
        Slow.seen.append(epoch)

x = np.random.default_rng(0).standard_normal((64, 3)).astype(np.float32)
model = lk.Sequential([Dense(1, input_dim=3)])
model.compile(optimizer="sgd", loss="mse")
history = model.fit(x, x[:, :1], epochs=3, verbose=0, plugins=["epoch_timer", Slow()])
seconds = history.history["epoch_seconds"]
assert len(seconds) == 3 and all(s > 0 for s in seconds), seconds
assert Slow.seen == [], Slow.seen
from loopkit_epoch_timer import EpochTimer
history = model.fit(x, x[:, :1], epochs=2, verbose=0, plugins=[EpochTimer(0.0), Slow()])
assert Slow.seen == [0, 1], Slow.seen
import loopkit_epoch_timer, sys
assert sys.prefix in loopkit_epoch_timer.__file__, loopkit_epoch_timer.__file__
print("ok")
"""
    done = subprocess.run(
        [str(python), "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.stdout.strip() == "ok", done.stderr[-3000:]
    with pytest.raises(ModuleNotFoundError):  # this environment did not get it
        __import__("loopkit_epoch_timer")


def test_the_residual_cnn_example_builds_a_functional_graph_and_learns(
    tmp_path: Path,
) -> None:
    out = run_example("residual_digits.py", tmp_path, "--epochs", "4")
    assert "Connected to" in out and "add[0][0]" not in out.split("Connected to")[0]
    accuracy = float(re.search(r"test accuracy: (\S+)", out)[1])  # type: ignore[index]
    assert accuracy > 0.5  # 4 epochs: far above the 0.1 of guessing


def test_the_two_heads_example_logs_each_output_and_predicts_a_dict(tmp_path: Path) -> None:
    out = run_example("two_heads.py", tmp_path, "--epochs", "3")
    assert "'label_loss', 'learning_rate', 'loss', 'score_loss', 'score_mae'" in out
    assert "first three labels:" in out


def test_any_length_text_trains_on_bucketed_batches_and_ignores_padding(
    tmp_path: Path,
) -> None:
    out = run_example("any_length_text.py", tmp_path, "--epochs", "3")
    assert "(None, None)" in out  # the summary shows the open time axis
    accuracy = float(re.search(r"test accuracy: (\S+)", out)[1])  # type: ignore[index]
    assert accuracy > 0.9  # guessing gives 0.5
    change = float(re.search(r"to 80 tokens: (\S+)", out)[1])  # type: ignore[index]
    assert change < 1e-5  # the mask makes the padded sentence the same sentence


def test_the_masked_text_classifier_learns_and_ignores_where_the_padding_is(
    tmp_path: Path,
) -> None:
    out = run_example("masked_text_classifier.py", tmp_path, "--epochs", "3")
    accuracy = float(re.search(r"test accuracy: (\S+)", out)[1])  # type: ignore[index]
    assert accuracy > 0.9  # guessing gives 0.5
    change = float(re.search(r"to the front: (\S+)", out)[1])  # type: ignore[index]
    assert change < 1e-5  # the mask makes pre- and post-padding the same sentence
