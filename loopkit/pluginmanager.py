"""The hookimpl marker, plugin adaptation and ordering, and the per-run hook dispatcher."""

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
    "KerasCallbackAdapter",
    "Plugin",
    "PluginRegistry",
    "as_plugin",
    "hookimpl",
    "plugin_name",
]

HOOK_NAMES: tuple[str, ...] = tuple(
    name for name, spec in vars(hookspecs).items() if hasattr(spec, "loopkit_spec")
)
"""Every hook loopkit defines, in the order ``hookspecs`` defines them (call order)."""

_HOOK_ARGS: dict[str, tuple[str, ...]] = {
    name: tuple(inspect.signature(getattr(hookspecs, name)).parameters)
    for name in HOOK_NAMES
}
_pluggy_hookimpl = pluggy.HookimplMarker("loopkit")
_FILTER_ATTR = "loopkit_event_filter"
# Hooks with a natural event count, so ``every=``/``once=`` mean something on them.
_COUNTED_HOOKS = frozenset(
    n for n in HOOK_NAMES if "batch" in n or "epoch" in n or "optimizer_step" in n
)
# Keras's callback method names that differ from the hooks they stand for.
_KERAS_ALIASES = {
    "on_batch_begin": "on_train_batch_begin",
    "on_batch_end": "on_train_batch_end",
}


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
        if self.once is not None:
            return event == self.once
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
    are pluggy's, plus ``every``/``once`` (one of them): the dispatcher calls a
    filtered implementation only on matching events, so it costs nothing on the
    others. Arguments are passed by name; give them no default (loopkit rejects one,
    since pluggy versions differ on passing it).

    Raises:
        PluginError: ``every``/``once`` is not a positive int, or both are given.
    """
    for label, value in (("every", every), ("once", once)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value <= 0
        ):
            raise PluginError(
                f"hookimpl({label}={value!r}): expected a positive int, the event "
                "number (from 1) or period at which the implementation runs."
            )
    if every is not None and once is not None:
        raise PluginError(
            f"hookimpl(every={every}, once={once}): pass one of them; every= fires "
            "periodically, once= on a single event."
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
        return marker(fn)

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


def _names(value: Any) -> tuple[str, ...]:
    """Return ``before``/``after`` as a tuple; a lone string is one name, not letters."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


@define(eq=False, slots=False)
class Plugin:
    """Optional base class for plugins: ordering fields and empty state methods.

    Nothing requires inheriting from it; any object with ``@hookimpl`` methods (or
    Keras-style callback methods) is a plugin. Other attributes loopkit reads from
    any plugin: ``name`` (for ``before``/``after``), ``hookspecs`` (hooks it declares,
    see ``loopkit.hookspecs``), ``required_log_keys``/``provided_log_keys`` (checked
    at the start of ``fit``).

    Args:
        order: Lower runs earlier within a hook (default 0; monitors use 100,
            loggers 200, so they see the logs other plugins complete).
        before: Names of plugins this one must run before (a name or a list).
        after: Names of plugins this one must run after (a name or a list).
    """

    order: int = field(default=0, kw_only=True)
    before: tuple[str, ...] = field(default=(), kw_only=True, converter=_names)
    after: tuple[str, ...] = field(default=(), kw_only=True, converter=_names)

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


def _keras_methods(plugin: Any) -> dict[str, tuple[str, Callable[..., Any]]]:
    """Return hook name -> (attribute, bound method) for a Keras-style callback."""
    methods: dict[str, tuple[str, Callable[..., Any]]] = {}
    for attr in dir(plugin):
        if not attr.startswith("on_"):
            continue
        method = getattr(plugin, attr, None)
        if not callable(method):
            continue
        hook = _KERAS_ALIASES.get(attr, attr)
        if hook not in HOOK_NAMES:
            raise PluginError(
                f"Plugin {plugin_name(plugin)!r} has a method {attr!r}, which is not a "
                f"loopkit hook.{suggest(attr, HOOK_NAMES)} Valid hooks: "
                f"{list(HOOK_NAMES)}."
            )
        if attr in _KERAS_ALIASES and callable(getattr(plugin, hook, None)):
            continue  # Keras calls on_train_batch_end, not on_batch_end, when both exist
        methods[hook] = (attr, method)
    return methods


