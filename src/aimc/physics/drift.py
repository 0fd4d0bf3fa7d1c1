"""Conductance drift and global drift compensation (pure functions).

Power-law drift of phase-change memory (Ielmini et al., IEEE TED 2007; Joshi et al.,
Nat. Commun. 11, 2473, 2020):

    g(t) = g(t0) * (t / t0) ** (-nu),   t >= t0,

where ``g(t0)`` is the conductance read at the reference time ``t0`` after programming.
Reads before ``t0`` see ``g(t0)`` (the model is fitted for t >= t0).

Global drift compensation (GDC; Joshi et al. 2020, Methods; Le Gallo et al., Nat.
Electron. 2023): right after programming, a fixed calibration input is applied and the
summed absolute output ``a0`` is stored digitally; at a later time the same read gives
``a(t)`` and all outputs are multiplied by ``a0 / a(t)``.
"""
from __future__ import annotations

import torch

__all__ = ["power_law_drift", "gdc_factor"]


def power_law_drift(g_uS: torch.Tensor, nu: torch.Tensor, t_s: float, t0_s: float) -> torch.Tensor:
    """Return ``g * (max(t, t0) / t0) ** (-nu)`` (µS).

    Example:
        >>> import torch
        >>> power_law_drift(torch.tensor([10.0]), torch.tensor([0.05]), 2000.0, 20.0)
        tensor([7.9433])
    """
    if t_s < 0:
        raise ValueError(f"t_s must be >= 0 seconds, got {t_s}")
    ratio = max(t_s, t0_s) / t0_s
    if ratio == 1.0:
        return g_uS.clone()
    return g_uS * torch.exp(-nu * torch.log(torch.tensor(ratio, dtype=g_uS.dtype, device=g_uS.device)))


def gdc_factor(reference_abs_sum: torch.Tensor, current_abs_sum: torch.Tensor) -> torch.Tensor:
    """Global drift compensation factor ``a0 / a(t)`` (dimensionless).

    Example:
        >>> import torch
        >>> gdc_factor(torch.tensor(10.0), torch.tensor(8.0))
        tensor(1.2500)
    """
    if not torch.isfinite(current_abs_sum).all() or (current_abs_sum <= 0).any():
        raise ValueError("drift compensation: the calibration read returned no signal (sum <= 0)")
    return reference_abs_sum / current_abs_sum
