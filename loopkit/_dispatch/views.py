"""What pluggy registers for a plugin: a view exposing its raw hook implementations."""

from __future__ import annotations

from typing import Any

from attrs import define, field

from loopkit._dispatch.ordering import as_names
from loopkit._dispatch.plugin import unwrap_hook
from loopkit._dispatch.registration import marked_hooks
from loopkit._naming import plugin_name

__all__ = ["MarkedPlugin", "PluginView"]


@define(eq=False, slots=False)
class PluginView:
    """Stands for ``original`` in pluggy: its name, order and constraints, read through.

    Registering a view rather than the object keeps pluggy's view of a plugin apart
    from the object users call: a Plugin's hook methods also take Keras's arguments
    by hand, while pluggy calls the implementations behind them directly.
    """

    original: Any
    hook_attrs: frozenset[str] = field(default=frozenset(), init=False)
    """The attributes holding hook implementations: all pluggy needs to look at."""

    @property
    def name(self) -> str:
        return plugin_name(self.original)

    @property
    def order(self) -> Any:
        return getattr(self.original, "order", 0)

    @property
    def before(self) -> tuple[str, ...]:
        return as_names(getattr(self.original, "before", ()))

    @property
    def after(self) -> tuple[str, ...]:
        return as_names(getattr(self.original, "after", ()))


@define(eq=False, slots=False)
class MarkedPlugin(PluginView):
    """A plugin with ``@hookimpl`` methods: each bound to the view as implemented."""

    def __attrs_post_init__(self) -> None:
        attrs = marked_hooks(self.original)
        for attr in attrs:
            setattr(self, attr, unwrap_hook(getattr(self.original, attr)))
        self.hook_attrs = frozenset(attrs)
