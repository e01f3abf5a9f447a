"""Data for models with several inputs or outputs: lists or dicts of arrays, batched as one.

``x`` may be one array, a list in input order, or a dict keyed by input name (the
same for ``y`` and ``sample_weight`` by output); every array is converted once and
all are sliced or shuffled with one sample order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from attrs import define, field

from loopkit._data.datasets import Batch, batch_rows
from loopkit._data.inputs import as_array, is_table
from loopkit.errors import ConfigError, ShapeError
from loopkit.typing import Array

__all__ = [
    "StructuredDataset",
    "flatten_data",
    "make_structured_dataset",
    "structured_batch",
]


def flatten_data(
    value: Any, names: Sequence[str], what: str, call: str, *, dict_only: bool = False
) -> list[Any]:
    """Return ``value`` as a list in the order of ``names``.

    Args:
        value: One array (one name), a list/tuple in order, or a dict keyed by name.
        names: The model's input (or output) names.
        what: ``"x"``, ``"y"`` or ``"sample_weight"``, for messages.
        call: The user's call, for messages.
        dict_only: The model was built with a dict of inputs: a list is ambiguous.

    Raises:
        ConfigError: the structure does not match the names.
    """
    kind = "inputs" if what == "x" else "outputs"
    if is_table(value) and len(names) > 1:
        columns = list(getattr(value, "columns", ()))
        if all(n in columns for n in names):  # a DataFrame with a column per input
            value = {n: value[n] for n in names}
    if isinstance(value, Mapping):
        missing = [n for n in names if n not in value]
        extra = sorted(set(value) - set(names))
        if missing or extra:
            raise ConfigError(
                f"{call} got {what} as a dict with keys {sorted(value)}; the model's "
                f"{kind} are {list(names)} (missing {missing}, unknown {extra}). Key the "
                "dict by those names."
            )
        return [value[n] for n in names]
    if dict_only and len(names) > 1:
        raise ConfigError(
            f"{call} got {what} as a {type(value).__name__}; the model was built with a "
            f"dict of {kind}, so pass a dict keyed by {list(names)}."
        )
    if isinstance(value, (list, tuple)) and not _is_numbers(value):
        if len(value) != len(names):
            raise ConfigError(
                f"{call} got {what} as a list of {len(value)} arrays; the model has "
                f"{len(names)} {kind} {list(names)}. Pass one array per {kind[:-1]}, in "
                "that order, or a dict keyed by name."
            )
        return list(value)
    if len(names) != 1:
        raise ConfigError(
            f"{call} got {what} as one array; the model has {len(names)} {kind} "
            f"{list(names)}. Pass a list in that order or a dict keyed by name."
        )
    return [value]


def _is_numbers(value: Sequence[Any]) -> bool:
    """Whether a list is plain numbers (one array written as a list), not arrays."""
    return len(value) > 0 and all(isinstance(v, (int, float, np.number)) for v in value)


def _column(value: Any, dtype: Any, what: str, call: str) -> Array:
    array = as_array(value, dtype, what, call)
    if array.ndim == 0:
        raise ShapeError(f"{call} got {what} of shape (); expected one row per sample.")
    return array


def structured_batch(
    item: Any,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dtype: Any,
    call: str,
    *,
    dict_only: bool = False,
) -> Batch:
    """Turn one ``(x, y[, sample_weight])`` item of a generator into lists of arrays."""
    if not isinstance(item, tuple) or not 1 <= len(item) <= 3:
        raise ConfigError(
            f"{call}: a batch from the data is {type(item).__name__}; expected a tuple "
            "(x, y) or (x, y, sample_weight), each an array, list or dict."
        )
    x, y, w = (*item, None, None)[:3]
    xs = [
        _column(a, dtype, f"x[{n!r}]", call)
        for a, n in zip(
            flatten_data(x, input_names, "x", call, dict_only=dict_only),
            input_names,
            strict=True,
        )
    ]
    ys = (
        None
        if y is None
        else [
            _column(a, None, f"y[{n!r}]", call)
            for a, n in zip(
                flatten_data(y, output_names, "y", call), output_names, strict=True
            )
        ]
    )
    ws = None if w is None else _weights(w, output_names, dtype, call)
    return _shape(xs, ys, ws, len(input_names), len(output_names))


def _weights(w: Any, names: Sequence[str], dtype: Any, call: str) -> list[Any]:
    if isinstance(w, (Mapping, list, tuple)) and not (
        isinstance(w, (list, tuple)) and _is_numbers(w)
    ):
        spread = w if not isinstance(w, Mapping) else {n: w.get(n) for n in names}
        parts = flatten_data(spread, names, "sample_weight", call)
    else:
        parts = [w] * len(names)
    return [None if p is None else _column(p, dtype, "sample_weight", call) for p in parts]


def _shape(
    xs: list[Any], ys: list[Any] | None, ws: list[Any] | None, n_in: int, n_out: int
) -> Batch:
    """One input/output comes as an array, several as a list (what ``forward`` takes)."""
    x = xs[0] if n_in == 1 else xs
    y = None if ys is None else (ys[0] if n_out == 1 else ys)
    w = None if ws is None else (ws[0] if n_out == 1 else ws)
    return x, y, w  # type: ignore[return-value]


@define(eq=False)
class StructuredDataset:
    """Several input and target arrays, batched with one sample order.

    Args:
        xs: One array per input.
        ys: One array per output, or None (predict).
        ws: Per-output sample weights (None entries for unweighted outputs), or None.
        batch_size: Samples per batch; the last batch may be shorter.
        shuffle: Visit samples in a new order every epoch.
        seed: With the epoch index, fixes each epoch's order.
        dtype: Float dtype of the model.
        max_steps: Stop each pass after this many batches.
    """

    xs: list[Array]
    ys: list[Array] | None
    ws: list[Any] | None
    batch_size: int
    shuffle: bool = False
    seed: int = 0
    dtype: Any = np.float32
    max_steps: int | None = None
    n_outputs: int = 1
    _buffers: dict[tuple[str, int], Array] = field(factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.xs[0])

    @property
    def steps(self) -> int:
        """Batches per pass."""
        steps = math.ceil(len(self) / self.batch_size)
        return steps if self.max_steps is None else min(steps, self.max_steps)

    def _take(self, key: tuple[str, int], source: Array, index: Any) -> Array:
        buf = self._buffers.get(key)
        if buf is None:
            dtype = self.dtype if key[0] == "x" else source.dtype
            buf = np.empty((self.batch_size, *source.shape[1:]), dtype)
            self._buffers[key] = buf
        out = buf[: len(index)]
        out[...] = source[index]
        return out

    def batches(self, epoch: int) -> Iterator[Batch]:
        """Yield the batches of one pass: arrays for one input/output, lists for several."""
        for start, stop, order in batch_rows(
            len(self), self.batch_size, self.max_steps, self.shuffle, self.seed, epoch
        ):
            rows = slice(start, stop)
            index = None if order is None else order[rows]
            xs = self._pick("x", self.xs, rows, index)
            assert xs is not None
            ys, ws = (
                self._pick("y", self.ys, rows, index),
                self._pick("w", self.ws, rows, index),
            )
            yield _shape(xs, ys, ws, len(self.xs), self.n_outputs)

    def _pick(
        self, kind: str, arrays: list[Any] | None, rows: slice, index: Any
    ) -> list[Any] | None:
        """Return the batch's rows of each array: a slice, or gathered when shuffled."""
        if arrays is None:
            return None
        if index is None:
            return [None if a is None else np.asarray(a[rows]) for a in arrays]
        return [
            None if a is None else self._take((kind, i), a, index)
            for i, a in enumerate(arrays)
        ]

    def split(
        self, at: int, validation_batch_size: int, validation_steps: int | None
    ) -> tuple[StructuredDataset, StructuredDataset]:
        """Return the first ``at`` samples (training) and the rest (validation)."""

        def part(
            sl: slice, shuffle: bool, size: int, steps: int | None
        ) -> StructuredDataset:
            def cut(arrays: list[Any] | None) -> list[Any] | None:
                return (
                    None
                    if arrays is None
                    else [None if a is None else a[sl] for a in arrays]
                )

            xs = cut(self.xs)
            assert xs is not None
            return StructuredDataset(
                xs,
                cut(self.ys),
                cut(self.ws),
                size,
                shuffle=shuffle,
                seed=self.seed,
                dtype=self.dtype,
                max_steps=steps,
                n_outputs=self.n_outputs,
            )

        return (
            part(slice(0, at), self.shuffle, self.batch_size, self.max_steps),
            part(slice(at, None), False, validation_batch_size, validation_steps),
        )


