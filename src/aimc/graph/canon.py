"""Building a canonical :class:`~aimc.graph.ir.Graph`: the passes both capture routes share.

Each route (``torch.export``/``torch.fx``, ONNX) emits canonical nodes into a
:class:`GraphBuilder`; :meth:`GraphBuilder.build` then applies the same clean-ups, so the
same model gives the same graph whichever way it came in:

1. a ``linear`` followed by the ``add`` of a constant vector of its width becomes the
   linear's bias (ONNX writes ``MatMul`` + ``Add``); an eval-mode ``batchnorm`` right after
   a ``conv``/``linear`` is folded into its weights, as both ONNX exporters do (with
   onnxscript's float32 formula: ``s = gamma / sqrt(var + eps)``, ``w' = w * s``,
   ``b' = (b - mean) * s + beta``, so the weights agree bit for bit);
2. a ``mul``/``div`` by a scalar constant on an operand or the output of a ``matmul`` is
   folded into the matmul's ``scale`` (ONNX scales ``Q`` and ``K`` by ``d^-1/4`` each,
   PyTorch scales the product by ``d^-1/2``);
3. nodes whose outputs nobody reads are dropped;
4. ``matmul`` nodes are named after their operands' module (``<module>.qk``, ``.av``).
"""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import torch

from aimc.graph.ir import ALL_OPS, STATIONARY_OPS, CaptureError, Graph, Node

__all__ = ["GraphBuilder", "module_name"]


def module_name(weight: str | None, bias: str | None = None, scope: str | None = None,
                bare: bool = True) -> str | None:
    """An MVM node's name from its weight's (or bias's) parameter name or its module scope.

    ``"fc1.weight"`` -> ``"fc1"``; ``"attn.in_proj_weight"`` -> ``"attn.in_proj"``; a bare
    parameter ``"proj"`` -> ``"proj"`` (unless ``bare`` is False: then the scope or ``None``).
    """
    for name, suffix in ((weight, "weight"), (bias, "bias")):
        if name:
            m = re.fullmatch(rf"(.+)[._]{suffix}", name)
            if m:
                return m.group(1)
    return (weight if bare else None) or scope or None


