"""Plugins installed by other packages, enabled by name through ``loopkit.plugins``."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from attrs import frozen

from loopkit.errors import PluginError
from loopkit.validators import suggest

__all__ = [
    "ENTRY_POINT_GROUP",
    "InstalledPlugin",
    "disabled_names",
    "enabled_from_environment",
    "installed_plugins",
    "load_plugin",
    "resolve_plugin_names",
]

ENTRY_POINT_GROUP = "loopkit.plugins"


@frozen
class InstalledPlugin:
    """One entry point of the ``loopkit.plugins`` group.

    Args:
        name: The name users enable it by (``plugins=["name"]``).
        value: ``"module:attribute"``.
        distribution: The installed package that declares it.
    """

    name: str
    value: str
    distribution: str


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def installed_plugins() -> list[InstalledPlugin]:
    """Return every installed plugin, sorted by name (installed is not enabled)."""
    found = []
    for name, ep in sorted(_entry_points().items()):
        dist = ep.dist.name if ep.dist is not None else "?"
        found.append(InstalledPlugin(name=name, value=ep.value, distribution=dist))
    return found


def _names_from(variable: str) -> list[str]:
    return [n.strip() for n in os.environ.get(variable, "").split(",") if n.strip()]


def enabled_from_environment() -> list[str]:
    """Return the names in ``LOOPKIT_PLUGINS`` (comma-separated)."""
    return _names_from("LOOPKIT_PLUGINS")


def disabled_names() -> set[str]:
    """Return the names in ``LOOPKIT_DISABLE_PLUGINS``, which are never loaded."""
    return set(_names_from("LOOPKIT_DISABLE_PLUGINS"))


def load_plugin(name: str) -> Any:
    """Load the installed plugin ``name``: a class is instantiated with its defaults.

    Raises:
        PluginError: no plugin of that name is installed (lists the installed ones),
            or loading it failed.
    """
    available = _entry_points()
    if name not in available:
        raise PluginError(
            f"No installed loopkit plugin is named {name!r}.{suggest(name, available)} "
            f"Installed: {sorted(available)}. Install the package that provides it, "
            "or run `loopkit plugins` to list them."
        )
    try:
        obj = available[name].load()
        return obj() if inspect.isclass(obj) else obj
    except Exception as err:
        raise PluginError(
            f"Loading plugin {name!r} ({available[name].value}) failed: {err!r}. Fix or "
            "reinstall the package that provides it, or block the name with "
            "LOOPKIT_DISABLE_PLUGINS."
        ) from err


def resolve_plugin_names(items: Iterable[Any]) -> list[Any]:
    """Replace every string in ``items`` by the installed plugin of that name.

    Names in ``LOOPKIT_DISABLE_PLUGINS`` are dropped, a repeated name is loaded once,
    and objects pass through.

    Raises:
        PluginError: a name is not installed (the message lists the installed ones).
    """
    blocked = disabled_names()
    loaded: set[str] = set()
    resolved = []
    for item in items:
        if isinstance(item, str):
            if item in blocked or item in loaded:
                continue  # a name in LOOPKIT_PLUGINS and plugins=[...] loads once
            loaded.add(item)
            resolved.append(load_plugin(item))
        else:
            resolved.append(item)
    return resolved
