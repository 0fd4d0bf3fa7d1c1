"""PyTorch ops (ATen names, as ``torch.export`` writes them) -> canonical graph nodes.

:class:`TorchEmitter` turns one call ``op(*args)`` into canonical nodes of a
:class:`~aimc.graph.canon.GraphBuilder`. Arguments are :class:`Act` (an activation, by
value name) or :class:`Const` (a tensor and, for parameters, its qualified name) or plain
Python values. Both PyTorch routes (``torch.export`` and the ``torch.fx`` fallback) use it,
so they produce the same nodes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from aimc.graph.canon import GraphBuilder, module_name
from aimc.graph.ir import CaptureError

__all__ = ["Act", "Const", "TorchEmitter", "SUPPORTED"]


@dataclass(frozen=True)
class Act:
    """An activation: its value name in the builder and its shape at batch 1."""

    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Const:
    """A constant tensor; ``fqn`` is its parameter/buffer name when it has one."""

    tensor: torch.Tensor
    fqn: str | None = None


_UNARY = {"relu": "relu", "relu_": "relu", "gelu": "gelu", "sigmoid": "sigmoid", "tanh": "tanh", "silu": "silu",
          "exp": "exp", "sqrt": "sqrt", "erf": "erf", "neg": "neg", "abs": "abs", "reciprocal": "reciprocal"}
_BINARY = {"add": "add", "add_": "add", "sub": "sub", "mul": "mul", "mul_": "mul", "div": "div", "pow": "pow",
           "truediv": "div"}
_RESHAPE = {"view", "reshape", "_unsafe_view", "flatten", "unflatten", "squeeze", "unsqueeze", "view_as"}
_ALIAS = {"contiguous", "clone", "dropout", "feature_dropout", "alpha_dropout", "detach", "alias", "lift_fresh_copy",
          "_to_copy", "to", "type_as"}
_POOL = {"max_pool1d": "maxpool", "max_pool2d": "maxpool", "max_pool3d": "maxpool",
         "max_pool2d_with_indices": "maxpool", "avg_pool1d": "avgpool", "avg_pool2d": "avgpool", "avg_pool3d": "avgpool"}


def _ints(v: Any, n: int) -> tuple[int, ...]:
    v = [v] if isinstance(v, int) else list(v)
    return tuple(int(x) for x in (v * n if len(v) == 1 else v))


def _same_padding(kernel: tuple[int, ...], dilation: tuple[int, ...], node: str) -> tuple[int, ...]:
    total = [d * (k - 1) for k, d in zip(kernel, dilation)]
    if any(t % 2 for t in total):
        raise CaptureError(f"node {node!r}: padding='same' with an even kernel pads asymmetrically; "
                           "not supported by the graph (pad explicitly)")
    return tuple(t // 2 for t in total)


class TorchEmitter:
    """Emits canonical nodes for PyTorch ops into ``builder`` (see module docstring)."""

    def __init__(self, builder: GraphBuilder):
        self.b = builder

    def const(self, c: Const, hint: str) -> str:
        return self.b.constant(c.fqn or hint, c.tensor.detach())

    def operand(self, a: Any, hint: str) -> str:
        if isinstance(a, Act):
            return a.name
        if isinstance(a, Const):
            return self.const(a, hint)
        if isinstance(a, (int, float, bool)):
            return self.b.constant(f"{hint}.scalar", torch.tensor(float(a)))
        raise CaptureError(f"node {hint!r}: unsupported argument {type(a).__name__}")

    def emit(self, op: str, args: list, kwargs: dict, out: str, shape: Any, scope: str,
             fn: Callable | None = None) -> Any:
        """Emit ``op(*args, **kwargs)``; return an :class:`Act`, a :class:`Const`, a list of them, or ``None``.

        A call that reads no activation (a mask, position ids) is evaluated with ``fn``
        into a constant.
        """
        if fn is not None and not _reads_act((args, kwargs)) and op not in _ALIAS:
            try:
                value = fn(*_unwrap(args), **_unwrap(kwargs))
            except Exception as e:
                raise CaptureError(f"node {out!r}: cannot evaluate constant op {op!r} ({type(e).__name__}: {e})") from e
            if isinstance(value, torch.Tensor):  # a view of a parameter keeps its name (a linear's weight.t())
                names = [a.fqn for a in args if isinstance(a, Const) and a.fqn]
                keep = op in _RESHAPE or op in ("t", "transpose", "permute", "expand", "_to_copy", "clone", "contiguous")
                return Const(value.detach(), names[0] if names and keep else None)
            if isinstance(value, (int, float, bool)):  # size arithmetic of the fx route
                return value
        handler: Callable | None = getattr(self, f"op_{op}", None)
        if handler is not None:
            return handler(args, kwargs, out, shape, scope)
        if all(not isinstance(a, Act) for a in args) and op in _CONST_FOLD:
            return _CONST_FOLD[op](args, kwargs)
        x: Any = args[0] if args else None
        if op in _ALIAS:
            return x
        if not isinstance(x, Act) and op not in _BINARY:
            raise CaptureError(f"node {out!r}: op {op!r} on a constant is not supported")
        if op in _UNARY:
            attrs = {"approximate": kwargs.get("approximate", args[1] if len(args) > 1 else "none")} if op == "gelu" else {}
            return self._node(out, _UNARY[op], [x.name], shape, attrs)
        if op in _BINARY:
            a, c = args[0], args[1]
            alpha = kwargs.get("alpha", 1)
            if alpha != 1:
                raise CaptureError(f"node {out!r}: {op} with alpha={alpha} is not supported")
            return self._node(out, _BINARY[op], [self.operand(a, out), self.operand(c, out)], shape)
        if op in _RESHAPE:
            return self.reshape(x, shape, out)
        if op in _POOL:
            return self.pool(op, args, kwargs, out, shape)
        raise CaptureError(f"node {out!r}: op {op!r} is not supported by aimc.graph.capture "
                           f"(supported: {', '.join(sorted(SUPPORTED))})")

    def _node(self, out: str, op: str, inputs: list[str], shape: tuple[int, ...], attrs: dict | None = None,
              weight: str | None = None, bias: str | None = None) -> Act:
        self.b.add(out, op, inputs, [(out, shape)], attrs, weight, bias)
        return Act(out, tuple(shape))

    def reshape(self, x: Act, shape: tuple[int, ...], out: str) -> Act:
        if tuple(shape) == x.shape:
            return x
        return self._node(out, "reshape", [x.name], shape, {"shape": tuple(shape)})

    # -- MVMs --------------------------------------------------------------------------
    def op_linear(self, args, kwargs, out, shape, scope):
        x, w = args[0], args[1]
        b = args[2] if len(args) > 2 else kwargs.get("bias")
        if not isinstance(w, Const):
            return self.op_matmul([x, self.transpose_last(w, out)], {}, out, shape, scope)
        name = module_name(w.fqn, b.fqn if isinstance(b, Const) else None, scope) or out
        bias = b.tensor.detach() if isinstance(b, Const) else None
        node = self.b.add_mvm(name, "linear", x.name, out, shape, w.tensor.detach(), bias)
        if isinstance(b, Act):
            return self._node(f"{out}_bias", "add", [node.outputs[0], b.name], shape)
        return Act(out, tuple(shape))

    def op_conv(self, args, kwargs, out, shape, scope, nd: int = 2):
        x, w, b = args[0], args[1], (args[2] if len(args) > 2 else None)
        stride = _ints(args[3] if len(args) > 3 else 1, nd)
        dilation = _ints(args[5] if len(args) > 5 else 1, nd)
        padding = args[4] if len(args) > 4 else 0
        kernel = tuple(int(k) for k in w.tensor.shape[2:]) if isinstance(w, Const) else ()
        if padding == "valid":
            padding = 0
        padding = _same_padding(kernel, dilation, out) if padding == "same" else _ints(padding, nd)
        groups = int(args[6]) if len(args) > 6 else 1
        if not isinstance(w, Const):
            raise CaptureError(f"node {out!r}: a convolution whose weight is computed at run time is not supported")
        name = module_name(w.fqn, b.fqn if isinstance(b, Const) else None, scope) or out
        self.b.add_mvm(name, "conv", x.name, out, shape, w.tensor.detach(),
                       b.tensor.detach() if isinstance(b, Const) else None,
                       {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups})
        return Act(out, tuple(shape))

    def op_conv1d(self, args, kwargs, out, shape, scope):
        return self.op_conv(args, kwargs, out, shape, scope, nd=1)

    def op_conv2d(self, args, kwargs, out, shape, scope):
        return self.op_conv(args, kwargs, out, shape, scope, nd=2)

    def op_conv3d(self, args, kwargs, out, shape, scope):
        return self.op_conv(args, kwargs, out, shape, scope, nd=3)

    def op_convolution(self, args, kwargs, out, shape, scope):
        x, w, b, stride, padding, dilation, transposed, _, groups = args[:9]
        if transposed:
            raise CaptureError(f"node {out!r}: transposed convolution is not supported by the graph yet")
        nd = w.tensor.ndim - 2
        return self.op_conv([x, w, b, stride, padding, dilation, groups], {}, out, shape, scope, nd=nd)

    def transpose_last(self, a: Any, out: str) -> Any:
        if isinstance(a, Const):
            return Const(a.tensor.transpose(-2, -1), a.fqn)
        perm = list(range(len(a.shape)))
        perm[-2:] = perm[-1], perm[-2]
        shape = tuple(a.shape[p] for p in perm)
        return self._node(f"{out}_t", "transpose", [a.name], shape, {"perm": tuple(perm)})

    def op_matmul(self, args, kwargs, out, shape, scope):
        a, w = args[0], args[1]
        if isinstance(w, Const) and w.tensor.ndim == 2 and isinstance(a, Act):
            return self.op_linear([a, Const(w.tensor.t(), w.fqn)], {}, out, shape, scope)
        if not isinstance(a, Act) or not isinstance(w, Act):
            raise CaptureError(f"node {out!r}: a matmul with a constant left operand or a batched constant "
                               "right operand is not supported")
        return self._node(out, "matmul", [a.name, w.name], shape, {"scale": 1.0})

    op_mm = op_bmm = op_matmul

    def op_addmm(self, args, kwargs, out, shape, scope):
        b, x, w = args[:3]
        if not isinstance(w, Const) or not isinstance(b, Const):
            raise CaptureError(f"node {out!r}: addmm of activations is not supported")
        return self.op_linear([x, Const(w.tensor.t(), w.fqn), b], {}, out, shape, scope)

    def op_t(self, args, kwargs, out, shape, scope):
        x = args[0]
        if isinstance(x, Const):
            return Const(x.tensor.t(), x.fqn)
        return self.transpose_last(x, out) if len(x.shape) == 2 else x

    def op_scaled_dot_product_attention(self, args, kwargs, out, shape, scope):
        q, k, v = args[:3]
        mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
        dropout = args[4] if len(args) > 4 else kwargs.get("dropout_p", 0.0)
        causal = args[5] if len(args) > 5 else kwargs.get("is_causal", False)
        scale = kwargs.get("scale", args[6] if len(args) > 6 else None)
        if causal or dropout:
            raise CaptureError(f"node {out!r}: scaled_dot_product_attention with is_causal or dropout "
                               "is not supported by the graph yet")
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
        kt = self.transpose_last(k, out)
        s_shape = (*q.shape[:-1], k.shape[-2])
        s = self._node(f"{out}_scores", "matmul", [q.name, kt.name], s_shape, {"scale": scale})
        if mask is not None:
            if isinstance(mask, Const) and mask.tensor.dtype == torch.bool:
                mask = Const(torch.zeros(mask.tensor.shape).masked_fill(~mask.tensor, float("-inf")), mask.fqn)
            s = self._node(f"{out}_masked", "add", [s.name, self.operand(mask, out)], s_shape)
        p = self._node(f"{out}_probs", "softmax", [s.name], s_shape, {"axis": -1})
        return self._node(out, "matmul", [p.name, v.name], shape, {"scale": 1.0})

    # -- digital ops ------------------------------------------------------------------
    def op_embedding(self, args, kwargs, out, shape, scope):
        table, ids = args[0], args[1]
        if not isinstance(table, Const) or not isinstance(ids, Act):
            raise CaptureError(f"node {out!r}: an embedding needs a constant table and integer ids")
        name = (scope or out).replace(".", "_") if not table.fqn else table.fqn
        return self._node(out, "embedding", [ids.name], shape, {}, self.b.constant(name, table.tensor.detach()))

    def _axis(self, x: Act, dim: int) -> int:
        return int(dim) - len(x.shape) if int(dim) >= 0 else int(dim)

    def op_softmax(self, args, kwargs, out, shape, scope, op="softmax"):
        return self._node(out, op, [args[0].name], shape, {"axis": self._axis(args[0], args[1] if len(args) > 1 else kwargs["dim"])})

    op__softmax = op_softmax

    def op_log_softmax(self, args, kwargs, out, shape, scope):
        return self.op_softmax(args, kwargs, out, shape, scope, op="log_softmax")

    op__log_softmax = op_log_softmax

    def op_layer_norm(self, args, kwargs, out, shape, scope):
        x, norm_shape = args[0], args[1]
        w, b = (args[2] if len(args) > 2 else None), (args[3] if len(args) > 3 else None)
        eps = float(args[4]) if len(args) > 4 else 1e-5
        return self._node(out, "layernorm", [x.name], shape, {"eps": eps, "normalized_dims": len(norm_shape)},
                          self.const(w, f"{out}.weight") if w is not None else None,
                          self.const(b, f"{out}.bias") if b is not None else None)

    def op__native_batch_norm_legit_no_training(self, args, kwargs, out, shape, scope):
        x, w, b, mean, var, _, eps = args[:7]
        return [self._batchnorm(x, w, b, mean, var, float(eps), out, shape)]

    def op_batch_norm(self, args, kwargs, out, shape, scope):
        x, w, b, mean, var, training, _, eps = args[:8]
        if training:
            raise CaptureError(f"node {out!r}: batch norm in training mode; call model.eval() before capture")
        return self._batchnorm(x, w, b, mean, var, float(eps), out, shape)

    def _batchnorm(self, x, w, b, mean, var, eps, out, shape):
        ins = [x.name, self.const(mean, f"{out}.running_mean"), self.const(var, f"{out}.running_var")]
        return self._node(out, "batchnorm", ins, shape, {"eps": eps},
                          self.const(w, f"{out}.weight") if w is not None else None,
                          self.const(b, f"{out}.bias") if b is not None else None)

    def pool(self, op, args, kwargs, out, shape):
        x = args[0]
        nd = 1 if "1d" in op else 3 if "3d" in op else 2
        kernel = _ints(args[1], nd)
        stride = _ints(args[2], nd) if len(args) > 2 and args[2] not in (None, []) else kernel
        padding = _ints(args[3] if len(args) > 3 else 0, nd)
        if _POOL[op] == "maxpool":
            attrs = {"kernel": kernel, "stride": stride, "padding": padding,
                     "dilation": _ints(args[4] if len(args) > 4 else 1, nd), "ceil_mode": bool(args[5]) if len(args) > 5 else False}
        else:
            if len(args) > 6 and args[6] is not None:
                raise CaptureError(f"node {out!r}: avg_pool with divisor_override is not supported")
            attrs = {"kernel": kernel, "stride": stride, "padding": padding,
                     "ceil_mode": bool(args[4]) if len(args) > 4 else False,
                     "count_include_pad": bool(args[5]) if len(args) > 5 else True}
        act = self._node(out, _POOL[op], [x.name], shape, attrs)
        return [act, None] if op.endswith("with_indices") else act

    def op_adaptive_avg_pool2d(self, args, kwargs, out, shape, scope, nd=2):
        x, size = args[0], _ints(args[1], nd)
        spatial = x.shape[-nd:]
        if all(s == 1 for s in size):
            return self._node(out, "mean", [x.name], shape, {"axes": tuple(range(-nd, 0)), "keepdim": True})
        if any(i % o for i, o in zip(spatial, size)):
            raise CaptureError(f"node {out!r}: adaptive pooling {spatial} -> {size} is not a fixed window")
        k = tuple(i // o for i, o in zip(spatial, size))
        return self._node(out, "avgpool", [x.name], shape, {"kernel": k, "stride": k, "padding": (0,) * nd,
                                                          "ceil_mode": False, "count_include_pad": True})

    def op_adaptive_avg_pool1d(self, args, kwargs, out, shape, scope):
        return self.op_adaptive_avg_pool2d(args, kwargs, out, shape, scope, nd=1)

    def op_mean(self, args, kwargs, out, shape, scope):
        x = args[0]
        dims = args[1] if len(args) > 1 else kwargs.get("dim", list(range(len(x.shape))))
        dims = [dims] if isinstance(dims, int) else list(dims)
        keep = bool(args[2] if len(args) > 2 else kwargs.get("keepdim", False))
        return self._node(out, "mean", [x.name], shape, {"axes": tuple(sorted(self._axis(x, d) for d in dims)), "keepdim": keep})

    def op_transpose(self, args, kwargs, out, shape, scope):
        x = args[0]
        if isinstance(x, Const):
            return Const(x.tensor.transpose(args[1], args[2]), x.fqn)
        perm = list(range(len(x.shape)))
        d0, d1 = int(args[1]) % len(perm), int(args[2]) % len(perm)
        perm[d0], perm[d1] = perm[d1], perm[d0]
        return self.permute(x, perm, out, shape)

    def op_permute(self, args, kwargs, out, shape, scope):
        dims = args[1:] if len(args) > 2 else args[1]
        return self.permute(args[0], [int(d) % len(args[0].shape) for d in dims], out, shape)

    def permute(self, x, perm, out, shape):
        if perm == sorted(perm):
            return x
        return self._node(out, "transpose", [x.name], shape, {"perm": tuple(perm)})

    def op_select(self, args, kwargs, out, shape, scope):
        x, dim, index = args[0], int(args[1]) % len(args[0].shape), int(args[2])
        return self._node(out, "select", [x.name], shape, {"axis": dim, "index": index % x.shape[dim]})

    def op_slice(self, args, kwargs, out, shape, scope):
        x = args[0]
        dim = int(args[1]) % len(x.shape) if len(args) > 1 else 0
        start, end = (args[2] if len(args) > 2 else None), (args[3] if len(args) > 3 else None)
        step = int(args[4]) if len(args) > 4 else 1
        start, end, _ = slice(start, end).indices(x.shape[dim])
        if (start, end, step) == (0, x.shape[dim], 1):
            return x
        return self._node(out, "slice", [x.name], shape, {"axis": dim, "start": start, "end": end, "step": step})

    def op_cat(self, args, kwargs, out, shape, scope):
        xs, dim = args[0], int(args[1]) if len(args) > 1 else 0
        return self._node(out, "concat", [self.operand(x, out) for x in xs], shape, {"axis": dim % len(shape)})

    def op_split_with_sizes(self, args, kwargs, out, shape, scope):
        x, sizes = args[0], [int(s) for s in args[1]]
        dim = int(args[2]) % len(x.shape) if len(args) > 2 else 0
        outs = [(f"{out}_{i}", tuple(s)) for i, s in enumerate(shape)]
        self.b.add(out, "split", [x.name], outs, {"axis": dim, "sizes": tuple(sizes)})
        return [Act(o, s) for o, s in outs]

    def op_split(self, args, kwargs, out, shape, scope):
        x, size = args[0], args[1]
        dim = int(args[2]) % len(args[0].shape) if len(args) > 2 else 0
        sizes = size if isinstance(size, (list, tuple)) else [min(size, x.shape[dim] - i) for i in range(0, x.shape[dim], size)]
        return self.op_split_with_sizes([x, sizes, dim], {}, out, shape, scope)

    def op_chunk(self, args, kwargs, out, shape, scope):
        dim = int(args[2]) % len(args[0].shape) if len(args) > 2 else 0
        return self.op_split_with_sizes([args[0], [s[dim] for s in shape], dim], {}, out, shape, scope)

    def op_unbind(self, args, kwargs, out, shape, scope):
        x, dim = args[0], int(args[1]) % len(args[0].shape) if len(args) > 1 else 0
        return [self._node(f"{out}_{i}", "select", [x.name], s, {"axis": dim, "index": i}) for i, s in enumerate(shape)]

    def op_expand(self, args, kwargs, out, shape, scope):
        x = args[0]
        if isinstance(x, Const):
            return Const(x.tensor.expand(*shape), x.fqn)
        return x if tuple(shape) == x.shape else self._node(out, "expand", [x.name], shape, {"shape": tuple(shape)})


def _reads_act(v: Any) -> bool:
    if isinstance(v, Act):
        return True
    if isinstance(v, (list, tuple)):
        return any(_reads_act(x) for x in v)
    if isinstance(v, dict):
        return any(_reads_act(x) for x in v.values())
    return False


def _unwrap(v: Any) -> Any:
    if isinstance(v, Const):
        return v.tensor
    if isinstance(v, (list, tuple)):
        return type(v)(_unwrap(x) for x in v)
    if isinstance(v, dict):
        return {k: _unwrap(x) for k, x in v.items()}
    return v


_CONST_FOLD: dict[str, Callable] = {
    "t": lambda a, k: Const(a[0].tensor.t(), a[0].fqn),
    "detach": lambda a, k: a[0], "contiguous": lambda a, k: a[0], "clone": lambda a, k: a[0],
    "_to_copy": lambda a, k: a[0], "lift_fresh_copy": lambda a, k: a[0],
}

SUPPORTED = frozenset({op[3:] for op in dir(TorchEmitter) if op.startswith("op_")}
                      | set(_UNARY) | set(_BINARY) | _RESHAPE | _ALIAS | set(_POOL))
