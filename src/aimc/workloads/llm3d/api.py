"""One call for a whole 3D-AIMC LLM inference study: map, simulate, price the GPU.

Example:
    >>> r = simulate("moe-small", "3d-nvm", "greedy_in_order", batch=1, prompt=4, generate=4)
    >>> r["model"]["name"], r["tokens"], r["tile_conflicts"] >= 0
    ('moe-small', 4, True)
    >>> s = sweep_batch(["dense-small"], batches=(1, 2), prompt=2, generate=2)
    >>> s["batches"], len(s["models"]["dense-small"]["tokens_per_s"])
    ([1, 2], 2)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from aimc.chips import load
from aimc.chips.spec import ChipSpec
from aimc.workloads.llm3d.costs import UnitCosts
from aimc.workloads.llm3d.gpu import gpu_run
from aimc.workloads.llm3d.mapping import ROLES, Placement, map_model
from aimc.workloads.llm3d.model import LLMConfig, load_model
from aimc.workloads.llm3d.sim import Router, simulate_run

__all__ = ["simulate", "sweep_batch", "tier_map", "load_density"]

SWEPT = ("tokens_per_s", "J_per_token", "tile_conflicts", "utilization")


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
            for top-2, or one per layer: ``layers x E`` / ``layers x E x E``; for top-2 also
            ``top2``'s placement order); ``None``: uniform.
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
    cfg, spec, place = _place(model, chip, mapping, n_tiles, split_ffn, stack_embedding, density, seed,
                              pos_embedding_rows)
    if costs == "chip":
        unit = UnitCosts.from_chip(spec, stub_attention=attention == "stub")
    else:
        unit = UnitCosts.threedsim(attention_chip=spec if attention == "real" else None)
    if density is not None and cfg.n_experts and np.ndim(density) == cfg.top_k + 1 \
            and np.shape(density)[0] != cfg.n_layers:
        raise ValueError(f"density has {np.shape(density)[0]} layers, model {cfg.name!r} has {cfg.n_layers}")
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


def _place(model: str | Path | LLMConfig, chip: str | Path | ChipSpec, mapping: str, n_tiles: int | None,
           split_ffn: bool, stack_embedding: bool, density: np.ndarray | None, seed: int,
           pos_embedding_rows: int) -> tuple[LLMConfig, ChipSpec, Placement]:
    cfg, spec = load_model(model), load(chip)
    if n_tiles is not None:
        if n_tiles < 1:
            raise ValueError(f"n_tiles must be >= 1, got {n_tiles}")
        spec = spec.model_copy(update={"n_tiles": int(n_tiles)})
    place = map_model(cfg, spec, mapping, split_ffn=split_ffn, stack_embedding=stack_embedding,
                      density=density if density is not None and cfg.top_k == 2 else None, seed=seed,
                      pos_embedding_rows=pos_embedding_rows)
    return cfg, spec, place


def sweep_batch(models: Sequence[str | Path | LLMConfig], chip: str | Path | ChipSpec = "3d-nvm",
                mapping: str = "greedy_in_order", batches: Sequence[int] = (1, 4, 16, 64),
                baseline: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """:func:`simulate` each model at each batch size (other arguments as :func:`simulate`).

    Returns:
        ``batches``, ``chip``, ``mapping``, ``baseline``, the ``prompt``, ``generate`` and
        ``attention`` given, and ``models``: per model name the
        lists (one entry per batch) of ``tokens_per_s``, ``J_per_token``, ``tile_conflicts``,
        ``utilization``, its ``area_mm2``, ``total_params``, ``active_params`` and, with
        ``baseline``, ``baseline``: the GPU's ``tokens_per_s`` and ``J_per_token`` lists.
    """
    if not batches or min(batches) < 1:
        raise ValueError(f"batches must be a non-empty list of sizes >= 1, got {list(batches)}")
    out: dict[str, Any] = {"batches": [int(b) for b in batches], "mapping": mapping, "baseline": baseline,
                           "models": {}}
    out.update({k: kwargs[k] for k in ("prompt", "generate", "attention") if k in kwargs})
    for model in models:
        runs = [simulate(model, chip, mapping, batch=int(b), baseline=baseline, **kwargs) for b in batches]
        name = runs[0]["model"]["name"]
        row: dict[str, Any] = {k: [r[k] for r in runs] for k in SWEPT}
        row.update(area_mm2=runs[0]["area_mm2"], total_params=runs[0]["model"]["total_params"],
                   active_params=runs[0]["model"]["active_params"])
        if baseline is not None:
            row["baseline"] = {k: [r["baseline"][k] for r in runs] for k in ("tokens_per_s", "J_per_token")}
            row["baseline"]["area_mm2"] = runs[0]["baseline"]["area_mm2"]
        out["models"][name] = row
        out["chip"] = runs[0]["chip"]
    return out


def tier_map(model: str | Path | LLMConfig, chip: str | Path | ChipSpec = "3d-nvm",
             mapping: str = "greedy_in_order", split_ffn: bool = True, stack_embedding: bool = True,
             density: np.ndarray | None = None, seed: int = 0, pos_embedding_rows: int = 0,
             n_tiles: int | None = None) -> dict[str, Any]:
    """What every tier of every tile holds after mapping (arguments as :func:`simulate`).

    Returns:
        ``grid`` (``(n_tiers, n_tiles)`` codes of :data:`~aimc.workloads.llm3d.mapping.ROLES`),
        ``roles`` (their names), ``tiers_used`` per tile, ``occupancy``, ``model``, ``chip``, ``mapping``.

    Example:
        >>> m = tier_map("threedsim-readme")
        >>> m["grid"].shape, m["tiers_used"][:3], m["roles"][0]
        ((1024, 100), [2, 1, 1], 'empty')
    """
    cfg, spec, place = _place(model, chip, mapping, n_tiles, split_ffn, stack_embedding, density, seed,
                              pos_embedding_rows)
    return {"grid": place.tier_roles(), "roles": list(ROLES), "tiers_used": place.tiers_used.tolist(),
            "occupancy": place.occupancy, "model": cfg.name, "chip": spec.name, "mapping": mapping}


def load_density(path: str | Path) -> np.ndarray:
    """An expert-choice density from a JSON file: a list (``E``: top-1 frequencies), a
    matrix (``E x E``: top-2 co-activation, or ``layers x E`` for top-1 per layer) or
    ``layers x E x E``, or an object whose ``density`` key holds one of those (as
    ``benchmarks/moe_coactivation.py`` writes). Entries must be finite and >= 0, each
    layer's sum > 0.

    Raises:
        FileNotFoundError: no such file.
        ValueError: bad JSON or a bad array (the message names the file).
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: not a JSON file ({e})") from None
    if isinstance(data, dict):
        if "density" not in data:
            raise ValueError(f"{p}: a JSON object needs a 'density' key")
        data = data["density"]
    try:
        arr = np.asarray(data, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{p}: density must be a (nested) list of numbers of equal lengths") from None
    if arr.ndim not in (1, 2, 3) or arr.size == 0:
        raise ValueError(f"{p}: density must have 1 to 3 dimensions and entries, got shape {arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{p}: density entries must be finite and >= 0")
    sums = arr.reshape(arr.shape[0], -1).sum(axis=1) if arr.ndim == 3 else np.array([arr.sum()])
    if (sums <= 0).any():
        raise ValueError(f"{p}: density must have a positive sum (per layer)")
    return arr
