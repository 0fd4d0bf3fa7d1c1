"""Electrochemical RAM (ECRAM).

``ecram`` — many near-linear, symmetric conductance levels with low noise and no drift.
Numbers: Tang et al., IEDM 2018 ("ECRAM as scalable synaptic cell", Li-ion, >1000
near-symmetric states, 0.1 % read noise class) and Onen et al., Science 377, 539 (2022)
(protonic ECRAM, nanosecond pulses, ~ 1000 states, retention of hours without decay).
Programming: the target is rounded to the nearest of ``n_levels`` levels and a Gaussian
write error of ``prog_noise_levels`` level steps is added; a read adds Gaussian noise of
``read_noise_rel`` times the conductance.
"""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from aimc.physics.devices import DEVICES, DeviceModel, DeviceState, quantise_to_levels

__all__ = ["ECRAM"]


@DEVICES.register("ecram")
class ECRAM(DeviceModel):
    """ECRAM device (Tang 2018; Onen 2022); formulas in the module doc."""

    kind: Literal["ecram"] = "ecram"
    g_max_uS: float = Field(10.0, gt=0.0, le=1e6)
    g_min_uS: float = Field(0.0, ge=0.0)
    n_levels: int = Field(1000, ge=2, le=1_000_000)
    prog_noise_levels: float = Field(0.5, ge=0.0)
    read_noise_rel: float = Field(0.001, ge=0.0, le=1.0)

    def prog_noise_rel_min(self) -> float:
        """``prog_noise_levels`` level steps relative to g_max (the smallest relative noise)."""
        return self.prog_noise_levels / (self.n_levels - 1) * (self.g_max_uS - self.g_min_uS) / self.g_max_uS

    def program(self, g_target_uS, generator):
        g = quantise_to_levels(g_target_uS, self.g_min_uS, self.g_max_uS, self.n_levels)
        if self.prog_noise_levels > 0:
            step = (self.g_max_uS - self.g_min_uS) / (self.n_levels - 1)
            z = torch.randn(g.shape, generator=generator, device=g.device, dtype=g.dtype)
            g = (g + self.prog_noise_levels * step * z).clamp(self.g_min_uS, self.g_max_uS)
        return DeviceState(g, torch.zeros_like(g))

    def read_noise_std_uS(self, state, t_s, g_t_uS=None):
        """``read_noise_rel * |g|`` (no drift: g(t) is the programmed conductance)."""
        if self.read_noise_rel == 0:
            return None
        g_t = self.at_time(state, t_s) if g_t_uS is None else g_t_uS
        return g_t.abs() * self.read_noise_rel
