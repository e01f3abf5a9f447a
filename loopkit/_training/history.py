"""History: the always-on plugin that records every epoch's logs, as Keras's does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

from attrs import define, field

from loopkit._dispatch.dispatcher import hookimpl

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from loopkit._training.sequential import Sequential

__all__ = ["History"]


@define(eq=False, slots=False)
class History:
    """Records each epoch's logs; ``fit`` returns it and sets ``model.history`` to it.

    Args:
        history: Log key -> one value per epoch, e.g. ``history["val_loss"]``.
        epoch: The epoch indices recorded, in order.
        params: Keras's ``params``: ``verbose``, ``epochs``, ``steps``.
        model: The model that was fit.
    """

    history: dict[str, list[float]] = field(factory=dict)
    epoch: list[int] = field(factory=list)
    params: dict[str, Any] = field(factory=dict)
    model: Sequential | None = field(default=None, repr=False)
    name: str = field(default="history", init=False)
    order: int = field(default=1000, init=False)  # last: sees keys other plugins add

    @hookimpl
    def on_train_begin(self, model: Sequential, state: Any) -> None:
        self.model = model
        self.params = dict(state.params)

    @hookimpl
    def on_train_end(self, model: Sequential) -> None:
        model.history = self  # a fit run by a plugin inside this one set its own

    @hookimpl
    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        self.epoch.append(epoch)
        known = len(self.epoch) - 1
        for key, value in logs.items():
            # A key missing on earlier epochs (validation_freq > 1) is padded so every
            # list stays aligned with ``epoch``; Keras misaligns them instead.
            values = self.history.setdefault(key, [float("nan")] * known)
            values.append(float(value))
        for values in self.history.values():
            if len(values) < len(self.epoch):
                values.append(float("nan"))

    def state_dict(self) -> dict[str, Any]:
        """Return the recorded epochs and logs (for resume)."""
        return {
            "history": {k: list(v) for k, v in self.history.items()},
            "epoch": list(self.epoch),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self.history = {k: [float(x) for x in v] for k, v in state["history"].items()}
        self.epoch = [int(e) for e in state["epoch"]]

    def plot(
        self,
        metrics: Sequence[str] | None = None,
        save: str | PathLike[str] | None = None,
    ) -> Figure:
        """Draw the loss and each metric against the epoch; see ``loopkit.plot_history``."""
        from loopkit.plotting import plot_history

        return plot_history(self, metrics=metrics, save=save)
