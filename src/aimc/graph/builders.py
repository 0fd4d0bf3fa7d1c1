"""Workload builders beyond :func:`aimc.graph.workload.extract_workload`: a transformer
block, convolution input sizes, and which matrices can stay in the array.

:class:`LayerWorkIO` is a :class:`~aimc.graph.workload.LayerWork` (every cost model accepts
it) with two more facts the von Neumann and digital-IMC baselines use:

* ``x_elements``: the *unique* input activations a layer reads per inference. A
  convolution's im2col matrix (``in_features * n_mvm``) repeats each input pixel up to
  ``kernel_h * kernel_w`` times; a GPU reads each from DRAM once. ``None`` = im2col size
  (exact for linear layers, an upper bound for convolutions).
* ``stationary``: ``False`` for an activation x activation product (attention's
  ``Q K^T`` and ``P V``), whose "weight" operand is computed at run time per input. It
  cannot be programmed into PCM/RRAM once and read forever (program-and-verify takes
  microseconds per row and wears the device), so an analog chip runs it in its digital
  units; on a GPU its "weights" are activations, read per sample, not amortised over
  the batch; a digital SRAM IMC macro must rewrite its cells every inference.

Example:
    >>> work = transformer_block_workload(d_model=64, n_heads=4, d_ff=256, seq_len=16)
    >>> [(w.name, w.kind, w.stationary) for w in work][3:5]
    [('attn.qk', 'matmul', False), ('attn.av', 'matmul', False)]
    >>> sum(w.macs for w in work) == 16 * (4 * 64 * 64 + 2 * 64 * 256) + 2 * 16 * 16 * 64
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from aimc.graph.workload import LayerWork, _collect
__all__ = ["LayerWorkIO", "extract_workload_io", "transformer_block_workload", "mlp_workload",
           "weights_stored", "x_elements", "y_elements", "is_stationary"]


@dataclass(frozen=True)
class LayerWorkIO(LayerWork):
    """A :class:`LayerWork` with its unique input size and whether its matrix is static.

    Attributes:
        x_elements: unique input activations per inference; ``None`` = ``in_features * n_mvm``.
        stationary: ``True`` if the matrix is a trained weight (programmable once).
    """

    x_elements: int | None = None
    stationary: bool = True

    def __post_init__(self):
        super().__post_init__()
        if self.x_elements is not None and self.x_elements < 1:
            raise ValueError(f"LayerWorkIO.x_elements must be >= 1 or None, got {self.x_elements} "
                             f"(layer {self.name!r})")


def weights_stored(w: LayerWork) -> int:
    """Matrix elements held per inference: ``in * out * groups`` (``n_weights`` is per group)."""
    return w.in_features * w.out_features * w.groups


def x_elements(w: LayerWork) -> int:
    """Unique input activations per inference (im2col size when unknown)."""
    x = getattr(w, "x_elements", None)
    return int(x) if x is not None else w.in_features * w.n_mvm


def y_elements(w: LayerWork) -> int:
    """Output activations per inference (``out_features * n_mvm``; groups are in ``n_mvm``)."""
    return w.out_features * w.n_mvm


def is_stationary(w: LayerWork) -> bool:
    """Whether the layer's matrix is a trained weight (``LayerWork`` without the flag: yes)."""
    return bool(getattr(w, "stationary", True))


def extract_workload_io(model: nn.Module, example_input: torch.Tensor) -> list[LayerWork]:
    """:func:`~aimc.graph.workload.extract_workload` plus each layer's unique input size.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
        >>> [w.x_elements for w in extract_workload_io(net, torch.randn(2, 1, 8, 8))]
        [64, 144]
    """
    return [LayerWorkIO(**{f: getattr(w, f) for f in w.__dataclass_fields__}, x_elements=x_el)
            for w, x_el in _collect(model, example_input)]


def transformer_block_workload(d_model: int = 512, n_heads: int = 8, d_ff: int = 2048,
                               seq_len: int = 128) -> list[LayerWork]:
    """One encoder block (pre-norm, no KV cache) processing ``seq_len`` tokens.

    Weight layers: ``attn.q``, ``attn.k``, ``attn.v``, ``attn.out`` (``d x d``) and
    ``ffn.up`` (``d x d_ff``), ``ffn.down`` (``d_ff x d``), each applied once per token.
    Activation x activation products, ``stationary=False``:
    ``attn.qk`` = ``Q K^T``: per head a ``d_head x seq_len`` matrix (the keys) applied to
    ``seq_len`` query vectors (``groups = n_heads``); ``attn.av`` = ``P V``: per head a
    ``seq_len x d_head`` matrix (the values) applied to ``seq_len`` rows of attention
    probabilities. Softmax, layer norm, residuals and GELU are not matrix products and are
    not listed (they are O(seq_len * d) element-wise operations).

    Args:
        d_model: model width; must be divisible by ``n_heads``.
        n_heads: attention heads.
        d_ff: feed-forward width.
        seq_len: tokens per inference.

    Example:
        >>> work = transformer_block_workload(512, 8, 2048, 128)
        >>> sum(weights_stored(w) for w in work if w.stationary)   # 4 d^2 + 2 d d_ff
        3145728
    """
    for name, v in (("d_model", d_model), ("n_heads", n_heads), ("d_ff", d_ff), ("seq_len", seq_len)):
        if int(v) < 1:
            raise ValueError(f"transformer_block_workload: {name} must be >= 1, got {v}")
    if d_model % n_heads:
        raise ValueError(f"transformer_block_workload: d_model ({d_model}) must be divisible by n_heads ({n_heads})")
    d, h, t, dh = int(d_model), int(n_heads), int(seq_len), int(d_model) // int(n_heads)
    lin = lambda name, k, n: LayerWorkIO(name, "linear", k, n, t, x_elements=t * k)  # noqa: E731
    return [
        lin("attn.q", d, d), lin("attn.k", d, d), lin("attn.v", d, d),
        LayerWorkIO("attn.qk", "matmul", dh, t, t * h, groups=h, x_elements=t * d, stationary=False),
        LayerWorkIO("attn.av", "matmul", t, dh, t * h, groups=h, x_elements=h * t * t, stationary=False),
        lin("attn.out", d, d), lin("ffn.up", d, d_ff), lin("ffn.down", d_ff, d),
    ]


def mlp_workload(widths: list[int], batch_tokens: int = 1) -> list[LayerWork]:
    """Fully connected layers ``widths[i] x widths[i+1]``, each applied ``batch_tokens`` times.

    Example:
        >>> [(w.in_features, w.out_features) for w in mlp_workload([784, 256, 10])]
        [(784, 256), (256, 10)]
    """
    if len(widths) < 2:
        raise ValueError(f"mlp_workload: widths needs at least 2 entries, got {widths}")
    return [LayerWorkIO(f"fc{i}", "linear", int(k), int(n), int(batch_tokens), x_elements=int(k) * int(batch_tokens))
            for i, (k, n) in enumerate(zip(widths[:-1], widths[1:]))]


def total_macs(work: list[LayerWork]) -> int:
    """Multiply-accumulates of a workload (helper for tables)."""
    return int(math.fsum(w.macs for w in work))
