"""The optimizer base: flat-buffer slots, blocked updates, clipping, decay and state."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import attrs
import numpy as np
from attrs import define, field
from attrs.validators import optional

from loopkit import schedules
from loopkit.errors import CheckpointError, ConfigError, ShapeError
from loopkit.optimizers.custom_loops import GradientPairs
from loopkit.schedules import LearningRateSchedule
from loopkit.typing import FloatArray
from loopkit.validators import non_negative, positive

__all__ = [
    "BLOCK_BYTES",
    "Block",
    "Optimizer",
    "Slots",
    "as_learning_rate",
    "check_learning_rate",
]

BLOCK_BYTES = 256 * 1024
"""Bytes of each array an update touches per block. An update makes about a dozen
passes; on blocks this size every pass after the first hits the L2 cache, which
makes large models about twice as fast as whole-buffer passes."""

Slots = dict[str, FloatArray]
"""Each slot's array (or its block), by slot name."""


class Block(NamedTuple):
    """One cache-sized block of an update: matching views of every buffer it touches."""

    p: FloatArray
    """Parameters; update them in place."""
    g: FloatArray
    """Their gradients, already clipped; may be overwritten."""
    slots: Slots
    """The matching block of each slot, by slot name."""
    s: FloatArray
    """Scratch of the block's length."""
    s2: FloatArray
    """A second scratch of the block's length."""


_KERAS_SWITCHES = ("use_ema", "loss_scale_factor", "gradient_accumulation_steps")
_KERAS_ONLY = (
    *_KERAS_SWITCHES,
    "ema_momentum",
    "ema_overwrite_frequency",
    "is_legacy_optimizer",
)


def without_keras_only(config: Mapping[str, Any], call: str) -> dict[str, Any]:
    """Return a Keras optimizer config without the entries loopkit does not take.

    Keras 3's EMA, loss-scale and gradient-accumulation entries are dropped when
    off, and refused when on (EMA and accumulation are plugins here).

    Raises:
        ConfigError: One of those switches is on.
    """
    kwargs = dict(config)
    extras = {k: kwargs.pop(k) for k in _KERAS_ONLY if k in kwargs}
    active = [k for k in _KERAS_SWITCHES if extras.get(k)]
    if active:
        settings = ", ".join(f"{k}={extras[k]!r}" for k in active)
        raise ConfigError(
            f"{call}: the config sets {settings}, which loopkit optimizers do not "
            "take. Remove them and use the EMA or gradient accumulation plugins "
            "instead."
        )
    return kwargs


def as_learning_rate(value: Any) -> Any:
    """Convert a number to float and a schedule config dict to a schedule (converter)."""
    if isinstance(value, Mapping):
        return schedules.get(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    ):
        return float(value)
    return value


def check_learning_rate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept a finite float >= 0 or a LearningRateSchedule (attrs validator).

    Zero is allowed, as in Keras: a schedule or plugin may pause training with it.
    """
    owner = type(instance).__name__
    if isinstance(value, LearningRateSchedule):
        return
    if not isinstance(value, float):
        raise TypeError(
            f"{owner} got learning_rate={value!r} of type {type(value).__name__}; "
            "expected a float >= 0 or a loopkit.schedules.LearningRateSchedule. Pass a "
            "number such as learning_rate=0.001, or a schedule such as "
            "ExponentialDecay(0.01, decay_steps=1000, decay_rate=0.9)."
        )
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(
            f"{owner} got learning_rate={value!r}; expected a finite number >= 0, "
            "typically between 1e-4 and 1e-1 (e.g. learning_rate=0.001)."
        )


def _span_bounds(span: Any, size: int) -> tuple[int, int] | None:
    """Return ``(start, stop)`` of a valid span of a buffer of ``size``, else None."""
    if not isinstance(span, slice) or span.step not in (None, 1):
        return None
    start, stop = span.start, span.stop
    if not isinstance(start, int) or not isinstance(stop, int):
        return None
    return (start, stop) if 0 <= start <= stop <= size else None


def _checked_shape(call: str, shape: Any, bounds: tuple[int, int]) -> tuple[int, ...]:
    """Return ``shape`` as a tuple of ints if it holds the span's number of elements."""
    dims = tuple(int(d) for d in shape)
    if math.prod(dims) != bounds[1] - bounds[0]:
        raise ConfigError(
            f"{call} got shape {dims} for span {bounds[0]}:{bounds[1]} of "
            f"{bounds[1] - bounds[0]} elements; pass each parameter's own shape."
        )
    return dims


