"""Attention layers: MultiHeadAttention, Attention (dot/concat) and AdditiveAttention."""

from __future__ import annotations

from loopkit.layers.attention.additive import AdditiveAttention
from loopkit.layers.attention.dot_attention import Attention
from loopkit.layers.attention.multi_head import MultiHeadAttention

__all__ = ["AdditiveAttention", "Attention", "MultiHeadAttention"]
