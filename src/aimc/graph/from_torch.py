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
            env[node] = em.emit(op, list(args), dict(kwargs), node.name, _shape_of(node.meta.get("val")), scope)
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
    if isinstance(mod, nn.Softmax):
        return "softmax", [x[0], mod.dim], {}
    raise CaptureError(f"node {target!r}: module {type(mod).__name__} is not supported by the torch.fx route")


def _from_fx(model: nn.Module, xs: tuple[torch.Tensor, ...], reason: str) -> Graph:
    try:
        gm = fx.symbolic_trace(model)
    except Exception as e:
        raise CaptureError(f"capture: torch.export failed ({reason}) and torch.fx.symbolic_trace failed too "
                           f"({type(e).__name__}: {' '.join(str(e).split())[:300]})") from e
    with torch.no_grad():
        fx.passes.shape_prop.ShapeProp(gm).propagate(*xs)
    b = GraphBuilder("torch.fx")
    em = TorchEmitter(b)
    env: dict[fx.Node, Any] = {}
    for node in gm.graph.nodes:
        meta = node.meta.get("tensor_meta")
        shape: Any = (tuple(int(s) for s in meta.shape) if hasattr(meta, "shape")
                 else [tuple(int(s) for s in m.shape) for m in meta] if isinstance(meta, (list, tuple)) else None)
        if node.op == "placeholder":
            name = b.unique(node.name)
            b.values[name] = shape
            b.inputs.append(name)
            env[node] = Act(name, shape)
            continue
        if node.op == "output":
            _outputs(b, fx.map_arg(node.args[0], lambda n: env[n]))
            continue
        if node.op == "get_attr":
            env[node] = Const(operator.attrgetter(node.target)(gm), str(node.target))
            continue
        args, kwargs = fx.map_arg((node.args, node.kwargs), lambda n: env[n])
        if not node.users:
            continue  # dead code (e.g. a logging call)
        if node.op == "call_module":
            op, args, kwargs = _module_call(gm.get_submodule(node.target), str(node.target), list(args), kwargs)
            scope = str(node.target)
        elif node.op == "call_method":
            op, scope = str(node.target), ""
        else:
            if node.target is operator.getitem and isinstance(args[0], (list, tuple)):
                env[node] = args[0][args[1]]
                continue
            op = _FX_FUNCS.get(node.target) or str(getattr(node.target, "__name__", node.target))
            scope = ""
        if op == "dim" or op == "size":
            raise CaptureError(f"node {node.name!r}: shape arithmetic ({op}) is not supported by the torch.fx route")
        env[node] = em.emit(op, list(args), dict(kwargs), node.name, shape, scope)
    return b.build()
