"""Keras's cell API for the built-in cells: ``RNN(LSTMCell(n))`` is ``LSTM(n)``."""

from __future__ import annotations

from typing import Any, ClassVar

from loopkit.errors import ConfigError
from loopkit.layers.recurrent.base import Recurrent
from loopkit.layers.recurrent.gru import GRU
from loopkit.layers.recurrent.lstm import LSTM
from loopkit.layers.recurrent.simple_rnn import SimpleRNN

__all__ = ["RNN", "GRUCell", "LSTMCell", "SimpleRNNCell"]

_LAYER_ONLY = (
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "zero_output_for_mask",
    "use_cudnn",
    "name",
    "trainable",
    "input_shape",
    "input_dim",
)


class _Cell:
    """One step of a built-in recurrent layer, as Keras's cell, for ``RNN(cell)``.

    Takes the per-step arguments of its layer (units, activations, initializers,
    regularizers, constraints, dropouts, seed), checked at construction. loopkit runs
    a sequence only as a whole layer (its backward is through time, over the whole
    batch), so a cell is not called step by step: ``RNN(cell)`` builds the layer.
    """

    layer: ClassVar[type[Recurrent]]
    state_count: ClassVar[int] = 1

    def __init__(self, units: int, **kwargs: Any) -> None:
        taken = sorted(k for k in kwargs if k in _LAYER_ONLY)
        if taken:
            raise TypeError(
                f"{type(self).__name__} got {taken}; those are arguments of the RNN "
                f"layer, not of a cell: pass them to RNN({type(self).__name__}(...), "
                f"{taken[0]}=...)."
            )
        self.layer(units, **kwargs)  # checks every argument now, as Keras does
        self.units = units
        self.kwargs = dict(kwargs)

    @property
    def state_size(self) -> int | list[int]:
        """Keras's ``state_size``: ``units`` per state (a list for LSTM's two)."""
        return self.units if self.state_count == 1 else [self.units] * self.state_count

    @property
    def output_size(self) -> int:
        """Keras's ``output_size``: ``units``."""
        return self.units

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments."""
        return {"units": self.units, **self.kwargs}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{type(self).__name__} cannot be called one step at a time in loopkit: "
            "recurrent layers run whole sequences (their backward is through time). "
            f"Wrap it: RNN({type(self).__name__}(...))(x), or use "
            f"{self.layer.__name__}(...) directly."
        )


class SimpleRNNCell(_Cell):
    """The step of ``SimpleRNN``, for ``RNN(SimpleRNNCell(units, ...))``."""

    layer = SimpleRNN


class LSTMCell(_Cell):
    """The step of ``LSTM``, for ``RNN(LSTMCell(units, ...))``."""

    layer = LSTM
    state_count = 2


class GRUCell(_Cell):
    """The step of ``GRU``, for ``RNN(GRUCell(units, ...))``."""

    layer = GRU


def RNN(
    cell: Any,
    return_sequences: bool = False,
    return_state: bool = False,
    go_backwards: bool = False,
    stateful: bool = False,
    unroll: bool = False,
    zero_output_for_mask: bool = False,
    **kwargs: Any,
) -> Recurrent:
    """Return the recurrent layer that runs ``cell`` over sequences, as Keras's ``RNN``.

    ``RNN(LSTMCell(n, ...), ...)`` gives ``LSTM(n, ..., ...)``, which computes the
    same (Keras says so of its own) with the same weights and their layout, so
    ``set_weights`` moves weights between the two. The result is that layer: its
    config and saved files name ``LSTM``.

    Args:
        cell: A ``SimpleRNNCell``, ``LSTMCell`` or ``GRUCell``.
        return_sequences: As the layer's.
        return_state: As the layer's.
        go_backwards: As the layer's.
        stateful: As the layer's.
        unroll: As the layer's (no effect).
        zero_output_for_mask: As the layer's.
        **kwargs: ``name``, ``trainable``, ``input_shape``, ``input_dim``.

    Raises:
        TypeError: a list of cells or a cell of one's own.
    """
    if isinstance(cell, (list, tuple)):
        raise ConfigError(
            f"RNN got a list of {len(cell)} cells (Keras's StackedRNNCells), which "
            "loopkit does not run: stack the layers instead, each but the last with "
            "return_sequences=True, e.g. LSTM(8, return_sequences=True), LSTM(8)."
        )
    if not isinstance(cell, _Cell):
        raise TypeError(
            f"RNN got {type(cell).__name__}; loopkit's RNN takes SimpleRNNCell, LSTMCell "
            "or GRUCell. A cell of one's own (call(inputs, states)) needs automatic "
            "differentiation through time, which loopkit does not have: write it as a "
            "subclass of loopkit.layers.recurrent.Recurrent (run_forward and "
            "run_backward, see LSTM)."
        )
    return cell.layer(
        cell.units,
        **cell.kwargs,
        return_sequences=return_sequences,
        return_state=return_state,
        go_backwards=go_backwards,
        stateful=stateful,
        unroll=unroll,
        zero_output_for_mask=zero_output_for_mask,
        **kwargs,
    )
