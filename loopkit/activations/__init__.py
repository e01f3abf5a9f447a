"""Activations by name: Keras's ``get``/``serialize`` and its function forms (``relu``)."""

from __future__ import annotations

from typing import Any

from loopkit._registry import Registry
from loopkit.activations.base import ActivationFunction
from loopkit.activations.gated import GLU, Sparsemax
from loopkit.activations.piecewise import (
    ELU,
    SELU,
    HardSigmoid,
    LeakyReLU,
    Linear,
    ReLU,
    ReLU6,
)
from loopkit.activations.smooth import (
    GELU,
    Exponential,
    Mish,
    Sigmoid,
    Softmax,
    Softplus,
    Swish,
    Tanh,
)
from loopkit.activations.smooth_variants import (
    CELU,
    LogSigmoid,
    LogSoftmax,
    Softsign,
    Squareplus,
    TanhShrink,
)
from loopkit.activations.thresholded import (
    HardShrink,
    HardSilu,
    HardTanh,
    SoftShrink,
    SparsePlus,
    SparseSigmoid,
    Threshold,
)

__all__ = [
    "ActivationFunction",
    "CELU",
    "ELU",
    "Exponential",
    "GELU",
    "GLU",
    "HardShrink",
    "HardSigmoid",
    "HardSilu",
    "HardTanh",
    "LeakyReLU",
    "Linear",
    "LogSigmoid",
    "LogSoftmax",
    "Mish",
    "ReLU",
    "ReLU6",
    "SELU",
    "Sigmoid",
    "SoftShrink",
    "Softmax",
    "Softplus",
    "Softsign",
    "SparsePlus",
    "Sparsemax",
    "SparseSigmoid",
    "Squareplus",
    "Swish",
    "Tanh",
    "TanhShrink",
    "Threshold",
    "celu",
    "deserialize",
    "elu",
    "exponential",
    "gelu",
    "get",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "serialize",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "swish",
    "tanh",
    "tanh_shrink",
    "threshold",
]


_CLASSES: tuple[type[ActivationFunction], ...] = (
    ELU, Exponential, GELU, HardSigmoid, LeakyReLU, Linear, Mish, ReLU, ReLU6, SELU,
    Sigmoid, Softmax, Softplus, Swish, Tanh, CELU, HardShrink, HardSilu, HardTanh,
    LogSigmoid, LogSoftmax, SoftShrink, Softsign, SparsePlus, SparseSigmoid, Squareplus,
    TanhShrink, Threshold, GLU, Sparsemax,
)  # fmt: skip
_REGISTRY = Registry(
    kind="activation",
    module="activations",
    base=ActivationFunction,
    names={c.name: c for c in _CLASSES},
    classes=_CLASSES,
    instead="an ActivationFunction",
    accepts="None, an activation name such as 'relu', an ActivationFunction, or a dict "
    "{'class_name': 'ReLU', 'config': {...}} from activations.serialize()",
    aliases={"silu": Swish, "hard_swish": HardSilu},
)


def get(identifier: Any) -> ActivationFunction | None:
    """Return the activation an identifier names (``keras.activations.get``).

    Args:
        identifier: None; a name such as ``"relu"`` (``"silu"`` is ``"swish"``); an
            ActivationFunction, returned as is; or ``{"class_name": ..., "config":
            {...}}`` as ``serialize`` writes.

    Returns:
        The activation, or None for None.

    Raises:
        ConfigError: The name is unknown, or the config has an unknown key.
        TypeError: The identifier is of another kind.
    """
    return _REGISTRY.get(identifier)


def deserialize(config: Any, custom_objects: Any = None) -> ActivationFunction:
    """Return the activation a ``serialize`` result (a name or a dict) describes.

    Args:
        config: A name such as ``"relu"``, or ``{"class_name": ..., "config": {...}}``.
        custom_objects: ActivationFunction classes by class name, tried first.

    Raises:
        ConfigError: An unknown name, class name or config key.
        TypeError: ``config`` is neither a name nor a dict.
    """
    return _REGISTRY.deserialize(config, custom_objects)


def serialize(activation: ActivationFunction | None) -> str | dict[str, Any] | None:
    """Return a JSON-ready identifier that ``get`` turns back into ``activation``.

    That is the bare name (``"relu"``) when ``activation`` is what the name gives, else
    ``{"class_name": "ReLU", "config": {...}}``; None stays None.

    Raises:
        TypeError: ``activation`` is not an ActivationFunction.
    """
    return _REGISTRY.serialize(activation)


# Keras's functions: ``activations.relu(x)``, ``activations.relu(x, max_value=6.0)``. Being
# ActivationFunction instances, they also work as ``Dense(activation=activations.relu)``.
elu = ELU()
exponential = Exponential()
gelu = GELU()
hard_sigmoid = HardSigmoid()
leaky_relu = LeakyReLU()
linear = Linear()
mish = Mish()
relu = ReLU()
relu6 = ReLU6()
selu = SELU()
sigmoid = Sigmoid()
silu = swish = Swish()
softmax = Softmax()
softplus = Softplus()
tanh = Tanh()
celu = CELU()
hard_shrink = HardShrink()
hard_silu = hard_swish = HardSilu()
hard_tanh = HardTanh()
log_sigmoid = LogSigmoid()
log_softmax = LogSoftmax()
soft_shrink = SoftShrink()
softsign = Softsign()
sparse_plus = SparsePlus()
sparse_sigmoid = SparseSigmoid()
squareplus = Squareplus()
tanh_shrink = TanhShrink()
threshold = Threshold()
glu = GLU()
sparsemax = Sparsemax()
