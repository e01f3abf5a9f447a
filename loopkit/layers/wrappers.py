"""Layer wrappers: Bidirectional (a recurrent layer both ways) and TimeDistributed."""

from __future__ import annotations

from typing import Any, Literal

import attrs
import numpy as np
from attrs import define, field

from loopkit.activations import ActivationFunction
from loopkit.errors import ConfigError
from loopkit.layers.base import Layer
from loopkit.layers.masking import call_forward
from loopkit.typing import Array, FloatArray, Shape
from loopkit.validators import one_of

__all__ = ["Bidirectional", "TimeDistributed"]

MergeMode = Literal["concat", "sum", "mul", "ave"]


def _from_config(value: Any) -> Any:
    """Rebuild a wrapped layer from ``{"class_name": ..., "config": {...}}`` ."""
    if isinstance(value, dict) and set(value) == {"class_name", "config"}:
        from loopkit import layers

        cls = getattr(layers, str(value["class_name"]), None)
        if isinstance(cls, type) and issubclass(cls, Layer):
            return cls(**value["config"])
    return value


def _optional_from_config(value: Any) -> Any:
    return None if value is None else _from_config(value)


def _a_layer(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, Layer):
        raise TypeError(
            f"{type(instance).__name__} got {attribute.name}={value!r} of type "
            f"{type(value).__name__}; expected a loopkit layer, e.g. "
            f"{type(instance).__name__}(LSTM(32))."
        )


def _recurrent(instance: Any, attribute: Any, value: Any) -> None:
    _a_layer(instance, attribute, value)
    if not all(hasattr(value, a) for a in ("go_backwards", "return_sequences")):
        raise ConfigError(
            f"Bidirectional got {type(value).__name__}; expected a recurrent layer "
            "(SimpleRNN, LSTM or GRU), which can run over the sequence backwards."
        )


def _merge_mode(instance: Any, attribute: Any, value: Any) -> None:
    if value is None:
        raise ConfigError(
            "Bidirectional got merge_mode=None, which returns the two directions as "
            "two outputs; a Sequential model carries one array between layers. Use "
            "merge_mode='concat' (or 'sum', 'mul', 'ave')."
        )
    one_of("concat", "sum", "mul", "ave")(instance, attribute, value)


def _copy(layer: Layer, **changes: Any) -> Layer:
    """Return a new, unbuilt layer of ``layer``'s class and arguments, with ``changes``."""
    config = {**layer.get_config(), **changes}
    return type(layer)(**config)


def _adopt(owner: Layer, inner: Layer, prefix: str) -> None:
    """List ``inner``'s parameters as ``owner``'s, named ``prefix + name``."""
    for p in inner.parameters:
        p.name = prefix + p.name
        owner._parameters.append(p)


