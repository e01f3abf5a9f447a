"""Keras 3's eight update rules side by side, each on one block of the flat buffers."""

from __future__ import annotations

import math
from typing import Any, TypedDict

import numpy as np
from attrs import define, field
from attrs.validators import optional

from loopkit.errors import ConfigError
from loopkit.optimizers import _kernels as kernels
from loopkit.optimizers.base import (
    Block,
    Optimizer,
    as_learning_rate,
    check_learning_rate,
)
from loopkit.schedules import LearningRateSchedule
from loopkit.validators import (
    boolean,
    in_closed_range,
    in_half_open_range,
    non_negative,
)

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Nadam",
    "RMSprop",
    "update_moments",
]

_unit = in_closed_range(0.0, 1.0)
_beta = in_half_open_range(0.0, 1.0)  # beta = 1 would divide by zero in bias correction
_optional_non_negative: Any = optional(non_negative)


def _beta_field(default: float) -> Any:
    return field(default=default, validator=_beta)


def _epsilon_field() -> Any:
    return field(default=1e-07, validator=non_negative)


# --- momentum and adaptive rates without bias correction ------------------------------


@define(eq=False)
class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, as in Keras 3.

    ``m = momentum * m - lr * g``; then ``w += m``, or with Nesterov
    ``w += momentum * m - lr * g``. Without momentum, ``w -= lr * g``.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        momentum: In [0, 1]; 0 is plain gradient descent (no slot is allocated).
        nesterov: Use Nesterov momentum.
    """

    _learning_rate: float | LearningRateSchedule = field(
        default=0.01,
        converter=as_learning_rate,
        validator=check_learning_rate,
        alias="learning_rate",
    )
    momentum: float = field(default=0.0, validator=_unit)
    nesterov: bool = field(default=False, validator=boolean)
    name: str | None = field(default="SGD", kw_only=True)

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum",) if self.momentum != 0 else ()

    def update_block(self, b: Block, c: float) -> None:
        p, s = b.p, b.s
        np.multiply(b.g, c, out=s)  # lr * g
        if not b.slots:
            p -= s
            return
        m, momentum = b.slots["momentum"], self.momentum
        m *= momentum
        m -= s
        if self.nesterov:
            p -= s
            np.multiply(m, momentum, out=s)
            p += s
        else:
            p += m


@define(eq=False)
class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012), as in Keras 3: divide by a moving RMS of the gradients.

    ``v = rho v + (1 - rho) g^2``; ``step = lr g / sqrt(v + eps)`` (centered:
    ``sqrt(v - a^2 + eps)`` with ``a = rho a + (1 - rho) g``); with momentum
    ``m = momentum m + step; w -= m``, else ``w -= step``.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        rho: Discount of the moving averages, in [0, 1].
        momentum: In [0, 1]; 0 allocates no momentum slot.
        epsilon: Added under the square root.
        centered: Normalize by the estimated variance instead of the second moment.
    """

    rho: float = field(default=0.9, validator=_unit)
    momentum: float = field(default=0.0, validator=_unit)
    epsilon: float = _epsilon_field()
    centered: bool = field(default=False, validator=boolean)

    def slot_names(self) -> tuple[str, ...]:
        names = ("velocity",) + (("momentum",) if self.momentum > 0 else ())
        return names + (("average_gradient",) if self.centered else ())

    def update_block(self, b: Block, c: float) -> None:
        g, s, rho, v = b.g, b.s, self.rho, b.slots["velocity"]
        v *= rho
        np.square(g, out=s)
        s *= 1 - rho
        v += s
        if self.centered:
            a = b.slots["average_gradient"]
            a *= rho
            np.multiply(g, 1 - rho, out=s)
            a += s
            np.square(a, out=s)
            np.subtract(v, s, out=s)
            s += self.epsilon
        else:
            np.add(v, self.epsilon, out=s)
        np.sqrt(s, out=s)
        np.divide(g, s, out=s)
        s *= c  # lr
        if self.momentum > 0:
            m = b.slots["momentum"]
            m *= self.momentum
            m += s
            np.subtract(b.p, m, out=b.p)
        else:
            np.subtract(b.p, s, out=b.p)


