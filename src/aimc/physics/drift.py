"""Conductance drift and global drift compensation (pure functions).

Power-law drift of phase-change memory (Ielmini et al., IEEE TED 2007; Joshi et al.,
Nat. Commun. 11, 2473, 2020):

    g(t) = g(t0) * (t / t0) ** (-nu),   t >= t0,

where ``g(t0)`` is the conductance read at the reference time ``t0`` after programming.
Reads before ``t0`` see ``g(t0)`` (the model is fitted for t >= t0).

Global drift compensation (GDC; Joshi et al. 2020, Methods; Le Gallo et al., Nat.
Electron. 2023): right after programming, a fixed set of calibration inputs is applied
and a statistic ``a0`` of the outputs is stored digitally; at a later time the same reads
give ``a(t)`` and all outputs of the layer are multiplied by ``a0 / a(t)``.

Calibration reads (as aihwkit's ``GlobalDriftCompensation``, whose read-out tensor is the
identity): each input row alone at full scale (one-hot inputs ``e_i``), so a read returns
one row ``w_i.`` of the layer: no ADC saturation however tall the tile (one device pair
per column), no DAC quantisation, no cancellation between rows. Each row is read ``R``
times (:func:`gdc_repeats`) and averaged, ``ybar_ij``. The statistic is

    a = sum_ij s_ij ybar_ij,   s_ij = sign of the weight as programmed (at t0),

the sum of |w_ij| over the layer. It is linear in the reads, so zero-mean read and output
noise averages out instead of adding a floor: aihwkit's ``mean |y|`` has the same
expectation without noise but a bias of about ``sigma^2 / (2 |w|)`` per small weight,
which grows as drift shrinks the signal and makes the factor low. With per-read noise
``sigma`` (weight units) on ``N = in * out`` elements the relative std of ``a`` is
``sigma / (mean|w| sqrt(R N))``; :func:`gdc_repeats` picks R so that R N >= 32,768
(e.g. sigma 0.1, mean|w| 0.1: 0.55 % per calibration, 0.8 % for the ratio). The
factor is then a |w|-weighted mean of the devices' drift ratios, whose chip-to-chip
spread is that of a mean over N devices (physics, not estimation noise). The previous
statistic, ``sum_j |sum_i w_ij|`` from all-ones reads, summed only ``out`` numbers, each a
signed column sum whose rows cancel: random per-device drift moved it by a large
fraction (about ±9 % chip to chip on a 10-output layer), and all-ones inputs can
saturate the ADC of a tall tile. One global factor cannot undo conductance-dependent
drift (HERMES PCM: small conductances drift faster); the |w|-weighted factor weights
small weights more than typical outputs do, so there it over-compensates outputs.
"""
from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["check_time_s", "power_law_drift", "gdc_factor", "gdc_repeats", "gdc_statistic", "GDC_MIN_SAMPLES"]

#: Minimum number of averaged read elements ``R * in * out`` of one GDC calibration.
GDC_MIN_SAMPLES = 32_768


def check_time_s(t_s: Any) -> float:
    """``t_s`` as a float of seconds, finite and >= 0; a clear error otherwise.

    Example:
        >>> check_time_s(86400)
        86400.0
    """
    if isinstance(t_s, torch.Tensor) and t_s.numel() == 1:
        t_s = t_s.item()
    if isinstance(t_s, bool) or not isinstance(t_s, (int, float)) and not hasattr(t_s, "__float__"):
        raise TypeError(f"t_s must be a number of seconds (e.g. 86400.0 for one day), got {type(t_s).__name__} {t_s!r}")
    t = float(t_s)
    if not (0.0 <= t < float("inf")):
        raise ValueError(f"t_s must be a finite time >= 0 seconds, got {t_s!r}")
    return t


def power_law_drift(g_uS: torch.Tensor, nu: torch.Tensor, t_s: float, t0_s: float) -> torch.Tensor:
    """Return ``g * (max(t, t0) / t0) ** (-nu)`` (µS).

    Example:
        >>> import torch
        >>> power_law_drift(torch.tensor([10.0]), torch.tensor([0.05]), 2000.0, 20.0)
        tensor([7.9433])
    """
    t_s = check_time_s(t_s)
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


def gdc_repeats(n_in: int, n_out: int, min_samples: int = GDC_MIN_SAMPLES, max_repeats: int = 64) -> int:
    """Repeats ``R`` of the one-hot calibration reads: ``R * n_in * n_out >= min_samples``,
    ``1 <= R <= max_repeats`` (module doc).

    Example:
        >>> gdc_repeats(64, 10), gdc_repeats(1024, 512)
        (52, 1)
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"gdc_repeats: n_in and n_out must be >= 1, got {n_in}, {n_out}")
    return max(1, min(max_repeats, math.ceil(min_samples / (n_in * n_out))))


def gdc_statistic(row_reads: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """``a = sum_ij s_ij ybar_ij`` (module doc): ``row_reads`` ``(R, in, out)`` are R
    one-hot reads of every row, ``signs`` ``(in, out)`` the programmed weights' signs.
    Leading dimensions (e.g. chips: ``(C, R, in, out)`` and ``(C, in, out)``) give one
    statistic each.

    Example:
        >>> import torch
        >>> w = torch.tensor([[0.5, -0.2], [-0.1, 0.4]])
        >>> float(gdc_statistic(torch.stack([w, w]), torch.sign(w)))  # sum |w|
        1.2000000476837158
    """
    if row_reads.dim() < 3 or row_reads.shape[:-3] + row_reads.shape[-2:] != signs.shape:
        raise ValueError(f"gdc_statistic: reads (R, in, out) {tuple(row_reads.shape)} do not match signs "
                         f"(in, out) {tuple(signs.shape)}")
    return (row_reads.mean(dim=-3) * signs).sum(dim=(-2, -1))