@define(eq=False, slots=False)
class Bidirectional(Layer):
    """Run a recurrent layer forwards and a copy of it backwards; merge the outputs.

    As in Keras, ``layer`` serves as a template: the wrapper builds
    ``forward_<name>`` and ``backward_<name>`` (``go_backwards=True``) from its
    arguments, so each direction has its own weights (forward's first, named
    ``forward_lstm/kernel`` ...). With ``return_sequences`` the backward outputs
    are put back in time order before merging, and masked steps output zeros.

    Args:
        layer: A SimpleRNN, LSTM or GRU to copy.
        merge_mode: ``"concat"`` (last axis, forward first), ``"sum"``, ``"mul"`` or
            ``"ave"``. None (two outputs) needs a functional model and is refused.
        backward_layer: The layer to run backwards instead of a copy of ``layer``;
            it must have ``go_backwards=True``.
    """

    layer: Layer = field(converter=_from_config, validator=_recurrent)
    merge_mode: MergeMode = field(default="concat", validator=_merge_mode)
    backward_layer: Layer | None = field(
        default=None, converter=_optional_from_config, kw_only=True
    )
    uses_mask = True
    """``forward`` takes ``mask=`` (see ``loopkit.layers.masking``)."""
    forward_layer: Any = field(init=False, default=None, repr=False)
    _backward: Any = field(init=False, default=None, repr=False)
    _y: tuple[FloatArray, FloatArray] = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if self.backward_layer is not None:
            _recurrent(self, attrs.fields(type(self)).backward_layer, self.backward_layer)
            if not getattr(self.backward_layer, "go_backwards", False):
                raise ConfigError(
                    "Bidirectional got a backward_layer with go_backwards=False; "
                    "pass one built with go_backwards=True."
                )
        if self.input_shape is None and self.layer.input_shape is not None:
            self.input_shape = self.layer.input_shape

    @property
    def return_sequences(self) -> bool:
        """Whether the wrapped layer returns every step."""
        return bool(self.layer.return_sequences)  # type: ignore[attr-defined]

    def build(self, input_shape: Shape) -> None:
        stem = self.layer.name or self.layer.default_name
        seq = self.return_sequences
        self.forward_layer = _copy(
            self.layer, name=f"forward_{stem}", input_shape=None, zero_output_for_mask=seq
        )
        if self.backward_layer is not None:
            self._backward = self.backward_layer
            self._backward.zero_output_for_mask = seq
        else:
            self._backward = _copy(
                self.layer,
                name=f"backward_{stem}",
                input_shape=None,
                go_backwards=True,
                zero_output_for_mask=seq,
            )
        for inner in (self.forward_layer, self._backward):
            inner.setup(input_shape, self.dtype, self.rng)
            _adopt(self, inner, f"{inner.name}/")

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = self.layer.compute_output_shape(input_shape)
        if self.merge_mode == "concat":
            return (*shape[:-1], 2 * shape[-1])
        return shape

    def compute_mask(self, x: Array, mask: Array | None) -> Array | None:
        """Return the input's mask with ``return_sequences``, else None."""
        return mask if self.return_sequences else None

    @property
    def final_states(self) -> list[FloatArray]:
        """The forward layer's final states, then the backward layer's (Keras's order)."""
        return [*self.forward_layer.final_states, *self._backward.final_states]

    def _sync(self) -> None:
        for inner in (self.forward_layer, self._backward):
            inner.trainable = self.trainable
            inner.input_grad_needed = self.input_grad_needed

    def forward(
        self, x: FloatArray, training: bool = False, mask: Array | None = None
    ) -> FloatArray:
        """Return the merged outputs of both directions."""
        self._sync()
        yf = self.forward_layer.forward(x, training, mask=mask)
        yb = self._backward.forward(x, training, mask=mask)
        if self.return_sequences:
            yb = yb[:, ::-1]  # back in time order
        self._y = (yf, yb)
        if self.merge_mode == "concat":
            y = self.buffer("y", (*yf.shape[:-1], 2 * yf.shape[-1]))
            u = yf.shape[-1]
            y[..., :u] = yf
            y[..., u:] = yb
            return y
        y = self.buffer("y", yf.shape)
        if self.merge_mode == "mul":
            np.multiply(yf, yb, out=y)
            return y
        np.add(yf, yb, out=y)
        if self.merge_mode == "ave":
            y *= 0.5
        return y

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Backpropagate through both directions; return the sum of their dL/dx."""
        yf, yb = self._y
        u = yf.shape[-1]
        if self.merge_mode == "concat":
            dyf, dyb = dy[..., :u], dy[..., u:]
        elif self.merge_mode == "mul":
            dyf = np.multiply(dy, yb, out=self.buffer("dyf", dy.shape))
            dyb = np.multiply(dy, yf, out=self.buffer("dyb", dy.shape))
        elif self.merge_mode == "ave":
            dyf = dyb = np.multiply(dy, 0.5, out=self.buffer("dyf", dy.shape))
        else:
            dyf = dyb = dy
        if self.return_sequences:
            dyb = dyb[:, ::-1]  # the backward layer's outputs run last step first
        dxf = self.forward_layer.backward(dyf)
        if dxf is None:
            self._backward.backward(dyb)
            return None
        dx = self.buffer("dx", dxf.shape)
        np.copyto(dx, dxf)
        dx += self._backward.backward(dyb)
        return dx

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["layer"] = _nested_config(self.layer)
        if self.backward_layer is not None:
            config["backward_layer"] = _nested_config(self.backward_layer)
        return config


def _nested_config(layer: Layer) -> dict[str, Any]:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


@define(eq=False, slots=False)
class TimeDistributed(Layer):
    """Apply ``layer`` to every time step of ``(batch, timesteps, ...)`` inputs.

    The steps are folded into the batch, so ``layer`` runs once on
    ``(batch*timesteps, ...)`` (one matrix product for a Dense) and its weights are
    shared by all steps, as in Keras. The input's mask passes through.

    Args:
        layer: The layer to apply per step, e.g. ``Dense(8)`` or ``Conv2D(...)``.
    """

    layer: Layer = field(converter=_from_config, validator=_a_layer)
    _x_shape: Shape = field(init=False, repr=False)
    _out_shape: Shape = field(init=False, repr=False)

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) < 2:
            raise ConfigError(
                f"TimeDistributed layer {self.name!r} expects samples of shape "
                f"(timesteps, ...) with at least one axis per step, got input_shape="
                f"{input_shape}. Reshape the data to (batch, timesteps, features)."
            )
        if self.layer.name is None:
            self.layer.name = self.layer.default_name
        self.layer.setup(input_shape[1:], self.dtype, self.rng)
        _adopt(self, self.layer, "")

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], *self.layer.compute_output_shape(input_shape[1:]))

    def compute_mask(self, x: Array, mask: Array | None) -> Array | None:
        """Return the input's mask: the steps are kept."""
        return mask

    @property
    def output_activation(self) -> ActivationFunction | None:
        return self.layer.output_activation

    @property
    def pre_activation(self) -> FloatArray:
        z = self.layer.pre_activation
        return z.reshape(self._out_shape[:2] + z.shape[1:])

    def forward(self, x: FloatArray, training: bool = False) -> FloatArray:
        """Return ``layer`` applied to each step, ``(batch, timesteps, ...)``."""
        inner = self.layer
        inner.trainable, inner.input_grad_needed = self.trainable, self.input_grad_needed
        inner.fuse_output_activation = self.fuse_output_activation
        n, steps = x.shape[:2]
        self._x_shape = tuple(x.shape)
        y = call_forward(inner, x.reshape(n * steps, *x.shape[2:]), training, None)
        self._out_shape = (n, steps, *y.shape[1:])
        return y.reshape(self._out_shape)

    def backward(self, dy: FloatArray) -> FloatArray | None:
        """Backpropagate through ``layer`` with the steps folded into the batch."""
        n, steps = self._x_shape[:2]
        dx = self.layer.backward(dy.reshape(n * steps, *dy.shape[2:]))
        return None if dx is None else dx.reshape(self._x_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["layer"] = _nested_config(self.layer)
        return config