@define(eq=False)
class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), as in Keras 3.

    ``acc += g^2``; ``w -= lr g / sqrt(acc + eps)``.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        initial_accumulator_value: Starting value of ``acc``, >= 0.
        epsilon: Added under the square root.
    """

    initial_accumulator_value: float = field(default=0.1, validator=non_negative)
    epsilon: float = _epsilon_field()

    def slot_names(self) -> tuple[str, ...]:
        return ("accumulator",)

    def slot_initial_value(self, name: str) -> float:
        return float(self.initial_accumulator_value)

    def update_block(self, b: Block, c: float) -> None:
        acc, s = b.slots["accumulator"], b.s
        np.square(b.g, out=s)
        acc += s
        np.add(acc, self.epsilon, out=s)
        np.sqrt(s, out=s)
        np.divide(b.g, s, out=s)
        s *= c  # lr
        np.subtract(b.p, s, out=b.p)


@define(eq=False)
class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012), as in Keras 3, scaled by ``learning_rate``.

    ``Eg = rho Eg + (1 - rho) g^2``; ``d = -sqrt(Ed + eps) g / sqrt(Eg + eps)``;
    ``Ed = rho Ed + (1 - rho) d^2``; ``w += lr d``.

    Args:
        learning_rate: Float or schedule; 1.0 is the paper's form. See ``Optimizer``.
        rho: Decay of the moving averages, in [0, 1].
        epsilon: Added under both square roots.
    """

    rho: float = field(default=0.95, validator=_unit)
    epsilon: float = _epsilon_field()

    def slot_names(self) -> tuple[str, ...]:
        return ("accumulated_grad", "accumulated_delta_var")

    def update_block(self, b: Block, c: float) -> None:
        s, s2, rho, eps = b.s, b.s2, self.rho, self.epsilon
        eg, ed = b.slots["accumulated_grad"], b.slots["accumulated_delta_var"]
        eg *= rho
        np.square(b.g, out=s)
        s *= 1 - rho
        eg += s
        np.add(ed, eps, out=s)
        np.sqrt(s, out=s)
        s *= b.g
        np.add(eg, eps, out=s2)
        np.sqrt(s2, out=s2)
        s /= s2  # s = -d
        ed *= rho
        np.square(s, out=s2)
        s2 *= 1 - rho
        ed += s2
        s *= c  # lr
        np.subtract(b.p, s, out=b.p)


# --- the Adam family: bias-corrected moment estimates ----------------------------------


def update_moments(b: Block, one_minus_beta_1: float, one_minus_beta_2: float) -> None:
    """Update Adam's moments of block ``b`` in place, as NumPy ufuncs (scratch ``b.s``).

    ``m += (g - m)(1 - beta_1)``, ``v += (g^2 - v)(1 - beta_2)``, Keras's form.
    """
    s, m, v = b.s, b.slots["momentum"], b.slots["velocity"]
    np.subtract(b.g, m, out=s)
    s *= one_minus_beta_1
    m += s
    np.square(b.g, out=s)
    s -= v
    s *= one_minus_beta_2
    v += s


class AdamStep(TypedDict):
    """The scalars of one Adam step."""

    alpha: float
    """``lr sqrt(1 - beta_2^t) / (1 - beta_1^t)``: the bias-corrected step size."""
    one_minus_beta_1: float
    one_minus_beta_2: float


