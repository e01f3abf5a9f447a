"""Names derived from objects: class names in snake case, and the name a plugin goes by."""

from __future__ import annotations

import inspect
import re
from typing import Any

__all__ = ["plugin_name", "snake_case"]


def snake_case(name: str, *, split_after_digit: bool = True) -> str:
    """Return a CapWords name in snake case: ``"EarlyStopping"`` -> ``"early_stopping"``.

    A run of capitals stays one word (``"KLDivergence"`` -> ``"kl_divergence"``). A
    capital after a digit starts a word (``"L1L2"`` -> ``"l1_l2"``) unless
    ``split_after_digit`` is False, as for Keras's layer names (``"Conv2D"`` ->
    ``"conv2d"``).
    """
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    before = r"([a-z\d])" if split_after_digit else r"([a-z])"
    return re.sub(before + r"([A-Z])", r"\1_\2", name).lower()


def plugin_name(plugin: Any) -> str:
    """Return the name other plugins use for ``plugin`` in ``before``/``after``.

    Its ``name`` attribute when that is a string, else its class name in snake case
    (a module's own name for module plugins).
    """
    name = getattr(plugin, "name", None)
    if isinstance(name, str) and name:
        return name
    if inspect.ismodule(plugin):
        return plugin.__name__.rsplit(".", 1)[-1]
    return snake_case(type(plugin).__name__)
