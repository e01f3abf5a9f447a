"""LambdaPlugin: a plugin made of plain functions with Keras callback signatures."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from attrs import define, field

from loopkit import HOOK_NAMES, ConfigError, Plugin, hookimpl, hookspecs
from loopkit.validators import suggest

__all__ = ["LambdaPlugin"]

# Keras's spellings of the training-batch hooks (Callback.on_batch_begin/end).
_ALIASES = {"on_batch_begin": "on_train_batch_begin", "on_batch_end": "on_train_batch_end"}


def _arguments(hook: str) -> tuple[str, ...]:
    """Return the names of the arguments a function for ``hook`` gets, in order.

    The hook's own after ``model`` and ``state``, which every hook passes first.
    """
    return tuple(inspect.signature(getattr(hookspecs, hook)).parameters)[2:]


def _impl(hook: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """Return a hookimpl for ``hook`` that calls ``function`` the way Keras would.

    pluggy passes a hook's arguments by the names the implementation declares, so
    each shape of call gets its own small function.
    """
    arguments = _arguments(hook)
    if arguments == ("batch", "logs"):

        def call_batch(batch: int, logs: Any) -> None:
            function(batch, logs)

        return hookimpl(call_batch)
    if arguments == ("epoch", "logs"):

        def call_epoch(epoch: int, logs: Any) -> None:
            function(epoch, logs)

        return hookimpl(call_epoch)
    if arguments == ("exception",):

        def call_exception(exception: BaseException) -> None:
            function(exception)

        return hookimpl(call_exception)
    if arguments == ("checkpoint",):

        def call_checkpoint(checkpoint: Any) -> None:
            function(checkpoint)

        return hookimpl(call_checkpoint)
    if arguments == ("step",):

        def call_step(step: Any) -> None:
            function(step)

        return hookimpl(call_step)

    def call_logs(logs: Any) -> None:
        function(logs)

    return hookimpl(call_logs)


@define(eq=False, slots=False, init=False)  # attrs cannot write an __init__ with **hooks
class LambdaPlugin(Plugin):
    """A plugin built from functions, as Keras's ``LambdaCallback``.

    Each function is called with Keras's positional arguments:

    - ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch, logs)``;
    - ``on_train_begin(logs)``, ``on_train_end(logs)``, and likewise
      ``on_test_begin``/``on_test_end``/``on_predict_begin``/``on_predict_end``;
    - ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)``
      (Keras's ``on_batch_begin``/``on_batch_end`` are accepted as aliases), and the
      test and predict batch hooks the same way;
    - loopkit's own hooks: ``on_before_optimizer_step(step)``,
      ``on_after_optimizer_step(step)``, ``on_exception(exception)``,
      ``on_save_checkpoint(checkpoint)``, ``on_load_checkpoint(checkpoint)``.

    ``on_epoch_end``'s ``logs`` may be written to (add keys for later plugins, as
    Keras allows); other hooks' logs are read-only. Only the hooks given are
    implemented, built per instance, so e.g. a plugin without batch functions adds
    nothing to the per-batch cost. Unlike Keras, an unknown keyword (a misspelled
    hook) raises with a suggestion instead of being silently ignored, and a
    LambdaPlugin with no function at all is refused, so ``plugins=["lambda_plugin"]``
    fails clearly (there is nothing to run without functions).

    Args:
        on_epoch_begin: Called at the start of every epoch.
        on_epoch_end: Called at the end of every epoch.
        on_train_begin: Called at the start of ``fit``.
        on_train_end: Called at the end of ``fit``.
        on_train_batch_begin: Called before every training batch.
        on_train_batch_end: Called after every training batch.
        name: Name among plugins (keyword only).
        order: Position among plugins (keyword only, default 0).
        **hooks: Any other hook, by its name or a Keras alias.

    Raises:
        ConfigError: an unknown keyword, a hook given twice (name and alias), or no
            function at all.
        TypeError: a value that is not callable.
    """

    default_name = "lambda_plugin"
    default_order = 0

    functions: dict[str, Callable[..., Any]] = field(factory=dict)
    """The functions given, by hook name (aliases resolved)."""

    def __init__(
        self,
        on_epoch_begin: Callable[..., Any] | None = None,
        on_epoch_end: Callable[..., Any] | None = None,
        on_train_begin: Callable[..., Any] | None = None,
        on_train_end: Callable[..., Any] | None = None,
        on_train_batch_begin: Callable[..., Any] | None = None,
        on_train_batch_end: Callable[..., Any] | None = None,
        *,
        name: str = "lambda_plugin",
        order: float = 0,
        **hooks: Callable[..., Any] | None,
    ) -> None:
        given: dict[str, Callable[..., Any] | None] = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
        }
        valid = sorted({*HOOK_NAMES, *_ALIASES})
        for keyword, function in hooks.items():
            hook = _ALIASES.get(keyword, keyword)
            if hook not in HOOK_NAMES:
                raise ConfigError(
                    f"LambdaPlugin got the keyword {keyword!r}, which is not a hook."
                    f"{suggest(keyword, valid)} Valid keywords: {valid}."
                )
            if function is not None and given.get(hook) is not None:
                raise ConfigError(
                    f"LambdaPlugin got both {hook!r} and its alias {keyword!r}; pass "
                    "one of them."
                )
            if function is not None:
                given[hook] = function
        self.__attrs_init__(name=name, order=order)
        for hook, function in given.items():
            if function is None:
                continue
            if not callable(function):
                raise TypeError(
                    f"LambdaPlugin got {hook}={function!r} of type "
                    f"{type(function).__name__}; expected a function such as "
                    f"{_example(hook)}."
                )
            self.functions[hook] = function
            setattr(self, hook, _impl(hook, function))
        if not self.functions:
            raise ConfigError(
                "LambdaPlugin() got no function, so it would do nothing (and "
                "plugins=['lambda_plugin'] cannot supply any). Pass at least one, e.g. "
                "LambdaPlugin(on_epoch_end=lambda epoch, logs: print(epoch, logs))."
            )


def _example(hook: str) -> str:
    return f"{hook}=lambda {', '.join(_arguments(hook))}: ..."
