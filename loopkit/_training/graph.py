"""A model's graph: nodes in topological order, run forward and backward over arrays.

A chain (each layer feeding only the next, as in ``Sequential``) runs as a plain loop
over its layers. Any other graph runs node by node over a table of tensor slots:
gradients of a tensor feeding several nodes are summed, and a layer called more than
once gets, for each extra call, a clone that shares its weights (the same memory)
but owns its buffers and gradients; the clones' gradients are added to the layer's
after each backward pass, so shared weights are stored and updated once.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from loopkit.errors import ConfigError
from loopkit.typing import FloatArray

__all__ = ["Graph", "share_layer"]


def share_layer(layer: Any) -> tuple[Any, list[tuple[Any, Any]]]:
    """Return a clone of ``layer`` for a second call and its ``(weight, clone weight)``s.

    The clone's weights are views of the same memory as the layer's (so updates reach
    both) with gradients of their own; its buffers are its own, so both calls can be
    in flight in one forward and backward pass.
    """
    clone_of = getattr(layer, "clone_for_sharing", None)
    if clone_of is not None:  # a nested model clones each of its layers
        return clone_of()  # type: ignore[no-any-return]
    from loopkit.layers.base import Parameter

    clone = copy.copy(layer)
    clone._buffers = {}
    pairs = []
    mapping: dict[int, Parameter] = {}
    for param in layer.parameters:
        twin = Parameter(
            name=param.name,
            value=param.value,
            grad=np.zeros_like(param.grad),
            trainable=param.trainable,
        )
        mapping[id(param)] = twin
        pairs.append((param, twin))
    clone._parameters = [mapping[id(p)] for p in layer.parameters]
    for key, value in vars(clone).items():
        if id(value) in mapping:
            setattr(clone, key, mapping[id(value)])
    return clone, pairs


class Graph:
    """The nodes between ``inputs`` and ``outputs``, ready to run on arrays.

    Args:
        inputs: The model's input tensors, in order.
        outputs: The model's output tensors, in order.
        nodes: Every node between them, in topological (call) order.
    """

    def __init__(self, inputs: Sequence[Any], outputs: Sequence[Any], nodes: Sequence[Any]):
        self.inputs, self.outputs, self.nodes = list(inputs), list(outputs), list(nodes)
        slots: dict[int, int] = {id(t): i for i, t in enumerate(self.inputs)}
        for node in self.nodes:
            slots[id(node.output)] = len(slots)
        self.n_slots = len(slots)
        self.in_slots = [[slots[id(t)] for t in node.inputs] for node in self.nodes]
        self.out_slots = [slots[id(node.output)] for node in self.nodes]
        self.output_slots = [slots[id(t)] for t in self.outputs]
        uses: dict[int, int] = {}
        for ins in self.in_slots:
            for s in ins:
                uses[s] = uses.get(s, 0) + 1
        self.is_chain = (
            len(self.inputs) == 1
            and len(self.outputs) == 1
            and all(not node.multi_input for node in self.nodes)
            and all(
                ins == [prev]
                for ins, prev in zip(self.in_slots, [0, *self.out_slots], strict=False)
            )
            and all(uses.get(s, 0) <= 1 for s in range(self.n_slots))
            and (not self.nodes or self.output_slots == [self.out_slots[-1]])
        )
        self.runners: list[Any] = [node.layer for node in self.nodes]
        self.shared_pairs: list[tuple[Any, Any]] = []
        self.output_runners: list[Any] = []
        self._sum_buffers: dict[int, FloatArray] = {}
        self._values: list[Any] = [None] * self.n_slots
        self._grads: list[Any] = [None] * self.n_slots

    @property
    def layers(self) -> list[Any]:
        """Each distinct layer (or nested model), in the order of its first call."""
        seen: dict[int, Any] = {}
        for node in self.nodes:
            seen.setdefault(id(node.layer), node.layer)
        return list(seen.values())

    def refresh_sharing(self) -> None:
        """(Re)make the clones of layers called more than once; call after a repack."""
        first: set[int] = set()
        self.shared_pairs = []
        for layer in self.layers:
            nested = getattr(layer, "graph", None)
            if nested is not None:  # its layers' weights just moved: re-clone inside it
                nested.refresh_sharing()
        for i, node in enumerate(self.nodes):
            if id(node.layer) in first:
                clone, pairs = share_layer(node.layer)
                self.runners[i] = clone
                self.shared_pairs.extend(pairs)
            else:
                first.add(id(node.layer))
                self.runners[i] = node.layer
        producers = {s: r for s, r in zip(self.out_slots, self.runners, strict=True)}
        self.output_runners = [producers.get(s) for s in self.output_slots]

    def refresh_gradient_flags(self, inputs_need: bool = False) -> None:
        """Set each runner's ``input_grad_needed``: is anything upstream trainable?

        Args:
            inputs_need: dL/d(inputs) is needed (this graph is a nested model's and
                something trainable lies before it).
        """
        upstream_trainable = [inputs_need] * len(self.inputs) + [False] * (
            self.n_slots - len(self.inputs)
        )
        for i, node in enumerate(self.nodes):
            runner = self.runners[i]
            needed = any(upstream_trainable[s] for s in self.in_slots[i])
            runner.input_grad_needed = needed
            runner.trainable = node.layer.trainable
            nested = getattr(runner, "graph", None)
            if nested is not None:
                nested.refresh_gradient_flags(needed)
            upstream_trainable[self.out_slots[i]] = needed or bool(
                node.layer.trainable_parameters
            )

    # --- running ----------------------------------------------------------------------

    def forward(self, xs: Sequence[FloatArray], training: bool) -> list[FloatArray]:
        """Run every node on the inputs ``xs``; return the outputs (layer-owned views)."""
        if self.is_chain:
            x = xs[0]
            for runner in self.runners:
                x = runner.forward(x, training)
            return [x]
        values = self._values
        for i, x in enumerate(xs):
            values[i] = x
        for runner, node, ins, out in zip(
            self.runners, self.nodes, self.in_slots, self.out_slots, strict=True
        ):
            arg = [values[s] for s in ins] if node.multi_input else values[ins[0]]
            values[out] = runner.forward(arg, training)
        return [values[s] for s in self.output_slots]

    def backward(self, dys: Sequence[FloatArray]) -> list[FloatArray | None]:
        """Backpropagate dL/d(outputs); overwrite every gradient; return dL/d(inputs)."""
        if self.is_chain:
            dy: FloatArray | None = dys[0]
            for runner in reversed(self.runners):
                if dy is None:
                    break
                dy = runner.backward(dy)
            return [dy]
        grads = self._grads
        for s in range(self.n_slots):
            grads[s] = None
        for slot, dy in zip(self.output_slots, dys, strict=True):
            self._accumulate(slot, dy)
        for i in range(len(self.nodes) - 1, -1, -1):
            dy = grads[self.out_slots[i]]
            if dy is None:  # nothing after it needs dL/d(its output): no weight before it
                continue
            runner = self.runners[i]
            dx = runner.backward(dy)
            if dx is None:
                continue
            if self.nodes[i].multi_input:
                for s, d in zip(self.in_slots[i], dx, strict=True):
                    if d is not None:
                        self._accumulate(s, d)
            else:
                self._accumulate(self.in_slots[i][0], dx)
        for param, twin in self.shared_pairs:
            param.grad += twin.grad
        return [grads[s] for s in range(len(self.inputs))]

    def _accumulate(self, slot: int, dy: FloatArray) -> None:
        """Add ``dy`` to the gradient of tensor ``slot`` (fan-out sums its branches)."""
        current = self._grads[slot]
        if current is None:
            self._grads[slot] = dy
            return
        buf = self._sum_buffers.get(slot)
        if buf is None or buf.shape[1:] != dy.shape[1:] or len(buf) < len(dy):
            buf = np.empty(dy.shape, dy.dtype)
            self._sum_buffers[slot] = buf
        out = buf[: len(dy)]
        if current is out:
            out += dy
        else:
            np.add(current, dy, out=out)
        self._grads[slot] = out


def collect_nodes(inputs: Sequence[Any], outputs: Sequence[Any], call: str) -> list[Any]:
    """Return the nodes from ``inputs`` to ``outputs`` in topological order.

    Raises:
        ConfigError: an output does not depend on the inputs (names the tensor and the
            missing input), or an input is not an ``Input``.
    """
    from loopkit._training.symbolic import KerasTensor

    for t in [*inputs, *outputs]:
        if not isinstance(t, KerasTensor):
            raise TypeError(
                f"{call} got {t!r} of type {type(t).__name__} as an input or output; "
                "expected symbolic tensors made by loopkit.Input(...) and layer calls."
            )
    for t in inputs:
        if t.node is not None:
            raise ConfigError(
                f"{call}: input {t.name!r} is the output of layer {t.node.layer.name!r}, "
                "not a loopkit.Input(...). Pass the Input tensors as inputs=."
            )
    input_ids = {id(t) for t in inputs}
    order: list[Any] = []
    state: dict[int, int] = {}  # 1 visiting, 2 done

    def visit(tensor: Any, path: list[str]) -> None:
        if id(tensor) in input_ids:
            return
        node = tensor.node
        if node is None:
            raise ConfigError(
                f"{call}: output {' <- '.join(path)} depends on the input "
                f"{tensor.name or 'Input'!r} of shape {tensor.shape}, which is not in "
                "inputs=. Add it to inputs=, or build the outputs from the given inputs."
            )
        mark = state.get(id(node))
        if mark == 2:
            return
        for parent in node.inputs:
            visit(parent, [*path, repr(node.layer.name)])
        state[id(node)] = 2
        order.append(node)

    for t in outputs:
        visit(t, [repr(t.name)])
    return order
