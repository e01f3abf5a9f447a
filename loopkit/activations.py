"""Activation functions: forward and backward into caller-owned arrays; lookup by name."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import numpy as np
import numpy.typing as npt
from attrs import field, frozen

from loopkit.errors import ConfigError
from loopkit.typing import FloatArray
from loopkit.validators import non_negative, one_of, suggest

__all__ = [
    "ELU",
    "GELU",
    "SELU",
    "ActivationFunction",
    "Exponential",
    "HardSigmoid",
    "LeakyReLU",
    "Linear",
    "Mish",
    "ReLU",
    "ReLU6",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Swish",
    "Tanh",
    "elu",
    "exponential",
    "gelu",
    "get",
    "hard_sigmoid",
    "leaky_relu",
    "linear",
    "mish",
    "relu",
    "relu6",
    "selu",
    "serialize",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "swish",
    "tanh",
]


def _scratch(out: FloatArray, *inputs: FloatArray) -> FloatArray:
    """Return ``out`` if it overlaps none of ``inputs``, else a new array like it."""
    if any(np.may_share_memory(out, a) for a in inputs):
        return np.empty_like(out)
    return out


def _as_float(x: npt.ArrayLike) -> FloatArray:
    a = np.asarray(x)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float32)


def _integer(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{type(instance).__name__} got {attribute.name}={value!r} of type "
            f"{type(value).__name__}; expected an int such as -1."
        )


@frozen
class ActivationFunction:
    """Base of every activation: ``forward``/``backward`` write into arrays the caller owns.

    A subclass sets ``name`` (the Keras name ``get`` looks up) and implements ``forward``
    plus ``derivative`` (element-wise functions) or ``backward`` (others, like softmax).
    Calling the object returns a new array, as ``keras.activations.relu(x)`` does.
    """

    name: ClassVar[str] = "activation"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        """Write ``f(x)`` into ``out`` and return it.

        Args:
            x: Input of any shape, float32 or float64; left unchanged unless ``out`` is it.
            out: Array of the shape and dtype of ``x``; may be ``x`` itself.
        """
        raise NotImplementedError

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
        d = self.derivative(x, y, _scratch(out, dy, x, y))
        return np.multiply(d, dy, out=out)

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
        return fn.forward(a, np.empty_like(a))


@frozen
class ReLU(ActivationFunction):
    """Rectified linear unit, ``max(x, 0)`` with the defaults.

    In general ``f(x) = min(x, max_value)`` for ``x > threshold`` and
    ``negative_slope * (x - threshold)`` otherwise, as Keras documents it. At a kink the
    derivative is the flatter side's (0 at ``x = 0`` for the plain ReLU).

    Args:
        negative_slope: Slope below the threshold, >= 0.
        max_value: Largest output, >= 0; None for no limit.
        threshold: Inputs at or below it get the ``negative_slope`` piece, >= 0.
    """

    name: ClassVar[str] = "relu"
    negative_slope: float = field(default=0.0, validator=non_negative)
    max_value: float | None = field(
        default=None, validator=attrs.validators.optional(non_negative)
    )
    threshold: float = field(default=0.0, validator=non_negative)

    @property
    def _plain(self) -> bool:
        return not self.negative_slope and self.max_value is None and not self.threshold

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        if self._plain:
            return np.maximum(x, 0.0, out=out)
        above = x > self.threshold
        high = x if self.max_value is None else np.minimum(x, self.max_value)
        low = (x - self.threshold) * self.negative_slope
        np.copyto(out, np.where(above, high, low))
        return out

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        if self._plain:
            return np.greater(x, 0.0, out=out)
        high: Any = 1.0 if self.max_value is None else x < self.max_value
        np.copyto(out, np.where(x > self.threshold, high, self.negative_slope))
        return out


@frozen
class LeakyReLU(ActivationFunction):
    """``x`` for ``x > 0``, ``negative_slope * x`` otherwise.

    Args:
        negative_slope: Slope for negative inputs, >= 0 (Keras 3 default 0.2).
    """

    name: ClassVar[str] = "leaky_relu"
    negative_slope: float = field(default=0.2, validator=non_negative)

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        negative = x < 0.0
        if out is not x:
            np.copyto(out, x)
        return np.multiply(out, self.negative_slope, out=out, where=negative)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.greater(x, 0.0, out=out)
        out *= 1.0 - self.negative_slope
        out += self.negative_slope
        return out


@frozen
class ELU(ActivationFunction):
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise.

    Args:
        alpha: Scale of the negative part, >= 0.
    """

    name: ClassVar[str] = "elu"
    alpha: float = field(default=1.0, validator=non_negative)

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        return _elu(x, out, self.alpha, 1.0)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        return _elu_derivative(x, y, out, self.alpha, 1.0)


