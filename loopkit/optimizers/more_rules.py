"""Four more of Keras 3's update rules on the flat buffers: Lion, Lamb, Ftrl, Adafactor."""

from __future__ import annotations

import math
from typing import ClassVar, TypedDict

import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError
from loopkit.optimizers.base import Block, Optimizer
from loopkit.optimizers.rules import update_moments
from loopkit.schedules import LearningRateSchedule
from loopkit.typing import FloatArray
from loopkit.validators import boolean, in_closed_range, in_half_open_range, non_negative

__all__ = ["Adafactor", "Ftrl", "Lamb", "Lion"]

_unit = in_closed_range(0.0, 1.0)


@define(eq=False)
class Lion(Optimizer):
    """Lion (Chen et al., 2023), as in Keras 3: a signed update of two momenta.

    ``w -= lr sign(beta_1 m + (1 - beta_1) g)``; then ``m = beta_2 m + (1 - beta_2) g``.
    Its steps have unit size per element, so its learning rate is typically 3-10x
    smaller than Adam's.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        beta_1: Weight of the momentum in the update's sign, in [0, 1].
        beta_2: Decay of the momentum, in [0, 1].
    """

    beta_1: float = field(default=0.9, validator=_unit)
    beta_2: float = field(default=0.99, validator=_unit)

    def __attrs_post_init__(self) -> None:
        if self.beta_1 == 0:
            raise ConfigError(
                "Lion(beta_1=0): beta_1 must be in (0, 1], as in Keras; 0 would ignore "
                "the momentum. Use beta_1=0.9 (the default)."
            )
        super().__attrs_post_init__()

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum",)

    def update_block(self, b: Block, c: float) -> None:
        m, s, s2 = b.slots["momentum"], b.s, b.s2
        np.multiply(m, self.beta_1, out=s)
        np.multiply(b.g, 1 - self.beta_1, out=s2)
        s += s2
        np.sign(s, out=s)
        s *= c  # lr
        np.subtract(b.p, s, out=b.p)
        m *= self.beta_2
        np.multiply(b.g, 1 - self.beta_2, out=s2)
        m += s2


class LambStep(TypedDict):
    """The scalars of one Lamb step."""

    learning_rate: float
    one_minus_beta_1: float
    one_minus_beta_2: float
    momentum_correction: float
    """``1 - beta_1^t``, which divides ``m``."""
    velocity_correction: float
    """``1 - beta_2^t``, which divides ``v``."""


@define(eq=False)
class Lamb(Optimizer):
    """Lamb (You et al., 2020), as in Keras 3: Adam's step scaled per parameter.

    ``u = m_hat / (sqrt(v_hat) + eps)`` as in Adam; then each parameter (each
    weight array, not each element) moves by ``w -= r lr u`` with the trust ratio
    ``r = ||w|| / ||u||`` (1 where either norm is 0). The step ``u`` is kept in a
    slot of its own between the element-wise pass and the per-parameter one.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        beta_1: Decay of the first-moment average, in [0, 1).
        beta_2: Decay of the second-moment average, in [0, 1).
        epsilon: Added to ``sqrt(v_hat)``.
    """

    beta_1: float = field(default=0.9, validator=in_half_open_range(0.0, 1.0))
    beta_2: float = field(default=0.999, validator=in_half_open_range(0.0, 1.0))
    epsilon: float = field(default=1e-07, validator=non_negative)

    per_parameter_pass: ClassVar[bool] = True

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity", "update")

    def coefficients(self, learning_rate: float, step: int) -> LambStep:
        scalars: LambStep = {
            "learning_rate": learning_rate,
            "one_minus_beta_1": 1 - self.beta_1,
            "one_minus_beta_2": 1 - self.beta_2,
            "momentum_correction": 1 - self.beta_1**step,
            "velocity_correction": 1 - self.beta_2**step,
        }
        return scalars

    def update_block(self, b: Block, c: LambStep) -> None:
        m, v, u, s = b.slots["momentum"], b.slots["velocity"], b.slots["update"], b.s
        update_moments(b, c["one_minus_beta_1"], c["one_minus_beta_2"])
        np.divide(v, c["velocity_correction"], out=s)
        np.sqrt(s, out=s)
        s += self.epsilon
        np.divide(m, c["momentum_correction"], out=u)
        u /= s

    def finish_step(self, c: LambStep) -> None:
        params, update = self._params, self._slots["update"]
        assert params is not None  # bound by apply
        for a, b in self._spans:
            w, u = params[a:b], update[a:b]
            w_norm, u_norm = math.sqrt(float(np.dot(w, w))), math.sqrt(float(np.dot(u, u)))
            ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
            u *= ratio * c["learning_rate"]
            w -= u


