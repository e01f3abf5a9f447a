"""A model's graph: nodes in topological order, run forward and backward over arrays.

A chain (each layer feeding only the next, as in ``Sequential``) runs as a plain loop
over its layers. Any other graph runs node by node over a table of tensor slots (one
per output of each node): gradients of a tensor feeding several nodes are summed, a
node with call options gets them as keywords, and a node with several outputs gets
a list of output gradients (None for an output nothing reads). A layer called more
than once gets, for each extra call, a clone that shares its weights (the same
memory) but owns its buffers and gradients; the clones' gradients are added to the
layer's after each backward pass, so shared weights are stored and updated once.

A graph with a layer that makes masks (``Embedding(mask_zero=True)``, ``Masking``)
also carries a mask per slot, computed from the data on every forward pass; the
choice is made once, when the graph is built, so other graphs never look for one.
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
    in flight in one forward and backward pass. Layers the layer holds (a wrapper's
    inner layers) are cloned the same way, so their weights and buffers are the
    clone's too, wherever the layer keeps them.
    """
    from loopkit._training.traced import clone_traced

    if getattr(layer, "_trace", None) is not None:  # a layer written Keras's way
        return clone_traced(layer)
    clone_of = getattr(layer, "clone_for_sharing", None)
    if clone_of is not None:  # a nested model clones each of its layers
        return clone_of()  # type: ignore[no-any-return]
    from loopkit.layers.base import Parameter

    twins: dict[int, Any] = {}
    pairs = []
    for param in layer.parameters:
        twin = Parameter(
            name=param.name,
            value=param.value,
            grad=np.zeros_like(param.grad),
            trainable=param.trainable,
        )
        twins[id(param)] = twin
        pairs.append((param, twin))
    return _clone_sharing(layer, twins, {}), pairs


def _clone_sharing(layer: Any, twins: dict[int, Any], clones: dict[int, Any]) -> Any:
    """Copy ``layer`` and every layer it holds, each with empty buffers and the twins.

    Attributes are copied shallowly (configuration, the random generator and
    activations stay shared); a weight becomes its twin, a held layer its clone, and a
    list, tuple or dict becomes a copy with its items swapped the same way, so that
    no mutable container is shared between the calls.
    """
    from loopkit.layers.base import Layer

    def swap(value: Any) -> Any:
        if id(value) in twins:
            return twins[id(value)]
        if isinstance(value, Layer):
            return _clone_sharing(value, twins, clones)
        if type(value) is list or type(value) is tuple:
            return type(value)(swap(v) for v in value)
        if type(value) is dict:
            return {k: swap(v) for k, v in value.items()}
        return value

    if id(layer) in clones:  # held twice (Bidirectional's backward_layer)
        return clones[id(layer)]
    clone = copy.copy(layer)
    clones[id(layer)] = clone
    for key, value in vars(layer).items():
        # object.__setattr__: the clone's fields were validated as the layer's
        object.__setattr__(clone, key, {} if key == "_buffers" else swap(value))
    return clone