def _elu(x: FloatArray, out: FloatArray, alpha: float, scale: float) -> FloatArray:
    negative = x <= 0.0
    if out is not x:
        np.copyto(out, x)
    np.expm1(out, out=out, where=negative)
    np.multiply(out, alpha, out=out, where=negative)
    if scale != 1.0:
        out *= scale
    return out


def _elu_derivative(
    x: FloatArray, y: FloatArray, out: FloatArray, alpha: float, scale: float
) -> FloatArray:
    np.add(y, scale * alpha, out=out)  # d/dx scale*alpha*(e^x - 1) = y + scale*alpha
    np.copyto(out, scale, where=x > 0.0)
    return out


@frozen
class SELU(ActivationFunction):
    """Scaled ELU, ``scale * elu(x, alpha)`` with Klambauer et al. (2017)'s constants."""

    name: ClassVar[str] = "selu"
    alpha: ClassVar[float] = 1.6732632423543772848170429916717
    scale: ClassVar[float] = 1.0507009873554804934193349852946

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        return _elu(x, out, self.alpha, self.scale)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        return _elu_derivative(x, y, out, self.alpha, self.scale)


def _sigmoid(x: FloatArray, out: FloatArray) -> FloatArray:
    np.negative(x, out=out)
    np.logaddexp(0.0, out, out=out)
    np.negative(out, out=out)
    return np.exp(out, out=out)