@define(eq=False)
class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), as in Keras 3, with the bias correction in the step.

    ``m += (g - m)(1 - beta_1)``; ``v += (g^2 - v)(1 - beta_2)``; ``w -= alpha m /
    (sqrt(v) + eps)`` with ``alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)``. AMSGrad
    (Reddi et al., 2018) uses ``v_hat = max(v_hat, v)`` in place of ``v``. One
    compiled pass per block (``_kernels``), bitwise equal to the NumPy equations.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        beta_1: Decay of the first-moment average, in [0, 1).
        beta_2: Decay of the second-moment average, in [0, 1).
        epsilon: Added to ``sqrt(v)`` ("epsilon hat" of the paper).
        amsgrad: Use the AMSGrad variant.
    """

    beta_1: float = _beta_field(0.9)
    beta_2: float = _beta_field(0.999)
    epsilon: float = _epsilon_field()
    amsgrad: bool = field(default=False, validator=boolean)

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())

    def coefficients(self, learning_rate: float, step: int) -> AdamStep:
        b1, b2 = self.beta_1, self.beta_2
        alpha = learning_rate * math.sqrt(1 - b2**step) / (1 - b1**step)
        scalars: AdamStep = {
            "alpha": alpha,
            "one_minus_beta_1": 1 - b1,
            "one_minus_beta_2": 1 - b2,
        }
        return scalars

    def update_block(self, b: Block, c: AdamStep) -> None:
        p, g, slots, _, _ = b
        t = p.dtype.type  # scalars in the buffers' dtype, as NumPy would use them
        m, v, eps = slots["momentum"], slots["velocity"], t(self.epsilon)
        c1, c2, alpha = t(c["one_minus_beta_1"]), t(c["one_minus_beta_2"]), t(c["alpha"])
        if self.amsgrad:
            kernels.adam_amsgrad(p, g, m, v, slots["velocity_hat"], c1, c2, alpha, eps)
        else:
            kernels.adam(p, g, m, v, c1, c2, alpha, eps)


@define(eq=False)
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as in Keras 3.

    The decay ``w -= w * weight_decay * lr`` comes before the Adam step.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        weight_decay: Decay factor (required; 0 gives plain Adam); second
            positionally, as in Keras.
        beta_1: See ``Adam``.
        beta_2: See ``Adam``.
        epsilon: See ``Adam``.
        amsgrad: See ``Adam``.
    """

    # Redeclared so that weight_decay comes second positionally, as in Keras: attrs
    # puts a subclass's own fields after the inherited ones.
    weight_decay: float | None = field(default=0.004, validator=_optional_non_negative)
    beta_1: float = _beta_field(0.9)
    beta_2: float = _beta_field(0.999)
    epsilon: float = _epsilon_field()
    amsgrad: bool = field(default=False, validator=boolean)

    def __attrs_post_init__(self) -> None:
        if self.weight_decay is None:
            raise ConfigError(
                "AdamW(weight_decay=None): AdamW needs a weight decay factor. Pass a "
                "number such as weight_decay=0.004 (the default), or use Adam."
            )
        super().__attrs_post_init__()


class AdamaxStep(TypedDict):
    """The scalars of one Adamax step."""

    step_size: float
    """``lr / (1 - beta_1^t)``."""
    one_minus_beta_1: float


@define(eq=False)
class Adamax(Optimizer):
    """Adamax, Adam with the infinity norm (Kingma & Ba, 2015, sec. 7.1), as in Keras 3.

    ``m += (g - m)(1 - beta_1)``; ``u = max(beta_2 u, |g|)``;
    ``w -= lr m / ((1 - beta_1^t)(u + eps))``.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        beta_1: Decay of the first-moment average, in [0, 1).
        beta_2: Decay of the infinity norm, in [0, 1).
        epsilon: Added to ``u``.
    """

    beta_1: float = _beta_field(0.9)
    beta_2: float = _beta_field(0.999)
    epsilon: float = _epsilon_field()

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "norm")

    def coefficients(self, learning_rate: float, step: int) -> AdamaxStep:
        scalars: AdamaxStep = {
            "step_size": learning_rate / (1 - self.beta_1**step),
            "one_minus_beta_1": 1 - self.beta_1,
        }
        return scalars

    def update_block(self, b: Block, c: AdamaxStep) -> None:
        s, m, u = b.s, b.slots["momentum"], b.slots["norm"]
        np.subtract(b.g, m, out=s)
        s *= c["one_minus_beta_1"]
        m += s
        u *= self.beta_2
        np.abs(b.g, out=s)
        np.maximum(u, s, out=u)
        np.add(u, self.epsilon, out=s)
        np.divide(m, s, out=s)
        s *= c["step_size"]
        np.subtract(b.p, s, out=b.p)


