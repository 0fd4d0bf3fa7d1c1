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

from typing import cast

import torch
from torch import nn

__all__ = ["MoEBlock", "measured_density", "choice_density", "lm_density"]


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
    with torch.no_grad():
        _, idx = block.route(x.reshape(-1, x.shape[-1]))
    return choice_density(idx, len(block.experts))


def choice_density(idx: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Expert-choice statistics of recorded choices ``idx`` (``(tokens, top_k)``, top-1 or
    top-2): ``E`` frequencies, or the symmetric ``E x E`` co-activation with zero diagonal,
    summing to 1 (float64)."""
    if idx.ndim != 2 or idx.shape[1] not in (1, 2):
        raise ValueError(f"choice_density: expert choices must be (tokens, 1 or 2), got {tuple(idx.shape)}")
    if idx.shape[1] == 1:
        p = torch.bincount(idx[:, 0], minlength=n_experts).double()
    else:
        p = torch.zeros(n_experts, n_experts, dtype=torch.float64)
        p.index_put_((idx[:, 0], idx[:, 1]), torch.ones(idx.shape[0], dtype=torch.float64), accumulate=True)
        p = p + p.T
    return p / p.sum()


def lm_density(lm: nn.Module, ids: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """Per-layer expert-choice statistics of a language model's real gates on text ``ids``
    (``(windows, length)`` token ids): every module with ``route`` and ``last_index`` (e.g.
    :class:`aimc.workloads.moe_lm.MoEFeedForward`) records its choices while ``lm`` reads the
    text; the result stacks :func:`choice_density` per MoE layer in model order
    (``(layers, E)`` or ``(layers, E, E)``), the ``density`` of :class:`~aimc.workloads.llm3d.sim.Router`.

    Example:
        >>> from aimc.workloads.moe_lm import TinyLM
        >>> lm = TinyLM(vocab=20, d=16, n_layers=2, n_heads=2, hidden=16, context=8, n_experts=4, top_k=2, seed=0)
        >>> p = lm_density(lm, torch.randint(0, 20, (10, 8), generator=torch.Generator().manual_seed(0)))
        >>> tuple(p.shape), [round(float(s), 6) for s in p.sum(dim=(1, 2))]
        ((2, 4, 4), [1.0, 1.0])
    """
    gates = [m for m in lm.modules() if hasattr(m, "route") and hasattr(m, "last_index")]
    if not gates:
        raise ValueError("lm_density: the model has no MoE layer (no module with route() and last_index)")
    seen: list[list[torch.Tensor]] = [[] for _ in gates]
    was = lm.training
    lm.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(ids), batch):
                lm(ids[i: i + batch])
                for k, g in enumerate(gates):
                    seen[k].append(cast(torch.Tensor, g.last_index))
    finally:
        lm.train(was)
    return torch.stack([choice_density(torch.cat(s), int(cast(int, g.n_experts))) for s, g in zip(seen, gates)])
