"""Layers: Keras names and arguments, channels-last, vectorized forward and backward."""

from __future__ import annotations

from loopkit._training.symbolic import Input
from loopkit.layers.activation_layers import ELU, LeakyReLU, PReLU, ReLU, Softmax
from loopkit.layers.attention import AdditiveAttention, Attention, MultiHeadAttention
from loopkit.layers.base import Layer, Parameter
from loopkit.layers.convolutional import Conv2D
from loopkit.layers.convolutional1d import Conv1D
from loopkit.layers.convolutional_depthwise import DepthwiseConv2D
from loopkit.layers.convolutional_separable import SeparableConv2D
from loopkit.layers.convolutional_separable1d import SeparableConv1D
from loopkit.layers.convolutional_transpose import Conv1DTranspose, Conv2DTranspose
from loopkit.layers.core import Activation, Dense, Identity
from loopkit.layers.embedding import Embedding
from loopkit.layers.input_layer import InputLayer
from loopkit.layers.masking import Masking
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
from loopkit.layers.pooling1d import (
    AveragePooling1D,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    MaxPooling1D,
)
from loopkit.layers.preprocessing import Normalization, Rescaling
from loopkit.layers.recurrent import (
    GRU,
    LSTM,
    RNN,
    GRUCell,
    LSTMCell,
    SimpleRNN,
    SimpleRNNCell,
)
from loopkit.layers.regularization import (
    Dropout,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
    SpatialDropout2D,
)
from loopkit.layers.reshaping import Flatten, Permute, RepeatVector, Reshape
from loopkit.layers.reshaping1d import Cropping1D, UpSampling1D, ZeroPadding1D
from loopkit.layers.reshaping2d import Cropping2D, UpSampling2D, ZeroPadding2D
from loopkit.layers.serialization import deserialize, get, serialize
from loopkit.layers.wrappers import Bidirectional, TimeDistributed

__all__ = [
    "Activation",
    "Add",
    "AdditiveAttention",
    "Attention",
    "Average",
    "AveragePooling1D",
    "AveragePooling2D",
    "BatchNormalization",
    "Bidirectional",
    "Concatenate",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Cropping1D",
    "Cropping2D",
    "Dense",
    "DepthwiseConv2D",
    "Dot",
    "Dropout",
    "ELU",
    "Embedding",
    "Flatten",
    "GRU",
    "GRUCell",
    "GaussianDropout",
    "GaussianNoise",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "Identity",
    "Input",
    "InputLayer",
    "LSTM",
    "LSTMCell",
    "Layer",
    "LayerNormalization",
    "LeakyReLU",
    "Masking",
    "MaxPooling1D",
    "MaxPooling2D",
    "Maximum",
    "Minimum",
    "MultiHeadAttention",
    "Multiply",
    "Normalization",
    "PReLU",
    "Parameter",
    "Permute",
    "RNN",
    "ReLU",
    "RepeatVector",
    "Rescaling",
    "Reshape",
    "SeparableConv1D",
    "SeparableConv2D",
    "SimpleRNN",
    "SimpleRNNCell",
    "Softmax",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "Subtract",
    "TimeDistributed",
    "UpSampling1D",
    "UpSampling2D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "add",
    "average",
    "concatenate",
    "deserialize",
    "dot",
    "get",
    "maximum",
    "minimum",
    "multiply",
    "serialize",
    "subtract",
]

# Keras's second names for the same classes (``keras.layers.MaxPool1D is
# keras.layers.MaxPooling1D``): attributes of the package, kept out of ``__all__`` so
# each class is listed, documented and serialized under its one main name.
AvgPool1D = AveragePooling1D
AvgPool2D = AveragePooling2D
MaxPool1D = MaxPooling1D
MaxPool2D = MaxPooling2D
GlobalAvgPool1D = GlobalAveragePooling1D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool1D = GlobalMaxPooling1D
GlobalMaxPool2D = GlobalMaxPooling2D
Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
SeparableConvolution1D = SeparableConv1D
SeparableConvolution2D = SeparableConv2D
