"""Layers: Keras names and arguments, channels-last, vectorized forward and backward."""

from __future__ import annotations

from loopkit.layers.base import Layer, Parameter
from loopkit.layers.core import Activation, Dense

__all__ = ["Activation", "Dense", "Layer", "Parameter"]
