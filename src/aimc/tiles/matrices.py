"""Read matrices: a layer's programmed devices -> what its reads need at time ``t``.

Drift (or retention), IR drop and the read-noise statistics change only with time, so
:func:`read_matrices` computes them once per time, not on every MVM: the effective
weights ``w`` and read-noise variances of :class:`~aimc.tiles.crossbar.ReadMatrices`,
built by a :class:`MatrixBuilder` block by block (whole output tiles, about
:data:`~aimc.tiles.crossbar.BLOCK_DEVICES` devices each), from stored devices here or
from devices redrawn block by block (:mod:`aimc.tiles.seeded`). PCM goes through one
fused C++ pass per block (:mod:`aimc.tiles.progfused`); other device models through
their own methods and :func:`~aimc.tiles.irdrop.apply_ir_drop`.

Example:
    >>> import torch
    >>> from aimc.chips import load
    >>> from aimc.tiles import encode, program_tiles
    >>> chip = load("pcm-hermes")
    >>> tiles = program_tiles(encode(torch.randn(4, 300), chip), chip, torch.Generator().manual_seed(0))
    >>> rm = read_matrices(tiles, chip, 3600.0)
    >>> rm.w.shape, rm.var.dtype  # (T, rows_used, S*out)
    (torch.Size([2, 150, 4]), torch.bfloat16)
"""
from __future__ import annotations

import math

import torch

from aimc.chips.spec import ChipSpec
from aimc.physics.devices import DeviceState
from aimc.tiles import crossbar, progfused
from aimc.tiles.crossbar import ProgrammedTiles, ReadMatrices
from aimc.tiles.fused import encode_var
from aimc.tiles.irdrop import apply_ir_drop
from aimc.tiles.layout import TileLayout
from aimc.tiles.periphery import Periphery

__all__ = ["read_matrices", "MatrixBuilder"]


def read_matrices(tiles: ProgrammedTiles, chip: ChipSpec, t_s: float,
                  w_dtype: torch.dtype | None = None) -> ReadMatrices:
    """Precompute the effective weights and read-noise variances at time ``t_s``.

    Drift (or retention), IR drop and the read-noise statistics change only with time,
    so they are computed once here, not on every MVM: in blocks of whole output tiles
    (about :data:`~aimc.tiles.crossbar.BLOCK_DEVICES` devices each; IR drop couples only the cells of one
    tile), written into the two result matrices, with the same arithmetic per element as
    one pass over the layer. Tiles of ``C`` chips stacked by
    :func:`aimc.tiles.multichip.stack_tiles` (state ``(S, 2, C, T, R, out)``) give ``w``
    and ``var`` with a leading chip dimension, ``(C, T, R, S*out)``. ``w_dtype``: of the
    effective weights (default: the conductances'; :class:`MatrixBuilder`).
    """
    gs = tiles.state.g_uS
    out = MatrixBuilder(tiles.layout, chip, t_s, tuple(gs.shape), gs.dtype, gs.device, w_dtype)
    for c0, c1 in out.blocks():
        out.add(c0, c1, DeviceState(gs[..., c0:c1], tiles.state.drift[..., c0:c1]))
    return out.finish(tiles.scale)


