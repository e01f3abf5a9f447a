"""GradientClipping: clip the gradients of each update by global norm and/or value."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from attrs import define, field
from attrs.validators import and_, optional

from loopkit import OptimizerStep, Plugin, Sequential, hookimpl
from loopkit.typing import FloatArray
from loopkit.validators import finite, positive

__all__ = ["GradientClipping"]

_LIMIT = optional(and_(finite, positive))  # None turns that kind of clipping off


@define(eq=False, slots=False)
class GradientClipping(Plugin):
    """Clip each update's gradients in place: element-wise, then by global L2 norm.

    A per-run alternative to the optimizer's ``clipvalue``/``global_clipnorm`` that
    leaves the optimizer untouched. Acts on ``model.flat_gradients`` in
    ``on_before_optimizer_step``, over the trainable spans only (frozen layers'
    gradients are never read nor written), with a few vectorized calls per span.

    - ``clip_value``: every gradient element is clipped to
      ``[-clip_value, clip_value]``, as Keras's ``clipvalue`` and torch's
      ``clip_grad_value_``.
    - ``max_norm``: when the global norm ``sqrt(sum of g**2)`` over all trainable
      gradients exceeds ``max_norm``, every gradient is scaled by
      ``max_norm / norm``, as Keras's ``global_clipnorm`` and torch's
      ``clip_grad_norm_``: the direction is kept. A non-finite norm makes every
      gradient NaN, as in Keras, so the failure shows instead of a partial step.

    Both may be given; value clipping runs first, so norm clipping then keeps the
    direction of the gradient it sees and the result satisfies both limits (the
    other order would bend the direction after scaling). With neither given,
    ``max_norm=1.0`` (the common default of torch training scripts and Hugging Face's
    ``max_grad_norm``), so ``plugins=["gradient_clipping"]`` works by name.

    Skipped steps (``step.skip``, e.g. the batches GradientAccumulation only adds
    up) are left untouched: the plugin clips only the gradient of a real update,
    the averaged one when accumulating. Its ``order=-5`` and
    ``after=("gradient_accumulation",)`` put it after accumulation and before the
    plugins at the default order that read the final gradient.

    Args:
        max_norm: Global L2 norm limit (a number > 0), or None for none.
        clip_value: Element-wise limit (a number > 0), or None for none.

    Attributes:
        last_norm: Global norm of the last clipped update before norm clipping
            (after value clipping when both are set), as torch's ``clip_grad_norm_``
            returns; None before the first update or when ``max_norm`` is None.
    """

    default_name = "gradient_clipping"
    default_order = -5

    max_norm: float | None = field(default=None, validator=_LIMIT)
    clip_value: float | None = field(default=None, validator=_LIMIT)
    after: tuple[str, ...] = field(
        default=("gradient_accumulation",), kw_only=True, converter=tuple
    )
    last_norm: float | None = field(default=None, init=False)
    _views: list[FloatArray] = field(factory=list, init=False, repr=False)
    _views_of: tuple[Any, Any] = field(default=(None, None), init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.max_norm is None and self.clip_value is None:
            self.max_norm = 1.0
        # validated as given (so messages show it), stored as floats
        for name in ("max_norm", "clip_value"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, float(value))

    def _gradient_views(self, model: Sequential) -> list[FloatArray]:
        """Return views of the trainable gradient spans, cut again when they change."""
        grads, spans = model.flat_gradients, model.trainable_spans
        if self._views_of[0] is not grads or self._views_of[1] is not spans:
            self._views = [grads[s] for s in spans]
            self._views_of = (grads, spans)
        return self._views

    @hookimpl
    def on_before_optimizer_step(self, model: Sequential, step: OptimizerStep) -> None:
        if step.skip:
            return
        self.clip(model)

    def clip(self, model: Sequential) -> None:
        """Clip ``model.flat_gradients`` in place now (value first, then global norm).

        Args:
            model: A built model; only its trainable spans are touched.
        """
        views = self._gradient_views(model)
        if self.clip_value is not None:
            limit = self.clip_value
            for g in views:
                np.clip(g, -limit, limit, out=g)
        if self.max_norm is None:
            return
        with np.errstate(over="ignore"):  # a float32 overflow is an inf norm, handled below
            norm = math.sqrt(math.fsum(float(np.dot(g, g)) for g in views))
        self.last_norm = norm
        if not math.isfinite(norm):
            for g in views:
                g.fill(np.nan)
        elif norm > self.max_norm:
            scale = self.max_norm / norm
            for g in views:
                g *= scale

    @hookimpl
    def on_train_begin(self) -> None:
        self.last_norm = None
