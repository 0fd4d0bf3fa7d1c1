"""Resistive RAM (RRAM / memristor) in a 1T1R cell.

Programming (write-verify to a finite set of levels, then residual variation):

* the target is rounded to one of ``n_levels`` equally spaced conductances in
  ``[g_min, g_max]`` (``g_min = g_max / on_off_ratio``);
* device-to-device (d2d) and cycle-to-cycle (c2c) variation multiply it by independent
  lognormal factors ``exp(sigma_d2d * z1) * exp(sigma_c2c * z2)``, each with median 1;
* stuck-at faults: a fraction ``p_stuck_on`` of devices reads ``g_max`` and a fraction
  ``p_stuck_off`` reads ``g_min`` whatever was written.

Retention (conductance relaxation after programming): each device relaxes along its own
standard-normal draw ``z`` by ``sigma_ret(t) = sigma_ret_uS * log10(1 + t / t_ret_s)`` µS.
Reads add Gaussian noise of ``read_noise_rel`` times the conductance.

Default numbers are for HfOx 1T1R arrays of the NeuRRAM chip (Wan et al., Nature 608, 504
(2022)): g_max = 40 µS; the combined programming spread sqrt(sigma_d2d^2 + sigma_c2c^2) =
4.2 % lies within the 2.75-5 % (of g) that aihwkit's ``ReRamWan2022NoiseModel`` fit gives at
1 s; ``sigma_ret_uS = 0.49`` with ``t_ret_s = 1`` reproduces that fit's growth of the spread
at g_max from 1.10 µS (1 s) to 2.65 µS (1 day) and 2.68 µS (2 days): sqrt(1.10^2 + (0.49
log10(86401))^2) = 2.66, sqrt(1.10^2 + (0.49 log10(172801))^2) = 2.81. Wan's spread peaks
mid-range; this model keeps it constant in µS (stated limitation). Read noise of 1 % of g
is aihwkit's recommendation for that model. On/off ratio 10 (analog HfOx window, 10-100)
and 16 levels (NeuRRAM's 4-bit weights) are typical values; fault rates default to 0
(measured: 0.1 % to ~10 %, Chen et al. IEEE TC 2015; Gong et al. IEDM 2022).
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, model_validator

from aimc.physics.devices import DEVICES, DeviceModel, DeviceState, quantise_to_levels

__all__ = ["RRAM"]


@DEVICES.register("rram")
class RRAM(DeviceModel):
    """1T1R RRAM; formulas in the module doc."""

    kind: Literal["rram"] = "rram"
    g_max_uS: float = Field(40.0, gt=0.0, le=1e6)
    on_off_ratio: float = Field(10.0, gt=1.0, le=1e6)
    g_min_uS: float = Field(4.0, ge=0.0)
    n_levels: int = Field(16, ge=2, le=65536)
    sigma_d2d: float = Field(0.03, ge=0.0, le=2.0)
    sigma_c2c: float = Field(0.03, ge=0.0, le=2.0)
    p_stuck_on: float = Field(0.0, ge=0.0, le=1.0)
    p_stuck_off: float = Field(0.0, ge=0.0, le=1.0)
    sigma_ret_uS: float = Field(0.49, ge=0.0)
    t_ret_s: float = Field(1.0, gt=0.0)
    read_noise_rel: float = Field(0.01, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check_rram(self):
        want = self.g_max_uS / self.on_off_ratio
        if abs(self.g_min_uS - want) > 1e-6 * self.g_max_uS:
            raise ValueError(
                f"g_min_uS ({self.g_min_uS}) must equal g_max_uS / on_off_ratio ({want:g})"
            )
        if self.p_stuck_on + self.p_stuck_off > 1.0:
            raise ValueError("p_stuck_on + p_stuck_off must be <= 1")
        return self

    def prog_noise_rel_min(self) -> float:
        """Relative std of the lognormal programming spread, ``sqrt(exp(s^2) - 1)`` with
        ``s^2 = sigma_d2d^2 + sigma_c2c^2`` (the same at every level)."""
        return math.sqrt(math.expm1(self.sigma_d2d**2 + self.sigma_c2c**2))

    def program(self, g_target_uS, generator):
        kw = dict(generator=generator, device=g_target_uS.device, dtype=g_target_uS.dtype)
        g = quantise_to_levels(g_target_uS, self.g_min_uS, self.g_max_uS, self.n_levels)
        z = torch.randn((2, *g.shape), **kw)
        g = g * torch.exp(self.sigma_d2d * z[0] + self.sigma_c2c * z[1])
        u = torch.rand(g.shape, **kw)
        g = torch.where(u < self.p_stuck_on, self.g_max_uS, g)
        g = torch.where((u >= self.p_stuck_on) & (u < self.p_stuck_on + self.p_stuck_off), self.g_min_uS, g)
        return DeviceState(g, torch.randn(g.shape, **kw))

    def retention_std_uS(self, t_s: float) -> float:
        return self.sigma_ret_uS * float(torch.log10(torch.tensor(1.0 + max(t_s, 0.0) / self.t_ret_s)))

    def at_time(self, state, t_s):
        s = self.retention_std_uS(t_s)
        return state.g_uS if s == 0 else (state.g_uS + s * state.drift).clamp(min=0.0)

    def read_noise_std_uS(self, state, t_s, g_t_uS=None):
        """``read_noise_rel * |g(t)|``: relative to the conductance at the time of the read."""
        if self.read_noise_rel == 0:
            return None
        g_t = self.at_time(state, t_s) if g_t_uS is None else g_t_uS
        return g_t.abs() * self.read_noise_rel