@define(eq=False)
class Ftrl(Optimizer):
    """FTRL-Proximal (McMahan et al., 2013), as in Keras 3.

    With ``n`` the sum of squared gradients and ``p = -learning_rate_power``:
    ``z += g + 2 l2s w - ((n + g^2)^p - n^p) / lr * w``; ``n += g^2``;
    ``w = (clip(z, -l1, l1) - z) / (n^p / lr + 2 (l2 + beta / (2 lr)))``.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        learning_rate_power: <= 0; -0.5 is the paper's ``1 / sqrt(n)`` schedule.
        initial_accumulator_value: Starting value of ``n``, >= 0.
        l1_regularization_strength: ``l1`` >= 0; larger gives sparser weights.
        l2_regularization_strength: ``l2`` >= 0.
        l2_shrinkage_regularization_strength: ``l2s`` >= 0, a penalty on the
            magnitude of the weights applied through the gradient.
        beta: >= 0; 0 is the default, as in the paper.
    """

    learning_rate_power: float = field(default=-0.5)
    initial_accumulator_value: float = field(default=0.1, validator=non_negative)
    l1_regularization_strength: float = field(default=0.0, validator=non_negative)
    l2_regularization_strength: float = field(default=0.0, validator=non_negative)
    l2_shrinkage_regularization_strength: float = field(default=0.0, validator=non_negative)
    beta: float = field(default=0.0, validator=non_negative)

    def __attrs_post_init__(self) -> None:
        power = self.learning_rate_power
        if isinstance(power, bool) or not isinstance(power, (int, float)) or power > 0:
            raise ConfigError(
                f"Ftrl got learning_rate_power={power!r}; expected a number <= 0, "
                "such as -0.5 (the default)."
            )
        super().__attrs_post_init__()

    def slot_names(self) -> tuple[str, ...]:
        return ("accumulator", "linear")

    def slot_initial_value(self, name: str) -> float:
        return float(self.initial_accumulator_value) if name == "accumulator" else 0.0

    def update_block(self, b: Block, c: float) -> None:
        n, z, s, s2, p, g = b.slots["accumulator"], b.slots["linear"], b.s, b.s2, b.p, b.g
        power, lr = -self.learning_rate_power, c
        np.square(g, out=s)
        s += n  # the new accumulator
        np.power(s, power, out=s2)
        np.power(n, power, out=n)  # n is scratch until the new value is stored
        s2 -= n
        s2 /= lr
        s2 *= p
        z += g
        if self.l2_shrinkage_regularization_strength:
            np.multiply(p, 2 * self.l2_shrinkage_regularization_strength, out=n)
            z += n
        z -= s2
        np.copyto(n, s)
        np.power(s, power, out=s2)
        s2 /= lr
        s2 += 2 * (self.l2_regularization_strength + self.beta / (2 * lr))
        l1 = self.l1_regularization_strength
        np.clip(z, -l1, l1, out=s)
        s -= z
        np.divide(s, s2, out=p)


class AdafactorStep(TypedDict):
    """The scalars of one Adafactor step."""

    relative_rate: float
    """``rho_t = min(lr, 1 / sqrt(t))``, the step size relative to the weights' RMS."""
    beta_2: float
    """``1 - t^beta_2_decay``, the decay of the second moments at step ``t``."""


