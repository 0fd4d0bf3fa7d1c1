"""Von Neumann baseline (GPU, CPU): a roofline per layer with a memory-traffic energy model.

For each layer at batch ``B`` (per inference unless noted):

* operations ``ops = 2 * macs``; weight bytes ``W * b_w / 8`` cross the DRAM/HBM
  interface **once per batch** (weights are shared by the batch), so per inference
  ``W * b_w / 8 / B``; activations (unique inputs + outputs) ``(x + y) * b_a / 8`` per
  inference; a non-stationary "weight" (attention's K, V) is an activation of each
  sample, read per inference.
* time of the batch ``t = max(B * ops / peak, bytes_batch / BW)`` (the roofline, with no
  kernel-launch overhead: optimistic for the GPU at small sizes); ``latency_ns`` is
  ``t / B``, the time per inference, consistent with the energy per inference.
* energy: ``digital`` = ``macs * mac_pJ``; ``data_movement`` = DRAM bits * ``dram_pJ_per_bit`` plus
  on-chip SRAM staging (each DRAM bit written into and read out of the last-level SRAM
  once: ``2 * bits * sram_pJ_per_bit``), split in ``detail_pJ`` into ``weights`` and
  ``activations``; ``static`` = ``static_power_W * t / B``.
* ``mac_pJ`` (``mac_energy``): ``tdp`` (default in the presets) charges a MAC the
  dynamic power the chip draws at its datasheet peak, ``(tdp_W - static_power_W) /
  (peak_ops / 2)``: arithmetic plus the register-file/shared-memory operand delivery and
  control a real GPU spends (A100 int8: 1.12 pJ/MAC, i.e. 1.56 TOPS/W when compute
  bound, as a TDP-limited GEMM runs). ``horowitz`` charges the arithmetic alone
  (Horowitz 45 nm scaled to the node by Stillmaker-Baas; A100: 0.017 pJ): a lower bound.
* ``area_mm2``: the die, shared in time: each layer gets ``die * t_layer / t_model`` so
  the layers sum to the die.

At batch 1 an MVM has 2 operations per weight byte (int8), far below the ridge point
``peak / BW`` (A100 int8: 624e12 / 1.555e12 = 401 ops/byte): memory bound, and the
weight read dominates both time and energy -- the memory wall.

Example:
    >>> from aimc.cost.baselines import load_baseline
    >>> from aimc.graph.workload import mvm_workload
    >>> spec = load_baseline("gpu-a100")
    >>> c = price_von_neumann(mvm_workload(4096, 4096), spec)[0]
    >>> round(c.latency_ns, 1)       # (16.8 MB int8 weights + 8 kB activations) / 1.555 TB/s
    10794.5
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from aimc.config import BaseConfig
from aimc.cost.baselines.technology import HOROWITZ_45NM_PJ, node_energy_scale
from aimc.graph.builders import is_stationary, weights_stored, x_elements, y_elements
from aimc.cost.layer_cost import BREAKDOWN, LayerCost
from aimc.graph.workload import LayerWork
__all__ = ["VonNeumannSpec", "price_von_neumann", "roofline_arrays"]

Precision = Literal["int8", "fp16", "fp32"]
_BITS = {"int8": 8, "fp16": 16, "fp32": 32}


class VonNeumannSpec(BaseConfig):
    """A processor with off-chip DRAM/HBM: datasheet throughput and bandwidth, cited energies.

    Attributes:
        name: preset name.
        kind: ``gpu`` or ``cpu``.
        description: one line.
        sources: citations, one per constant (free text).
        precision: arithmetic the model runs in (sets peak, MAC energy, bytes per value).
        peak_tops: dense peak throughput by precision, 10^12 operations/s (1 MAC = 2 ops).
        mem_bw_GBps: DRAM/HBM bandwidth, 10^9 bytes/s.
        dram_pJ_per_bit: DRAM/HBM access + I/O energy per bit moved.
        node_nm: logic technology node (7..130 nm) for the Stillmaker-Baas scaling.
        vdd_V: logic supply used for the scaling.
        sram_pJ_per_bit_45nm: on-chip SRAM energy per bit at 45 nm (Horowitz), scaled.
        static_power_W: power drawn regardless of work (idle), charged for the run time.
        tdp_W: thermal design power (the power at peak throughput for ``mac_energy=tdp``).
        mac_energy: ``tdp`` (datasheet-calibrated, with operand delivery) or ``horowitz``
            (arithmetic only); module doc.
        die_area_mm2: processor die area.
    """

    name: str
    kind: Literal["gpu", "cpu"]
    description: str = ""
    sources: list[str] = Field(default_factory=list)
    precision: Precision = "int8"
    peak_tops: dict[Precision, float]
    mem_bw_GBps: float = Field(gt=0)
    dram_pJ_per_bit: float = Field(gt=0)
    node_nm: float = Field(ge=7, le=130)
    vdd_V: float = Field(gt=0, le=2.0)
    sram_pJ_per_bit_45nm: float = Field(HOROWITZ_45NM_PJ["sram_1MB_per_bit"], gt=0)
    static_power_W: float = Field(0.0, ge=0)
    tdp_W: float = Field(gt=0)
    die_area_mm2: float = Field(gt=0)
    mac_energy: Literal["tdp", "horowitz"] = "tdp"

    @model_validator(mode="after")
    def _check(self):
        if self.precision not in self.peak_tops:
            raise ValueError(f"peak_tops has no entry for precision {self.precision!r} "
                             f"(has {sorted(self.peak_tops)})")
        for p, v in self.peak_tops.items():
            if not v > 0:
                raise ValueError(f"peak_tops.{p} must be > 0, got {v}")
        if self.static_power_W >= self.tdp_W:
            raise ValueError(f"static_power_W ({self.static_power_W}) must be below tdp_W ({self.tdp_W})")
        return self

    @property
    def area_mm2(self) -> float:
        """The die area (alias read by ``aimc.cost.estimate``'s baseline summary)."""
        return self.die_area_mm2

    @property
    def bits(self) -> int:
        """Bits per weight and per activation at ``precision``."""
        return _BITS[self.precision]

    @property
    def energy_scale(self) -> float:
        """Horowitz 45 nm / 0.9 V -> this node and supply (Stillmaker-Baas)."""
        return node_energy_scale(self.node_nm, self.vdd_V)

    @property
    def mac_pJ(self) -> float:
        """Energy of one MAC at ``precision`` (``mac_energy`` says how; module doc)."""
        if self.mac_energy == "tdp":
            return (self.tdp_W - self.static_power_W) / (self.peak_ops_per_s / 2.0) * 1e12
        return self.mac_pJ_horowitz

    @property
    def mac_pJ_horowitz(self) -> float:
        """Arithmetic-only MAC energy: Horowitz 45 nm scaled to this node (a lower bound)."""
        return HOROWITZ_45NM_PJ[f"mac_{self.precision}"] * self.energy_scale

    @property
    def sram_pJ_per_bit(self) -> float:
        """On-chip SRAM energy per bit on this node."""
        return self.sram_pJ_per_bit_45nm * self.energy_scale

    @property
    def peak_ops_per_s(self) -> float:
        return self.peak_tops[self.precision] * 1e12

    @property
    def ridge_ops_per_byte(self) -> float:
        """Arithmetic intensity above which a layer is compute bound."""
        return self.peak_ops_per_s / (self.mem_bw_GBps * 1e9)


def roofline_arrays(layers: list[LayerWork], spec: VonNeumannSpec, batch: int = 1) -> dict[str, np.ndarray]:
    """Per-layer roofline quantities as arrays (one entry per layer).

    Returns:
        dict with ``ops`` (per inference), ``w_bytes`` (stationary weights, per batch),
        ``a_bytes`` (activations + non-stationary operands, per inference),
        ``t_compute_ns`` / ``t_memory_ns`` / ``t_ns`` (per batch) and ``intensity``
        (ops per DRAM byte of the batch).

    Example:
        >>> from aimc.cost.baselines import load_baseline
        >>> from aimc.graph.workload import mvm_workload
        >>> r = roofline_arrays(mvm_workload(1024, 1024), load_baseline("gpu-a100"), batch=1)
        >>> float(r["t_ns"][0]) == max(float(r["t_compute_ns"][0]), float(r["t_memory_ns"][0]))
        True
    """
    if int(batch) < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    b = int(batch)
    byte = spec.bits / 8.0
    stat = np.array([is_stationary(w) for w in layers], dtype=bool)
    wst = np.array([weights_stored(w) for w in layers], dtype=np.float64)
    macs = np.array([w.macs for w in layers], dtype=np.float64)
    act = np.array([x_elements(w) + y_elements(w) for w in layers], dtype=np.float64)
    w_bytes = np.where(stat, wst, 0.0) * byte                 # once per batch
    a_bytes = (act + np.where(stat, 0.0, wst)) * byte          # per inference
    ops = 2.0 * macs
    t_c = b * ops / spec.peak_ops_per_s * 1e9
    t_m = (w_bytes + b * a_bytes) / (spec.mem_bw_GBps * 1e9) * 1e9
    return {"ops": ops, "macs": macs, "w_bytes": w_bytes, "a_bytes": a_bytes, "t_compute_ns": t_c,
            "t_memory_ns": t_m, "t_ns": np.maximum(t_c, t_m),
            "intensity": b * ops / np.maximum(w_bytes + b * a_bytes, 1e-30)}


def price_von_neumann(layers: list[LayerWork], spec: VonNeumannSpec, batch: int = 1) -> list[LayerCost]:
    """Price each layer on a GPU/CPU (module doc); energies and latency per inference."""
    if not layers:
        return []
    r = roofline_arrays(layers, spec, batch)
    b = float(batch)
    w_bits_inf = r["w_bytes"] * 8.0 / b                        # per inference
    a_bits_inf = r["a_bytes"] * 8.0
    per_bit = spec.dram_pJ_per_bit + 2.0 * spec.sram_pJ_per_bit
    e_w, e_a = w_bits_inf * per_bit, a_bits_inf * per_bit
    e_mac = r["macs"] * spec.mac_pJ
    t_inf = r["t_ns"] / b
    e_static = spec.static_power_W * t_inf * 1e3               # W * ns = nJ -> pJ
    util = np.where(r["t_ns"] > 0, r["t_compute_ns"] / np.maximum(r["t_ns"], 1e-30), 0.0)
    total_t = float(r["t_ns"].sum())
    area = spec.die_area_mm2 * (r["t_ns"] / total_t if total_t > 0 else np.full(len(layers), 1 / len(layers)))
    out = []
    for i, w in enumerate(layers):
        out.append(LayerCost(
            name=w.name,
            energy_pJ=dict.fromkeys(BREAKDOWN, 0.0) | {"digital": float(e_mac[i]),
                       "data_movement": float(e_w[i] + e_a[i]), "static": float(e_static[i])},
            latency_ns=float(t_inf[i]), macs=int(w.macs), area_mm2=float(area[i]), tiles=0,
            utilisation=float(util[i]),
            detail_pJ={"weights": float(e_w[i]), "activations": float(e_a[i]),
                       "weights_dram": float(w_bits_inf[i] * spec.dram_pJ_per_bit),
                       "activations_dram": float(a_bits_inf[i] * spec.dram_pJ_per_bit)},
            label=w.label))
    return out
