"""Manufacturing defects: clustered die defect densities and per-device fault draws.

**Clustering (Stapper).** Defects land on a die as a Poisson process whose density is
itself random from die to die: ``D = D0 * G`` with ``G ~ Gamma(shape=alpha, scale=1/alpha)``
(mean 1, variance ``1/alpha``). The number of defects on an area ``A`` is then negative
binomial, and the probability that it is zero — the die yield when every defect is fatal —
is

    ``Y = (1 + A * D0 / alpha) ** -alpha``

(C. H. Stapper, "Modeling of integrated circuit defect sensitivities", IBM J. Res. Dev. 27,
549 (1983); Stapper & Rosner, IEEE Trans. Semicond. Manuf. 8, 95 (1995)). ``alpha -> inf``
is the unclustered Poisson limit ``Y = exp(-A * D0)``; small ``alpha`` (strong clustering)
raises the yield at the same mean density. ``alpha = 2`` and ``D0 = 0.1 /cm^2`` are
the defaults: ``alpha`` between 0.5 and 5 is the range Stapper & Rosner report for
production lines; 0.1 killer defects per cm^2 is the density foundries quote for mature
FinFET nodes (TSMC reported 0.09-0.1 /cm^2 for N7/N5 in volume, 2020 technology symposia).

**Kinds of defect.** Each defect is, independently, one of (shares of the defects that
land on a crossbar tile; all four shares are *assumed* numbers, not published ones —
measured splits depend on layout and process and are not public for PCM/RRAM arrays):

* ``fatal`` (``fatal_share``): a short of supply, clock or shared digital logic; kills the
  die wherever it lands (also in tiles that hold no weights);
* ``row`` (``row_share``): an open word line or a dead row driver: every device of that
  tile row conducts nothing;
* ``col`` (``col_share``): an open bit line or a dead column ADC: every device of that
  bit line conducts nothing;
* ``cell`` (the rest): one device stuck at ``g_max`` (share ``stuck_on_share``) or at
  ``g_min``.

Defects on die area outside the tiles (``chip_extra_area_mm2`` of the cost model) are
fatal. On top, each device fails independently at ``p_stuck_on`` / ``p_stuck_off``
(forming and endurance failures: 0.1 % to ~10 % measured in RRAM, Chen et al., IEEE TC 64,
180 (2015); default 0).

Thinning a Poisson process keeps it Poisson, so given the die's density ``D`` a given row
line is dead with probability ``1 - exp(-D * A_tile * row_share / rows)`` independently of
every other line (likewise bit lines and cells): fault maps are drawn with one uniform
draw per line and device, vectorised over dies.

Example:
    >>> round(negative_binomial_yield(1.0, 0.5, 2.0), 4)  # (1 + 0.5/2)^-2
    0.64
    >>> import math
    >>> abs(negative_binomial_yield(1.0, 0.5, None) - math.exp(-0.5)) < 1e-12
    True
"""
from __future__ import annotations

import math

import torch
from pydantic import Field, model_validator

from aimc.config import BaseConfig

__all__ = ["DefectModel", "negative_binomial_yield", "die_density_factor", "line_hit", "survives", "FAULT_OK", "FAULT_OPEN",
           "FAULT_STUCK_OFF", "FAULT_STUCK_ON"]

#: Fault codes of one device: working, open (conducts nothing: 0 µS), stuck at g_min, at g_max.
FAULT_OK, FAULT_OPEN, FAULT_STUCK_OFF, FAULT_STUCK_ON = 0, 1, 2, 3


