"""Recurrent layers: SimpleRNN, LSTM and GRU over ``(batch, timesteps, features)``."""

from __future__ import annotations

from loopkit.layers.recurrent.base import Recurrent
from loopkit.layers.recurrent.cells import RNN, GRUCell, LSTMCell, SimpleRNNCell
from loopkit.layers.recurrent.gru import GRU
from loopkit.layers.recurrent.lstm import LSTM
from loopkit.layers.recurrent.simple_rnn import SimpleRNN

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "LSTMCell",
    "Recurrent",
    "SimpleRNN",
    "SimpleRNNCell",
]
