"""Make docs/tensorboard.png: the demo's curves, as a real TensorBoard server shows them.

Runs ``examples/digits_cnn.py`` unchanged in a temporary directory (its TensorBoard
plugin logs to ``./logs`` there), serves those logs with ``tensorboard --logdir`` on
127.0.0.1, screenshots the Scalars dashboard with headless Chromium, and stops the
server.

Run it from the repository root, in an environment with ``pip install -e
".[tensorboard,examples]"`` and a Chromium binary (Debian: ``apt-get install chromium``)::

    python docs/make_tensorboard_screenshot.py

It takes about a minute, most of it the demo's training. The test suite does not need
it, nor Chromium.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# The Scalars dashboard, train and validation overlaid, loss and accuracy side by side.
VIEW = "#scalars&tagFilter=epoch_(loss%7Caccuracy)&regexInput=train%7Cvalidation"
TIMEOUT = 60.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def train_demo(directory: Path) -> Path:
    """Run the demo in ``directory`` with TensorBoard logging; return its log directory."""
    demo = REPOSITORY / "examples" / "digits_cnn.py"
    subprocess.run([sys.executable, str(demo)], cwd=directory, check=True)
    logs = directory / "logs"
    if not (logs / "train").is_dir() or not (logs / "validation").is_dir():
        raise SystemExit(f"the demo wrote no train/validation runs under {logs}")
    return logs


def wait_for_runs(url: str, server: subprocess.Popen[bytes]) -> None:
    """Poll the server until it lists the train and validation runs."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"tensorboard exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url + "/data/runs", timeout=5) as response:
                if {"train", "validation"} <= set(json.load(response)):
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet
        time.sleep(0.5)
    raise SystemExit(f"tensorboard did not list the runs within {TIMEOUT} s")


def screenshot(browser: str, url: str, output: Path, profile: Path) -> None:
    """Save a 1400x475 screenshot of ``url`` taken by headless Chromium to ``output``."""
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1400,475",
            "--virtual-time-budget=15000",
            f"--screenshot={output}",
            url,
        ],
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    """Train the demo, serve its logs, and screenshot TensorBoard's Scalars dashboard."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=REPOSITORY / "docs" / "tensorboard.png"
    )
    parser.add_argument("--browser", default=None, help="Chromium binary (found on PATH)")
    args = parser.parse_args()
    browser = args.browser or next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        raise SystemExit(
            f"no Chromium found (tried {BROWSERS}); install it, or pass "
            "--browser /path/to/chromium"
        )
    with tempfile.TemporaryDirectory() as tmp:
        logs = train_demo(Path(tmp))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tensorboard.main",
                "--logdir",
                logs.name,  # relative, so the page shows "logs", not the temporary path
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--load_fast=false",
            ],
            cwd=logs.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_runs(url, server)
            screenshot(
                browser, f"{url}/{VIEW}", args.output.resolve(), Path(tmp) / "chrome"
            )
        finally:
            server.terminate()  # by its PID
            server.wait(timeout=10)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
