"""Keras-style callbacks as plugins: methods called the Keras way, by position."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from attrs import define

from loopkit._dispatch.markers import HOOK_NAMES, hookimpl
from loopkit._dispatch.plugin import HOOK_ARGS, KERAS_ALIASES, is_noop
from loopkit._dispatch.views import PluginView
from loopkit._naming import plugin_name
from loopkit.errors import PluginError
from loopkit.validators import suggest

__all__ = ["KerasCallbackAdapter", "keras_methods"]


def _overridden(plugin: Any, attr: str) -> Any:
    """Return ``plugin``'s method ``attr`` unless absent or one of Plugin's empty ones."""
    method = getattr(plugin, attr, None)
    return None if not callable(method) or is_noop(method) else method


def keras_methods(plugin: Any) -> dict[str, tuple[str, Callable[..., Any]]]:
    """Return hook name -> (attribute, bound method) for a Keras-style callback.

    Raises:
        PluginError: a method is named ``on_...`` but is no hook.
    """
    methods: dict[str, tuple[str, Callable[..., Any]]] = {}
    for attr in dir(plugin):
        if not attr.startswith("on_"):
            continue
        method = _overridden(plugin, attr)
        if method is None:
            continue
        hook = KERAS_ALIASES.get(attr, attr)
        if hook not in HOOK_NAMES:
            raise PluginError(
                f"Plugin {plugin_name(plugin)!r} has a method {attr!r}, which is not a "
                f"loopkit hook.{suggest(attr, HOOK_NAMES)} Valid hooks: "
                f"{list(HOOK_NAMES)}."
            )
        if attr in KERAS_ALIASES and _overridden(plugin, hook) is not None:
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
    hook_args = HOOK_ARGS[hook]
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
    extra = HOOK_ARGS[hook][2:]
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
class KerasCallbackAdapter(PluginView):
    """Calls a Keras-style callback's methods the Keras way (``epoch``, ``logs``).

    Keras calls ``on_epoch_end(epoch, logs)`` by position and callbacks declare
    ``logs=None``, while pluggy calls by name, so each method present gets a marked
    function with the hook's exact parameters that calls it the way it fits.
    ``name``, ``order``, ``before`` and ``after`` are read from the callback.
    """

    def __attrs_post_init__(self) -> None:
        owner = plugin_name(self.original)
        methods = keras_methods(self.original)
        for hook, (attr, method) in methods.items():
            invoke = _keras_invoker(owner, attr, hook, method)
            setattr(self, hook, hookimpl(_hook_function(hook, invoke)))
        self.hook_attrs = frozenset(methods)