class Graph:
    """The nodes between ``inputs`` and ``outputs``, ready to run on arrays.

    Args:
        inputs: The model's input tensors, in order.
        outputs: The model's output tensors, in order.
        nodes: Every node between them, in topological (call) order.
    """

    def __init__(self, inputs: Sequence[Any], outputs: Sequence[Any], nodes: Sequence[Any]):
        from loopkit.layers.masking import makes_mask

        self.inputs, self.outputs, self.nodes = list(inputs), list(outputs), list(nodes)
        slots: dict[int, int] = {id(t): i for i, t in enumerate(self.inputs)}
        for node in self.nodes:
            for tensor in node.outputs:
                slots[id(tensor)] = len(slots)
        self.n_slots = len(slots)
        self.in_slots = [[slots[id(t)] for t in node.inputs] for node in self.nodes]
        self.out_slot_lists = [[slots[id(t)] for t in node.outputs] for node in self.nodes]
        self.out_slots = [outs[0] for outs in self.out_slot_lists]
        self.output_slots = [slots[id(t)] for t in self.outputs]
        self.options: list[dict[str, Any]] = [
            dict(getattr(node, "options", None) or {}) for node in self.nodes
        ]
        self.multi_output = [bool(getattr(n, "multi_output", False)) for n in self.nodes]
        self.modes: list[bool | None] = [getattr(n, "training", None) for n in self.nodes]
        """Each call's fixed ``training=`` (``layer(x, training=False)``), or None."""
        self.masked = any(makes_mask(node.layer) for node in self.nodes)
        """Whether masks can arise: decided here, once; False runs no mask code."""
        uses: dict[int, int] = {}
        for ins in self.in_slots:
            for s in ins:
                uses[s] = uses.get(s, 0) + 1
        self.is_chain = (
            len(self.inputs) == 1
            and len(self.outputs) == 1
            and not self.masked
            and all(not node.multi_input for node in self.nodes)
            and not any(self.multi_output)
            and not any(self.options)
            and all(mode is None for mode in self.modes)
            and all(
                ins == [prev]
                for ins, prev in zip(self.in_slots, [0, *self.out_slots], strict=False)
            )
            and all(uses.get(s, 0) <= 1 for s in range(self.n_slots))
            and (not self.nodes or self.output_slots == [self.out_slots[-1]])
        )
        self.ordered_layers: list[Any] = keras_layer_order(
            self.inputs, self.outputs, self.nodes
        )
        """The InputLayers and each distinct layer (or nested model) in Keras's order
        (``model.layers``, and so the weights' order)."""
        input_layers = {id(t.input_layer) for t in self.inputs}
        self.distinct_layers: tuple[Any, ...] = tuple(
            layer for layer in self.ordered_layers if id(layer) not in input_layers
        )
        """Each distinct layer (or nested model), without the InputLayers."""
        self.runners: list[Any] = [node.layer for node in self.nodes]
        self.shared_pairs: list[tuple[Any, Any]] = []
        self.output_runners: list[Any] = []
        self._sum_buffers: dict[int, FloatArray] = {}
        self._values: list[Any] = [None] * self.n_slots
        self._grads: list[Any] = [None] * self.n_slots
        self._masks: list[Any] = [None] * self.n_slots

    @property
    def layers(self) -> list[Any]:
        """Each distinct layer (or nested model), in Keras's order, no InputLayers."""
        return list(self.distinct_layers)

    def output_shapes(self, input_shapes: Sequence[Any]) -> list[Any]:
        """Return the sample shape of each output, given each input's (no batch axis)."""
        from loopkit.layers.base import as_sample_shape

        pairs = zip(self.inputs, input_shapes, strict=True)
        shapes = {id(t): as_sample_shape(s) for t, s in pairs}
        for node in self.nodes:
            ins = [shapes[id(t)] for t in node.inputs]
            out = node.layer.compute_output_shape(
                ins if node.multi_input else ins[0], **node.options
            )
            outs = out if node.multi_output else [out]
            for tensor, shape in zip(node.outputs, outs, strict=True):
                shapes[id(tensor)] = as_sample_shape(shape)
        return [shapes[id(t)] for t in self.outputs]

    def refresh_sharing(self) -> None:
        """(Re)make the clones of layers called more than once; call after a repack."""
        from loopkit._training.traced import nested_graphs

        first: set[int] = set()
        self.shared_pairs = []
        for layer in self.layers:
            for nested in nested_graphs(layer):  # its weights moved: re-clone inside
                nested.refresh_sharing()
        for i, node in enumerate(self.nodes):
            if id(node.layer) in first:
                clone, pairs = share_layer(node.layer)
                self.runners[i] = clone
                self.shared_pairs.extend(pairs)
            else:
                first.add(id(node.layer))
                self.runners[i] = node.layer
        # Only a one-output call's activation may be fused with a loss.
        producers = {
            outs[0]: r
            for outs, r, several in zip(
                self.out_slot_lists, self.runners, self.multi_output, strict=True
            )
            if not several
        }
        self.output_runners = [producers.get(s) for s in self.output_slots]

    def refresh_gradient_flags(self, inputs_need: bool = False) -> None:
        """Set each runner's ``input_grad_needed``: is anything upstream trainable?

        Args:
            inputs_need: dL/d(inputs) is needed (this graph is a nested model's and
                something trainable lies before it).
        """
        from loopkit._training.traced import nested_graphs

        upstream_trainable = [inputs_need] * len(self.inputs) + [False] * (
            self.n_slots - len(self.inputs)
        )
        for i, node in enumerate(self.nodes):
            runner = self.runners[i]
            needed = any(upstream_trainable[s] for s in self.in_slots[i])
            runner.input_grad_needed = needed
            runner.trainable = node.layer.trainable
            for nested in nested_graphs(runner):
                nested.refresh_gradient_flags(needed)
            for s in self.out_slot_lists[i]:
                upstream_trainable[s] = needed or bool(node.layer.trainable_parameters)

    # --- running ----------------------------------------------------------------------

    def forward(self, xs: Sequence[FloatArray], training: bool) -> list[FloatArray]:
        """Run every node on the inputs ``xs``; return the outputs (layer-owned views)."""
        if self.is_chain:
            x = xs[0]
            for runner in self.runners:
                x = runner.forward(x, training)
            return [x]
        if self.masked:
            return self._forward_masked(xs, training)
        values = self._values
        for i, x in enumerate(xs):
            values[i] = x
        for runner, node, ins, outs, options, several, mode in zip(
            self.runners,
            self.nodes,
            self.in_slots,
            self.out_slot_lists,
            self.options,
            self.multi_output,
            self.modes,
            strict=True,
        ):
            arg = [values[s] for s in ins] if node.multi_input else values[ins[0]]
            on = training if mode is None else mode
            y = runner.forward(arg, on, **options) if options else runner.forward(arg, on)
            if several:
                for s, v in zip(outs, y, strict=True):
                    values[s] = v
            else:
                values[outs[0]] = y
        return [values[s] for s in self.output_slots]

    def _forward_masked(self, xs: Sequence[FloatArray], training: bool) -> list[FloatArray]:
        """``forward`` carrying a mask per slot (graphs with a mask-making layer)."""
        from loopkit.layers.masking import call_forward, output_mask

        values, masks = self._values, self._masks
        for i, x in enumerate(xs):
            values[i], masks[i] = x, None
        for runner, node, ins, outs, options, several, mode in zip(
            self.runners,
            self.nodes,
            self.in_slots,
            self.out_slot_lists,
            self.options,
            self.multi_output,
            self.modes,
            strict=True,
        ):
            if node.multi_input:
                arg: Any = [values[s] for s in ins]
                mask: Any = [masks[s] for s in ins]
                if all(m is None for m in mask):
                    mask = None
            else:
                arg, mask = values[ins[0]], masks[ins[0]]
            out_mask = output_mask(runner, arg, mask, **options)
            on = training if mode is None else mode
            y = call_forward(runner, arg, on, mask, **options)
            if several:
                out_masks = out_mask if isinstance(out_mask, list) else [out_mask] * len(y)
                for s, v, m in zip(outs, y, out_masks, strict=True):
                    values[s], masks[s] = v, m
            else:
                values[outs[0]], masks[outs[0]] = y, out_mask
        return [values[s] for s in self.output_slots]

    def backward(self, dys: Sequence[FloatArray]) -> list[FloatArray | None]:
        """Backpropagate dL/d(outputs); overwrite every gradient; return dL/d(inputs)."""
        if self.is_chain:
            dy: Any = dys[0]
            for runner in reversed(self.runners):
                if dy is None:
                    break
                dy = runner.backward(dy)
            for param, twin in self.shared_pairs:  # a layer called twice in the chain
                param.grad += twin.grad
            return [dy]
        grads = self._grads
        for s in range(self.n_slots):
            grads[s] = None
        for slot, d in zip(self.output_slots, dys, strict=True):
            self._accumulate(slot, d)
        for i in range(len(self.nodes) - 1, -1, -1):
            runner = self.runners[i]
            if self.multi_output[i]:
                dy = [grads[s] for s in self.out_slot_lists[i]]
                missing = all(d is None for d in dy)
            else:
                dy = grads[self.out_slots[i]]
                missing = dy is None
            if missing:  # nothing downstream needs this call's gradient
                for param in runner.parameters:
                    param.grad.fill(0.0)
                continue
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

    def _accumulate(self, slot: int, dy: FloatArray | None) -> None:
        """Add ``dy`` to the gradient of tensor ``slot`` (fan-out sums its branches)."""
        if dy is None:
            return
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


