"""The GPU baseline for the same decoder LLMs: the von Neumann roofline of
:mod:`aimc.cost.baselines` (weights read from HBM once per batch, KV cache per sequence,
``t = max(ops / peak, bytes / bandwidth)`` per matrix) applied to one decoding step.

An MoE layer at batch ``B`` reads only the experts its tokens choose: with uniform routing
the expected number touched is ``u = E * (1 - (1 - k/E)^B)`` (each expert is missed by a
token with probability ``1 - k/E``), so its weights are ``ceil(u)`` expert matrices per step
while each token does ``k`` experts' MACs -- a :class:`~aimc.graph.builders.LayerWorkIO` with
``groups = ceil(u)`` (weights stored) and ``n_mvm = k`` (MVMs per token). Attention per
token: ``QK^T`` and ``AV`` over the cached ``L`` positions, non-stationary operands (the KV
cache, read per sequence). A run = the prefill of ``B x P`` tokens (context ``P/2`` on
average) + ``G`` decoding steps (context ``P + (G - 1)/2`` on average).

Example:
    >>> from aimc.workloads.llm3d.model import load_model
    >>> r = gpu_run(load_model("dense-small"), "gpu-h100", batch=1, prompt=16, generate=16)
    >>> sorted(r) == ['J_per_token', 'area_mm2', 'tile_conflicts', 'tokens_per_s', 'utilization']
    True
"""
from __future__ import annotations

import math

from aimc.cost.baselines import VonNeumannSpec, load_baseline, price_baseline
from aimc.graph.builders import LayerWorkIO
from aimc.graph.workload import LayerWork
from aimc.workloads.llm3d.model import LLMConfig

__all__ = ["decode_step_workload", "gpu_run"]


def decode_step_workload(cfg: LLMConfig, batch: int, context: float) -> list[LayerWork]:
    """Per-token workload of one decoding step at ``batch`` with ``context`` cached
    positions (module doc)."""
    d, h, kv = cfg.d_model, cfg.n_heads, cfg.n_kv_heads or cfg.n_heads
    lin = lambda name, k, n, groups=1, n_mvm=1: LayerWorkIO(name, "linear", k, n, n_mvm, groups=groups,  # noqa: E731
                                                            x_elements=k * n_mvm)
    ctx = max(1, int(round(context)))
    out: list[LayerWork] = []
    for layer in range(cfg.n_layers):
        out += [lin(f"l{layer}.q", d, d), lin(f"l{layer}.k", d, cfg.d_kv), lin(f"l{layer}.v", d, cfg.d_kv)]
        # K and V of kv heads (the cache) serve h query heads: h MVMs over kv stored matrices
        out += [LayerWorkIO(f"l{layer}.qk", "matmul", d // h, ctx, h, groups=kv, x_elements=d, stationary=False),
                LayerWorkIO(f"l{layer}.av", "matmul", ctx, d // h, h, groups=kv, x_elements=h * ctx, stationary=False)]
        out.append(lin(f"l{layer}.o", d, d))
        if cfg.is_moe_layer(layer):
            e, k = cfg.n_experts, cfg.top_k
            touched = math.ceil(e * (1.0 - (1.0 - k / e) ** batch) - 1e-9)
            out += [lin(f"l{layer}.router", d, e)] + [lin(f"l{layer}.experts.{m}", d, cfg.d_ff, touched, k)
                                                      for m in cfg.ffn_in]
            out.append(lin(f"l{layer}.experts.ffn2", cfg.d_ff, d, touched, k))
        else:
            out += [lin(f"l{layer}.{m}", d, cfg.d_ff) for m in cfg.ffn_in] + [lin(f"l{layer}.ffn2", cfg.d_ff, d)]
    out.append(lin("lm_head", d, cfg.vocab_size))
    return out


def gpu_run(cfg: LLMConfig, baseline: str = "gpu-h100", batch: int = 1, prompt: int = 1,
            generate: int = 1) -> dict[str, float]:
    """Tokens/s, J/token and area of ``batch`` sequences of ``prompt + generate`` tokens on a
    GPU preset (module doc); ``tile_conflicts`` 0 and ``utilization`` = compute time / time
    (the roofline's compute-bound fraction), for the same keys as the 3D simulator."""
    spec = load_baseline(baseline)
    if not isinstance(spec, VonNeumannSpec):
        raise ValueError(f"baseline {baseline!r} is not a GPU/CPU (von Neumann) preset")
    pre = price_baseline(decode_step_workload(cfg, batch * prompt, prompt / 2), spec, batch=batch * prompt)
    dec = price_baseline(decode_step_workload(cfg, batch, prompt + (generate - 1) / 2), spec, batch=batch)
    t_pre = sum(c.latency_ns for c in pre) * batch * prompt
    t_dec = sum(c.latency_ns for c in dec) * batch * generate
    e_pre = sum(c.total_pJ for c in pre) * batch * prompt
    e_dec = sum(c.total_pJ for c in dec) * batch * generate
    busy = sum(c.utilisation * c.latency_ns for c in pre) * batch * prompt + \
        sum(c.utilisation * c.latency_ns for c in dec) * batch * generate
    tokens = batch * generate
    t_ns = t_pre + t_dec
    return {"tokens_per_s": tokens / (t_ns * 1e-9), "J_per_token": (e_pre + e_dec) * 1e-12 / tokens,
            "area_mm2": spec.area_mm2, "tile_conflicts": 0, "utilization": busy / t_ns}
