"""Digit reads: sensing one column of a 1T1R array for a set of active rows.

A read that is not an MVM: the keys of a sort-in-memory array are stored one per row, one
digit per cell (MSB first), and a *digit read* applies ``V_read`` to one column's bit line
with the word lines of the candidate rows on. Two decisions come out of it:

* **per-row digits** (``sense_rows``): each candidate row's source line carries only that
  cell's current ``I = g V_read``, compared by a row sense amplifier against the ``L - 1``
  reference currents between the nominal levels (``L = 2``: one reference between LRS and
  HRS; ``L = 4``, two bits per multi-level cell: three references, a flash sense). The
  controller drops the candidates whose digit is not the smallest present; the "is there a
  0" flag is the wired OR of the amplifiers' outputs. This is what the row drop needs in any
  design: a column current alone says *whether* a candidate holds a 0, not *which*.
* **the column current** (``column_exists``, binary cells only): by Kirchhoff's law the
  bit line sums the candidates' currents, ``I = V Σ g``. Digit 0 is stored as LRS, so "some
  candidate holds a 0" is ``I > V (n g_off + (g_on - g_off) / 2)`` for ``n`` active rows
  (the controller knows ``n``: it is the popcount of its candidate mask). The margin,
  ``(g_on - g_off) V / 2``, stays fixed while the spread of the sum grows as ``sqrt(n)``
  (device-to-device) and the HRS leakage ``n g_off`` grows as ``n``: the wired OR fails for
  large candidate sets at low on/off ratio; ``sense_error_rate`` gives the per-cell rate.
  A multi-level column cannot be sensed this way at all: "one cell at level ``v`` among
  cells at lower levels" (``g_v + (n-1) g_min``) and "all cells at level ``v+1``"
  (``n g_{v+1}``) overlap as soon as ``g_v - g_min < n (g_{v+1} - g_min)``, so
  ``column_exists`` refuses ``L > 2``.

Levels: digit ``d`` of ``L`` is programmed to conductance level ``L - 1 - d`` of ``L``
equally spaced levels in ``[g_min, g_max]`` (digit 0 = LRS = ``g_max``), snapped to the
device's own programmable levels (:func:`~aimc.physics.devices.quantise_to_levels`).
Programming goes through the device model (:meth:`~aimc.physics.devices.DeviceModel.program`:
level quantisation, device-to-device and cycle-to-cycle lognormal spread, stuck-at
faults), retention through ``at_time`` and each read draws fresh Gaussian read noise of
``read_noise_std_uS``. References sit at the arithmetic midpoints of the nominal levels
(a reference-cell pair per amplifier, the usual RRAM sense design).

Example:
    >>> import torch
    >>> from aimc.chips import load
    >>> digits = torch.tensor([[0, 1], [1, 0], [1, 1]])
    >>> arr = program_digits(digits, 2, load("ideal").device, torch.Generator().manual_seed(0))
    >>> sense_rows(arr, 0, torch.tensor([0, 1, 2]), torch.Generator()).tolist()
    [0, 1, 1]
    >>> column_exists(arr, 1, torch.tensor([0, 2]), torch.Generator())  # both rows hold a 1
    False
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from aimc.physics.devices import DeviceModel, DeviceState, quantise_to_levels

__all__ = ["DigitArray", "has_read_noise", "program_digits", "sense_rows", "sense_all", "column_exists", "sense_error_rate",
           "level_conductances_uS"]


@dataclass
class DigitArray:
    """Programmed digit cells of one (logical) array, ``(rows, digits)``.

    Attributes:
        state: device state; ``state.g_uS`` is ``(rows, digits)`` in µS.
        device: the device model (read noise, retention).
        levels_uS: nominal conductance of each digit value, ``(L,)``, descending.
        refs_uS: sense references between consecutive levels, ``(L - 1,)``, descending.
        t_s: seconds since programming at which the array is read.
        g_read_uS: the conductances at ``t_s`` (retention applied), ``(rows, digits)``.
        read_noise: draw the device's read noise on every read (a chip's ``noise.read_noise``).
    """

    state: DeviceState
    device: DeviceModel
    levels_uS: torch.Tensor
    refs_uS: torch.Tensor
    t_s: float
    g_read_uS: torch.Tensor
    read_noise: bool = True

    @property
    def n_levels(self) -> int:
        return int(self.levels_uS.numel())


def level_conductances_uS(device: DeviceModel, n_levels: int) -> torch.Tensor:
    """Nominal conductance of digit ``d`` (``0 .. n_levels-1``), descending (digit 0 = ``g_max``).

    Example:
        >>> from aimc.physics.rram import RRAM
        >>> level_conductances_uS(RRAM(), 4).tolist()
        [40.0, 28.0, 16.0, 4.0]
    """
    dev_levels = getattr(device, "n_levels", None)
    if n_levels < 2:
        raise ValueError(f"a digit needs at least 2 levels, got n_levels={n_levels}")
    if dev_levels is not None and n_levels > dev_levels:
        raise ValueError(f"{n_levels} levels per cell need a device with at least as many programmable levels; "
                         f"the {device.kind} device has n_levels={dev_levels}")
    g_lo, g_hi = float(device.g_min_uS), float(device.g_max_uS)
    target = g_hi - torch.arange(n_levels, dtype=torch.float64) * (g_hi - g_lo) / (n_levels - 1)
    if dev_levels is not None:
        target = quantise_to_levels(target, g_lo, g_hi, dev_levels)
    if torch.unique(target).numel() != n_levels:
        raise ValueError(f"{n_levels} levels collapse onto fewer programmable levels of the {device.kind} device")
    return target.float()


def program_digits(digits: torch.Tensor, n_levels: int, device: DeviceModel, generator: torch.Generator,
                   t_s: float = 0.0, read_noise: bool = True) -> DigitArray:
    """Program a ``(rows, digits)`` array of digit values in ``[0, n_levels)`` into cells.

    Args:
        digits: integer digit values, one key per row, most significant digit first.
        n_levels: levels per cell (2: binary; 4: two bits per multi-level cell).
        device: the cell's device model (e.g. ``load("rram-1t1r").device``).
        generator: draws the programming spread and faults.
        t_s: seconds between programming and the reads (retention).
        read_noise: draw read noise on every read (False: reads repeat the programmed state).
    """
    if digits.dim() != 2:
        raise ValueError(f"digits must be (rows, digits), got shape {tuple(digits.shape)}")
    if digits.numel() and (int(digits.min()) < 0 or int(digits.max()) >= n_levels):
        raise ValueError(f"digit values must lie in [0, {n_levels}), got [{int(digits.min())}, {int(digits.max())}]")
    levels = level_conductances_uS(device, n_levels)
    state = device.program(levels[digits.long()], generator)  # (rows, digits)
    refs = 0.5 * (levels[:-1] + levels[1:])
    return DigitArray(state, device, levels, refs, float(t_s), device.at_time(state, float(t_s)), read_noise)


def _noisy(arr: DigitArray, g: torch.Tensor, state: DeviceState, generator: torch.Generator) -> torch.Tensor:
    std = arr.device.read_noise_std_uS(state, arr.t_s, g) if arr.read_noise else None
    if std is None:
        return g
    return g + std * torch.randn(g.shape, generator=generator, dtype=g.dtype)


def has_read_noise(arr: DigitArray) -> bool:
    """True when repeated reads of a cell can differ (read noise drawn per read)."""
    one = arr.state.g_uS[:1, :1]
    return arr.read_noise and arr.device.read_noise_std_uS(DeviceState(one, arr.state.drift[:1, :1]), arr.t_s) is not None


def sense_rows(arr: DigitArray, col: int, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One digit read of column ``col`` for the active ``rows``: the sensed digit of each.

    Every call is one read: fresh read noise per active cell. Returns ``(len(rows),)`` int64.
    """
    g = arr.g_read_uS[rows, col]
    st = DeviceState(arr.state.g_uS[rows, col], arr.state.drift[rows, col])
    g = _noisy(arr, g, st, generator)
    return (g.unsqueeze(-1) < arr.refs_uS).sum(-1)  # refs descending: digit = references above g