def keras_layer_order(
    inputs: Sequence[Any], outputs: Sequence[Any], nodes: Sequence[Any]
) -> list[Any]:
    """Return the graph's layers in the order Keras's functional models list them.

    As Keras 3's ``map_graph``: a layer's depth is its longest distance to an output
    (a shared layer takes its deepest call's), the deepest come first, and layers of
    one depth keep the order in which a depth-first walk from the outputs (each
    node's inputs in order) first meets them. ``nodes`` is ``collect_nodes``'s
    topological order. InputLayers are included; ``get_weights`` follows this order,
    so Keras's weights of a multi-input model load with ``set_weights``.
    """
    first_met: dict[int, int] = {}
    layer_of: dict[int, Any] = {}
    finished: set[int] = set()

    def meet(tensor: Any) -> None:
        node = tensor.node
        layer = tensor.input_layer if node is None else node.layer
        if layer is None:
            return
        layer_of.setdefault(id(layer), layer)
        first_met.setdefault(id(layer), len(first_met))
        if node is None or id(node) in finished:
            return
        finished.add(id(node))
        for parent in node.inputs:
            meet(parent)

    for tensor in outputs:
        meet(tensor)
    layer_depth: dict[int, int] = {}
    node_depth: dict[int, int] = {}
    for node in reversed(nodes):  # outputs first
        depth = max(node_depth.get(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = node_depth[id(node)] = depth
        for parent in node.inputs:
            key = id(parent.node) if parent.node is not None else id(parent)
            node_depth[key] = max(node_depth.get(key, 0), depth + 1)
    for tensor in inputs:
        if tensor.input_layer is not None:
            layer_of.setdefault(id(tensor.input_layer), tensor.input_layer)
            first_met.setdefault(id(tensor.input_layer), len(first_met))
            layer_depth[id(tensor.input_layer)] = node_depth.get(id(tensor), 0)
    ordered = sorted(layer_depth, key=lambda key: (-layer_depth[key], first_met[key]))
    return [layer_of[key] for key in ordered]


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
