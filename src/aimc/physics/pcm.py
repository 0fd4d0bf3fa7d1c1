"""Phase-change memory (PCM): IBM's statistical model and its HERMES-chip fit.

``pcm`` — Nandakumar et al., IEEE ICECS 2019 / J. Appl. Phys. 2018 and Joshi et al.,
Nat. Commun. 11, 2473 (2020), Methods (the model aihwkit ships as ``PCMLikeNoiseModel``),
fitted on doped-Ge2Sb2Te5 mushroom cells, 90 nm, g_max = 25 µS:

* programming noise (after iterative program-and-verify), x = g_T / g_max:
  ``sigma_prog(g_T) = (0.26348 + 1.9650 x - 1.1731 x^2) * (g_max / 25)`` µS,
  ``g_prog = max(g_T + sigma_prog * z, 0)``;
* drift exponent per device, ``nu ~ N(mu(g_T), sigma_nu(g_T))`` clipped at 0, with
  ``mu = clip(-0.0155 ln(g_T/g_max) + 0.0244, 0.049, 0.1)``,
  ``sigma_nu = clip(-0.0125 ln(g_T/g_max) - 0.0059, 0.008, 0.045)``;
  ``g(t) = g_prog (t / t0)^(-nu)``, t0 = 20 s (see :mod:`aimc.physics.drift`);
* 1/f read noise of one read at time t after programming:
  ``sigma_read = |g(t)| Q_s(g_prog) sqrt(ln((t + t_read) / (2 t_read)))``, t_read = 250 ns,
  ``Q_s(g) = min(0.0088 / max((g/g_max)^0.65, 1e-3), 0.2)``. The relative amplitude Q_s is
  a property of the programmed state: it is evaluated at the conductance as programmed,
  ``g_prog`` (before drift), not at the drifted g(t), so the relative read noise does not
  grow as the device drifts (aihwkit 1.2's ``PCMLikeNoiseModel`` and ``HermesNoiseModel``,
  ``apply_drift_noise_to_conductance``, evaluate it at ``|g_prog|``, as here). Here t is
  the time since programming (aihwkit's ``t_inference`` is t - t0). Reads earlier than
  t_read are noiseless.

``pcm-hermes`` — the same family refitted to IBM's 14 nm 64-core HERMES chip (Le Gallo
et al., Nat. Electron. 6, 680 (2023); core: Khaddam-Aljameh et al., IEEE JSSC 2022), with
two PCM devices per polarity (the combination is one "device" here), as published in
aihwkit's ``HermesNoiseModel`` (``num_devices=2``): g_max = 20.7 µS, t0 = 300 s,
t_read = 512 ns, x = g/g_max,

* ``sigma_prog = (0.16603 + 4.71806 x - 8.48101 x^2 + 4.68961 x^3) * (g_max / 20.7)`` µS;
* ``mu_nu = clip(-0.0387 ln x - 0.0182, 0.072, 0.13)`` for x < 0.0945, else
  ``0.0736 - 0.0126 x - 0.0436 x^2``; ``sigma_nu = clip(-0.0117 ln x - 0.0057, 0.0091,
  0.04)`` for x < 0.3055, else ``0.0073 + 0.0093 x - 0.0118 x^2``;
* ``Q_s = clip(-0.0117 ln x - 0.0069, 0.015, 0.04)`` for x < 0.16, else
  ``0.0123 + 0.0211 x - 0.0280 x^2 + 0.0069 x^3``, with x = g_prog / g_max (as in
  aihwkit's ``HermesNoiseModel``); the read-noise formula is the one above.

Both models draw nu clipped at 0 (aihwkit takes |nu|; the two differ only where the
mean is within a few sigma of 0, which the fits never reach above x ~ 0.01).
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field

from aimc.physics.devices import DEVICES, DeviceModel, DeviceState
from aimc.physics.drift import power_law_drift

__all__ = ["PCM", "PCMHermes", "polynomial"]


def polynomial(x: torch.Tensor, coeffs: tuple[float, ...]) -> torch.Tensor:
    """``sum_k coeffs[k] * x**k`` (Horner)."""
    out = torch.full_like(x, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        out = out * x + c
    return out


@DEVICES.register("pcm")
class PCM(DeviceModel):
    """IBM's statistical PCM model (Nandakumar 2019; Joshi 2020). Formulas: module doc.

    The ``*_scale`` fields multiply each non-ideality (1 = as published, 0 = off).
    """

    kind: Literal["pcm"] = "pcm"
    g_max_uS: float = Field(25.0, gt=0.0, le=1e6)
    prog_coeffs_uS: tuple[float, ...] = Field((0.26348, 1.9650, -1.1731), min_length=1, max_length=6)
    prog_ref_g_max_uS: float = Field(25.0, gt=0.0)
    prog_noise_scale: float = Field(1.0, ge=0.0, le=100.0)
    t0_s: float = Field(20.0, gt=0.0)
    drift_mean: tuple[float, float] = (-0.0155, 0.0244)
    drift_mean_clip: tuple[float, float] = (0.049, 0.1)
    drift_std: tuple[float, float] = (-0.0125, -0.0059)
    drift_std_clip: tuple[float, float] = (0.008, 0.045)
    drift_scale: float = Field(1.0, ge=0.0, le=100.0)
    t_read_s: float = Field(250e-9, gt=0.0)
    read_q_s: float = Field(0.0088, ge=0.0)
    read_q_exp: float = Field(0.65, ge=0.0)
    read_q_min_ratio: float = Field(1e-3, gt=0.0)
    read_q_max: float = Field(0.2, ge=0.0)
    read_noise_scale: float = Field(1.0, ge=0.0, le=100.0)

    # -- the three published relations, as pure functions of conductance ------------
    def prog_noise_std_uS(self, g_target_uS: torch.Tensor) -> torch.Tensor:
        """sigma_prog(g_T) in µS (module doc)."""
        x = g_target_uS / self.g_max_uS
        return polynomial(x, self.prog_coeffs_uS) * (self.g_max_uS / self.prog_ref_g_max_uS) * self.prog_noise_scale

    def prog_noise_rel_min(self) -> float:
        """``min sigma_prog(g) / g`` over 1 %..100 % of g_max (a grid of 100 points; the
        fits' relative noise falls with g: 5.3 % at g_max on HERMES, 4.2 % for ``pcm``)."""
        g = torch.linspace(0.01, 1.0, 100, dtype=torch.float64) * self.g_max_uS
        return float((self.prog_noise_std_uS(g) / g).min())

    def drift_mean_std(self, g_target_uS: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of the drift exponent nu for target conductance g_T."""
        lg = torch.log((g_target_uS / self.g_max_uS).clamp(min=1e-7))
        mu = (self.drift_mean[0] * lg + self.drift_mean[1]).clamp(*self.drift_mean_clip)
        sd = (self.drift_std[0] * lg + self.drift_std[1]).clamp(*self.drift_std_clip)
        return mu, sd

    def read_noise_std_uS(self, state: DeviceState, t_s: float,
                          g_t_uS: torch.Tensor | None = None) -> torch.Tensor | None:
        """``|g(t)| Q_s(g_prog) sqrt(ln((t + t_read) / (2 t_read)))`` in µS (module doc); None
        (noiseless) for ``t <= t_read``.

        Example:
            >>> import torch
            >>> dev = PCM()
            >>> st = DeviceState(torch.tensor([25.0]), torch.tensor([0.0]))  # no drift
            >>> round(float(dev.read_noise_std_uS(st, 3600.0)[0]), 3)  # 25 * 0.0088 * 4.76
            1.048
        """
        t = max(t_s, 0.0)
        if self.read_noise_scale == 0.0 or t <= self.t_read_s:  # reads earlier than t_read are noiseless
            return None
        log_term = math.sqrt(math.log((t + self.t_read_s) / (2.0 * self.t_read_s)))
        g_t = self.at_time(state, t_s) if g_t_uS is None else g_t_uS
        return g_t.abs() * self.read_q(state.g_uS.abs()) * (log_term * self.read_noise_scale)

    def read_q(self, g_uS: torch.Tensor) -> torch.Tensor:
        """Relative 1/f noise amplitude Q_s(g) (module doc)."""
        x = g_uS / self.g_max_uS
        return (self.read_q_s / x.pow(self.read_q_exp).clamp(min=self.read_q_min_ratio)).clamp(max=self.read_q_max)

    # -- interface --------------------------------------------------------------------
    def sample_drift_exponent(self, g_target_uS: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mu, sd = self.drift_mean_std(g_target_uS)
        z = torch.randn(g_target_uS.shape, generator=generator, device=g_target_uS.device, dtype=g_target_uS.dtype)
        return ((mu + sd * z).clamp(min=0.0)) * self.drift_scale

    def program(self, g_target_uS, generator):
        z = torch.randn(g_target_uS.shape, generator=generator, device=g_target_uS.device, dtype=g_target_uS.dtype)
        g = (g_target_uS + self.prog_noise_std_uS(g_target_uS) * z).clamp(min=0.0)
        return DeviceState(g, self.sample_drift_exponent(g_target_uS, generator))

    def program_chips(self, g_target_uS, generators):
        """:meth:`program` on ``C`` chips: the noise std and drift statistics of the targets
        once, each chip's two normal draws from its own generator in :meth:`program`'s
        order, then the same elementwise float operations (bit-identical per chip)."""
        if type(self).program is not PCM.program or type(self).sample_drift_exponent is not PCM.sample_drift_exponent:
            return super().program_chips(g_target_uS, generators)
        std = self.prog_noise_std_uS(g_target_uS)
        mu, sd = self.drift_mean_std(g_target_uS)
        z = torch.empty(len(generators), 2, *g_target_uS.shape, device=g_target_uS.device, dtype=g_target_uS.dtype)
        for c, gen in enumerate(generators):
            torch.randn(g_target_uS.shape, generator=gen, out=z[c, 0])
            torch.randn(g_target_uS.shape, generator=gen, out=z[c, 1])
        g = (g_target_uS + std * z[:, 0]).clamp(min=0.0)
        return DeviceState(g, ((mu + sd * z[:, 1]).clamp(min=0.0)) * self.drift_scale)

    def at_time(self, state, t_s):
        return power_law_drift(state.g_uS, state.drift, t_s, self.t0_s)


def _piecewise(x: torch.Tensor, brk: float, log_ab: tuple[float, float], clip: tuple[float, float],
               poly: tuple[float, ...], log_x: torch.Tensor | None = None) -> torch.Tensor:
    """``clip(a ln x + b)`` below ``brk``, ``polynomial(x, poly)`` above (HERMES fits);
    ``log_x``: ``ln(max(x, 1e-7))`` when the caller has it."""
    log_x = torch.log(x.clamp(min=1e-7)) if log_x is None else log_x
    low = (log_ab[0] * log_x + log_ab[1]).clamp(*clip)
    return torch.where(x < brk, low, polynomial(x, poly))


@DEVICES.register("pcm-hermes")
class PCMHermes(PCM):
    """PCM as fitted on IBM HERMES (Le Gallo 2023; aihwkit HermesNoiseModel, 2 devices).

    Piecewise fits (module doc) are stored as ``(break, (a, b) of the log branch, clip,
    ascending polynomial coefficients of the upper branch)``.
    """

    # each registered model narrows its own ``kind`` tag (pydantic validates it), so this
    # subclass, which reuses PCM's physics, cannot keep PCM's Literal["pcm"]
    kind: Literal["pcm-hermes"] = "pcm-hermes"  # type: ignore[assignment]
    g_max_uS: float = Field(20.7, gt=0.0, le=1e6)
    prog_coeffs_uS: tuple[float, ...] = Field((0.16603222, 4.71806468, -8.48101252, 4.68961419), min_length=1, max_length=6)
    prog_ref_g_max_uS: float = Field(20.7, gt=0.0)
    t0_s: float = Field(300.0, gt=0.0)
    t_read_s: float = Field(512e-9, gt=0.0)
    drift_mean_break: float = 0.0945
    drift_mean: tuple[float, float] = (-0.0387, -0.0182)
    drift_mean_clip: tuple[float, float] = (0.072, 0.13)
    drift_mean_poly: tuple[float, ...] = (0.0736, -0.0126, -0.0436)
    drift_std_break: float = 0.3055
    drift_std: tuple[float, float] = (-0.0117, -0.0057)
    drift_std_clip: tuple[float, float] = (0.0091, 0.04)
    drift_std_poly: tuple[float, ...] = (0.0073, 0.0093, -0.0118)
    read_q_break: float = 0.16
    read_q_log: tuple[float, float] = (-0.0117, -0.0069)
    read_q_clip: tuple[float, float] = (0.015, 0.04)
    read_q_poly: tuple[float, ...] = (0.0123, 0.0211, -0.0280, 0.0069)

    def drift_mean_std(self, g_target_uS):
        x = g_target_uS / self.g_max_uS
        lx = torch.log(x.clamp(min=1e-7))  # one log for both fits
        mu = _piecewise(x, self.drift_mean_break, self.drift_mean, self.drift_mean_clip, self.drift_mean_poly, lx)
        sd = _piecewise(x, self.drift_std_break, self.drift_std, self.drift_std_clip, self.drift_std_poly, lx)
        return mu, sd

    def read_q(self, g_uS):
        return _piecewise(g_uS / self.g_max_uS, self.read_q_break, self.read_q_log, self.read_q_clip, self.read_q_poly)
