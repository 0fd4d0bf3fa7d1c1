"""Kernel-approximated (linear) attention with the random projection on analog tiles.

Softmax attention ``softmax(Q K^T / sqrt(d)) V`` is replaced by its random-feature
estimate (Choromanski et al., "Rethinking attention with Performers", ICLR 2021):
with ``phi`` a feature map of the softmax kernel (:mod:`aimc.nn.random_features`) applied
to ``q d^-1/4`` and ``k d^-1/4``,

    out_i = phi(q_i) . sum_j phi(k_j) v_j^T  /  phi(q_i) . sum_j phi(k_j),

linear in the sequence length: the ``L x S`` matrix is never formed. Following Büchel,
Camposampiero et al. ("Kernel approximation using analog in-memory computing", Nat.
Mach. Intell. 2024, arXiv:2411.03375; code github.com/IBM/kernel-approximation-using-
analog-in-memory-computing), the static random projection ``W`` (``n_projections x
head_dim``, shared by queries, keys and heads) is an ``nn.Linear`` without bias, frozen
(``requires_grad=False``), so :func:`aimc.convert` programs it on tiles like any other
weight; the exponentials, the normalisation and the two activation-by-activation products
stay digital. The paper's setting is the default (:class:`KernelAttentionConfig`):
hyperbolic positive features ``[exp(Wx), exp(-Wx)]``, 128 orthogonal projections of norm
``sqrt(d)`` (256 features). ``q``, ``k``, ``v`` and output projections are ``nn.Linear``
too and go on tiles as in :class:`~aimc.nn.AnalogMultiheadAttention`.

Every exponent is shifted by a stabiliser that cancels in the normalisation (each query
by its own largest exponent, the keys by their common largest one), so long sequences do
not overflow. A ``key_padding_mask`` (boolean, or additive float) weights each key's
features by ``exp(mask)``, which is exact; a causal mask (``is_causal=True`` or the
square subsequent mask) runs as prefix sums. Other ``attn_mask`` patterns cannot be
applied without forming the matrix and are refused. Dropout acts on the attention output
(as xformers' ``FavorAttention``). ``need_weights=True`` (torch's default) also returns the
implied ``L x S`` attention matrix, which costs what softmax attention costs; transformer
layers ask for none.

Example:
    >>> import torch, aimc
    >>> layer = torch.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
    >>> kernel = use_kernel_attention(layer)
    >>> type(kernel.self_attn).__name__
    'KernelAttention'
    >>> x = torch.randn(2, 7, 16)
    >>> analog = aimc.convert(kernel, "ideal")
    >>> torch.allclose(analog.eval()(x), kernel.eval()(x), atol=1e-5)
    True
"""
from __future__ import annotations

import copy
import warnings
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from aimc.config import BaseConfig
from aimc.nn.random_features import feature_map, log_scale, n_features, random_projection

__all__ = ["KernelAttentionConfig", "RandomFeatureMap", "KernelAttention", "use_kernel_attention",
           "unsupported_reason"]


class KernelAttentionConfig(BaseConfig):
    """How kernel attention approximates softmax attention (defaults: the paper's).

    Attributes:
        features: ``hyperbolic`` ([exp(Wx), exp(-Wx)]), ``positive`` (exp(Wx)) or ``trig``
            (random Fourier features [cos(Wx), sin(Wx)]); :mod:`aimc.nn.random_features`.
        projection: ``orthogonal`` random features (blocks of orthogonal rows) or ``iid``.
        row_norm: ``fixed`` (every row of norm sqrt(head_dim), the paper's) or ``chi``.
        n_projections: rows of ``W`` (128 in the paper: 256 hyperbolic features).
        seed: seed of the first layer's projection (layer ``i`` of
            :func:`use_kernel_attention` uses ``seed + i``).
    """

    features: Literal["trig", "positive", "hyperbolic"] = "hyperbolic"
    projection: Literal["iid", "orthogonal"] = "orthogonal"
    row_norm: Literal["chi", "fixed"] = "fixed"
    n_projections: int = Field(128, ge=1, le=65536)
    seed: int = Field(0, ge=0)


