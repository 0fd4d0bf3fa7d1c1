"""Capture an ONNX file into a :class:`~aimc.graph.ir.Graph` (the ``onnx`` package).

The file is loaded, checked (``onnx.checker``) and its shapes inferred at batch 1 (a
symbolic first input dimension is set to 1). ``Gemm``, ``MatMul`` with a constant right
operand and ``Conv`` become MVM nodes (``linear``/``conv``); a ``MatMul`` of two activations
a ``matmul`` (attention's ``Q K^T`` and ``P V``; :mod:`aimc.graph.canon` folds its scalar
scalings and names it); every other supported op a digital node; constant sub-graphs
(``Shape``, ``Transpose`` of a weight, ...) are folded. An MVM node is named by its
weight's name (``fc1.weight`` -> ``fc1``), else its bias's, else the node's module scope
(the ``pkg.torch.onnx.name_scopes`` metadata ``torch.onnx.export`` writes, or a
``/fc1/Gemm``-style node name).
"""
from __future__ import annotations

import ast
import os
from typing import Any

import numpy as np
import torch

from aimc.graph.canon import GraphBuilder, module_name
from aimc.graph.ir import CaptureError, Graph
from aimc.graph.onnx_fold import FOLD, attrs, fold_constants, shapes

__all__ = ["capture_onnx", "SUPPORTED_ONNX"]

_UNARY = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Sqrt": "sqrt", "Erf": "erf",
          "Neg": "neg", "Abs": "abs", "Reciprocal": "reciprocal"}
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow"}
_RESHAPE = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}
_ALIAS = {"Identity", "Dropout", "Cast"}
SUPPORTED_ONNX = frozenset({"Gemm", "MatMul", "Conv", "Softmax", "LogSoftmax", "LayerNormalization",
                            "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean",
                            "Transpose", "Gather", "Slice", "Concat", "Split", "Expand", "Constant", "Shape", "Gelu",
                            "Where"} | set(_UNARY) | set(_BINARY) | _RESHAPE | _ALIAS | set(FOLD))


def _load(path: str, example_input: Any):
    try:
        import onnx
        from onnx import numpy_helper, shape_inference
    except ImportError as e:  # pragma: no cover - onnx is an optional extra
        raise CaptureError(f"{path}: reading ONNX needs the onnx package (pip install 'aimc[onnx]')") from e
    if not os.path.isfile(path):
        raise CaptureError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(path)
    except Exception as e:  # protobuf raises DecodeError, RuntimeWarning, ValueError, ...
        raise CaptureError(f"{path}: not a readable ONNX model ({type(e).__name__}: {' '.join(str(e).split())[:200]})") from e
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise CaptureError(f"{path}: invalid ONNX model ({' '.join(str(e).split())[:300]})") from e
    inits = {i.name for i in model.graph.initializer}
    xs = example_input if isinstance(example_input, (tuple, list)) else (example_input,) if example_input is not None else ()
    real_inputs = [i for i in model.graph.input if i.name not in inits]
    for k, inp in enumerate(real_inputs):
        dims = inp.type.tensor_type.shape.dim
        if not dims:
            raise CaptureError(f"{path}: input {inp.name!r} has no shape")
        want = tuple(xs[k].shape) if k < len(xs) and xs[k] is not None else None
        if want is not None and len(want) != len(dims):
            raise CaptureError(f"{path}: input {inp.name!r} has rank {len(dims)}, example_input has shape {want}")
        for j, d in enumerate(dims):
            size = 1 if j == 0 else (want[j] if want is not None else None)
            if d.HasField("dim_value") and j == 0 and d.dim_value != 1:
                raise CaptureError(f"{path}: input {inp.name!r} has a fixed batch of {d.dim_value}; export the "
                                   "model with batch 1 or a dynamic batch dimension")
            if not d.HasField("dim_value"):
                if size is None:
                    raise CaptureError(f"{path}: input {inp.name!r} dimension {j} ({d.dim_param!r}) is symbolic; "
                                       "pass an example_input")
                d.dim_value = int(size)
    return fold_constants(model, path), numpy_helper, real_inputs


def _scope(node) -> str | None:
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                parts = ast.literal_eval(p.value)
            except (ValueError, SyntaxError):
                return None
            return str(parts[-2]) if len(parts) >= 2 and parts[-2] else None  # qualified names, outermost first
    if node.name.startswith("/") and node.name.count("/") > 1:  # TorchScript exporter: /fc1/Gemm, /a/a.0/Conv
        return node.name.strip("/").split("/")[-2] or None
    return None


