"""What ``compile`` attaches to each output: its loss, loss weight and metrics.

``loss``, ``loss_weights`` and ``metrics`` may be one value for every output, a list
in output order, or a dict keyed by output name, as in Keras. A model with several
outputs logs ``<output>_loss`` and ``<output>_<metric>`` beside the total ``loss``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import define, field

from loopkit import losses as _losses
from loopkit import metrics as _metrics
from loopkit.errors import ConfigError
from loopkit.losses import Loss
from loopkit.metrics import Metric
from loopkit.typing import Shape

__all__ = ["Head", "resolve_heads"]


@define(eq=False)
class Head:
    """One output's share of the compiled objective.

    Args:
        name: The output's name (the name of the layer producing it).
        loss: Its loss, or None when the output is not trained (Keras's ``None``).
        weight: The loss weight multiplying it in the total.
        metrics: Its metrics, already named for the logs; they ignore sample and
            class weights, as Keras's ``metrics=``.
        weighted_metrics: Its metrics that take sample and class weights (Keras's
            ``weighted_metrics=``), named for the logs.
    """

    name: str
    loss: Loss | None
    weight: float = 1.0
    metrics: list[Metric] = field(factory=list)
    weighted_metrics: list[Metric] = field(factory=list)


def _per_output(
    value: Any,
    names: Sequence[str],
    what: str,
    leaf: type | tuple[type, ...],
    kind: str = "one-output",
) -> list[Any]:
    """Spread ``value`` over the outputs: one for all, a list in order, a dict by name."""
    if isinstance(value, Mapping) and "class_name" not in value:  # not a Keras config
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ConfigError(
                f"compile() got {what} for the output(s) {unknown}, which the model does "
                f"not have; its outputs are {list(names)}. Key the dict by output name."
            )
        return [value.get(n) for n in names]
    if isinstance(value, (list, tuple)) and not isinstance(value, leaf):
        if len(names) == 1 and what != "metrics":
            if len(value) != 1:
                raise ConfigError(
                    f"compile() got {what}={value!r}; a {kind} model has one output, so "
                    "pass one value (or a one-element list)."
                )
            return [value[0]]
        if len(value) != len(names):
            raise ConfigError(
                f"compile() got {len(value)} {what} for {len(names)} outputs {list(names)};"
                f" pass one per output, in order, or a dict keyed by output name."
            )
        return list(value)
    return [value] * len(names)


def _weights(loss_weights: Any, names: Sequence[str], kind: str) -> list[float]:
    if loss_weights is None:
        return [1.0] * len(names)
    spread = _per_output(loss_weights, names, "loss_weights", (), kind)
    out = []
    for name, w in zip(names, spread, strict=True):
        if w is None:
            out.append(1.0)
            continue
        if isinstance(w, bool) or not isinstance(w, (int, float)):
            raise ConfigError(
                f"compile() got loss_weights {w!r} for output {name!r}; expected a number."
            )
        out.append(float(w))
    return out


def _metric_lists(
    metrics: Any, names: Sequence[str], what: str = "metrics"
) -> list[list[Any]]:
    if metrics is None:
        return [[] for _ in names]
    if isinstance(metrics, (str, bytes)):
        raise TypeError(
            f"compile() got {what}={metrics!r}; expected a list such as "
            f"{what}=[{metrics!r}]."
        )
    if isinstance(metrics, Mapping) and "class_name" not in metrics:
        spread = _per_output(metrics, names, "metrics", ())
        return [
            [] if m is None else (list(m) if isinstance(m, (list, tuple)) else [m])
            for m in spread
        ]
    items = list(metrics)
    if len(names) > 1 and items and all(isinstance(m, (list, tuple)) for m in items):
        return [list(m) for m in _per_output(items, names, "metrics", ())]
    return [list(items) for _ in names]  # one flat list: every output gets each metric


def _resolve_metrics(
    ids: Sequence[Any],
    name: str,
    head_loss: Loss | None,
    shape: Shape | None,
    several: bool,
    taken: set[str],
    what: str,
    argument: Any,
) -> list[Metric]:
    """Resolve one output's metrics and name them for the logs.

    A weighted metric whose key an unweighted one already logs is logged as
    ``weighted_<name>`` (``<output>_weighted_<name>``), as Keras 3 does.
    """
    resolved = []
    for ident in ids:
        if several and isinstance(ident, Metric):
            ident = copy.deepcopy(ident)  # each output keeps its own state
        metric = _metrics.get(ident, loss=head_loss, output_shape=shape)
        prefix = f"{name}_" if several else ""
        if what == "weighted_metrics" and prefix + metric.name in taken:
            if isinstance(ident, Metric):
                metric = copy.deepcopy(metric)  # the same object as in metrics=
            metric.name = "weighted_" + metric.name
        metric.name = prefix + metric.name
        resolved.append(metric)
    keys = [m.name for m in resolved]
    clash = sorted(
        {k for k in keys if keys.count(k) > 1 or k in taken} | ({"loss"} & set(keys))
    )
    if clash:
        raise ConfigError(
            f"compile({what}={argument!r}) logs the key(s) {clash} twice (or as "
            "'loss'); give each metric a distinct name."
        )
    taken.update(keys)
    return resolved


def resolve_heads(
    loss: Any,
    metrics: Any,
    loss_weights: Any,
    names: Sequence[str],
    output_shapes: Sequence[Shape | None],
    kind: str = "one-output",
    weighted_metrics: Any = None,
) -> list[Head]:
    """Return one Head per output; raise before changing anything on a bad argument.

    Raises:
        ConfigError: an unknown name, a wrong count, or a log key used twice.
    """
    losses = _per_output(loss, names, "losses", (str,), kind)
    weights = _weights(loss_weights, names, kind)
    metric_ids = _metric_lists(metrics, names)
    weighted_ids = _metric_lists(weighted_metrics, names, "weighted_metrics")
    several = len(names) > 1
    head_losses = [_losses.get(x) if x is not None else None for x in losses]
    taken: set[str] = set()
    plain = [
        _resolve_metrics(
            metric_ids[i],
            name,
            head_losses[i],
            output_shapes[i],
            several,
            taken,
            "metrics",
            metrics,
        )
        for i, name in enumerate(names)
    ]
    weighted = [  # after every unweighted one, as Keras orders the logs
        _resolve_metrics(
            weighted_ids[i],
            name,
            head_losses[i],
            output_shapes[i],
            several,
            taken,
            "weighted_metrics",
            weighted_metrics,
        )
        for i, name in enumerate(names)
    ]
    heads = [
        Head(name, head_losses[i], weights[i], plain[i], weighted[i])
        for i, name in enumerate(names)
    ]
    if all(h.loss is None for h in heads) and loss is not None:
        raise ConfigError(
            f"compile() got loss={loss!r}, which leaves every output {list(names)} without "
            "a loss; give at least one output a loss."
        )
    return heads