@frozen
class Sigmoid(ActivationFunction):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, computed as ``exp(-softplus(-x))``.

    That form never overflows and keeps full relative precision in both tails.
    """

    name: ClassVar[str] = "sigmoid"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        return _sigmoid(x, out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.subtract(1.0, y, out=out)
        out *= y
        return out


@frozen
class Tanh(ActivationFunction):
    """Hyperbolic tangent."""

    name: ClassVar[str] = "tanh"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        return np.tanh(x, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.square(y, out=out)
        return np.subtract(1.0, out, out=out)


@frozen
class Softmax(ActivationFunction):
    """``exp(x) / sum(exp(x))`` along ``axis``, shifted by the maximum against overflow.

    Args:
        axis: The axis that sums to 1.
    """

    name: ClassVar[str] = "softmax"
    axis: int = field(default=-1, validator=_integer)

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        np.subtract(x, np.max(x, axis=self.axis, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= np.sum(out, axis=self.axis, keepdims=True)
        return out

    def backward(
        self, dy: FloatArray, x: FloatArray, y: FloatArray, out: FloatArray
    ) -> FloatArray:
        # dx = y * (dy - sum(dy * y)); einsum forms the row sums without a full product.
        rows: FloatArray = np.einsum(
            "...i,...i->...", np.moveaxis(dy, self.axis, -1), np.moveaxis(y, self.axis, -1)
        )
        d = np.subtract(dy, np.expand_dims(rows, self.axis), out=_scratch(out, y))
        return np.multiply(d, y, out=out)


# erfc(z) = t * exp(P(s) - z**2) for z >= 0, with t = 2 / (2 + z) and s = 2t - 1 in (-1, 1]
# (the form of Numerical Recipes' erfcc). Coefficients of P, lowest power first: the
# Chebyshev interpolant of P of degree 24 (float64) or 12 (float32), fitted to
# scipy.special.erfcx once, offline, and converted to powers of s (their absolute sum is
# 1.5, so Horner's rule stays accurate). Relative error of erfc in float64: 3e-15 for
# z < 5, 6e-14 up to underflow (z near 26), where rounding z**2 dominates.
_ERFC_P64 = (
    -0.6717940840566916, 0.6726432239776668, 0.04734330684175884, -0.046895610232222426,
    -0.009872689358318486, 0.008824938589380897, 0.0017589333845989502,
    -0.0023458129421678733, -0.00014624496694209323, 0.0006736820362579056,
    -9.374719175873905e-05, -0.00017431703325583144, 7.145031912553427e-05,
    3.1783154801829216e-05, -3.031984623021623e-05, 7.413254510550416e-08,
    8.800579112896164e-06, -2.8864387569132167e-06, -1.5617910963865544e-06,
    1.2271775442651246e-06, 6.447157867654405e-08, -2.6633345749651237e-07,
    3.536868034298662e-08, 2.5653986401741918e-08, -5.496140373946467e-09,
)  # fmt: skip
_ERFC_P32 = (
    -0.6717940840566925, 0.6726431522588268, 0.047343341093509676, -0.04689359030469195,
    -0.009873662468924037, 0.008808544323083735, 0.001767003254632504,
    -0.0022881236561142766, -0.00017580547621103842, 0.0005731254983594365,
    -3.825410188856467e-05, -8.705098812010671e-05, 1.54018161920181e-05,
)  # fmt: skip


def _normal_cdf(x: FloatArray, out: FloatArray) -> FloatArray:
    """Write Phi(x) = erfc(-x / sqrt(2)) / 2 into ``out``, which must not alias ``x``."""
    coeffs = _ERFC_P64 if x.dtype.itemsize > 4 else _ERFC_P32
    s = np.abs(x)
    s *= math.sqrt(0.5)  # z = |x| / sqrt(2)
    zz = np.square(s)
    s += 2.0
    np.divide(4.0, s, out=s)
    s -= 1.0
    out.fill(coeffs[-1])
    for c in coeffs[-2::-1]:
        out *= s
        out += c
    out -= zz
    np.exp(out, out=out)
    s += 1.0
    s *= 0.5  # t = (s + 1) / 2
    out *= s  # erfc(|x| / sqrt(2))
    out *= 0.5
    return np.subtract(1.0, out, out=out, where=x > 0.0)


@frozen
class GELU(ActivationFunction):
    """Gaussian error linear unit (Hendrycks and Gimpel, 2016), ``x * Phi(x)``.

    The exact form evaluates the normal CDF ``Phi`` through its own vectorized erfc
    (NumPy has none), so float64 gradient checks hold tightly: relative error below
    5e-14 for ``|x| <= 10`` in float64. In float32 the error is within about one float32
    rounding of ``max(1, |x|)``; deep in the negative tail (``Phi`` below 1e-6) the
    relative error grows to 1e-5, from rounding ``x**2`` in float32.
    ``approximate=True`` uses ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))``.

    Args:
        approximate: Use the tanh approximation instead of the exact erf form.
    """

    name: ClassVar[str] = "gelu"
    approximate: bool = field(default=False, validator=one_of(False, True))

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        phi = _scratch(out, x)
        if self.approximate:
            np.square(x, out=phi)
            phi *= 0.044715
            phi += 1.0
            phi *= x
            phi *= math.sqrt(2.0 / math.pi)
            np.tanh(phi, out=phi)
            phi += 1.0
            phi *= 0.5
        else:
            _normal_cdf(x, phi)
        return np.multiply(x, phi, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        k = math.sqrt(2.0 / math.pi)
        if self.approximate:  # 0.5 (1 + T) + 0.5 x (1 - T^2) k (1 + 3a x^2)
            np.square(x, out=out)
            inner = np.multiply(out, 3.0 * 0.044715)
            inner += 1.0
            out *= 0.044715
            out += 1.0
            out *= x
            out *= k
            np.tanh(out, out=out)
            inner *= 0.5 * k
            inner *= x
            sech2 = np.square(out)
            inner *= np.subtract(1.0, sech2, out=sech2)
            out += 1.0
            out *= 0.5
            out += inner
            return out
        density = np.square(x)  # Phi(x) + x phi(x)
        density *= -0.5
        np.exp(density, out=density)
        density *= x
        density *= 0.5 * k  # 1 / sqrt(2 pi)
        _normal_cdf(x, out)
        out += density
        return out


@frozen
class Softplus(ActivationFunction):
    """``log(1 + exp(x))``, computed without overflow as ``logaddexp(0, x)``."""

    name: ClassVar[str] = "softplus"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        return np.logaddexp(0.0, x, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.subtract(x, y, out=out)  # sigmoid(x) = exp(x - softplus(x)), exponent <= 0
        return np.exp(out, out=out)


@frozen
class Swish(ActivationFunction):
    """Swish / SiLU, ``x * sigmoid(x)`` (Ramachandran et al., 2017); ``"silu"`` too."""

    name: ClassVar[str] = "swish"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        s = _sigmoid(x, _scratch(out, x))
        return np.multiply(x, s, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        _sigmoid(x, out)  # s + x s (1 - s) = s (1 + x (1 - s))
        factor = np.subtract(1.0, out)
        factor *= x
        factor += 1.0
        out *= factor
        return out


@frozen
class Mish(ActivationFunction):
    """``x * tanh(softplus(x))`` (Misra, 2019)."""

    name: ClassVar[str] = "mish"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        t = np.logaddexp(0.0, x, out=_scratch(out, x))
        np.tanh(t, out=t)
        return np.multiply(x, t, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.logaddexp(0.0, x, out=out)  # T + x sigmoid(x) (1 - T^2), T = tanh(softplus(x))
        s = np.subtract(x, out)
        np.exp(s, out=s)  # sigmoid(x)
        np.tanh(out, out=out)
        s *= x
        sech2 = np.square(out)
        s *= np.subtract(1.0, sech2, out=sech2)
        out += s
        return out


@frozen
class Linear(ActivationFunction):
    """The identity, ``x``: what ``activation=None`` means."""

    name: ClassVar[str] = "linear"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        if out is not x:
            np.copyto(out, x)
        return out

    def backward(
        self, dy: FloatArray, x: FloatArray, y: FloatArray, out: FloatArray
    ) -> FloatArray:
        return self.forward(dy, out)


@frozen
class Exponential(ActivationFunction):
    """``exp(x)``."""

    name: ClassVar[str] = "exponential"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        return np.exp(x, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.copyto(out, y)
        return out


@frozen
class HardSigmoid(ActivationFunction):
    """Keras 3's piecewise-linear sigmoid, ``relu6(x + 3) / 6``: 0 below -3, 1 above 3."""

    name: ClassVar[str] = "hard_sigmoid"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        np.multiply(x, 1.0 / 6.0, out=out)
        out += 0.5
        return np.clip(out, 0.0, 1.0, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.abs(x, out=out)
        np.less(out, 3.0, out=out)
        out *= 1.0 / 6.0
        return out


@frozen
class ReLU6(ActivationFunction):
    """``min(max(x, 0), 6)``."""

    name: ClassVar[str] = "relu6"

    def forward(self, x: FloatArray, out: FloatArray) -> FloatArray:
        return np.clip(x, 0.0, 6.0, out=out)

    def derivative(self, x: FloatArray, y: FloatArray, out: FloatArray) -> FloatArray:
        np.subtract(x, 3.0, out=out)  # 1 on (0, 6): |x - 3| < 3
        np.abs(out, out=out)
        return np.less(out, 3.0, out=out)


_CLASSES: tuple[type[ActivationFunction], ...] = (
    ELU, Exponential, GELU, HardSigmoid, LeakyReLU, Linear, Mish, ReLU, ReLU6, SELU,
    Sigmoid, Softmax, Softplus, Swish, Tanh,
)  # fmt: skip
_BY_NAME: dict[str, type[ActivationFunction]] = {c.name: c for c in _CLASSES}
_BY_NAME["silu"] = Swish
_BY_CLASS_NAME = {c.__name__: c for c in _CLASSES}


def _lookup(name: str, call: str) -> type[ActivationFunction]:
    cls = _BY_NAME.get(name) or _BY_CLASS_NAME.get(name)
    if cls is None:
        raise ConfigError(
            f"{call}: unknown activation {name!r}; expected one of {sorted(_BY_NAME)}. "
            "Pass one of those names or an ActivationFunction."
            f"{suggest(name.lower(), _BY_NAME)}"
        )
    return cls


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
    if identifier is None or isinstance(identifier, ActivationFunction):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier, f"activations.get({identifier!r})")()
    if (
        isinstance(identifier, Mapping)
        and isinstance(identifier.get("class_name"), str)
        and isinstance(identifier.get("config") or {}, Mapping)
    ):
        call = f"activations.get({dict(identifier)!r})"
        cls = _lookup(identifier["class_name"], call)
        config = identifier.get("config") or {}
        known = [a.name for a in attrs.fields(cls) if a.init]
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise ConfigError(
                f"{call}: {cls.__name__} takes no argument {unknown[0]!r}; it takes "
                f"{known}. Fix the config.{suggest(unknown[0], known)}"
            )
        return cls(**config)
    raise TypeError(
        f"activations.get() got {identifier!r} of type {type(identifier).__name__}; "
        "expected None, an activation name such as 'relu', an ActivationFunction, or a "
        "dict {'class_name': 'ReLU', 'config': {...}} from activations.serialize()."
    )


def serialize(activation: ActivationFunction | None) -> str | dict[str, Any] | None:
    """Return a JSON-ready identifier that ``get`` turns back into ``activation``.

    That is the bare name (``"relu"``) when ``activation`` is what the name gives, else
    ``{"class_name": "ReLU", "config": {...}}``; None stays None.

    Raises:
        TypeError: ``activation`` is not an ActivationFunction.
    """
    if activation is None:
        return None
    if not isinstance(activation, ActivationFunction):
        raise TypeError(
            f"activations.serialize() got {activation!r} of type "
            f"{type(activation).__name__}; expected an ActivationFunction such as "
            "activations.get('relu')."
        )
    cls = _BY_NAME.get(activation.name)
    if cls is type(activation) and activation == cls():
        return activation.name
    return {"class_name": type(activation).__name__, "config": activation.get_config()}


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
