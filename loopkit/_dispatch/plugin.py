"""The Plugin base class: name/order declared one way, and Keras's Callback API by hand."""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from attrs import Factory, define, field

from loopkit import hookspecs
from loopkit._dispatch.markers import HOOK_NAMES
from loopkit._dispatch.ordering import as_names
from loopkit._naming import snake_case
from loopkit.errors import ConfigError, PluginError

__all__ = [
    "HOOK_ARGS",
    "KERAS_ALIASES",
    "Plugin",
    "bind_by_hand",
    "is_by_hand",
    "is_noop",
    "unwrap_hook",
]

KERAS_ALIASES = {
    "on_batch_begin": "on_train_batch_begin",
    "on_batch_end": "on_train_batch_end",
}
"""Keras's callback method names that differ from the hooks they stand for."""

HOOK_ARGS: dict[str, tuple[str, ...]] = {
    name: tuple(inspect.signature(getattr(hookspecs, name)).parameters)
    for name in HOOK_NAMES
}
"""Every hook's arguments, in order: ``model``, ``state``, then Keras's positional ones."""

_NOOP = "loopkit_noop"
_BY_HAND = "loopkit_by_hand"


def _default_name(plugin: Any) -> str:
    declared: str | None = type(plugin).default_name
    return declared if declared is not None else snake_case(type(plugin).__name__)


def _default_order(plugin: Any) -> float:
    order: float = type(plugin).default_order
    return order


def _check_name(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{type(instance).__name__} got name={value!r}; expected a non-empty string, "
            "the name other plugins use in before=/after= and checkpoints use as key."
        )


