"""The recurrent-layer base: arguments, input projection, masks, dropout, outputs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import attrs
import numpy as np
import numpy.typing as npt
from attrs import define, field

from loopkit import activations as _activations
from loopkit.activations.smooth import Sigmoid
from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.base import Layer, Parameter
from loopkit.layers.masking import check_mask
from loopkit.typing import FloatArray, Shape
from loopkit.validators import in_half_open_range, positive_int

__all__ = ["Recurrent", "activate", "as_activation", "kept_states"]


def as_activation(identifier: Any) -> _activations.ActivationFunction:
    """Resolve an activation argument; None is linear, as in Keras."""
    fn = _activations.get(identifier)
    if fn is not None:
        fn.require_same_shape("A recurrent layer")
    return _activations.linear if fn is None else fn


def activate(
    fn: _activations.ActivationFunction, x: FloatArray, out: FloatArray
) -> FloatArray:
    """Write ``fn(x)`` into ``out``; the sigmoid as ``0.5 * tanh(x / 2) + 0.5``.

    NumPy's ``tanh`` is vectorized and its ``logaddexp`` (loopkit's overflow-free
    sigmoid) is not: on gate blocks this form is about 20x faster, and a gate
    loses nothing from its absolute error of an ulp of 0.5.
    """
    if isinstance(fn, Sigmoid):
        np.multiply(x, 0.5, out=out)
        np.tanh(out, out=out)
        out *= 0.5
        out += 0.5
        return out
    return fn.forward(x, out)


def _cudnn_choice(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in ("auto", True, False):
        raise ConfigError(
            f"{type(instance).__name__} got use_cudnn={value!r}; expected 'auto', True "
            "or False (Keras's choices; loopkit has no GPU kernel, so all run the same)."
        )


@define(eq=False, slots=False)
class Recurrent(Layer):
    """Shared machinery of SimpleRNN, LSTM and GRU (Keras's ``RNN`` arguments).

    Inputs are ``(batch, timesteps, features)``. The layer copies them once into a
    time-major buffer in the order they are processed (reversed with
    ``go_backwards``), multiplies every step by the kernel in one matrix product, and
    leaves only the recurrence to the per-step loop of the subclass
    (``run_forward``/``run_backward``). Backward is backpropagation through time
    over the whole batch; the input and recurrent kernels' gradients are again one
    matrix product each over all steps.

    A mask ``(batch, timesteps)`` (from ``Masking`` or ``Embedding(mask_zero=True)``)
    makes the layer skip the padded steps of each sample: the state is carried
    through unchanged and the output at a padded step repeats the previous one
    (zeros with ``zero_output_for_mask``), as Keras does.

    Args:
        units: Size of the state and the output.
        activation: Activation of the candidate state and output (``"tanh"``).
        use_bias: Whether to add biases.
        kernel_initializer: Initializer of the input kernel ``(features, gates*units)``.
        recurrent_initializer: Initializer of ``recurrent_kernel``
            ``(units, gates*units)``.
        bias_initializer: Initializer of the bias.
        kernel_regularizer: Penalty on the kernel.
        recurrent_regularizer: Penalty on the recurrent kernel.
        bias_regularizer: Penalty on the bias.
        kernel_constraint: Projection of the kernel after each step.
        recurrent_constraint: Projection of the recurrent kernel after each step.
        bias_constraint: Projection of the bias after each step.
        dropout: Fraction of the input features to drop in training: one mask per
            sample, the same at every step (Gal and Ghahramani, 2016).
        recurrent_dropout: Fraction of the state to drop before the recurrent
            product in training, one mask per sample. Unlike Keras 3, which then
            draws one mask per gate, the gates share one input and one state mask.
        seed: Seed of the dropout masks' own generator; the model's if None.
        return_sequences: Return the output of every step,
            ``(batch, timesteps, units)``, instead of the last, ``(batch, units)``.
        return_state: Return ``[output, *final_states]`` (LSTM: ``[output, h, c]``),
            as Keras does; the extra outputs need the functional API (a Sequential
            model carries one array between layers). ``final_states`` keeps them
            either way.
        go_backwards: Process the sequence last step first; with
            ``return_sequences`` the outputs come in that reversed order, as in Keras.
        stateful: Carry the final states of each batch over as the initial states
            of the next, sample by sample (sample ``i`` of a batch continues sample
            ``i`` of the previous one), until ``reset_states()``; as in Keras, every
            batch then needs the same size and ``fit`` needs ``shuffle=False``.
            Gradients stop at the batch boundary (truncated backpropagation).
        unroll: Accepted for Keras compatibility; it changes nothing here.
        use_cudnn: ``"auto"``, True or False, accepted for Keras compatibility: there
            is no GPU kernel, so it changes nothing here.
        zero_output_for_mask: Output zeros at masked steps (``Bidirectional`` sets it
            when returning sequences) instead of repeating the last output.
    """

    gates = 1
    """Gate blocks in the kernels' last axis (LSTM 4, GRU 3)."""
    uses_mask = True
    """``forward`` takes ``mask=`` (see ``loopkit.layers.masking``)."""
    state_names: ClassVar[tuple[str, ...]] = ("h",)
    """The states a step carries, in Keras's order (LSTM: h, c)."""

    units: int = field(validator=positive_int)
    activation: _activations.ActivationFunction = field(
        default=_activations.tanh, converter=as_activation, kw_only=True
    )
    use_bias: bool = field(default=True, kw_only=True)
    kernel_initializer: Any = field(default="glorot_uniform", kw_only=True)
    recurrent_initializer: Any = field(default="orthogonal", kw_only=True)
    bias_initializer: Any = field(default="zeros", kw_only=True)
    kernel_regularizer: Any = field(default=None, kw_only=True)
    recurrent_regularizer: Any = field(default=None, kw_only=True)
    bias_regularizer: Any = field(default=None, kw_only=True)
    kernel_constraint: Any = field(default=None, kw_only=True)
    recurrent_constraint: Any = field(default=None, kw_only=True)
    bias_constraint: Any = field(default=None, kw_only=True)
    dropout: float = field(
        default=0.0, validator=in_half_open_range(0.0, 1.0), kw_only=True
    )
    recurrent_dropout: float = field(
        default=0.0, validator=in_half_open_range(0.0, 1.0), kw_only=True
    )
    seed: int | None = field(default=None, kw_only=True)
    return_sequences: bool = field(default=False, kw_only=True)
    return_state: bool = field(default=False, kw_only=True)
    go_backwards: bool = field(default=False, kw_only=True)
    stateful: bool = field(default=False, kw_only=True)
    unroll: bool = field(default=False, kw_only=True)
    use_cudnn: bool | str = field(default="auto", validator=_cudnn_choice, kw_only=True)
    zero_output_for_mask: bool = field(default=False, kw_only=True)
    kernel: Parameter = field(init=False, repr=False)
    recurrent_kernel: Parameter = field(init=False, repr=False)
    bias: Parameter | None = field(init=False, default=None, repr=False)
    final_states: list[FloatArray] = field(init=False, factory=list, repr=False)
    """The states after the last step, ``(batch, units)`` each (LSTM: ``[h, c]``),
    from the last forward; views valid until the next call."""
    states: list[FloatArray] | None = field(init=False, default=None, repr=False)
    """With ``stateful``: the states carried to the next batch, ``(batch, units)`` each
    in ``state_names`` order (None before the first batch), as Keras's
    ``layer.states``; None for a layer that is not stateful."""
    _states_reset: bool = field(init=False, default=True, repr=False)
    initial_state_gradients: list[FloatArray] = field(init=False, factory=list, repr=False)
    """dL/d(initial states) from the last backward, in ``final_states``' order."""
    _x_shape: Shape = field(init=False, default=(), repr=False)
    _xt: FloatArray = field(init=False, repr=False)
    _steps_project: bool = field(init=False, default=False, repr=False)
    _step_mask: FloatArray | None = field(init=False, default=None, repr=False)
    _input_keep: FloatArray | None = field(init=False, default=None, repr=False)
    _state_keep: FloatArray | None = field(init=False, default=None, repr=False)
    _step_skip: FloatArray | None = field(init=False, default=None, repr=False)
    _skip: npt.NDArray[np.bool_] | None = field(init=False, default=None, repr=False)
    _initial_state: list[FloatArray] | None = field(init=False, default=None, repr=False)
    _state_grads: list[FloatArray | None] = field(init=False, factory=list, repr=False)
    _states_in: bool = field(init=False, default=False, repr=False)

    # --- calling --------------------------------------------------------------------

    def call_arguments(
        self, inputs: Any, initial_state: Any = None
    ) -> tuple[Any, dict[str, Any]]:
        """Bind ``layer(x, initial_state=None)``, as Keras's RNN call.

        Without ``initial_state`` the call takes ``x`` alone; with it the call's
        inputs are ``[x, *initial_state]`` (states in ``state_names`` order: LSTM
        ``[h, c]``), each state ``(batch, units)``.

        Raises:
            ConfigError: the wrong number of initial states.
        """
        x, _ = super().call_arguments(inputs)
        if initial_state is None:
            return x, {}
        states = (
            list(initial_state)
            if isinstance(initial_state, (list, tuple))
            else [initial_state]
        )
        if len(states) != len(self.state_names):
            raise ConfigError(
                f"{type(self).__name__} layer {self.name!r} got {len(states)} initial "
                f"state(s); it takes {len(self.state_names)} "
                f"({', '.join(self.state_names)}), each of shape (batch, {self.units})."
            )
        return [x, *states], {}

    def setup(
        self,
        input_shape: Any,
        dtype: Any = np.float32,
        rng: np.random.Generator | None = None,
    ) -> Any:
        """Build for sequences of ``input_shape`` (the states' shapes follow from units)."""
        if isinstance(input_shape, list):  # [x, *initial states]: built on x
            self._check_state_shapes(input_shape)
            super().setup(tuple(input_shape[0]), dtype, rng)
            return self.compute_output_shape(input_shape)
        return super().setup(input_shape, dtype, rng)

    def _check_state_shapes(self, shapes: list[Any]) -> None:
        states = [tuple(int(d) for d in s) for s in shapes[1:]]
        if len(states) != len(self.state_names) or any(s != (self.units,) for s in states):
            raise ShapeError(
                f"{type(self).__name__} layer {self.name!r} got initial states of sample "
                f"shapes {states}; expected {len(self.state_names)} "
                f"({', '.join(self.state_names)}) of shape ({self.units},), i.e. batches "
                f"of (batch, {self.units})."
            )

    # --- building -----------------------------------------------------------------

    def bias_shape(self) -> Shape:
        """The bias's shape (GRU with ``reset_after`` has two rows)."""
        return (self.gates * self.units,)

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) != 2:
            raise ShapeError(
                f"{type(self).__name__} layer {self.name!r} expects sequences of shape "
                f"(timesteps, features) per sample, i.e. batches of (batch, timesteps, "
                f"features), got input_shape={input_shape}. " + _sequence_fix(input_shape)
            )
        features, width = input_shape[1], self.gates * self.units
        self.kernel = self.add_weight(
            "kernel",
            (features, width),
            self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            "recurrent_kernel",
            (self.units, width),
            self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        # Orthogonal draws come out Fortran-ordered; every other weight is C-ordered,
        # and code that views weights flat (gradient checks) needs C order.
        self.recurrent_kernel.value = np.ascontiguousarray(self.recurrent_kernel.value)
        if self.use_bias:
            self.bias = self.add_weight(
                "bias",
                self.bias_shape(),
                self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        if self.seed is not None:
            self.rng = np.random.default_rng(int(self.seed))

    def compute_output_shape(self, input_shape: Any) -> Any:
        if isinstance(input_shape, list):
            self._check_state_shapes(input_shape)
            input_shape = input_shape[0]
        out = (input_shape[0], self.units) if self.return_sequences else (self.units,)
        if self.return_state:
            return [out, *[(self.units,)] * len(self.state_names)]
        return out

    def compute_mask(self, x: Any, mask: Any = None) -> Any:
        """Return the output's mask: the input's with ``return_sequences``, else None.

        With ``return_state`` a list: that mask, then None for each state.
        """
        if isinstance(mask, list):
            mask = mask[0]
        out = mask if self.return_sequences else None
        if self.return_state:
            return [out, *[None] * len(self.state_names)]
        return out

    # --- subclass hooks -------------------------------------------------------------

    def input_bias(self) -> FloatArray | None:
        """The part of the bias added to the input projection."""
        return None if self.bias is None else self.bias.value

    def steps_project_inputs(self, dtype: Any) -> bool:
        """Whether ``run_forward`` projects the inputs itself, step by step.

        Then ``forward`` makes no ``xw``: it writes ``x_t`` into the first
        ``features`` columns of an ``(timesteps, batch, features + units)`` buffer,
        whose other columns the steps fill with the state they multiply, so that one
        product ``[x_t, h] @ [kernel; recurrent_kernel]`` per step does both, and
        ``run_backward`` writes both kernels' gradients (and adds the input bias
        itself).
        """
        return False

    def run_forward(self, xw: FloatArray, training: bool) -> FloatArray:
        """Run the recurrence over the projected inputs; return the states ``H``.

        Args:
            xw: ``(timesteps, batch, gates*units)``: ``x_t @ kernel + input bias`` in
                processing order; with ``steps_project_inputs``, the
                ``(timesteps, batch, features + units)`` buffer holding ``x_t``.
            training: Whether dropout is on (``state_keep`` is then set).

        Returns:
            ``(timesteps + 1, batch, units)``: ``H[0]`` the initial and ``H[t+1]``
            the output of step ``t``; sets ``final_states``.
        """
        raise NotImplementedError

    def run_backward(self, dh_out: FloatArray | None, dh_last: FloatArray) -> FloatArray:
        """Backpropagate through time; return dL/d(xw), ``(timesteps, batch, width)``.

        Writes the recurrent kernel's (and any recurrent bias's) gradient.

        Args:
            dh_out: dL/dH[1:] from the outputs (``return_sequences``), else None.
            dh_last: dL/dH[-1] from the output (without ``return_sequences``), else
                zeros.
        """
        raise NotImplementedError

    # --- running ------------------------------------------------------------------

    def recurrent_kernel_transposed(self) -> FloatArray:
        """Return a C-contiguous copy of ``recurrent_kernel.T`` for the backward steps.

        OpenBLAS multiplies ``dz @ K_T`` about 15-20% faster with ``K_T`` stored
        transposed than through the transposed view ``K.T`` at these sizes (batch 64,
        units 128), with bitwise the same result; one copy per batch pays for itself
        from the second step on.
        """
        kernel = self.recurrent_kernel.value
        transposed = self.buffer("recurrent_kernel_t", kernel.shape[::-1])
        np.copyto(transposed, kernel.T)
        return transposed

    def seq_buffer(self, key: str, shape: Shape) -> FloatArray:
        """Return a contiguous layer-owned array of ``shape`` (time-major buffers).

        ``Layer.buffer`` grows along the first axis; time-major buffers change size
        along the second (batch) axis, so they live in a flat buffer instead, whose
        leading part is viewed as ``shape``: a short last batch allocates nothing.
        """
        return self.buffer(key, (int(np.prod(shape)),)).reshape(shape)

    def _keep_mask(self, key: str, shape: Shape, rate: float) -> FloatArray:
        """Draw an inverted-dropout mask: ``1/(1-rate)`` where kept, 0 where dropped."""
        assert self.rng is not None, "forward() runs after setup()"
        keep = self.buffer(key, shape)
        self.rng.random(dtype=keep.dtype, out=keep)
        np.greater_equal(keep, rate, out=keep)
        keep *= 1.0 / (1.0 - rate)
        return keep

    def forward(
        self,
        x: Any,
        training: bool = False,
        mask: Any = None,
        initial_state: list[FloatArray] | None = None,
    ) -> Any:
        """Return the last output ``(batch, units)`` or every output ``(batch, T, units)``.

        With ``return_state``, return ``[output, *final_states]``.

        Args:
            x: ``(batch, timesteps, features)``, or ``[x, *initial_state]`` (a call
                with ``initial_state``: backward then returns ``[dx, *dstates]``).
            training: Apply ``dropout`` and ``recurrent_dropout``.
            mask: Optional ``(batch, timesteps)``, true (or nonzero) at real steps.
            initial_state: Optional starting states, ``(batch, units)`` each, in
                ``state_names`` order (zeros if None); backward leaves their
                gradients in ``initial_state_gradients``. Unlike Keras, masked
                leading steps output the carried initial state, not zeros.

        Raises:
            ShapeError: ``mask`` or ``initial_state`` does not fit ``x``.
        """
        self._states_in = isinstance(x, list)
        if self._states_in:
            x, initial_state = x[0], list(x[1:])
        if isinstance(mask, list):
            mask = mask[0]
        if initial_state is None and self.stateful:
            initial_state = self._carried_states(x)
        self._initial_state = self._check_initial_state(x, initial_state)
        n, steps, features = x.shape
        self._x_shape = tuple(x.shape)
        width = self.gates * self.units
        order = slice(None, None, -1) if self.go_backwards else slice(None)
        self._steps_project = self.steps_project_inputs(x.dtype)
        if self._steps_project:
            xh = self.seq_buffer("xh", (steps, n, features + self.units))
            xt = xh[:, :, :features]
        else:
            xh = xt = self.seq_buffer("xt", (steps, n, features))
        np.copyto(xt, x[:, order].transpose(1, 0, 2))  # time-major, processing order
        self._input_keep = self._state_keep = None
        if training and self.dropout > 0:
            self._input_keep = self._keep_mask("input_keep", (n, features), self.dropout)
            xt *= self._input_keep
        if training and self.recurrent_dropout > 0:
            self._state_keep = self._keep_mask(
                "state_keep", (n, self.units), self.recurrent_dropout
            )
        self._xt = xt
        step_mask = check_mask(self, x, mask)
        if step_mask is not None:
            tm = self.seq_buffer("step_mask", (steps, n, 1))
            np.copyto(tm[:, :, 0], step_mask[:, order].T)
            self._step_mask = tm
            self._skip = np.equal(tm, 0.0)
            self._step_skip = np.subtract(
                1.0, tm, out=self.seq_buffer("step_skip", tm.shape)
            )
        else:
            self._step_mask = self._step_skip = self._skip = None
        if self._steps_project:
            h = self.run_forward(xh, training)
        else:
            xw = self.seq_buffer("xw", (steps, n, width))
            flat_xw = xw.reshape(-1, width)
            np.matmul(xt.reshape(-1, features), self.kernel.value, out=flat_xw)
            bias = self.input_bias()
            if bias is not None:
                xw += bias
            h = self.run_forward(xw, training)
        if self.stateful and self.states is not None:
            for kept, final in zip(self.states, self.final_states, strict=True):
                np.copyto(kept, final)
        if not self.return_sequences:
            y = h[steps]
        else:
            y = self.buffer("y", (n, steps, self.units))
            np.copyto(y, h[1:].transpose(1, 0, 2))
            if self.zero_output_for_mask and self._step_mask is not None:
                y *= self._step_mask.transpose(1, 0, 2)
        if self.return_state:
            return [y, *self.final_states]
        return y

    def backward(self, dy: Any) -> Any:
        """Write every parameter's gradient; return dL/dx ``(batch, T, features)``.

        With ``return_state``, ``dy`` is ``[d_output, *d_final_states]`` (None
        entries read as zeros). After a call with initial states, return
        ``[dx, *d_initial_states]``.
        """
        n, steps, features = self._x_shape
        width = self.gates * self.units
        self._state_grads = []
        if self.return_state:
            dy, *self._state_grads = dy
        dh_last = self.buffer("dh_last", (n, self.units))
        dh_out: FloatArray | None = None
        if self.return_sequences:
            if dy is not None:
                dh_out = self.seq_buffer("dh_out", (steps, n, self.units))
                np.copyto(dh_out, dy.transpose(1, 0, 2))
                if self.zero_output_for_mask and self._step_mask is not None:
                    dh_out *= self._step_mask
            dh_last.fill(0.0)
        elif dy is None:
            dh_last.fill(0.0)
        else:
            np.copyto(dh_last, dy)
        d_h = self.final_state_gradient(0)
        if d_h is not None:
            dh_last += d_h
        dxw = self.run_backward(dh_out, dh_last).reshape(-1, width)
        if self.trainable:
            if not self._steps_project:
                np.matmul(self._xt.reshape(-1, features).T, dxw, out=self.kernel.grad)
            if self.bias is not None:
                ones = self.buffer("ones", (steps * n,))
                ones.fill(1.0)
                np.matmul(ones, dxw, out=self.input_bias_grad())
        if not self.input_grad_needed:
            return None
        dxt = self.seq_buffer("dxt", (steps, n, features))
        np.matmul(dxw, self.kernel.value.T, out=dxt.reshape(-1, features))
        if self._input_keep is not None:
            dxt *= self._input_keep
        dx = self.buffer("dx", self._x_shape)
        order = slice(None, None, -1) if self.go_backwards else slice(None)
        np.copyto(dx[:, order], dxt.transpose(1, 0, 2))
        if self._states_in:
            return [dx, *self.initial_state_gradients]
        return dx

    def final_state_gradient(self, index: int) -> FloatArray | None:
        """dL/d(final state ``index``) given to backward (``return_state``), or None."""
        grads = self._state_grads
        return grads[index] if index < len(grads) else None

    def _carried_states(self, x: FloatArray) -> list[FloatArray]:
        """Copies of the states carried from the previous batch (zeros at first)."""
        n = x.shape[0]
        if self.states is None or (self._states_reset and self.states[0].shape[0] != n):
            self.states = [np.zeros((n, self.units), self.dtype) for _ in self.state_names]
        elif self.states[0].shape[0] != n:
            raise ShapeError(
                f"Stateful {type(self).__name__} layer {self.name!r} carries states for "
                f"batches of {self.states[0].shape[0]} samples and got a batch of {n}. "
                "Each batch of a stateful layer continues the sequences of the previous "
                "one sample by sample, so every batch needs the same size, as in Keras: "
                "pick a batch_size that divides the number of samples (also for "
                "predict and evaluate), or call reset_states() before another size."
            )
        self._states_reset = False
        return [s.copy() for s in self.states]

    def reset_states(self) -> None:
        """Forget the carried states: the next batch starts from zeros (Keras's alias).

        A layer that is not stateful has none and is left as it is, as in Keras.
        """
        self.reset_state()

    def reset_state(self) -> None:
        """Set the carried states to zeros; the next batch may then have any size."""
        for state in self.states or []:
            state.fill(0.0)
        self._states_reset = True

    def _check_initial_state(
        self, x: FloatArray, states: list[FloatArray] | None
    ) -> list[FloatArray] | None:
        if states is None:
            return None
        want = (x.shape[0], self.units)
        shapes = [tuple(np.shape(s)) for s in states]
        if len(shapes) != len(self.state_names) or any(s != want for s in shapes):
            raise ShapeError(
                f"{type(self).__name__} layer {self.name!r} got initial states of "
                f"shapes {shapes}; expected {len(self.state_names)} "
                f"({', '.join(self.state_names)}) of shape {want} for inputs of shape "
                f"{tuple(x.shape)}."
            )
        return list(states)

    def start_state(self, index: int, out: FloatArray) -> None:
        """Write state ``index``'s starting value (given or zeros) into ``out``."""
        if self._initial_state is None:
            out.fill(0.0)
        else:
            np.copyto(out, self._initial_state[index])

    def carry_state(self, t: int, new: FloatArray, previous: FloatArray) -> None:
        """Keep ``previous`` in ``new`` for the samples whose step ``t`` is masked."""
        if self._skip is not None:
            np.copyto(new, previous, where=self._skip[t])

    def split_gradient(self, t: int, d: FloatArray, carry: FloatArray) -> FloatArray | None:
        """Move the masked samples' part of ``d`` (dL/dstate) into ``carry``.

        Returns ``carry`` (to add to the previous state's gradient), or None when
        there is no mask.
        """
        if self._step_mask is None:
            return None
        assert self._step_skip is not None  # set with _step_mask
        np.multiply(d, self._step_skip[t], out=carry)
        d *= self._step_mask[t]
        return carry

    def input_bias_grad(self) -> FloatArray:
        """The part of ``bias.grad`` that belongs to ``input_bias``."""
        assert self.bias is not None
        return self.bias.grad


def _stateful(layers: Iterable[Any]) -> Iterator[Recurrent]:
    for layer in layers:
        if isinstance(layer, Recurrent) and layer.stateful:
            yield layer
        inner = [getattr(layer, a, None) for a in ("forward_layer", "_backward", "layer")]
        yield from _stateful(x for x in inner if isinstance(x, Layer))
        if not isinstance(layer, Layer):  # a nested model
            yield from _stateful(getattr(layer, "layers", []))


@contextlib.contextmanager
def kept_states(layers: Iterable[Any]) -> Iterator[None]:
    """Put every stateful layer's carried states back after the block.

    A model's probe on one sample (the check of the targets before ``fit``) runs
    from zero states and must not advance the carried ones, nor fix their batch size.
    """
    saved = [
        (
            layer,
            None if layer.states is None else [s.copy() for s in layer.states],
            layer._states_reset,
        )
        for layer in _stateful(layers)
    ]
    for layer, _, _ in saved:
        layer.states = None  # the probe starts from zeros, whatever its size
    try:
        yield
    finally:
        for layer, states, reset in saved:
            layer.states, layer._states_reset = states, reset


def _sequence_fix(input_shape: Shape) -> str:
    if len(input_shape) == 1:
        return (
            f"For one feature per step add Reshape({(*input_shape, 1)}) before it; for "
            f"token ids add an Embedding first."
        )
    if len(input_shape) == 3:
        return (
            "input_shape excludes the batch axis: pass "
            f"input_shape={tuple(input_shape[1:])}, or wrap a per-step layer in "
            "TimeDistributed."
        )
    return "Reshape the data to (batch, timesteps, features)."
