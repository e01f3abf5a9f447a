"""The Metric contract and weighted means: accumulate batches, report, save and resume."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs
import numpy as np
from attrs import define, field

from loopkit.errors import CheckpointError, LoopkitError, ShapeError
from loopkit.metrics.variable import Variable
from loopkit.typing import Array, FloatArray
from loopkit.validators import construct_from_config, dtype_name, float_dtype

__all__ = [
    "Mean",
    "MeanMetricWrapper",
    "Metric",
    "Sum",
    "as_float",
    "check_name",
    "squeeze_or_expand_to_same_rank",
]

ValuesFn = Callable[[Array, Array], Array]


def check_name(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept a str for a metric's ``name`` (attrs validator)."""
    if not isinstance(value, str):
        raise TypeError(
            f"{type(instance).__name__} got name={value!r} of type "
            f"{type(value).__name__}; expected a str such as name='val_score'."
        )


def _name_or_default(value: Any) -> Any:
    return "" if value is None else value  # None: the class's default name, as in Keras


def _snake_case(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def squeeze_or_expand_to_same_rank(x1: Array, x2: Array) -> tuple[Array, Array]:
    """Return ``x1, x2`` with ranks made equal when they differ by one trailing 1-axis.

    As Keras does: ``(batch,)`` against ``(batch, 1)`` expands the rank-1 array;
    otherwise the array with the extra trailing axis of size 1 is squeezed.
    """
    if x1.ndim == x2.ndim + 1 and x1.shape[-1] == 1:
        if x2.ndim == 1:
            return x1, x2[:, None]
        return x1[..., 0], x2
    if x2.ndim == x1.ndim + 1 and x2.shape[-1] == 1:
        if x1.ndim == 1:
            return x1[:, None], x2
        return x1, x2[..., 0]
    return x1, x2


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


@define(eq=False)
class Metric:
    """Base of every stateful metric: accumulate batches, then report one number.

    The fit loop calls ``reset_state()`` at the start of each epoch (and evaluation),
    ``update_state(y_true, y_pred, sample_weight)`` after each batch, and
    ``result()`` to log the value over everything seen since the reset.

    A subclass keeps its state either the Keras way, in variables made by
    ``add_variable`` in ``__init__`` after ``super().__init__(name=name, **kwargs)``
    (``reset_state`` then zeroes them unless overridden, and ``get_state`` saves
    them), or, as loopkit's own metrics do, in float64 attributes named ``_<key>``
    for each key of ``state_names``, set up by its own ``reset_state``. As in
    Keras, the constructor does not call ``reset_state``.

    As in Keras, calling the metric, ``metric(y_true, y_pred, sample_weight)``,
    updates the state with one batch and returns ``result()``.

    Args:
        name: Key under which the fit loop logs the result (``"val_"`` is prefixed
            for validation); first positionally, as in Keras. None or "" gives the
            class's default name (for a subclass without one, its name in
            snake_case, as in Keras).
        dtype: None, ``"float32"`` or ``"float64"``; accepted for Keras code, and the
            default dtype of ``add_variable``'s variables (float32 for None).
            loopkit's own accumulators are float64 (see docs/keras-differences.md).
    """

    state_names: ClassVar[tuple[str, ...]] = ()
    default_name: ClassVar[str] = ""
    name: str = field(default="", converter=_name_or_default, validator=check_name)
    dtype: str | None = field(default=None, converter=dtype_name, validator=float_dtype)
    _tracked: list[Variable] = field(init=False, factory=list, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.name:
            self.name = self._default_name()

    def _default_name(self) -> str:
        return self.default_name or _snake_case(type(self).__name__)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Update the state with one batch (``update_state``'s arguments); return result."""
        self.update_state(*args, **kwargs)
        return self.result()

    def __getattr__(self, name: str) -> Any:
        # Keras exposes each state variable by name: precision.true_positives.
        if name in type(self).state_names:
            return np.asarray(getattr(self, f"_{name}"))
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self) -> dict[str, Any]:
        # attrs' own covers only the fields: keep a Keras-style subclass's __dict__
        # (its add_variable variables) through copy.deepcopy and pickle too.
        fields = attrs.fields(type(self))
        state = {a.name: getattr(self, a.name) for a in fields if hasattr(self, a.name)}
        state.update(getattr(self, "__dict__", {}))
        return state

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Any:
        """Make a metric from ``get_config()``'s output (empty state), as in Keras.

        Raises:
            ConfigError: the config has a key the constructor does not take.
        """
        return construct_from_config(cls, config)

    def add_variable(
        self,
        shape: Any,
        initializer: Any,
        dtype: Any = None,
        aggregation: str = "sum",
        name: str | None = None,
    ) -> Variable:
        """Make a state variable and track it (Keras's ``Metric.add_variable``).

        Args:
            shape: Its shape, ``()`` for a scalar.
            initializer: A name such as ``"zeros"``, an Initializer, or a function
                ``(shape, dtype) -> array``.
            dtype: Its dtype; None gives the metric's ``dtype``, float32 by default.
            aggregation: Accepted for Keras code (one replica: no effect).
            name: Its name.

        Raises:
            TypeError: The metric's ``__init__`` has not called ``super().__init__()``.
        """
        from loopkit import initializers  # lazily: metrics import before initializers

        try:
            tracked = self._tracked
        except AttributeError:
            raise TypeError(
                f"{type(self).__name__}.add_variable() was called before the metric "
                "was initialized; call super().__init__(name=name, **kwargs) first in "
                "__init__."
            ) from None
        dtype = np.dtype(dtype or self.dtype or "float32")
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        init = initializers.get("zeros" if initializer is None else initializer)
        value = np.asarray(init(shape, dtype), dtype)
        variable = Variable(value, name or "variable", aggregation)
        tracked.append(variable)
        return variable

    def add_weight(
        self,
        shape: Any = (),
        initializer: Any = None,
        dtype: Any = None,
        name: str | None = None,
        aggregation: str = "sum",
    ) -> Variable:
        """Alias of ``add_variable`` (Keras keeps it for older code); zeros by default."""
        return self.add_variable(shape, initializer, dtype, aggregation, name)

    @property
    def variables(self) -> list[Any]:
        """The state: ``add_variable``'s variables, then ``state_names``'s accumulators."""
        named = [np.asarray(getattr(self, f"_{key}")) for key in self.state_names]
        return [*self._tracked, *named]

    def update_state(
        self, y_true: Array, y_pred: Array, sample_weight: Array | None = None
    ) -> None:
        """Add one batch to the accumulators.

        Args:
            y_true: Targets, ``(batch, ...)``.
            y_pred: Model outputs, ``(batch, ...)``.
            sample_weight: ``(batch,)`` or broadcastable to the per-sample values;
                None weighs every sample 1.
        """
        raise NotImplementedError

    def result(self) -> float:
        """Return the metric over every batch since the last ``reset_state``."""
        raise NotImplementedError

    def reset_state(self) -> None:
        """Zero every ``add_variable`` variable, as Keras's default does.

        Subclasses that keep other state override this.
        """
        for variable in self._tracked:
            variable.assign(np.zeros(variable.shape, variable.dtype))

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments, JSON-ready; ``type(m)(**config)`` rebuilds."""
        return {
            a.alias or a.name: _jsonable(getattr(self, a.name))
            for a in attrs.fields(type(self))
            if a.init
        }

    def get_state(self) -> dict[str, float | list[Any]]:
        """Return the accumulators as JSON-ready floats and nested lists.

        ``add_variable``'s variables are under ``"variables"``, in creation order.
        """
        state: dict[str, float | list[Any]] = {
            key: _jsonable(getattr(self, f"_{key}")) for key in self.state_names
        }
        if self._tracked:
            state["variables"] = [_jsonable(v.numpy()) for v in self._tracked]
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore accumulators saved by ``get_state``, so updates continue exactly.

        Raises:
            CheckpointError: ``state`` has other keys, or arrays of other shapes.
        """
        where = f"{type(self).__name__}(name={self.name!r}).set_state()"
        expected = set(self.state_names) | ({"variables"} if self._tracked else set())
        if set(state) != expected:
            raise CheckpointError(
                f"{where} got keys {sorted(state)}; expected {sorted(expected)}. "
                "Pass the dict that get_state() returned for a metric of this class."
            )
        if self._tracked:
            self._set_variables(where, state["variables"])
        for key in self.state_names:
            current = getattr(self, f"_{key}")
            if not isinstance(current, np.ndarray):
                setattr(self, f"_{key}", float(state[key]))
                continue
            saved = np.array(state[key], np.float64)
            # An accumulator not yet sized (zero labels so far) takes the saved size.
            unsized = current.size == 0 and saved.shape[:-1] == current.shape[:-1]
            if saved.shape != current.shape and not unsized:
                raise CheckpointError(
                    f"{where} got {key!r} with shape {saved.shape}; expected "
                    f"{current.shape}. Build the metric with the same configuration "
                    "(thresholds, labels) as the one that was saved."
                )
            setattr(self, f"_{key}", saved)

    def _set_variables(self, where: str, saved: Any) -> None:
        values = [np.asarray(v) for v in saved] if isinstance(saved, list) else []
        shapes = [v.shape for v in self._tracked]
        if [v.shape for v in values] != shapes:
            raise CheckpointError(
                f"{where} got 'variables' with shapes {[v.shape for v in values]}; "
                f"expected a list of arrays of shapes {shapes}, one per add_variable "
                "variable. Build the metric as the one that was saved."
            )
        for variable, value in zip(self._tracked, values, strict=True):
            variable.assign(value)


@define(eq=False)
class Mean(Metric):
    """Weighted mean of the values passed to ``update_state(values, sample_weight)``.

    Values with more axes than ``sample_weight`` are first averaged over the extra
    trailing axes, so each sample counts once: ``sum(w * v) / sum(w)``, as in Keras.
    A scalar ``sample_weight`` weighs every sample of the batch (Keras would weigh
    the batch mean as a single sample). No values at all give 0.0.

    Not for ``compile(metrics=...)``, which passes ``(y_true, y_pred)``; wrap a
    function of those in ``MeanMetricWrapper`` instead.

    Args:
        name: Log key.
    """

    state_names: ClassVar[tuple[str, ...]] = ("total", "count")
    default_name: ClassVar[str] = "mean"
    _total: float = field(init=False, default=0.0, repr=False)
    _count: float = field(init=False, default=0.0, repr=False)

    def update_state(  # type: ignore[override]  # Keras's Mean takes values, not y
        self, values: Array, sample_weight: Array | None = None
    ) -> None:
        """Add ``values`` (``(batch, ...)`` or a scalar) with their sample weights."""
        self._accumulate(np.asarray(values), sample_weight)

    def result(self) -> float:
        return self._total / self._count if self._count else 0.0

    def reset_state(self) -> None:
        self._total, self._count = 0.0, 0.0

    def _accumulate(self, values: Array, sample_weight: Array | None) -> None:
        if sample_weight is None:
            if values.ndim > 1:  # one value per sample
                values = values.reshape(len(values), -1).mean(axis=1, dtype=np.float64)
            # per step: object.__setattr__ skips attrs' setattr hook
            total = self._total + float(np.add.reduce(values, axis=None, dtype=np.float64))
            object.__setattr__(self, "_total", total)
            count = self._count + float(values.shape[0] if values.ndim else 1)
            object.__setattr__(self, "_count", count)
            return
        w = np.asarray(sample_weight, np.float64)
        if w.ndim == 0 and values.ndim > 0:
            w = np.broadcast_to(w, values.shape[:1])
        values, w = squeeze_or_expand_to_same_rank(values, w)
        if values.ndim > w.ndim:  # average the extra trailing axes first
            values = values.mean(axis=tuple(range(w.ndim, values.ndim)), dtype=np.float64)
        try:
            w = np.broadcast_to(w, values.shape)
        except ValueError as err:
            raise ShapeError(
                f"{type(self).__name__}(name={self.name!r}) got sample_weight with "
                f"shape {w.shape} for values of shape {values.shape}; pass one weight "
                "per sample, shape (batch,)."
            ) from err
        weighted = values * w
        if weighted.ndim > 1:  # element-wise weights: each sample still counts once
            weighted = weighted.reshape(len(weighted), -1).mean(axis=1)
            w = w.reshape(len(w), -1).mean(axis=1)
        self._total += float(np.sum(weighted))
        self._count += float(np.sum(w))


@define(eq=False)
class Sum(Metric):
    """Weighted sum of every value passed to ``update_state(values, sample_weight)``.

    Weights of shape ``(batch,)`` weigh every value of their sample, as in Keras.

    Args:
        name: Log key.
        dtype: See ``Metric``.
    """

    state_names: ClassVar[tuple[str, ...]] = ("total",)
    default_name: ClassVar[str] = "sum"
    _total: float = field(init=False, default=0.0, repr=False)

    def update_state(  # type: ignore[override]  # Keras's Sum takes values, not y
        self, values: Array, sample_weight: Array | None = None
    ) -> None:
        """Add ``values`` (any shape), times their weights, to the total."""
        v = np.asarray(values, np.float64)
        if sample_weight is not None:
            w = np.asarray(sample_weight, np.float64)
            v, w = squeeze_or_expand_to_same_rank(v, w)
            w = w.reshape(w.shape + (1,) * (v.ndim - w.ndim))
            try:
                v = v * w
            except ValueError as err:
                raise ShapeError(
                    f"Sum(name={self.name!r}) got sample_weight with shape "
                    f"{np.shape(sample_weight)} for values of shape {v.shape}; pass one "
                    "weight per sample, shape (batch,), or one per value."
                ) from err
        self._total += float(v.sum())

    def result(self) -> float:
        return self._total

    def reset_state(self) -> None:
        self._total = 0.0


def _fn_name(fn: Any) -> str:
    if isinstance(fn, str):
        return fn
    if isinstance(fn, Mapping):
        return str(fn.get("config", {}).get("name", fn.get("class_name", "")))
    return str(getattr(fn, "name", getattr(fn, "__name__", type(fn).__name__)))


def _resolve_fn(owner: str, fn: Any) -> ValuesFn:
    if isinstance(fn, (str, Mapping)):
        from loopkit import losses  # lazily: importing metrics never needs losses

        fn = losses.get(fn)
    per_sample = getattr(fn, "per_sample", None)
    if callable(per_sample):
        return per_sample  # type: ignore[no-any-return]
    if callable(fn):
        return fn  # type: ignore[no-any-return]
    raise TypeError(
        f"{owner} got fn={fn!r} of type {type(fn).__name__}; expected a loss name "
        "such as 'mse', a Loss, or a function (y_true, y_pred) -> per-sample values."
    )


def _fn_config(fn: Any) -> Any:
    if isinstance(fn, (str, Mapping)):
        return fn
    get_config = getattr(fn, "get_config", None)
    if callable(get_config) and hasattr(fn, "name"):
        config = get_config()
        return {"class_name": type(fn).__name__, "config": config} if config else fn.name
    return _fn_name(fn)  # a plain function: its name, which a loss name may match


@define(eq=False)
class MeanMetricWrapper(Mean):
    """Weighted mean over samples of ``fn(y_true, y_pred)``: any loss as a metric.

    ``MeanMetricWrapper("binary_crossentropy")`` logs the epoch's mean binary
    cross-entropy, weighted by ``sample_weight`` like the loss itself.

    Args:
        fn: A loss name or config (resolved by ``loopkit.losses.get``), a Loss
            (its ``per_sample`` is used), or a function ``(y_true, y_pred)``
            returning values of shape ``(batch, ...)``.
        name: Log key; defaults to the loss's name or the function's ``__name__``.
    """

    fn: Any
    # Redeclared to come after fn positionally: MeanMetricWrapper(fn, name, dtype).
    name: str = field(default="", validator=check_name)
    dtype: str | None = field(default=None, converter=dtype_name, validator=float_dtype)
    _values: ValuesFn = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._values = self._make_values_fn()
        super().__attrs_post_init__()

    def _default_name(self) -> str:
        return _fn_name(self.fn)

    def _make_values_fn(self) -> ValuesFn:
        return _resolve_fn(f"{type(self).__name__}()", self.fn)

    def update_state(  # type: ignore[override]
        self, y_true: Array, y_pred: Array, sample_weight: Array | None = None
    ) -> None:
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        try:
            values = np.asarray(self._values(y_true, y_pred))
        except LoopkitError:
            raise
        except (ValueError, IndexError) as err:
            raise ShapeError(
                f"{type(self).__name__}(name={self.name!r}) got y_true with shape "
                f"{y_true.shape} and y_pred with shape {y_pred.shape}: {err}. Pass "
                "targets shaped like the model's output (class indices of shape "
                "(batch,) or (batch, 1) for sparse metrics)."
            ) from err
        self._accumulate(values, sample_weight)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if "fn" in config:
            config["fn"] = _fn_config(self.fn)
        return config


def as_float(x: Array) -> FloatArray:
    """Return ``x`` as a float array, keeping float32/float64 and making others float64."""
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)
