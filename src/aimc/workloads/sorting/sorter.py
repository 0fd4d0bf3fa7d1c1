"""Sort numbers on a simulated 1T1R memristor array: strategies, engines, errors and cost.

Strategies (arXiv:2309.10350's names; the mechanisms in :mod:`.search`):

* ``bit-traversal``: no recorded states, ``D`` reads per search (Prasad et al., HPCA 2021);
* ``tns``: Tree Node Skipping with ``states`` recorded states;
* ``multi-bank``: TNS over data split across banks (at least 2, or ``banks``): every bank
  reads the same column in parallel and the "a 0 exists" flags are OR-ed globally, so the
  trie and the read count are those of one array; each step costs every bank's read;
* ``bit-slice``: TNS with the key's digits split over arrays of ``slice_digits`` columns; a
  search crossing a slice boundary hands the candidate mask to the next array;
* ``multi-level``: TNS on 2-bit multi-level cells (a 4-ary trie, half the digits; three
  references per read with a quarter of the binary margin, :mod:`aimc.tiles.sense`).

Any strategy spreads rows over ``ceil(n / chip.rows)`` banks when the data exceed one
array; a key wider than ``chip.cols`` cells needs ``bit-slice``. Engines: ``search`` reads
one search at a time (fresh read noise per read); ``trie`` senses each cell once and
replays the searches from the trie (exact without per-read noise, vectorised: 1 M keys in
seconds); ``auto`` takes ``trie`` when reads are noise-free, else ``search``.

Example:
    >>> r = sort_keys([5, -3, 2, 2, 9], chip="ideal", strategy="tns", states=2)
    >>> r.values.tolist(), r.sorted_ok, r.errors
    ([-3, 2, 2, 5, 9], True, 0)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from aimc.chips import ChipSpec, load
from aimc.cost.sorting import SortCost, SortCostConfig, digital_sort_cost, sim_sort_cost
from aimc.tiles.sense import has_read_noise, program_digits, sense_all
from aimc.workloads.sorting.encoding import encode_keys, to_digits
from aimc.workloads.sorting.search import SENSES, SearchCounts, search_sort
from aimc.workloads.sorting.trie import trie_sort

__all__ = ["STRATEGIES", "ENGINES", "SortResult", "sort_keys", "with_device"]

STRATEGIES = ("bit-traversal", "tns", "multi-bank", "bit-slice", "multi-level")
ENGINES = ("auto", "search", "trie")


@dataclass
class SortResult:
    """A sort's output, its exactness and its cost.

    Attributes:
        values: the keys in output order (the input values; ``top_k`` of them if set).
        order: their input indices.
        errors: output positions whose key differs from an exact sort's (one misread key
            shifts every key between its true and its output place).
        inversions: neighbouring output pairs in the wrong order (local disorder, which
            does not saturate the way ``errors`` does).
        counts: the engine's counts.
        cost: the in-memory sorter's cost.
        digital: a merge-sort tree on SRAM (:func:`~aimc.cost.sorting.digital_sort_cost`).
        dram: merge passes over DRAM.
        bits: key width; digits: columns per key; levels: per cell.
        banks: arrays the rows span; slices: arrays the digits span; states: recorded states.
        strategy: the strategy; engine: the engine that ran.
    """

    values: np.ndarray
    order: np.ndarray
    errors: int
    inversions: int
    counts: SearchCounts
    cost: SortCost
    digital: SortCost
    dram: SortCost
    bits: int
    digits: int
    levels: int
    banks: int
    slices: int
    states: int
    strategy: str
    engine: str

    @property
    def sorted_ok(self) -> bool:
        return self.errors == 0

    def summary(self) -> dict[str, Any]:
        """The ``aimc sort --json`` object."""
        n = int(self.order.size)
        c, d = self.cost, self.digital
        return {
            "n": n, "bits": self.bits, "strategy": self.strategy, "states": self.states, "engine": self.engine,
            "levels": self.levels, "digits": self.digits, "banks": self.banks, "slices": self.slices,
            "reads": self.counts.reads, "reads_per_key": self.counts.reads / n, "searches": self.counts.searches,
            "cell_reads_per_key": self.counts.cell_reads / n,
            "energy_pJ_per_key": c.energy_pJ_per_key, "latency_ns_per_key": c.latency_ns_per_key,
            "area_mm2": c.area_mm2, "digital_energy_pJ_per_key": d.energy_pJ_per_key,
            "digital_latency_ns_per_key": d.latency_ns_per_key, "digital_area_mm2": d.area_mm2,
            "dram_energy_pJ_per_key": self.dram.energy_pJ_per_key, "dram_latency_ns_per_key": self.dram.latency_ns_per_key,
            "arrays": self.banks * self.slices, "errors": self.errors, "inversions": self.inversions,
            "sorted_ok": self.sorted_ok,
        }


def _chip(chip: str | ChipSpec) -> ChipSpec:
    return load(chip) if isinstance(chip, str) else chip


def with_device(spec: ChipSpec, fields: dict[str, Any]) -> ChipSpec:
    """The chip with device-model fields replaced (validated again). ``on_off_ratio`` also
    sets ``g_min_uS = g_max_uS / on_off_ratio``; ``p_stuck`` splits a total stuck-at rate
    equally into ``p_stuck_on`` and ``p_stuck_off``.

    Raises:
        ValueError: a field the chip's device model does not have, or an invalid value.
    """
    if not fields:
        return spec
    upd = {k: v for k, v in fields.items() if v is not None}
    if "p_stuck" in upd:
        p = float(upd.pop("p_stuck"))
        upd["p_stuck_on"] = upd["p_stuck_off"] = p / 2
    d = spec.device.model_dump()
    for k in upd:
        if k not in d:
            raise ValueError(f"the {spec.device.kind} device of chip {spec.name!r} has no field {k!r}")
    if "on_off_ratio" in upd:
        upd["g_min_uS"] = upd.get("g_max_uS", d["g_max_uS"]) / float(upd["on_off_ratio"])
    dev = type(spec.device).from_dict({**d, **upd}, source=f"device of chip {spec.name!r}")
    return spec.model_copy(update={"device": dev})


def sort_keys(values: Sequence[Any] | np.ndarray | torch.Tensor, chip: str | ChipSpec = "rram-1t1r",
              strategy: str = "tns", states: int = 2, *, bits: int | None = None, descending: bool = False,
              top_k: int | None = None, banks: int | None = None, slice_digits: int = 8, sense: str = "row",
              engine: str = "auto", t_s: float = 0.0, seed: int = 0, device: dict[str, Any] | None = None,
              cost: SortCostConfig | None = None) -> SortResult:
    """Sort numbers on a simulated sort-in-memory array (module doc).

    Args:
        values: integers or floats (:func:`~aimc.workloads.sorting.encoding.encode_keys`).
        chip: preset name, YAML path or spec: its device model and array geometry.
        strategy: one of :data:`STRATEGIES`. states: recorded states (ignored by bit-traversal).
        bits: key width (default: what the values need; floats 64).
        descending, top_k: max searches; stop after ``top_k`` keys.
        banks: multi-bank only: banks to split over (default ``max(2, ceil(n / rows))``).
        slice_digits: bit-slice only: columns per slice array (at most ``chip.cols``).
        sense: ``row`` or ``current`` (:func:`~aimc.workloads.sorting.search.search_sort`).
        engine: one of :data:`ENGINES`. t_s: seconds after programming. seed: all draws.
        device: device-model fields to override (:func:`with_device`), e.g.
            ``{"read_noise_rel": 0.05, "on_off_ratio": 5}``.
        cost: sorting cost parameters (default :class:`~aimc.cost.sorting.SortCostConfig`).

    Raises:
        ValueError: empty data, NaN keys, unknown strategy/engine/sense, a key wider than
            the array (without bit-slice). The arrays needed (``summary()["arrays"]``) are
            not capped by the chip's ``n_tiles``: the simulator sorts any size.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if sense not in SENSES:
        raise ValueError(f"sense must be one of {', '.join(SENSES)}, got {sense!r}")
    if states < 0:
        raise ValueError(f"states must be >= 0, got {states}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    spec = with_device(_chip(chip), device or {})
    enc = encode_keys(values, bits=bits)
    n = int(enc.keys.size)
    bpc = 2 if strategy == "multi-level" else 1
    levels = 1 << bpc
    dig = to_digits(enc.keys, enc.bits, bpc)
    n_dig = int(dig.shape[1])
    k = 0 if strategy == "bit-traversal" else int(states)
    slice_w = min(int(slice_digits), spec.cols) if strategy == "bit-slice" else n_dig
    if slice_w < 1:
        raise ValueError(f"slice_digits must be >= 1, got {slice_digits}")
    if strategy != "bit-slice" and n_dig > spec.cols:
        raise ValueError(f"{enc.bits}-bit keys need {n_dig} columns but the chip's arrays have {spec.cols}: "
                         "use strategy 'bit-slice' or a narrower --bits")
    slices = math.ceil(n_dig / slice_w)
    n_banks = math.ceil(n / spec.rows)
    if strategy == "multi-bank":
        n_banks = max(n_banks, 2 if banks is None else int(banks))
        if n_banks > n:
            n_banks = n
    rows = math.ceil(n / n_banks)
    gen = torch.Generator().manual_seed(int(seed))
    arr = program_digits(dig, levels, spec.device, gen, t_s=t_s, read_noise=spec.noise.read_noise)
    noisy = has_read_noise(arr)
    use = engine if engine != "auto" else ("search" if noisy or sense == "current" else "trie")
    if use == "trie":
        if sense == "current":
            raise ValueError("sense 'current' decides per read: it needs engine 'search'")
        counts = trie_sort(sense_all(arr, gen).numpy(), levels, states=k, descending=descending, top_k=top_k)
    else:
        counts = search_sort(arr, states=k, descending=descending, top_k=top_k, sense=sense, generator=gen)
    order = counts.order
    vals = np.asarray(values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values)
    exact = np.argsort(enc.keys, kind="stable")
    if descending:
        exact = np.argsort(~enc.keys, kind="stable")
    errors = int(np.count_nonzero(enc.keys[order] != enc.keys[exact[: order.size]]))
    ko = enc.keys[order]
    inversions = int(np.count_nonzero((ko[1:] < ko[:-1]) if not descending else (ko[1:] > ko[:-1])))
    starts = n_dig - np.asarray(counts.reads_per_search, dtype=np.int64)
    handoffs = int(((n_dig - 1) // slice_w - starts // slice_w).sum()) if slices > 1 else 0
    cfg = cost or SortCostConfig()
    g_mean = float(arr.g_read_uS.mean())
    sim = sim_sort_cost(int(order.size), counts.reads, counts.cell_reads, counts.pushes, handoffs, digits=n_dig,
                        levels=levels, rows=rows, banks=n_banks, states=k, g_mean_uS=g_mean, cfg=cfg)
    return SortResult(vals[order], order, errors, inversions, counts, sim, digital_sort_cost(n, enc.bits, cfg),
                      digital_sort_cost(n, enc.bits, cfg, memory="dram"), enc.bits, n_dig, levels, n_banks, slices, k,
                      strategy, use)
