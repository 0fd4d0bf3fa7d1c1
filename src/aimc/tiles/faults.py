"""Fault maps on crossbar tiles, spare columns and fault-aware mapping.

A die's defects (:mod:`aimc.physics.defects`) become one fault code per device of a
layer's tiles (``FAULT_OK`` / ``FAULT_OPEN`` / ``FAULT_STUCK_OFF`` / ``FAULT_STUCK_ON``
of :mod:`aimc.physics.defects`), drawn for many dies at once in the tiles' physical geometry
``(dies, T, t_out, rows + spare_rows, cols_w + spare_w, S, 2)``: every tile has
``spare_cols`` physical columns beyond its ``cols`` (``spare_cols // S`` spare weight
columns) and ``spare_rows`` rows beyond its ``rows`` (its area grows in proportion), each weight column's ``S`` slices sit side
by side and each slice is a differential pair on two bit lines
(:class:`~aimc.tiles.layout.TileLayout`).

**Fault-aware mapping** (:func:`repair`), as a tester would do it after a write-verify
pass that reads every column back: the error of a weight column is
``sum_rows |w_faulty - w_target|`` in weight units (slices combined with their
significance); per tile the ``spare_w`` worst columns are moved, worst first, onto the
spare columns with the fewest faulty devices, where that lowers the column's error
(spares are drawn from the same defect process, so they can be faulty too). Spare rows
are used the same way, first, on the rows (a dead word line is mended only by a spare
row; a row moved to a spare row keeps the spare columns' cells of its old row: a
second-order approximation). With
``prune`` a column whose faulty weights are further from the targets than zero is
(``sum |w_f - w| > sum |w|``) is switched off: both devices of every pair open, weight
exactly 0 (the digital side drops the column). Padding rows and the empty rows below a tile's used ones carry no weight and no fault.

:func:`apply_faults` puts the codes on programmed devices; :func:`aimc.tiles.program_tiles`
calls it when given ``faults`` (every read then sees them: drift, IR drop, noise).

Example:
    >>> import torch
    >>> from aimc.chips import load
    >>> from aimc.physics.defects import DefectModel
    >>> chip = load("pcm-hermes")
    >>> lay = TileLayout(in_features=300, out_features=20, rows=256, cols=256, slices=1)
    >>> raw = draw_faults(lay, DefectModel(d0_per_cm2=50.0, alpha=None), torch.ones(3) * 0.5,
    ...                   0.635, 8, torch.Generator().manual_seed(0))
    >>> tuple(raw.shape)  # (dies, T, t_out, rows, used cols + spare_w, S, 2)
    (3, 2, 1, 256, 28, 1, 2)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from aimc.chips.spec import ChipSpec
from aimc.physics.defects import FAULT_OK, FAULT_OPEN, FAULT_STUCK_OFF, FAULT_STUCK_ON, DefectModel, line_hit
from aimc.physics.devices import DeviceState
from aimc.tiles.layout import TileLayout, significance

__all__ = ["draw_faults", "repair", "apply_faults", "fault_values", "spare_weight_cols", "used_cols"]


def spare_weight_cols(spare_cols: int, layout: TileLayout) -> int:
    """Spare weight columns per tile: ``spare_cols`` physical columns hold ``spare_cols / S``.

    Raises:
        ValueError: ``spare_cols`` negative or not a multiple of the slices ``S``.
    """
    if spare_cols < 0 or spare_cols % layout.slices:
        raise ValueError(f"spare_cols must be >= 0 and a multiple of mapping.slices ({layout.slices}), "
                         f"got {spare_cols}")
    return spare_cols // layout.slices


def used_cols(layout: TileLayout) -> int:
    """Weight columns per tile whose faults matter: ``cols_w``, or only the matrix's
    ``out_features`` when it fits one tile across (the others hold nothing)."""
    return layout.cols_w if layout.t_out > 1 else layout.out_features


def draw_faults(layout: TileLayout, model: DefectModel, density_per_mm2: torch.Tensor, tile_area_mm2: float,
                spare_cols: int, generator: torch.Generator, spare_rows: int = 0) -> torch.Tensor:
    """Fault codes of every device (spares included) of a layer's tiles on ``D`` dies.

    Args:
        layout: the layer's tile geometry.
        model: defect kinds and per-device fault rates.
        density_per_mm2: each die's defect density ``D0 * G`` (D,), defects per mm².
        tile_area_mm2: area of one tile without spares (the cost model's).
        spare_cols: spare physical columns per tile.
        generator: the random stream (CPU).
        spare_rows: spare rows per tile.

    Returns:
        uint8 codes ``(D, T, t_out, rows + spare_rows, cols_w + spare_w, S, 2)``; ``cols_w`` is only the
        used columns (:func:`used_cols`) when the matrix fits one tile across.
    """
    if tile_area_mm2 <= 0:
        raise ValueError(f"tile_area_mm2 must be > 0, got {tile_area_mm2}")
    sw = spare_weight_cols(spare_cols, layout)
    if spare_rows < 0:
        raise ValueError(f"spare_rows must be >= 0, got {spare_rows}")
    S, cw = layout.slices, used_cols(layout)
    R = layout.rows + spare_rows
    cols_all = layout.cols_w * S + sw * S
    area = tile_area_mm2 * cols_all / (layout.cols_w * S) * R / layout.rows  # the tile grown by its spares
    dens = density_per_mm2.to(torch.float64)
    tiles = (layout.t_in, layout.t_out)
    row_dead = line_hit(dens * area * model.row_share / R, (*tiles, R), generator)
    bl_dead = line_hit(dens * area * model.col_share / (2 * cols_all), (*tiles, cw + sw, S, 2), generator)
    shape = (dens.shape[0], *tiles, R, cw + sw, S, 2)
    p_cell = -torch.expm1(-dens * area * model.cell_share / (2 * R * cols_all)).view(-1, 1, 1, 1, 1, 1, 1)
    u = torch.rand(shape, generator=generator)
    v = torch.rand(shape, generator=generator)
    on = (u < p_cell * model.stuck_on_share) | (v < model.p_stuck_on)
    off = (u < p_cell) | (v < model.p_stuck_on + model.p_stuck_off)
    code = torch.full(shape, FAULT_OK, dtype=torch.uint8)
    code[off] = FAULT_STUCK_OFF
    code[on] = FAULT_STUCK_ON
    opened = row_dead[:, :, :, :, None, None, None] | bl_dead[:, :, :, None]
    code[opened] = FAULT_OPEN
    return code


def fault_values(code: torch.Tensor, g_uS: torch.Tensor, chip: ChipSpec) -> torch.Tensor:
    """Conductances with faults applied: open -> 0 µS, stuck-off -> ``g_min``, stuck-on ->
    ``g_max``, working devices keep ``g_uS`` (shapes broadcast)."""
    dev = chip.device
    g = torch.where(code == FAULT_OPEN, torch.zeros((), dtype=g_uS.dtype), g_uS)
    g = torch.where(code == FAULT_STUCK_OFF, torch.full((), dev.g_min_uS, dtype=g_uS.dtype), g)
    return torch.where(code == FAULT_STUCK_ON, torch.full((), dev.g_max_uS, dtype=g_uS.dtype), g)


def apply_faults(state: DeviceState, codes: torch.Tensor, chip: ChipSpec) -> DeviceState:
    """Programmed devices ``(S, 2, T, rows_used, out)`` with fault ``codes`` of the same shape
    applied; a faulty device keeps its value (no drift, drift state 0)."""
    if codes.shape != state.g_uS.shape:
        raise ValueError(f"faults: codes of shape {tuple(codes.shape)} do not match the programmed devices "
                         f"{tuple(state.g_uS.shape)} (slices, 2, tiles_in, rows_used, out)")
    codes = codes.to(state.g_uS.device)
    return DeviceState(fault_values(codes, state.g_uS, chip), state.drift.masked_fill(codes != FAULT_OK, 0.0))


def _physical(a: torch.Tensor, layout: TileLayout) -> torch.Tensor:
    """``(S, 2, T, R, out)`` -> ``(T, t_out, R, cw, S, 2)`` (out zero-padded; ``cw``:
    :func:`used_cols`)."""
    cw = used_cols(layout)
    a = F.pad(a, (0, layout.t_out * cw - layout.out_features))
    a = a.unflatten(-1, (layout.t_out, cw))  # (S, 2, T, R, t_out, cw)
    return a.permute(2, 4, 3, 5, 0, 1)


def _weights(g: torch.Tensor, sig: torch.Tensor) -> torch.Tensor:
    """``(..., S, 2)`` conductances -> ``(...)`` weights: ``sum_s sig_s (G+ - G-)``."""
    return ((g[..., 0] - g[..., 1]) * sig).sum(dim=-1)


def _remap(main: torch.Tensor, spare: torch.Tensor, target: torch.Tensor, sig: torch.Tensor,
           chip: ChipSpec) -> torch.Tensor:
    """Move the worst lines of ``main`` (D, T, t_out, L, C, S, 2) — lines along ``C`` — onto
    the ``spare`` lines (D, T, t_out, L, n, S, 2) with the fewest faulty devices, where that
    lowers ``sum_L |w_f - w|`` of the line; ``target`` (T, t_out, L, C, S, 2) µS."""
    n, (D, L) = spare.shape[-3], (main.shape[0], main.shape[-4])
    w_t = _weights(target, sig)

    def err(codes: torch.Tensor, tgt: torch.Tensor, w_ref: torch.Tensor) -> torch.Tensor:
        return (_weights(fault_values(codes, tgt, chip), sig) - w_ref).abs().sum(dim=-2)

    damage = err(main, target, w_t)  # (D, T, t_out, C)
    worst = damage.topk(n, dim=-1).indices  # (D, T, t_out, n), worst first
    best = (spare != FAULT_OK).sum(dim=(-4, -2, -1)).argsort(dim=-1, stable=True)  # spares, fewest faults first
    spare = spare.gather(-3, best[:, :, :, None, :, None, None].expand_as(spare))
    idx = worst[:, :, :, None, :, None, None].expand(*worst.shape[:3], L, n, *main.shape[-2:])
    tgt = target.expand(D, *target.shape).gather(-3, idx)
    better = err(spare, tgt, _weights(tgt, sig)) < damage.gather(-1, worst)
    moved = torch.where(better[:, :, :, None, :, None, None], spare, main.gather(-3, idx))
    return main.scatter(-3, idx, moved)


def repair(raw: torch.Tensor, g_target_uS: torch.Tensor, used: torch.Tensor, layout: TileLayout,
           chip: ChipSpec, spare_cols: int, prune: bool = False, spare_rows: int = 0) -> torch.Tensor:
    """Fault-aware mapping (module doc): raw codes ``(D, T, t_out, rows + spare_rows,
    cols_w + spare_w, S, 2)`` -> the codes each die's programmed devices end up with,
    ``(D, S, 2, T, rows_used, out)`` (the used rows are the top ``rows_used`` of each tile; faults in its empty rows below touch no weight).

    Args:
        raw: codes from :func:`draw_faults`.
        g_target_uS, used: the layer's targets and used rows (:class:`~aimc.tiles.crossbar.Encoded`).
        layout, chip: the layer's geometry and chip.
        spare_cols, spare_rows: spares per tile (as drawn); 0 = no remapping.
        prune: switch off columns whose faults do more harm than a zero weight.
    """
    sw = spare_weight_cols(spare_cols, layout)
    cw, R, phys = used_cols(layout), layout.rows_used, layout.rows  # used rows on top; the rest empty
    want = (layout.t_in, layout.t_out, phys + spare_rows, cw + sw, layout.slices, 2)
    if spare_rows < 0 or raw.dim() != 7 or tuple(raw.shape[1:]) != want:
        raise ValueError(f"repair: raw codes of shape {tuple(raw.shape)} do not fit the layout with "
                         f"spare_cols={spare_cols}, spare_rows={spare_rows}: expected (dies, {', '.join(map(str, want))})")
    sig = torch.tensor(significance(chip), dtype=torch.float32)
    target = _physical(g_target_uS.float(), layout)  # (T, t_out, R, cw, S, 2)
    rows_used = used.view(layout.t_in, 1, R, 1, 1, 1)
    main = torch.where(rows_used, raw[..., :R, :, :, :], torch.zeros((), dtype=raw.dtype))  # padding rows: no fault
    codes = main[..., :cw, :, :]
    if spare_rows > 0:  # rows first (columns cannot mend a dead row); the spare rows' cells in the used columns
        codes = _remap(codes.transpose(-4, -3), raw[..., phys:, :cw, :, :].transpose(-4, -3),
                       target.transpose(-4, -3), sig, chip).transpose(-4, -3)
    if sw > 0:
        codes = _remap(codes, main[..., cw:, :, :], target, sig, chip)
    if prune:
        w_t = _weights(target, sig)
        harm = (_weights(fault_values(codes, target, chip), sig) - w_t).abs().sum(dim=-2)
        off = harm > w_t.abs().sum(dim=-2)  # (D, T, t_out, cw): zero is closer than the faulty column
        codes = codes.masked_fill(off[:, :, :, None, :, None, None], FAULT_OPEN)
    D = raw.shape[0]
    out = codes.permute(0, 5, 6, 1, 3, 2, 4).reshape(D, layout.slices, 2, layout.t_in, R, -1)
    return out[..., : layout.out_features].contiguous()
