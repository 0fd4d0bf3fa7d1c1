"""3D stacking: the optional ``tiers:`` section of a chip spec.

A 3D non-volatile-memory (NVM) chip stacks ``n_tiers`` crossbar tiers of ``rows x cols``
cells on each of its ``n_tiles`` tiles (the tier shape is the chip's ``rows x cols``). The
tiers of one tile share its peripheral circuits (DACs, ADCs), so **one tier per tile is
active at a time**: a second matrix-vector product (MVM) on a busy tile waits. Changing the
active tier may cost ``tier_switch_ns`` / ``tier_switch_nJ`` (zero in IBM's threedsim, a
parameter here). The section also states what the inference event simulator
(:mod:`aimc.workloads.llm3d`) needs beyond the ``digital:`` section: the tier MVM time and
energy, the count of digital and attention units, their static power and the transfer time
of one activation vector between units.

Reference model (Buchel et al., Nat. Comput. Sci. 5 (2025), doi:10.1038/s43588-024-00753-x;
its simulator github.com/IBM/3D-CiM-LLM-Inference-Simulator, ``src/threedsim/accelerator.py``):
MVM 100 ns and 10 nJ per tier whatever its fill ("0.1 W power, 100 ns integration",
line 152), 4 digital units and 1 attention unit (lines 93-94), 1 W static power each
(line 189), communication 10 ns per vector (line 144). Preset ``3d-nvm``.

Example:
    >>> from aimc.chips import load
    >>> chip = load("3d-nvm")
    >>> chip.n_tiles, chip.tiers.n_tiers, (chip.rows, chip.cols), chip.tiers.mvm_ns
    (100, 1024, (512, 512), 100.0)
"""
from __future__ import annotations

from pydantic import Field

from aimc.config import BaseConfig

__all__ = ["TiersConfig"]


class TiersConfig(BaseConfig):
    """A 3D-stacked chip's tiers and its event-simulator parameters (module doc). Every field
    is stated in a file (no per-field defaults).

    Attributes:
        n_tiers: tiers per tile (each a ``rows x cols`` crossbar).
        mvm_ns, mvm_nJ: time and energy of one tier MVM (input drive, integration and ADC
            conversion of the whole tier), whatever the fraction of the tier used.
        tier_switch_ns, tier_switch_nJ: extra time and energy when a tile's next MVM uses
            another tier than its last one (``0`` in threedsim).
        digital_units: digital processing units (layer norm, activations, additions,
            sampling) working in parallel.
        attention_units: units that compute attention (``QK^T``, softmax, ``AV``).
        unit_static_W: static (passive) power of each digital or attention unit, charged
            for the whole run.
        dram_static_W: idle power of the DRAM holding the KV cache (charged when the run
            keeps a KV cache); its access energy and bandwidth are the ``digital:`` section's
            ``dram_pJ_per_byte`` and ``dram_bytes_per_ns``.
        comm_ns: time of moving one activation vector between a tile and a unit.
        tile_area_mm2: footprint of one tile with its periphery (the tiers stack above it).
        sources: where every number comes from; say which are published and which assumed.
    """

    n_tiers: int = Field(ge=1, le=1 << 20)
    mvm_ns: float = Field(gt=0.0, le=1e9)
    mvm_nJ: float = Field(ge=0.0, le=1e9)
    tier_switch_ns: float = Field(ge=0.0, le=1e9)
    tier_switch_nJ: float = Field(ge=0.0, le=1e9)
    digital_units: int = Field(ge=1, le=1 << 20)
    attention_units: int = Field(ge=1, le=1 << 20)
    unit_static_W: float = Field(ge=0.0, le=1e6)
    dram_static_W: float = Field(ge=0.0, le=1e6)
    comm_ns: float = Field(ge=0.0, le=1e9)
    tile_area_mm2: float = Field(gt=0.0, le=1e6)
    sources: list[str] = Field(default_factory=list)
