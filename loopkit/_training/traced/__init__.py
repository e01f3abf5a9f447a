"""Layers written Keras's way: ``call()`` traced once into a graph of loopkit layers.

A ``Layer`` subclass that defines ``call()`` and no ``forward`` (keras.io's
``TransformerBlock``) is run once, when it is first called (on symbolic tensors or on
arrays), on fresh symbolic inputs of the call's shapes: the layers ``call()`` calls
and the ``+ - *`` it applies record a graph, and from then on the layer runs that
graph forward and backward, as a nested model does. Its weights are those of the
layers it holds, in Keras's tracking order (the order its attributes were assigned,
then layers made inside ``call()``). ``training`` reaches ``call()`` as None, so the
layers it calls follow the model's mode (``fit`` trains, ``predict`` does not).
"""

from __future__ import annotations

from loopkit._training.traced.configs import auto_config, from_keras_config, recording_init
from loopkit._training.traced.record import Trace, bind_call, is_traced_layer, nested_graphs
from loopkit._training.traced.running import (
    clone_traced,
    traced_backward,
    traced_forward,
    traced_parameters,
    traced_trainable_parameters,
    traced_weight_paths,
)
from loopkit._training.traced.tracing import (
    held_layers,
    refuse_own_weights,
    setup_traced,
    traced_output_shape,
)

__all__ = [
    "Trace",
    "auto_config",
    "bind_call",
    "clone_traced",
    "from_keras_config",
    "held_layers",
    "is_traced_layer",
    "nested_graphs",
    "recording_init",
    "refuse_own_weights",
    "setup_traced",
    "traced_backward",
    "traced_forward",
    "traced_output_shape",
    "traced_parameters",
    "traced_trainable_parameters",
    "traced_weight_paths",
]