def make_structured_dataset(
    x: Any,
    y: Any,
    sample_weight: Any,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dict_only: bool,
    batch_size: int | None,
    shuffle: bool,
    seed: int,
    dtype: Any,
    steps: int | None,
    call: str,
    integer_outputs: Sequence[bool] = (),
) -> StructuredDataset:
    """Return the dataset for array data of a several-input or several-output model.

    Raises:
        ConfigError: the structure does not match the model, or a bad batch size.
        ShapeError: the arrays disagree in their number of samples.
    """
    xs = [
        _column(a, dtype, f"x[{n!r}]", call)
        for a, n in zip(
            flatten_data(x, input_names, "x", call, dict_only=dict_only),
            input_names,
            strict=True,
        )
    ]
    ys = None
    if y is not None:
        ys = []
        for i, (a, n) in enumerate(
            zip(flatten_data(y, output_names, "y", call), output_names, strict=True)
        ):
            col = _column(a, None, f"y[{n!r}]", call)
            sparse = i < len(integer_outputs) and integer_outputs[i]
            if col.dtype == np.bool_ or not (
                sparse and np.issubdtype(col.dtype, np.integer)
            ):
                col = col.astype(dtype, copy=False)
            ys.append(col)
    ws = (
        None
        if sample_weight is None
        else _weights(sample_weight, output_names, dtype, call)
    )
    counts = {f"x[{n!r}]": len(a) for n, a in zip(input_names, xs, strict=True)}
    for label, arrays in (("y", ys), ("sample_weight", ws)):
        for n, a in zip(output_names, arrays or [], strict=False):
            if a is not None:
                counts[f"{label}[{n!r}]"] = len(a)
    if len(set(counts.values())) > 1:
        raise ShapeError(
            f"{call} got arrays with different numbers of samples: {counts}; every input, "
            "target and weight array needs one row per sample."
        )
    if not xs or len(xs[0]) == 0:
        raise ConfigError(f"{call} got x with no samples; pass one row per sample.")
    size = 32 if batch_size is None else batch_size
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        raise ConfigError(f"{call} got batch_size={batch_size!r}; expected a positive int.")
    return StructuredDataset(
        xs,
        ys,
        ws,
        int(size),
        shuffle=shuffle,
        seed=seed,
        dtype=dtype,
        max_steps=steps,
        n_outputs=len(output_names),
    )
