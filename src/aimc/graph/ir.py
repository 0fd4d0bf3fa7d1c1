"""The op graph: the project's one workload representation of a whole model.

A :class:`Graph` is a list of :class:`Node` in topological order over named values
(activations, shapes at batch 1) and named constant tensors (``weights``). It is captured
from PyTorch or ONNX by :func:`aimc.graph.capture`, runs in PyTorch via
:meth:`Graph.to_module`, and lists its matrix-vector work via :meth:`Graph.workload`.

Canonical ops (``Node.op``) and their attributes:

* MVM ops (a trained matrix programmed into the array):
  ``linear`` (``weight`` ``(N, K)``, optional ``bias``);
  ``conv`` (``weight`` ``(C_out, C_in/groups, *kernel)``; attrs ``stride``, ``padding``
  (symmetric, per spatial dim), ``dilation``, ``groups``).
* ``matmul``: a product of two activations (attention's ``Q K^T`` and ``P V``; attr
  ``scale``, a scalar folded in from adjacent multiplications). Its matrix is computed per
  input, so it is an MVM of the workload with ``stationary=False`` that an analog chip runs
  in its digital units.
* Digital compute ops: element-wise ``relu``, ``gelu`` (attr ``approximate``), ``sigmoid``,
  ``tanh``, ``silu``, ``exp``, ``sqrt``, ``erf``, ``neg``, ``abs``, ``reciprocal``, ``add``,
  ``sub``, ``mul``, ``div``, ``pow``, ``where``; ``softmax``/``log_softmax`` (attr
  ``axis``); ``layernorm`` (``weight``/``bias``, attrs ``eps``, ``normalized_dims``);
  ``batchnorm`` (inputs ``x, mean, var``; ``weight``/``bias``, attr ``eps``); ``maxpool``,
  ``avgpool`` (attrs ``kernel``, ``stride``, ``padding``, ``dilation``, ``ceil_mode``,
  ``count_include_pad``); ``mean`` (attrs ``axes``, ``keepdim``); ``embedding`` (a table
  lookup: input the integer ids, ``weight`` the ``(vocabulary, width)`` table).
* Layout ops, which move data but compute nothing (left out of :meth:`Graph.host_ops`
  and of the signature): ``reshape`` (attr ``shape`` at batch 1; flatten, view, squeeze and
  unsqueeze are reshapes), ``transpose`` (attr ``perm``), ``select`` (``axis``,
  ``index``), ``slice`` (``axis``, ``start``, ``end``, ``step``), ``concat`` (``axis``),
  ``split`` (``axis``, ``sizes``; one output per piece), ``expand`` (``shape``).

MVM nodes are named by their weight's module path (``"features.0"``, ``"fc1"``,
``"self_attn.in_proj"``); their tensors sit in ``weights`` under ``<name>.weight`` and
``<name>.bias``. A ``matmul`` is named after the module its operands come from
(``"self_attn.qk"`` before a softmax, ``"self_attn.av"`` after one).

Example:
    >>> import torch
    >>> from aimc.graph import capture
    >>> g = capture(torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU()), torch.randn(1, 8))
    >>> [(n.name, n.op) for n in g.mvm_nodes()], g.host_ops()
    ([('0', 'linear')], {'relu': 4})
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import torch

from aimc.graph.node import (ALL_OPS, COMPUTE_OPS, LAYOUT_OPS, MVM_OPS, STATIONARY_OPS, CaptureError,
                             Node)
from aimc.graph.runtime import to_module
from aimc.graph.views import graph_workload, mvm_geometry

__all__ = ["CaptureError", "Node", "Graph", "MVM_OPS", "STATIONARY_OPS", "LAYOUT_OPS", "COMPUTE_OPS", "ALL_OPS"]

@dataclass(frozen=True, eq=False)
class Graph:
    """A captured model: nodes in topological order, value shapes (batch 1) and weights.

    Attributes:
        nodes: the ops, each after the ones it reads from.
        values: activation name -> shape at batch 1 (the batch is the first dim of each input).
        weights: constant name -> tensor (MVM weights, norm parameters, constants).
        inputs: the graph's input value names, in call order.
        outputs: its output value names.
        source: where it came from (``"torch.export"``, ``"torch.fx"``, ``"onnx:<file>"``).

    Two captures of the same model (from PyTorch and from its ONNX export) have the same
    :meth:`signature` and :meth:`fingerprint`; node names of digital ops may differ.
    """

    nodes: tuple[Node, ...]
    values: dict[str, tuple[int, ...]]
    weights: dict[str, torch.Tensor]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    source: str = ""

    def node(self, name: str) -> Node:
        """The node called ``name`` (``KeyError`` naming the known MVM nodes otherwise)."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"graph has no node {name!r}; its MVM nodes are {[n.name for n in self.mvm_nodes()]}")

    def mvm_nodes(self) -> list[Node]:
        """The matrix-vector nodes (``linear``, ``conv``, ``matmul``) in topological order."""
        return [n for n in self.nodes if n.op in MVM_OPS]

    def numel(self, value: str) -> int:
        """Elements of an activation (batch 1) or of a constant."""
        if value in self.values:
            return math.prod(self.values[value])
        return int(self.weights[value].numel())

    def host_ops(self) -> dict[str, int]:
        """Elements each digital compute op kind processes per inference (batch 1).

        An element-wise op, softmax and norm count their output elements; a pooling op its
        input elements (every window element is read); a ``matmul``'s folded ``scale``
        counts as ``scale`` over its output. Layout ops and the MVMs are not listed.

        Example:
            >>> import torch
            >>> from aimc.graph import capture
            >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2))
            >>> capture(net, torch.randn(1, 1, 6, 6)).host_ops()
            {'relu': 32, 'maxpool': 32}
        """
        out: dict[str, int] = {}
        for n in self.nodes:
            if n.op in COMPUTE_OPS:
                acts = [i for i in n.inputs if i in self.values]
                count = (self.numel(acts[0]) if n.op in ("maxpool", "avgpool", "mean") and acts
                         else sum(self.numel(o) for o in n.outputs))
                out[n.op] = out.get(n.op, 0) + count
            elif n.op == "matmul" and float(n.attrs.get("scale", 1.0)) != 1.0:
                out["scale"] = out.get("scale", 0) + self.numel(n.outputs[0])
        return out

    def workload(self, example_input: torch.Tensor | None = None) -> list:
        """One :class:`~aimc.graph.builders.LayerWorkIO` per MVM node, in node order.

        Without ``example_input`` the input statistics are ``None``; with it (batch first)
        the graph runs once (:meth:`to_module`) and each layer's inputs are measured as
        :func:`~aimc.graph.workload.extract_workload` measures them.
        """
        return graph_workload(self, example_input)

    def to_module(self) -> torch.nn.Module:
        """A ``torch.fx.GraphModule`` running the graph (see :func:`aimc.graph.runtime.to_module`)."""
        return to_module(self)

    def upstream_mvm(self, value: str) -> set[str]:
        """Names of the nearest stationary MVM nodes upstream of ``value`` (through other ops)."""
        producer = {o: n for n in self.nodes for o in n.outputs}
        seen, todo, found = set(), [value], set()
        while todo:
            v = todo.pop()
            n = producer.get(v)
            if n is None or n.name in seen:
                continue
            seen.add(n.name)
            if n.op in STATIONARY_OPS:
                found.add(n.name)
            else:
                todo.extend(n.inputs)
        return found

    def signature(self) -> dict[str, Any]:
        """What must agree between two captures of one model (plain data, comparable).

        Input and output shapes, each MVM node (name, op, weight shape, bias, geometry,
        scale) sorted by name, the MVM-to-MVM edges and :meth:`host_ops`. Digital node
        names and layout ops, which differ between exporters, are left out.
        """
        mvm = []
        for n in sorted(self.mvm_nodes(), key=lambda n: n.name):
            attrs = {k: v for k, v in sorted(n.attrs.items()) if k != "scale"}
            scale = float(f"{float(n.attrs.get('scale', 1.0)):.6g}")
            wshape = tuple(self.weights[n.weight].shape) if n.weight else None
            mvm.append((n.name, n.op, wshape, self._has_bias(n), mvm_geometry(self, n), scale, tuple(attrs.items())))
        edges = sorted({(u, n.name) for n in self.mvm_nodes() for i in n.inputs for u in self.upstream_mvm(i)})
        return {"inputs": [self.values[i] for i in self.inputs], "outputs": [self.values[o] for o in self.outputs],
                "mvm": mvm, "edges": edges, "host_ops": sorted(self.host_ops().items())}

    def _has_bias(self, n: Node) -> bool:
        """A bias that is not all zero (exporters drop zero biases: the same function)."""
        return n.bias is not None and bool(self.weights[n.bias].any())

    def fingerprint(self) -> str:
        """sha256 (hex) over :meth:`signature` and every tensor's dtype, shape and bytes.

        MVM tensors are hashed by node and role (an all-zero bias as no bias); other
        constants as a sorted multiset (exporters name and share them differently).
        """
        h = hashlib.sha256(repr(self.signature()).encode())
        for n in sorted(self.mvm_nodes(), key=lambda n: n.name):
            for role, t in (("weight", n.weight), ("bias", n.bias if self._has_bias(n) else None)):
                if t:
                    h.update(f"{n.name}.{role}".encode())
                    h.update(_tensor_digest(self.weights[t]).encode())
        used = [i for n in self.nodes if n.op not in LAYOUT_OPS for i in (*n.inputs, n.weight, n.bias) if i]
        mvm_tensors = {t for n in self.mvm_nodes() for t in (n.weight, n.bias) if t}
        others = sorted(_tensor_digest(self.weights[w]) for w in used if w in self.weights and w not in mvm_tensors)
        for d in others:
            h.update(d.encode())
        return h.hexdigest()

    def __repr__(self) -> str:
        n_params = sum(int(self.weights[t].numel()) for n in self.mvm_nodes() for t in (n.weight, n.bias) if t)
        return (f"Graph({len(self.nodes)} nodes, {len(self.mvm_nodes())} MVM, {n_params:,} MVM parameters, "
                f"inputs={[self.values[i] for i in self.inputs]}, source={self.source!r})")


def _tensor_digest(t: torch.Tensor) -> str:
    t = t.detach().contiguous().cpu()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    if t.numel():
        flat: Any = t.reshape(-1).view(torch.uint8).numpy() if t.dtype != torch.bool else t.numpy().tobytes()
        h.update(flat)
    return h.hexdigest()