def _keras_invoker(
    owner: str, attr: str, hook: str, method: Callable[..., Any]
) -> Callable[[dict[str, Any]], Any]:
    """Return how to call ``method`` with a hook's arguments.

    By name when every parameter without a default is a hook argument (so
    ``on_train_end(self)`` and ``on_before_optimizer_step(self, model, step)`` work),
    else by position, the Keras way: ``(epoch, logs)``, ``(batch, logs)``, ``(logs)``.

    Raises:
        PluginError: the method fits neither way.
    """
    hook_args = _HOOK_ARGS[hook]
    positional = hook_args[2:]  # every hook passes model and state first
    try:
        signature: inspect.Signature | None = inspect.signature(method)
    except (TypeError, ValueError):  # builtins without a signature: the Keras way
        signature = None
    if signature is not None:
        params = signature.parameters.values()
        if not any(p.kind is p.VAR_POSITIONAL for p in params):
            by_name = [
                p.name
                for p in params
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                and p.name in hook_args
            ]
            others = [
                p for p in params if p.name not in by_name and p.kind is not p.VAR_KEYWORD
            ]
            if all(p.default is not p.empty for p in others):
                return lambda values: method(**{n: values[n] for n in by_name})
        try:
            signature.bind(*positional)
        except TypeError as err:
            unknown = [p.name for p in params if p.name not in hook_args]
            hint = suggest(unknown[0], hook_args) if unknown else ""
            raise PluginError(
                f"Plugin {owner!r}: {attr}{signature} does not fit hook {hook!r}, which "
                f"passes {list(hook_args)} by name (or {list(positional)} by position, "
                f"as Keras does).{hint} Take any subset of those argument names."
            ) from err
    return lambda values: method(*(values[n] for n in positional))


def _hook_function(
    hook: str, invoke: Callable[[dict[str, Any]], Any]
) -> Callable[..., Any]:
    """Return a function whose parameters are exactly ``hook``'s, for pluggy to call."""
    extra = _HOOK_ARGS[hook][2:]
    if extra == ("epoch", "logs"):

        def call_epoch(model: Any, state: Any, epoch: int, logs: Any) -> None:
            invoke({"model": model, "state": state, "epoch": epoch, "logs": logs})

        return call_epoch
    if extra == ("batch", "logs"):

        def call_batch(model: Any, state: Any, batch: int, logs: Any) -> None:
            invoke({"model": model, "state": state, "batch": batch, "logs": logs})

        return call_batch
    if extra == ("logs",):

        def call_logs(model: Any, state: Any, logs: Any) -> None:
            invoke({"model": model, "state": state, "logs": logs})

        return call_logs
    if extra == ("step",):

        def call_step(model: Any, state: Any, step: Any) -> None:
            invoke({"model": model, "state": state, "step": step})

        return call_step
    if extra == ("exception",):

        def call_exception(model: Any, state: Any, exception: BaseException) -> None:
            invoke({"model": model, "state": state, "exception": exception})

        return call_exception
    assert extra == ("checkpoint",), f"no adapter for hook {hook!r} with {extra}"

    def call_checkpoint(model: Any, state: Any, checkpoint: Any) -> None:
        invoke({"model": model, "state": state, "checkpoint": checkpoint})

    return call_checkpoint


@define(eq=False, slots=False)
class KerasCallbackAdapter:
    """Calls a Keras-style callback's methods the Keras way (``epoch``, ``logs``).

    Keras calls ``on_epoch_end(epoch, logs)`` by position and callbacks declare
    ``logs=None``, while pluggy calls by name, so each method present gets a marked
    function with the hook's exact parameters that calls it the way it fits.
    ``order``, ``before`` and ``after`` are read from the callback.
    """

    callback: Any

    def __attrs_post_init__(self) -> None:
        owner = plugin_name(self.callback)
        for hook, (attr, method) in _keras_methods(self.callback).items():
            invoke = _keras_invoker(owner, attr, hook, method)
            setattr(self, hook, _pluggy_hookimpl(_hook_function(hook, invoke)))

    @property
    def name(self) -> str:
        return plugin_name(self.callback)

    @property
    def order(self) -> Any:
        return getattr(self.callback, "order", 0)

    @property
    def before(self) -> tuple[str, ...]:
        return _names(getattr(self.callback, "before", ()))

    @property
    def after(self) -> tuple[str, ...]:
        return _names(getattr(self.callback, "after", ()))