def capture_onnx(path: str, example_input: Any = None) -> Graph:
    """Capture the ONNX file at ``path`` (see the module docstring)."""
    model, numpy_helper, real_inputs = _load(path, example_input)
    g = model.graph
    b = GraphBuilder(f"onnx:{os.path.basename(path)}")
    value_shapes = shapes(g)
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for inp in real_inputs:
        b.inputs.append(inp.name)
        b.values[inp.name] = value_shapes[inp.name]
    consumers: dict[str, list] = {}
    for node in g.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    em = _OnnxEmitter(b, consts, value_shapes, consumers, path)
    for node in g.node:
        try:
            em.emit(node)
        except CaptureError:
            raise
        except Exception as e:  # a malformed attribute or shape the checker let through
            raise em.err(node, f"cannot be converted ({type(e).__name__}: {' '.join(str(e).split())[:200]})") from e
    b.outputs = [o.name for o in g.output]
    return b.build()


class _OnnxEmitter:
    def __init__(self, b: GraphBuilder, consts, shapes, consumers, path: str):
        self.b, self.consts, self.shapes, self.consumers, self.path = b, consts, shapes, consumers, path

    def err(self, node, msg: str) -> CaptureError:
        return CaptureError(f"{self.path}: node {node.name or node.output[0]!r} ({node.op_type}): {msg}")

    def tensor(self, name: str) -> torch.Tensor:
        a = self.consts[name]
        return torch.from_numpy(np.array(a, dtype=np.float32 if a.dtype.kind == "f" else a.dtype, copy=True))

    def operand(self, name: str) -> str:
        if name in self.b.values or self.b.resolve(name) in self.b.values:
            return name
        if name in self.consts:
            return self.b.constant(name, self.tensor(name))
        raise CaptureError(f"{self.path}: value {name!r} is read before any node computes it")

    def shape(self, node, k: int = 0) -> tuple[int, ...]:
        name = node.output[k]
        if name not in self.shapes:
            raise self.err(node, f"the shape of output {name!r} could not be inferred")
        return self.shapes[name]

    def add(self, node, op: str, inputs: list[str], attrs: dict | None = None, weight=None, bias=None):
        self.b.add(node.output[0], op, inputs, [(node.output[0], self.shape(node))], attrs, weight, bias)

    def emit(self, node) -> None:
        op, ins = node.op_type, [i for i in node.input]
        a = attrs(node)
        if node.domain not in ("", "ai.onnx"):
            raise self.err(node, f"custom-domain op {node.domain}::{op} is not supported")
        if op == "Constant":
            self.consts[node.output[0]] = next(iter(a.values())) if a else np.zeros(0, np.float32)
            return
        if op == "Shape" and ins[0] in self.shapes:
            self.consts[node.output[0]] = np.array(self.shapes[ins[0]], dtype=np.int64)[a.get("start", 0):a.get("end")]
            return
        if ins and all(i in self.consts or i == "" for i in ins) and op in FOLD:
            try:
                outs = FOLD[op]([self.consts[i] for i in ins if i], a)
            except Exception as e:
                raise self.err(node, f"cannot fold constant inputs ({type(e).__name__}: {e})") from e
            for o, v in zip(node.output, outs):
                self.consts[o] = np.asarray(v)
            return
        handler = getattr(self, f"op_{op}", None)
        if handler is not None:
            handler(node, ins, a)
        elif op in _ALIAS:
            self.b.alias[node.output[0]] = ins[0]
        elif op in _UNARY:
            self.add(node, _UNARY[op], [ins[0]])
        elif op in _BINARY:
            self.add(node, _BINARY[op], [self.operand(i) for i in ins])
        elif op in _RESHAPE:
            x = self.b.resolve(ins[0])
            shape = self.shape(node)
            if self.b.values.get(x) == shape:
                self.b.alias[node.output[0]] = x
            else:
                self.add(node, "reshape", [x], {"shape": shape})
        else:
            raise self.err(node, f"op type {op!r} is not supported (supported: {', '.join(sorted(SUPPORTED_ONNX))})")

    # -- MVMs ------------------------------------------------------------------------------
    def _name(self, node, weight: str | None, bias: str | None) -> str:
        """The initializer's module (``fc1.weight`` -> ``fc1``); for an initializer several
        nodes share (the exporter stores identical tensors once, under the first module's
        name) the node's own scope, extended as deep as the initializer's name
        (``layers.0.self_attn.in_proj_bias`` in scope ``layers.5.self_attn`` ->
        ``layers.5.self_attn.in_proj``)."""
        scope = _scope(node)
        for init, base in ((weight, module_name(weight, bare=False)), (bias, module_name(None, bias, bare=False))):
            if init and base:
                if scope and len(self.consumers.get(init, [])) > 1:
                    return ".".join([scope, *base.split(".")[len(scope.split(".")):]])
                return base
        return scope or node.name or weight or node.output[0]

    def _bias_after(self, node) -> str | None:
        users = self.consumers.get(node.output[0], [])
        if len(users) == 1 and users[0].op_type == "Add":
            other = [i for i in users[0].input if i != node.output[0]]
            if other and other[0] in self.consts:
                return other[0]
        return None

    def op_Gemm(self, node, ins, a):
        if a.get("transA", 0):
            raise self.err(node, "transA=1 is not supported")
        if ins[1] not in self.consts:
            raise self.err(node, "a Gemm whose B operand is computed at run time is not supported")
        w = self.tensor(ins[1])
        w = w if a.get("transB", 0) else w.t().contiguous()
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        if alpha != 1.0:
            w = w * alpha
        bias = self.tensor(ins[2]).reshape(-1) * beta if len(ins) > 2 and ins[2] else None
        if bias is not None and bias.numel() != w.shape[0]:
            raise self.err(node, f"bias of {bias.numel()} elements for {w.shape[0]} outputs is not supported")
        name = self._name(node, ins[1], ins[2] if len(ins) > 2 and ins[2] else self._bias_after(node))
        self.b.add_mvm(name, "linear", ins[0], node.output[0], self.shape(node), w, bias)

    def op_MatMul(self, node, ins, a):
        x, w = ins
        if w in self.consts and self.consts[w].ndim == 2 and x not in self.consts:
            name = self._name(node, w, self._bias_after(node))
            self.b.add_mvm(name, "linear", x, node.output[0], self.shape(node), self.tensor(w).t().contiguous(), None)
        elif x in self.consts or w in self.consts:
            raise self.err(node, "a MatMul with a constant left or batched constant right operand is not supported")
        else:
            self.add(node, "matmul", [x, w], {"scale": 1.0})

    def op_Conv(self, node, ins, a):
        if ins[1] not in self.consts:
            raise self.err(node, "a Conv whose weight is computed at run time is not supported")
        w = self.tensor(ins[1])
        nd = w.ndim - 2
        kernel = tuple(int(k) for k in w.shape[2:])
        dil = tuple(a.get("dilations", [1] * nd))
        pads = list(a.get("pads", [0] * 2 * nd))
        auto = a.get("auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            if any(s != 1 for s in a.get("strides", [1] * nd)):
                raise self.err(node, f"auto_pad={auto} with strides is not supported")
            total = [d * (k - 1) for k, d in zip(kernel, dil)]
            pads = [t // 2 for t in total] + [t - t // 2 for t in total]
        if pads[:nd] != pads[nd:]:
            raise self.err(node, f"asymmetric padding {pads} is not supported")
        bias = self.tensor(ins[2]) if len(ins) > 2 and ins[2] else None
        attrs = {"stride": tuple(a.get("strides", [1] * nd)), "padding": tuple(pads[:nd]), "dilation": dil,
                 "groups": int(a.get("group", 1))}
        name = self._name(node, ins[1], ins[2] if len(ins) > 2 and ins[2] else None)
        self.b.add_mvm(name, "conv", ins[0], node.output[0], self.shape(node), w, bias, attrs)

    # -- digital ops ---------------------------------------------------------------------------
    def _neg_axis(self, node, axis: int) -> int:
        rank = len(self.shape(node))
        return axis - rank if axis >= 0 else axis

    def op_Softmax(self, node, ins, a, op="softmax"):
        self.add(node, op, [ins[0]], {"axis": self._neg_axis(node, int(a.get("axis", -1)))})

    def op_LogSoftmax(self, node, ins, a):
        self.op_Softmax(node, ins, a, op="log_softmax")

    def op_Gelu(self, node, ins, a):
        self.add(node, "gelu", [ins[0]], {"approximate": a.get("approximate", "none")})

    def op_Where(self, node, ins, a):
        self.add(node, "where", [self.operand(i) for i in ins])

    def op_LayerNormalization(self, node, ins, a):
        rank = len(self.shape(node))
        axis = int(a.get("axis", -1)) % rank
        if len(node.output) > 1 and any(node.output[1:]):
            raise self.err(node, "mean/inv-std outputs are not supported")
        w = self.operand(ins[1]) if len(ins) > 1 and ins[1] else None
        bias = self.operand(ins[2]) if len(ins) > 2 and ins[2] else None
        self.add(node, "layernorm", [ins[0]], {"eps": float(a.get("epsilon", 1e-5)), "normalized_dims": rank - axis},
                 w, bias)

    def op_BatchNormalization(self, node, ins, a):
        x, w, bias, mean, var = ins[:5]
        self.add(node, "batchnorm", [x, self.operand(mean), self.operand(var)], {"eps": float(a.get("epsilon", 1e-5))},
                 self.operand(w), self.operand(bias))

    def _pool(self, node, ins, a, op):
        k = tuple(int(v) for v in a["kernel_shape"])
        nd = len(k)
        pads = list(a.get("pads", [0] * 2 * nd))
        if pads[:nd] != pads[nd:] or a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise self.err(node, f"asymmetric or automatic padding {pads} is not supported")
        attrs = {"kernel": k, "stride": tuple(a.get("strides", [1] * nd)), "padding": tuple(pads[:nd]),
                 "ceil_mode": bool(a.get("ceil_mode", 0))}
        if op == "maxpool":
            attrs["dilation"] = tuple(a.get("dilations", [1] * nd))
        else:
            attrs["count_include_pad"] = bool(a.get("count_include_pad", 0))
        self.add(node, op, [ins[0]], attrs)

    def op_MaxPool(self, node, ins, a):
        if len(node.output) > 1 and node.output[1]:
            raise self.err(node, "the Indices output is not supported")
        self._pool(node, ins, a, "maxpool")

    def op_AveragePool(self, node, ins, a):
        self._pool(node, ins, a, "avgpool")

    def op_GlobalAveragePool(self, node, ins, a):
        nd = len(self.shape(node)) - 2
        self.add(node, "mean", [ins[0]], {"axes": tuple(range(-nd, 0)), "keepdim": True})

    def op_ReduceMean(self, node, ins, a):
        axes = a.get("axes") or (self.consts[ins[1]].tolist() if len(ins) > 1 and ins[1] else None)
        rank = len(self.b.values[self.b.resolve(ins[0])])
        axes = list(range(rank)) if axes is None else axes
        self.add(node, "mean", [ins[0]], {"axes": tuple(sorted(int(x) - rank if x >= 0 else int(x) for x in axes)),
                                          "keepdim": bool(a.get("keepdims", 1))})

    def op_Transpose(self, node, ins, a):
        rank = len(self.shape(node))
        perm = tuple(int(p) for p in a.get("perm", range(rank - 1, -1, -1)))
        if perm == tuple(range(rank)):
            self.b.alias[node.output[0]] = ins[0]
        else:
            self.add(node, "transpose", [ins[0]], {"perm": perm})

    def op_Gather(self, node, ins, a):
        if ins[0] in self.consts and ins[1] not in self.consts and self.consts[ins[0]].ndim == 2 and not a.get("axis", 0):
            self.add(node, "embedding", [ins[1]], {}, self.operand(ins[0]))  # a table lookup
            return
        if ins[1] not in self.consts or self.consts[ins[1]].ndim != 0:
            raise self.err(node, "only a Gather of one constant index (a select) is supported")
        x_shape = self.b.values[self.b.resolve(ins[0])]
        axis = int(a.get("axis", 0)) % len(x_shape)
        self.add(node, "select", [ins[0]], {"axis": axis, "index": int(self.consts[ins[1]]) % x_shape[axis]})

    def op_Slice(self, node, ins, a):
        vals = [self.consts.get(i) if i else None for i in ins[1:]]
        if any(v is None for v in vals[:2]) or any(i and i not in self.consts for i in ins[1:]):
            raise self.err(node, "only constant slice bounds are supported")
        starts, ends = [int(v) for v in np.asarray(vals[0]).tolist()], [int(v) for v in np.asarray(vals[1]).tolist()]
        x = ins[0]
        x_shape = self.b.values[self.b.resolve(x)]
        axes = vals[2].tolist() if len(vals) > 2 and vals[2] is not None else list(range(len(starts)))
        steps = vals[3].tolist() if len(vals) > 3 and vals[3] is not None else [1] * len(starts)
        if len(starts) != 1:
            raise self.err(node, "a Slice over several axes is not supported")
        axis = int(axes[0]) % len(x_shape)
        s, e, st = slice(int(starts[0]), int(ends[0]), int(steps[0])).indices(x_shape[axis])
        self.add(node, "slice", [x], {"axis": axis, "start": s, "end": e, "step": st})

    def op_Concat(self, node, ins, a):
        self.add(node, "concat", [self.operand(i) for i in ins], {"axis": int(a["axis"]) % len(self.shape(node))})

    def op_Split(self, node, ins, a):
        axis = int(a.get("axis", 0))
        shapes = [self.shape(node, k) for k in range(len(node.output))]
        axis %= len(shapes[0])
        self.b.add(node.output[0], "split", [ins[0]], [(o, s) for o, s in zip(node.output, shapes)],
                   {"axis": axis, "sizes": tuple(s[axis] for s in shapes)})

    def op_Expand(self, node, ins, a):
        if ins[0] in self.consts:
            self.consts[node.output[0]] = np.broadcast_to(self.consts[ins[0]], self.shape(node)).copy()
        else:
            self.add(node, "expand", [ins[0]], {"shape": self.shape(node)})
