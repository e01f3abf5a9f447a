"""Layers: Keras names and arguments, channels-last, vectorized forward and backward."""

from __future__ import annotations

from loopkit.layers.base import Layer, Parameter
from loopkit.layers.convolutional import Conv2D
from loopkit.layers.core import Activation, Dense
from loopkit.layers.embedding import Embedding
from loopkit.layers.normalization import BatchNormalization, LayerNormalization
from loopkit.layers.pooling import (
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
)
from loopkit.layers.regularization import Dropout
from loopkit.layers.reshaping import Flatten, Reshape
from loopkit.layers.serialization import deserialize, get, serialize

__all__ = [
    "Activation",
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
    "deserialize",
    "get",
    "serialize",
]
