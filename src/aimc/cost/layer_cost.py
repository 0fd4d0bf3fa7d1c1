"""What pricing one layer returns: :class:`LayerCost`, and the energy categories.

Every cost model (analog chip, digital IMC, GPU/CPU) prices a workload
(:class:`aimc.graph.workload.LayerWork`) into one :class:`LayerCost` per layer.

Example:
    >>> LayerCost("fc", {"array": 2.0, "adc": 1.0}, latency_ns=10.0, macs=4).total_pJ
    3.0
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BREAKDOWN", "LayerCost"]

#: Energy breakdown categories, in this order, used by every cost model.
#: ``host``, ``host_memory`` and ``inter_core`` are the SoC view's (:mod:`aimc.cost.soc`):
#: compute on the chip's digital units, their weight fetches, and activations moved
#: between the analog cores and those units.
BREAKDOWN = ("array", "dac", "adc", "digital", "data_movement", "host", "host_memory", "inter_core", "static")


@dataclass
class LayerCost:
    """Price of one :class:`LayerWork` on one piece of hardware.

    Attributes:
        name: the layer's name.
        energy_pJ: energy per inference by category (keys of :data:`BREAKDOWN`; missing = 0);
            ``detail_pJ`` may split a category further (e.g. ``weights`` vs ``activations``).
        latency_ns: time per inference of this layer alone.
        macs: multiply-accumulates per inference.
        area_mm2: silicon the layer occupies (analog: its tiles and periphery); 0 if shared.
        tiles: crossbar tiles used (analog only).
        utilisation: fraction of the allocated array cells holding weights (analog), or of
            peak throughput reached (von Neumann).
        label: ``name`` with the layer's kind and shape (:attr:`LayerWork.label`), for
            tables and plots; empty if unknown.
    """

    name: str
    energy_pJ: dict[str, float]
    latency_ns: float
    macs: int
    area_mm2: float = 0.0
    tiles: int = 0
    utilisation: float = 1.0
    detail_pJ: dict[str, float] = field(default_factory=dict)
    label: str = ""

    @property
    def title(self) -> str:
        """``label`` (what the layer is, from its :class:`LayerWork`) or else ``name``."""
        return self.label or self.name

    @property
    def total_pJ(self) -> float:
        return float(sum(self.energy_pJ.values()))
