"""History.plot and loopkit.plot_history: one axis per metric, training and validation."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

import loopkit as lk
from loopkit.layers import Dense


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def fit_history(rng: np.random.Generator, **fit_args: object) -> lk.History:
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    model = lk.Sequential([Dense(3, activation="relu", input_dim=4), Dense(1, "sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model.fit(x, y, batch_size=16, verbose=0, **fit_args)  # type: ignore[arg-type]


def test_plot_history_draws_one_axis_per_metric_with_training_and_validation(
    rng: np.random.Generator,
) -> None:
    history = fit_history(rng, epochs=4, validation_split=0.25)
    figure = lk.plot_history(history)
    axes = figure.get_axes()
    assert [ax.get_title() for ax in axes] == ["loss", "accuracy"]
    for ax, name in zip(axes, ["loss", "accuracy"], strict=True):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert sorted(lines) == ["training", "validation"]
        np.testing.assert_array_equal(lines["training"].get_xdata(), [1, 2, 3, 4])
        np.testing.assert_allclose(lines["training"].get_ydata(), history.history[name])
        np.testing.assert_allclose(
            lines["validation"].get_ydata(), history.history["val_" + name]
        )
        assert ax.get_xlabel() == "epoch"


def test_history_plot_is_plot_history_and_takes_metric_names_with_or_without_val(
    rng: np.random.Generator,
) -> None:
    history = fit_history(rng, epochs=2, validation_split=0.25)
    figure = history.plot(metrics=["val_accuracy", "learning_rate"])
    assert [ax.get_title() for ax in figure.get_axes()] == ["accuracy", "learning_rate"]
    (rate,) = figure.get_axes()[1].get_lines()
    np.testing.assert_allclose(rate.get_ydata(), history.history["learning_rate"])


def test_a_run_without_validation_draws_training_curves_only(
    rng: np.random.Generator,
) -> None:
    figure = lk.plot_history(fit_history(rng, epochs=2).history)  # the Keras-style dict
    for ax in figure.get_axes():
        assert [line.get_label() for line in ax.get_lines()] == ["training"]


def test_epochs_without_validation_are_left_out_of_the_validation_curve(
    rng: np.random.Generator,
) -> None:
    history = fit_history(rng, epochs=4, validation_split=0.25, validation_freq=2)
    loss_axis = lk.plot_history(history, metrics=["loss"]).get_axes()[0]
    validation = next(ln for ln in loss_axis.get_lines() if ln.get_label() == "validation")
    np.testing.assert_array_equal(validation.get_xdata(), [2, 4])
    np.testing.assert_allclose(
        validation.get_ydata(), np.asarray(history.history["val_loss"])[[1, 3]]
    )


def test_save_writes_a_png_with_both_curves_on_each_axis(
    rng: np.random.Generator, tmp_path: Path
) -> None:
    history = fit_history(rng, epochs=5, validation_split=0.25)
    target = tmp_path / "plots" / "curves.png"
    figure = history.plot(save=target)
    with Image.open(target) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("RGB")).astype(int)
    dpi = 100
    assert (width, height) == tuple(round(v * dpi) for v in figure.get_size_inches())
    # matplotlib's first two colours: training (C0) and validation (C1), on each axis.
    for ax in figure.get_axes():
        box = ax.get_window_extent()
        left, right = int(box.x0), int(box.x1)
        top, bottom = height - int(box.y1), height - int(box.y0)
        inside = pixels[top:bottom, left:right]
        for colour in ("#1f77b4", "#ff7f0e"):
            rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
            assert (np.abs(inside - rgb).sum(axis=-1) < 30).sum() > 20, (ax, colour)


def test_an_unknown_metric_names_what_the_history_logged(rng: np.random.Generator) -> None:
    history = fit_history(rng, epochs=1)
    with pytest.raises(lk.ConfigError, match=r"has no 'auc'\. It logged \['accuracy', "):
        lk.plot_history(history, metrics=["loss", "auc"])


def test_an_empty_history_says_to_fit_first() -> None:
    with pytest.raises(lk.ConfigError, match=r"no epoch recorded; fit\(\) for at least"):
        lk.History().plot()


def test_something_that_is_not_a_history_is_refused() -> None:
    with pytest.raises(lk.ConfigError, match=r"got list; expected the History that fit"):
        lk.plot_history([0.5, 0.4])  # type: ignore[arg-type]


def test_missing_matplotlib_says_how_to_install_it(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = fit_history(rng, epochs=1)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'loopkit\[plot\]'"):
        history.plot()
