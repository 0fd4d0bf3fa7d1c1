"""Capture a PyTorch model: ``torch.export`` first, ``torch.fx.symbolic_trace`` as fallback.

Both routes walk a traced graph and hand each call to
:class:`~aimc.graph.torch_ops.TorchEmitter` (ATen names); the fx route translates the
standard ``nn`` leaf modules, ``torch.nn.functional`` calls and tensor methods to the same
names first, so the two routes give the same graph. The model is traced at batch 1
(``example_input[:1]``) in eval mode.
"""
from __future__ import annotations

import logging
import operator
from typing import Any

import torch
from torch import fx, nn

from aimc.graph.canon import GraphBuilder
from aimc.graph.ir import CaptureError, Graph
from aimc.graph.torch_ops import Act, Const, TorchEmitter

__all__ = ["capture_torch"]

log = logging.getLogger(__name__)


def _shape_of(val: Any) -> Any:
    if isinstance(val, torch.Tensor):
        return tuple(int(s) for s in val.shape)
    if isinstance(val, (list, tuple)):
        return [_shape_of(v) for v in val]
    return None


def _batch1(example_input: Any) -> tuple[torch.Tensor, ...]:
    xs = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    if not xs or not all(isinstance(x, torch.Tensor) and x.ndim >= 1 for x in xs):
        raise CaptureError("capture: example_input must be a tensor (or a tuple of tensors) with a batch "
                           f"dimension first, got {type(example_input).__name__}")
    return tuple(x[:1] for x in xs)


def capture_torch(model: nn.Module, example_input: Any) -> Graph:
    """Capture ``model`` (see the module docstring); ``example_input`` is batch first."""
    xs = _batch1(example_input)
    was = model.training
    model.eval()
    try:
        try:
            with torch.no_grad():
                ep = torch.export.export(model, xs)
        except Exception as e:  # torch.export raises many types; any of them sends us to fx
            reason = " ".join(f"{type(e).__name__}: {e}".split())[:300]
            log.warning("capture: torch.export failed (%s); falling back to torch.fx.symbolic_trace", reason)
            return _from_fx(model, xs, reason)
        return _from_export(ep, len(xs))
    finally:
        model.train(was)


def _from_export(ep: torch.export.ExportedProgram, n_inputs: int) -> Graph:
    b = GraphBuilder("torch.export")
    em = TorchEmitter(b)
    sig = ep.graph_signature
    fqn = {**sig.inputs_to_parameters, **sig.inputs_to_buffers, **sig.inputs_to_lifted_tensor_constants}
    tensors = {**ep.state_dict, **ep.constants}
    env: dict[fx.Node, Any] = {}
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            if node.name in fqn:
                env[node] = Const(tensors[fqn[node.name]], fqn[node.name])
            else:
                name = b.unique(node.name)
                b.values[name] = _shape_of(node.meta["val"])
                b.inputs.append(name)
                env[node] = Act(name, b.values[name])
        elif node.op == "call_function":
            args, kwargs = fx.map_arg((node.args, node.kwargs), lambda n: env[n])
            if node.target is operator.getitem:
                env[node] = args[0][args[1]]
                continue
            op = getattr(node.target, "__name__", str(node.target)).split(".")[0]
            stack = node.meta.get("nn_module_stack") or {}
            scope = list(stack.values())[-1][0] if stack else ""
            env[node] = em.emit(op, list(args), dict(kwargs), node.name, _shape_of(node.meta.get("val")), scope,
                                fn=node.target if isinstance(node.target, torch._ops.OpOverload) else None)
        elif node.op == "output":
            _outputs(b, fx.map_arg(node.args[0], lambda n: env[n]))
    return b.build()


def _outputs(b: GraphBuilder, out: Any) -> None:
    def collect(v: Any) -> None:
        if isinstance(v, Act):
            b.outputs.append(v.name)
        elif isinstance(v, (list, tuple)):
            for x in v:
                collect(x)
        elif isinstance(v, dict):
            for x in v.values():
                collect(x)
        elif v is not None and not isinstance(v, Const):
            raise CaptureError(f"capture: the model returns a {type(v).__name__}; return tensors")

    collect(out)


