"""The Adam family on flat buffers: Adam, AdamW, Adamax and Nadam, as in Keras 3."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from attrs import define, field
from attrs.validators import optional

from loopkit.errors import ConfigError
from loopkit.optimizers import _kernels as kernels
from loopkit.optimizers.base import (
    Optimizer,
    Slots,
    as_learning_rate,
    check_learning_rate,
)
from loopkit.schedules import LearningRateSchedule
from loopkit.typing import FloatArray
from loopkit.validators import boolean, in_half_open_range, non_negative

__all__ = ["Adam", "AdamW", "Adamax", "Nadam"]

_beta = in_half_open_range(0.0, 1.0)  # beta = 1 would divide by zero in bias correction
_decay: Any = optional(non_negative)


@define(eq=False)
class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), as in Keras 3, with the bias correction in the step.

    ``m += (g - m)(1 - beta_1)``; ``v += (g^2 - v)(1 - beta_2)``; ``w -= alpha m /
    (sqrt(v) + eps)`` with ``alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)``. AMSGrad
    (Reddi et al., 2018) uses ``v_hat = max(v_hat, v)`` in place of ``v``.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        beta_1: Decay of the first-moment average, in [0, 1).
        beta_2: Decay of the second-moment average, in [0, 1).
        epsilon: Added to ``sqrt(v)`` ("epsilon hat" of the paper).
        amsgrad: Use the AMSGrad variant.
    """

    learning_rate: float | LearningRateSchedule = field(
        default=0.001, converter=as_learning_rate, validator=check_learning_rate
    )
    beta_1: float = field(default=0.9, validator=_beta)
    beta_2: float = field(default=0.999, validator=_beta)
    epsilon: float = field(default=1e-07, validator=non_negative)
    amsgrad: bool = field(default=False, validator=boolean)

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())

    def coefficients(self, learning_rate: float, step: int) -> Any:
        b1, b2 = self.beta_1, self.beta_2
        alpha = learning_rate * math.sqrt(1 - b2**step) / (1 - b1**step)
        return alpha, 1 - b1, 1 - b2, self.epsilon

    def update_block(
        self,
        p: FloatArray,
        g: FloatArray,
        slots: Slots,
        s: FloatArray,
        s2: FloatArray,
        c: Any,
    ) -> None:
        alpha, c1, c2, eps = c
        m, v = slots["momentum"], slots["velocity"]
        t = p.dtype.type  # scalars in the buffers' dtype, as NumPy would use them
        if self.amsgrad:
            kernels.adam_amsgrad(
                p, g, m, v, slots["velocity_hat"], t(c1), t(c2), t(alpha), t(eps)
            )
        else:
            kernels.adam(p, g, m, v, t(c1), t(c2), t(alpha), t(eps))


@define(eq=False)
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as in Keras 3.

    The decay ``w -= w * weight_decay * lr`` comes before the Adam step.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        weight_decay: Decay factor (required; 0 gives plain Adam).
        beta_1: See ``Adam``.
        beta_2: See ``Adam``.
        epsilon: See ``Adam``.
        amsgrad: See ``Adam``.
    """

    learning_rate: float | LearningRateSchedule = field(
        default=0.001, converter=as_learning_rate, validator=check_learning_rate
    )
    weight_decay: float | None = field(default=0.004, validator=_decay)
    beta_1: float = field(default=0.9, validator=_beta)
    beta_2: float = field(default=0.999, validator=_beta)
    epsilon: float = field(default=1e-07, validator=non_negative)
    amsgrad: bool = field(default=False, validator=boolean)

    def __attrs_post_init__(self) -> None:
        if self.weight_decay is None:
            raise ConfigError(
                "AdamW(weight_decay=None): AdamW needs a weight decay factor. Pass a "
                "number such as weight_decay=0.004 (the default), or use Adam."
            )
        super().__attrs_post_init__()


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

    learning_rate: float | LearningRateSchedule = field(
        default=0.001, converter=as_learning_rate, validator=check_learning_rate
    )
    beta_1: float = field(default=0.9, validator=_beta)
    beta_2: float = field(default=0.999, validator=_beta)
    epsilon: float = field(default=1e-07, validator=non_negative)

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "norm")

    def coefficients(self, learning_rate: float, step: int) -> Any:
        return learning_rate / (1 - self.beta_1**step), 1 - self.beta_1

    def update_block(
        self,
        p: FloatArray,
        g: FloatArray,
        slots: Slots,
        s: FloatArray,
        s2: FloatArray,
        c: Any,
    ) -> None:
        step_size, c1 = c
        m, u = slots["momentum"], slots["norm"]
        np.subtract(g, m, out=s)
        s *= c1
        m += s
        u *= self.beta_2
        np.abs(g, out=s)
        np.maximum(u, s, out=u)
        np.add(u, self.epsilon, out=s)
        np.divide(m, s, out=s)
        s *= step_size
        p -= s


def _nadam_u(beta_1: float, t: int) -> float:
    """Dozat's momentum schedule ``mu_t = beta_1 (1 - 0.96^t / 2)``."""
    return beta_1 * (1.0 - 0.5 * 0.96**t)


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

    learning_rate: float | LearningRateSchedule = field(
        default=0.001, converter=as_learning_rate, validator=check_learning_rate
    )
    beta_1: float = field(default=0.9, validator=_beta)
    beta_2: float = field(default=0.999, validator=_beta)
    epsilon: float = field(default=1e-07, validator=non_negative)
    _u_product: float = field(init=False, default=1.0, repr=False)
    _u_step: int = field(init=False, default=0, repr=False)

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity")

    def coefficients(self, learning_rate: float, step: int) -> Any:
        b1 = self.beta_1
        if self._u_step != step - 1:  # iterations were set (set_state): rebuild P_{t-1}
            self._u_product = 1.0
            for i in range(1, step):
                self._u_product *= _nadam_u(b1, i)
        u_t, u_next = _nadam_u(b1, step), _nadam_u(b1, step + 1)
        product = self._u_product * u_t
        self._u_product, self._u_step = product, step
        coef_m = learning_rate * u_next / (1 - product * u_next)
        coef_g = learning_rate * (1 - u_t) / (1 - product)
        return coef_m, coef_g, 1 - b1, 1 - self.beta_2, 1 - self.beta_2**step

    def update_block(
        self,
        p: FloatArray,
        g: FloatArray,
        slots: Slots,
        s: FloatArray,
        s2: FloatArray,
        c: Any,
    ) -> None:
        coef_m, coef_g, c1, c2, correction = c
        m, v = slots["momentum"], slots["velocity"]
        np.subtract(g, m, out=s)
        s *= c1
        m += s
        np.square(g, out=s)
        s -= v
        s *= c2
        v += s
        np.multiply(m, coef_m, out=s)
        np.multiply(g, coef_g, out=s2)
        s += s2  # lr * m_hat
        np.divide(v, correction, out=s2)
        np.sqrt(s2, out=s2)
        s2 += self.epsilon
        s /= s2
        p -= s
