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
    w = weight.detach().float().reshape(weight.shape[0], -1).abs()  # (out, in): one row per column
    return float((w / w.amax(dim=1, keepdim=True).clamp(min=1e-30)).mean())


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
    layers (``nn.Linear``, ``nn.Conv1d/2d`` and their analog versions) in call order.

    ``n_mvm`` is per sample (divided by the batch size). Input statistics are measured on
    the DAC-normalised inputs (per-vector abs-max, as the chip's noise management does).
    """
    if not isinstance(example_input, torch.Tensor) or example_input.ndim < 2:
        raise ValueError("example_input must be a tensor with a batch dimension first, "
                         f"got {getattr(example_input, 'shape', type(example_input).__name__)}")
    batch = example_input.shape[0]
    found: list[LayerWork] = []
    names = {m: n for n, m in model.named_modules()}

    def hook(mod, inputs, output):
        x = _unwrap_input(inputs)
        if isinstance(mod, nn.Linear):
            vecs = x.reshape(-1, mod.in_features)
            found.append(LayerWork(names[mod], "linear", mod.in_features, mod.out_features,
                                   max(1, vecs.shape[0] // batch), *_stats(vecs), w_mean_abs=_w_stat(mod.weight)))
        else:  # convolution: im2col rows
            k = mod.in_channels // mod.groups * math.prod(mod.kernel_size)
            positions = math.prod(output.shape[2:])
            if isinstance(mod, nn.Conv2d) and mod.groups == 1:
                cols = _im2col(mod, x)
                stats = _stats(cols.transpose(1, 2).reshape(-1, k))
            else:
                stats = _stats(x.reshape(x.shape[0], -1))
            # groups > 1: one K x (C_out/groups) matrix per group, each applied per position
            found.append(LayerWork(names[mod], "conv", k, mod.out_channels // mod.groups,
                                   positions * mod.groups, *stats, groups=mod.groups,
                                   w_mean_abs=_w_stat(mod.weight)))

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    try:
        with torch.no_grad():
            was = model.training
            model.eval()
            model(example_input)
            model.train(was)
    finally:
        for h in handles:
            h.remove()
    return found
