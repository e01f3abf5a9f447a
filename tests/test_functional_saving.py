"""Functional models save, load, checkpoint and resume like Sequential ones."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import loopkit as lk
from loopkit import CheckpointError
from loopkit.layers import Add, Concatenate, Dense, Dropout


def build_model() -> lk.Model:
    image = lk.Input(shape=(6,), name="image")
    meta = lk.Input(shape=(2,), name="meta")
    shared = Dense(8, activation="relu", name="shared")
    h = Add()([shared(image), Dense(8, name="skip")(image)])
    tower = lk.Sequential([Dense(4, activation="tanh", input_dim=2)], name="tower")
    h = Concatenate()([h, tower(meta), tower(meta)])
    label = Dense(3, activation="softmax", name="label")(Dropout(0.2)(h))
    score = Dense(1, name="score")(h)
    return lk.Model({"image": image, "meta": meta}, {"label": label, "score": score})


def data(n: int = 48) -> tuple[dict, dict]:
    rng = np.random.default_rng(0)
    x = {"image": rng.standard_normal((n, 6)), "meta": rng.standard_normal((n, 2))}
    y = {"label": rng.integers(0, 3, n), "score": rng.standard_normal((n, 1))}
    return x, y


def compiled() -> lk.Model:
    model = build_model()
    model.compile(
        "adam",
        loss={"label": "sparse_categorical_crossentropy", "score": "mse"},
        metrics={"label": ["accuracy"]},
        loss_weights={"label": 1.0, "score": 0.5},
    )
    return model


def test_a_saved_functional_model_loads_with_the_same_predictions_and_training(
    tmp_path: Path,
) -> None:
    x, y = data()
    model = compiled()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(str(tmp_path / "m.npz"))
    loaded = lk.saving.load_model(str(tmp_path / "m.npz"))
    assert [type(layer).__name__ for layer in loaded.layers] == [
        type(layer).__name__ for layer in model.layers
    ]
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    p1, p2 = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    for key in ("label", "score"):
        np.testing.assert_array_equal(p1[key], p2[key])
    assert loaded.evaluate(x, y, verbose=0, return_dict=True) == model.evaluate(
        x, y, verbose=0, return_dict=True
    )
    # the optimizer state came back too: one more epoch gives the same weights
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_functional_file_declaring_a_huge_layer_is_refused_before_building(
    tmp_path: Path,
) -> None:
    x, y = data()
    model = compiled()
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.npz"
    model.save(str(path))
    with np.load(path, allow_pickle=False) as stored:  # an independent reader
        arrays = {k: stored[k] for k in stored.files}
    meta = json.loads(arrays.pop("__manifest__").tobytes())
    meta["model"]["input_layers"][0]["shape"] = [16000]
    for entry in meta["model"]["layers"]:
        if entry["config"]["name"] in ("shared", "skip"):
            entry["config"]["units"] = 16000
    bomb = tmp_path / "bomb.npz"
    with bomb.open("wb") as handle:
        np.savez(
            handle,
            **arrays,
            __manifest__=np.frombuffer(json.dumps(meta).encode(), np.uint8),
        )
    tracemalloc.start()
    try:
        with pytest.raises(
            CheckpointError, match=r"\(16000, 16000\) in the model but \(6, 8\)"
        ):
            lk.saving.load_model(str(bomb))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # building would allocate 2 GB


RESUME_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    import loopkit as lk
    sys.path.insert(0, {tests!r})
    from test_functional_saving import compiled, data
    from loopkit.plugins import BackupAndRestore

    out, backup, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lk.set_random_seed(11)
    model = compiled()
    x, y = data(96)

    class Killer:
        @lk.hookimpl
        def on_train_batch_end(self, state):
            if kill_at and state.global_step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    model.fit(x, y, epochs=3, batch_size=16, verbose=0,
              plugins=[BackupAndRestore(backup, save_freq=4), Killer()])
    np.save(out, model.flat_weights)
    """
)


def run(tmp_path: Path, out: str, backup: str, kill_at: int) -> subprocess.CompletedProcess:
    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT.format(tests=str(Path(__file__).parent)))
    return subprocess.run(
        [
            sys.executable,
            str(script),
            str(tmp_path / out),
            str(tmp_path / backup),
            str(kill_at),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_killed_functional_run_resumes_to_bitwise_identical_weights(
    tmp_path: Path,
) -> None:
    reference = run(tmp_path, "reference.npy", "backup-ref", 0)
    assert reference.returncode == 0, reference.stderr
    killed = run(tmp_path, "resumed.npy", "backup", 10)  # mid-epoch 1 (6 batches each)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = run(tmp_path, "resumed.npy", "backup", 0)
    assert resumed.returncode == 0, resumed.stderr
    np.testing.assert_array_equal(
        np.load(tmp_path / "resumed.npy"), np.load(tmp_path / "reference.npy")
    )
