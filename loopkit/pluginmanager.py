"""The hookimpl marker, plugin registration and ordering, and the per-run hook dispatcher."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pluggy
from attrs import define, field, frozen

from loopkit import hookspecs
from loopkit.entry_points import resolve_plugin_names
from loopkit.errors import PluginError
from loopkit.validators import suggest

__all__ = [
    "HOOK_NAMES",
    "EventFilter",
    "HookDispatcher",
    "Plugin",
    "PluginRegistry",
    "hookimpl",
    "plugin_name",
]

HOOK_NAMES: tuple[str, ...] = tuple(
    name for name, spec in vars(hookspecs).items() if hasattr(spec, "loopkit_spec")
)
"""Every hook loopkit defines, in the order ``hookspecs`` defines them (call order)."""

_pluggy_hookimpl = pluggy.HookimplMarker("loopkit")
_FILTER_ATTR = "loopkit_event_filter"
# Hooks with a natural event count, so ``every=``/``once=`` mean something on them.
_COUNTED_HOOKS = frozenset(
    n for n in HOOK_NAMES if "batch" in n or "epoch" in n or "optimizer_step" in n
)
# Keras's callback method names that differ from the hooks they stand for.
_KERAS_ALIASES = {"on_batch_begin": "on_train_batch_begin", "on_batch_end": "on_train_batch_end"}


@frozen
class EventFilter:
    """Which events of a hook an implementation sees (Ignite's ``every``/``once``).

    Events are numbered from 1: the epoch (``epoch + 1``) for epoch hooks, the
    model's training batch (``state.global_step + 1``) for training-batch and
    optimizer-step hooks, the batch within the run (``batch + 1``) for test and
    predict batches.

    Args:
        every: Fire on events ``every``, ``2 * every``, ...
        once: Fire on event ``once`` only.
    """

    every: int | None = None
    once: int | None = None

    def fires(self, event: int) -> bool:
        """Return whether the implementation runs for event number ``event``."""
        if self.once is not None and event != self.once:
            return False
        return self.every is None or event % self.every == 0


def hookimpl(
    function: Callable[..., Any] | None = None,
    *,
    tryfirst: bool = False,
    trylast: bool = False,
    wrapper: bool = False,
    hookwrapper: bool = False,
    optionalhook: bool = False,
    specname: str | None = None,
    every: int | None = None,
    once: int | None = None,
) -> Any:
    """Mark a method or function as a loopkit hook implementation.

    Used bare (``@hookimpl``) or with options (``@hookimpl(every=100)``). The options
    are pluggy's, plus ``every``/``once``: the dispatcher calls a filtered
    implementation only on matching events, so it costs nothing on the others.

    Raises:
        PluginError: ``every``/``once`` is not a positive int.
    """
    for label, value in (("every", every), ("once", once)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value <= 0):
            raise PluginError(
                f"hookimpl({label}={value!r}): expected a positive int, the event "
                "number (from 1) or period at which the implementation runs."
            )
    marker = _pluggy_hookimpl(
        tryfirst=tryfirst,
        trylast=trylast,
        wrapper=wrapper,
        hookwrapper=hookwrapper,
        optionalhook=optionalhook,
        specname=specname,
    )

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        if every is not None or once is not None:
            setattr(fn, _FILTER_ATTR, EventFilter(every=every, once=once))
        return marker(fn)  # type: ignore[no-any-return]

    return mark(function) if function is not None else mark


def _snake_case(name: str) -> str:
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name).lower()


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
    return _snake_case(type(plugin).__name__)


@define(eq=False, slots=False)
class Plugin:
    """Optional base class for plugins: ordering fields and empty state methods.

    Nothing requires inheriting from it; any object with ``@hookimpl`` methods (or
    Keras-style callback methods) is a plugin.

    Args:
        order: Lower runs earlier within a hook (default 0; monitors use 100,
            loggers 200, so they see the logs other plugins complete).
        before: Names of plugins this one must run before.
        after: Names of plugins this one must run after.
    """

    order: int = field(default=0, kw_only=True)
    before: tuple[str, ...] = field(default=(), kw_only=True, converter=tuple)
    after: tuple[str, ...] = field(default=(), kw_only=True, converter=tuple)

    def state_dict(self) -> dict[str, Any]:
        """Return the plugin's resumable state (JSON-ready values and arrays)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore state returned by ``state_dict``."""


def _marked_hooks(plugin: Any) -> list[str]:
    names = []
    for attr in dir(plugin):
        if attr.startswith("__"):
            continue
        try:
            value = getattr(plugin, attr)
        except Exception:  # properties that fail before setup are not hooks
            continue
        if hasattr(value, "loopkit_impl"):
            names.append(attr)
    return names


def _keras_methods(plugin: Any) -> dict[str, Callable[..., Any]]:
    """Return hook name -> bound method for a Keras-style callback's hook methods."""
    methods: dict[str, Callable[..., Any]] = {}
    for attr in dir(plugin):
        if not attr.startswith("on_"):
            continue
        method = getattr(plugin, attr)
        if not callable(method):
            continue
        hook = _KERAS_ALIASES.get(attr, attr)
        if hook not in HOOK_NAMES:
            raise PluginError(
                f"Plugin {plugin_name(plugin)!r} has a method {attr!r}, which is not a "
                f"loopkit hook.{suggest(attr, HOOK_NAMES)} Valid hooks: "
                f"{list(HOOK_NAMES)}."
            )
        methods[hook] = method
    return methods


@define(eq=False, slots=False)
class KerasCallbackAdapter:
    """Calls a Keras-style callback's methods the Keras way (``epoch``, ``logs``).

    pluggy passes no argument that has a default, and Keras callbacks declare
    ``logs=None``, so each method present gets a marked closure that fills them in.
    """

    callback: Any

    def __attrs_post_init__(self) -> None:
        for hook, method in _keras_methods(self.callback).items():
            setattr(self, hook, _keras_call(hook, method))

    @property
    def name(self) -> str:
        return plugin_name(self.callback)

    @property
    def order(self) -> int:
        return int(getattr(self.callback, "order", 0))

    @property
    def before(self) -> tuple[str, ...]:
        return tuple(getattr(self.callback, "before", ()))

    @property
    def after(self) -> tuple[str, ...]:
        return tuple(getattr(self.callback, "after", ()))


def _keras_call(hook: str, method: Callable[..., Any]) -> Callable[..., Any]:
    if "batch" in hook:

        def call_batch(batch: int, logs: Any) -> None:
            method(batch, logs)

        return _pluggy_hookimpl(call_batch)  # type: ignore[no-any-return]
    if "epoch" in hook:

        def call_epoch(epoch: int, logs: Any) -> None:
            method(epoch, logs)

        return _pluggy_hookimpl(call_epoch)  # type: ignore[no-any-return]
    if hook == "on_exception":

        def call_exception(exception: BaseException) -> None:
            method(exception)

        return _pluggy_hookimpl(call_exception)  # type: ignore[no-any-return]
    if "checkpoint" in hook:

        def call_checkpoint(checkpoint: Any) -> None:
            method(checkpoint)

        return _pluggy_hookimpl(call_checkpoint)  # type: ignore[no-any-return]
    if "optimizer_step" in hook:

        def call_step(step: Any) -> None:
            method(step)

        return _pluggy_hookimpl(call_step)  # type: ignore[no-any-return]

    def call_logs(logs: Any) -> None:
        method(logs)

    return _pluggy_hookimpl(call_logs)  # type: ignore[no-any-return]


def as_plugin(obj: Any) -> Any:
    """Return what pluggy registers for ``obj``: itself, or a Keras-callback adapter.

    Raises:
        PluginError: ``obj`` is a class, or implements no hook at all.
    """
    if inspect.isclass(obj):
        raise PluginError(
            f"Got the class {obj.__name__}, not an instance; pass {obj.__name__}() "
            "(or its entry-point name as a string)."
        )
    if _marked_hooks(obj):
        return obj
    if not inspect.ismodule(obj) and _keras_methods(obj):
        return KerasCallbackAdapter(obj)
    raise PluginError(
        f"{obj!r} implements no loopkit hook: mark methods with @loopkit.hookimpl, or "
        f"name them like Keras callback methods. Valid hooks: {list(HOOK_NAMES)}."
    )


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("loopkit")
    manager.add_hookspecs(hookspecs)
    return manager


def _register(manager: pluggy.PluginManager, plugin: Any) -> None:
    """Register one plugin, turning pluggy's validation errors into PluginErrors."""
    try:
        manager.register(plugin, name=f"{plugin_name(plugin)}-{id(plugin)}")
    except pluggy.PluginValidationError as err:
        raise PluginError(_explain_validation(plugin, str(err))) from err
    except ValueError as err:  # registered twice
        raise PluginError(
            f"Plugin {plugin_name(plugin)!r} is registered twice in one run; pass each "
            "plugin object once."
        ) from err
    for hook in _marked_hooks(plugin):
        spec_name = getattr(getattr(plugin, hook), "loopkit_impl", {}).get("specname") or hook
        flt = getattr(getattr(plugin, hook), _FILTER_ATTR, None)
        if flt is not None and spec_name not in _COUNTED_HOOKS:
            raise PluginError(
                f"Plugin {plugin_name(plugin)!r}: every=/once= on {spec_name!r}, which "
                "has no event count; use them on batch, epoch or optimizer-step hooks."
            )


def _explain_validation(plugin: Any, message: str) -> str:
    match = re.search(r"Argument\(s\) (\{.*?\}) are declared in the hookimpl", message)
    hook = re.search(r"for hook '?(\w+)'?", message)
    if match and hook:
        hook_name = hook.group(1)
        valid = list(inspect.signature(getattr(hookspecs, hook_name)).parameters)
        return (
            f"Plugin {plugin_name(plugin)!r}: {hook_name}() takes argument(s) "
            f"{match.group(1)} that the hook does not pass; it passes {valid}. Rename "
            "them, or take only a subset of those."
        )
    return f"Plugin {plugin_name(plugin)!r} does not fit the hook contract: {message}"


def _sort(plugins: Sequence[Any]) -> list[Any]:
    """Order plugins by ``order`` then position, honouring ``before``/``after``.

    Raises:
        PluginError: the constraints form a cycle (named), or name no plugin present.
    """
    names = [plugin_name(p) for p in plugins]
    index = {name: i for i, name in enumerate(names)}
    edges: dict[int, set[int]] = {i: set() for i in range(len(plugins))}
    for i, plugin in enumerate(plugins):
        for label, targets in (("before", getattr(plugin, "before", ())),
                               ("after", getattr(plugin, "after", ()))):
            for target in targets:
                if target not in index:
                    continue  # ordering against an absent plugin is a no-op, as in pytest
                j = index[target]
                first, then = (i, j) if label == "before" else (j, i)
                edges[first].add(then)
    indegree = {i: 0 for i in edges}
    for targets in edges.values():
        for t in targets:
            indegree[t] += 1
    key = {i: (int(getattr(p, "order", 0)), i) for i, p in enumerate(plugins)}
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
        stuck = [names[i] for i in indegree if indegree[i] > 0]
        raise PluginError(
            f"The plugins' before=/after= constraints form a cycle among {stuck}; "
            "remove one of the constraints."
        )
    return [plugins[i] for i in ordered]


@define(eq=False)
class PluginRegistry:
    """The plugins registered on a model, kept across ``fit`` calls (``model.plugins``)."""

    _plugins: list[Any] = field(factory=list)

    def register(self, plugin: Any) -> Any:
        """Add ``plugin`` (an object, module, or entry-point name); return the object."""
        (resolved,) = resolve_plugin_names([plugin])
        as_plugin(resolved)  # fail now, not at the next fit
        if any(p is resolved for p in self._plugins):
            raise PluginError(f"Plugin {plugin_name(resolved)!r} is already registered.")
        self._plugins.append(resolved)
        return resolved

    def unregister(self, plugin: Any) -> None:
        """Remove ``plugin``; a no-op if it is not registered."""
        self._plugins = [p for p in self._plugins if p is not plugin]

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._plugins))

    def __len__(self) -> int:
        return len(self._plugins)


