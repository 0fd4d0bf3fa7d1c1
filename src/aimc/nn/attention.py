"""``AnalogMultiheadAttention``: ``nn.MultiheadAttention`` whose projections run on tiles.

Multi-head attention (Vaswani et al., NeurIPS 2017) has four weight matrices, the query,
key, value and output projections ``W_q, W_k, W_v, W_o``, each a stationary matrix-vector
product per token: they are programmed on analog tiles as four :class:`AnalogLinear`
layers (``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``; torch stacks the first three as
``in_proj_weight``). The products of two activations, ``Q K^T`` and ``P V``, and the
softmax stay digital: their "weights" change with every input, and programming PCM/RRAM
per inference is neither fast nor durable (the same split as HERMES-class chips, Le Gallo
et al., Nat. Electron. 6, 680 (2023), and :mod:`aimc.graph.builders`).

The digital part follows ``torch.nn.functional.multi_head_attention_forward`` step by
step (masks, ``add_bias_kv``, ``add_zero_attn``, dropout, head averaging), so on the
``ideal`` chip the layer equals ``nn.MultiheadAttention`` to float tolerance. Its
``in_proj_weight`` and ``in_proj_bias`` are ``None``, which also keeps torch's fused
``TransformerEncoderLayer`` fast path (which would read the digital weights) off.

Example:
    >>> import torch
    >>> mha = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    >>> analog = AnalogMultiheadAttention.from_digital(mha, "ideal")
    >>> x = torch.randn(2, 5, 16)
    >>> torch.allclose(analog(x, x, x)[0], mha(x, x, x)[0], atol=1e-5)
    True
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aimc.nn.layers import AnalogLinear

__all__ = ["AnalogMultiheadAttention"]


class AnalogMultiheadAttention(nn.Module):
    """``nn.MultiheadAttention`` (same constructor and forward) with analog projections.

    Args:
        embed_dim, num_heads, dropout, bias, add_bias_kv, add_zero_attn, kdim, vdim, batch_first, device, dtype: as in ``nn.MultiheadAttention``.
        chip: preset name, YAML path or :class:`~aimc.chips.ChipSpec` of the projections.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None, dtype=None, *, chip=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"AnalogMultiheadAttention: embed_dim ({embed_dim}) must be a positive multiple of "
                             f"num_heads ({num_heads})")
        kw = dict(device=device, dtype=dtype, chip=chip)
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first, self.add_zero_attn = float(dropout), batch_first, add_zero_attn
        self.q_proj = AnalogLinear(embed_dim, embed_dim, bias, **kw)
        self.k_proj = AnalogLinear(self.kdim, embed_dim, bias, **kw)
        self.v_proj = AnalogLinear(self.vdim, embed_dim, bias, **kw)
        self.out_proj = AnalogLinear(embed_dim, embed_dim, bias, **kw)
        # torch's names, absent here: the stacked matrix lives in q/k/v_proj
        self.register_parameter("in_proj_weight", None)
        self.register_parameter("in_proj_bias", None)
        if add_bias_kv:
            self.bias_k: nn.Parameter | None = nn.Parameter(torch.zeros(1, 1, embed_dim, device=device, dtype=dtype))
            self.bias_v: nn.Parameter | None = nn.Parameter(torch.zeros(1, 1, embed_dim, device=device, dtype=dtype))
        else:
            self.bias_k = self.bias_v = None

    @classmethod
    def from_digital(cls, mha: nn.MultiheadAttention, chip) -> "AnalogMultiheadAttention":
        """Copy ``mha``'s weights: ``in_proj_weight`` (or ``q/k/v_proj_weight``) split into
        the three projections, ``out_proj`` as is."""
        w = mha.out_proj.weight
        new = cls(mha.embed_dim, mha.num_heads, mha.dropout, mha.in_proj_bias is not None, mha.bias_k is not None,
                  mha.add_zero_attn, mha.kdim, mha.vdim, mha.batch_first, device=w.device, dtype=w.dtype, chip=chip)
        if mha._qkv_same_embed_dim:
            wq, wk, wv = mha.in_proj_weight.chunk(3)
        else:
            wq, wk, wv = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
        biases = mha.in_proj_bias.chunk(3) if mha.in_proj_bias is not None else (None,) * 3
        with torch.no_grad():
            for lin, wt, b in zip((new.q_proj, new.k_proj, new.v_proj), (wq, wk, wv), biases):
                lin.weight.copy_(wt)
                if b is not None:
                    assert lin.bias is not None  # built with mha's bias
                    lin.bias.copy_(b)
            new.out_proj.weight.copy_(mha.out_proj.weight)
            if mha.out_proj.bias is not None:
                assert new.out_proj.bias is not None
                new.out_proj.bias.copy_(mha.out_proj.bias)
            if mha.bias_k is not None:
                assert new.bias_k is not None and new.bias_v is not None and mha.bias_v is not None
                new.bias_k.copy_(mha.bias_k)
                new.bias_v.copy_(mha.bias_v)
        return new.train(mha.training)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As ``nn.MultiheadAttention.forward``: returns ``(attn_output, attn_weights)``."""
        batched = query.dim() == 3
        if query.dim() not in (2, 3) or key.dim() != query.dim() or value.dim() != query.dim():
            raise ValueError(f"AnalogMultiheadAttention: query, key, value must all be 2-D (unbatched) or 3-D, got "
                             f"shapes {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        out, weights = self._attend(query, key, value, key_padding_mask, need_weights, attn_mask,
                                    average_attn_weights, is_causal)
        if not batched:
            return out.squeeze(1), (weights.squeeze(0) if weights is not None else None)
        return (out.transpose(0, 1) if self.batch_first else out), weights

    def _attend(self, query, key, value, key_padding_mask, need_weights, attn_mask, average, is_causal):
        """Sequence-first ``(L, B, E)`` attention; mirrors torch's functional version."""
        L, B, E = query.shape
        H, Dh = self.num_heads, self.head_dim
        if E != self.embed_dim:
            raise ValueError(f"AnalogMultiheadAttention: query's embedding dimension must be {self.embed_dim}, got {E}")
        key_padding_mask = F._canonical_mask(mask=key_padding_mask, mask_name="key_padding_mask",
                                             other_type=F._none_or_dtype(attn_mask), other_name="attn_mask",
                                             target_type=query.dtype)
        if is_causal and attn_mask is None:
            raise ValueError("AnalogMultiheadAttention: is_causal=True needs attn_mask (the causal mask), "
                             "as in torch; nn.Transformer.generate_square_subsequent_mask makes one")
        if is_causal and key_padding_mask is None and not need_weights:
            attn_mask = None
        else:
            attn_mask = F._canonical_mask(mask=attn_mask, mask_name="attn_mask", other_type=None, other_name="",
                                          target_type=query.dtype, check_other=False)
            if key_padding_mask is not None:
                is_causal = False
        q, k, v = self.q_proj(query), self.k_proj(key), self.v_proj(value)  # analog: (L|S, B, E)
        S = k.shape[0]
        if attn_mask is not None:
            if attn_mask.dim() == 2:
                if attn_mask.shape != (L, S):
                    raise ValueError(f"attn_mask of shape {tuple(attn_mask.shape)}; expected ({L}, {S})")
                attn_mask = attn_mask.unsqueeze(0)
            elif attn_mask.dim() != 3 or attn_mask.shape != (B * H, L, S):
                raise ValueError(f"attn_mask of shape {tuple(attn_mask.shape)}; expected ({L}, {S}) or "
                                 f"({B * H}, {L}, {S})")
        if self.bias_k is not None and self.bias_v is not None:  # both or neither (add_bias_kv)
            k = torch.cat([k, self.bias_k.repeat(1, B, 1)])
            v = torch.cat([v, self.bias_v.repeat(1, B, 1)])
            attn_mask = F.pad(attn_mask, (0, 1)) if attn_mask is not None else None
            key_padding_mask = F.pad(key_padding_mask, (0, 1)) if key_padding_mask is not None else None
        q = q.reshape(L, B * H, Dh).transpose(0, 1)  # (B*H, L, Dh)
        k = k.reshape(k.shape[0], B * H, Dh).transpose(0, 1)
        v = v.reshape(v.shape[0], B * H, Dh).transpose(0, 1)
        if self.add_zero_attn:
            zeros = torch.zeros(B * H, 1, Dh, dtype=k.dtype, device=k.device)
            k, v = torch.cat([k, zeros], dim=1), torch.cat([v, zeros], dim=1)
            attn_mask = F.pad(attn_mask, (0, 1)) if attn_mask is not None else None
            key_padding_mask = F.pad(key_padding_mask, (0, 1)) if key_padding_mask is not None else None
        S = k.shape[1]
        if key_padding_mask is not None:
            if key_padding_mask.shape != (B, S):
                raise ValueError(f"key_padding_mask of shape {tuple(key_padding_mask.shape)}; expected ({B}, {S})")
            kpm = key_padding_mask.view(B, 1, 1, S).expand(-1, H, -1, -1).reshape(B * H, 1, S)
            attn_mask = kpm if attn_mask is None else attn_mask + kpm
        p = self.dropout if self.training else 0.0
        # digital: Q K^T, softmax, P V (activation x activation products)
        if need_weights:
            scores = q * math.sqrt(1.0 / float(Dh))
            w = (torch.baddbmm(attn_mask, scores, k.transpose(-2, -1)) if attn_mask is not None
                 else torch.bmm(scores, k.transpose(-2, -1)))
            w = F.softmax(w, dim=-1)
            if p > 0.0:
                w = F.dropout(w, p=p)
            out = torch.bmm(w, v).transpose(0, 1).reshape(L, B, E)  # (L, B, E)
            w = w.view(B, H, L, S)
            weights = w.mean(dim=1) if average else w
        else:
            if attn_mask is not None:
                attn_mask = attn_mask.view(B, H, -1, S) if attn_mask.shape[0] != 1 else attn_mask.unsqueeze(0)
            out = F.scaled_dot_product_attention(q.view(B, H, L, Dh), k.view(B, H, S, Dh), v.view(B, H, S, Dh),
                                                 attn_mask, p, is_causal)  # (B, H, L, Dh)
            out = out.permute(2, 0, 1, 3).reshape(L, B, E)
            weights = None
        return self.out_proj(out), weights  # analog

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}; "
                "Q K^T, softmax and P V digital")
