"""Run a :class:`~aimc.graph.ir.Graph` in PyTorch: :func:`to_module`.

The module is a ``torch.fx.GraphModule`` whose MVM ops are real ``nn.Linear`` /
``nn.Conv1d/2d/3d`` submodules at the node names (``"features.0"``, ``"fc1"``) and whose
activation products are :class:`MatMul` modules, so ``aimc.convert(module, chip, filter=...)``
converts chosen layers and forward hooks see every MVM. Digital ops call ``torch``.

The graph's shapes are at batch 1; the module runs any batch size. Each value's batch axis
is tracked from the inputs (batch first) through the ops; a reshape puts the batch into the
output dimension that holds it (its own size-1 dimension when there is one, otherwise the
first dimension whose extent spans it) and writes ``-1`` there.
"""
from __future__ import annotations

import math
import re
from typing import Any

import torch
from torch import fx, nn

from aimc.graph.node import CaptureError, GraphView, Node

__all__ = ["MatMul", "to_module", "batch_axes"]


class MatMul(nn.Module):
    """``scale * (a @ b)``: a product of two activations (no weights; runs digitally)."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = float(scale)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(a, b)
        return y * self.scale if self.scale != 1.0 else y

    def extra_repr(self) -> str:
        return f"scale={self.scale:.6g}"


def _pool(x, *, kind, kernel, stride, padding, ceil_mode, dilation=None, count_include_pad=True):
    nd = len(kernel)
    if kind == "max":
        fn = getattr(nn.functional, f"max_pool{nd}d")
        return fn(x, kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    fn = getattr(nn.functional, f"avg_pool{nd}d")
    return fn(x, kernel, stride, padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)


def _slice(x, *, axis, start, end, step):
    return x[(slice(None),) * axis + (slice(start, end, step),)]


def _layernorm(x, w, b, *, eps, normalized_dims):
    return nn.functional.layer_norm(x, x.shape[-normalized_dims:], w, b, eps)


def _batchnorm(x, mean, var, w, b, *, eps):
    return nn.functional.batch_norm(x, mean, var, w, b, False, 0.0, eps)


_FUNCS: dict[str, Any] = {
    "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "silu": nn.functional.silu, "exp": torch.exp,
    "sqrt": torch.sqrt, "erf": torch.erf, "neg": torch.neg, "abs": torch.abs, "reciprocal": torch.reciprocal,
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow, "where": torch.where,
}


def _b_axis_reshape(shape_in: tuple[int, ...], batch: tuple[int, int], shape_out: tuple[int, ...],
                    node: str) -> tuple[int, int]:
    """Where the batch of ``shape_in`` goes in a reshape to ``shape_out`` (shapes at batch 1).

    ``batch = (axis, outer)``: the batch is a factor of dim ``axis``, after ``outer`` of its
    extent (``(T*B, E)`` has ``(0, T)``). At batch 1 the batch can sit in several output
    dims; in order of preference: a size-1 dim right where it was (``flatten``,
    ``unsqueeze``), the front of a dim that is not the last one (``(T, B, E) -> (T, B*H, d)``),
    inside a dim (``(T, B, H, d) -> (T*B, E)``), the front of the last dim.
    """
    before = math.prod(shape_in[:batch[0]]) * batch[1]
    alone = front = inside = last = None
    for j, s in enumerate(shape_out):
        pre = math.prod(shape_out[:j])
        if pre == before and s == 1 and alone is None:
            alone = (j, 1)
        if pre == before and front is None:
            if j < len(shape_out) - 1:
                front = (j, 1)
            else:
                last = (j, 1)
        if inside is None and before % pre == 0 and (pre * s) % before == 0 and pre < before:
            inside = (j, before // pre)
    for cand in (alone, front, inside, last):
        if cand is not None:
            return cand
    raise CaptureError(f"node {node!r}: cannot tell where the batch goes in reshape {shape_in} -> {shape_out}")


def batch_axes(g: GraphView) -> tuple[dict[str, tuple[int, int] | None], dict[str, tuple[int, ...]]]:
    """Where each value holds the batch (``(axis, outer)``, see :func:`_b_axis_reshape`;
    ``None`` for none), and the run-time target of each reshape/expand node (its batch-1
    shape with ``-1`` at the batch axis)."""
    ax: dict[str, tuple[int, int] | None] = {i: (0, 1) for i in g.inputs}
    targets: dict[str, tuple[int, ...]] = {}
    for n in g.nodes:
        acts = [i for i in n.inputs if i in g.values]
        rank_out = len(g.values[n.outputs[0]])
        a = ax.get(acts[0]) if acts else None
        if n.op in ("add", "sub", "mul", "div", "pow", "where", "matmul", "expand", "concat"):
            aligned = [(v[0] + rank_out - len(g.values[i]), v[1]) for i in acts if (v := ax.get(i)) is not None]
            a = aligned[0] if aligned else None
        if a is None:
            pass
        elif n.op == "transpose":
            a = (list(n.attrs["perm"]).index(a[0]), a[1])
        elif n.op == "reshape":
            a = _b_axis_reshape(g.values[acts[0]], a, g.values[n.outputs[0]], n.name)
        elif n.op == "select":
            if n.attrs["axis"] == a[0]:
                raise CaptureError(f"node {n.name!r}: selects along the batch axis; capture with batch-first inputs")
            a = (a[0] - 1, a[1]) if n.attrs["axis"] < a[0] else a
        elif n.op == "mean" and not n.attrs["keepdim"]:
            axes = [d % len(g.values[acts[0]]) for d in n.attrs["axes"]]
            a = None if a[0] in axes else (a[0] - sum(d < a[0] for d in axes), a[1])
        if n.op in ("reshape", "expand"):
            t = list(g.values[n.outputs[0]])
            if a is not None:
                t[a[0]] = -1
            targets[n.name] = tuple(t)
        for o in n.outputs:
            ax[o] = a
    return ax, targets


def _set_module(root: nn.Module, path: str, mod: nn.Module) -> None:
    *parents, leaf = path.split(".")
    for p in parents:
        if not hasattr(root, p):
            root.add_module(p, nn.Module())
        root = getattr(root, p)
    root.add_module(leaf, mod)


def _mvm_module(g: GraphView, n) -> nn.Module:
    w = g.weights[n.weight]
    bias = g.weights[n.bias] if n.bias else None
    if n.op == "linear":
        mod: nn.Module = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None, device="meta")
    else:
        nd = w.ndim - 2
        cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[nd]
        a = n.attrs
        kernel: Any = tuple(int(k) for k in w.shape[2:])
        mod = cls(w.shape[1] * a["groups"], w.shape[0], kernel, stride=a["stride"], padding=a["padding"],
                  dilation=a["dilation"], groups=a["groups"], bias=bias is not None, device="meta")
    mod.weight = nn.Parameter(w.detach().clone().float())
    if bias is not None:
        mod.bias = nn.Parameter(bias.detach().clone().float())
    return mod


def to_module(g: GraphView) -> fx.GraphModule:
    """A ``torch.fx.GraphModule`` that runs ``g`` (inputs in ``g.inputs`` order, batch first).

    Example:
        >>> import torch
        >>> from aimc.graph import capture
        >>> net = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> mod = capture(net, torch.randn(1, 8)).to_module()
        >>> x = torch.randn(5, 8)
        >>> torch.equal(mod(x), net(x)), type(mod.get_submodule("2")).__name__
        (True, 'Linear')
    """
    _, targets = batch_axes(g)
    root = nn.Module()
    fg = fx.Graph()
    env: dict[str, fx.Node] = {}
    for i, name in enumerate(g.inputs):
        env[name] = fg.placeholder(re.sub(r"\W", "_", name) or f"input_{i}")
    consts: dict[str, str] = {}

    def get(v: str) -> fx.Node:
        if v in env:
            return env[v]
        if v not in g.weights:
            raise CaptureError(f"graph: value {v!r} is read before it is computed")
        if v not in consts:
            consts[v] = f"_const{len(consts)}"
            root.register_buffer(consts[v], g.weights[v].detach().clone())
        env[v] = fg.get_attr(consts[v])
        return env[v]

    for n in g.nodes:
        ins = [get(i) for i in n.inputs]
        a = n.attrs
        if n.op in ("linear", "conv"):
            _set_module(root, n.name, _mvm_module(g, n))
            out = fg.call_module(n.name, (ins[0],))
        elif n.op == "matmul":
            _set_module(root, n.name, MatMul(a.get("scale", 1.0)))
            out = fg.call_module(n.name, (ins[0], ins[1]))
        elif n.op in _FUNCS:
            out = fg.call_function(_FUNCS[n.op], tuple(ins))
        elif n.op == "embedding":
            out = fg.call_function(nn.functional.embedding, (ins[0], get(n.weight or "")))
        elif n.op == "gelu":
            out = fg.call_function(nn.functional.gelu, (ins[0],), {"approximate": a.get("approximate", "none")})
        elif n.op in ("softmax", "log_softmax"):
            out = fg.call_function(getattr(torch, n.op), (ins[0], a["axis"]))
        elif n.op == "layernorm":
            wb = [get(t) if t else None for t in (n.weight, n.bias)]
            out = fg.call_function(_layernorm, (ins[0], *wb), {"eps": a["eps"], "normalized_dims": a["normalized_dims"]})
        elif n.op == "batchnorm":
            wb = [get(t) if t else None for t in (n.weight, n.bias)]
            out = fg.call_function(_batchnorm, (*ins[:3], *wb), {"eps": a["eps"]})
        elif n.op in ("maxpool", "avgpool"):
            out = fg.call_function(_pool, (ins[0],), {"kind": n.op[:3], **a})
        elif n.op == "mean":
            out = fg.call_function(torch.mean, (ins[0],), {"dim": a["axes"], "keepdim": a["keepdim"]})
        elif n.op == "reshape":
            out = fg.call_function(torch.reshape, (ins[0], targets[n.name]))
        elif n.op == "expand":
            out = fg.call_method("expand", (ins[0], targets[n.name]))
        elif n.op == "transpose":
            out = fg.call_function(torch.permute, (ins[0], a["perm"]))
        elif n.op == "select":
            out = fg.call_function(torch.select, (ins[0], a["axis"], a["index"]))
        elif n.op == "slice":
            out = fg.call_function(_slice, (ins[0],), dict(a))
        elif n.op == "concat":
            out = fg.call_function(torch.cat, (ins, a["axis"]))
        elif n.op == "split":
            parts = fg.call_function(torch.split, (ins[0], list(a["sizes"]), a["axis"]))
            for k, o in enumerate(n.outputs):
                env[o] = fg.call_function(_getitem, (parts, k))
            continue
        else:
            raise CaptureError(f"graph: node {n.name!r} has op {n.op!r}, which to_module cannot run")
        env[n.outputs[0]] = out
    outs = [env[o] for o in g.outputs]
    fg.output(outs[0] if len(outs) == 1 else tuple(outs))
    return fx.GraphModule(root, fg, class_name="CapturedGraph")


def _getitem(seq: Any, i: int) -> Any:
    return seq[i]
