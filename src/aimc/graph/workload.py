"""What a model asks of the hardware: one matrix-vector workload per weight layer.

Every cost model (analog chip, digital IMC, GPU/CPU) prices the same list of
:class:`LayerWork`: a weight matrix of ``in_features x out_features`` (a convolution as
its im2col matrix, ``C_in/groups * prod(kernel) x C_out``), applied ``n_mvm`` times per
inference (a convolution once per output position), with the measured mean square and
mean absolute value of its inputs (for data-dependent energy) when example inputs are given.

Example:
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 10))
    >>> work = extract_workload(net, torch.randn(1, 1, 8, 8))
    >>> [(w.name, w.in_features, w.out_features, w.n_mvm) for w in work]
    [('0', 9, 4, 36), ('2', 144, 10, 1)]
    >>> work[1].macs
    1440
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["LayerWork", "extract_workload", "mvm_workload"]


@dataclass(frozen=True)
class LayerWork:
    """One weight layer as matrix-vector products.

    Attributes:
        name: module path in the model (``"mvm"`` for a bare matrix).
        kind: ``linear``, ``conv`` or ``matmul``.
        in_features: MVM input length K (rows of the crossbar mapping).
        out_features: MVM output length N (columns).
        n_mvm: MVMs per inference (batch 1).
        x_mean_sq: mean of ``x**2`` over the layer's inputs, normalised by the square of
            each vector's abs-max (what the DAC sees, in [0, 1]); ``None`` if unmeasured.
        x_mean_abs: mean of ``|x|`` under the same normalisation; ``None`` if unmeasured.
        groups: convolution groups (the matrix is block diagonal; K is per group).
        w_mean_abs: mean ``|w|`` normalised by each output column's abs-max (what the
            conductances encode, in [0, 1]; for data-dependent array energy); ``None`` if unknown.
    """

    name: str
    kind: str
    in_features: int
    out_features: int
    n_mvm: int
    x_mean_sq: float | None = None
    x_mean_abs: float | None = None
    groups: int = 1
    w_mean_abs: float | None = None

    def __post_init__(self):
        for f in ("in_features", "out_features", "n_mvm", "groups"):
            if getattr(self, f) < 1:
                raise ValueError(f"LayerWork.{f} must be >= 1, got {getattr(self, f)} (layer {self.name!r})")

    @property
    def label(self) -> str:
        """What the layer is, for tables and plots: ``name: kind KxN`` (e.g. ``0: conv 9x16``)."""
        groups = f"x{self.groups}g" if self.groups > 1 else ""
        return f"{self.name}: {self.kind} {self.in_features}x{self.out_features}{groups}"

    @property
    def n_weights(self) -> int:
        """Weights of the layer (K*N)."""
        return self.in_features * self.out_features

    @property
    def macs(self) -> int:
        """Multiply-accumulates per inference (K*N*n_mvm)."""
        return self.n_weights * self.n_mvm


def mvm_workload(rows: int, cols: int, n_mvm: int = 1) -> list[LayerWork]:
    """One fully used ``rows x cols`` matrix streaming ``n_mvm`` input vectors."""
    return [LayerWork("mvm", "matmul", int(rows), int(cols), int(n_mvm))]


def _unwrap_input(inputs) -> torch.Tensor:
    return inputs[0] if isinstance(inputs, tuple) else inputs


def _stats(x: torch.Tensor) -> tuple[float, float]:
    x = x.detach().float().reshape(x.shape[0], -1) if x.ndim > 1 else x.detach().float()[None]
    amax = x.abs().amax(dim=1, keepdim=True).clamp(min=1e-30)
    xn = x / amax
    return float((xn ** 2).mean()), float(xn.abs().mean())


def _w_stat(weight: torch.Tensor) -> float:
    """Mean of ``|w|`` with each output row divided by its abs-max: the sum over rows of
    ``sum|w_row| / max|w_row|`` over the element count (two reductions, no temporary copy)."""
    w = weight.detach().float().reshape(weight.shape[0], -1)  # (out, in): one row per column
    lo, hi = torch.aminmax(w, dim=1)
    amax = torch.maximum(-lo, hi).clamp(min=1e-30)
    return float((torch.linalg.vector_norm(w, 1, dim=1) / amax).sum() / w.numel())


def _im2col(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """The im2col matrix of a 2-d convolution's input, ``(B, K, positions)``, for numeric and
    for ``padding="same"``/``"valid"`` (zero-padded as the convolution pads it)."""
    padding = conv.padding
    if isinstance(padding, str):  # "valid": none; "same": total d*(k-1) per dim, extra on the right
        pads: list[int] = []
        for k, d in zip(reversed(conv.kernel_size), reversed(conv.dilation)):
            total = d * (k - 1) if padding == "same" else 0
            pads += [total // 2, total - total // 2]
        x, padding = nn.functional.pad(x, pads), (0, 0)
    return nn.functional.unfold(x, conv.kernel_size, conv.dilation, padding, conv.stride)


def extract_workload(model: nn.Module, example_input: torch.Tensor) -> list[LayerWork]:
    """Run ``model`` once on ``example_input`` (batch dimension first) and list its weight
    layers in first-call order: ``nn.Linear``, ``nn.Conv1d/2d/3d``, ``nn.ConvTranspose*``,
    ``nn.LSTM/GRU/RNN`` (per layer and direction: the input-hidden and hidden-hidden
    matrices, and an LSTM's projection, each applied once per time step) and their analog
    versions.

    ``n_mvm`` is per sample (divided by the batch size). A module called several times
    (tied, or a recurrent step) is one entry, its tiles reused: ``n_mvm`` sums its calls.
    Input statistics are measured on the DAC-normalised inputs (per-vector abs-max, as the
    chip's noise management does), averaged over the calls; the hidden-state inputs of a
    digital recurrent layer are not visible (fused kernel) and stay ``None``.

    Example:
        >>> work = extract_workload(nn.LSTM(8, 16, batch_first=True), torch.randn(2, 5, 8))  # (B, T, in)
        >>> [(w.name, w.in_features, w.out_features, w.n_mvm) for w in work]
        [('l0.ih', 8, 64, 5), ('l0.hh', 16, 64, 5)]
    """
    return [w for w, _ in _collect(model, example_input)]


_RNN_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _collect(model: nn.Module, example_input: torch.Tensor) -> list[tuple[LayerWork, int]]:
    """``(LayerWork, unique input elements per sample)`` per weight matrix (see above)."""
    if not isinstance(example_input, torch.Tensor) or example_input.ndim < 2:
        raise ValueError("example_input must be a tensor with a batch dimension first, "
                         f"got {getattr(example_input, 'shape', type(example_input).__name__)}")
    batch = example_input.shape[0]
    names = {m: n for n, m in model.named_modules()}
    acc: dict[tuple, dict] = {}  # insertion order = first call

    def add(key, name, kind, k, n, n_mvm, x_el, w, stats=None, groups=1):
        a = acc.get(key)
        if a is None:
            a = acc[key] = dict(name=name, kind=kind, k=k, out=n, groups=groups, calls=0, sq=0.0, ab=0.0,
                                measured=True, x_el=0, w=_w_stat(w))
        a["calls"], a["x_el"] = a["calls"] + n_mvm, a["x_el"] + x_el
        if stats is None:
            a["measured"] = False
        else:
            a["sq"], a["ab"] = a["sq"] + stats[0] * n_mvm, a["ab"] + stats[1] * n_mvm

    def rnn(mod, x):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"extract_workload: {names[mod] or type(mod).__name__} got a packed sequence; "
                             "pass a padded tensor")
        vecs = x.reshape(-1, mod.input_size)
        steps = max(1, vecs.shape[0] // batch)  # time steps per sample
        g, h, p = _RNN_GATES[mod.mode], mod.hidden_size, getattr(mod, "proj_size", 0) or mod.hidden_size
        dirs = 2 if mod.bidirectional else 1
        for layer in range(mod.num_layers):
            for d in range(dirs):
                sfx = f"l{layer}{'_reverse' if d else ''}"
                k_in = mod.input_size if layer == 0 else dirs * p
                stats = _stats(vecs) if layer == 0 else None
                base = f"{names[mod]}.{sfx}" if names[mod] else sfx
                add((mod, sfx, "ih"), f"{base}.ih", "linear", k_in, g * h, steps, steps * k_in,
                    getattr(mod, f"weight_ih_{sfx}"), stats)
                add((mod, sfx, "hh"), f"{base}.hh", "linear", p, g * h, steps, steps * p, getattr(mod, f"weight_hh_{sfx}"))
                if p != h:
                    add((mod, sfx, "hr"), f"{base}.hr", "linear", h, p, steps, steps * h, getattr(mod, f"weight_hr_{sfx}"))

    def hook(mod, inputs, output):
        x = _unwrap_input(inputs)
        if isinstance(mod, nn.RNNBase):
            return rnn(mod, x)
        x_el = max(1, x.numel() // batch)
        if isinstance(mod, nn.Linear):
            vecs = x.reshape(-1, mod.in_features)
            add((mod,), names[mod], "linear", mod.in_features, mod.out_features, max(1, vecs.shape[0] // batch),
                x_el, mod.weight, _stats(vecs))
        elif isinstance(mod, nn.modules.conv._ConvTransposeNd):  # one MVM per input pixel
            vecs = x.movedim(1, -1).reshape(-1, mod.in_channels)
            positions = max(1, vecs.shape[0] // batch)
            add((mod,), names[mod], "conv", mod.in_channels // mod.groups,
                mod.out_channels // mod.groups * math.prod(mod.kernel_size), positions * mod.groups, x_el,
                mod.weight, _stats(vecs), groups=mod.groups)
        else:  # convolution: im2col rows
            k = mod.in_channels // mod.groups * math.prod(mod.kernel_size)
            positions = math.prod(output.shape[2:])
            if isinstance(mod, nn.Conv2d) and mod.groups == 1:
                cols = _im2col(mod, x)
                stats = _stats(cols.transpose(1, 2).reshape(-1, k))
            else:
                stats = _stats(x.reshape(x.shape[0], -1))
            # groups > 1: one K x (C_out/groups) matrix per group, each applied per position
            add((mod,), names[mod], "conv", k, mod.out_channels // mod.groups, positions * mod.groups, x_el,
                mod.weight, stats, groups=mod.groups)

    def mha(mod, args, kwargs, output):
        """``nn.MultiheadAttention`` reads its weights inside ``F.multi_head_attention_forward``
        (its ``out_proj`` is never called), so no Linear hook sees them: list the q/k/v and
        output projections as :class:`~aimc.nn.AnalogMultiheadAttention` names them."""
        names_in = ("query", "key", "value")
        q, k, v = (args[i] if len(args) > i else kwargs[n] for i, n in enumerate(names_in))
        base = names[mod]
        w_q, w_k, w_v = (mod.in_proj_weight.chunk(3) if mod._qkv_same_embed_dim
                         else (mod.q_proj_weight, mod.k_proj_weight, mod.v_proj_weight))
        for sfx, x, w in (("q_proj", q, w_q), ("k_proj", k, w_k), ("v_proj", v, w_v), ("out_proj", q, mod.out_proj.weight)):
            k_in = w.shape[1]
            vecs = x.reshape(-1, x.shape[-1]) if sfx != "out_proj" else None
            n_vec = (x.numel() // x.shape[-1])
            add((mod, sfx), f"{base}.{sfx}" if base else sfx, "linear", k_in, w.shape[0], max(1, n_vec // batch),
                max(1, n_vec * k_in // batch), w, _stats(vecs) if vecs is not None else None)

    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.modules.conv._ConvTransposeNd, nn.RNNBase)
    mhas = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    inside = {id(m.out_proj) for m in mhas}  # called by name only when its parent is not
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds) and id(m) not in inside]
    handles += [m.register_forward_hook(mha, with_kwargs=True) for m in mhas]
    try:
        with torch.no_grad():
            was = model.training
            model.eval()
            model(example_input)
            model.train(was)
    finally:
        for h in handles:
            h.remove()
    out = []
    for a in acc.values():
        calls = a["calls"]
        sq, ab = (a["sq"] / calls, a["ab"] / calls) if a["measured"] else (None, None)
        out.append((LayerWork(a["name"], a["kind"], a["k"], a["out"], calls, sq, ab, groups=a["groups"],
                              w_mean_abs=a["w"]), max(1, a["x_el"])))
    return out
