"""One call for a whole 3D-AIMC LLM inference study: map, simulate, price the GPU.

Example:
    >>> r = simulate("moe-small", "3d-nvm", "greedy_in_order", batch=1, prompt=4, generate=4)
    >>> r["model"]["name"], r["tokens"], r["tile_conflicts"] >= 0
    ('moe-small', 4, True)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aimc.chips import load
from aimc.chips.spec import ChipSpec
from aimc.workloads.llm3d.costs import UnitCosts
from aimc.workloads.llm3d.gpu import gpu_run
from aimc.workloads.llm3d.mapping import map_model
from aimc.workloads.llm3d.model import LLMConfig, load_model
from aimc.workloads.llm3d.sim import Router, simulate_run

__all__ = ["simulate"]


def simulate(model: str | Path | LLMConfig, chip: str | Path | ChipSpec = "3d-nvm",
             mapping: str = "greedy_in_order", batch: int = 1, prompt: int = 16, generate: int = 16,
             baseline: str | None = None, kv_cache: bool = True, attention: str = "real",
             split_ffn: bool = True, stack_embedding: bool = True, density: np.ndarray | None = None,
             seed: int = 0, costs: str = "chip", pos_embedding_rows: int = 0,
             n_tiles: int | None = None) -> dict[str, Any]:
    """Map ``model`` on a 3D ``chip`` with ``mapping``, simulate ``batch`` sequences of
    ``prompt`` + ``generate`` tokens and report one JSON-ready dict.

    Args:
        attention: ``real`` (QK^T and AV priced on the attention unit, KV cache from DRAM:
            :class:`~aimc.workloads.llm3d.costs.UnitCosts`) or ``stub`` (threedsim's 1 ns / 1 nJ).
        density: expert-choice density for routing (``E`` for top-1, ``E x E`` co-activation
            for top-2; also ``top2``'s placement order); ``None``: uniform.
        baseline: a GPU preset (``gpu-h100``, ``gpu-a100``) priced for the same run.
        costs: ``chip`` (every op from the chip spec) or ``threedsim`` (threedsim's fixed
            per-op constants; ``attention="real"`` then prices attention from the chip).
        pos_embedding_rows: a positional-embedding table stored on the chip (threedsim's).
        n_tiles: override the chip's tile count (e.g. 175 tiles of ``3d-nvm`` hold Mixtral 8x7B).

    Returns:
        ``tokens_per_s``, ``J_per_token``, ``area_mm2``, ``tile_conflicts``, ``utilization``
        (busy fraction of the tiles holding weights), ``tier_occupancy``, ``time_ns``,
        ``energy_nJ``, ``energy_breakdown_nJ``, ``tokens``, ``ops``, ``model`` (sizes and
        parameter counts), and ``baseline`` (same first five keys) if asked.

    Raises:
        ConfigError / MappingError / ValueError: unknown model, chip or strategy, a model
            larger than the chip, non-positive sizes.
    """
    if attention not in ("real", "stub"):
        raise ValueError(f"attention must be 'real' or 'stub', got {attention!r}")
    if costs not in ("chip", "threedsim"):
        raise ValueError(f"costs must be 'chip' or 'threedsim', got {costs!r}")
    cfg, spec = load_model(model), load(chip)
    if n_tiles is not None:
        if n_tiles < 1:
            raise ValueError(f"n_tiles must be >= 1, got {n_tiles}")
        spec = spec.model_copy(update={"n_tiles": int(n_tiles)})
    place = map_model(cfg, spec, mapping, split_ffn=split_ffn, stack_embedding=stack_embedding,
                      density=density if density is not None and np.ndim(density) == 2 else None, seed=seed,
                      pos_embedding_rows=pos_embedding_rows)
    if costs == "chip":
        unit = UnitCosts.from_chip(spec, stub_attention=attention == "stub")
    else:
        unit = UnitCosts.threedsim(attention_chip=spec if attention == "real" else None)
    router = Router(cfg.n_experts, cfg.top_k, density=density, seed=seed) if cfg.n_experts else None
    r = simulate_run(cfg, place, unit, batch=batch, prompt=prompt, generate=generate, kv_cache=kv_cache,
                     router=router)
    out: dict[str, Any] = {
        "tokens_per_s": r.tokens_per_s, "J_per_token": r.J_per_token,
        "area_mm2": spec.n_tiles * unit.tile_area_mm2, "tile_conflicts": r.tile_conflicts,
        "utilization": r.utilization, "tier_occupancy": place.occupancy, "time_ns": r.time_ns,
        "energy_nJ": r.energy_nJ, "energy_breakdown_nJ": r.energy_breakdown_nJ, "tokens": r.tokens,
        "ops": r.extra["ops"], "chip": spec.name, "mapping": mapping, "batch": batch, "prompt": prompt,
        "generate": generate, "kv_cache": kv_cache, "attention": attention, "costs": costs,
        "model": {"name": cfg.name, "d_model": cfg.d_model, "n_layers": cfg.n_layers, "n_experts": cfg.n_experts,
                  "top_k": cfg.top_k, "total_params": cfg.total_params, "active_params": cfg.active_params},
    }
    if baseline is not None:
        out["baseline"] = {"name": baseline, **gpu_run(cfg, baseline, batch=batch, prompt=prompt, generate=generate)}
    return out