# -- the torch.fx fallback -------------------------------------------------------------------------
_FX_FUNCS = {torch.relu: "relu", nn.functional.relu: "relu", nn.functional.gelu: "gelu", torch.sigmoid: "sigmoid",
             torch.tanh: "tanh", nn.functional.silu: "silu", torch.exp: "exp", torch.sqrt: "sqrt",
             operator.add: "add", operator.sub: "sub", operator.mul: "mul", operator.truediv: "div", torch.add: "add",
             torch.mul: "mul", torch.flatten: "flatten", torch.matmul: "matmul", operator.matmul: "matmul",
             torch.bmm: "bmm", torch.cat: "cat", torch.softmax: "softmax", nn.functional.softmax: "softmax",
             nn.functional.linear: "linear", nn.functional.conv2d: "conv2d", nn.functional.conv1d: "conv1d",
             nn.functional.max_pool2d: "max_pool2d", nn.functional.avg_pool2d: "avg_pool2d",
             nn.functional.layer_norm: "layer_norm", torch.transpose: "transpose", torch.permute: "permute",
             torch.mean: "mean", nn.functional.dropout: "dropout", torch.reshape: "reshape",
             nn.functional.adaptive_avg_pool2d: "adaptive_avg_pool2d",
             nn.functional.scaled_dot_product_attention: "scaled_dot_product_attention"}


def _module_call(mod: nn.Module, target: str, x: list, kwargs: dict) -> tuple[str, list, dict]:
    """The ATen-style call an ``nn`` leaf module makes (its parameters as :class:`Const`)."""
    p = lambda n: Const(getattr(mod, n), f"{target}.{n}") if getattr(mod, n, None) is not None else None  # noqa: E731
    if isinstance(mod, nn.Linear):
        return "linear", [x[0], p("weight"), p("bias")], {}
    if isinstance(mod, nn.modules.conv._ConvNd) and not mod.transposed:
        nd = len(mod.kernel_size)
        return f"conv{nd}d", [x[0], p("weight"), p("bias"), mod.stride, mod.padding, mod.dilation, mod.groups], {}
    if isinstance(mod, (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.SiLU, nn.GELU)):
        op = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.SiLU: "silu", nn.GELU: "gelu"}[type(mod)]
        return op, [x[0]] + ([getattr(mod, "approximate")] if op == "gelu" else []), {}
    if isinstance(mod, nn.MaxPool2d):
        return "max_pool2d", [x[0], mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode], {}
    if isinstance(mod, nn.AvgPool2d):
        return "avg_pool2d", [x[0], mod.kernel_size, mod.stride, mod.padding, mod.ceil_mode, mod.count_include_pad], {}
    if isinstance(mod, nn.AdaptiveAvgPool2d):
        return "adaptive_avg_pool2d", [x[0], mod.output_size], {}
    if isinstance(mod, (nn.Flatten, nn.Unflatten)):
        return "flatten", [x[0]], {}
    if isinstance(mod, (nn.Dropout, nn.Identity)):
        return "dropout", [x[0]], {}
    if isinstance(mod, nn.LayerNorm):
        return "layer_norm", [x[0], mod.normalized_shape, p("weight"), p("bias"), mod.eps], {}
    if isinstance(mod, nn.modules.batchnorm._BatchNorm):
        return "batch_norm", [x[0], p("weight"), p("bias"), p("running_mean"), p("running_var"), False, 0.0, mod.eps], {}
    if isinstance(mod, nn.Embedding):
        if mod.max_norm is not None:
            raise CaptureError(f"node {target!r}: nn.Embedding with max_norm is not supported")
        return "embedding", [p("weight"), x[0]], {}
    if isinstance(mod, nn.Softmax):
        return "softmax", [x[0], mod.dim], {}
    raise CaptureError(f"node {target!r}: module {type(mod).__name__} is not supported by the torch.fx route")


def _mha(em: TorchEmitter, mod: nn.MultiheadAttention, target: str, args: list, kwargs: dict, out: str) -> list:
    """Self-attention of a batch-first ``nn.MultiheadAttention`` as the nodes ``torch.export``
    gives: the ``in_proj`` linear, heads split, scaled dot-product attention, ``out_proj``."""
    q: Any = args[0]
    k: Any = args[1] if len(args) > 1 else kwargs.get("key")
    v: Any = args[2] if len(args) > 2 else kwargs.get("value")
    masks = [kwargs.get(m) for m in ("key_padding_mask", "attn_mask")] + list(args[3:4]) + list(args[5:6])
    if (not mod.batch_first or q is not k or k is not v or any(m is not None for m in masks) or kwargs.get("is_causal")
            or not mod._qkv_same_embed_dim or mod.bias_k is not None or mod.add_zero_attn or mod.dropout):
        raise CaptureError(f"node {out!r}: the torch.fx route captures nn.MultiheadAttention only as batch-first "
                           "self-attention without masks, bias_kv, zero attention or dropout")
    b1, t, e = q.shape
    h = mod.num_heads
    dh = e // h
    w_in = mod.in_proj_weight.detach() if mod.in_proj_weight is not None else None
    assert w_in is not None  # _qkv_same_embed_dim
    bias_in = mod.in_proj_bias.detach() if mod.in_proj_bias is not None else None
    qkv = em.b.add_mvm(f"{target}.in_proj", "linear", q.name, f"{out}_qkv", (b1, t, 3 * e), w_in, bias_in)
    r = em._node(f"{out}_heads", "reshape", [qkv.outputs[0]], (b1, t, 3, h, dh), {"shape": (b1, t, 3, h, dh)})
    p = em._node(f"{out}_split", "transpose", [r.name], (3, b1, h, t, dh), {"perm": (2, 0, 3, 1, 4)})
    qs = [em._node(f"{out}_{c}", "select", [p.name], (b1, h, t, dh), {"axis": 0, "index": i}) for i, c in enumerate("qkv")]
    att = em.op_scaled_dot_product_attention(qs, {}, f"{out}_attn", (b1, h, t, dh), target)
    m = em._node(f"{out}_merge", "transpose", [att.name], (b1, t, h, dh), {"perm": (0, 2, 1, 3)})
    flat = em._node(f"{out}_flat", "reshape", [m.name], (b1, t, e), {"shape": (b1, t, e)})
    w_out = mod.out_proj.weight.detach()
    bias_out = mod.out_proj.bias.detach() if mod.out_proj.bias is not None else None
    em.b.add_mvm(f"{target}.out_proj", "linear", flat.name, out, (b1, t, e), w_out, bias_out)
    return [Act(out, (b1, t, e)), None]


