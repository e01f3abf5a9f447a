"""The ActivationFunction base: forward and backward into arrays the caller owns."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np
import numpy.typing as npt
from attrs import frozen

from loopkit.errors import ConfigError
from loopkit.typing import FloatArray, Shape

__all__ = ["ActivationFunction", "scratch"]


def scratch(out: FloatArray, *inputs: FloatArray) -> FloatArray:
    """Return ``out`` if it overlaps none of ``inputs``, else a new array like it."""
    if any(np.may_share_memory(out, a) for a in inputs):
        return np.empty_like(out)
    return out


def _as_float(x: npt.ArrayLike) -> FloatArray:
    a = np.asarray(x)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float32)


@frozen
class ActivationFunction:
    """Base of every activation: ``forward``/``backward`` write into arrays the caller owns.

    A subclass sets ``name`` (the Keras name ``get`` looks up) and implements ``forward``
    plus ``derivative`` (element-wise functions) or ``backward`` (others, like softmax).
    Calling the object returns a new array, as ``keras.activations.relu(x)`` does.
    """

    name: ClassVar[str] = "activation"
    same_shape: ClassVar[bool] = True
    """False for an activation whose output shape differs from its input's (glu)."""

    def output_shape(self, input_shape: Shape) -> Shape:
        """Return the shape of ``f(x)`` for ``x`` of ``input_shape``: the same here."""
        return tuple(input_shape)

    def require_same_shape(self, call: str) -> None:
        """Raise ConfigError if the output shape differs, naming the user's ``call``."""
        if not self.same_shape:
            raise ConfigError(
                f"{call} got activation={self.name!r}, which changes the shape of "
                "its input, so it cannot be a layer's built-in activation. Add it as "
                f"a layer of its own after this one: Activation({self.name!r})."
            )

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        """Write ``f(x)`` into ``out`` and return it.

        Args:
            x: Input of any shape, float32 or float64; left unchanged unless ``out`` is it.
            out: Array of the shape and dtype of ``x``; may be ``x`` itself.
        """
        raise NotImplementedError

    def forward_with_bias(
        self, z: FloatArray, bias: FloatArray, out: FloatArray
    ) -> FloatArray:
        """Add ``bias`` to ``z`` in place (last axis), then write ``f(z)`` to ``out``.

        Layers with a bias call this; an activation may fuse the two passes.
        """
        z += bias
        return self.forward(z, out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        """Write the element-wise ``f'(x)`` into ``out`` and return it.

        ``out`` aliases neither ``x`` nor ``y``; ``backward`` multiplies it by ``dy``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} is not element-wise: call backward(), not derivative()."
        )

    def backward(
        self, dy: FloatArray, x: FloatArray, y: FloatArray, out: FloatArray
    ) -> FloatArray:
        """Write dL/dx given dL/dy into ``out`` and return it.

        Args:
            dy: dL/dy, of the shape of ``x``.
            x: The input of the matching ``forward``.
            y: The output of that ``forward``, ``f(x)``.
            out: Array of the shape and dtype of ``dy``; may be ``dy`` itself.
        """
        d = self.derivative(x, y, scratch(out, dy, x, y))
        return np.multiply(d, dy, out=out)

    def backward_with_bias_grad(
        self,
        dy: FloatArray,
        x: FloatArray,
        y: FloatArray,
        out: FloatArray,
        bias_grad: FloatArray,
    ) -> FloatArray:
        """``backward``, and write its sum over every axis but the last to ``bias_grad``.

        Layers with a bias call this; an activation may fuse the two passes.
        """
        d = self.backward(dy, x, y, out)
        np.add.reduce(d.reshape(-1, d.shape[-1]), axis=0, out=bias_grad)
        return d

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments as JSON-ready values (``{}`` if none)."""
        return {a.name: getattr(self, a.name) for a in attrs.fields(type(self)) if a.init}

    def __call__(self, x: npt.ArrayLike, *args: Any, **kwargs: Any) -> FloatArray:
        """Return ``f(x)`` as a new array, as Keras's ``activations.relu(x)`` does.

        Further arguments replace constructor arguments for this call only
        (``activations.relu(x, max_value=6.0)``). Integer input becomes float32.
        """
        fn = self
        if args or kwargs:
            names = [a.name for a in attrs.fields(type(self)) if a.init]
            if len(args) > len(names):
                raise TypeError(
                    f"{self.name}() takes x and at most {len(names)} more arguments "
                    f"{names}; got {len(args)}. Pass them by keyword."
                )
            fn = attrs.evolve(self, **dict(zip(names, args, strict=False)), **kwargs)
        a = _as_float(x)
        return fn.forward(a, np.empty(fn.output_shape(a.shape), a.dtype))
