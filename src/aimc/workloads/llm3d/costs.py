"""What each op of the LLM event simulator costs: time (integer ns) and energy (nJ).

Two sources, one interface (:class:`UnitCosts`):

* :meth:`UnitCosts.from_chip` reads a 3D chip spec: tier MVM and tier switch from its
  ``tiers:`` section, digital ops **per element** from its ``digital:`` section
  (``t = ceil(n / op_elements_per_ns)``, ``E = n * op_pJ``), communication of one 8-bit
  ``cols``-element vector (``comm_ns``, ``cols * link_pJ_per_byte``), and attention priced for
  real: ``QK^T`` and ``AV`` are ``2 * n_q * L * d`` MACs on the attention unit at
  ``digital.mac_pJ`` and ``digital.macs_per_ns`` (full, not causally halved), softmax over
  ``n_heads * n_q * L`` elements, and with a KV cache the DRAM read of the ``2 * L_past * d``
  cached bytes and write of the ``2 * n_q * d`` new ones (8-bit, threedsim's
  ``kv_cache_latency``) at ``dram_bytes_per_ns`` and ``dram_pJ_per_byte``.
* :meth:`UnitCosts.threedsim` is IBM threedsim's ``AcceleratorConfig`` exactly
  (``src/threedsim/accelerator.py``): fixed per-op costs whatever the vector length (layer
  norm 50 ns, ReLU 1 ns, GELU 10 ns, add 10 ns, each 10 nJ, lines 127-177; sampling 10 ns,
  0 nJ, lines 147-186; communication 10 ns and ``1e-5 * 8 * 512`` nJ, lines 144, 181) and
  attention stubbed at 1 ns + 1 ns, 1 nJ + 1 nJ (lines 50, 78).

Example:
    >>> c = UnitCosts.threedsim()
    >>> c.digital("layernorm", 4096), c.attention(1, 12, 512, 8, kv_cache=False)
    ((50, 10.0), (2, 2.0, 1, 1.0))
    >>> from aimc.chips import load
    >>> real = UnitCosts.from_chip(load("3d-nvm"))
    >>> ns, nj = real.digital("layernorm", 512); ns, round(nj, 3)
    (50, 10.0)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from aimc.chips.spec import ChipSpec
from aimc.config import ConfigError

__all__ = ["UnitCosts"]

#: threedsim's fixed per-op costs (ns, nJ) (module doc).
_THREEDSIM_OPS = {"layernorm": (50, 10.0), "relu": (1, 10.0), "gelu": (10, 10.0), "add": (10, 10.0),
                  "sample": (10, 0.0), "silu": (10, 10.0), "mul": (10, 10.0)}  # silu, mul: ASSUMED as gelu, add
_CHIP_KIND = {"sample": "maxpool"}  # a streaming argmax over the logits: one compare per element


@dataclass(frozen=True)
class UnitCosts:
    """Costs of the simulator's ops (module doc). Times in integer ns (the event clock).

    Attributes:
        mvm_ns, mvm_nJ: one tier MVM; ``switch_ns``, ``switch_nJ``: a change of active tier.
        comm_ns, comm_nJ: one activation-vector transfer.
        digital_units, attention_units: parallel units; ``static_W``: their passive power;
        ``dram_static_W``: the KV-cache DRAM's idle power (charged with a KV cache).
        tile_area_mm2: a tile's footprint.
        fixed_ops: per-op (ns, nJ) whatever the length (threedsim), else ``None``.
        op_pJ, op_per_ns: per-element costs of the chip's digital section.
        mac_pJ, macs_per_ns, dram_pJ_per_byte, dram_bytes_per_ns, kv_bytes: attention.
        stub_attention: threedsim's stub (1 ns + 1 ns, 1 nJ + 1 nJ).
    """

    mvm_ns: int
    mvm_nJ: float
    switch_ns: int
    switch_nJ: float
    comm_ns: int
    comm_nJ: float
    digital_units: int
    attention_units: int
    static_W: float
    dram_static_W: float
    tile_area_mm2: float
    fixed_ops: dict[str, tuple[int, float]] | None = None
    op_pJ: dict[str, float] = field(default_factory=dict)
    op_per_ns: dict[str, float] = field(default_factory=dict)
    mac_pJ: float = 0.0
    macs_per_ns: float = 1.0
    dram_pJ_per_byte: float = 0.0
    dram_bytes_per_ns: float = 1.0
    kv_bytes: float = 1.0
    stub_attention: bool = False

    @classmethod
    def threedsim(cls, digital_units: int = 4, attention_units: int = 1,
                  attention_chip: ChipSpec | None = None) -> "UnitCosts":
        """threedsim's ``AcceleratorConfig`` defaults (module doc), attention stubbed -- or,
        with ``attention_chip``, priced for real by that chip's ``digital:`` section (MACs,
        softmax, KV-cache DRAM) while every other op keeps threedsim's constants."""
        if attention_chip is not None:
            real = cls.from_chip(attention_chip)
            base = cls.threedsim(digital_units, attention_units)
            return cls(**{**base.__dict__, "op_pJ": real.op_pJ, "op_per_ns": real.op_per_ns, "mac_pJ": real.mac_pJ,
                          "macs_per_ns": real.macs_per_ns, "dram_pJ_per_byte": real.dram_pJ_per_byte,
                          "dram_bytes_per_ns": real.dram_bytes_per_ns, "kv_bytes": real.kv_bytes,
                          "stub_attention": False})
        return cls(mvm_ns=100, mvm_nJ=10.0, switch_ns=0, switch_nJ=0.0, comm_ns=10, comm_nJ=1e-5 * 8 * 512,
                   digital_units=digital_units, attention_units=attention_units,
                   static_W=1.0 * (digital_units + attention_units), dram_static_W=0.1297, tile_area_mm2=1.0,
                   fixed_ops=dict(_THREEDSIM_OPS), dram_pJ_per_byte=0.2467 / 5.332 * 1e3, dram_bytes_per_ns=5.332,
                   stub_attention=True)

    @classmethod
    def from_chip(cls, chip: ChipSpec, stub_attention: bool = False) -> "UnitCosts":
        """Costs of a 3D chip spec (module doc).

        Raises:
            ConfigError: the chip has no ``tiers:`` or no ``digital:`` section, or no DRAM.
        """
        t, d = chip.tiers, chip.digital
        if t is None or d is None:
            raise ConfigError(f"chip {chip.name!r}: the LLM simulator needs a 3D chip with 'tiers:' and 'digital:' "
                              "sections (e.g. the preset 3d-nvm)")
        if d.dram_pJ_per_byte is None or d.dram_bytes_per_ns is None:
            raise ConfigError(f"chip {chip.name!r}: digital.dram_* is null, but the KV cache lives in DRAM")
        return cls(mvm_ns=math.ceil(t.mvm_ns), mvm_nJ=t.mvm_nJ, switch_ns=math.ceil(t.tier_switch_ns),
                   switch_nJ=t.tier_switch_nJ, comm_ns=math.ceil(t.comm_ns),
                   comm_nJ=chip.cols * d.bytes_per_element * d.link_pJ_per_byte * 1e-3,
                   digital_units=t.digital_units, attention_units=t.attention_units,
                   static_W=t.unit_static_W * (t.digital_units + t.attention_units), dram_static_W=t.dram_static_W,
                   tile_area_mm2=t.tile_area_mm2, op_pJ={str(k): v for k, v in d.op_pJ.items()},
                   op_per_ns={str(k): v for k, v in d.op_elements_per_ns.items()},
                   mac_pJ=d.mac_pJ, macs_per_ns=d.macs_per_ns, dram_pJ_per_byte=d.dram_pJ_per_byte,
                   dram_bytes_per_ns=d.dram_bytes_per_ns, kv_bytes=d.bytes_per_element, stub_attention=stub_attention)

    def digital(self, kind: str, n: int) -> tuple[int, float]:
        """``(ns, nJ)`` of a digital op ``kind`` (``add``, ``layernorm``, ``relu``, ``gelu``,
        ``sample``) over ``n`` elements."""
        if self.fixed_ops is not None:
            return self.fixed_ops[kind]
        k = _CHIP_KIND.get(kind, kind)
        return max(1, math.ceil(n / self.op_per_ns[k])), n * self.op_pJ[k] * 1e-3

    def attention(self, n_q: int, seq_len: int, d_model: int, n_heads: int,
                  kv_cache: bool, d_kv: int | None = None) -> tuple[int, float, int, float]:
        """``(ns, nJ, dram_ns, dram_nJ)`` of one layer's attention for ``n_q`` query tokens
        over ``seq_len`` positions (module doc; the cache holds ``2 * d_kv`` bytes per position,
        ``d_kv = d_model`` unless grouped-query); the totals include the DRAM part."""
        if self.stub_attention:
            return 2, 2.0, 1, 1.0
        macs = 2 * n_q * seq_len * d_model
        soft = n_heads * n_q * seq_len
        dram_bytes = 2 * seq_len * (d_kv or d_model) * self.kv_bytes if kv_cache else 0.0  # read past + write new
        dram_ns = math.ceil(dram_bytes / self.dram_bytes_per_ns) if dram_bytes else 0
        dram_nJ = dram_bytes * self.dram_pJ_per_byte * 1e-3
        comp_ns = math.ceil(macs / self.macs_per_ns) + math.ceil(soft / self.op_per_ns["softmax"])
        comp_nJ = (macs * self.mac_pJ + soft * self.op_pJ["softmax"]) * 1e-3
        return dram_ns + comp_ns, dram_nJ + comp_nJ, dram_ns, dram_nJ