def sense_all(arr: DigitArray, generator: torch.Generator) -> torch.Tensor:
    """Every cell read once (one read-noise draw per cell): the sensed ``(rows, digits)`` digits
    (uint8)."""
    g = _noisy(arr, arr.g_read_uS, arr.state, generator)
    out = torch.zeros(g.shape, dtype=torch.uint8)
    for ref in arr.refs_uS.tolist():  # one pass per reference level
        out += g < ref
    return out


def column_exists(arr: DigitArray, col: int, rows: torch.Tensor, generator: torch.Generator,
                  digit: int = 0) -> bool:
    """Wired-OR read (binary cells): does any active row hold ``digit`` in ``col``, from the
    summed bit-line current. A 0 (LRS) exists when the current exceeds
    ``n g_off + (g_on - g_off) / 2`` (module doc); a 1 (HRS, for max searches) when it stays
    below ``n g_on - (g_on - g_off) / 2``."""
    if arr.n_levels != 2:
        raise ValueError(f"a column-current (wired-OR) read needs binary cells; this array has {arr.n_levels} "
                         "levels per cell, whose summed currents overlap (module doc): use per-row sensing")
    g = arr.g_read_uS[rows, col]
    g = _noisy(arr, g, DeviceState(arr.state.g_uS[rows, col], arr.state.drift[rows, col]), generator)
    g_on, g_off = float(arr.levels_uS[0]), float(arr.levels_uS[1])
    if digit == 0:
        return bool(g.sum() > rows.numel() * g_off + 0.5 * (g_on - g_off))
    if digit == 1:
        return bool(g.sum() < rows.numel() * g_on - 0.5 * (g_on - g_off))
    raise ValueError(f"a binary cell holds digit 0 or 1, got {digit}")


def sense_error_rate(g_uS: float, ref_uS: float, sigma_ln: float, read_noise_rel: float, above: bool) -> float:
    """Probability that one read of a cell of nominal conductance ``g_uS`` lands on the wrong
    side of ``ref_uS`` (``above``: the right side is above the reference).

    Exact for either spread alone: a lognormal programming spread ``exp(sigma_ln z)``
    (``sigma_ln² = sigma_d2d² + sigma_c2c²``) gives ``Φ(ln(ref/g) / sigma_ln)``; Gaussian read
    noise ``read_noise_rel g`` gives ``Φ((ref - g) / (read_noise_rel g))``. With both, the
    two relative spreads are added in quadrature (first order in the spreads).

    Example:
        >>> round(sense_error_rate(40.0, 22.0, 0.0, 0.3, above=True), 4)  # Φ(-1.5)
        0.0668
    """
    if sigma_ln == 0 and read_noise_rel == 0:
        return float((g_uS <= ref_uS) if above else (g_uS >= ref_uS))
    if read_noise_rel == 0:
        z = math.log(ref_uS / g_uS) / sigma_ln
    elif sigma_ln == 0:
        z = (ref_uS - g_uS) / (read_noise_rel * g_uS)
    else:
        z = math.log(ref_uS / g_uS) / math.hypot(sigma_ln, read_noise_rel)
    p = 0.5 * math.erfc(-z / math.sqrt(2.0))  # Φ(z): probability of reading below ref
    return p if above else 1.0 - p