def as_plugin(obj: Any) -> Any:
    """Return what pluggy registers for ``obj``: itself, or a Keras-callback adapter.

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
    marked = _marked_hooks(obj)
    if marked and not inspect.ismodule(obj):
        for attr in dir(obj):
            if attr in marked or (attr not in HOOK_NAMES and attr not in _KERAS_ALIASES):
                continue
            if callable(getattr(obj, attr, None)):
                raise PluginError(
                    f"Plugin {plugin_name(obj)!r} marks some hooks with "
                    f"@loopkit.hookimpl but not {attr!r}, which would never be called. "
                    "Mark it with @loopkit.hookimpl too (or rename it if it is no hook)."
                )
    if marked:
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


def _add_plugin_hookspecs(
    manager: pluggy.PluginManager, plugins: Sequence[Any]
) -> list[str]:
    """Add the hooks that plugins declare in a ``hookspecs`` attribute; return their names.

    Raises:
        PluginError: ``hookspecs`` is not a class or module of marked functions, or
            redefines a hook that loopkit or another plugin defines.
    """
    added: list[str] = []
    seen: set[int] = set()
    for plugin in plugins:
        specs = getattr(plugin, "hookspecs", None)
        if specs is None or specs is hookspecs or id(specs) in seen:
            continue
        seen.add(id(specs))
        owner = plugin_name(plugin)
        if not (inspect.isclass(specs) or inspect.ismodule(specs)):
            raise PluginError(
                f"Plugin {owner!r} has hookspecs={specs!r}; expected a class or module "
                "whose functions are marked @loopkit.hookspec (the class, not an instance)."
            )
        names = [n for n in dir(specs) if manager.parse_hookspec_opts(specs, n) is not None]
        if not names:
            raise PluginError(
                f"Plugin {owner!r} has hookspecs={specs!r}, which holds no function "
                "marked @loopkit.hookspec; mark each hook specification with it."
            )
        for name in names:
            caller = getattr(manager.hook, name, None)
            if caller is not None and caller.has_spec():
                definer = "loopkit" if name in HOOK_NAMES else "another plugin of this run"
                raise PluginError(
                    f"Plugin {owner!r} declares hook {name!r}, which {definer} already "
                    f"defines; give the hook a name of its own, such as 'on_{owner}_...'."
                )
        manager.add_hookspecs(specs)
        added.extend(names)
    return added


def _spec_args(manager: pluggy.PluginManager, hook: str) -> tuple[str, ...] | None:
    caller = getattr(manager.hook, hook, None)
    spec = None if caller is None else caller.spec
    return None if spec is None else (*spec.argnames, *spec.kwargnames)


def _register(manager: pluggy.PluginManager, plugin: Any) -> None:
    """Register one plugin, turning pluggy's validation errors into PluginErrors."""
    owner = plugin_name(plugin)
    for attr in _marked_hooks(plugin):
        function = getattr(plugin, attr)
        hook = function.loopkit_impl.get("specname") or attr
        if getattr(function, _FILTER_ATTR, None) is not None and hook not in _COUNTED_HOOKS:
            raise PluginError(
                f"Plugin {owner!r}: every=/once= on {hook!r}, which has no event count; "
                "use them on batch, epoch or optimizer-step hooks."
            )
        args = _spec_args(manager, hook)
        if args is not None:  # unknown hooks fail in check_pending, with a suggestion
            _check_defaults(owner, attr, hook, function, args)
    try:
        manager.register(plugin, name=f"{owner}-{id(plugin)}")
    except pluggy.PluginValidationError as err:
        raise PluginError(_explain_validation(manager, owner, str(err))) from err


def _check_defaults(
    owner: str, attr: str, hook: str, function: Any, args: tuple[str, ...]
) -> None:
    """Reject parameters with defaults, which pluggy passes or not depending on version.

    pluggy 1.7 passes a hook argument to a parameter with a default, older versions
    never do, and none checks such a parameter's name against the spec.
    """
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return
    for p in params:
        if p.default is p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name not in args:
            raise PluginError(
                f"Plugin {owner!r}: {attr}() takes argument(s) [{p.name!r}] that the hook "
                f"does not pass.{suggest(p.name, args)} It passes {list(args)}; take any "
                "subset of those, by name."
            )
        raise PluginError(
            f"Plugin {owner!r}: {attr}() gives {p.name!r} a default ({p.name}="
            f"{p.default!r}); whether pluggy passes such an argument depends on its "
            f"version. Remove the default: {hook!r} always passes {p.name!r}."
        )


