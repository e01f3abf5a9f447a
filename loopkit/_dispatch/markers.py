"""The hookimpl marker: pluggy's options plus ``every=``/``once=`` event filters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import pluggy
from attrs import frozen

from loopkit import hookspecs
from loopkit.errors import PluginError

__all__ = ["HOOK_NAMES", "EventFilter", "event_filter", "hookimpl"]

_F = TypeVar("_F", bound=Callable[..., Any])

HOOK_NAMES: tuple[str, ...] = tuple(
    name for name, spec in vars(hookspecs).items() if hasattr(spec, "loopkit_spec")
)
"""Every hook loopkit defines, in the order ``hookspecs`` defines them (call order)."""

_pluggy_hookimpl = pluggy.HookimplMarker("loopkit")
_FILTER_ATTR = "loopkit_event_filter"


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


def event_filter(function: Any) -> EventFilter | None:
    """Return the ``every=``/``once=`` filter ``hookimpl`` put on ``function``, if any."""
    found: EventFilter | None = getattr(function, _FILTER_ATTR, None)
    return found


@overload
def hookimpl(function: _F) -> _F: ...


@overload
def hookimpl(
    function: None = None,
    *,
    tryfirst: bool = False,
    trylast: bool = False,
    wrapper: bool = False,
    hookwrapper: bool = False,
    optionalhook: bool = False,
    specname: str | None = None,
    every: int | None = None,
    once: int | None = None,
) -> Callable[[_F], _F]: ...


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

    def mark(fn: _F) -> _F:
        if every is not None or once is not None:
            setattr(fn, _FILTER_ATTR, EventFilter(every=every, once=once))
        return marker(fn)

    return mark(function) if function is not None else mark
