"""Transformer encoders built from plain ``nn.Linear`` layers, so every matrix is a named
module the compiler can assign and :func:`aimc.convert`'s filter can pick.

* :func:`digits_transformer`: an 8x8 digit read as 8 tokens (its rows, 8 pixels each),
  embedded, two pre-norm encoder blocks (softmax attention, Vaswani et al., NeurIPS 2017,
  and a GELU feed-forward), mean-pooled and classified: 18,026 parameters.
* :func:`encoder_classifier`: the same architecture at any size (``d_model``, heads,
  ``d_ff``, blocks), e.g. ``encoder:1024,16,4096,8`` = 100.8 M parameters for the
  compile-time benchmark.

Each block's weight matrices are ``blocks.{i}.q``, ``.k``, ``.v``, ``.out`` (``d x d``),
``.up`` (``d x d_ff``) and ``.down`` (``d_ff x d``). ``Q K^T``, the softmax and ``P V`` are
products of activations (digital on an analog chip; :mod:`aimc.graph.builders`).

Example:
    >>> import torch
    >>> net = digits_transformer(seed=0)
    >>> net(torch.zeros(2, 1, 8, 8)).shape, sum(p.numel() for p in net.parameters())
    (torch.Size([2, 10]), 18026)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aimc.seeding import seeded

__all__ = ["EncoderBlock", "EncoderClassifier", "digits_transformer", "encoder_classifier"]


class EncoderBlock(nn.Module):
    """Pre-norm encoder block: ``x + attn(ln(x))``, then ``x + down(gelu(up(ln(x))))``."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.q, self.k, self.v, self.out = (nn.Linear(d_model, d_model) for _ in range(4))
        self.up, self.down = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d)
        b, t, d = x.shape
        h = self.ln1(x)
        q, k, v = (f(h).view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)
                   for f in (self.q, self.k, self.v))  # (B, heads, T, d_head)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.n_heads), dim=-1)  # (B, heads, T, T)
        x = x + self.out((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class EncoderClassifier(nn.Module):
    """Tokens ``(B, T, d_in)`` (or images ``(B, 1, T, d_in)``: rows as tokens) -> class logits.

    Args:
        d_in: features per token; n_tokens: sequence length (learned positions);
        d_model, n_heads, d_ff, n_blocks: encoder size; n_classes: outputs.
    """

    def __init__(self, d_in: int, n_tokens: int, d_model: int, n_heads: int, d_ff: int, n_blocks: int,
                 n_classes: int):
        super().__init__()
        self.embed = nn.Linear(d_in, d_model)
        self.pos = nn.Parameter(torch.randn(n_tokens, d_model) * 0.02)
        self.blocks = nn.ModuleList(EncoderBlock(d_model, n_heads, d_ff) for _ in range(n_blocks))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:  # (B, 1, H, W) image: its H rows are the tokens
            x = x.flatten(1, 2)
        h = self.embed(x) + self.pos  # (B, T, d)
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.norm(h).mean(dim=1))


def digits_transformer(seed: int | None = None) -> EncoderClassifier:
    """The 8x8-digits transformer (module doc): d_model 32, 4 heads, d_ff 64, 2 blocks."""
    with seeded(seed):
        return EncoderClassifier(8, 8, 32, 4, 64, 2, 10)


def encoder_classifier(d_model: int, n_heads: int, d_ff: int, n_blocks: int, n_tokens: int = 16,
                       d_in: int = 64, n_classes: int = 10, seed: int | None = 0) -> EncoderClassifier:
    """An encoder classifier of any size (module doc); parameters ``~ n_blocks (4 d^2 + 2 d d_ff)``.

    Example:
        >>> sum(p.numel() for p in encoder_classifier(64, 4, 128, 2).parameters())
        72906
    """
    for name, v in (("d_model", d_model), ("n_heads", n_heads), ("d_ff", d_ff), ("n_blocks", n_blocks)):
        if int(v) < 1:
            raise ValueError(f"encoder_classifier: {name} must be >= 1, got {v}")
    with seeded(seed):
        return EncoderClassifier(d_in, n_tokens, d_model, n_heads, d_ff, n_blocks, n_classes)
