"""Attention layers: MultiHeadAttention, Attention (dot/concat) and AdditiveAttention."""

from __future__ import annotations

from loopkit.layers.attention.multi_head import MultiHeadAttention

__all__ = ["MultiHeadAttention"]
