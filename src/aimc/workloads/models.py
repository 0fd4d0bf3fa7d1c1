"""Small CNNs for the demo data sets, with a seeded initialisation.

Example:
    >>> import torch
    >>> digits_cnn(seed=0)(torch.zeros(1, 1, 8, 8)).shape
    torch.Size([1, 10])
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from aimc.seeding import seeded

__all__ = ["digits_cnn", "fashion_cnn", "LRATransformer"]


def digits_cnn(seed: int | None = None) -> nn.Sequential:
    """CNN for 1x8x8 digits: two 3x3 conv blocks and a linear classifier (6,090 params).

    Args:
        seed: seed of the weight initialisation, drawn without touching torch's global
            RNG state; None uses (and advances) the global RNG.

    Example:
        >>> import torch
        >>> digits_cnn(seed=0)(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """
    with seeded(seed):
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (B, 16, 4, 4)
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 2, 2)
            nn.Flatten(), nn.Linear(32 * 2 * 2, 10),
        )


def fashion_cnn(seed: int | None = None) -> nn.Sequential:
    """CNN for 1x28x28 Fashion-MNIST: two 5x5 conv blocks, a 32-unit hidden layer (63,786 params).

    Args:
        seed: seed of the weight initialisation (see :func:`digits_cnn`).

    Example:
        >>> import torch
        >>> fashion_cnn(seed=0)(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    with seeded(seed):
        return nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),   # (B, 16, 14, 14)
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 7, 7)
            nn.Flatten(), nn.Linear(32 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 10),
        )


_FUNCS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"gelu": F.gelu, "silu": F.silu, "relu": F.relu}


class LRATransformer(nn.Module):
    """The Long Range Arena classifier of Büchel, Camposampiero et al. (Nat. Mach. Intell.
    2024; their fairseq ``transformer_lra_listops`` config): token embedding (std
    ``d^-1/2``, padding zero) times ``embed_scale`` (fairseq's ``sqrt(d)`` with sinusoidal
    positions, so tokens and positions both have unit scale) plus sinusoidal positions, pre-LayerNorm
    ``nn.TransformerEncoderLayer`` blocks with softmax ``nn.MultiheadAttention`` (swap in
    kernel attention with :func:`aimc.nn.use_kernel_attention` or
    ``aimc.convert(..., attention="kernel")``), a final LayerNorm, mean pooling over the
    non-padding tokens and a classifier ``Linear(d, classifier_dim)``, activation,
    ``Linear(classifier_dim, classes, bias=False)``. Sequences are cut after their batch's
    last non-padding token.

    Args:
        vocab: tokens, padding (0) included. classes: output classes.
        d_model, n_heads, d_ff, n_layers: sizes (paper: 64, 2, 128, 2).
        activation: ``gelu`` (ListOps) or ``silu`` (text). dropout: paper 0.1.
        classifier_dim: paper 128. seed: weight initialisation (see :func:`digits_cnn`).
        embed_scale: factor on the token embeddings; None: ``sqrt(d_model)`` (fairseq's
            ``TransformerLRAEncoder`` with sinusoidal positions, as IBM trained). Without it
            the positions (amplitude 1) outweigh the tokens (std ``d^-1/2``) eightfold at
            ``d_model`` 64.

    Example:
        >>> import torch
        >>> net = LRATransformer(16, 10, seed=0)
        >>> net(torch.tensor([[3, 4, 5, 0], [6, 7, 0, 0]])).shape
        torch.Size([2, 10])
    """

    def __init__(self, vocab: int, classes: int, d_model: int = 64, n_heads: int = 2, d_ff: int = 128,
                 n_layers: int = 2, activation: str = "gelu", dropout: float = 0.1, classifier_dim: int = 128,
                 seed: int | None = None, embed_scale: float | None = None):
        super().__init__()
        acts = {"gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU}
        if activation not in acts:
            raise ValueError(f"LRATransformer: activation must be one of {', '.join(acts)}, got {activation!r}")
        with seeded(seed):
            self.embed = nn.Embedding(vocab, d_model, padding_idx=0)
            nn.init.normal_(self.embed.weight, std=d_model ** -0.5)
            with torch.no_grad():
                self.embed.weight[0].zero_()
            self.layers = nn.ModuleList(
                nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout, _FUNCS[activation], batch_first=True,
                                           norm_first=True) for _ in range(n_layers))
            self.norm = nn.LayerNorm(d_model)
            self.head = nn.Sequential(nn.Linear(d_model, classifier_dim), acts[activation](),
                                      nn.Linear(classifier_dim, classes, bias=False))
        self.d_model = d_model
        self.embed_scale = math.sqrt(d_model) if embed_scale is None else float(embed_scale)

    def _positions(self, L: int, like: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(L, dtype=like.dtype, device=like.device)[:, None]
        freq = torch.exp(torch.arange(0, self.d_model, 2, dtype=like.dtype, device=like.device)
                         * (-math.log(10000.0) / self.d_model))
        pe = torch.zeros(L, self.d_model, dtype=like.dtype, device=like.device)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
        return pe

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 tokens, 0 = padding -> (B, classes) logits."""
        if tokens.dim() != 2 or tokens.dtype != torch.int64:
            raise ValueError(f"LRATransformer: tokens must be a (batch, length) int64 tensor, got "
                             f"{tuple(tokens.shape)} {tokens.dtype}")
        keep = tokens != 0
        used = keep.any(dim=0).nonzero()
        L = int(used.max()) + 1 if len(used) else 1
        tokens, keep = tokens[:, :L], keep[:, :L]
        h = self.embed(tokens) * self.embed_scale
        h = (h + self._positions(L, h)) * keep.unsqueeze(-1)
        pad = ~keep
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=pad)
        h = self.norm(h) * keep.unsqueeze(-1)
        return self.head(h.sum(dim=1) / keep.sum(dim=1, keepdim=True).clamp(min=1))