class MatrixBuilder:
    """The read matrices of a layer at time ``t_s``, filled block by block (blocks of whole
    output tiles, :meth:`blocks`) from the devices' programmed state: drift, IR drop,
    effective weights and read-noise variances of each block (:func:`read_matrices`;
    :mod:`aimc.tiles.seeded` fills it from states regenerated block by block).

    Args:
        lay: the layer's tile layout. chip: its chip. t_s: seconds since programming.
        shape: of the layer's programmed state, ``(S, 2, [C,] T, R, out)``.
        dtype, device: of the conductances.
        w_dtype: of the effective weights ``w`` (default ``dtype``; bfloat16 for the
            lean layers and Monte Carlo chips of noisy chips, :func:`aimc.nn.chipstate.lean_w_dtype`).
        var_codes: keep the read-noise variances as one-byte codes
            (:func:`~aimc.tiles.fused.encode_var`; lean layers) instead of bfloat16.
    """

    def __init__(self, lay: TileLayout, chip: ChipSpec, t_s: float, shape: tuple[int, ...], dtype: torch.dtype,
                 device: torch.device, w_dtype: torch.dtype | None = None, var_codes: bool = False):
        self.lay, self.chip, self.t_s = lay, chip, t_s
        self.lead = tuple(shape[2:-1])  # ([C,] T, R)
        self.per = Periphery.of(chip)
        S, n_out = self.slices, self.n_out = shape[0], shape[-1]
        self.w = torch.empty(*self.lead, S, n_out, dtype=w_dtype or dtype, device=device)  # ([C,] T, R, S, out)
        self.var: torch.Tensor | None = None
        self.var_codes = var_codes
        self.var_scale: torch.Tensor | None = None

    def blocks(self) -> list[tuple[int, int]]:
        """Column ranges ``[c0, c1)`` of whole output tiles, about
        :data:`~aimc.tiles.crossbar.BLOCK_DEVICES` devices each (a function of the layout alone)."""
        lay = self.lay
        per_column = 2 * self.slices * math.prod(self.lead)
        step = max(1, crossbar.BLOCK_DEVICES // (per_column * lay.cols_w)) * lay.cols_w
        return [(c0, min(self.n_out, c0 + step)) for c0 in range(0, self.n_out, step)]

    def add(self, c0: int, c1: int, st: DeviceState) -> None:
        """Columns ``[c0, c1)`` from their programmed state ``(S, 2, [C,] T, R, c1 - c0)``
        (one fused C++ pass for PCM, :mod:`aimc.tiles.progfused`; else the device model's
        methods)."""
        chip, lay, dev = self.chip, self.lay, self.chip.device
        dg = dev.g_max_uS - dev.g_min_uS
        unit = self.per.codes_per_unit  # output codes per (weight unit x input code)
        mod = progfused.fused_usable(chip, st.g_uS) if self.w.dtype in (torch.float32, torch.bfloat16) else None
        if mod is not None:
            if progfused.reads_noisy(chip, self.t_s):
                self._alloc_var()
            progfused.read_block(mod, chip, st, self.t_s, lay.rows, lay.cols_w, unit, self.w, self.var,
                                 self.var_scale, c0)
            return
        g = dev.at_time(st, self.t_s)  # (S, 2, [C,] T, R, c1 - c0)
        ge = apply_ir_drop(g, TileLayout(lay.in_features, c1 - c0, lay.rows, lay.cols, lay.slices), chip)
        self.w[..., c0:c1] = ((ge[:, 0] - ge[:, 1]) * (unit / dg)).movedim(0, -2)  # ([C,] T, R, S, c)
        sd = dev.read_noise_std_uS(st, self.t_s, g) if chip.noise.read_noise else None  # 1/f: programmed state
        if sd is not None:
            self._alloc_var()
            assert self.var is not None
            v = ((sd[:, 0] ** 2 + sd[:, 1] ** 2) * (unit / dg) ** 2).movedim(0, -2)  # ([C,] T, R, S, c)
            if self.var_scale is not None:
                self.var[..., c0:c1], self.var_scale[..., c0:c1] = encode_var(v, rows_dim=-3)  # per tile column
            else:
                self.var[..., c0:c1] = v

    def _alloc_var(self) -> None:
        """The read-noise variances (bfloat16, or one-byte codes and their scales), once."""
        if self.var is None:
            self.var = torch.empty(self.w.shape, dtype=torch.uint8 if self.var_codes else torch.bfloat16,
                                   device=self.w.device)
            if self.var_codes:
                self.var_scale = torch.empty(*self.lead[:-1], 1, self.slices, self.n_out, device=self.w.device)

    def finish(self, scale: torch.Tensor) -> ReadMatrices:
        """The :class:`ReadMatrices` once every block is in; ``scale`` ``(S, T, out)``."""
        lay, per = self.lay, self.per
        T = self.lead[-2]
        post = (scale * per.out_unit).permute(1, 0, 2).reshape(T, 1, self.slices * self.n_out).contiguous()
        return ReadMatrices(lay, self.w.flatten(-2), None if self.var is None else self.var.flatten(-2),
                            per.out_var_codes, post, per.adc_max,
                            None if self.var_scale is None else self.var_scale.flatten(-2))