class _Hook:
    """Calls one hook's implementations, applying event filters by subsetting."""

    __slots__ = ("_cache", "_filtered", "_full", "_manager", "active", "name")

    def __init__(self, manager: pluggy.PluginManager, name: str) -> None:
        self.name = name
        self._manager = manager
        self._full = getattr(manager.hook, name)
        impls = self._full.get_hookimpls()
        self.active = bool(impls)
        self._filtered = [
            (impl.plugin, getattr(impl.function, _FILTER_ATTR))
            for impl in impls
            if hasattr(impl.function, _FILTER_ATTR)
        ]
        self._cache: dict[tuple[int, ...], Any] = {}

    def __call__(self, event: int, **kwargs: Any) -> Any:
        if not self._filtered:
            return self._full(**kwargs)
        skipped = tuple(id(p) for p, f in self._filtered if not f.fires(event))
        caller = self._cache.get(skipped)
        if caller is None:
            remove = [p for p, _ in self._filtered if id(p) in skipped]
            caller = self._manager.subset_hook_caller(self.name, remove) if remove else self._full
            self._cache[skipped] = caller
        return caller(**kwargs)


class HookDispatcher:
    """The plugins of one run, registered in their final order, and a caller per hook.

    pluggy calls implementations last-registered-first; the dispatcher registers the
    sorted plugins in reverse so they run in sorted order. ``active`` hooks are the
    ones with implementations: the loop skips the rest, and builds per-batch logs only
    when a batch hook is active.
    """

    def __init__(self, plugins: Iterable[Any]) -> None:
        adapted = [as_plugin(p) for p in plugins]
        self.plugins: list[Any] = _sort(adapted)
        self.manager = _new_manager()
        for plugin in reversed(self.plugins):
            _register(self.manager, plugin)
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as err:
            raise PluginError(_explain_unknown_hook(str(err))) from err
        self.hooks = {name: _Hook(self.manager, name) for name in HOOK_NAMES}

    def active(self, name: str) -> bool:
        """Return whether any plugin implements hook ``name``."""
        return self.hooks[name].active

    def call(self, name: str, event: int = 1, **kwargs: Any) -> Any:
        """Call hook ``name`` with ``kwargs`` for event number ``event``, if implemented."""
        hook = self.hooks[name]
        return hook(event, **kwargs) if hook.active else None

    def originals(self) -> list[Any]:
        """Return the registered plugins as the user passed them, in call order."""
        return [p.callback if isinstance(p, KerasCallbackAdapter) else p for p in self.plugins]

    def describe(self) -> str:
        """Return, for each hook, the plugins it calls, in order (``model.show_loop``)."""
        lines = []
        for name in HOOK_NAMES:
            impls = getattr(self.manager.hook, name).get_hookimpls()
            owners = []
            for impl in reversed(impls):  # pluggy stores them in reverse call order
                owner = impl.plugin
                label = plugin_name(owner)
                flt = getattr(impl.function, _FILTER_ATTR, None)
                if flt is not None:
                    label += f"[every={flt.every}]" if flt.once is None else f"[once={flt.once}]"
                owners.append(label)
            lines.append(f"{name}: {', '.join(owners) if owners else '-'}")
        return "\n".join(lines)


def _explain_unknown_hook(message: str) -> str:
    match = re.search(r"unknown hook '(\w+)' in plugin", message)
    if match:
        hook = match.group(1)
        return (
            f"A plugin implements {hook!r}, which is not a loopkit hook."
            f"{suggest(hook, HOOK_NAMES)} Valid hooks: {list(HOOK_NAMES)}."
        )
    return message
