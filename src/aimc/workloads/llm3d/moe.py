"""A PyTorch mixture-of-experts feed-forward block (the functional model the 3D simulator
times), built from ``nn.Linear`` so that :func:`aimc.nn.convert` puts its experts' FFNs on analog
tiles (and its router too with ``router="analog"``; by default :mod:`aimc.nn.moe` keeps
MoE routers digital); gating (softmax, top-k, renormalisation) stays digital.

``y = sum_{i in topk(softmax(W_r x))} g_i * FFN_i(x)`` with ``g`` the top-k softmax
probabilities renormalised to sum 1 (Mixtral's gating; Jiang et al., arXiv:2401.04088),
``FFN_i(x) = W2_i act(W1_i x)``.

Example:
    >>> import torch
    >>> from aimc.nn import convert
    >>> moe = MoEBlock(16, 32, n_experts=4, top_k=2, seed=0)
    >>> x = torch.randn(3, 16)
    >>> torch.allclose(convert(moe, "ideal")(x), moe(x), atol=1e-5)
    True
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["MoEBlock"]


class MoEBlock(nn.Module):
    """Router + ``n_experts`` FFNs, top-``k`` per token (module doc).

    Args:
        d_model, d_ff: widths. n_experts, top_k: the mixture. activation: ``relu`` or ``gelu``.
        seed: weight initialisation (deterministic).
    """

    def __init__(self, d_model: int, d_ff: int, n_experts: int, top_k: int = 1, activation: str = "relu",
                 seed: int = 0):
        super().__init__()
        if not 1 <= top_k <= n_experts:
            raise ValueError(f"MoEBlock: top_k must be in [1, n_experts={n_experts}], got {top_k}")
        gen = torch.Generator().manual_seed(seed)
        self.top_k = top_k
        self.router = nn.Linear(d_model, n_experts, bias=False)
        act: nn.Module = nn.ReLU() if activation == "relu" else nn.GELU()
        self.experts = nn.ModuleList(nn.Sequential(nn.Linear(d_model, d_ff), act, nn.Linear(d_ff, d_model))
                                     for _ in range(n_experts))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) / max(1, p.shape[-1]) ** 0.5)

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weights, experts)``, each ``(tokens, top_k)``, for ``x`` of ``(tokens, d_model)``."""
        probs = torch.softmax(self.router(x), dim=-1)
        w, idx = probs.topk(self.top_k, dim=-1)
        return w / w.sum(dim=-1, keepdim=True), idx

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        w, idx = self.route(x)
        y = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            tok, slot = torch.nonzero(idx == e, as_tuple=True)
            if tok.numel():
                y.index_add_(0, tok, w[tok, slot, None] * expert(x[tok]))
        return y.reshape(shape)


def measured_density(block: MoEBlock, x: torch.Tensor) -> torch.Tensor:
    """Expert-choice statistics of ``block``'s real gate on inputs ``x`` (``(..., d_model)``):
    for top-1 the frequency of each expert (``E``), for top-2 the co-activation ``P[i, j]``
    (``E x E``, symmetric, zero diagonal), each summing to 1 -- the ``density`` of
    :class:`~aimc.workloads.llm3d.sim.Router` and of the ``top2`` placement.

    Example:
        >>> m = MoEBlock(8, 16, n_experts=4, top_k=2, seed=0)
        >>> p = measured_density(m, torch.randn(100, 8))
        >>> p.shape, round(float(p.sum()), 6), bool((p == p.T).all())
        (torch.Size([4, 4]), 1.0, True)
    """
    if block.top_k > 2:
        raise ValueError(f"measured_density: top_k must be 1 or 2, got {block.top_k}")
    e = len(block.experts)
    with torch.no_grad():
        _, idx = block.route(x.reshape(-1, x.shape[-1]))
    if block.top_k == 1:
        p = torch.bincount(idx[:, 0], minlength=e).double()
    else:
        p = torch.zeros(e, e, dtype=torch.float64)
        p.index_put_((idx[:, 0], idx[:, 1]), torch.ones(idx.shape[0], dtype=torch.float64), accumulate=True)
        p = p + p.T
    return p / p.sum()