def _explain_validation(manager: pluggy.PluginManager, owner: str, message: str) -> str:
    unknown = re.search(r"Argument\(s\) \{(.*?)\} are declared in the hookimpl", message)
    hook = re.search(r"for hook '(\w+)'", message)
    if unknown and hook:
        names = re.findall(r"'(\w+)'", unknown.group(1))
        valid = list(_spec_args(manager, hook.group(1)) or ())
        return (
            f"Plugin {owner!r}: {hook.group(1)}() takes argument(s) {sorted(names)} that "
            f"the hook does not pass.{suggest(sorted(names)[0], valid)} It passes "
            f"{valid}; take any subset of those, by name."
        )
    return f"Plugin {owner!r} does not fit the hook contract: {message}"


def _order(plugin: Any) -> float:
    order = getattr(plugin, "order", 0)
    if isinstance(order, bool) or not isinstance(order, (int, float)):
        raise PluginError(
            f"Plugin {plugin_name(plugin)!r} has order={order!r}; expected a number "
            "(lower runs earlier within a hook; the default is 0)."
        )
    return float(order)


def _sort(plugins: Sequence[Any]) -> list[Any]:
    """Order plugins by ``order`` then position, honouring ``before``/``after``.

    Names in ``before``/``after`` that match no plugin of the run are ignored, as in
    pytest, so a plugin may order itself against an optional one.

    Raises:
        PluginError: the constraints form a cycle (named), or an ``order`` is no number.
    """
    names = [plugin_name(p) for p in plugins]
    by_name: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        by_name.setdefault(name, []).append(i)
    edges: dict[int, set[int]] = {i: set() for i in range(len(plugins))}
    for i, plugin in enumerate(plugins):
        for target in _names(getattr(plugin, "before", ())):
            edges[i].update(j for j in by_name.get(target, ()) if j != i)
        for target in _names(getattr(plugin, "after", ())):
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
    """Calls one hook's implementations, applying event filters by subsetting."""

    __slots__ = (
        "_cache",
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
            (impl.plugin, getattr(impl.function, _FILTER_ATTR))
            for impl in impls
            if hasattr(impl.function, _FILTER_ATTR)
        ]
        self._cache: dict[tuple[int, ...], Any] = {}

    def impls(self) -> list[Any]:
        """Return pluggy's hook implementations, in pluggy's (reverse call) order."""
        return list(self._full.get_hookimpls())

    def __call__(self, event: int, **kwargs: Any) -> Any:
        if not self._filtered:
            return self._full(**kwargs)
        skipped = tuple(id(p) for p, f in self._filtered if not f.fires(event))
        caller = self._cache.get(skipped)
        if caller is None:
            remove = [p for p, _ in self._filtered if id(p) in skipped]
            caller = self._manager.subset_hook_caller(self.name, remove)
            self._cache[skipped] = caller
        return caller(**kwargs)


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
        self.manager = _new_manager()
        custom = _add_plugin_hookspecs(self.manager, originals)
        self.hook_names: tuple[str, ...] = (*HOOK_NAMES, *custom)
        self.plugins: list[Any] = _sort(adapted)
        for plugin in reversed(self.plugins):
            _register(self.manager, plugin)
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as err:
            raise PluginError(_explain_unknown_hook(err, self.hook_names)) from err
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
                failures.append((f"{plugin_name(owner)}.{name}", err))
        return failures

    def originals(self) -> list[Any]:
        """Return the registered plugins as the user passed them, in call order."""
        return [
            p.callback if isinstance(p, KerasCallbackAdapter) else p for p in self.plugins
        ]

    def describe(self) -> str:
        """Return, for each hook, the plugins it calls, in order (``model.show_loop``)."""
        lines = []
        for name in self.hook_names:
            impls = getattr(self.manager.hook, name).get_hookimpls()
            owners = []
            for impl in reversed(impls):  # pluggy stores them in reverse call order
                label = plugin_name(impl.plugin)
                flt = getattr(impl.function, _FILTER_ATTR, None)
                if flt is not None:
                    label += (
                        f"[every={flt.every}]" if flt.once is None else f"[once={flt.once}]"
                    )
                if impl.wrapper or impl.hookwrapper:
                    label += "[wrapper]"
                owners.append(label)
            lines.append(f"{name}: {', '.join(owners) if owners else '-'}")
        return "\n".join(lines)


def _explain_unknown_hook(err: pluggy.PluginValidationError, valid: Sequence[str]) -> str:
    match = re.search(r"unknown hook '(\w+)' in plugin", str(err))
    if match:
        hook = match.group(1)
        return (
            f"Plugin {plugin_name(err.plugin)!r} implements {hook!r}, which is not a "
            f"loopkit hook.{suggest(hook, valid)} Valid hooks: {list(valid)}. If "
            "another plugin declares it (hookspecs=...), add that plugin to the run."
        )
    return str(err)
