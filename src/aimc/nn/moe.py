"""Mixture-of-experts (MoE) blocks on analog tiles: experts as analog FFNs, the router kept
digital or put on tiles.

An MoE feed-forward block (Shazeer et al., ICLR 2017; Mixtral, Jiang et al. 2024) has a
router ``W_r`` (experts x d) whose logits pick the top-k experts of each token (softmax,
top-k, optionally renormalised), and ``E`` expert FFNs of which only the chosen ones run.
Each expert's matrices are stationary, so they go on tiles (on a 3D chip one expert per
tier, Büchel et al., Nat. Comput. Sci. 5 (2025)); the gating arithmetic is digital.

``convert`` handles MoE blocks in two layouts:

* experts as modules of ``nn.Linear`` (a plain PyTorch MoE such as
  :mod:`aimc.workloads.moe_lm`): each ``nn.Linear`` converts as usual and the block's own
  forward does the gating;
* Hugging Face's fused experts (transformers 5.x ``MixtralExperts``,
  ``Qwen2MoeExperts``, ``Qwen3MoeExperts``): 3-D parameters ``gate_up_proj`` (E, 2I, d)
  and ``down_proj`` (E, d, I) and a forward ``(hidden, top_k_index, top_k_weights)``.
  They become :class:`AnalogExperts`: per expert one :class:`~aimc.nn.AnalogLinear`
  ``d -> 2I`` (gate and up stacked, as HF stores them) and one ``I -> d``; every expert's
  matrices are their own tiles, read through :func:`aimc.tiles.mvm` for the tokens routed to
  it. Why per-expert layers, not one read with an expert batch dimension: programming,
  drift, drift compensation, faults, hardware-aware training and ``state_dict`` then work
  per expert unchanged, and the work is the same (each token reads only its experts'
  tiles); the loop is over the experts hit (as HF's own eager path), not over tiles.

The router: its logits decide which experts run, it is small (E x d, e.g. 8 x 4,096 in
Mixtral-8x7B: 0.02 % of a layer's weights) and a noisy logit can flip a token's expert, a
discrete error no later layer corrects. So ``convert(..., router="digital")`` (the
default) keeps routers digital and routing exact; ``router="analog"`` puts them on tiles
(routing then follows the chip's noisy logits). Routers are the children named
:data:`ROUTER_NAMES` of a module that has an ``experts`` child.

A fused-experts or router variant whose arithmetic differs from the one reproduced here
(biases, transposed storage, no gate, other normalisations: e.g. gpt-oss) is detected by
a probe (the original module and the reimplementation on the same seeded input must agree)
and left digital with a warning naming it.

Example:
    >>> import torch, aimc
    >>> from aimc.workloads.moe_lm import MoEFeedForward
    >>> moe = MoEFeedForward(16, 32, n_experts=4, top_k=2, seed=0)
    >>> analog = aimc.convert(moe, "ideal")
    >>> x = torch.randn(3, 5, 16)
    >>> torch.allclose(analog(x), moe(x), atol=1e-5)
    True
"""
from __future__ import annotations

from typing import Any, Callable, cast

import torch
import torch.nn.functional as F
from torch import nn

from aimc.nn.layers import AnalogLinear

__all__ = ["AnalogExperts", "AnalogTopKRouter", "ROUTER_NAMES", "moe_routers", "fused_experts_problem",
           "router_problem"]

#: Child names that are routers of an MoE block (a module with an ``experts`` child);
#: Qwen-MoE's ``shared_expert_gate`` (a 1-output sigmoid gate of its shared expert) is one too.
ROUTER_NAMES = ("gate", "router", "shared_expert_gate")

_PROBE_TOKENS = 16


def moe_routers(model: nn.Module) -> set[str]:
    """Qualified names of the routers of ``model``'s MoE blocks (module doc)."""
    out = set()
    for name, m in model.named_modules():
        if isinstance(getattr(m, "experts", None), nn.Module):
            for child in ROUTER_NAMES:
                if isinstance(getattr(m, child, None), nn.Module):
                    out.add(f"{name}.{child}" if name else child)
    return out


def _probe(d: int, like: torch.Tensor) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1234)
    return torch.randn(_PROBE_TOKENS, d, generator=gen).to(device=like.device, dtype=like.dtype)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-5))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return False