def _meta_shape(meta: Any) -> Any:
    if hasattr(meta, "shape"):
        return tuple(int(s) for s in meta.shape)
    if isinstance(meta, (list, tuple)):
        return [_meta_shape(m) for m in meta]
    return None


def _from_fx(model: nn.Module, xs: tuple[torch.Tensor, ...], reason: str) -> Graph:
    try:
        gm = fx.symbolic_trace(model)
    except Exception as e:
        raise CaptureError(f"capture: torch.export failed ({reason}) and torch.fx.symbolic_trace failed too "
                           f"({type(e).__name__}: {' '.join(str(e).split())[:300]})") from e
    try:
        with torch.no_grad():
            fx.passes.shape_prop.ShapeProp(gm).propagate(*xs)
    except Exception as e:
        raise CaptureError(f"capture: torch.export failed ({reason}) and the torch.fx graph does not run on the example "
                           f"input ({type(e).__name__}: {' '.join(str(e).split())[:300]})") from e
    b = GraphBuilder("torch.fx")
    em = TorchEmitter(b)
    env: dict[fx.Node, Any] = {}
    for node in gm.graph.nodes:
        try:
            _fx_node(b, em, gm, env, node)
        except CaptureError:
            raise
        except Exception as e:  # an argument pattern the emitter does not expect
            raise CaptureError(f"node {node.name!r} ({node.target}): cannot be captured "
                               f"({type(e).__name__}: {' '.join(str(e).split())[:200]})") from e
    return b.build()


def _fx_node(b: GraphBuilder, em: TorchEmitter, gm: fx.GraphModule, env: dict, node: fx.Node) -> None:
    """Emit one node of the fx graph (its shapes from ``ShapeProp``)."""
    shape = _meta_shape(node.meta.get("tensor_meta"))
    if node.op == "placeholder":
        name = b.unique(node.name)
        b.values[name] = shape
        b.inputs.append(name)
        env[node] = Act(name, shape)
        return
    if node.op == "output":
        _outputs(b, fx.map_arg(node.args[0], lambda n: env[n]))
        return
    if node.op == "get_attr":
        env[node] = Const(operator.attrgetter(str(node.target))(gm), str(node.target))
        return
    args: Any
    kwargs: Any
    args, kwargs = fx.map_arg((node.args, node.kwargs), lambda n: env[n])
    if not node.users:
        return  # dead code (e.g. a logging call)
    if node.op == "call_module":
        mod = gm.get_submodule(str(node.target))
        if isinstance(mod, nn.MultiheadAttention):
            env[node] = _mha(em, mod, str(node.target), list(args), dict(kwargs), node.name)
            return
        op, args, kwargs = _module_call(mod, str(node.target), list(args), kwargs)
        scope = str(node.target)
    elif node.op == "call_method":
        op, scope = str(node.target), ""
    else:
        if node.target is operator.getitem and isinstance(args[0], (list, tuple)):
            env[node] = args[0][args[1]]
            return
        target: Any = node.target
        op = _FX_FUNCS.get(target) or str(getattr(target, "__name__", target))
        scope = ""
    if op in ("dim", "size") and isinstance(args[0], Act):  # batch-1 sizes; reshapes take their shape from ShapeProp
        dim = args[1] if len(args) > 1 else kwargs.get("dim")
        env[node] = len(args[0].shape) if op == "dim" else args[0].shape if dim is None else args[0].shape[dim]
        return
    fn = node.target if node.op == "call_function" and callable(node.target) else None
    env[node] = em.emit(op, list(args), dict(kwargs), node.name, shape, scope, fn=fn)
