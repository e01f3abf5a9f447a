"""Merge layers: combine a list of tensors (add, multiply, concatenate, dot, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.base import Layer
from loopkit.typing import Array, FloatArray, Shape

__all__ = [
    "Add",
    "Average",
    "Concatenate",
    "Dot",
    "Maximum",
    "Minimum",
    "Multiply",
    "Subtract",
    "add",
    "average",
    "concatenate",
    "dot",
    "maximum",
    "minimum",
    "multiply",
    "subtract",
]


def _common_shape(shapes: list[Shape]) -> Shape | None:
    """The one shape ``shapes`` agree on, an axis of any length (None) fitting any size.

    Returns None when two known sizes differ (or the ranks do).
    """
    if len({len(s) for s in shapes}) != 1:
        return None
    merged = []
    for sizes in zip(*shapes, strict=True):
        known = {d for d in sizes if d is not None}
        if len(known) > 1:
            return None
        merged.append(known.pop() if known else None)
    return tuple(merged)  # type: ignore[arg-type]


@define(eq=False, slots=False)
class _Merge(Layer):
    """Base of the elementwise merges: inputs of one shape in, that shape out."""

    multi_input = True
    requires_list: ClassVar[bool] = True
    n_inputs: ClassVar[int | None] = None
    _xs: list[FloatArray] = field(init=False, factory=list, repr=False)

    def _check(self, shapes: Any) -> list[Shape]:
        if not isinstance(shapes, list) or len(shapes) < 2:
            raise ConfigError(
                f"{type(self).__name__} merges a list of at least 2 tensors; got "
                f"{shapes!r}. Call it as {type(self).__name__}()([a, b])."
            )
        if self.n_inputs is not None and len(shapes) != self.n_inputs:
            raise ConfigError(
                f"{type(self).__name__} takes exactly {self.n_inputs} tensors; got "
                f"{len(shapes)}."
            )
        return [tuple(s) for s in shapes]

    def compute_output_shape(self, input_shape: Any) -> Shape:
        shapes = self._check(input_shape)
        if len(set(shapes)) == 1:
            return shapes[0]
        merged = _common_shape(shapes)
        if merged is None:
            raise ShapeError(
                f"{type(self).__name__} needs inputs of one shape; got "
                f"{[(None, *s) for s in shapes]}. Reshape or project them (e.g. with "
                "Dense) to a common shape first."
            )
        return merged

    def build(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)

    def compute_mask(self, xs: Any, mask: Any = None) -> Array | None:
        """Keras's rule: a step is real where any input's is; None unless all have one.

        ``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum`` and ``Minimum``
        combine elementwise, so the output keeps the inputs' ``(batch, steps)``
        masks, or-ed, as in Keras.
        """
        if not isinstance(mask, list) or any(m is None for m in mask):
            return None
        out: Array = np.asarray(mask[0], bool)
        for m in mask[1:]:
            out = np.logical_or(out, np.asarray(m, bool))
        return out

    def forward(self, xs: Sequence[FloatArray], training: bool = False) -> FloatArray:  # type: ignore[override]
        y = self.buffer("y", xs[0].shape)
        self._combine(xs, y)
        self._xs = list(xs)
        return y

    def _combine(self, xs: Sequence[FloatArray], y: FloatArray) -> None:
        raise NotImplementedError

    def backward(self, dy: FloatArray) -> list[FloatArray]:  # type: ignore[override]
        return self._split(dy)

    def _split(self, dy: FloatArray) -> list[FloatArray]:
        raise NotImplementedError


@define(eq=False, slots=False)
class Add(_Merge):
    """Elementwise sum of the inputs (Keras ``Add``): ``y = x1 + x2 + ...``."""

    def _combine(self, xs: Sequence[FloatArray], y: FloatArray) -> None:
        np.add(xs[0], xs[1], out=y)
        for x in xs[2:]:
            y += x

    def _split(self, dy: FloatArray) -> list[FloatArray]:
        return [dy] * len(self._xs)


@define(eq=False, slots=False)
class Subtract(_Merge):
    """Difference of exactly two inputs (Keras ``Subtract``): ``y = x1 - x2``."""

    n_inputs: ClassVar[int | None] = 2

    def _combine(self, xs: Sequence[FloatArray], y: FloatArray) -> None:
        np.subtract(xs[0], xs[1], out=y)

    def _split(self, dy: FloatArray) -> list[FloatArray]:
        neg = self.buffer("neg", dy.shape)
        np.negative(dy, out=neg)
        return [dy, neg]


@define(eq=False, slots=False)
class Multiply(_Merge):
    """Elementwise product of the inputs (Keras ``Multiply``)."""

    def _combine(self, xs: Sequence[FloatArray], y: FloatArray) -> None:
        np.multiply(xs[0], xs[1], out=y)
        for x in xs[2:]:
            y *= x

    def _split(self, dy: FloatArray) -> list[FloatArray]:
        grads = []
        for i in range(len(self._xs)):
            g = self.buffer(f"d{i}", dy.shape)
            g[...] = dy
            for j, x in enumerate(self._xs):
                if j != i:
                    g *= x
            grads.append(g)
        return grads


@define(eq=False, slots=False)
class Average(_Merge):
    """Elementwise mean of the inputs (Keras ``Average``)."""

    def _combine(self, xs: Sequence[FloatArray], y: FloatArray) -> None:
        np.add(xs[0], xs[1], out=y)
        for x in xs[2:]:
            y += x
        y *= y.dtype.type(1.0 / len(xs))

    def _split(self, dy: FloatArray) -> list[FloatArray]:
        g = self.buffer("d", dy.shape)
        np.multiply(dy, dy.dtype.type(1.0 / len(self._xs)), out=g)
        return [g] * len(self._xs)


@define(eq=False, slots=False)
class _Extremum(_Merge):
    """Elementwise max or min; the gradient goes to the first input holding it."""

    def _pick(self, a: FloatArray, b: FloatArray, out: FloatArray) -> None:
        raise NotImplementedError

    def _combine(self, xs: Sequence[FloatArray], y: FloatArray) -> None:
        self._pick(xs[0], xs[1], y)
        for x in xs[2:]:
            self._pick(y, x, y)

    def _split(self, dy: FloatArray) -> list[FloatArray]:
        y = self._buffers["y"][: len(dy)]
        taken = np.zeros(dy.shape, bool)
        grads = []
        for i, x in enumerate(self._xs):
            hit = (x == y) & ~taken
            taken |= hit
            g = self.buffer(f"d{i}", dy.shape)
            np.multiply(dy, hit, out=g)
            grads.append(g)
        return grads


@define(eq=False, slots=False)
class Maximum(_Extremum):
    """Elementwise maximum of the inputs (Keras ``Maximum``)."""

    def _pick(self, a: FloatArray, b: FloatArray, out: FloatArray) -> None:
        np.maximum(a, b, out=out)


@define(eq=False, slots=False)
class Minimum(_Extremum):
    """Elementwise minimum of the inputs (Keras ``Minimum``)."""

    def _pick(self, a: FloatArray, b: FloatArray, out: FloatArray) -> None:
        np.minimum(a, b, out=out)


@define(eq=False, slots=False)
class Concatenate(_Merge):
    """Join the inputs along ``axis`` (Keras ``Concatenate``; -1 by default).

    Args:
        axis: The axis to join along; every other axis must match.
    """

    axis: int = -1

    def _axis(self, ndim: int) -> int:
        axis = self.axis if self.axis < 0 else self.axis - 1  # the batch axis is 0
        if not -ndim <= axis < ndim:
            raise ConfigError(
                f"Concatenate(axis={self.axis}): the inputs have {ndim + 1} axes "
                "(batch included); pick an axis other than the batch axis."
            )
        return axis % ndim

    def compute_output_shape(self, input_shape: Any) -> Shape:
        shapes = self._check(input_shape)
        if len({len(s) for s in shapes}) != 1 or self.axis == 0:
            raise ShapeError(
                f"Concatenate(axis={self.axis}) got inputs of shapes "
                f"{[(None, *s) for s in shapes]}; they need the same number of axes and "
                "a non-batch axis."
            )
        axis = self._axis(len(shapes[0]))
        rest = {s[:axis] + s[axis + 1 :] for s in shapes}
        if len(rest) != 1:
            raise ShapeError(
                f"Concatenate(axis={self.axis}) got inputs of shapes "
                f"{[(None, *s) for s in shapes]}; all axes but the concatenation axis "
                "must match."
            )
        out: list[int | None] = list(shapes[0])
        sizes = [s[axis] for s in shapes]
        out[axis] = None if None in sizes else sum(sizes)  # any length: so is the sum
        return tuple(out)  # type: ignore[arg-type]

    def forward(self, xs: Sequence[FloatArray], training: bool = False) -> FloatArray:  # type: ignore[override]
        axis = self._axis(xs[0].ndim - 1) + 1
        shape = list(xs[0].shape)
        shape[axis] = sum(x.shape[axis] for x in xs)
        y = self.buffer("y", tuple(shape))
        np.concatenate(xs, axis=axis, out=y)
        self._sizes = [x.shape[axis] for x in xs]
        self._xs = list(xs)
        return y

    def _split(self, dy: FloatArray) -> list[FloatArray]:
        axis = self._axis(dy.ndim - 1) + 1
        bounds = np.cumsum(self._sizes)[:-1]
        return list(np.split(dy, bounds, axis=axis))

    def compute_mask(self, xs: Any, mask: Any = None) -> Array | None:
        """Keras's rule: join the masks as the inputs are joined.

        Along the steps (``axis=1`` of sequences) the masks are joined end to end;
        along the features a step is real where any input's is. An input without a
        mask counts as all real; None when no input has one.
        """
        if not isinstance(mask, list) or all(m is None for m in mask):
            return None
        full = []
        for x, m in zip(xs, mask, strict=True):
            x = np.asarray(x)
            m = np.ones(x.shape[:2], bool) if m is None else np.asarray(m, bool)
            expanded = m.reshape(m.shape + (1,) * (x.ndim - m.ndim))
            full.append(np.broadcast_to(expanded, x.shape))
        axis = self._axis(xs[0].ndim - 1) + 1
        joined: Array = np.any(
            np.concatenate(full, axis=axis), axis=tuple(range(2, xs[0].ndim))
        )
        return joined


@define(eq=False, slots=False)
class Dot(_Merge):
    """Dot product of two inputs along ``axes`` (Keras ``Dot``), per sample.

    Args:
        axes: The axis (or one per input) to contract, counting the batch axis.
        normalize: L2-normalize along ``axes`` first (cosine proximity).
    """

    axes: Any = field(default=-1)
    normalize: bool = False
    n_inputs: ClassVar[int | None] = 2

    def compute_mask(self, xs: Any, mask: Any = None) -> None:
        """Return None: the product has no steps left to mask (Keras's rule)."""
        return None

    def _pair(self, shapes: list[Shape]) -> tuple[int, int]:
        axes = self.axes if isinstance(self.axes, (list, tuple)) else (self.axes, self.axes)
        out = []
        for a, s in zip(axes, shapes, strict=True):
            a = int(a)
            a = a % (len(s) + 1) if a < 0 else a
            if a == 0 or a > len(s):
                raise ConfigError(
                    f"Dot(axes={self.axes!r}) does not fit inputs of shapes "
                    f"{[(None, *t) for t in shapes]}; pick non-batch axes."
                )
            out.append(a - 1)
        return out[0], out[1]

    def compute_output_shape(self, input_shape: Any) -> Shape:
        shapes = self._check(input_shape)
        if any(len(s) > 2 for s in shapes) or len(shapes[0]) != len(shapes[1]):
            raise ShapeError(
                f"Dot got inputs of shapes {[(None, *s) for s in shapes]}; loopkit's Dot "
                "takes two inputs of rank 2 or 3 (batch included) of the same rank."
            )
        a, b = self._pair(shapes)
        if shapes[0][a] != shapes[1][b]:
            raise ShapeError(
                f"Dot(axes={self.axes!r}) contracts axes of sizes {shapes[0][a]} and "
                f"{shapes[1][b]} of inputs {[(None, *s) for s in shapes]}; they must match."
            )
        ra = [d for i, d in enumerate(shapes[0]) if i != a]
        rb = [d for i, d in enumerate(shapes[1]) if i != b]
        return tuple(ra + rb) or (1,)

    def build(self, input_shape: Any) -> None:
        self.compute_output_shape(input_shape)
        if self.normalize:
            raise ConfigError(
                "Dot(normalize=True) is not supported yet; normalize the inputs with a "
                "LayerNormalization or compute cosine similarity in a custom layer."
            )

    def forward(self, xs: Sequence[FloatArray], training: bool = False) -> FloatArray:  # type: ignore[override]
        x1, x2 = xs
        a, b = self._pair([tuple(x1.shape[1:]), tuple(x2.shape[1:])])
        self._xs = [x1, x2]
        if x1.ndim == 2:
            y = self.buffer("y", (len(x1), 1))
            np.einsum("bi,bi->b", x1, x2, out=y[:, 0])
            return y
        s1 = "bij" if a == 1 else "bji"
        s2 = "bik" if b == 1 else "bki"
        y = np.einsum(f"{s1},{s2}->bjk", x1, x2)
        out = self.buffer("y", y.shape)
        out[...] = y
        self._subs = (s1, s2)
        return out

    def _split(self, dy: FloatArray) -> list[FloatArray]:
        x1, x2 = self._xs
        if x1.ndim == 2:
            d1 = self.buffer("d1", x1.shape)
            d2 = self.buffer("d2", x2.shape)
            np.multiply(dy, x2, out=d1)
            np.multiply(dy, x1, out=d2)
            return [d1, d2]
        s1, s2 = self._subs
        return [np.einsum(f"bjk,{s2}->{s1}", dy, x2), np.einsum(f"bjk,{s1}->{s2}", dy, x1)]


def _functional(cls: type[_Merge], doc: str) -> Any:
    def merge(inputs: Sequence[Any], **kwargs: Any) -> Any:
        return cls(**kwargs)(list(inputs))

    merge.__name__ = cls.__name__.lower()
    merge.__doc__ = doc
    return merge


add = _functional(Add, "Return ``Add(**kwargs)(inputs)``, Keras's functional form.")
subtract = _functional(Subtract, "Return ``Subtract(**kwargs)(inputs)``.")
multiply = _functional(Multiply, "Return ``Multiply(**kwargs)(inputs)``.")
average = _functional(Average, "Return ``Average(**kwargs)(inputs)``.")
maximum = _functional(Maximum, "Return ``Maximum(**kwargs)(inputs)``.")
minimum = _functional(Minimum, "Return ``Minimum(**kwargs)(inputs)``.")
dot = _functional(Dot, "Return ``Dot(axes, **kwargs)(inputs)``.")
concatenate = _functional(Concatenate, "Return ``Concatenate(axis, **kwargs)(inputs)``.")
