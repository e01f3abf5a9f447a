"""Plugins of a run: adaptation, the model's registry, the dispatcher."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from typing import Any

import pluggy
from attrs import define, field

from loopkit._dispatch.entry_points import resolve_plugin_names
from loopkit._dispatch.keras_callbacks import KerasCallbackAdapter, keras_methods
from loopkit._dispatch.markers import HOOK_NAMES, EventFilter, event_filter, hookimpl
from loopkit._dispatch.ordering import sort_plugins, unique_names
from loopkit._dispatch.plugin import KERAS_ALIASES, Plugin, is_noop
from loopkit._dispatch.registration import (
    add_plugin_hookspecs,
    check_pending,
    marked_hooks,
    new_manager,
    register,
)
from loopkit._dispatch.views import MarkedPlugin, PluginView
from loopkit._naming import plugin_name
from loopkit.errors import PluginError
from loopkit.validators import suggest

__all__ = [
    "HOOK_NAMES",
    "EventFilter",
    "HookDispatcher",
    "Plugin",
    "PluginRegistry",
    "as_plugin",
    "hookimpl",
    "plugin_name",
]


def as_plugin(obj: Any) -> Any:
    """Return what pluggy registers for ``obj``: a module itself, else a view of it.

    A view of the marked hook implementations (``MarkedPlugin``), or a
    Keras-callback adapter when no method is marked.

    Raises:
        PluginError: ``obj`` is a class, implements no hook, marks some hooks but
            leaves another hook-named method unmarked, or has a method named
            ``on_...`` that is no hook.
    """
    if inspect.isclass(obj):
        raise PluginError(
            f"Got the class {obj.__name__}, not an instance; pass {obj.__name__}() "
            "(or its entry-point name as a string)."
        )
    marked = marked_hooks(obj)
    if marked and not inspect.ismodule(obj):
        for attr in dir(obj):
            if attr in marked or (attr not in HOOK_NAMES and attr not in KERAS_ALIASES):
                continue
            method = getattr(obj, attr, None)
            if callable(method) and not is_noop(method):
                raise PluginError(
                    f"Plugin {plugin_name(obj)!r} marks some hooks with "
                    f"@loopkit.hookimpl but not {attr!r}, which would never be called. "
                    "Mark it with @loopkit.hookimpl too (or rename it if it is no hook)."
                )
    if marked:
        return obj if inspect.ismodule(obj) else MarkedPlugin(obj)
    if not inspect.ismodule(obj) and keras_methods(obj):
        return KerasCallbackAdapter(obj)
    raise PluginError(
        f"{obj!r} implements no loopkit hook: mark methods with @loopkit.hookimpl, or "
        f"name them like Keras callback methods. Valid hooks: {list(HOOK_NAMES)}."
    )


@define(eq=False)
class PluginRegistry:
    """The plugins registered on a model, kept across ``fit`` calls (``model.plugins``)."""

    _plugins: list[Any] = field(factory=list)

    def register(self, plugin: Any) -> Any:
        """Add ``plugin`` (an object, module, or entry-point name); return the object.

        A name listed in ``LOOPKIT_DISABLE_PLUGINS`` is not loaded: nothing is
        registered and None is returned.

        Raises:
            PluginError: the plugin does not fit the hook contract, is unknown by
                that name, or is registered already.
        """
        resolved = resolve_plugin_names([plugin])
        if not resolved:
            return None
        (obj,) = resolved
        as_plugin(obj)  # fail now, not at the next fit
        if any(p is obj for p in self._plugins):
            raise PluginError(f"Plugin {plugin_name(obj)!r} is already registered.")
        self._plugins.append(obj)
        return obj

    def unregister(self, plugin: Any) -> None:
        """Remove ``plugin``; a no-op if it is not registered."""
        self._plugins = [p for p in self._plugins if p is not plugin]

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._plugins))

    def __len__(self) -> int:
        return len(self._plugins)


class _Hook:
    """Calls one hook's implementations, applying event filters.

    When no implementation is a wrapper (the usual case) the hook calls the
    implementations itself, in pluggy's order and with pluggy's semantics (each gets
    the arguments it names, non-None results are collected, a ``firstresult`` hook
    stops at the first), skipping pluggy's per-call machinery: a batch hook then costs
    about a microsecond per plugin instead of ~10 for the first. With a wrapper, pluggy
    runs the call, and event filters subset the hook caller.
    """

    __slots__ = (
        "_cache",
        "_direct",
        "_filtered",
        "_full",
        "_manager",
        "active",
        "firstresult",
        "name",
    )

    def __init__(self, manager: pluggy.PluginManager, name: str) -> None:
        self.name = name
        self._manager = manager
        self._full = getattr(manager.hook, name)
        impls = self._full.get_hookimpls()
        self.active = bool(impls)
        spec = self._full.spec
        self.firstresult = bool(spec is not None and spec.opts.get("firstresult"))
        self._filtered = [
            (impl.plugin, flt)
            for impl in impls
            if (flt := event_filter(impl.function)) is not None
        ]
        self._cache: dict[tuple[int, ...], Any] = {}
        # (function, argument names, filter) in call order: pluggy stores them reversed.
        self._direct: tuple[tuple[Any, tuple[str, ...], EventFilter | None], ...] | None = (
            None
            if any(impl.wrapper or impl.hookwrapper for impl in impls)
            else tuple(
                (impl.function, tuple(impl.argnames), event_filter(impl.function))
                for impl in reversed(impls)
            )
        )

    def impls(self) -> list[Any]:
        """Return pluggy's hook implementations, in pluggy's (reverse call) order."""
        return list(self._full.get_hookimpls())

    def __call__(self, event: int, **kwargs: Any) -> Any:
        if self._direct is not None:
            return self._call_direct(event, kwargs)
        if not self._filtered:
            return self._full(**kwargs)
        skipped = tuple(id(p) for p, f in self._filtered if not f.fires(event))
        caller = self._cache.get(skipped)
        if caller is None:
            remove = [p for p, _ in self._filtered if id(p) in skipped]
            caller = self._manager.subset_hook_caller(self.name, remove)
            self._cache[skipped] = caller
        return caller(**kwargs)

    def _call_direct(self, event: int, kwargs: dict[str, Any]) -> Any:
        results = []
        argsets: dict[tuple[str, ...], list[Any]] = {}  # plugins mostly share signatures
        for function, argnames, flt in self._direct or ():
            if flt is not None and not flt.fires(event):
                continue
            args = argsets.get(argnames)
            if args is None:
                try:
                    args = argsets[argnames] = [kwargs[arg] for arg in argnames]
                except KeyError as err:
                    raise PluginError(
                        f"hooks.call({self.name!r}) got no {err.args[0]!r}, which "
                        f"{function.__qualname__} takes; pass every argument of the "
                        f"hook's spec: {sorted(kwargs)} were given."
                    ) from None
            result = function(*args)
            if result is not None:
                if self.firstresult:
                    return result
                results.append(result)
        return None if self.firstresult else results


class HookDispatcher:
    """The plugins of one run, registered in their final order, and a caller per hook.

    pluggy calls implementations last-registered-first; the dispatcher registers the
    sorted plugins in reverse so they run in sorted order (``tryfirst``/``trylast``
    and wrappers then apply on top, as in pluggy). ``active`` hooks are the ones with
    implementations: the loop skips the rest, and builds per-batch logs only when a
    batch hook is active. Hooks that plugins declare (``hookspecs``) are added
    before any plugin is registered; ``hook_names`` lists them after loopkit's.

    Raises:
        PluginError: a plugin is passed twice, does not fit the contract, or the
            ordering constraints form a cycle.
    """

    def __init__(self, plugins: Iterable[Any]) -> None:
        originals = list(plugins)
        seen: set[int] = set()
        for plugin in originals:
            if id(plugin) in seen:
                raise PluginError(
                    f"Plugin {plugin_name(plugin)!r} is in this run twice (registered "
                    "with model.plugins.register and passed again, or listed twice); "
                    "pass each plugin object once."
                )
            seen.add(id(plugin))
        adapted = [as_plugin(p) for p in originals]
        names = unique_names(originals)
        self._names = {id(p): name for p, name in zip(adapted, names, strict=True)}
        self.manager = new_manager()
        custom = add_plugin_hookspecs(self.manager, originals)
        self.hook_names: tuple[str, ...] = (*HOOK_NAMES, *custom)
        self.plugins: list[Any] = sort_plugins(adapted, names)
        for plugin in reversed(self.plugins):
            register(self.manager, plugin)
        check_pending(self.manager, self.hook_names)
        self.hooks = {name: _Hook(self.manager, name) for name in self.hook_names}

    def active(self, name: str) -> bool:
        """Return whether any plugin implements hook ``name``."""
        return self.hooks[name].active

    def call(self, name: str, event: int = 1, /, **kwargs: Any) -> Any:
        """Call hook ``name`` with ``kwargs`` (every argument of its spec) for ``event``.

        Returns:
            pluggy's result: the list of the implementations' non-None results, or
            for a ``firstresult`` spec the first non-None one (None when none).

        Raises:
            PluginError: no hook of that name exists in this run.
        """
        try:
            hook = self.hooks[name]
        except KeyError:
            raise PluginError(
                f"hooks.call({name!r}): this run has no such hook."
                f"{suggest(name, self.hook_names)} Hooks: {list(self.hook_names)}. A "
                "plugin's own hooks exist only in runs that include that plugin."
            ) from None
        if hook.active:
            return hook(event, **kwargs)
        return None if hook.firstresult else []

    def call_each(self, name: str, /, **kwargs: Any) -> list[tuple[str, Exception]]:
        """Call each implementation of ``name`` on its own, in order; return the failures.

        For the failure path (``on_exception``, then ``on_train_end``): one plugin
        raising does not keep the plugins after it from flushing and closing.

        Returns:
            ``(label, error)`` for each implementation that raised.
        """
        hook = self.hooks[name]
        failures: list[tuple[str, Exception]] = []
        if not hook.active:
            return failures
        owners: list[Any] = []
        for impl in reversed(hook.impls()):  # pluggy stores them in reverse call order
            if not any(impl.plugin is o for o in owners):
                owners.append(impl.plugin)
        for owner in owners:
            alone = self.manager.subset_hook_caller(
                name, [o for o in owners if o is not owner]
            )
            try:
                alone(**kwargs)
            except Exception as err:
                label = self._names.get(id(owner), plugin_name(owner))
                failures.append((f"{label}.{name}", err))
        return failures

    def originals(self) -> list[Any]:
        """Return the registered plugins as the user passed them, in call order."""
        return [p.original if isinstance(p, PluginView) else p for p in self.plugins]

    def named_plugins(self) -> list[tuple[str, Any]]:
        """Return ``(name, plugin)`` in call order, the names unique within the run.

        A name two plugins share gets ``_1``, ``_2``, ... on its later holders in the
        order the plugins were listed (as Keras names layers), so the same script
        gives every plugin the same name again: checkpoints key plugin state by it.
        """
        return [
            (self._names[id(p)], p.original if isinstance(p, PluginView) else p)
            for p in self.plugins
        ]

    def introduce(self, model: Any, params: dict[str, Any]) -> None:
        """Give every plugin ``model`` and ``params``, as Keras does before a run.

        Through ``set_model``/``set_params`` where defined; a Keras-style callback
        without them gets ``model``/``params`` attributes, so ``self.model`` works in
        it as in a subclass of Keras's ``Callback``.
        """
        for plugin in self.plugins:
            original = plugin.original if isinstance(plugin, PluginView) else plugin
            keras_style = isinstance(plugin, KerasCallbackAdapter)
            for attr, value in (("model", model), ("params", dict(params))):
                setter = getattr(original, f"set_{attr}", None)
                if callable(setter):
                    setter(value)
                elif keras_style:
                    try:
                        setattr(original, attr, value)
                    except AttributeError as err:
                        raise PluginError(
                            f"Callback {plugin_name(original)!r} has no set_{attr}() and "
                            f"refuses the attribute {attr!r} ({err}); subclass "
                            "loopkit.callbacks.Callback, or define set_model/set_params."
                        ) from err

    def describe(self) -> str:
        """Return, for each hook, the plugins it calls, in order (``model.show_loop``)."""
        lines = []
        for name in self.hook_names:
            impls = getattr(self.manager.hook, name).get_hookimpls()
            owners = []
            for impl in reversed(impls):  # pluggy stores them in reverse call order
                label = self._names.get(id(impl.plugin), plugin_name(impl.plugin))
                flt = event_filter(impl.function)
                if flt is not None:
                    label += (
                        f"[every={flt.every}]" if flt.once is None else f"[once={flt.once}]"
                    )
                if impl.wrapper or impl.hookwrapper:
                    label += "[wrapper]"
                owners.append(label)
            lines.append(f"{name}: {', '.join(owners) if owners else '-'}")
        return "\n".join(lines)
