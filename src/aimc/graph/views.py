"""The graph's workload view: one :class:`~aimc.graph.builders.LayerWorkIO` per MVM node.

Geometry comes from the shapes (the same formulas as
:func:`~aimc.graph.workload.extract_workload`'s hooks: a linear layer is ``K = in``,
``N = out``, one MVM per input vector; a convolution its im2col matrix, one MVM per output
position and group; an activation product ``A @ B`` the matrix ``B`` (``K x N`` per group,
groups = its leading dimensions), one MVM per row of ``A``). With an example input the
input statistics are measured by running :meth:`Graph.to_module` under the same hooks.
"""
from __future__ import annotations

import math
import torch

from aimc.graph.node import GraphView, Node
from aimc.graph.builders import LayerWorkIO
from aimc.graph.workload import _collect, _stats, _w_stat


__all__ = ["mvm_geometry", "graph_workload"]


def mvm_geometry(g: GraphView, n: Node) -> tuple[int, int, int, int, int]:
    """``(K, N, groups, n_mvm, x_elements)`` of an MVM node at batch 1."""
    x_shape = g.values[n.inputs[0]] if n.inputs[0] in g.values else tuple(g.weights[n.inputs[0]].shape)
    x_el = math.prod(x_shape)
    if n.op == "linear":
        w = g.weights[n.weight or ""]
        k, out = int(w.shape[1]), int(w.shape[0])
        return k, out, 1, max(1, x_el // k), x_el
    if n.op == "conv":
        w = g.weights[n.weight or ""]
        groups = int(n.attrs["groups"])
        k = int(w.shape[1]) * math.prod(int(s) for s in w.shape[2:])
        positions = math.prod(g.values[n.outputs[0]][2:])
        return k, int(w.shape[0]) // groups, groups, positions * groups, x_el
    b_shape = g.values[n.inputs[1]] if n.inputs[1] in g.values else tuple(g.weights[n.inputs[1]].shape)
    k, out = int(b_shape[-2]), int(b_shape[-1])
    groups = math.prod(b_shape[:-2]) if len(b_shape) > 2 else 1
    return k, out, max(1, groups), max(1, x_el // k), x_el


def graph_workload(g: GraphView, example_input: torch.Tensor | None = None) -> list[LayerWorkIO]:
    """See :meth:`aimc.graph.ir.Graph.workload`."""
    stats: dict[str, tuple[float | None, float | None]] = {}
    if example_input is not None:
        stats = _measure(g, example_input)
    out = []
    for n in g.mvm_nodes():
        k, nn_, groups, n_mvm, x_el = mvm_geometry(g, n)
        sq, ab = stats.get(n.name, (None, None))
        w_abs = _w_stat(g.weights[n.weight]) if n.weight else None
        out.append(LayerWorkIO(n.name, "matmul" if n.op == "matmul" else n.op, k, nn_, n_mvm, sq, ab, groups=groups,
                               w_mean_abs=w_abs, x_elements=x_el, stationary=n.op != "matmul"))
    return out


def _measure(g: GraphView, example_input: torch.Tensor) -> dict[str, tuple[float | None, float | None]]:
    """Input statistics per MVM node: ``_collect``'s hooks on the linear/conv modules, and
    the same normalisation on the left operand of each activation product."""
    from aimc.graph.runtime import MatMul
    mod = g.to_module()
    acc: dict[str, list[float]] = {}
    names = {m: name for name, m in mod.named_modules()}

    def hook(m, inputs, output):
        a = inputs[0].detach()
        vecs = a.reshape(-1, a.shape[-1])
        sq, ab = _stats(vecs)
        s = acc.setdefault(names[m], [0.0, 0.0, 0.0])
        s[0], s[1], s[2] = s[0] + sq * len(vecs), s[1] + ab * len(vecs), s[2] + len(vecs)

    handles = [m.register_forward_hook(hook) for m in mod.modules() if isinstance(m, MatMul)]
    try:
        work = _collect(mod, example_input)
    finally:
        for h in handles:
            h.remove()
    stats = {w.name: (w.x_mean_sq, w.x_mean_abs) for w, _ in work}
    stats.update({k: (v[0] / v[2], v[1] / v[2]) for k, v in acc.items()})
    return stats