class RandomFeatureMap(nn.Module):
    """``x -> phi(x d^-1/4)``: the frozen projection ``proj`` (an ``nn.Linear``, the
    analog part once converted) and the digital feature map.

    Args:
        head_dim: dimension ``d`` of the inputs. config: :class:`KernelAttentionConfig`.
        seed: seed of ``W`` (default ``config.seed``).
    """

    def __init__(self, head_dim: int, config: KernelAttentionConfig | None = None, seed: int | None = None,
                 device=None, dtype=None):
        super().__init__()
        cfg = config if config is not None else KernelAttentionConfig()
        self.kind, self.head_dim = cfg.features, head_dim
        self.n_features = n_features(cfg.features, cfg.n_projections)
        self.proj = nn.Linear(head_dim, cfg.n_projections, bias=False, device=device, dtype=dtype)
        gen = torch.Generator().manual_seed(int(cfg.seed if seed is None else seed))
        w = random_projection(head_dim, cfg.n_projections, cfg.projection, cfg.row_norm, generator=gen)
        with torch.no_grad():
            self.proj.weight.copy_(w)
        self.proj.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor, per_row: bool = True, ignore: torch.Tensor | None = None) -> torch.Tensor:
        """(..., S, d) -> (..., S, n_features). ``per_row``: each row stabilised by itself
        (queries); otherwise by the largest exponent over the sequence, rows where
        ``ignore`` (broadcast to (..., S, 1)) is True left out of that maximum (keys)."""
        xs = x * self.head_dim ** -0.25
        wx = self.proj(xs)
        with torch.no_grad():
            c = log_scale(wx, xs, self.kind)  # (..., S, 1)
            if not per_row:
                if ignore is not None:
                    c = c.masked_fill(ignore, float("-inf"))
                c = c.amax(dim=-2, keepdim=True).clamp(min=-1e30)  # (..., 1, 1); all ignored: no shift
        return feature_map(wx, xs, self.kind, c)

    def extra_repr(self) -> str:
        return f"{self.kind} features: {self.n_features}, projection {tuple(self.proj.weight.shape)} frozen"


