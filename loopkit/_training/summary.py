"""The Keras-style summary table of a model: layers, output shapes, parameter counts."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopkit._training.network import Network

__all__ = ["format_size", "format_summary"]

_WIDTHS = (34, 26, 12)


def format_size(n_scalars: int, itemsize: int) -> str:
    """Return ``n_scalars`` of ``itemsize`` bytes as ``"12.75 KB"``, as Keras prints it."""
    size = float(n_scalars * itemsize)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _row(*cells: str) -> str:
    """Return one table row; a layer cell too wide for its column wraps onto more lines.

    The first line holds the output shape and count; at least two spaces always part
    the columns, so a long name never runs into the shape.
    """
    a, b, c = _WIDTHS
    first, *rest = textwrap.wrap(cells[0], a - 3, break_on_hyphens=False) or [""]
    lines = [f" {first:<{a - 1}}{cells[1]:<{b}}{cells[2]:>{c}}".rstrip()]
    lines.extend(f" {more}" for more in rest)
    return "\n".join(lines)


def format_summary(model: Network) -> str:
    """Return the summary table of ``model`` as text (shapes are ``?`` before build)."""
    width = sum(_WIDTHS) + 1
    lines = [
        f'Model: "{model.name}"',
        "_" * width,
        _row("Layer (type)", "Output Shape", "Param #"),
    ]
    lines.append("=" * width)
    shape = model.input_shape
    for i, layer in enumerate(model.layers):
        if shape is not None and layer.built:
            shape = layer.compute_output_shape(shape)
            shown, count = str((None, *shape)), f"{layer.count_params():,}"
        else:
            shown, count = "?", "0 (unbuilt)"
        lines.append(_row(f"{layer.name} ({type(layer).__name__})", shown, count))
        if i < len(model.layers) - 1:
            lines.append("")
    lines.append("=" * width)
    itemsize = model.dtype.itemsize
    total = sum(layer.count_params() for layer in model.layers if layer.built)
    trainable = sum(p.size for p in model.trainable_weights) if model.built else 0
    for label, n in (
        ("Total", total),
        ("Trainable", trainable),
        ("Non-trainable", total - trainable),
    ):
        lines.append(f"{label} params: {n:,} ({format_size(n, itemsize)})")
    lines.append("_" * width)
    return "\n".join(lines)
