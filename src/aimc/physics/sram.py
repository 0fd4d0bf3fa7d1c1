"""SRAM bit cells of digital in-memory computing.

``sram`` — a weight is an exact ``bits``-bit signed integer (sign + magnitude split over
the differential pair); no noise, no drift (Chih et al., ISSCC 2021: 6T/8T SRAM macros
with exact digital adder trees).
"""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from aimc.physics.devices import DEVICES, DeviceModel, DeviceState, quantise_to_levels

__all__ = ["SRAM"]


@DEVICES.register("sram")
class SRAM(DeviceModel):
    """SRAM bit cells for digital IMC: exact ``bits``-bit signed weights."""

    kind: Literal["sram"] = "sram"
    g_max_uS: float = Field(1.0, gt=0.0, le=1e6)
    g_min_uS: float = Field(0.0, ge=0.0, le=0.0)
    bits: int = Field(8, ge=2, le=16)

    @property
    def n_levels(self) -> int:
        """Magnitude levels per polarity: 2^(bits-1) (0 ... 2^(bits-1) - 1)."""
        return 2 ** (self.bits - 1)

    def program(self, g_target_uS, generator):
        g = quantise_to_levels(g_target_uS, 0.0, self.g_max_uS, self.n_levels)
        return DeviceState(g, torch.zeros_like(g))