class DefectModel(BaseConfig):
    """A defect model (module doc; which numbers are published and which assumed is stated there).

    Attributes:
        d0_per_cm2: mean killer-defect density ``D0`` (defects per cm²).
        alpha: clustering parameter of the negative binomial; None = Poisson (no clustering).
        fatal_share, row_share, col_share: shares of tile defects that kill the die, a row
            or a bit line; the rest (``1 - sum``) are single stuck devices.
        stuck_on_share: share of single-device defects stuck at ``g_max`` (rest: ``g_min``).
        p_stuck_on, p_stuck_off: independent per-device fault probabilities.

    Example:
        >>> DefectModel(d0_per_cm2=0.2).cell_share
        0.6
    """

    d0_per_cm2: float = Field(0.1, ge=0.0, le=1e6)
    alpha: float | None = Field(2.0, gt=0.0, le=1e6)
    fatal_share: float = Field(0.1, ge=0.0, le=1.0)
    row_share: float = Field(0.1, ge=0.0, le=1.0)
    col_share: float = Field(0.2, ge=0.0, le=1.0)
    stuck_on_share: float = Field(0.5, ge=0.0, le=1.0)
    p_stuck_on: float = Field(0.0, ge=0.0, le=1.0)
    p_stuck_off: float = Field(0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check_shares(self):
        total = self.fatal_share + self.row_share + self.col_share
        if total > 1.0 + 1e-12:
            raise ValueError(f"fatal_share + row_share + col_share must be <= 1, got {total:g}")
        if self.p_stuck_on + self.p_stuck_off > 1.0:
            raise ValueError("p_stuck_on + p_stuck_off must be <= 1")
        return self

    @property
    def cell_share(self) -> float:
        """Share of tile defects that are single stuck devices."""
        return round(1.0 - self.fatal_share - self.row_share - self.col_share, 12)

    def die_yield(self, area_mm2: float) -> float:
        """Yield of a die of ``area_mm2`` whose every defect is fatal (module doc formula)."""
        return negative_binomial_yield(area_mm2 / 100.0, self.d0_per_cm2, self.alpha)


def negative_binomial_yield(area_cm2: float, d0_per_cm2: float, alpha: float | None) -> float:
    """``(1 + A D0 / alpha) ** -alpha`` (Stapper 1983); ``exp(-A D0)`` for ``alpha=None``.

    Raises:
        ValueError: a negative area or density, or ``alpha <= 0``.
    """
    if area_cm2 < 0 or d0_per_cm2 < 0:
        raise ValueError(f"area_cm2 and d0_per_cm2 must be >= 0, got {area_cm2} and {d0_per_cm2}")
    lam = area_cm2 * d0_per_cm2
    if alpha is None:
        return math.exp(-lam)
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0 (or None for Poisson), got {alpha}")
    return (1.0 + lam / alpha) ** -alpha


def die_density_factor(n_dies: int, alpha: float | None, generator: torch.Generator) -> torch.Tensor:
    """Per-die density factors ``G`` (n_dies,) float64: Gamma(alpha, 1/alpha), mean 1;
    all ones for the Poisson model (``alpha=None``).

    Example:
        >>> g = die_density_factor(20000, 2.0, torch.Generator().manual_seed(0))
        >>> abs(float(g.mean()) - 1.0) < 4 * (0.5 / 20000) ** 0.5  # var = 1/alpha
        True
    """
    if n_dies < 1:
        raise ValueError(f"n_dies must be >= 1, got {n_dies}")
    if alpha is None:
        return torch.ones(n_dies, dtype=torch.float64)
    shape = torch.full((n_dies,), float(alpha), dtype=torch.float64)
    return torch._standard_gamma(shape, generator=generator) / alpha


def line_hit(rate: torch.Tensor, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Bool ``(n_dies, *shape)``: each element hit by at least one defect, given a Poisson
    mean ``rate`` (n_dies,) per element: ``P = 1 - exp(-rate)``, independently."""
    u = torch.rand((rate.shape[0], *shape), generator=generator, dtype=torch.float64)
    p = -torch.expm1(-rate).view(-1, *([1] * len(shape)))
    return u < p


def survives(density_per_mm2: torch.Tensor, area_mm2: float, generator: torch.Generator) -> torch.Tensor:
    """Bool (D,): no defect on ``area_mm2`` of each die, ``P = exp(-density * area)`` given
    its density (D,) per mm²; over Gamma-distributed densities the share of survivors is
    :func:`negative_binomial_yield`."""
    if area_mm2 < 0:
        raise ValueError(f"area_mm2 must be >= 0, got {area_mm2}")
    u = torch.rand(density_per_mm2.shape, generator=generator, dtype=torch.float64)
    return u < torch.exp(-density_per_mm2.to(torch.float64) * area_mm2)
