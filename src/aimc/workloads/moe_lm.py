"""Tiny decoder language models, dense or mixture-of-experts, in plain PyTorch, and a
character-level corpus of real text (the Rotten Tomatoes review snippets of
:func:`aimc.workloads.llm.movie_review_snippets`).

:class:`TinyLM` is a pre-norm decoder (Radford et al. 2019, GPT-2 layout): token and
position embeddings, ``n_layers`` blocks of causal ``nn.MultiheadAttention`` and a
feed-forward block, a final LayerNorm and a linear head. The feed-forward block is dense
(:class:`FeedForward`, ``d -> hidden -> d`` with GELU) or an MoE
(:class:`MoEFeedForward`: a linear router, softmax, top-k, ``n_experts`` FFNs of width
``hidden``; top-k weights renormalised for ``top_k > 1`` as in Mixtral, the raw top-1
probability for ``top_k = 1`` as in the Switch Transformer, Fedus et al., JMLR 2022).
An MoE with expert width ``hidden_dense / top_k`` has the dense model's *active*
feed-forward parameters (:func:`equal_active_width`). Logits come out as ``(B, vocab, T)``
(class scores on dim 1, as ``nn.CrossEntropyLoss`` takes them), so
:func:`aimc.train.digital.train_digital` and hardware-aware fine-tuning train it as is.

Example:
    >>> import torch
    >>> lm = TinyLM(vocab=20, d=16, n_layers=1, n_heads=2, hidden=32, context=8, n_experts=4, top_k=2, seed=0)
    >>> lm(torch.zeros(2, 8, dtype=torch.long)).shape
    torch.Size([2, 20, 8])
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aimc.seeding import seeded

__all__ = ["FeedForward", "MoEFeedForward", "TinyLM", "equal_active_width", "CharCorpus",
           "perplexity"]


class FeedForward(nn.Module):
    """``fc2(gelu(fc1(x)))``, ``d -> hidden -> d``."""

    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class MoEFeedForward(nn.Module):
    """Top-k mixture of ``n_experts`` :class:`FeedForward` experts (module doc).

    ``gate`` (the router) is an ``nn.Linear(d, n_experts, bias=False)``; ``last_index``
    keeps the last forward's expert choices ``(tokens, top_k)`` for inspection.
    """

    def __init__(self, d: int, hidden: int, n_experts: int, top_k: int, seed: int | None = None):
        super().__init__()
        if not 1 <= top_k <= n_experts:
            raise ValueError(f"MoEFeedForward: top_k must be in [1, n_experts={n_experts}], got {top_k}")
        with seeded(seed):
            self.gate = nn.Linear(d, n_experts, bias=False)
            self.experts = nn.ModuleList(FeedForward(d, hidden) for _ in range(n_experts))
        self.d, self.n_experts, self.top_k = d, n_experts, top_k
        self.last_index: torch.Tensor | None = None

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``(N, d)`` -> top-k weights ``(N, k)`` and expert indices ``(N, k)``."""
        probs = F.softmax(self.gate(x).float(), dim=-1)
        w, idx = torch.topk(probs, self.top_k, dim=-1)
        if self.top_k > 1:
            w = w / w.sum(dim=-1, keepdim=True)
        return w.to(x.dtype), idx

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.d)
        w, idx = self.route(flat)
        self.last_index = idx.detach()
        out = torch.zeros_like(flat)
        for e in torch.unique(idx).tolist():
            tok, pos = torch.where(idx == e)
            out.index_add_(0, tok, self.experts[e](flat[tok]) * w[tok, pos, None])
        return out.view_as(x)


def equal_active_width(hidden_dense: int, top_k: int) -> int:
    """Expert width whose ``top_k`` active experts hold the dense FFN's parameters.

    Example:
        >>> equal_active_width(128, 2)
        64
    """
    if hidden_dense % top_k:
        raise ValueError(f"hidden_dense ({hidden_dense}) must be a multiple of top_k ({top_k})")
    return hidden_dense // top_k


class _Block(nn.Module):
    def __init__(self, d: int, n_heads: int, ffn: nn.Module):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, n_heads, batch_first=True)
        self.ffn = ffn

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.ffn(self.ln2(x))


class TinyLM(nn.Module):
    """Decoder LM (module doc): dense FFNs of width ``hidden`` if ``n_experts`` is 0, else
    MoE FFNs of ``n_experts`` experts of width ``hidden`` with ``top_k`` active."""

    mask: torch.Tensor

    def __init__(self, vocab: int, d: int, n_layers: int, n_heads: int, hidden: int, context: int,
                 n_experts: int = 0, top_k: int = 1, seed: int | None = None):
        super().__init__()
        self.context = context
        with seeded(seed):
            self.tok = nn.Embedding(vocab, d)
            self.pos = nn.Embedding(context, d)
            self.blocks = nn.ModuleList(
                _Block(d, n_heads, MoEFeedForward(d, hidden, n_experts, top_k) if n_experts else FeedForward(d, hidden))
                for _ in range(n_layers))
            self.ln = nn.LayerNorm(d)
            self.head = nn.Linear(d, vocab)
        self.register_buffer("mask", torch.triu(torch.full((context, context), float("-inf")), diagonal=1),
                             persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids`` (B, T <= context) -> logits (B, vocab, T)."""
        T = ids.shape[1]
        if T > self.context:
            raise ValueError(f"TinyLM: sequence length {T} exceeds the context {self.context}")
        x = self.tok(ids) + self.pos(torch.arange(T, device=ids.device))
        for blk in self.blocks:
            x = blk(x, self.mask[:T, :T])
        return self.head(self.ln(x)).transpose(1, 2)


class CharCorpus:
    """Character-level split of texts: the first ``train_fraction`` of snippets train, the
    rest test; characters seen fewer than ``min_count`` times in training map to one
    unknown symbol (index 0). ``windows(split, n, length, seed)`` draws ``n`` random
    windows of ``length + 1`` ids (inputs and next-character targets)."""

    def __init__(self, texts: list[str], train_fraction: float = 0.9, min_count: int = 20):
        cut = int(len(texts) * train_fraction)
        train, test = "\n".join(texts[:cut]), "\n".join(texts[cut:])
        counts: dict[str, int] = {}
        for ch in train:
            counts[ch] = counts.get(ch, 0) + 1
        self.chars = ["\0"] + sorted(c for c, n in counts.items() if n >= min_count)
        index = {c: i for i, c in enumerate(self.chars)}
        self.ids = {s: torch.tensor([index.get(c, 0) for c in t], dtype=torch.long)
                    for s, t in (("train", train), ("test", test))}

    @property
    def vocab(self) -> int:
        return len(self.chars)

    def windows(self, split: str, n: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` windows ``(n, length)`` of inputs and their targets (shifted by one)."""
        ids = self.ids[split]
        start = torch.randint(0, len(ids) - length - 1, (n,), generator=torch.Generator().manual_seed(seed))
        w = ids[start[:, None] + torch.arange(length + 1)]
        return w[:, :-1], w[:, 1:]


@torch.no_grad()
def perplexity(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 64) -> float:
    """``exp`` of the mean next-token cross-entropy of ``model`` (logits (B, V, T)) on
    windows ``x`` -> targets ``y`` (B, T); the model's train/eval mode is restored."""
    was = model.training
    model.eval()
    try:
        nll = sum(float(F.cross_entropy(model(x[i: i + batch]), y[i: i + batch], reduction="sum"))
                  for i in range(0, len(x), batch))
    finally:
        model.train(was)
    return math.exp(nll / y.numel())
