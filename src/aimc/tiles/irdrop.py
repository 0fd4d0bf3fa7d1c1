"""IR drop on tiles: each physical tile's conductances -> its effective conductances.

With amplitude-encoded inputs a crossbar with wire resistance is still linear, so a read
through it is the ideal read of an input-independent effective matrix ``G_eff``
(:mod:`aimc.physics.circuit`: nodal analysis, ``exact``, or its first order in the wire
resistance, ``first_order``). This module places a layer's conductances on their
physical tiles (:class:`~aimc.tiles.layout.TileLayout`: rows from the top, the column
sinks below the last physical row, slices side by side) and maps them through ``G_eff``:
the tile read and hardware-aware training both read through it.

Unused rows at the bottom of a tile (conductance 0) still lengthen the column wires, so
tiles always have their full ``rows`` (the first-order model adds them in closed form,
``extra_rows``; the exact solver gets them as zero rows); unused columns at the right end of the last tile
carry no current and change nothing, so they are left out.

Example:
    >>> import torch
    >>> from aimc.chips import load
    >>> chip = load("pcm-hermes")
    >>> from aimc.tiles.layout import TileLayout
    >>> lay = TileLayout.of((3, 4), chip)
    >>> wn = torch.tensor([[1.0, -0.5, 0.0, 0.25]] * 3)  # (out, in)
    >>> we = effective_weights(lay.split_in(wn).transpose(1, 2), lay, chip)  # (T, R, out)
    >>> bool((we.abs() <= lay.split_in(wn).transpose(1, 2).abs() + 1e-6).all())  # IR drop only loses current
    True
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from aimc.tiles.layout import TileLayout

__all__ = ["ir_drop_active", "apply_ir_drop", "effective_weights"]


def ir_drop_active(chip) -> bool:
    """True when the chip's wires change its reads."""
    return chip.ir_drop.mode != "none" and chip.ir_drop.r_wire_ohm > 0.0


def apply_ir_drop(g_uS: torch.Tensor, lay: TileLayout, chip) -> torch.Tensor:
    """Effective conductances of ``g_uS`` ``(S, *batch, T, R, out)`` (µS; ``R`` the rows
    given per tile, at most ``lay.rows``; slice first) on their physical tiles.

    Differentiable in ``g_uS`` for ``first_order``; ``exact`` solves each tile (CPU, float64).
    Returns ``g_uS`` itself when the chip has no IR drop.
    """
    if not ir_drop_active(chip):
        return g_uS
    from aimc.physics import circuit  # scipy is only needed here

    S, T, R, n_out = g_uS.shape[0], g_uS.shape[-3], g_uS.shape[-2], g_uS.shape[-1]
    batch = g_uS.shape[1:-3]
    cw, t_out = lay.cols_w, lay.t_out
    width = cw if t_out > 1 else n_out  # trailing unused columns carry no current
    # first order: empty rows below the given ones enter in closed form (no padding)
    pad_rows = 0 if chip.ir_drop.mode == "first_order" else lay.rows - R
    g = F.pad(g_uS, (0, t_out * width - n_out, 0, pad_rows))  # (S, *b, T, R or rows, To*width)
    g = g.unflatten(-1, (t_out, width)).movedim(0, -1)  # (*b, T, rows, To, width, S)
    g = g.movedim(-3, -4).flatten(-2).contiguous()  # (*b, T, To, rows, width*S): column c*S + s
    if chip.ir_drop.mode == "first_order":
        ge = circuit.effective_conductance_first_order(g, chip.ir_drop.r_wire_ohm, extra_rows=lay.rows - R)
    else:
        flat = g.reshape(-1, *g.shape[-2:])
        ge = torch.stack([circuit.effective_conductance_exact(m, chip.ir_drop.r_wire_ohm) for m in flat]).view_as(g)
    ge = ge.unflatten(-1, (width, S)).movedim(-4, -3)  # (*b, T, rows, To, width, S)
    ge = ge.movedim(-1, 0).flatten(-2)  # (S, *b, T, rows, To*width)
    return ge[..., :R, :n_out]


def effective_weights(wn: torch.Tensor, lay: TileLayout, chip) -> torch.Tensor:
    """Normalised weights ``wn`` ``(S, T, R, out)`` or ``(T, R, out)`` in [-1, 1] -> the
    weights the tiles read through IR drop, in the same units (``(G+_eff - G-_eff) /
    (g_max - g_min)``), differentiable (``first_order``).

    Each weight is stored as ``G+ = g_min + max(w, 0) dg``, ``G- = g_min + max(-w, 0) dg``
    (:func:`aimc.tiles.crossbar.encode`); rows that hold no weight have no conductance.
    Returns ``wn`` itself when the chip has no IR drop.
    """
    if not ir_drop_active(chip):
        return wn
    squeeze = wn.dim() == 3
    w = wn.unsqueeze(0) if squeeze else wn
    dev = chip.device
    dg = dev.g_max_uS - dev.g_min_uS
    T, R = w.shape[1], w.shape[2]
    used = lay.used_rows(w.device)[:, :R, None]  # (T, R, 1)
    g = torch.stack([dev.g_min_uS + w.clamp(min=0) * dg, dev.g_min_uS + (-w).clamp(min=0) * dg], dim=1)
    g = torch.where(used, g, torch.zeros((), dtype=g.dtype, device=g.device))  # (S, 2, T, R, out)
    ge = apply_ir_drop(g, lay, chip)
    we = (ge[:, 0] - ge[:, 1]) / dg
    return we.squeeze(0) if squeeze else we