class KernelAttention(nn.Module):
    """Drop-in for ``nn.MultiheadAttention`` (self- or cross-attention, ``kdim = vdim =
    embed_dim``) computing kernel-approximated attention (module doc).

    Args:
        embed_dim, num_heads, dropout, bias, batch_first, device, dtype: as in ``nn.MultiheadAttention``.
        config: :class:`KernelAttentionConfig`. seed: seed of the projection (default ``config.seed``).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = False, device=None, dtype=None, *, config: KernelAttentionConfig | None = None,
                 seed: int | None = None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"KernelAttention: embed_dim ({embed_dim}) must be a positive multiple of "
                             f"num_heads ({num_heads})")
        kw = dict(device=device, dtype=dtype)
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), batch_first
        self.config = config if config is not None else KernelAttentionConfig()
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias, **kw)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias, **kw)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias, **kw)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias, **kw)
        self.feature_map = RandomFeatureMap(self.head_dim, self.config, seed, **kw)
        # nn.MultiheadAttention's attribute names that transformer layers read (no fused fast path)
        self._qkv_same_embed_dim = True
        self.register_parameter("in_proj_weight", None)
        self.register_parameter("in_proj_bias", None)

    @classmethod
    def from_softmax(cls, mha: nn.MultiheadAttention, config: KernelAttentionConfig | None = None,
                     seed: int | None = None) -> "KernelAttention":
        """The kernel version of ``mha`` with its projection weights.

        Raises:
            ValueError: ``mha`` uses ``add_bias_kv``, ``add_zero_attn`` or ``kdim``/``vdim``
                different from ``embed_dim`` (:func:`unsupported_reason`).
        """
        why = unsupported_reason(mha)
        if why:
            raise ValueError(f"KernelAttention.from_softmax: {why}")
        w = mha.out_proj.weight
        new = cls(mha.embed_dim, mha.num_heads, mha.dropout, mha.in_proj_bias is not None, mha.batch_first,
                  device=w.device, dtype=w.dtype, config=config, seed=seed)
        biases = mha.in_proj_bias.chunk(3) if mha.in_proj_bias is not None else (None,) * 3
        with torch.no_grad():
            for lin, wt, b in zip((new.q_proj, new.k_proj, new.v_proj), mha.in_proj_weight.chunk(3), biases):
                lin.weight.copy_(wt)
                if b is not None:
                    lin.bias.copy_(b)
            new.out_proj.weight.copy_(mha.out_proj.weight)
            if mha.out_proj.bias is not None:
                new.out_proj.bias.copy_(mha.out_proj.bias)
        return new.train(mha.training)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As ``nn.MultiheadAttention.forward``: ``(attn_output, attn_weights)``; the
        weights are the implied attention matrix (None unless ``need_weights``)."""
        if query.dim() not in (2, 3) or key.dim() != query.dim() or value.dim() != query.dim():
            raise ValueError(f"KernelAttention: query, key, value must all be 2-D (unbatched) or 3-D, got shapes "
                             f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
        batched = query.dim() == 3
        if not batched:
            query, key, value = query[None], key[None], value[None]
            key_padding_mask = key_padding_mask[None] if key_padding_mask is not None else None
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        if query.shape[-1] != self.embed_dim or key.shape[-1] != self.embed_dim or value.shape[-1] != self.embed_dim:
            raise ValueError(f"KernelAttention: embedding dimension must be {self.embed_dim}, got shapes "
                             f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
        if key.shape[:2] != value.shape[:2]:
            raise ValueError(f"KernelAttention: key and value shapes differ: {tuple(key.shape)} vs {tuple(value.shape)}")
        causal = self._causal(attn_mask, is_causal, query.shape[1], key.shape[1])
        out, weights = self._attend(query, key, value, self._key_weights(key_padding_mask, key.shape[:2]),
                                    causal, need_weights, average_attn_weights)
        if not batched:
            return out[0], (weights[0] if weights is not None else None)
        return (out if self.batch_first else out.transpose(0, 1)), weights

    @staticmethod
    def _causal(attn_mask, is_causal: bool, L: int, S: int) -> bool:
        if attn_mask is None and not is_causal:
            return False
        if attn_mask is not None and not is_causal:
            m = attn_mask if attn_mask.dtype == torch.bool else attn_mask.isneginf()
            upper = torch.ones(L, S, dtype=torch.bool, device=m.device).triu(1)
            if m.shape != (L, S) or not torch.equal(m, upper):
                raise ValueError("KernelAttention: attn_mask must be None or the causal (square subsequent) mask: "
                                 "linear attention never forms the L x S matrix another mask would act on; "
                                 "use key_padding_mask for padding")
        if L != S:
            raise ValueError(f"KernelAttention: causal attention needs as many queries as keys, got {L} and {S}")
        return True

    @staticmethod
    def _key_weights(key_padding_mask, shape) -> torch.Tensor | None:
        """(B, S) multipliers of the keys' features: 0/1 for a boolean mask (True: ignore),
        ``exp(mask)`` for an additive float mask."""
        if key_padding_mask is None:
            return None
        if tuple(key_padding_mask.shape) != tuple(shape):
            raise ValueError(f"key_padding_mask of shape {tuple(key_padding_mask.shape)}; expected {tuple(shape)}")
        if key_padding_mask.dtype == torch.bool:
            return (~key_padding_mask).float()
        return torch.exp(key_padding_mask.float())

    def _attend(self, q_in, k_in, v_in, key_w, causal: bool, need_weights: bool, average: bool):
        """Batch-first ``(B, L, E)`` inputs -> ``(B, L, E)`` output and optional weights."""
        B, L, _ = q_in.shape
        S, H, Dh = k_in.shape[1], self.num_heads, self.head_dim
        q = self.q_proj(q_in).view(B, L, H, Dh).transpose(1, 2)  # analog: (B, H, L, Dh)
        k = self.k_proj(k_in).view(B, S, H, Dh).transpose(1, 2)
        v = self.v_proj(v_in).view(B, S, H, Dh).transpose(1, 2)
        ignore = None if key_w is None else (key_w == 0).view(B, 1, S, 1)
        phi_q = self.feature_map(q)  # (B, H, L, F): projection analog, the rest digital
        phi_k = self.feature_map(k, per_row=False, ignore=ignore)  # (B, H, S, F)
        if key_w is not None:
            phi_k = phi_k * key_w.to(phi_k.dtype).view(B, 1, S, 1)
        positive = self.feature_map.kind != "trig"
        if causal:
            kv = torch.cumsum(phi_k.unsqueeze(-1) * v.unsqueeze(-2), dim=2)  # (B, H, L, F, Dh)
            num = torch.einsum("bhlf,bhlfd->bhld", phi_q, kv)
            den = (phi_q * phi_k.cumsum(dim=2)).sum(-1, keepdim=True)  # (B, H, L, 1)
        else:
            num = phi_q @ (phi_k.transpose(-1, -2) @ v)  # (B, H, L, Dh)
            den = phi_q @ phi_k.sum(dim=2).unsqueeze(-1)  # (B, H, L, 1)
        if positive:
            den = den.clamp(min=1e-30)
        out = (num / den).transpose(1, 2).reshape(B, L, self.embed_dim)
        if self.training and self.dropout > 0:
            out = F.dropout(out, p=self.dropout)
        weights = None
        if need_weights:
            a = (phi_q @ phi_k.transpose(-1, -2)) / den  # (B, H, L, S)
            if causal:
                a = a.masked_fill(torch.ones(L, S, dtype=torch.bool, device=a.device).triu(1), 0.0)
            weights = a.mean(dim=1) if average else a
        return self.out_proj(out), weights  # analog

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}; "
                "feature map digital, its projection and q/k/v/out on tiles once converted")


