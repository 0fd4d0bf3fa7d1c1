"""Digital SRAM in-memory computing (DIMC): bit-serial inputs, weights stationary in SRAM
macros, exact adder-tree accumulation -- priced from a published macro's figures of merit.

A macro holds ``rows`` inputs x ``cols_ref`` weights of ``ref_weight_bits`` bits (Chih et
al. ISSCC 2021: 64 kb). Each cycle it ANDs one input bit with every stored weight bit and
sums the column in an adder tree; a ``b_x``-bit input takes ``b_x`` cycles (bit-serial),
and a ``b_w``-bit weight spans ``b_w / ref_weight_bits`` reference columns. So the work of
one MAC is ``b_x * b_w`` one-bit products, and from the published efficiency at the
reference precision (``tops_per_w_ref`` at ``ref_input_bits x ref_weight_bits``; 1 MAC =
2 ops):

* energy per 1b x 1b product ``e1 = 2 / (tops_per_w_ref * 1e12) / (b_x,ref * b_w,ref)`` J;
  energy per MAC ``e1 * b_x * b_w`` (``digital``);
* macro area ``A = peak_ops_ref / tops_per_mm2_ref`` with ``peak_ops_ref = 2 * rows *
  cols_ref * f / ref_input_bits``; so the model reproduces the published TOPS/W and
  TOPS/mm2 exactly at the reference precision, and at 8b x 8b gives a quarter of each.
* latency: all macros of a layer work in parallel (weights spatially unrolled); the
  ``n_mvm / groups`` input vectors stream one after another, ``b_x`` cycles each.
* ``data_movement``: input and output activations through an on-chip SRAM buffer; a
  non-stationary matrix (attention) is also written into the macro every inference.
* ``static``: 0 -- leakage is inside the measured TOPS/W.

That is the bare macro. Priced that way it is not comparable to an analog *chip*, whose
cost includes buffers, interconnect, digital accumulation/activation and chip static power.
``price_dimc(..., system=CostConfig)`` wraps the macros in the same system-level
components (:mod:`aimc.cost.components`) with the same parameters the analog estimator
uses for its chip, so the two differ only in the arrays:

* ``data_movement``: ``data_movement_energy_pJ`` on the bytes each macro reads and
  writes: ``K * macro_cols`` input bytes (the input vector is broadcast to every column
  of macros) and ``N * macro_rows`` partial sums of ``psum_bits`` (exact sums are
  ``b_x + b_w + log2(rows)`` bits wide, where an analog tile's ADC emits 8), plus the
  per-active-macro ``buffer_power_mW``;
* ``digital``: the macro MACs plus ``digital_energy_pJ`` (accumulating the partial sums of
  ``K/rows`` row macros, affine scaling and activation once per output) and the
  per-active-macro ``digital_power_mW``;
* ``static``: the chip's ``static_power_mW`` for the layer's time; latency adds
  ``avg_hops * hop_latency_ns`` per layer, as for the analog chip.

The macro area is that of the macros alone (the published TOPS/mm2 covers the macro): the
system's buffers and digital units add no area here, which favours digital IMC in
TOPS/mm2 and weights/mm2 when compared with an analog core area that includes them.

Precision: exact integer arithmetic (no ADC, no analog noise): the macro computes the
same result as ``torch.matmul`` on the quantised operands.

Example:
    >>> from aimc.cost.baselines import load_baseline
    >>> spec = load_baseline("dimc-22nm").replace(input_bits=4, weight_bits=4)
    >>> round(spec.tops_per_w, 1), round(spec.tops_per_mm2, 1)   # Chih et al. ISSCC 2021
    (89.0, 16.3)
"""
from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from aimc.config import BaseConfig
from aimc.cost import components as C
from aimc.cost.baselines.technology import HOROWITZ_45NM_PJ, node_energy_scale
from aimc.graph.builders import is_stationary, weights_stored, x_elements, y_elements
from aimc.chips.cost_params import CostConfig
from aimc.cost.layer_cost import BREAKDOWN, LayerCost
from aimc.graph.workload import LayerWork
from aimc.tiles.periphery import exact_psum_bits
__all__ = ["DIMCSpec", "price_dimc"]


