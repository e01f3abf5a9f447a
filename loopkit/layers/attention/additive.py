"""AdditiveAttention: Keras 3's Bahdanau-style attention, ``sum(scale * tanh(q + k))``."""

from __future__ import annotations

from typing import Any

import numpy as np
from attrs import define, field

from loopkit.layers.attention.dot_attention import Attention
from loopkit.typing import FloatArray
from loopkit.validators import in_half_open_range

__all__ = ["AdditiveAttention"]


@define(eq=False, slots=False)
class AdditiveAttention(Attention):
    """Additive attention (Bahdanau et al., 2015), as Keras 3's ``AdditiveAttention``.

    Called like ``Attention`` on ``[query, value(, key)]`` with the same masks and
    options; the scores are ``sum(scale * tanh(query_i + key_j))`` over the
    features, with ``scale`` a learned ``(dim,)`` vector (glorot uniform) if
    ``use_scale``, else 1.

    Args:
        use_scale: Learn the per-feature ``scale``.
        dropout: Fraction of the attention distribution dropped in training.
        seed: Seed of the dropout masks' own generator; the model's if None.
    """

    use_scale: bool = True
    score_mode: Any = field(default="dot", init=False)
    dropout: float = field(default=0.0, validator=in_half_open_range(0.0, 1.0))

    def build(self, input_shape: Any) -> None:
        shapes = self._shapes(input_shape)
        if self.use_scale:
            self.add_weight("scale", (shapes[0][1],), "glorot_uniform")
        if self.seed is not None:
            self.rng = np.random.default_rng(int(self.seed))

    def scores(self, query: FloatArray, key: FloatArray) -> FloatArray:
        t = np.tanh(query[:, :, None, :] + key[:, None, :, :])
        self._cache["tanh"] = t
        scale = self._param("scale")
        return (t @ scale.value) if scale is not None else t.sum(axis=-1)

    def scores_backward(
        self, query: FloatArray, key: FloatArray, dscores: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        t = self._cache["tanh"]
        scale = self._param("scale")
        if scale is not None and self.trainable:
            np.einsum("bqk,bqkd->d", dscores, t, out=scale.grad)
        dz = dscores[..., None] * (1.0 - t * t)
        if scale is not None:
            dz *= scale.value
        return dz.sum(axis=2), dz.sum(axis=1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("score_mode", None)
        return config
