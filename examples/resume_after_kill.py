"""Resume after a kill: a run killed with SIGKILL mid-epoch resumes to identical weights.

The script starts three training processes, each a fresh Python:

1. a reference run that is never interrupted;
2. the same run with ``BackupAndRestore``, killed with SIGKILL (no clean-up of any
   kind, as a lost machine) in the middle of an epoch;
3. the same command again: ``fit`` finds the backup, restores weights, optimizer
   state, random generators, loop position and every plugin's state, and finishes.

It then checks that runs 1 and 3 end with bitwise-identical weights.

Run: python examples/resume_after_kill.py [--epochs N]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

import numpy as np

import loopkit as lk
from loopkit.layers import Dense, Dropout
from loopkit.plugins import BackupAndRestore


class KillAt:
    """Kill this process, without warning, after global training batch ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    @lk.hookimpl
    def on_train_batch_end(self, state: lk.LoopState) -> None:
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def train(epochs: int, weights: str, kill_at: int | None, backup: bool) -> None:
    lk.set_random_seed(7)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((512, 16)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    model = lk.Sequential(
        [Dense(32, activation="relu", input_dim=16), Dropout(0.3), Dense(1, "sigmoid")]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    plugins: list[object] = []
    if backup:
        plugins.append(BackupAndRestore("backup", save_freq=5))  # also every 5 batches
    if kill_at is not None:
        plugins.append(KillAt(kill_at))
    history = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, plugins=plugins)
    print(
        f"  finished: {len(history.epoch)} epochs in History, "
        f"loss {history.history['loss'][-1]:.4f}"
    )
    model.save_weights(weights)


def run(*args: str) -> int:
    return subprocess.run([sys.executable, __file__, *args], check=False).returncode


def main(epochs: int = 6) -> bool:
    steps = 512 // 32
    kill_at = steps * (epochs // 2) + 7  # 7 batches into the middle epoch
    e = str(epochs)
    print("1. reference run, never interrupted")
    run("--child", "--epochs", e, "--weights", "reference.weights.npz")
    print(f"2. run with backups, killed after batch {kill_at} of {steps * epochs}")
    status = run(
        "--child",
        "--backup",
        "--epochs",
        e,
        "--weights",
        "resumed.weights.npz",
        "--kill-at",
        str(kill_at),
    )
    print(f"  exit status {status} (-9: SIGKILL); backup/ holds the last backup")
    print("3. the same command again resumes from the backup")
    run("--child", "--backup", "--epochs", e, "--weights", "resumed.weights.npz")
    reference = np.load("reference.weights.npz")
    resumed = np.load("resumed.weights.npz")
    same = all(np.array_equal(reference[k], resumed[k]) for k in reference.files)
    print("weights bitwise identical to the uninterrupted run:", same)
    return same


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs (default 6)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--kill-at", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        train(args.epochs, args.weights, args.kill_at, args.backup)
    else:
        sys.exit(0 if main(args.epochs) else 1)