def _check_order(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(
            f"{type(instance).__name__} got order={value!r}; expected a number (lower "
            "runs earlier within a hook; the default is 0)."
        )


def _noop(function: Callable[..., Any]) -> Callable[..., Any]:
    setattr(function, _NOOP, True)
    return function


def is_noop(method: Any) -> bool:
    """Return whether ``method`` is one of Plugin's empty Keras methods (no hook)."""
    return bool(getattr(method, _NOOP, False))


def unwrap_hook(method: Any) -> Any:
    """Return the hook implementation behind a Plugin method callable by hand.

    The dispatcher registers this one, so a hook call costs nothing extra.
    """
    function = getattr(method, "__func__", None)
    if function is not None and getattr(function, _BY_HAND, False):
        return function.__wrapped__.__get__(method.__self__)
    return method


def bind_by_hand(
    owner: str,
    hook: str,
    params: tuple[str, ...],
    model: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    """Return the arguments ``params`` of ``hook`` from a call made with Keras's.

    ``args`` are Keras's positional arguments (``epoch, logs``, ``batch, logs``,
    ``logs``...), ``kwargs`` any hook arguments by name; ``logs`` defaults to ``{}``,
    ``model`` to ``model`` (what ``set_model`` gave) and ``state`` to ``model.state``.

    Raises:
        TypeError: too many positional arguments, an unknown keyword, or a missing one.
        PluginError: the implementation needs the model and none was set.
    """
    hook_args = HOOK_ARGS[hook]
    positional = hook_args[2:]
    if len(args) > len(positional):
        raise TypeError(
            f"{owner} got {len(args)} positional arguments; called by hand it takes "
            f"Keras's {list(positional)}, or every argument it names ({list(params)}) "
            "by keyword."
        )
    values: dict[str, Any] = dict(zip(positional, args, strict=False))
    for key, value in kwargs.items():
        if key not in hook_args or key in values:
            raise TypeError(
                f"{owner} got an unexpected or repeated argument {key!r}; it takes "
                f"{list(positional)} (Keras's), or {list(params)} by keyword."
            )
        values[key] = value
    if values.get("logs") is None and "logs" in hook_args:
        values["logs"] = {}
    if ("model" in params or "state" in params) and "model" not in values:
        if model is None:
            raise PluginError(
                f"{owner} was called by hand before set_model(); call set_model(model) "
                "first, as Keras's CallbackList does, or pass model= by keyword."
            )
        values["model"] = model
    if "state" in params and "state" not in values:
        values["state"] = values["model"].state
    missing = [p for p in params if p not in values]
    if missing:
        raise TypeError(f"{owner} is missing the argument(s) {missing}.")
    return {p: values[p] for p in params}


def _by_hand(function: Callable[..., Any], hook: str) -> Callable[..., Any]:
    """Return ``function`` (a hookimpl) callable both ways, as the spec and as Keras.

    With every argument the implementation takes, by name, it is called as it is
    (``es.on_epoch_end(model=m, epoch=0, logs=logs)``); otherwise the arguments are
    Keras's (``es.on_epoch_end(0, logs)``, see ``bind_by_hand``).
    """
    params = tuple(inspect.signature(function).parameters)[1:]
    hook_args = set(HOOK_ARGS[hook])

    @functools.wraps(function)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not args and set(params) <= kwargs.keys() <= hook_args:
            return function(self, **{p: kwargs[p] for p in params})
        owner = f"{type(self).__name__}.{hook}()"
        model = getattr(self, "model", None)
        return function(self, **bind_by_hand(owner, hook, params, model, args, kwargs))

    setattr(method, _BY_HAND, True)
    return method


def is_by_hand(method: Any) -> bool:
    """Return whether ``method`` is a Plugin hook method that takes Keras's arguments."""
    return bool(getattr(method, _BY_HAND, False))


@define(eq=False, slots=False)
class Plugin:
    """Base class for plugins and Keras callbacks: name, order, state, Keras's API.

    Nothing requires inheriting from it; any object with ``@hookimpl`` methods (or
    Keras-style callback methods) is a plugin (``loopkit.hookspecs`` lists every
    attribute loopkit reads). Subclasses declare their defaults in two class
    variables, the one convention of the built-in plugins::

        @define(eq=False, slots=False)
        class Sampler(Plugin):
            default_name = "sampler"  # else the class name in snake case
            default_order = 200  # else 0

    It is also ``loopkit.callbacks.Callback``: ``model``/``params`` are set before
    every ``fit``/``evaluate``/``predict`` (``set_model``/``set_params``), and its
    empty ``on_*`` methods, callable with Keras's arguments, are no hooks: override
    them unmarked (Keras style) or mark overrides with ``@loopkit.hookimpl``. A marked
    hook method of a subclass is callable by hand both with every argument it names,
    by keyword, and with Keras's arguments after ``set_model``
    (``es.set_model(m); es.on_epoch_end(3, {"val_loss": 0.2})``).

    Args:
        name: Name in ``before``/``after`` of other plugins and key of the plugin's
            state in checkpoints (``default_name`` by default). Two plugins of one
            run with one name get ``name``, ``name_1``, ... in list order.
        order: Lower runs earlier within a hook (``default_order`` by default;
            monitors use 100, loggers 200, so they see the logs others complete).
        before: Names of plugins this one must run before (a name or a list).
        after: Names of plugins this one must run after (a name or a list).

    Attributes:
        model: The model of the current (or last) run, as Keras's ``Callback.model``.
        params: Keras's ``params``: ``verbose``, ``epochs``, ``steps``.
    """

    default_name: ClassVar[str | None] = None
    default_order: ClassVar[float] = 0

    name: str = field(
        default=Factory(_default_name, takes_self=True), kw_only=True, validator=_check_name
    )
    order: float = field(
        default=Factory(_default_order, takes_self=True),
        kw_only=True,
        validator=_check_order,
    )
    before: tuple[str, ...] = field(default=(), kw_only=True, converter=as_names)
    after: tuple[str, ...] = field(default=(), kw_only=True, converter=as_names)
    model: Any = field(default=None, init=False, repr=False)
    params: dict[str, Any] = field(factory=dict, init=False, repr=False)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for attr, value in list(vars(cls).items()):
            opts = getattr(value, "loopkit_impl", None)
            if opts is None or getattr(value, _BY_HAND, False) or not callable(value):
                continue
            hook = opts.get("specname") or attr
            if hook in HOOK_NAMES:
                setattr(cls, attr, _by_hand(value, hook))

    def set_model(self, model: Any) -> None:
        """Keep ``model`` as ``self.model`` (called before every run, as in Keras)."""
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        """Keep ``params`` as ``self.params`` (called before every run, as in Keras)."""
        self.params = params

    def state_dict(self) -> dict[str, Any]:
        """Return the plugin's resumable state (JSON-ready values and arrays)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore state returned by ``state_dict``."""

    # Keras's Callback methods: empty, so subclasses override only what they need.
    # Flagged, they are no hooks: a plugin implements only the hooks it overrides.
    # Hidden from type checkers, which would hold every hookimpl override (taking
    # ``model``, ``state``...) to Keras's signatures.
    if not TYPE_CHECKING:

        @_noop
        def on_train_begin(self, logs: Any = None) -> None:
            """Keras's ``Callback.on_train_begin``: does nothing unless overridden."""

        @_noop
        def on_train_end(self, logs: Any = None) -> None:
            """Keras's ``Callback.on_train_end``: does nothing unless overridden."""

        @_noop
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            """Keras's ``Callback.on_epoch_begin``: does nothing unless overridden."""

        @_noop
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            """Keras's ``Callback.on_epoch_end``: does nothing unless overridden."""

        @_noop
        def on_batch_begin(self, batch: int, logs: Any = None) -> None:
            """Keras's alias of ``on_train_batch_begin``: does nothing unless overridden."""

        @_noop
        def on_batch_end(self, batch: int, logs: Any = None) -> None:
            """Keras's alias of ``on_train_batch_end``: does nothing unless overridden."""

        @_noop
        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            """Keras's ``Callback.on_train_batch_begin``: calls ``on_batch_begin``."""
            self.on_batch_begin(batch, logs=logs)

        @_noop
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            """Keras's ``Callback.on_train_batch_end``: calls ``on_batch_end``."""
            self.on_batch_end(batch, logs=logs)

        @_noop
        def on_test_begin(self, logs: Any = None) -> None:
            """Keras's ``Callback.on_test_begin``: does nothing unless overridden."""

        @_noop
        def on_test_end(self, logs: Any = None) -> None:
            """Keras's ``Callback.on_test_end``: does nothing unless overridden."""

        @_noop
        def on_test_batch_begin(self, batch: int, logs: Any = None) -> None:
            """Keras's ``Callback.on_test_batch_begin``: does nothing unless overridden."""

        @_noop
        def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
            """Keras's ``Callback.on_test_batch_end``: does nothing unless overridden."""

        @_noop
        def on_predict_begin(self, logs: Any = None) -> None:
            """Keras's ``Callback.on_predict_begin``: does nothing unless overridden."""

        @_noop
        def on_predict_end(self, logs: Any = None) -> None:
            """Keras's ``Callback.on_predict_end``: does nothing unless overridden."""

        @_noop
        def on_predict_batch_begin(self, batch: int, logs: Any = None) -> None:
            """Keras's ``Callback.on_predict_batch_begin``: empty unless overridden."""

        @_noop
        def on_predict_batch_end(self, batch: int, logs: Any = None) -> None:
            """Keras's ``Callback.on_predict_batch_end``: does nothing unless overridden."""