class DIMCSpec(BaseConfig):
    """A digital SRAM IMC design built from one published macro.

    Attributes:
        name: preset name.
        kind: always ``dimc``.
        description: one line.
        sources: citations, one per constant.
        tops_per_w_ref: published energy efficiency at the reference precision.
        tops_per_mm2_ref: published area efficiency at the reference precision.
        ref_input_bits: input bits of the published figures.
        ref_weight_bits: weight bits of the published figures (one column's width).
        rows: inputs per macro (adder-tree fan-in).
        cols_ref: ``ref_weight_bits``-wide weight columns per macro.
        clock_GHz: macro clock (sets latency and, with the published TOPS/mm2, macro area;
            TOPS/W and TOPS/mm2 do not depend on it).
        input_bits: deployed input precision (bit-serial cycles).
        weight_bits: deployed weight precision; a multiple of ``ref_weight_bits``.
        node_nm: technology node, for the activation-buffer energy.
        vdd_V: supply, for the activation-buffer energy.
        sram_pJ_per_bit_45nm: activation buffer access energy at 45 nm (Horowitz 32 kB).
    """

    name: str
    kind: str = "dimc"
    description: str = ""
    sources: list[str] = Field(default_factory=list)
    tops_per_w_ref: float = Field(gt=0)
    tops_per_mm2_ref: float = Field(gt=0)
    ref_input_bits: int = Field(ge=1, le=16)
    ref_weight_bits: int = Field(ge=1, le=16)
    rows: int = Field(ge=1)
    cols_ref: int = Field(ge=1)
    clock_GHz: float = Field(gt=0, le=10)
    input_bits: int = Field(8, ge=1, le=16)
    weight_bits: int = Field(8, ge=1, le=16)
    node_nm: float = Field(ge=7, le=130)
    vdd_V: float = Field(gt=0, le=2.0)
    sram_pJ_per_bit_45nm: float = Field(HOROWITZ_45NM_PJ["sram_32kB_per_bit"], gt=0)

    @model_validator(mode="after")
    def _check(self):
        if self.kind != "dimc":
            raise ValueError(f"kind must be 'dimc', got {self.kind!r}")
        if self.weight_bits % self.ref_weight_bits:
            raise ValueError(f"weight_bits ({self.weight_bits}) must be a multiple of ref_weight_bits "
                             f"({self.ref_weight_bits}): a weight spans whole macro columns")
        return self

    @property
    def bit_mac_pJ(self) -> float:
        """Energy of one 1b x 1b product (incl. adder tree, shift-add, leakage)."""
        return 2.0 / (self.tops_per_w_ref * 1e12) / (self.ref_input_bits * self.ref_weight_bits) * 1e12

    @property
    def mac_pJ(self) -> float:
        """Energy per MAC at the deployed precision."""
        return self.bit_mac_pJ * self.input_bits * self.weight_bits

    @property
    def cols(self) -> int:
        """Deployed-precision weights per macro row."""
        return self.cols_ref * self.ref_weight_bits // self.weight_bits

    @property
    def macro_area_mm2(self) -> float:
        peak_ref = 2.0 * self.rows * self.cols_ref * self.clock_GHz * 1e9 / self.ref_input_bits
        return peak_ref / (self.tops_per_mm2_ref * 1e12)

    @property
    def macro_kb(self) -> float:
        return self.rows * self.cols_ref * self.ref_weight_bits / 1024

    @property
    def tops_per_w(self) -> float:
        """Energy efficiency at the deployed precision (macro only)."""
        return 2.0 / (self.mac_pJ * 1e-12) / 1e12

    @property
    def tops_per_mm2(self) -> float:
        """Peak area efficiency at the deployed precision."""
        peak = 2.0 * self.rows * self.cols * self.clock_GHz * 1e9 / self.input_bits
        return peak / self.macro_area_mm2 / 1e12

    @property
    def sram_pJ_per_bit(self) -> float:
        return self.sram_pJ_per_bit_45nm * node_energy_scale(self.node_nm, self.vdd_V)

    @property
    def psum_bits(self) -> int:
        """Width of one macro's exact column sum: ``b_x + b_w + ceil(log2(rows))``."""
        return exact_psum_bits(self.input_bits, self.weight_bits, self.rows)