# -- the fused experts of Hugging Face ------------------------------------------------------
def _fused(m: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(gate_up_proj, down_proj)`` if ``m`` stores experts as HF's fused 3-D tensors."""
    gu, dn = getattr(m, "gate_up_proj", None), getattr(m, "down_proj", None)
    if not (isinstance(gu, torch.Tensor) and isinstance(dn, torch.Tensor) and gu.dim() == 3 and dn.dim() == 3):
        return None
    return gu, dn


def _fused_shapes(m: nn.Module) -> tuple[int, int, int] | None:
    """(E, d, I) of fused experts ``m`` (None: not fused experts)."""
    f = _fused(m)
    return None if f is None else (int(f[0].shape[0]), int(f[0].shape[2]), int(f[1].shape[2]))


def is_fused_experts(m: nn.Module) -> bool:
    """``m`` looks like HF fused experts (3-D ``gate_up_proj`` and ``down_proj``)."""
    return not isinstance(m, AnalogExperts) and _fused_shapes(m) is not None


def _experts_reference(m: nn.Module, x: torch.Tensor, idx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The arithmetic :class:`AnalogExperts` reproduces, with ``m``'s digital weights."""
    out = torch.zeros_like(x)
    act: Callable[[torch.Tensor], torch.Tensor] = getattr(m, "act_fn")
    gu, dn = _fused(m) or (torch.empty(0, 0, 0), torch.empty(0, 0, 0))
    for e in range(int(gu.shape[0])):
        tok, pos = torch.where(idx == e)
        if tok.numel():
            g, u = F.linear(x[tok], gu[e]).chunk(2, dim=-1)
            out.index_add_(0, tok, F.linear(act(g) * u, dn[e]) * w[tok, pos, None])
    return out


def fused_experts_problem(m: nn.Module) -> str | None:
    """Why the fused experts ``m`` cannot become :class:`AnalogExperts` (None: they can)."""
    fused = _fused(m)
    if fused is None:
        return "not fused experts (3-D gate_up_proj and down_proj)"
    gu, dn = fused
    E, d, inner = int(gu.shape[0]), int(gu.shape[2]), int(dn.shape[2])
    flags = {k: getattr(m, k) for k in ("has_bias", "is_transposed") if getattr(m, k, False)}
    if not getattr(m, "has_gate", True):
        flags["has_gate"] = False
    if flags:
        return f"fused experts variant {flags} (only has_gate=True, no bias, (E, 2I, d) storage maps)"
    if tuple(gu.shape) != (E, 2 * inner, d) or tuple(dn.shape) != (E, d, inner):
        return f"gate_up_proj {tuple(gu.shape)} / down_proj {tuple(dn.shape)} are not (E, 2I, d) / (E, d, I)"
    if not callable(getattr(m, "act_fn", None)):
        return "fused experts without an act_fn"
    x = _probe(d, gu)
    gen = torch.Generator().manual_seed(99)
    k = min(2, E)
    idx = torch.stack([torch.randperm(E, generator=gen)[:k] for _ in range(len(x))]).to(x.device)
    w = torch.rand(len(x), k, generator=gen).to(x)
    with torch.no_grad():
        try:
            ref = m(x, idx, w)
        except Exception as exc:  # noqa: BLE001 - any failure means: not the layout handled here
            return f"fused experts whose forward(hidden, top_k_index, top_k_weights) fails: {exc}"
        if not _same(ref, _experts_reference(m, x, idx, w)):
            return "fused experts whose forward differs from act(gate) * up -> down weighted by top_k_weights"
    return None


class AnalogExperts(nn.Module):
    """HF fused experts (``gate_up_proj`` (E, 2I, d), ``down_proj`` (E, d, I)) on tiles:
    ``gate_up[e]`` is an :class:`AnalogLinear` d -> 2I, ``down[e]`` one I -> d.

    ``forward(hidden (N, d), top_k_index (N, k), top_k_weights (N, k)) -> (N, d)``, as HF's:
    ``sum_k w_k down_e(act(gate_e(x)) * up_e(x))`` over the token's experts ``e``.
    """

    act_fn: Callable[[torch.Tensor], torch.Tensor]

    def __init__(self, n_experts: int, d: int, inner: int, act_fn: Callable[[torch.Tensor], torch.Tensor],
                 device=None, dtype=None, *, chip=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype, chip=chip)
        self.num_experts, self.hidden_dim, self.intermediate_dim = n_experts, d, inner
        self.gate_up = nn.ModuleList(AnalogLinear(d, 2 * inner, bias=False, **kw) for _ in range(n_experts))
        self.down = nn.ModuleList(AnalogLinear(inner, d, bias=False, **kw) for _ in range(n_experts))
        self.act_fn = act_fn

    @classmethod
    def from_digital(cls, m: nn.Module, chip) -> nn.Module:
        """The analog copy of fused experts ``m`` (``m`` itself, digital, if it is a variant
        :func:`fused_experts_problem` rejects; ``convert`` then warns)."""
        if fused_experts_problem(m) is not None:
            return m
        gu, dn = _fused(m)  # type: ignore[misc]  # not None: checked above
        E, d, inner = int(gu.shape[0]), int(gu.shape[2]), int(dn.shape[2])
        new = cls(E, d, inner, getattr(m, "act_fn"), device=gu.device, dtype=gu.dtype, chip=chip)
        with torch.no_grad():
            for e in range(E):
                cast(AnalogLinear, new.gate_up[e]).weight.copy_(gu[e])
                cast(AnalogLinear, new.down[e]).weight.copy_(dn[e])
        return new.train(m.training)

    def forward(self, hidden_states: torch.Tensor, top_k_index: torch.Tensor,
                top_k_weights: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(hidden_states)
        with torch.no_grad():
            hit = torch.unique(top_k_index[(top_k_index >= 0) & (top_k_index < self.num_experts)]).tolist()
        for e in hit:
            tok, pos = torch.where(top_k_index == e)
            gate, up = self.gate_up[e](hidden_states[tok]).chunk(2, dim=-1)  # analog: (n, 2I)
            y = self.down[e](self.act_fn(gate) * up)  # analog: (n, d)
            out.index_add_(0, tok, (y * top_k_weights[tok, pos, None]).to(out.dtype))
        return out

    def extra_repr(self) -> str:
        return (f"num_experts={self.num_experts}, hidden={self.hidden_dim}, intermediate={self.intermediate_dim}; "
                "gating digital")


# -- HF routers with a raw weight ---------------------------------------------------------
def _route(logits: torch.Tensor, top_k: int, normalise: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    probs = F.softmax(logits.float(), dim=-1)
    top, idx = torch.topk(probs, top_k, dim=-1)
    if normalise:
        top = top / top.sum(dim=-1, keepdim=True)
    return logits, top.to(logits.dtype), idx


def router_problem(m: nn.Module) -> tuple[str | None, bool]:
    """``(why not, normalise)``: whether the router ``m`` (a 2-D ``weight`` (E, d) and
    ``top_k``, forward ``x -> (logits, top-k weights, top-k indices)``) computes softmax ->
    top-k -> (renormalise) as :class:`AnalogTopKRouter` does, checked on a probe input."""
    w, k = getattr(m, "weight", None), getattr(m, "top_k", None)
    if not (isinstance(w, torch.Tensor) and w.dim() == 2 and isinstance(k, int)):
        return "a router without a 2-D weight (experts, d) and an int top_k", False
    x = _probe(int(w.shape[1]), w)
    with torch.no_grad():
        try:
            ref = m(x)
        except Exception as exc:  # noqa: BLE001
            return f"a router whose forward fails on (tokens, d) input: {exc}", False
        for norm in (True, False):
            if _same(ref, _route(F.linear(x, w), k, norm)):
                return None, norm
    return "a router whose outputs differ from (logits, softmax top-k weights, indices)", False


class AnalogTopKRouter(nn.Module):
    """An HF-style router (``weight`` (E, d), softmax -> top-k -> optional renormalisation)
    whose logits come from an :class:`AnalogLinear` ``proj``: routing follows the chip's
    (noisy) logits. ``forward(x) -> (logits, top_k_weights, top_k_index)``."""

    def __init__(self, n_experts: int, d: int, top_k: int, normalise: bool, device=None, dtype=None, *, chip=None):
        super().__init__()
        self.num_experts, self.hidden_dim, self.top_k, self.normalise = n_experts, d, top_k, normalise
        self.proj = AnalogLinear(d, n_experts, bias=False, device=device, dtype=dtype, chip=chip)

    @classmethod
    def from_digital(cls, m: nn.Module, chip) -> nn.Module:
        """The analog copy of router ``m`` (``m`` itself if :func:`router_problem` rejects it)."""
        why, norm = router_problem(m)
        if why is not None:
            return m
        w: torch.Tensor = getattr(m, "weight")
        new = cls(int(w.shape[0]), int(w.shape[1]), int(getattr(m, "top_k")), norm, device=w.device, dtype=w.dtype,
                  chip=chip)
        with torch.no_grad():
            new.proj.weight.copy_(w)
        return new.train(m.training)

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return _route(self.proj(hidden_states.reshape(-1, self.hidden_dim)), self.top_k, self.normalise)
