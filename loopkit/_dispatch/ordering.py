"""The order of a run's plugins: ``order`` first, then ``before``/``after`` constraints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loopkit._naming import plugin_name
from loopkit.errors import PluginError

__all__ = ["as_names", "sort_plugins", "unique_names"]


def as_names(value: Any) -> tuple[str, ...]:
    """Return ``before``/``after`` as a tuple; a lone string is one name, not letters."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def unique_names(plugins: Sequence[Any]) -> list[str]:
    """Return each plugin's name, made unique as Keras names layers, in list order.

    The first holder of a name keeps it; later ones get ``name_1``, ``name_2``, ...,
    skipping any name a plugin of the list already goes by.
    """
    names = [plugin_name(p) for p in plugins]
    taken = set(names)
    given: set[str] = set()
    counts: dict[str, int] = {}
    unique = []
    for name in names:
        if name in given:
            n = counts.get(name, 0) + 1
            while f"{name}_{n}" in taken or f"{name}_{n}" in given:
                n += 1
            counts[name] = n
            name = f"{name}_{n}"
        given.add(name)
        unique.append(name)
    return unique


def _order(plugin: Any) -> float:
    order = getattr(plugin, "order", 0)
    if isinstance(order, bool) or not isinstance(order, (int, float)):
        raise PluginError(
            f"Plugin {plugin_name(plugin)!r} has order={order!r}; expected a number "
            "(lower runs earlier within a hook; the default is 0)."
        )
    return float(order)


def sort_plugins(plugins: Sequence[Any], unique: Sequence[str] = ()) -> list[Any]:
    """Order plugins by ``order`` then position, honouring ``before``/``after``.

    A name in ``before``/``after`` matches every plugin going by it, and the one
    plugin whose ``unique`` name (``unique_names``) it is. Names that match no plugin
    of the run are ignored, as in pytest, so a plugin may order itself against an
    optional one.

    Raises:
        PluginError: the constraints form a cycle (named), or an ``order`` is no number.
    """
    names = [plugin_name(p) for p in plugins]
    by_name: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        by_name.setdefault(name, []).append(i)
    for i, name in enumerate(unique):
        if name != names[i]:
            by_name.setdefault(name, []).append(i)
    edges: dict[int, set[int]] = {i: set() for i in range(len(plugins))}
    for i, plugin in enumerate(plugins):
        for target in as_names(getattr(plugin, "before", ())):
            edges[i].update(j for j in by_name.get(target, ()) if j != i)
        for target in as_names(getattr(plugin, "after", ())):
            for j in by_name.get(target, ()):
                if j != i:
                    edges[j].add(i)
    indegree = dict.fromkeys(edges, 0)
    for targets in edges.values():
        for t in targets:
            indegree[t] += 1
    key = {i: (_order(p), i) for i, p in enumerate(plugins)}
    ready = sorted((i for i, d in indegree.items() if d == 0), key=key.__getitem__)
    ordered: list[int] = []
    while ready:
        i = ready.pop(0)
        ordered.append(i)
        for t in edges[i]:
            indegree[t] -= 1
            if indegree[t] == 0:
                ready.append(t)
        ready.sort(key=key.__getitem__)
    if len(ordered) < len(plugins):
        cycle = _find_cycle({i for i, d in indegree.items() if d > 0}, edges)
        chain = " -> ".join(repr(names[i]) for i in [*cycle, cycle[0]])
        raise PluginError(
            f"The plugins' before=/after= constraints form a cycle: {chain} (each must "
            "run before the next). Remove one of these constraints."
        )
    return [plugins[i] for i in ordered]


def _find_cycle(stuck: set[int], edges: dict[int, set[int]]) -> list[int]:
    """Return one cycle among ``stuck`` nodes, each of which has a stuck predecessor."""
    predecessor = {t: i for i in sorted(stuck) for t in edges[i] if t in stuck}
    path: list[int] = []
    node = min(stuck)
    while node not in path:
        path.append(node)
        node = predecessor[node]
    return path[path.index(node) :][::-1]
