"""MultiHeadAttention: Keras 3's multi-head scaled dot-product attention, with backward."""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
from attrs import define, field

from loopkit.errors import ConfigError, ShapeError
from loopkit.layers.attention._scoring import (
    AttentionCall,
    BoolArray,
    as_bool_mask,
    causal_mask,
    check_padding_mask,
    dropout_keep,
    softmax,
    softmax_backward,
)
from loopkit.layers.base import Layer, Parameter
from loopkit.typing import FloatArray, Shape
from loopkit.validators import in_half_open_range, positive_int

__all__ = ["MultiHeadAttention"]


def _key_dim_given(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        raise TypeError(
            f"MultiHeadAttention(num_heads={instance.num_heads!r}) needs key_dim=, the "
            "size of each head's query and key projections, e.g. "
            "MultiHeadAttention(num_heads=4, key_dim=16)."
        )
    positive_int(instance, attribute, value)


def _optional_positive_int(
    instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if value is not None:
        positive_int(instance, attribute, value)


def _as_output_shape(value: Any) -> tuple[int, ...] | None:
    if value is None or value == () or value == []:
        return None
    dims = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if any(
        isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d <= 0 for d in dims
    ):
        raise ConfigError(
            f"MultiHeadAttention got output_shape={value!r}; expected a positive int or "
            "a tuple of them (the output's shape besides the batch and sequence axes), "
            "or None for the query's feature size."
        )
    return tuple(int(d) for d in dims)


def _default_axes_only(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    axes = (value,) if isinstance(value, int) else value
    if axes is not None and tuple(axes) not in {(1,), (-2,)}:
        raise ConfigError(
            f"MultiHeadAttention got attention_axes={value!r}; loopkit attends over the "
            "sequence axis of (batch, steps, features) inputs only, Keras's default. "
            "Leave attention_axes=None (or pass 1), or reshape the inputs so the axes "
            "to attend over are one sequence axis."
        )


def _not_set(what: str, fix: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value:
            raise ConfigError(
                f"MultiHeadAttention got {attribute.name}={value!r}; loopkit has no "
                f"{what}. {fix}"
            )

    return check


def _steps_fit(mask: Shape, steps: tuple[int | None, int | None]) -> bool:
    """Whether an attention mask's shape fits ``(query steps, value steps)``.

    An axis of any length (None) on either side fits any length.
    """
    return len(mask) == 2 and all(
        a is None or b is None or a == b for a, b in zip(mask, steps, strict=True)
    )


@define(eq=False, slots=False)
class MultiHeadAttention(AttentionCall, Layer):
    """Multi-head attention (Vaswani et al., 2017), with Keras 3's weights and masks.

    Called as ``mha(query, value, key=None, attention_mask=None,
    use_causal_mask=False, return_attention_scores=False, training=None)`` on
    ``query`` ``(batch, T, query_dim)``, ``value`` ``(batch, S, value_dim)`` and
    ``key`` ``(batch, S, key_dim)`` (``value`` when not given). Each head ``n``
    projects ``Q = query @ Wq[:, n] + bq[n]`` (and ``K``, ``V`` alike), attends
    with ``softmax(Q K^T / sqrt(key_dim))`` over the ``S`` value steps, and the
    heads' contexts are projected back by the output kernel to
    ``(batch, T, *output_shape)``.

    Masks combine as Keras's ``_compute_attention_mask``: the padding masks of
    ``query`` (rows), ``value`` and ``key`` (columns, e.g. from
    ``Embedding(mask_zero=True)``), the causal mask and ``attention_mask``
    ``(batch, T, S)`` (nonzero = may attend) are and-ed; masked entries get
    probability 0 (a fully masked row attends to nothing). The output carries the
    query's mask. ``return_attention_scores=True`` also returns the probabilities
    ``(batch, num_heads, T, S)`` (before dropout), as a second output.

    Weights, in Keras's ``get_weights()`` order: ``query_kernel``
    ``(query_dim, num_heads, key_dim)``, ``query_bias`` ``(num_heads, key_dim)``,
    then ``key_*`` and ``value_*`` alike (value: ``value_dim`` per head), and
    ``attention_output_kernel`` ``(num_heads, value_dim, *output_shape)``,
    ``attention_output_bias`` ``output_shape``.

    Args:
        num_heads: Number of attention heads.
        key_dim: Size of each head's query and key projections.
        value_dim: Size of each head's value projection; ``key_dim`` if None.
        dropout: Fraction of the attention probabilities dropped in training.
        use_bias: Whether the four projections have biases.
        output_shape: Output shape besides the batch and sequence axes (an int or a
            tuple); the query's feature size if None.
        attention_axes: None only (the sequence axis), Keras's default.
        kernel_initializer: Initializer of the four kernels.
        bias_initializer: Initializer of the four biases.
        kernel_regularizer: Penalty on each kernel.
        bias_regularizer: Penalty on each bias.
        kernel_constraint: Constraint on each kernel.
        bias_constraint: Constraint on each bias.
        seed: Seed of the dropout masks' own generator; the model's if None.
        sliding_window: If given, step ``i`` sees only steps ``j`` with
            ``|i - j| < sliding_window`` (Keras 3.13+).
        flash_attention: None or False only (there is no fused kernel).
        use_gate: False only.
    """

    num_heads: int = field(validator=positive_int)
    key_dim: int | None = field(default=None, validator=_key_dim_given)
    value_dim: int | None = field(default=None, validator=_optional_positive_int)
    dropout: float = field(default=0.0, validator=in_half_open_range(0.0, 1.0))
    use_bias: bool = True
    output_shape: tuple[int, ...] | None = field(default=None, converter=_as_output_shape)
    attention_axes: Any = field(default=None, validator=_default_axes_only)
    kernel_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    bias_regularizer: Any = None
    kernel_constraint: Any = None
    bias_constraint: Any = None
    seed: int | None = None
    sliding_window: int | None = field(default=None, validator=_optional_positive_int)
    flash_attention: bool | None = field(
        default=None,
        validator=_not_set("fused attention kernel", "Leave flash_attention=None."),
    )
    use_gate: bool = field(
        default=False,
        validator=_not_set("gated attention", "Leave use_gate=False."),
    )
    uses_mask = True
    """``forward`` takes the inputs' padding masks as ``mask=``."""
    _cache: dict[str, Any] = field(init=False, factory=dict, repr=False)

    @property
    def head_value_dim(self) -> int:
        """Each head's value size: ``value_dim``, or ``key_dim`` if None."""
        return int(self.value_dim or self.key_dim or 0)

    # --- calling --------------------------------------------------------------------

    def call_arguments(  # type: ignore[override]
        self,
        query: Any,
        value: Any,
        key: Any = None,
        attention_mask: Any = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> tuple[Any, dict[str, Any]]:
        """Bind ``mha(query, value, key=None, attention_mask=None, ...)``, as Keras's call.

        The call's inputs are ``[query, value, key]`` (``key`` is ``value`` when not
        given, as in Keras, so one tensor fed twice gets the sum of both
        gradients), then ``attention_mask`` if given.
        """
        inputs = [query, value, value if key is None else key]
        if attention_mask is not None:
            inputs.append(attention_mask)
        return inputs, self.call_options(return_attention_scores, use_causal_mask)

    def _shapes(self, input_shape: Any) -> list[Shape]:
        if not isinstance(input_shape, list) or len(input_shape) not in (3, 4):
            raise ConfigError(
                f"{self._call_name()} is called as mha(query, value, key=None, "
                f"attention_mask=None); got input shapes {input_shape!r}."
            )
        shapes = self.sequence_shapes(input_shape)
        (t, _), (s, _) = shapes[:2]
        if len(shapes) == 4 and not _steps_fit(shapes[3], (t, s)):
            raise ShapeError(
                f"{self._call_name()} got attention_mask of shape {(None, *shapes[3])}; "
                f"expected (batch, query steps, value steps) = {(None, t, s)}, true "
                "where a query step may attend to a value step."
            )
        return shapes

    def build(self, input_shape: Any) -> None:
        (_, dq), (_, dv), (_, dk) = self._shapes(input_shape)[:3]
        heads, hk, hv = self.num_heads, int(self.key_dim or 0), self.head_value_dim
        out = self.output_shape or (dq,)
        kernels = {
            "query": ((dq, heads, hk), (heads, hk)),
            "key": ((dk, heads, hk), (heads, hk)),
            "value": ((dv, heads, hv), (heads, hv)),
            "attention_output": ((heads, hv, *out), out),
        }
        for role, (kernel_shape, bias_shape) in kernels.items():
            self.add_weight(
                f"{role}_kernel",
                kernel_shape,
                self.kernel_initializer,
                regularizer=self.kernel_regularizer,
                constraint=self.kernel_constraint,
            )
            if self.use_bias:
                self.add_weight(
                    f"{role}_bias",
                    bias_shape,
                    self.bias_initializer,
                    regularizer=self.bias_regularizer,
                    constraint=self.bias_constraint,
                )
        if self.seed is not None:
            self.rng = np.random.default_rng(int(self.seed))

    def compute_output_shape(
        self,
        input_shape: Any,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> Any:
        shapes = self._shapes(input_shape)
        (t, dq), (s, _) = shapes[0], shapes[1]
        out = (t, *(self.output_shape or (dq,)))
        return [out, (self.num_heads, t, s)] if return_attention_scores else out

    # --- running --------------------------------------------------------------------

    @property
    def _params(self) -> dict[str, Parameter]:
        # Looked up by name on each call: a shared layer's clone (``share_layer``)
        # has its own Parameter objects in ``_parameters``.
        return {p.name: p for p in self._parameters}

    def _weight(self, name: str) -> FloatArray | None:
        param = self._params.get(name)
        return None if param is None else param.value

    def _project(self, x: FloatArray, role: str) -> FloatArray:
        """Return ``x @ W + b`` per head, ``(batch, heads, steps, head_dim)``."""
        kernel = self._params[f"{role}_kernel"].value
        batch, steps, features = x.shape
        width = kernel.shape[1] * kernel.shape[2]
        flat = self.buffer(f"{role}_proj", (batch * steps, width))
        np.matmul(
            x.reshape(batch * steps, features), kernel.reshape(features, width), out=flat
        )
        bias = self._weight(f"{role}_bias")
        if bias is not None:
            flat += bias.reshape(width)
        return flat.reshape(batch, steps, kernel.shape[1], kernel.shape[2]).transpose(
            0, 2, 1, 3
        )

    def attention_mask_for(
        self,
        batch: int,
        t: int,
        s: int,
        padding: list[Any],
        attention_mask: Any,
        use_causal_mask: bool,
    ) -> BoolArray | None:
        """Combine the masks into ``(batch or 1, T, S)`` booleans as Keras; None if none.

        Args:
            batch: The batch size.
            t: Query steps.
            s: Value (and key) steps.
            padding: The query, value and key padding masks (None where absent).
            attention_mask: ``(batch, T, S)``, nonzero where attending is allowed.
            use_causal_mask: And the lower-triangular causal mask in.
        """
        call = self._call_name()
        query_mask, value_mask, key_mask = (
            check_padding_mask(call, role, m, batch, n)
            for role, m, n in zip(
                ("query", "value", "key"), padding, (t, s, s), strict=True
            )
        )
        combined: BoolArray | None = None
        parts: list[BoolArray | None] = [
            None if query_mask is None else query_mask[:, :, None],
            None if value_mask is None else value_mask[:, None, :],
            None if key_mask is None else key_mask[:, None, :],
            causal_mask(t, s) if use_causal_mask else None,
        ]
        if self.sliding_window is not None:
            rows, cols = np.arange(t)[:, None], np.arange(s)[None, :]
            parts.append((np.abs(rows - cols) < self.sliding_window)[None])
        explicit = as_bool_mask(attention_mask)
        if explicit is not None and explicit.shape != (batch, t, s):
            raise ShapeError(
                f"{call} got attention_mask of shape {explicit.shape}; expected "
                f"(batch, query steps, value steps) = {(batch, t, s)}."
            )
        parts.append(explicit)
        for part in parts:
            if part is not None:
                combined = part if combined is None else combined & part
        return combined

    def forward(  # type: ignore[override]
        self,
        inputs: list[FloatArray],
        training: bool = False,
        mask: Any = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> Any:
        """Return the attention output ``(batch, T, *output_shape)`` (and the scores).

        Args:
            inputs: ``[query, value, key]`` and, if given, ``attention_mask``.
            training: Whether dropout is on.
            mask: The inputs' padding masks, a list in ``inputs``' order (or None).
            return_attention_scores: Also return the probabilities
                ``(batch, num_heads, T, S)``.
            use_causal_mask: Let step ``i`` attend only to steps ``j <= i``.
        """
        query, value, key = inputs[:3]
        batch, t, s = query.shape[0], query.shape[1], value.shape[1]
        padding = ([*mask, None, None, None] if isinstance(mask, list) else [None] * 3)[:3]
        combined = self.attention_mask_for(
            batch, t, s, padding, inputs[3] if len(inputs) > 3 else None, use_causal_mask
        )
        q = self._project(query, "query")
        q *= self.dtype.type(1.0 / math.sqrt(float(self.key_dim or 1)))  # Keras scales Q
        k = self._project(key, "key")
        v = self._project(value, "value")
        heads, hv = self.num_heads, self.head_value_dim
        scores = self.buffer("scores", (batch, heads, t, s))
        np.matmul(q, k.transpose(0, 1, 3, 2), out=scores)
        probs = self.buffer("probs", scores.shape)
        softmax(
            scores, None if combined is None else combined[:, None], probs, zero_masked=True
        )
        keep = None
        used = probs
        if training and self.dropout > 0.0:
            assert self.rng is not None, "forward() runs after setup()"
            keep = dropout_keep(
                self.rng, probs.shape, self.dropout, self.buffer("keep", probs.shape)
            )
            used = np.multiply(probs, keep, out=self.buffer("dropped", probs.shape))
        context = self.buffer("context", (batch, t, heads, hv))
        np.matmul(used, v, out=context.transpose(0, 2, 1, 3))
        out_kernel = self._params["attention_output_kernel"].value
        out_width = int(np.prod(out_kernel.shape[2:]))
        y = self.buffer("y", (batch * t, out_width))
        np.matmul(
            context.reshape(batch * t, heads * hv),
            out_kernel.reshape(heads * hv, out_width),
            out=y,
        )
        out_bias = self._weight("attention_output_bias")
        if out_bias is not None:
            y += out_bias.reshape(out_width)
        self._cache = {
            "inputs": inputs,
            "q": q,
            "k": k,
            "v": v,
            "probs": probs,
            "used": used,
            "keep": keep,
            "context": context,
        }
        output = y.reshape(batch, t, *out_kernel.shape[2:])
        return [output, probs] if return_attention_scores else output

    def _project_backward(
        self, x: FloatArray, dproj: FloatArray, role: str, needed: bool
    ) -> FloatArray | None:
        """Write the ``role`` kernel's and bias's gradients; return dL/dx if ``needed``.

        ``dproj`` is dL/d(projection), ``(batch, heads, steps, head_dim)``.
        """
        kernel = self._params[f"{role}_kernel"]
        batch, steps, features = x.shape
        width = kernel.shape[1] * kernel.shape[2]
        flat = self.buffer(
            f"d{role}_proj", (batch, steps, kernel.shape[1], kernel.shape[2])
        )
        np.copyto(flat, dproj.transpose(0, 2, 1, 3))
        flat2 = flat.reshape(batch * steps, width)
        if self.trainable:
            np.matmul(
                x.reshape(batch * steps, features).T,
                flat2,
                out=kernel.grad.reshape(features, width),
            )
            bias = self._params.get(f"{role}_bias")
            if bias is not None:
                np.sum(flat2, axis=0, out=bias.grad.reshape(width))
        if not needed:
            return None
        dx = self.buffer(f"d{role}", x.shape)
        np.matmul(
            flat2, kernel.value.reshape(features, width).T, out=dx.reshape(-1, features)
        )
        return dx

    def backward(self, dy: Any) -> Any:
        """Write every projection's gradients; return ``[dquery, dvalue, dkey(, None)]``.

        ``dy`` is dL/d(output), or ``[dL/d(output), dL/d(scores)]`` when the call
        returns the scores (None for one nothing reads).
        """
        c = self._cache
        inputs = c["inputs"]
        dscores_out = None
        if isinstance(dy, list):
            dy, dscores_out = dy
        query, value, key = inputs[:3]
        batch, t = query.shape[0], query.shape[1]
        heads, hv = self.num_heads, self.head_value_dim
        context, probs, used, v = c["context"], c["probs"], c["used"], c["v"]
        out_kernel = self._params["attention_output_kernel"]
        dctx = self.buffer("dcontext", (batch, heads, t, hv))
        if dy is None:
            dctx.fill(0.0)
        else:
            out_width = int(np.prod(out_kernel.shape[2:]))
            dy2 = dy.reshape(batch * t, out_width)
            if self.trainable:
                np.matmul(
                    context.reshape(batch * t, heads * hv).T,
                    dy2,
                    out=out_kernel.grad.reshape(heads * hv, out_width),
                )
                out_bias = self._params.get("attention_output_bias")
                if out_bias is not None:
                    np.sum(dy2, axis=0, out=out_bias.grad.reshape(out_width))
            dctx_bthd = (dy2 @ out_kernel.value.reshape(heads * hv, out_width).T).reshape(
                batch, t, heads, hv
            )
            np.copyto(dctx, dctx_bthd.transpose(0, 2, 1, 3))
        dv = np.matmul(used.transpose(0, 1, 3, 2), dctx)
        dprobs = self.buffer("dprobs", probs.shape)
        np.matmul(dctx, v.transpose(0, 1, 3, 2), out=dprobs)
        if c["keep"] is not None:
            dprobs *= c["keep"]
        if dscores_out is not None:
            dprobs += dscores_out
        dscores = softmax_backward(probs, dprobs, self.buffer("dscores", probs.shape))
        dq = np.matmul(dscores, c["k"])
        dq *= self.dtype.type(1.0 / math.sqrt(float(self.key_dim or 1)))
        dk = np.matmul(dscores.transpose(0, 1, 3, 2), c["q"])
        needed = self.input_grad_needed
        grads: list[FloatArray | None] = [
            self._project_backward(query, dq, "query", needed),
            self._project_backward(value, dv, "value", needed),
            self._project_backward(key, dk, "key", needed),
        ]
        if not needed:
            return None
        if len(inputs) > 3:
            grads.append(None)  # the attention mask takes no gradient
        return grads

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self.output_shape is not None:
            config["output_shape"] = list(self.output_shape)
        return config
