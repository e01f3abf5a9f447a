"""Attention: Keras 3's dot-product (Luong) and concat attention of query over value."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.attention._scoring import (
    AttentionCall,
    causal_mask,
    check_padding_mask,
    dropout_keep,
    softmax,
    softmax_backward,
)
from loopkit.layers.base import Layer, Parameter
from loopkit.typing import FloatArray, Shape
from loopkit.validators import in_half_open_range, one_of

__all__ = ["Attention"]


@define(eq=False, slots=False)
class Attention(AttentionCall, Layer):
    """Dot-product attention (Luong et al., 2015) or concat attention, as Keras 3's.

    Called on ``[query, value]`` or ``[query, value, key]`` (``key`` is ``value``
    when left out): ``query`` ``(batch, Tq, dim)``, ``value`` ``(batch, Tv, vdim)``,
    ``key`` ``(batch, Tv, dim)``. Scores are ``query @ key^T`` (times ``scale``
    with ``use_scale``), or with ``score_mode="concat"``
    ``concat_score_weight * sum(tanh(scale * (query_i + key_j)))``; the output is
    ``softmax(scores) @ value``, ``(batch, Tq, vdim)``.

    ``mask=[query_mask, value_mask]`` (from ``Embedding(mask_zero=True)`` or
    ``Masking`` in a graph): padded value steps get ``scores - 1e9``, and padded
    query steps output zeros; the output carries the query mask.
    ``use_causal_mask=True`` lets query step ``i`` see value steps ``j <= i``.
    ``return_attention_scores=True`` also returns the attention distribution
    ``(batch, Tq, Tv)`` (after dropout, as Keras).

    Args:
        use_scale: Learn a scalar ``scale`` (initialized to 1) for the scores.
        score_mode: ``"dot"`` or ``"concat"`` (then also a scalar
            ``concat_score_weight``, initialized to 1).
        dropout: Fraction of the attention distribution dropped in training.
        seed: Seed of the dropout masks' own generator; the model's if None.
    """

    multi_input = True
    requires_list: ClassVar[bool] = True
    uses_mask = True
    """``forward`` takes ``mask=[query_mask, value_mask(, key_mask)]``."""

    use_scale: bool = False
    score_mode: Literal["dot", "concat"] = field(
        default="dot", validator=one_of("dot", "concat")
    )
    dropout: float = field(default=0.0, validator=in_half_open_range(0.0, 1.0))
    seed: int | None = None
    _cache: dict[str, Any] = field(init=False, factory=dict, repr=False)

    def call_arguments(
        self,
        inputs: Any,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> tuple[Any, dict[str, Any]]:
        """Bind ``layer([query, value(, key)], return_attention_scores=, ...)``."""
        xs, _ = super().call_arguments(inputs)
        return xs, self.call_options(return_attention_scores, use_causal_mask)

    def _shapes(self, input_shape: Any) -> list[Shape]:
        if not isinstance(input_shape, list) or len(input_shape) not in (2, 3):
            raise ConfigError(
                f"{self._call_name()} is called on a list [query, value] or [query, "
                f"value, key]; got input shapes {input_shape!r}."
            )
        shapes = self.sequence_shapes(input_shape)
        query, value = shapes[0], shapes[1]
        key = shapes[2] if len(shapes) == 3 else value
        if key[1] != query[1]:
            raise ShapeError(
                f"{self._call_name()}: query and key must have the same last dimension "
                f"(scores compare them feature by feature); got query {(None, *query)} "
                f"and key {(None, *key)}. Project one of them, e.g. with Dense."
            )
        return shapes

    def build(self, input_shape: Any) -> None:
        self._shapes(input_shape)
        if self.use_scale:
            self.add_weight("scale", (), "ones")
        if self.score_mode == "concat":
            self.add_weight("concat_score_weight", (), "ones")
        if self.seed is not None:
            self.rng = np.random.default_rng(int(self.seed))

    def compute_output_shape(
        self,
        input_shape: Any,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> Any:
        shapes = self._shapes(input_shape)
        out = (shapes[0][0], shapes[1][1])
        return [out, (shapes[0][0], shapes[1][0])] if return_attention_scores else out

    # --- scoring (overridden by AdditiveAttention) ----------------------------------

    def _param(self, name: str) -> Parameter | None:
        return next((p for p in self._parameters if p.name == name), None)

    def scores(self, query: FloatArray, key: FloatArray) -> FloatArray:
        """Return the raw scores ``(batch, Tq, Tv)``; cache what backward needs."""
        scale = self._param("scale")
        if self.score_mode == "dot":
            raw = np.matmul(query, key.transpose(0, 2, 1))
            self._cache["raw"] = raw
            scaled: FloatArray = raw * scale.value if scale is not None else raw
            return scaled
        summed = query[:, :, None, :] + key[:, None, :, :]
        if scale is not None:
            summed *= scale.value
        np.tanh(summed, out=summed)
        self._cache["tanh"] = summed
        total = summed.sum(axis=-1)
        self._cache["raw"] = total
        weight = self._param("concat_score_weight")
        assert weight is not None, "built with score_mode='concat'"
        result: FloatArray = total * weight.value
        return result

    def scores_backward(
        self, query: FloatArray, key: FloatArray, dscores: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Write the score weights' gradients; return dL/dquery and dL/dkey."""
        scale = self._param("scale")
        raw = self._cache["raw"]
        if self.score_mode == "dot":
            if scale is not None:
                if self.trainable:
                    scale.grad[...] = np.sum(dscores * raw)
                dscores = dscores * scale.value
            return dscores @ key, dscores.transpose(0, 2, 1) @ query
        weight = self._param("concat_score_weight")
        assert weight is not None, "built with score_mode='concat'"
        if self.trainable:
            weight.grad[...] = np.sum(dscores * raw)
        t = self._cache["tanh"]
        dz = (dscores * weight.value)[..., None] * (1.0 - t * t)
        if scale is not None:
            if self.trainable:
                summed = query[:, :, None, :] + key[:, None, :, :]
                scale.grad[...] = np.sum(dz * summed)
            dz *= scale.value
        return dz.sum(axis=2), dz.sum(axis=1)

    # --- running --------------------------------------------------------------------

    def forward(  # type: ignore[override]
        self,
        inputs: list[FloatArray],
        training: bool = False,
        mask: Any = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> Any:
        """Return the attended values ``(batch, Tq, vdim)`` (and the distribution).

        Args:
            inputs: ``[query, value]`` or ``[query, value, key]``.
            training: Whether dropout is on.
            mask: ``[query_mask, value_mask]`` (a third, the key's, is ignored as
                in Keras), ``(batch, steps)`` each, or None.
            return_attention_scores: Also return the distribution.
            use_causal_mask: Let query step ``i`` see value steps ``j <= i``.
        """
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        batch, tq, tv = query.shape[0], query.shape[1], value.shape[1]
        masks = [*mask, None, None] if isinstance(mask, list) else [None, None]
        call = self._call_name()
        query_mask = check_padding_mask(call, "query", masks[0], batch, tq)
        value_mask = check_padding_mask(call, "value", masks[1], batch, tv)
        self._cache = {}
        scores = self.scores(query, key)
        allowed = None if value_mask is None else value_mask[:, None, :]
        if use_causal_mask:
            causal = causal_mask(tq, tv)
            allowed = causal if allowed is None else allowed & causal
        probs = softmax(
            scores, allowed, self.buffer("probs", scores.shape), zero_masked=False
        )
        keep = None
        used = probs
        if training and self.dropout > 0.0:
            assert self.rng is not None, "forward() runs after setup()"
            keep = dropout_keep(
                self.rng, probs.shape, self.dropout, self.buffer("keep", probs.shape)
            )
            used = np.multiply(probs, keep, out=self.buffer("dropped", probs.shape))
        y = self.buffer("y", (batch, tq, value.shape[2]))
        np.matmul(used, value, out=y)
        if query_mask is not None:
            y *= query_mask[:, :, None]
        self._cache.update(
            inputs=inputs, probs=probs, used=used, keep=keep, query_mask=query_mask
        )
        return [y, used] if return_attention_scores else y

    def backward(self, dy: Any) -> Any:
        """Write the score weights' gradients; return dL/d each input.

        ``dy`` is dL/d(output), or ``[dL/d(output), dL/d(distribution)]`` when the
        call returns the distribution.
        """
        c = self._cache
        inputs = c["inputs"]
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        dused_extra = None
        if isinstance(dy, list):
            dy, dused_extra = dy
        used, probs = c["used"], c["probs"]
        dused = self.buffer("dused", probs.shape)
        if dy is None:
            dused.fill(0.0)
            dvalue = np.zeros_like(value)
        else:
            if c["query_mask"] is not None:
                dy = dy * c["query_mask"][:, :, None]
            np.matmul(dy, value.transpose(0, 2, 1), out=dused)
            dvalue = np.matmul(used.transpose(0, 2, 1), dy)
        if dused_extra is not None:
            dused += dused_extra
        if c["keep"] is not None:
            dused *= c["keep"]
        dscores = softmax_backward(probs, dused, self.buffer("dscores", probs.shape))
        dquery, dkey = self.scores_backward(query, key, dscores)
        if not self.input_grad_needed:
            return None
        if len(inputs) > 2:
            return [dquery, dvalue, dkey]
        return [dquery, dvalue + dkey]