def _nadam_u(beta_1: float, t: int) -> float:
    """Dozat's momentum schedule ``mu_t = beta_1 (1 - 0.96^t / 2)``."""
    return beta_1 * (1.0 - 0.5 * 0.96**t)


class NadamStep(TypedDict):
    """The scalars of one Nadam step."""

    momentum_coefficient: float
    """``lr mu_{t+1} / (1 - P_t mu_{t+1})``, the weight of ``m`` in ``lr m_hat``."""
    gradient_coefficient: float
    """``lr (1 - mu_t) / (1 - P_t)``, the weight of ``g`` in ``lr m_hat``."""
    one_minus_beta_1: float
    one_minus_beta_2: float
    velocity_correction: float
    """``1 - beta_2^t``, which divides ``v``."""


@define(eq=False)
class Nadam(Optimizer):
    """Nadam, Adam with Nesterov momentum (Dozat, 2016), as in Keras 3.

    With ``mu_t = beta_1 (1 - 0.96^t / 2)`` and ``P_t = mu_1 ... mu_t``:
    ``m_hat = mu_{t+1} m / (1 - P_t mu_{t+1}) + (1 - mu_t) g / (1 - P_t)``,
    ``v_hat = v / (1 - beta_2^t)``, ``w -= lr m_hat / (sqrt(v_hat) + eps)``. ``P_t``
    is a float64 running product (Keras keeps it in the variables' dtype), rebuilt
    from ``iterations`` when a state is restored.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        beta_1: Decay of the first-moment average, in [0, 1).
        beta_2: Decay of the second-moment average, in [0, 1).
        epsilon: Added to ``sqrt(v_hat)``.
    """

    beta_1: float = _beta_field(0.9)
    beta_2: float = _beta_field(0.999)
    epsilon: float = _epsilon_field()
    _u_product: float = field(init=False, default=1.0, repr=False)
    _u_step: int = field(init=False, default=0, repr=False)

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity")

    def coefficients(self, learning_rate: float, step: int) -> NadamStep:
        b1 = self.beta_1
        if self._u_step != step - 1:  # iterations were set (set_state): rebuild P_{t-1}
            self._u_product = 1.0
            for i in range(1, step):
                self._u_product *= _nadam_u(b1, i)
        u_t, u_next = _nadam_u(b1, step), _nadam_u(b1, step + 1)
        product = self._u_product * u_t
        self._u_product, self._u_step = product, step
        scalars: NadamStep = {
            "momentum_coefficient": learning_rate * u_next / (1 - product * u_next),
            "gradient_coefficient": learning_rate * (1 - u_t) / (1 - product),
            "one_minus_beta_1": 1 - b1,
            "one_minus_beta_2": 1 - self.beta_2,
            "velocity_correction": 1 - self.beta_2**step,
        }
        return scalars

    def update_block(self, b: Block, c: NadamStep) -> None:
        s, s2, m, v = b.s, b.s2, b.slots["momentum"], b.slots["velocity"]
        update_moments(b, c["one_minus_beta_1"], c["one_minus_beta_2"])
        np.multiply(m, c["momentum_coefficient"], out=s)
        np.multiply(b.g, c["gradient_coefficient"], out=s2)
        s += s2  # lr * m_hat
        np.divide(v, c["velocity_correction"], out=s2)
        np.sqrt(s2, out=s2)
        s2 += self.epsilon
        s /= s2
        np.subtract(b.p, s, out=b.p)