class GraphBuilder:
    """Collects canonical nodes, values and constants, then builds a :class:`Graph`."""

    def __init__(self, source: str):
        self.source = source
        self.nodes: list[Node] = []
        self.values: dict[str, tuple[int, ...]] = {}
        self.weights: dict[str, torch.Tensor] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.alias: dict[str, str] = {}
        self._names: set[str] = set()

    # -- emitting ---------------------------------------------------------------------
    def resolve(self, value: str) -> str:
        while value in self.alias:
            value = self.alias[value]
        return value

    def unique(self, name: str) -> str:
        base, i = name, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def constant(self, name: str, tensor: torch.Tensor, replace: bool = False) -> str:
        """Register a constant tensor under ``name`` (another name if ``name`` holds another
        tensor, unless ``replace``); return the name used."""
        if name in self.values:
            name = f"{name}_const"
        if not replace and name in self.weights and self.weights[name] is not tensor:
            base, k = name, 1
            while name in self.weights:
                name, k = f"{base}_{k}", k + 1
        self.weights[name] = tensor
        return name

    def add(self, name: str, op: str, inputs: list[str], outputs: list[tuple[str, tuple[int, ...]]],
            attrs: dict[str, Any] | None = None, weight: str | None = None, bias: str | None = None) -> Node:
        if op not in ALL_OPS:
            raise CaptureError(f"{self.source}: internal: unknown canonical op {op!r} (node {name!r})")
        for out, shape in outputs:
            self.values[out] = tuple(int(s) for s in shape)
        node = Node(self.unique(name), op, tuple(self.resolve(i) for i in inputs), tuple(o for o, _ in outputs),
                    dict(attrs or {}), weight, bias)
        self.nodes.append(node)
        return node

    def add_mvm(self, name: str, op: str, x: str, out: str, shape: tuple[int, ...], weight: torch.Tensor,
                bias: torch.Tensor | None, attrs: dict[str, Any] | None = None) -> Node:
        """An MVM node named ``name`` whose tensors are stored as ``<name>.weight``/``.bias``."""
        name = self.unique(name)
        self._names.discard(name)  # add() claims it again
        wname = self.constant(f"{name}.weight", weight)
        bname = self.constant(f"{name}.bias", bias.reshape(-1)) if bias is not None else None
        return self.add(name, op, [x], [(out, shape)], attrs, wname, bname)

    # -- passes -------------------------------------------------------------------------
    def _consumers(self) -> dict[str, list[int]]:
        cons: dict[str, list[int]] = {}
        for i, n in enumerate(self.nodes):
            for v in n.inputs:
                cons.setdefault(v, []).append(i)
        for o in self.outputs:
            cons.setdefault(o, []).append(-1)
        return cons

    def _scalar(self, name: str) -> float | None:
        t = self.weights.get(name)
        return float(t.reshape(-1)[0]) if t is not None and t.numel() == 1 else None

    def _fuse_bias(self) -> None:
        cons = self._consumers()
        producer = {o: i for i, n in enumerate(self.nodes) for o in n.outputs}
        drop: set[int] = set()
        for i, n in enumerate(self.nodes):
            if n.op != "add" or len(n.inputs) != 2:
                continue
            for act, const in (n.inputs, n.inputs[::-1]):
                j = producer.get(act)
                t = self.weights.get(const)
                if j is None or t is None or j in drop:
                    continue
                lin = self.nodes[j]
                if (lin.op != "linear" or lin.bias is not None or cons.get(act) != [i]
                        or t.numel() != self.weights[lin.weight or ""].shape[0] or t.shape[-1:] != (t.numel(),)):
                    continue
                bname = self.constant(f"{lin.name}.bias", t.reshape(-1))
                self.nodes[j] = Node(lin.name, lin.op, lin.inputs, n.outputs, lin.attrs, lin.weight, bname)
                self.values[n.outputs[0]] = self.values[n.outputs[0]]
                drop.add(i)
                break
        self.nodes = [n for i, n in enumerate(self.nodes) if i not in drop]

    def _fold_batchnorm(self) -> None:
        cons = self._consumers()
        producer = {o: i for i, n in enumerate(self.nodes) for o in n.outputs}
        drop: set[int] = set()
        for i, n in enumerate(self.nodes):
            j = producer.get(n.inputs[0]) if n.op == "batchnorm" else None
            if j is None or self.nodes[j].op not in STATIONARY_OPS or cons.get(n.inputs[0]) != [i]:
                continue
            mvm = self.nodes[j]
            arr = lambda name: self.weights[name].detach().float().numpy()  # noqa: E731
            mean, var = arr(n.inputs[1]), arr(n.inputs[2])
            gamma = arr(n.weight) if n.weight else np.ones_like(mean)
            beta = arr(n.bias) if n.bias else np.zeros_like(mean)
            scale = gamma / np.sqrt(var + np.float32(n.attrs["eps"]))
            w = arr(mvm.weight or "")
            w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
            bias = ((arr(mvm.bias) if mvm.bias else np.zeros_like(mean)) - mean) * scale + beta
            wname = self.constant(f"{mvm.name}.weight", torch.from_numpy(np.ascontiguousarray(w, np.float32)), True)
            bname = self.constant(f"{mvm.name}.bias", torch.from_numpy(np.ascontiguousarray(bias, np.float32)), True)
            self.nodes[j] = Node(mvm.name, mvm.op, mvm.inputs, n.outputs, mvm.attrs, wname, bname)
            drop.add(i)
        self.nodes = [n for i, n in enumerate(self.nodes) if i not in drop]

    def _fold_scales(self) -> None:
        changed = True
        while changed:
            changed = False
            cons = self._consumers()
            producer = {o: i for i, n in enumerate(self.nodes) for o in n.outputs}
            for i, n in enumerate(self.nodes):
                if n.op != "matmul":
                    continue
                # a scalar mul/div on an operand, read by this matmul only
                for k, v in enumerate(n.inputs):
                    j = producer.get(v)
                    factor = self._scale_of(j) if j is not None and cons.get(v) == [i] else None
                    if factor is not None and j is not None:
                        src = self.nodes[j].inputs[0] if self.nodes[j].inputs[0] in self.values else self.nodes[j].inputs[1]
                        ins = list(n.inputs)
                        ins[k] = src
                        self._replace(i, Node(n.name, n.op, tuple(ins), n.outputs,
                                              {**n.attrs, "scale": n.attrs.get("scale", 1.0) * factor}))
                        changed = True
                        break
                if changed:
                    break
                # a scalar mul/div on the output, the matmul's only reader
                users = cons.get(n.outputs[0], [])
                if len(users) == 1 and users[0] >= 0 and (f := self._scale_of(users[0])) is not None:
                    m = self.nodes[users[0]]
                    self._replace(i, Node(n.name, n.op, n.inputs, m.outputs, {**n.attrs, "scale": n.attrs.get("scale", 1.0) * f}))
                    self.nodes[users[0]] = Node(m.name, "drop", (), (), {})
                    changed = True
                    break
            self.nodes = [n for n in self.nodes if n.op != "drop"]

    def _scale_of(self, j: int) -> float | None:
        """The factor of a ``mul``/``div`` node by a scalar constant (``None`` otherwise)."""
        n = self.nodes[j]
        if n.op not in ("mul", "div") or len(n.inputs) != 2:
            return None
        a, b = n.inputs
        if n.op == "mul":
            s = self._scalar(b) if a in self.values else self._scalar(a) if b in self.values else None
            return s
        s = self._scalar(b) if a in self.values else None
        return None if s is None or s == 0 else 1.0 / s

    def _replace(self, i: int, node: Node) -> None:
        self.nodes[i] = node

    def _prune(self) -> None:
        needed = set(self.outputs)
        keep: list[Node] = []
        for n in reversed(self.nodes):
            if any(o in needed for o in n.outputs):
                keep.append(n)
                needed.update(n.inputs)
        self.nodes = keep[::-1]

    def _name_matmuls(self, graph: Graph) -> list[Node]:
        producer = {o: n for n in graph.nodes for o in n.outputs}
        cons: dict[str, list[Node]] = {}
        for n in graph.nodes:
            for v in n.inputs:
                cons.setdefault(v, []).append(n)
        passthrough = {"reshape", "transpose", "add", "mul", "div", "sub", "where", "expand", "slice", "select"}

        def reaches_softmax(v: str, up: bool) -> bool:
            todo, seen = [v], set()
            while todo:
                v = todo.pop()
                if v in seen:
                    continue
                seen.add(v)
                nxt = [producer[v]] if up and v in producer else cons.get(v, []) if not up else []
                for n in nxt:
                    if n.op in ("softmax", "log_softmax"):
                        return True
                    if n.op in passthrough:
                        todo.extend(n.inputs if up else n.outputs)
            return False

        names = {n.name for n in graph.nodes if n.op != "matmul"}
        out = []
        for n in graph.nodes:
            if n.op == "matmul":
                ups = sorted(set().union(*(graph.upstream_mvm(i) for i in n.inputs)))
                if len(ups) == 1:
                    prefix = ups[0].rpartition(".")[0]
                else:
                    parts = [u.split(".") for u in ups]
                    common = []
                    for seg in zip(*parts) if parts else ():
                        if len(set(seg)) > 1:
                            break
                        common.append(seg[0])
                    prefix = ".".join(common)
                role = ("av" if any(reaches_softmax(i, True) for i in n.inputs)
                        else "qk" if reaches_softmax(n.outputs[0], False) else "matmul")
                name = f"{prefix}.{role}" if prefix else role
                base, k = name, 1
                while name in names:
                    name, k = f"{base}_{k}", k + 1
                names.add(name)
                n = Node(name, n.op, n.inputs, n.outputs, n.attrs, n.weight, n.bias)
            out.append(n)
        return out

    def build(self) -> Graph:
        """Apply the passes and return the :class:`Graph` (only the tensors it uses)."""
        self.outputs = [self.resolve(o) for o in self.outputs]
        missing = [o for o in self.outputs if o not in self.values]
        if missing:
            raise CaptureError(f"{self.source}: graph outputs {missing} are not computed by any supported op "
                               "(a constant output?)")
        self._fuse_bias()
        self._fold_batchnorm()
        self._fold_scales()
        self._prune()
        g = Graph(tuple(self.nodes), dict(self.values), dict(self.weights), tuple(self.inputs), tuple(self.outputs),
                  self.source)
        nodes = tuple(self._name_matmuls(g))
        used = {t for n in nodes for t in (*n.inputs, n.weight, n.bias) if t and t in self.weights}
        produced = {o for n in nodes for o in n.outputs} | set(self.inputs)
        values = {v: s for v, s in self.values.items() if v in produced}
        for n in nodes:
            for v in n.inputs:
                if v not in values and v not in used:
                    raise CaptureError(f"{self.source}: node {n.name!r} ({n.op}) reads {v!r}, which no node computes")
        return Graph(nodes, values, {k: self.weights[k] for k in self.weights if k in used}, tuple(self.inputs),
                     tuple(self.outputs), self.source)


def numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
