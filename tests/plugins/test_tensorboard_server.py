"""A real TensorBoard server, queried over HTTP, serves the runs the plugin wrote."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loopkit as lk
from loopkit.layers import Dense
from loopkit.plugins import TensorBoard

SERVER_TIMEOUT = 60.0  # seconds for the server to answer and load every event
LEARNING_RATES = {"a": 0.01, "b": 0.003}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str, body: dict[str, Any] | None = None) -> Any:
    """GET ``url`` (POST ``body`` as JSON when given) and decode the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def scalar_series(url: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Return run -> tag -> [(step, value)] for every scalar the server knows."""
    series: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for run, tags in get(url + "/data/plugin/scalars/tags").items():
        for tag in tags:
            query = urllib.parse.urlencode({"run": run, "tag": tag})
            points = get(f"{url}/data/plugin/scalars/scalars?{query}")
            series.setdefault(run, {})[tag] = [(int(s), float(v)) for _, s, v in points]
    return series


def expected_series(histories: dict[str, list[lk.History]]) -> dict[str, dict[str, Any]]:
    """What each run must hold, by the plugin's contract, from the models' Histories."""
    expected: dict[str, dict[str, Any]] = {}
    for name, fits in histories.items():
        merged: dict[str, list[float]] = {}
        final: dict[str, list[tuple[int, float]]] = {}
        for history in fits:  # each fit's last epoch ends its HParams session
            for key, values in history.history.items():
                merged.setdefault(key, []).extend(values)
                final.setdefault("final/" + key, []).append(
                    (len(merged[key]) - 1, values[-1])
                )
        steps = list(range(len(merged["loss"])))
        train, validation = expected.setdefault(f"{name}/train", {}), {}
        for key, values in merged.items():
            if key.startswith("val_"):
                validation["epoch_" + key[4:]] = list(zip(steps, values, strict=True))
            else:
                train["epoch_" + key] = list(zip(steps, values, strict=True))
        expected[f"{name}/validation"] = validation
        expected[name] = final
    return expected


def tiny_model(learning_rate: float, seed: int) -> lk.Sequential:
    lk.set_random_seed(seed)
    model = lk.Sequential(
        [Dense(8, activation="relu", input_dim=4), Dense(1, activation="sigmoid")]
    )
    model.compile(
        optimizer=lk.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Two models logging to sibling run directories; model a is fit twice."""
    root = tmp_path_factory.mktemp("tensorboard") / "logs"
    rng = np.random.default_rng(1234)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, :1] - x[:, 2:3] > 0).astype(np.float32)
    histories: dict[str, list[lk.History]] = {}
    for seed, (name, learning_rate) in enumerate(LEARNING_RATES.items()):
        model = tiny_model(learning_rate, seed)
        plugin = TensorBoard(log_dir=root / name)
        fits = [(3, plugin)] if name == "b" else [(2, plugin), (2, plugin)]
        histories[name] = [
            model.fit(
                x,
                y,
                epochs=epochs,
                batch_size=16,
                validation_split=0.25,
                verbose=0,
                plugins=[tb],
            )
            for epochs, tb in fits
        ]
    return root, histories


def point_counts(series: dict[str, dict[str, list[Any]]]) -> dict[str, dict[str, int]]:
    return {
        run: {tag: len(points) for tag, points in tags.items()}
        for run, tags in series.items()
    }


def wait_until_served(
    process: subprocess.Popen[bytes], log: Path, url: str, expected: dict[str, Any]
) -> None:
    """Poll the server until it serves as many points as expected; fail after a timeout."""
    want, seen = point_counts(expected), None
    deadline = time.monotonic() + SERVER_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tensorboard exited with {process.returncode}:\n{log.read_text()}")
        try:
            seen = point_counts(scalar_series(url))
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            seen = None  # not listening yet
        if seen == want:
            return
        time.sleep(0.2)
    pytest.fail(
        f"tensorboard did not serve the expected points in {SERVER_TIMEOUT} s.\n"
        f"expected {want}\nserved {seen}\nlog:\n{log.read_text()}"
    )


@pytest.fixture(scope="module")
def server(logged: tuple[Path, dict[str, Any]]) -> Iterator[str]:
    """Start ``tensorboard --logdir`` on 127.0.0.1, wait until it serves every point."""
    root, histories = logged
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = root.parent / "tensorboard.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tensorboard.main",
                "--logdir",
                str(root),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--load_fast=false",
                "--reload_interval",
                "1",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_served(process, log, url, expected_series(histories))
            yield url
        finally:
            process.terminate()  # SIGTERM to the server's PID
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def test_server_lists_a_train_validation_and_session_run_per_model(server: str) -> None:
    assert sorted(get(server + "/data/runs")) == [
        "a",
        "a/train",
        "a/validation",
        "b",
        "b/train",
        "b/validation",
    ]


def test_server_scalars_equal_history_for_every_run_tag_and_step(
    server: str, logged: tuple[Path, dict[str, Any]]
) -> None:
    expected = expected_series(logged[1])
    served = scalar_series(server)
    assert {run: sorted(tags) for run, tags in served.items()} == {
        run: sorted(tags) for run, tags in expected.items()
    }
    assert sorted(served["a/train"]) == [
        "epoch_accuracy",
        "epoch_learning_rate",
        "epoch_loss",
    ]
    assert sorted(served["a/validation"]) == ["epoch_accuracy", "epoch_loss"]
    for run, tags in expected.items():
        for tag, points in tags.items():
            steps, values = zip(*served[run][tag], strict=True)
            assert list(steps) == [step for step, _ in points], (run, tag)
            np.testing.assert_allclose(
                values,
                np.float32([v for _, v in points]),
                rtol=1e-6,
                atol=1e-7,
                err_msg=f"{run} {tag}",
            )
    assert [s for s, _ in served["a/train"]["epoch_loss"]] == [0, 1, 2, 3]  # 2 fits


def test_server_hparams_tab_compares_the_models(
    server: str, logged: tuple[Path, dict[str, Any]]
) -> None:
    experiment = get(server + "/data/plugin/hparams/experiment", {"experimentName": ""})
    hparam_names = {info["name"] for info in experiment["hparamInfos"]}
    assert {
        "optimizer",
        "optimizer.learning_rate",
        "loss",
        "metrics",
        "batch_size",
        "epochs",
    } <= hparam_names
    metric_tags = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert metric_tags == {
        "final/loss",
        "final/accuracy",
        "final/val_loss",
        "final/val_accuracy",
        "final/learning_rate",
    }
    request = {
        "experimentName": "",
        "allowedStatuses": [
            "STATUS_UNKNOWN",
            "STATUS_SUCCESS",
            "STATUS_FAILURE",
            "STATUS_RUNNING",
        ],
        "colParams": [
            {"hparam": "optimizer.learning_rate"},
            {"metric": {"tag": "final/val_loss", "group": ""}},
        ],
        "startIndex": 0,
        "sliceSize": 10,
    }
    groups = get(server + "/data/plugin/hparams/session_groups", request)["sessionGroups"]
    by_session = {group["name"]: group for group in groups}
    assert sorted(by_session) == ["a", "b"]
    for name, learning_rate in LEARNING_RATES.items():
        group = by_session[name]
        assert group["hparams"]["optimizer"] == "Adam"
        np.testing.assert_allclose(
            group["hparams"]["optimizer.learning_rate"], learning_rate
        )
        last = logged[1][name][-1].history
        served = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        for key in ("loss", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(
                served["final/" + key], np.float32(last[key][-1]), rtol=1e-6
            )