def unsupported_reason(mha: nn.MultiheadAttention) -> str:
    """Why ``mha`` has no kernel version ('' when it has one)."""
    why = []
    if not mha._qkv_same_embed_dim:
        why.append(f"kdim/vdim ({mha.kdim}/{mha.vdim}) differ from embed_dim ({mha.embed_dim})")
    if mha.bias_k is not None:
        why.append("add_bias_kv")
    if mha.add_zero_attn:
        why.append("add_zero_attn")
    return ", ".join(why)


def use_kernel_attention(model: nn.Module, config: KernelAttentionConfig | None = None) -> nn.Module:
    """A copy of ``model`` with every ``nn.MultiheadAttention`` replaced by
    :class:`KernelAttention` (same weights; the ``i``-th in module order gets projection
    seed ``config.seed + i``). Variants it cannot replace (``add_bias_kv``,
    ``add_zero_attn``, ``kdim``/``vdim`` != ``embed_dim``) keep softmax attention, with a
    ``UserWarning`` naming them. ``nn.TransformerEncoder`` copies get
    ``use_nested_tensor = False`` (torch's fast path reads the fused weights).

    Example:
        >>> import torch
        >>> enc = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
        >>> type(use_kernel_attention(enc).self_attn).__name__
        'KernelAttention'
    """
    cfg = config if config is not None else KernelAttentionConfig()
    if isinstance(model, nn.MultiheadAttention):
        if unsupported_reason(model):
            warnings.warn(f"use_kernel_attention: <model> keeps softmax attention ({unsupported_reason(model)})",
                          UserWarning, stacklevel=2)
            return copy.deepcopy(model)
        return KernelAttention.from_softmax(model, cfg, cfg.seed)
    new = copy.deepcopy(model)
    done: dict[int, nn.Module] = {}
    kept: list[str] = []
    for qual, parent in list(new.named_modules(remove_duplicate=False)):
        for name, child in list(parent._modules.items()):
            if not isinstance(child, nn.MultiheadAttention):
                continue
            if id(child) not in done:
                why = unsupported_reason(child)
                if why:
                    kept.append(f"{qual + '.' if qual else ''}{name} ({why})")
                    done[id(child)] = child
                else:
                    done[id(child)] = KernelAttention.from_softmax(child, cfg, cfg.seed + len(done))
            setattr(parent, name, done[id(child)])
    for m in new.modules():
        if isinstance(m, nn.TransformerEncoder):
            m.use_nested_tensor = False
    if kept:
        warnings.warn("use_kernel_attention: these keep softmax attention: " + "; ".join(kept), UserWarning,
                      stacklevel=2)
    return new

