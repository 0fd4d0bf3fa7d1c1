"""Cost of sorting: a digit-read sort-in-memory array and a comparator-based digital sorter.

**In-memory sorter** (one digit read = one step). Per read, for each active (candidate)
row: its word line is charged (``cols · c_cell · V_wl²``), its cell conducts
``G V_read² t_read``, its sense amplifier fires ``L - 1`` comparisons (a flash sense for
``L`` levels) and its mask bit is updated; per bank and read the bit line of the column is
charged (``rows · c_cell · V_read²``) and the amplifiers' outputs are OR-reduced (``rows``
gate operations). A recorded state (Tree Node Skipping) writes one mask of ``rows`` bits;
each output key is read out once (a row read of ``D`` cells). A bit-slice hand-off moves
the candidate mask (``rows`` bits) to the next slice's array. Time: ``t_read_ns`` per read
(all banks in parallel) plus ``t_or_ns`` per read for the global OR across banks (multi-bank)
and ``t_logic_ns`` per slice hand-off. Area: cells, one amplifier per row and level
comparison, ``k + 2`` mask registers per row (candidate, live and ``k`` recorded
states), one word-line driver per row.

**Digital sorter** (the like-for-like baseline): a pipelined merge-sort tree of
``ceil(log2 n)`` comparator stages streaming one key per clock, whose FIFOs buffer ``n``
keys in SRAM: per key and stage, one ``W``-bit comparison and one SRAM write plus read of
the key. Energy per key ``ceil(log2 n) (E_cmp + 2 W E_sram/bit)``, time per key ``1/f``
(throughput), area ``ceil(log2 n)`` comparators and pipeline registers plus ``n W`` SRAM bits.
With ``memory="dram"`` the same merge passes stream the keys from and to DRAM (a von
Neumann system whose data do not fit on chip): per key and pass one comparison and a DRAM
read plus write of the key, time ``2 W / 8`` bytes over the channel bandwidth per key and
pass (or ``1/f``, whichever is longer); no SRAM area is counted.

Units: energy pJ (fJ where named), time ns, area µm². Every default's source or the reason
it is assumed is in :data:`SORT_COST_SOURCES`; digital numbers at 45 nm are scaled to the
sorter's node with ``E ∝ F`` (same voltage: ``C V²`` with ``C ∝ F``) and ``A ∝ F²``.

Example:
    >>> c = SortCostConfig()
    >>> round(digital_sort_cost(1024, 32, c).energy_pJ_per_key, 1)
    89.8
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import Field

from aimc.config import BaseConfig

__all__ = ["SortCostConfig", "SORT_COST_SOURCES", "SortCost", "sim_sort_cost", "digital_sort_cost"]

SORT_COST_SOURCES = [
    "Node 40 nm: the column-skipping sorter prototype (L. Yu et al., arXiv:2202.10424, 40 nm 1T1R).",
    "Digital energies at 45 nm: M. Horowitz, Computing's energy problem, ISSCC 2014: 32-bit integer add 0.1 pJ "
    "(a W-bit comparator is a W-bit subtract: 0.1 pJ * W/32), 8 KB SRAM 64-bit read 10 pJ (0.156 pJ/bit; writes "
    "taken equal to reads).",
    "Digital areas at 45 nm: Nangate/FreePDK45 open cell library, DFF_X1 4.522 um^2, FA_X1 4.256 um^2 (a W-bit "
    "comparator: W full adders); 6T SRAM cell 0.346 um^2 (K. Mistry et al., IEDM 2007, Intel 45 nm) at an "
    "assumed 70 % array efficiency.",
    "DRAM: Horowitz ISSCC 2014, 64-bit DRAM access 1.3-2.6 nJ (2.0 nJ taken: 31 pJ/bit); one DDR4-3200 channel, "
    "3200 MT/s x 8 B = 25.6 GB/s (JEDEC JESD79-4).",
    "Assumed (no published per-component figures of the memristive sorters were available to us; the papers' "
    "full texts were not): digit-read time 5 ns (embedded 40 nm RRAM macros read in ~5-20 ns), sense amplifier "
    "10 fJ per comparison (a latch: a few gate switchings; Horowitz 45 nm 8-bit add 30 fJ for scale), mask/"
    "register bit update 2 fJ, word-line and bit-line load 0.2 fF per cell, word lines at the 1.1 V core supply, "
    "read voltage 0.2 V (aimc's CostConfig default), 1T1R cell 40 F^2 (0.064 um^2; 40 nm 1T1R cells are "
    "reported at ~0.05-0.1 um^2), sense amplifier area = one DFF, global OR across banks 1 ns, digital clock "
    "1 GHz.",
]


class SortCostConfig(BaseConfig):
    """Energy, time and area parameters of sorting (flat; units in names; sources above).

    Attributes:
        tech_node_nm: node of the sorter (both designs).
        v_read_V, v_wl_V: bit-line read voltage and word-line (gate) voltage.
        t_read_ns: one digit read (word lines up, sense, mask update).
        t_or_ns: global OR of the banks' flags (multi-bank), per read.
        t_logic_ns: one mask hand-off between bit-slice arrays.
        c_cell_fF: word-line and bit-line load per cell.
        sa_fJ: one sense-amplifier comparison; ``reg_bit_fJ``: one register/mask bit update.
        cell_area_F2: 1T1R cell; ``sa_area_um2``, ``dff_area_um2``: per amplifier, per bit
            register (at ``ref_node_nm``); ``fa_area_um2``: full adder (at ``ref_node_nm``).
        ref_node_nm: node of the digital reference numbers (45 nm).
        cmp32_pJ: a 32-bit comparison (at ``ref_node_nm``); ``sram_bit_pJ``: an SRAM bit access.
        sram_cell_um2, sram_efficiency: SRAM cell area (at ``ref_node_nm``), array efficiency.
        f_clk_GHz: the digital sorter's clock.
        dram_bit_pJ, dram_GBps: DRAM energy per bit accessed and channel bandwidth
            (``memory="dram"``; not scaled with the node).
        sources: citation of every value.
    """

    tech_node_nm: float = Field(40.0, gt=0.0, le=1000.0)
    v_read_V: float = Field(0.2, gt=0.0, le=5.0)
    v_wl_V: float = Field(1.1, gt=0.0, le=5.0)
    t_read_ns: float = Field(5.0, gt=0.0, le=1e6)
    t_or_ns: float = Field(1.0, ge=0.0, le=1e6)
    t_logic_ns: float = Field(1.0, ge=0.0, le=1e6)
    c_cell_fF: float = Field(0.2, ge=0.0, le=1e3)
    sa_fJ: float = Field(10.0, ge=0.0, le=1e6)
    reg_bit_fJ: float = Field(2.0, ge=0.0, le=1e6)
    cell_area_F2: float = Field(40.0, gt=0.0, le=1e6)
    sa_area_um2: float = Field(4.522, ge=0.0, le=1e6)
    dff_area_um2: float = Field(4.522, ge=0.0, le=1e6)
    fa_area_um2: float = Field(4.256, ge=0.0, le=1e6)
    ref_node_nm: float = Field(45.0, gt=0.0, le=1000.0)
    cmp32_pJ: float = Field(0.1, ge=0.0, le=1e6)
    sram_bit_pJ: float = Field(10.0 / 64, ge=0.0, le=1e6)
    sram_cell_um2: float = Field(0.346, gt=0.0, le=1e6)
    sram_efficiency: float = Field(0.7, gt=0.0, le=1.0)
    f_clk_GHz: float = Field(1.0, gt=0.0, le=100.0)
    dram_bit_pJ: float = Field(2000.0 / 64, ge=0.0, le=1e6)
    dram_GBps: float = Field(25.6, gt=0.0, le=1e6)
    sources: list[str] = Field(default_factory=lambda: list(SORT_COST_SOURCES))

    @property
    def e_scale(self) -> float:
        """Energy scaling of the 45 nm digital numbers to the node (``E ∝ F``)."""
        return self.tech_node_nm / self.ref_node_nm

    @property
    def a_scale(self) -> float:
        """Area scaling of the 45 nm digital numbers to the node (``A ∝ F²``)."""
        return (self.tech_node_nm / self.ref_node_nm) ** 2


@dataclass(frozen=True)
class SortCost:
    """Energy, time and area of sorting ``n`` keys, with per-key figures and a breakdown (pJ)."""

    n: int
    energy_pJ: float
    time_ns: float
    area_um2: float
    breakdown_pJ: dict[str, float]

    @property
    def energy_pJ_per_key(self) -> float:
        return self.energy_pJ / self.n

    @property
    def latency_ns_per_key(self) -> float:
        return self.time_ns / self.n

    @property
    def throughput_keys_per_us(self) -> float:
        return 1e3 * self.n / self.time_ns

    @property
    def area_mm2(self) -> float:
        return self.area_um2 * 1e-6


def sim_sort_cost(n: int, reads: int, cell_reads: int, pushes: int, handoffs: int, *, digits: int, levels: int,
                  rows: int, banks: int, states: int, g_mean_uS: float, cfg: SortCostConfig) -> SortCost:
    """Cost of a sort on the in-memory sorter from its counts (module doc).

    Args:
        n: keys sorted (rows output); reads, cell_reads, pushes: the engine's counts;
        handoffs: bit-slice mask hand-offs; digits: columns per key (``D``); levels: per cell;
        rows: rows per bank; banks: arrays read in parallel per step; states: recorded states;
        g_mean_uS: mean cell conductance; cfg: the parameters.
    """
    c_v2 = cfg.c_cell_fF * 1e-3  # pJ per cell per V^2
    e = {
        "word_lines": cell_reads * digits * c_v2 * cfg.v_wl_V ** 2,
        "cells": cell_reads * g_mean_uS * cfg.v_read_V ** 2 * cfg.t_read_ns * 1e-3,
        "sense": cell_reads * (levels - 1) * cfg.sa_fJ * 1e-3,
        "masks": cell_reads * cfg.reg_bit_fJ * 1e-3 + pushes * rows * banks * cfg.reg_bit_fJ * 1e-3,
        "bit_lines_or": reads * banks * rows * (c_v2 * cfg.v_read_V ** 2 + cfg.reg_bit_fJ * 1e-3),
        "readout": n * digits * (levels - 1) * cfg.sa_fJ * 1e-3 + n * digits * c_v2 * cfg.v_wl_V ** 2,
        "handoff": handoffs * rows * banks * cfg.reg_bit_fJ * 1e-3,
    }
    t = reads * (cfg.t_read_ns + (cfg.t_or_ns if banks > 1 else 0.0)) + handoffs * cfg.t_logic_ns
    f2 = (cfg.tech_node_nm * 1e-3) ** 2
    per_row = (levels - 1) * cfg.sa_area_um2 * cfg.a_scale + (states + 2) * cfg.dff_area_um2 * cfg.a_scale
    area = banks * rows * (digits * cfg.cell_area_F2 * f2 + per_row + cfg.dff_area_um2 * cfg.a_scale)  # + WL driver
    return SortCost(n, sum(e.values()), t, area, e)


def digital_sort_cost(n: int, bits: int, cfg: SortCostConfig, memory: str = "sram") -> SortCost:
    """Merge sort of ``n`` keys of ``bits`` bits: a pipelined merge tree on SRAM, or merge
    passes over DRAM (module doc)."""
    if n < 1 or bits < 1:
        raise ValueError(f"need n >= 1 and bits >= 1, got n={n}, bits={bits}")
    if memory not in ("sram", "dram"):
        raise ValueError(f"memory must be 'sram' or 'dram', got {memory!r}")
    stages = max(1, math.ceil(math.log2(n))) if n > 1 else 1
    e_cmp = cfg.cmp32_pJ * bits / 32 * cfg.e_scale
    if memory == "dram":
        e = {"compare": n * stages * e_cmp, "dram": n * stages * 2 * bits * cfg.dram_bit_pJ}
        t_key = max(1.0 / cfg.f_clk_GHz, 2 * bits / 8 / cfg.dram_GBps)  # ns per key and pass (GB/s = B/ns)
        area = (bits * cfg.fa_area_um2 + 2 * bits * cfg.dff_area_um2) * cfg.a_scale
        return SortCost(n, sum(e.values()), n * stages * t_key, area, e)
    e_mem = 2 * bits * cfg.sram_bit_pJ * cfg.e_scale
    e = {"compare": n * stages * e_cmp, "sram": n * stages * e_mem}
    area = (stages * (bits * cfg.fa_area_um2 + 2 * bits * cfg.dff_area_um2) * cfg.a_scale
            + n * bits * cfg.sram_cell_um2 * cfg.a_scale / cfg.sram_efficiency)
    return SortCost(n, sum(e.values()), n / cfg.f_clk_GHz, area, e)
