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


def _row(*cells: str, widths: tuple[int, ...] = _WIDTHS) -> str:
    """Return one table row; a cell too wide for its column wraps onto more lines.

    The first line holds the output shape and count; at least two spaces always part
    the columns, so a long name never runs into the shape.
    """
    a, b, c = widths[:3]
    first, *rest = textwrap.wrap(cells[0], a - 3, break_on_hyphens=False) or [""]
    shape, *more = textwrap.wrap(cells[1], b - 2, break_on_hyphens=False) or [""]
    line = f" {first:<{a - 1}}{shape:<{b}}{cells[2]:>{c}}"
    links: list[str] = []
    if len(cells) > 3:
        links = cells[3].split("\n")
        line += f"  {links[0]}"
    lines = [line.rstrip()]
    for i in range(max(len(rest), len(more), len(links) - 1)):
        name = rest[i] if i < len(rest) else ""
        shown = more[i] if i < len(more) else ""
        link = links[i + 1] if i + 1 < len(links) else ""
        lines.append(f" {name:<{a - 1}}{shown:<{b + c}}  {link}".rstrip())
    return "\n".join(lines)


def _connections(model: Network) -> dict[int, tuple[str, list[str]]]:
    """Map each layer to its output shape and the tensors it is called on (Keras style)."""
    graph = model.graph
    found: dict[int, tuple[str, list[str]]] = {}
    if graph is None:
        return found
    calls: dict[int, int] = {}
    producer: dict[int, str] = {}
    for tensor in graph.inputs:
        if tensor.input_layer is not None:
            producer[id(tensor)] = f"{tensor.input_layer.name}[0][0]"
            found[id(tensor.input_layer)] = (str(tensor.shape), ["-"])
    for node in graph.nodes:
        index = calls.get(id(node.layer), 0)
        calls[id(node.layer)] = index + 1
        shown = (
            str([t.shape for t in node.outputs])
            if len(node.outputs) > 1
            else str(node.output.shape)
        )
        shape, links = found.get(id(node.layer), (shown, []))
        links = links + [producer.get(id(t), "?") for t in node.inputs]
        found[id(node.layer)] = (shape, links)
        for k, tensor in enumerate(node.outputs):
            producer[id(tensor)] = f"{node.layer.name}[{index}][{k}]"
    return found


def format_summary(model: Network) -> str:
    """Return the summary table of ``model`` as text (shapes are ``?`` before build).

    A functional model (not a plain stack) gets Keras's "Connected to" column:
    the tensors each layer is called on, as ``layer[call][0]``.
    """
    functional = type(model).__name__ != "Sequential" and model.graph is not None
    width = sum(_WIDTHS) + 1 + (22 if functional else 0)
    header = ["Layer (type)", "Output Shape", "Param #"]
    lines = [
        f'Model: "{model.name}"',
        "_" * width,
        _row(*header, *(["Connected to"] if functional else [])),
    ]
    lines.append("=" * width)
    links = _connections(model)
    shape = model.input_shape
    for i, layer in enumerate(model.layers):
        if functional:
            shown, connected = links[id(layer)]
            count = f"{layer.count_params():,}"
            lines.append(
                _row(
                    f"{layer.name} ({type(layer).__name__})",
                    shown,
                    count,
                    "\n".join(connected),
                )
            )
        elif shape is not None and layer.built:
            shape = layer.compute_output_shape(shape)
            lines.append(
                _row(
                    f"{layer.name} ({type(layer).__name__})",
                    str((None, *shape)),
                    f"{layer.count_params():,}",
                )
            )
        else:
            lines.append(_row(f"{layer.name} ({type(layer).__name__})", "?", "0 (unbuilt)"))
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
