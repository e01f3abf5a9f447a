"""Registering plugins with pluggy: declared hook specs, signature checks, clear errors."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import pluggy

from loopkit import hookspecs
from loopkit._dispatch.markers import HOOK_NAMES, event_filter
from loopkit._naming import plugin_name
from loopkit.errors import PluginError
from loopkit.validators import suggest

__all__ = [
    "add_plugin_hookspecs",
    "check_pending",
    "marked_hooks",
    "new_manager",
    "register",
]

# Hooks with a natural event count, so ``every=``/``once=`` mean something on them.
_COUNTED_HOOKS = frozenset(
    n for n in HOOK_NAMES if "batch" in n or "epoch" in n or "optimizer_step" in n
)


def marked_hooks(plugin: Any) -> list[str]:
    """Return the names of ``plugin``'s attributes marked with ``@hookimpl``.

    A view (``loopkit._dispatch.views``) lists them in ``hook_attrs``.
    """
    known = getattr(plugin, "hook_attrs", None)
    if isinstance(known, frozenset):
        return sorted(known)
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


class _Manager(pluggy.PluginManager):
    """pluggy's manager, told which attributes of a view hold hooks.

    pluggy inspects every attribute of a plugin it registers; a view lists its hook
    attributes, so the others are skipped without a look (a cost paid at every fit).
    """

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        known = getattr(plugin, "hook_attrs", None)
        if isinstance(known, frozenset) and name not in known:
            return None
        return super().parse_hookimpl_opts(plugin, name)


def new_manager() -> pluggy.PluginManager:
    """Return a pluggy manager that knows loopkit's hook specs."""
    manager = _Manager("loopkit")
    manager.add_hookspecs(hookspecs)
    return manager


def add_plugin_hookspecs(
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


def _hook_of(function: Any, attr: str) -> str:
    """Return the hook a marked function implements: its ``specname`` or its name."""
    return str(function.loopkit_impl.get("specname") or attr)


def register(manager: pluggy.PluginManager, plugin: Any) -> None:
    """Register one plugin, after checking each implementation against its spec.

    The checks read the specs' and implementations' signatures, so the messages are
    loopkit's; pluggy's own validation then finds nothing left to reject.
    """
    owner = plugin_name(plugin)
    for attr in marked_hooks(plugin):
        function = getattr(plugin, attr)
        hook = _hook_of(function, attr)
        if event_filter(function) is not None and hook not in _COUNTED_HOOKS:
            raise PluginError(
                f"Plugin {owner!r}: every=/once= on {hook!r}, which has no event count; "
                "use them on batch, epoch or optimizer-step hooks."
            )
        opts = function.loopkit_impl
        if (opts.get("wrapper") or opts.get("hookwrapper")) and not (
            inspect.isgeneratorfunction(function)
        ):
            kind = "wrapper" if opts.get("wrapper") else "hookwrapper"
            raise PluginError(
                f"Plugin {owner!r}: {attr}() is marked @hookimpl({kind}=True) but is no "
                "generator; a wrapper yields once, where the other implementations run "
                "(result = yield; return result). Add the yield, or drop "
                f"{kind}=True."
            )
        args = _spec_args(manager, hook)
        if args is not None:  # unknown hooks fail in check_pending, with a suggestion
            _check_arguments(owner, attr, hook, function, args)
    try:
        manager.register(plugin, name=f"{owner}-{id(plugin)}")
    except pluggy.PluginValidationError as err:  # a case the checks above miss
        raise PluginError(
            f"Plugin {plugin_name(err.plugin)!r} does not fit the hook contract: {err}"
        ) from err


def _check_arguments(
    owner: str, attr: str, hook: str, function: Any, args: tuple[str, ...]
) -> None:
    """Reject arguments the hook does not pass, and parameters with defaults.

    pluggy 1.7 passes a hook argument to a parameter with a default, older versions
    never do, and none checks such a parameter's name against the spec.
    """
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return
    named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    unknown = sorted(p.name for p in named if p.name not in args)
    if unknown:
        raise PluginError(
            f"Plugin {owner!r}: {attr}() takes argument(s) {unknown} that the hook "
            f"does not pass.{suggest(unknown[0], args)} It passes {list(args)}; take "
            "any subset of those, by name."
        )
    for p in named:
        if p.default is not p.empty:
            raise PluginError(
                f"Plugin {owner!r}: {attr}() gives {p.name!r} a default ({p.name}="
                f"{p.default!r}); whether pluggy passes such an argument depends on its "
                f"version. Remove the default: {hook!r} always passes {p.name!r}."
            )


def check_pending(manager: pluggy.PluginManager, hook_names: Sequence[str]) -> None:
    """Fail on any implementation of a hook no spec of the run defines.

    Raises:
        PluginError: naming the hook, the closest valid one, and every valid hook.
    """
    for plugin in manager.get_plugins():
        for attr in marked_hooks(plugin):
            function = getattr(plugin, attr)
            hook = _hook_of(function, attr)
            caller = getattr(manager.hook, hook, None)
            if function.loopkit_impl.get("optionalhook") or (
                caller is not None and caller.has_spec()
            ):
                continue
            raise PluginError(
                f"Plugin {plugin_name(plugin)!r} implements {hook!r}, which is not a "
                f"loopkit hook.{suggest(hook, hook_names)} Valid hooks: "
                f"{list(hook_names)}. If another plugin declares it (hookspecs=...), "
                "add that plugin to the run."
            )
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as err:  # a case the loop above misses
        raise PluginError(
            f"Plugin {plugin_name(err.plugin)!r} does not fit the hook contract: {err}"
        ) from err
