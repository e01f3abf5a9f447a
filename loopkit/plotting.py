"""Learning curves: a run's History drawn with matplotlib, one axis per metric."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopkit.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from loopkit._training.history import History

__all__ = ["plot_history"]

_COLUMNS = 3  # axes per row before the figure wraps onto a new row


def _import_pyplot(call: str) -> Any:
    """Return ``matplotlib.pyplot``, or explain how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            f"{call} needs matplotlib, which is not installed. Install it with "
            "`pip install matplotlib` or loopkit's extra: `pip install 'loopkit[plot]'`."
        ) from err
    return plt


def _curves(history: History | Mapping[str, Sequence[float]], call: str) -> dict[str, Any]:
    """Return the log key -> values mapping of a History (or of a Keras-style dict)."""
    curves = getattr(history, "history", history)
    if not isinstance(curves, Mapping):
        raise ConfigError(
            f"{call} got {type(history).__name__}; expected the History that fit() "
            "returns, or its .history dict of log key -> one value per epoch."
        )
    if not curves or not any(len(v) for v in curves.values()):
        raise ConfigError(
            f"{call} got a History with no epoch recorded; fit() for at least one "
            "epoch first."
        )
    return dict(curves)


def _choose(
    curves: Mapping[str, Any], metrics: Sequence[str] | None, call: str
) -> list[str]:
    """Return the metric names to draw, one axis each, in log order."""
    trained = [k for k in curves if not k.startswith("val_")]
    if metrics is None:
        return [k for k in trained if k != "learning_rate"] or trained
    if isinstance(metrics, str):
        metrics = [metrics]
    names = [m.removeprefix("val_") for m in metrics]
    known = set(trained) | {k.removeprefix("val_") for k in curves}
    unknown = [m for m in names if m not in known]
    if unknown:
        raise ConfigError(
            f"{call} got metrics={list(metrics)!r}; the History has no "
            f"{unknown[0]!r}. It logged {sorted(known)}; pass some of those, or "
            "metrics=None for all but the learning rate."
        )
    return list(dict.fromkeys(names))


def plot_history(
    history: History | Mapping[str, Sequence[float]],
    metrics: Sequence[str] | None = None,
    save: str | os.PathLike[str] | None = None,
) -> Figure:
    """Draw the loss and each metric against the epoch, training beside validation.

    One axis per metric (``loss``, ``accuracy``, ...), each with the training curve
    and, when the run validated, the ``val_`` curve; epochs are counted from 1 as
    the progress output counts them. Epochs without validation
    (``validation_freq > 1``) are left out of the validation curve. The figure is
    made with ``matplotlib.pyplot``, so ``plt.show()`` and notebooks display it;
    close it with ``plt.close(fig)`` when drawing many.

    Args:
        history: The History that ``fit`` returns (``model.history``), or its
            ``.history`` dict (log key -> one value per epoch).
        metrics: Names of the curves to draw, with or without ``val_``, e.g.
            ``["loss", "accuracy"]``. None draws every logged key except
            ``learning_rate``.
        save: Path of a PNG file to write (its folder is created if missing).

    Returns:
        The matplotlib Figure.

    Raises:
        ModuleNotFoundError: matplotlib is not installed.
        ConfigError: the History is empty or has no such metric.
    """
    call = "plot_history()"
    curves = _curves(history, call)
    names = _choose(curves, metrics, call)
    plt = _import_pyplot(call)
    columns = min(len(names), _COLUMNS)
    rows = math.ceil(len(names) / columns)
    figure: Figure
    figure, axes = plt.subplots(
        rows, columns, figsize=(4.5 * columns, 3.4 * rows), squeeze=False
    )
    for ax in axes.flat[len(names) :]:
        ax.remove()
    for ax, name in zip(axes.flat, names, strict=False):
        for key, label in ((name, "training"), ("val_" + name, "validation")):
            values = curves.get(key)
            if not values:
                continue
            points = [(i + 1, float(v)) for i, v in enumerate(values) if math.isfinite(v)]
            if points:
                epochs, ys = zip(*points, strict=True)
                sparse = len(points) < len(values)  # validation_freq > 1: mark the points
                ax.plot(epochs, ys, marker="o" if sparse else None, label=label)
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend()
        ax.grid(alpha=0.3)
    figure.tight_layout()
    if save is not None:
        path = Path(save)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=100)
    return figure
