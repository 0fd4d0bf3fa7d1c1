"""ONNX constant folding and shape inference for :mod:`aimc.graph.from_onnx`.

:func:`fold_constants` runs ``onnx.shape_inference`` and replaces every node whose inputs
are all constants (``Constant``, ``Shape`` of a known shape, arithmetic on shape tensors,
a ``Transpose`` of a weight, ...) by an initializer, until nothing folds: the shape
sub-graphs of a dynamic-batch export become constants at batch 1.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from aimc.graph.node import CaptureError

__all__ = ["FOLD", "attrs", "fold_constants", "shapes"]

_ONNX_NP: dict[int, Any] = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64}
FOLD: dict[str, Any] = {
    "Transpose": lambda x, a: [np.transpose(x[0], a.get("perm"))],
    "Reshape": lambda x, a: [x[0].reshape([d if d != 0 else x[0].shape[i] for i, d in enumerate(x[1].tolist())])],
    "Unsqueeze": lambda x, a: [np.expand_dims(x[0], tuple(x[1].tolist()) if len(x) > 1 else tuple(a["axes"]))],
    "Squeeze": lambda x, a: [np.squeeze(x[0], tuple(x[1].tolist()) if len(x) > 1 else tuple(a.get("axes", ())) or None)],
    "Cast": lambda x, a: [x[0].astype(_ONNX_NP.get(a["to"], np.float32))],
    "Identity": lambda x, a: [x[0]],
    "Gather": lambda x, a: [np.take(x[0], x[1], axis=a.get("axis", 0))],
    "Concat": lambda x, a: [np.concatenate(x, axis=a["axis"])],
    "Add": lambda x, a: [x[0] + x[1]], "Sub": lambda x, a: [x[0] - x[1]], "Mul": lambda x, a: [x[0] * x[1]],
    "Div": lambda x, a: [x[0] / x[1] if x[0].dtype.kind == "f" else x[0] // x[1]],
    "Sqrt": lambda x, a: [np.sqrt(x[0])], "Neg": lambda x, a: [-x[0]], "Reciprocal": lambda x, a: [1.0 / x[0]],
    "Slice": lambda x, a: [_np_slice(*x)],
    "ConstantOfShape": lambda x, a: [np.full(x[0].tolist(), a["value"].reshape(-1)[0] if "value" in a else 0.0,
                                             dtype=a["value"].dtype if "value" in a else np.float32)],
    "Range": lambda x, a: [np.arange(x[0], x[1], x[2])],
    "Mod": lambda x, a: [np.fmod(x[0], x[1]) if a.get("fmod", 0) else np.mod(x[0], x[1])],
    "Equal": lambda x, a: [np.equal(x[0], x[1])], "Less": lambda x, a: [np.less(x[0], x[1])],
    "Greater": lambda x, a: [np.greater(x[0], x[1])], "Not": lambda x, a: [np.logical_not(x[0])],
    "Where": lambda x, a: [np.where(x[0], x[1], x[2])], "Floor": lambda x, a: [np.floor(x[0])],
    "Ceil": lambda x, a: [np.ceil(x[0])], "Min": lambda x, a: [np.minimum.reduce(x)],
    "Max": lambda x, a: [np.maximum.reduce(x)], "Abs": lambda x, a: [np.abs(x[0])],
    "Pow": lambda x, a: [np.power(x[0], x[1])],
}

def _np_slice(x, starts, ends, axes=None, steps=None):
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    idx = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        idx[int(ax)] = slice(int(s), int(e), int(st))
    return x[tuple(idx)]


def shapes(graph) -> dict[str, tuple[int, ...]]:
    out = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            out[vi.name] = tuple(int(d.dim_value) for d in t.shape.dim)
    return out


def fold_constants(model, path: str):
    """Infer shapes, fold every node whose inputs are constants (``Shape`` of a known shape
    too) into an initializer, and repeat until nothing folds (shape sub-graphs of a
    dynamic-batch export become constants at batch 1)."""
    from onnx import numpy_helper, shape_inference
    for _ in range(16):
        try:
            model = shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
        except Exception as e:
            raise CaptureError(f"{path}: ONNX shape inference failed ({' '.join(str(e).split())[:300]})") from e
        g = model.graph
        known, protos = shapes(g), {i.name: i for i in g.initializer}
        cache: dict[str, np.ndarray] = {}
        get = lambda n: cache[n] if n in cache else cache.setdefault(n, numpy_helper.to_array(protos[n]))  # noqa: E731
        keep, new = [], []
        for node in g.node:
            ins, outs = [i for i in node.input], None
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                a = attrs(node)
                outs = [np.asarray(next(iter(a.values())))] if a else None
            elif node.op_type == "Shape" and ins[0] in known:
                a = attrs(node)
                outs = [np.array(known[ins[0]], dtype=np.int64)[a.get("start", 0):a.get("end")]]
            elif node.op_type in FOLD and ins and all(i in protos or i == "" for i in ins):
                try:
                    outs = FOLD[node.op_type]([get(i) for i in ins if i], attrs(node))
                except Exception as e:
                    raise CaptureError(f"{path}: node {node.name or node.output[0]!r} ({node.op_type}): cannot fold "
                                       f"its constant inputs ({type(e).__name__}: {e})") from e
            if outs is None:
                keep.append(node)
                continue
            for o, v in zip(node.output, outs):
                v = np.asarray(v)
                cache[o] = v
                protos[o] = numpy_helper.from_array(v, o)
                new.append(protos[o])
        if not new:
            return model
        del g.node[:]
        g.node.extend(keep)
        g.initializer.extend(new)
        del g.value_info[:]
    return model


def attrs(node) -> dict[str, Any]:
    from onnx import helper, numpy_helper
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if a.type == a.TENSOR:
            v = numpy_helper.to_array(v)
        elif isinstance(v, bytes):
            v = v.decode()
        out[a.name] = v
    return out