def _owner(opt: Optimizer, call: str) -> str:
    return f"{type(opt).__name__}.{call}"


@define(eq=False)
class Optimizer:
    """Base of loopkit's optimizers: one in-place update of a model's flat buffers.

    A model keeps every parameter in one flat array and every gradient in another.
    ``build`` allocates each slot (momentum, velocity, ...) once as a flat array of the
    same size; ``apply`` then updates the trainable segments with a fixed number of
    in-place NumPy calls per cache-sized block, whatever the number of layers, and
    allocates nothing. Subclasses declare their slots and write the update of one block.

    Per step, in Keras 3's order: clip the gradients (``clipnorm`` per parameter,
    ``global_clipnorm`` over all, or ``clipvalue`` element-wise), decay the weights
    (``w -= w * weight_decay * lr``, decoupled), then apply the update rule.

    Args:
        learning_rate: A float > 0 or a ``LearningRateSchedule``; settable at any time
            (``opt.learning_rate = 1e-4``), effective from the next ``apply``. Unlike
            Keras, a float may replace a schedule. Read back, ``opt.learning_rate`` is
            the rate in force as a float, as in Keras (the schedule evaluated at
            ``iterations``); ``raw_learning_rate`` is what was set.
        weight_decay: Decoupled weight decay factor; None or 0 for none.
        clipnorm: Clip each parameter's gradient to this L2 norm.
        clipvalue: Clip each gradient element to ``[-clipvalue, clipvalue]``.
        global_clipnorm: Clip all gradients together to this global L2 norm. A
            non-finite global norm makes every gradient NaN, as in Keras, so that the
            failure shows instead of a silently partial step.
        name: Name of the optimizer; by default Keras's: the lower-cased class name
            ("SGD" for SGD).
        learning_rate_multiplier: loopkit's own: multiplies whatever ``learning_rate``
            gives, float or schedule. Plugins such as ReduceLROnPlateau scale this, so
            they compose with any schedule. Saved in ``get_config``.
    """

    _learning_rate: float | LearningRateSchedule = field(
        default=0.001,
        converter=as_learning_rate,
        validator=check_learning_rate,
        alias="learning_rate",
    )
    weight_decay: float | None = field(
        default=None, kw_only=True, validator=optional(non_negative)
    )
    clipnorm: float | None = field(default=None, kw_only=True, validator=optional(positive))
    clipvalue: float | None = field(
        default=None, kw_only=True, validator=optional(positive)
    )
    global_clipnorm: float | None = field(
        default=None, kw_only=True, validator=optional(positive)
    )
    name: str | None = field(default=None, kw_only=True)
    learning_rate_multiplier: float = field(default=1.0, kw_only=True, validator=positive)
    iterations: int = field(init=False, default=0)
    """Number of updates applied; the schedule is evaluated at this step."""
    built: bool = field(init=False, default=False)
    _size: int = field(init=False, default=0, repr=False)
    _dtype: np.dtype[Any] = field(
        init=False, factory=lambda: np.dtype(np.float32), repr=False
    )
    _spans: list[tuple[int, int]] = field(init=False, factory=list, repr=False)
    _segments: list[tuple[int, int]] = field(init=False, factory=list, repr=False)
    _blocks: list[tuple[int, int]] = field(init=False, factory=list, repr=False)
    _slots: Slots = field(init=False, factory=dict, repr=False)
    _slot_key: tuple[str, ...] = field(init=False, default=(), repr=False)
    _block_slots: list[Slots] = field(init=False, factory=list, repr=False)
    _scratch: tuple[FloatArray, FloatArray] = field(
        init=False, factory=lambda: (np.empty(0), np.empty(0)), repr=False
    )
    _work: list[Block] = field(init=False, factory=list, repr=False)
    _params: FloatArray | None = field(init=False, default=None, repr=False)
    _grads: FloatArray | None = field(init=False, default=None, repr=False)
    _grad_spans: list[FloatArray] = field(init=False, factory=list, repr=False)
    _grad_segments: list[FloatArray] = field(init=False, factory=list, repr=False)
    _pending: Slots | None = field(init=False, default=None, repr=False)
    _span_names: list[str] = field(init=False, factory=list, repr=False)
    _span_shapes: list[tuple[int, ...]] = field(init=False, factory=list, repr=False)
    _no_decay: tuple[str, ...] = field(init=False, default=(), repr=False)
    _pairs: GradientPairs | None = field(init=False, default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.name is None:
            self.name = type(self).__name__.lower()
        clips = {"clipnorm": self.clipnorm, "clipvalue": self.clipvalue}
        clips["global_clipnorm"] = self.global_clipnorm
        given = {k: v for k, v in clips.items() if v is not None}
        if len(given) > 1:
            args = ", ".join(f"{k}={v!r}" for k, v in given.items())
            raise ConfigError(
                f"{type(self).__name__}({args}): only one of clipnorm, clipvalue and "
                "global_clipnorm can be set, as in Keras. Keep one of them."
            )

    # --- what subclasses provide -----------------------------------------------------

    def slot_names(self) -> tuple[str, ...]:
        """Return the names of the per-parameter slots the current settings need."""
        return ()

    def slot_initial_value(self, name: str) -> float:
        """Return the value slot ``name`` starts at (0 unless overridden)."""
        return 0.0

    def coefficients(self, learning_rate: float, step: int) -> Any:
        """Return the scalars of update number ``step`` (1-based), once per step."""
        return learning_rate

    def update_block(self, b: Block, c: Any) -> None:
        """Update one block of parameters ``b.p`` in place from its gradients ``b.g``.

        Args:
            b: The block's parameters, gradients, slots and scratch.
            c: What ``coefficients`` returned for this step.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement update_block()")

    per_parameter_pass: ClassVar[bool] = False
    """Whether ``apply`` calls ``finish_step`` after the blocks (Lamb's norms)."""
    needs_shapes: ClassVar[bool] = False
    """Whether ``build`` must be given the parameters' shapes (Adafactor)."""

    def finish_step(self, c: Any) -> None:
        """Finish an update after every block: per-parameter work, as Lamb's norms."""

    def exclude_from_weight_decay(
        self, var_list: Any = None, var_names: Sequence[str] | None = None
    ) -> None:
        """Exempt the parameters whose name contains one of ``var_names`` from decay.

        As Keras's method: ``opt.exclude_from_weight_decay(var_names=["bias"])``.
        Names are those the model gives ``build`` (``"dense/bias"``).

        Raises:
            TypeError: ``var_list`` is given: loopkit matches parameters by name only.
        """
        if var_list is not None:
            raise TypeError(
                f"{_owner(self, 'exclude_from_weight_decay()')} got var_list="
                f"{var_list!r:.80}; loopkit optimizers see parameters by name only. "
                "Pass var_names=['bias', 'gamma'] (substrings of 'layer/weight' names)."
            )
        self._no_decay = tuple(str(name) for name in var_names or ())

    def _decayed_spans(self) -> list[tuple[int, int]] | None:
        """The spans weight decay applies to, or None for every one (no exclusion)."""
        if not self._no_decay:
            return None
        return [
            span
            for span, name in zip(self._spans, self._span_names, strict=True)
            if not any(excluded in name for excluded in self._no_decay)
        ]

    # --- building ---------------------------------------------------------------------

    def build(
        self,
        size: int,
        dtype: Any,
        spans: Sequence[slice],
        names: Sequence[str] | None = None,
        shapes: Sequence[tuple[int, ...]] | None = None,
    ) -> None:
        """Allocate the slots for a flat buffer of ``size`` and set the trainable spans.

        Args:
            size: Length of the model's flat parameter (and gradient) buffer.
            dtype: float32 or float64, the buffers' dtype.
            spans: One slice of the buffer per trainable parameter, in order; frozen
                parameters are in none. Adjacent spans merge into one segment.
            names: The parameters' names (``"dense/kernel"``), one per span, which
                ``exclude_from_weight_decay(var_names=...)`` matches; optional.
            shapes: The parameters' shapes, one per span; optional, needed by
                rules that treat matrices apart (Adafactor).

        Calling ``build`` again with the same size and dtype (a layer was frozen or
        unfrozen) keeps the slots and only recomputes the segments; another size or
        dtype reallocates them. A state given to ``set_state`` before the first
        ``build`` is loaded here.
        """
        call = _owner(self, "build()")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
            raise ConfigError(f"{call} got size={size!r}; expected an int >= 0.")
        size = int(size)
        try:
            dt = np.dtype(dtype)
        except TypeError:
            dt = np.dtype(object)  # not a dtype at all: refused just below
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ConfigError(
                f"{call} got dtype={dtype!r}; expected float32 or float64. Build the "
                "model in one of those."
            )
        if shapes is None and spans and self.needs_shapes:
            raise ConfigError(
                f"{call} got no shapes: {type(self).__name__} treats each matrix on its "
                "own, so it needs the parameters' shapes. Pass build(..., shapes=[p.shape "
                "for p in params]), or use apply_gradients(zip(grads, variables)), which "
                "passes them."
            )
        for label, given in (("names", names), ("shapes", shapes)):
            if given is not None and len(given) != len(spans):
                raise ConfigError(
                    f"{call} got {len(given)} {label} for {len(spans)} spans; pass one "
                    "per span, or none."
                )
        ranges = []
        named: dict[tuple[int, int], str] = {}
        shaped: dict[tuple[int, int], tuple[int, ...]] = {}
        for i, span in enumerate(spans):
            bounds = _span_bounds(span, size)
            if bounds is None:
                raise ConfigError(
                    f"{call} got span {span!r} for a buffer of size {size}; expected "
                    "slice(start, stop) with 0 <= start <= stop <= size and no step."
                )
            if bounds[1] > bounds[0]:
                ranges.append(bounds)
                if names is not None:
                    named[bounds] = str(names[i])
                if shapes is not None:
                    shaped[bounds] = _checked_shape(call, shapes[i], bounds)
        ranges.sort()
        self._span_names = [named.get(r, "") for r in ranges]
        self._span_shapes = [shaped[r] for r in ranges] if shapes is not None else []
        segments: list[tuple[int, int]] = []
        for start, stop in ranges:
            if segments and start < segments[-1][1]:
                raise ConfigError(
                    f"{call}: spans overlap at index {start} (a span ends at "
                    f"{segments[-1][1]}); each parameter must have its own span."
                )
            if segments and start == segments[-1][1]:
                segments[-1] = (segments[-1][0], stop)
            else:
                segments.append((start, stop))
        if not self.built or size != self._size or dt != self._dtype:
            self._slots = {}
        self._size, self._dtype = size, dt
        self._spans, self._segments = ranges, segments
        block = max(1, BLOCK_BYTES // dt.itemsize)
        self._blocks = [
            (a, min(a + block, stop))
            for start, stop in segments
            for a in range(start, stop, block)
        ]
        n = max((b - a for a, b in self._blocks), default=0)
        self._scratch = (np.empty(n, dt), np.empty(n, dt))
        self.built = True
        self._sync_slots()
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._load_slots(pending, call)

    def _sync_slots(self) -> None:
        """Allocate the slots the current settings need, drop others, redo the views."""
        names = self.slot_names()
        slots: Slots = {}
        for name in names:
            kept = self._slots.get(name)
            init = self.slot_initial_value(name)
            slots[name] = np.full(self._size, init, self._dtype) if kept is None else kept
        self._slots = slots
        self._slot_key = names
        self._block_slots = [
            {name: buf[a:b] for name, buf in self._slots.items()} for a, b in self._blocks
        ]
        self._params = self._grads = None  # views are redone by the next apply

    def _bind(self, params: FloatArray, grads: FloatArray) -> None:
        """Cut the views of ``params`` and ``grads`` that ``apply`` walks over."""
        call = _owner(self, "apply()")
        for label, array in (("params", params), ("grads", grads)):
            if not isinstance(array, np.ndarray) or array.shape != (self._size,):
                shape = getattr(array, "shape", None)
                raise ShapeError(
                    f"{call} got {label} of shape {shape}; the optimizer was built for "
                    f"a flat buffer of shape {(self._size,)}. Call build() again after "
                    "changing the model."
                )
            if array.dtype != self._dtype:
                raise ConfigError(
                    f"{call} got {label} of dtype {array.dtype}; the optimizer was built "
                    f"for {self._dtype}. Call build() with the model's dtype."
                )
        s, s2 = self._scratch
        self._work = [
            Block(params[a:b], grads[a:b], slots, s[: b - a], s2[: b - a])
            for (a, b), slots in zip(self._blocks, self._block_slots, strict=True)
        ]
        self._grad_spans = [grads[a:b] for a, b in self._spans]
        self._grad_segments = [grads[a:b] for a, b in self._segments]
        self._params, self._grads = params, grads

    # --- stepping ---------------------------------------------------------------------

    @property
    def learning_rate(self) -> float:
        """The rate of the next update, as Keras reads it: a float even with a schedule.

        The schedule (if any) evaluated at ``iterations``, times
        ``learning_rate_multiplier``. Set a float or a ``LearningRateSchedule``;
        ``raw_learning_rate`` returns what was set.
        """
        lr = self._learning_rate
        value = float(lr(self.iterations)) if isinstance(lr, LearningRateSchedule) else lr
        return value * self.learning_rate_multiplier

    @learning_rate.setter
    def learning_rate(self, value: float | LearningRateSchedule) -> None:
        self._learning_rate = value  # attrs converts and validates on setattr

    @property
    def raw_learning_rate(self) -> float | LearningRateSchedule:
        """The learning rate as set: a float or the ``LearningRateSchedule`` itself."""
        return self._learning_rate

    @property
    def current_learning_rate(self) -> float:
        """The learning rate of the next update; the same as ``learning_rate``."""
        return self.learning_rate

    def apply(self, params: Any, grads: Any = None) -> None:
        """Apply one update to the trainable segments of ``params``, in place.

        Also Keras's ``apply(grads, trainable_variables=None)`` for hand-written loops:
        given a list of gradients (not a flat array) first, it updates the variables
        given second, or those of the previous such call, as ``apply_gradients`` does.

        Args:
            params: (size,) the model's flat parameter buffer.
            grads: (size,) its gradients; clipping overwrites them in place.
        """
        if not isinstance(params, np.ndarray):
            self._apply_to_variables(params, grads)
            return
        if not self.built:
            raise ConfigError(
                f"{_owner(self, 'apply()')}: the optimizer is not built. Call "
                "build(size, dtype, spans) first; model.compile() does it."
            )
        if self._slot_key != self.slot_names():  # momentum/centered/amsgrad changed
            self._sync_slots()
        if params is not self._params or grads is not self._grads:
            self._bind(params, grads)
        lr = self.current_learning_rate
        c = self.coefficients(lr, self.iterations + 1)
        scale = self._clip_norms()
        clip = self.clipvalue
        decay = 1.0 - self.weight_decay * lr if self.weight_decay else None
        decayed = self._decayed_spans() if decay is not None else None
        if decay is not None and decayed is not None:  # some are exempt: decay the rest
            for a, b in decayed:
                np.multiply(params[a:b], decay, out=params[a:b])
            decay = None
        update = self.update_block
        for block in self._work:
            if clip is not None:
                np.clip(block.g, -clip, clip, out=block.g)
            elif scale != 1.0:
                np.multiply(block.g, scale, out=block.g)
            if decay is not None:
                np.multiply(block.p, decay, out=block.p)
            update(block, c)
        if self.per_parameter_pass:
            self.finish_step(c)
        object.__setattr__(self, "iterations", self.iterations + 1)  # skips attrs' hook

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Any]]) -> None:
        """Update variables in place from ``(gradient, variable)`` pairs (Keras's API).

        For hand-written loops: ``opt.apply_gradients(zip(grads, model.weights))``.
        Variables are Parameters or float NumPy arrays. A new set of variables rebuilds
        the optimizer (fresh slots); ``fit`` uses the flat ``apply`` instead.

        Raises:
            TypeError: A variable is neither a Parameter nor a float array.
            ShapeError: A gradient's shape differs from its variable's.
        """
        if self._pairs is None:
            self._pairs = GradientPairs()
        self._pairs.apply(self, grads_and_vars)

    def _apply_to_variables(self, grads: Any, variables: Any) -> None:
        """Keras's ``apply(grads, trainable_variables)``; see ``apply``."""
        if variables is None:
            if self._pairs is None or not self._pairs.variables:
                raise ConfigError(
                    f"{_owner(self, 'apply()')} got gradients but no variables, and "
                    "has none from an earlier call. Pass apply(grads, variables)."
                )
            variables = self._pairs.variables
        self.apply_gradients(zip(list(grads), list(variables), strict=True))

    def _clip_norms(self) -> float:
        """Clip per-parameter norms in place; return the global-norm factor (or 1)."""
        if self.clipnorm is not None:
            limit = self.clipnorm
            for g in self._grad_spans:
                sq = _squared_norm(g)
                if not sq <= limit * limit:  # also NaN/inf, which spread as in Keras
                    g *= limit / math.sqrt(sq)
        elif self.global_clipnorm is not None:
            limit = self.global_clipnorm
            sq = math.fsum(_squared_norm(g) for g in self._grad_segments)
            if not math.isfinite(sq):
                return math.nan
            if sq > limit * limit:
                return limit / math.sqrt(sq)
        return 1.0

    # --- state and config -------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        """Return ``{"iterations": int, "slots": {name: array}}`` with copied arrays."""
        slots = self._slots if self.built else (self._pending or {})
        return {
            "iterations": int(self.iterations),
            "slots": {name: np.array(buf, copy=True) for name, buf in slots.items()},
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore what ``get_state`` returned, so training continues bit for bit.

        On a built optimizer the slots are loaded now. Before the first ``build`` they
        are checked for names, copied and kept, and ``build`` loads them (raising
        CheckpointError there if the sizes differ); ``iterations`` is set at once.

        Raises:
            CheckpointError: The state is malformed, has other slots than these
                settings use, or slots of another size than the built buffer.
        """
        call = _owner(self, "set_state()")
        keys = sorted(state) if isinstance(state, Mapping) else None
        iterations = state.get("iterations") if keys is not None else None
        slots = state.get("slots") if keys is not None else None
        if (
            isinstance(iterations, bool)
            or not isinstance(iterations, (int, np.integer))
            or iterations < 0
            or not isinstance(slots, Mapping)
        ):
            raise CheckpointError(
                f"{call} got {state!r:.200}; expected a dict with 'iterations' (an int "
                ">= 0) and 'slots' (a dict of arrays), as get_state() returns."
            )
        expected = set(self.slot_names())
        if set(slots) != expected:
            raise CheckpointError(
                f"{call}: the state has slots {sorted(slots)}, but this {self.name!r} "
                f"uses {sorted(expected)}. It was saved by an optimizer with other "
                "settings (momentum, centered, amsgrad): create this one with those."
            )
        arrays = {name: np.array(value, copy=True) for name, value in slots.items()}
        if self.built:
            self._load_slots(arrays, call)
        else:
            self._pending = arrays
        self.iterations = int(iterations)

    def _load_slots(self, arrays: Mapping[str, np.ndarray], call: str) -> None:
        for name, array in arrays.items():  # check every slot before changing any
            if array.shape != (self._size,):
                raise CheckpointError(
                    f"{call}: slot {name!r} has shape {array.shape} but this optimizer's "
                    f"buffer has shape {(self._size,)}. Restore a state saved from a model "
                    "with the same parameters."
                )
        for name, array in arrays.items():
            np.copyto(self._slots[name], array, casting="same_kind")

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], custom_objects: Mapping[str, Any] | None = None
    ) -> Any:
        """Make an optimizer from ``get_config()``'s output (fresh state), as in Keras.

        A schedule given as a dict is rebuilt; Keras-only entries are handled as in
        ``optimizers.deserialize``.

        Raises:
            ConfigError: a key the constructor does not take, or a Keras-only
                switch (``use_ema``, ...) that is on.
        """
        from loopkit.validators import check_config_keys

        call = f"{cls.__name__}.from_config()"
        kwargs = without_keras_only(config, call)
        check_config_keys(call, cls, kwargs)
        return cls(**kwargs)

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as JSON-ready values; schedules as dicts."""
        config: dict[str, Any] = {}
        for a in attrs.fields(type(self)):
            if a.init:
                value = getattr(self, a.name)
                if isinstance(value, LearningRateSchedule):
                    value = schedules.serialize(value)
                config[a.alias or a.name] = value
        return config


def _squared_norm(g: FloatArray) -> float:
    """Return ``sum(g**2)``; a float32 overflow is redone in float64 (no warning)."""
    with np.errstate(over="ignore", invalid="ignore"):
        sq = float(np.dot(g, g))
    if math.isinf(sq) and np.all(np.isfinite(g)):
        sq = float(np.dot(g.astype(np.float64), g.astype(np.float64)))
    return sq