def price_dimc(layers: list[LayerWork], spec: DIMCSpec, batch: int = 1,
               system: CostConfig | None = None) -> list[LayerCost]:
    """Price each layer on digital SRAM IMC (module doc). ``batch`` changes nothing per
    inference: weights are stationary and vectors stream through the macros.

    Args:
        layers: the workload.
        spec: the macro design.
        batch: ignored beyond validation (weights stationary).
        system: system-level parameters (buffers, interconnect, digital periphery, static)
            -- normally the analog chip's ``cost`` section, for an apples-to-apples
            comparison; ``None`` prices the bare macros with a 22 nm activation buffer.

    Example:
        >>> from aimc.cost.baselines import load_baseline
        >>> from aimc.graph.workload import mvm_workload
        >>> spec = load_baseline("dimc-22nm")
        >>> bare = price_dimc(mvm_workload(256, 64), spec)[0]
        >>> sysc = price_dimc(mvm_workload(256, 64), spec, system=CostConfig())[0]
        >>> bare.detail_pJ["macro"] == sysc.detail_pJ["macro"], sysc.total_pJ > bare.total_pJ
        (True, True)
    """
    if int(batch) < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if not layers:
        return []
    k = np.array([w.in_features for w in layers], dtype=np.float64)
    n = np.array([w.out_features for w in layers], dtype=np.float64)
    g = np.array([w.groups for w in layers], dtype=np.float64)
    n_mvm = np.array([w.n_mvm for w in layers], dtype=np.float64)
    nvec = n_mvm / g
    macs = np.array([w.macs for w in layers], dtype=np.float64)
    wst = np.array([weights_stored(w) for w in layers], dtype=np.float64)
    stat = np.array([is_stationary(w) for w in layers], dtype=bool)
    act = np.array([x_elements(w) + y_elements(w) for w in layers], dtype=np.float64)

    tk, tn = np.ceil(k / spec.rows), np.ceil(n / spec.cols)
    macros = g * tk * tn
    util = wst / (macros * spec.rows * spec.cols)
    f = spec.clock_GHz * 1e9
    t_read = spec.input_bits / f * 1e9                               # one MVM on one macro, ns
    t_ns = nvec * t_read
    t_ns = t_ns + np.where(stat, 0.0, spec.rows / f * 1e9)        # rewrite the macros, a row a cycle
    e_mac = macs * spec.mac_pJ
    e_w = np.where(stat, 0.0, wst * spec.weight_bits * spec.sram_pJ_per_bit)  # per-inference writes
    zero = np.zeros_like(k)
    if system is None:
        e_act = act * spec.input_bits * spec.sram_pJ_per_bit
        e_per, e_static = zero, zero
    else:
        s = system
        macro_reads = n_mvm * tk * tn                                # n_mvm already counts groups
        n_bytes = n_mvm * (k * tn * spec.input_bits / 8 + n * tk * spec.psum_bits / 8)
        e_act = (C.data_movement_energy_pJ(n_bytes, s.sram_pJ_per_byte, s.noc_pJ_per_byte_hop, s.avg_hops)
                 + macro_reads * s.buffer_power_mW * t_read)
        e_per = (n_mvm * C.digital_energy_pJ(0.0, n, tk, 0.0, s.accum_pJ, s.scale_act_pJ, False)
                 + macro_reads * s.digital_power_mW * t_read)
        t_ns = t_ns + s.avg_hops * s.hop_latency_ns
        e_static = C.static_energy_pJ(s.static_power_mW, t_ns)
    area = macros * spec.macro_area_mm2
    return [LayerCost(
        name=w.name,
        energy_pJ=dict.fromkeys(BREAKDOWN, 0.0) | {"digital": float(e_mac[i] + e_per[i]),
                   "data_movement": float(e_act[i] + e_w[i]), "static": float(e_static[i])},
        latency_ns=float(t_ns[i]), macs=int(w.macs), area_mm2=float(area[i]), tiles=int(macros[i]),
        utilisation=float(util[i]),
        detail_pJ={"weights": float(e_w[i]), "activations": float(e_act[i]), "macro": float(e_mac[i])},
        label=w.label)
        for i, w in enumerate(layers)]