def _rms(x: FloatArray) -> float:
    return math.sqrt(float(np.mean(np.square(x)))) if x.size else 0.0


@define(eq=False)
class Adafactor(Optimizer):
    """Adafactor (Shazeer & Stern, 2018), as in Keras 3: factored second moments.

    For a weight of two or more dimensions the second moment is kept as a row
    average ``r`` (over the last axis) and a column average ``c`` (over the one
    before), ``v = r / mean(r) (x) c``; smaller weights keep the full ``v``. With
    ``beta_t = 1 - t^beta_2_decay`` and ``rho_t = min(lr, 1 / sqrt(t))``:
    ``u = g / sqrt(v)``, ``u /= max(1, rms(u) / clip_threshold)``,
    ``w -= max(epsilon_2, rms(w)) rho_t u``. Needs the parameters' shapes, which
    ``apply_gradients`` passes; ``build`` takes them as ``shapes=``.

    Args:
        learning_rate: Float or schedule; see ``Optimizer``.
        beta_2_decay: Exponent of the second-moment decay, < 0.
        epsilon_1: Added to ``g^2``.
        epsilon_2: Lower bound of the weights' RMS in the step size.
        clip_threshold: Bound on the RMS of the normalized update, > 0.
        relative_step: Cap a float learning rate at ``1 / sqrt(t)``.
    """

    beta_2_decay: float = field(default=-0.8)
    epsilon_1: float = field(default=1e-30, validator=non_negative)
    epsilon_2: float = field(default=1e-3, validator=non_negative)
    clip_threshold: float = field(default=1.0, validator=non_negative)
    relative_step: bool = field(default=True, validator=boolean)
    per_parameter_pass: ClassVar[bool] = True
    needs_shapes: ClassVar[bool] = True

    def slot_names(self) -> tuple[str, ...]:
        # "row"/"column" hold each factored weight's r and c at the weight's offset.
        return ("velocity", "row", "column")

    def coefficients(self, learning_rate: float, step: int) -> AdafactorStep:
        scheduled = isinstance(self.raw_learning_rate, LearningRateSchedule)
        if self.relative_step and not scheduled:
            learning_rate = min(learning_rate, 1 / math.sqrt(step))
        scalars: AdafactorStep = {
            "relative_rate": min(learning_rate, 1 / math.sqrt(step)),
            "beta_2": 1 - step**self.beta_2_decay,
        }
        return scalars

    def update_block(self, b: Block, c: AdafactorStep) -> None:
        """Nothing per block: Adafactor's moments are per weight (``finish_step``)."""

    def finish_step(self, c: AdafactorStep) -> None:
        params, grads = self._params, self._grads
        assert params is not None and grads is not None  # bound by apply
        beta, slots = c["beta_2"], self._slots
        for (a, b), shape in zip(self._spans, self._span_shapes, strict=True):
            w, g = params[a:b].reshape(shape), grads[a:b].reshape(shape)
            v = slots["velocity"][a:b].reshape(shape)
            step_size = max(self.epsilon_2, _rms(w)) * c["relative_rate"]
            squared = np.square(g) + self.epsilon_1
            if len(shape) >= 2:
                rows = shape[:-1]
                cols = (*shape[:-2], shape[-1])
                r = slots["row"][a : a + math.prod(rows)].reshape(rows)
                col = slots["column"][a : a + math.prod(cols)].reshape(cols)
                r[...] = beta * r + (1 - beta) * squared.mean(axis=-1)
                col[...] = beta * col + (1 - beta) * squared.mean(axis=-2)
                v[...] = (r / r.mean(axis=-1, keepdims=True))[..., None] * col[..., None, :]
            else:
                v[...] = beta * v + (1 - beta) * squared
            u = g / np.sqrt(v)
            u /= max(1.0, _rms(u) / self.clip_threshold)
            w -= step_size * u
