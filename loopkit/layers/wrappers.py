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

MergeMode = Literal["concat", "sum", "mul", "ave"] | None


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
    one_of("concat", "sum", "mul", "ave", None)(instance, attribute, value)


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

    Called as ``Bidirectional(...)(x, initial_state=states)``, the first half of
    ``states`` starts the forward layer and the second half the backward one. With
    the wrapped layer's ``return_state`` the outputs are ``[output, *forward
    states, *backward states]``, as in Keras.

    Args:
        layer: A SimpleRNN, LSTM or GRU to copy.
        merge_mode: ``"concat"`` (last axis, forward first), ``"sum"``, ``"mul"`` or
            ``"ave"``; None returns ``[forward, backward]`` (two outputs, so it needs
            the functional API).
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
    _states_in: bool = field(init=False, default=False, repr=False)

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

    @property
    def return_state(self) -> bool:
        """Whether the final states of both directions are returned too."""
        return bool(getattr(self.layer, "return_state", False))

    @property
    def _n_states(self) -> int:
        return len(getattr(self.layer, "state_names", ("h",)))

    def call_arguments(
        self, inputs: Any, initial_state: Any = None
    ) -> tuple[Any, dict[str, Any]]:
        """Bind ``layer(x, initial_state=None)``: ``[x, *forward, *backward states]``.

        Raises:
            ConfigError: not twice the wrapped layer's number of states.
        """
        x, _ = super().call_arguments(inputs)
        if initial_state is None:
            return x, {}
        states = list(initial_state)
        if len(states) != 2 * self._n_states:
            raise ConfigError(
                f"Bidirectional layer {self.name!r} got {len(states)} initial states; "
                f"it takes {2 * self._n_states}: the forward layer's, then the backward "
                "layer's."
            )
        return [x, *states], {}

    def setup(
        self,
        input_shape: Any,
        dtype: Any = np.float32,
        rng: np.random.Generator | None = None,
    ) -> Any:
        """Build for sequences of ``input_shape`` (with initial states: the first)."""
        if isinstance(input_shape, list):
            super().setup(tuple(input_shape[0]), dtype, rng)
            return self.compute_output_shape(input_shape)
        return super().setup(input_shape, dtype, rng)

    def build(self, input_shape: Shape) -> None:
        stem = self.layer.name or self.layer.default_name
        seq = self.return_sequences
        self.forward_layer = _copy(
            self.layer, name=f"forward_{stem}", input_shape=None, zero_output_for_mask=seq
        )
        if self.backward_layer is not None:
            self._backward = self.backward_layer
            self._backward.zero_output_for_mask = seq
            self._backward.return_state = self.return_state
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

    def compute_output_shape(self, input_shape: Any) -> Any:
        if isinstance(input_shape, list):
            input_shape = input_shape[0]
        shape = self.layer.compute_output_shape(input_shape)
        if isinstance(shape, list):  # the wrapped layer's return_state
            shape = shape[0]
        outs = [shape, shape] if self.merge_mode is None else [shape]
        if self.merge_mode == "concat":
            outs = [(*shape[:-1], 2 * shape[-1])]
        if self.return_state:
            outs += [shape[-1:]] * (2 * self._n_states)
        return outs if len(outs) > 1 else outs[0]

    def compute_mask(self, x: Any, mask: Any = None) -> Any:
        """Return the input's mask with ``return_sequences``, else None (per output)."""
        if isinstance(mask, list):
            mask = mask[0]
        out = mask if self.return_sequences else None
        n_out = 2 if self.merge_mode is None else 1
        n_states = 2 * self._n_states if self.return_state else 0
        if n_out + n_states == 1:
            return out
        return [out] * n_out + [None] * n_states

    @property
    def final_states(self) -> list[FloatArray]:
        """The forward layer's final states, then the backward layer's (Keras's order)."""
        return [*self.forward_layer.final_states, *self._backward.final_states]

    @property
    def states(self) -> list[FloatArray] | None:
        """With a stateful layer: both directions' carried states (forward's first)."""
        ahead, behind = self.forward_layer.states, self._backward.states
        if ahead is None or behind is None:
            return None
        return [*ahead, *behind]

    def reset_states(self) -> None:
        """Zero both directions' carried states (stateful layers only), as Keras's."""
        self.reset_state()

    def reset_state(self) -> None:
        """Zero both directions' carried states (stateful layers only)."""
        self.forward_layer.reset_state()
        self._backward.reset_state()

    def _sync(self) -> None:
        for inner in (self.forward_layer, self._backward):
            inner.trainable = self.trainable
            inner.input_grad_needed = self.input_grad_needed

    def forward(
        self, x: Any, training: bool = False, mask: Any = None
    ) -> Any:
        """Return the merged outputs of both directions (a list: see the class)."""
        self._sync()
        states: list[Any] = [None, None]
        self._states_in = isinstance(x, list)
        if self._states_in:
            half = self._n_states
            x, states = x[0], [list(x[1 : 1 + half]), list(x[1 + half :])]
        if isinstance(mask, list):
            mask = mask[0]
        yf = self.forward_layer.forward(x, training, mask=mask, initial_state=states[0])
        yb = self._backward.forward(x, training, mask=mask, initial_state=states[1])
        final: list[FloatArray] = []
        if self.return_state:
            (yf, *sf), (yb, *sb) = yf, yb
            final = [*sf, *sb]
        if self.return_sequences:
            yb = yb[:, ::-1]  # back in time order
        self._y = (yf, yb)
        y = self._merge(yf, yb)
        outs = [yf, yb] if y is None else [y]
        return [*outs, *final] if len(outs) + len(final) > 1 else outs[0]

    def _merge(self, yf: FloatArray, yb: FloatArray) -> FloatArray | None:
        if self.merge_mode is None:
            return None
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

    def backward(self, dy: Any) -> Any:
        """Backpropagate through both directions; return the sum of their dL/dx.

        ``dy`` is a list for several outputs (None entries read as zeros); after a
        call with initial states the result is ``[dx, *d_initial_states]``.
        """
        grads = dy if isinstance(dy, list) else [dy]
        n_out = 2 if self.merge_mode is None else 1
        d_states = grads[n_out:]
        if self.merge_mode is None:
            dyf, dyb = grads[0], grads[1]
        else:
            dyf, dyb = self._split(grads[0])
        if self.return_sequences and dyb is not None:
            dyb = dyb[:, ::-1]  # the backward layer's outputs run last step first
        half = self._n_states
        if self.return_state:
            dyf = [dyf, *d_states[:half]]
            dyb = [dyb, *d_states[half:]]
        dxf = self.forward_layer.backward(dyf)
        dxb = self._backward.backward(dyb)
        if dxf is None:
            return None
        dx = self.buffer("dx", dxf.shape)
        np.copyto(dx, dxf)
        dx += dxb
        if self._states_in:
            return [
                dx,
                *self.forward_layer.initial_state_gradients,
                *self._backward.initial_state_gradients,
            ]
        return dx

    def _split(self, dy: FloatArray | None) -> tuple[Any, Any]:
        """dL/d(each direction's output) from dL/d(merged output)."""
        if dy is None:
            return None, None
        yf, yb = self._y
        u = yf.shape[-1]
        if self.merge_mode == "concat":
            return dy[..., :u], dy[..., u:]
        if self.merge_mode == "mul":
            dyf = np.multiply(dy, yb, out=self.buffer("dyf", dy.shape))
            dyb = np.multiply(dy, yf, out=self.buffer("dyb", dy.shape))
            return dyf, dyb
        if self.merge_mode == "ave":
            half = np.multiply(dy, 0.5, out=self.buffer("dyf", dy.shape))
            return half, half
        return dy, dy

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

    def compute_mask(self, x: Array, mask: Array | None = None) -> Array | None:
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
        y: FloatArray = call_forward(
            inner, x.reshape(n * steps, *x.shape[2:]), training, None
        )
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
