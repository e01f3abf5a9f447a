"""Layers: Keras names and arguments, channels-last, vectorized forward and backward."""

from __future__ import annotations

from loopkit.layers.base import Layer, Parameter
from loopkit.layers.convolutional import Conv2D
from loopkit.layers.core import Activation, Dense
from loopkit.layers.embedding import Embedding
from loopkit.layers.input_layer import InputLayer
from loopkit.layers.merging import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from loopkit.layers.normalization import BatchNormalization, LayerNormalization
from loopkit.layers.pooling import (
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
)
from loopkit.layers.regularization import Dropout
from loopkit.layers.reshaping import Flatten, Reshape

__all__ = [
    "Activation",
    "Add",
    "Average",
    "Concatenate",
    "Dot",
    "InputLayer",
    "Maximum",
    "Minimum",
    "Multiply",
    "Subtract",
    "add",
    "average",
    "concatenate",
    "dot",
    "maximum",
    "minimum",
    "multiply",
    "subtract",
    "AveragePooling2D",
    "BatchNormalization",
    "Conv2D",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Layer",
    "LayerNormalization",
    "MaxPooling2D",
    "Parameter",
    "Reshape",
]
