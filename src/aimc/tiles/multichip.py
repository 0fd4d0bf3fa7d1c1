"""A chip dimension in the tile tensors: ``C`` programmed chips of one layer read in one pass.

Monte Carlo over chips (every figure of an analog accuracy is a distribution over
programmed chips) repeats the same read with ``C`` sets of conductances. Here the ``C``
chips of one layer are one set of tensors with a chip dimension, and their reads are one
batched pass, the same semantics as :func:`aimc.tiles.crossbar.mvm` (DAC, per-tile
partial sums, read and output noise, per-column ADC, digital sum over tiles, bound
management):

* **programming**: :func:`program_tiles_chips` programs ``C`` chips at once, chip ``c``
  drawing from its own generator exactly as :func:`~aimc.tiles.crossbar.program_tiles`
  does for a single chip (same seed, same conductances, bit for bit); what depends on the
  targets alone (PCM's programming-noise std and drift statistics) is computed once.
  :func:`stack_tiles` stacks separately programmed chips instead. The state is
  ``(S, 2, C, T, R, out)``; the digital scales come from the weights alone
  (:func:`~aimc.tiles.crossbar.encode`), so all chips share them;
* **read matrices**: :func:`~aimc.tiles.matrices.read_matrices` of the stacked state
  (drift, IR drop, read-noise variances for all chips at once), laid out as
  ``(T, C, R, S*out)`` for the batched matmul (``R`` the layout's ``rows_used``);
* **the read**: inputs are chip-major rows ``(C*B, in)`` (rows ``c*B .. c*B+B-1`` are
  chip ``c``'s), one DAC pre-pass over all rows, one batched matmul
  ``(T, C, B, R) @ (T, C, R, N)`` (and one more for the noise variances), and one fused
  noise/ADC/sum pass over ``(T, C*B, N)`` (:func:`~aimc.tiles.crossbar.finish_read`) with
  a per-row scale that carries each chip's gain (drift compensation). A convolution on
  CPU goes through the compiled patch read of a group of chips per call, with the noise,
  ADC, gains and bias in the same pass (``conv_read_chips``: each chip's patches against
  its own matrices, 16 pixels per vector along a chip's flattened output pixels, the
  single-chip kernel's sums bit for bit; each segment's partial sums stay in scratch and
  are finished with :func:`~aimc.tiles.crossbar.finish_read`'s draws and roundings, bit for
  bit); elsewhere through its im2col rows. Each group of chips writes its rows of the
  layer's output in place.

The read noise is drawn from one counter-based stream per pass (seeded from
``generator``), so chip ``c``'s noise depends on the pass it is read in; its conductances
(programming noise, drift exponents) depend only on its own seed. Without read and
output noise chip ``c``'s outputs equal the single-chip read's up to float summation
order.

Example:
    >>> import torch
    >>> from aimc.chips import load
    >>> from aimc.tiles import encode, program_tiles
    >>> chip = load("ideal")
    >>> w = torch.randn(3, 5)
    >>> tiles = stack_tiles([program_tiles(encode(w, chip), chip, torch.Generator().manual_seed(s)) for s in (0, 1)])
    >>> cr = chips_read_matrices(tiles, chip, 0.0)
    >>> x = torch.randn(2 * 4, 5)  # 4 rows for each of 2 chips
    >>> torch.allclose(mvm_chips(x, cr, chip), x @ w.t(), atol=1e-5)
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Callable, Sequence

import torch

from aimc.chips.spec import ChipSpec
from aimc.physics.devices import DeviceState
from aimc import cpp
from aimc.physics.periphery import max_code
from aimc.tiles.conv import ConvGeometry, _fused_usable, _pad, conv_out_shape, im2col
from aimc.tiles.crossbar import (Encoded, ProgrammedTiles, ReadMatrices, bound_manage_, finish_read, full_scale,
                                 noise_seed, wants_saturation)
from aimc.tiles.matrices import read_matrices
from aimc.tiles.fused import _signed64, dac_prepass

__all__ = ["ChipsRead", "stack_tiles", "program_tiles_chips", "chips_read_matrices", "mvm_chips", "conv_mvm_chips"]


@dataclass
class ChipsRead:
    """The read matrices of ``n_chips`` chips of one layer at one time (module doc).

    Attributes:
        n_chips: chips ``C``.
        rm: ``w`` ``(T, C, R, N)``, ``var`` the same in bfloat16 (or None); ``post``,
            ``out_var`` and ``code_max`` as for one chip.
        full: the single-chip layout ``w`` ``(C, T, R, N)`` (bound management re-reads
            a chip's saturated vectors through :func:`aimc.tiles.crossbar.bound_manage_`).
    """

    n_chips: int
    rm: ReadMatrices
    full: ReadMatrices

    @property
    def rows(self) -> int:
        """Rows ``R`` per tile in the batched matmul (the layout's ``rows_used``)."""
        return self.rm.layout.rows_used

    def chip(self, c: int) -> ReadMatrices:
        """Chip ``c``'s read matrices, as :func:`~aimc.tiles.matrices.read_matrices` gives one chip."""
        f = self.full
        return ReadMatrices(f.layout, f.w[c], None if f.var is None else f.var[c], f.out_var, f.post, f.code_max)


def stack_tiles(tiles: Sequence[ProgrammedTiles]) -> ProgrammedTiles:
    """Programmed tiles of ``C`` chips of one layer -> one :class:`ProgrammedTiles` whose
    state is ``(S, 2, C, T, R, out)``.

    Raises:
        ValueError: no tiles, or chips of different layouts or digital scales (not the
            same weights on the same chip).
    """
    if not tiles:
        raise ValueError("stack_tiles: no chips")
    first = tiles[0]
    for k, t in enumerate(tiles[1:], 1):
        if t.layout != first.layout or not torch.equal(t.scale, first.scale):
            raise ValueError(f"stack_tiles: chip {k} holds other weights or another layout than chip 0")
    g = torch.stack([t.state.g_uS for t in tiles], dim=2)
    d = torch.stack([t.state.drift for t in tiles], dim=2)
    return ProgrammedTiles(first.layout, DeviceState(g, d), first.scale)


def program_tiles_chips(enc: Encoded, chip: ChipSpec, generators: Sequence[torch.Generator]) -> ProgrammedTiles:
    """:func:`~aimc.tiles.crossbar.program_tiles` on ``len(generators)`` chips at once ->
    state ``(S, 2, C, T, R, out)``, chip ``c`` bit-identical to
    ``program_tiles(enc, chip, generators[c])`` (the device model's
    :meth:`~aimc.physics.devices.DeviceModel.program_chips`: statistics of the targets once)."""
    if not generators:
        raise ValueError("program_tiles_chips: no chips")
    st = chip.device.program_chips(enc.g_target_uS, generators)  # (C, S, 2, T, R, out)
    g, d = st.g_uS.movedim(0, 2).contiguous(), st.drift.movedim(0, 2).contiguous()
    unused = ~enc.used.view(1, 1, 1, *enc.used.shape, 1)
    if bool(unused.any()):
        g.masked_fill_(unused, 0.0)
        d.masked_fill_(unused, 0.0)
    return ProgrammedTiles(enc.layout, DeviceState(g, d), enc.scale)


def chips_read_matrices(tiles: ProgrammedTiles, chip: ChipSpec, t_s: float,
                        w_dtype: torch.dtype | None = None) -> ChipsRead:
    """:func:`~aimc.tiles.matrices.read_matrices` of stacked tiles, in the batched layout,
    the effective weights in ``w_dtype`` (default: the conductances' float32; bfloat16 for
    a noisy chip, :func:`aimc.nn.chipstate.lean_w_dtype`, as a lean layer keeps them)."""
    lay = tiles.layout
    full = read_matrices(tiles, chip, t_s, w_dtype)  # w (C, T, R, N)

    def batched(a: torch.Tensor) -> torch.Tensor:  # (C, T, R, N) -> (T, C, R, N)
        return a.transpose(0, 1).contiguous()

    rm = ReadMatrices(lay, batched(full.w), None if full.var is None else batched(full.var), full.out_var,
                      full.post, full.code_max)
    return ChipsRead(int(full.w.shape[0]), rm, full)


#: DAC codes and partial sums (elements) per group of chips read together: the pass's
#: buffers stay cache-sized instead of streaming through memory.
_CHUNK_ELEMENTS = 1 << 20


def _group(n_chips: int, per_chip: int) -> int:
    """Chips per group: as many as fit :data:`_CHUNK_ELEMENTS` (at least 1). It depends
    only on the shapes, so the noise streams of a read do not depend on the machine."""
    return max(1, min(n_chips, _CHUNK_ELEMENTS // max(per_chip, 1)))


def _pass(x: torch.Tensor, scale: torch.Tensor | None, rm: ReadMatrices, g: int, rows: int, chip: ChipSpec,
          generator: torch.Generator | None, row_scale: torch.Tensor | None, out_scale: torch.Tensor | None,
          bias: torch.Tensor | None, out: torch.Tensor | None = None):
    """Chip-major rows ``x`` (g*B, in) of ``g`` chips whose matrices ``rm.w`` are
    ``(T, g, R, N)`` -> (outputs (g*B, out) or None on NaN/Inf, the ADC saturation mask or
    None, the full scales used (g*B,)). ``row_scale`` multiplies each row's output with its
    full scale (the fused pass's row scale); ``out``: where the outputs are written."""
    lay = rm.layout
    noisy = rm.var is not None and generator is not None
    codes, sq, amax, used = dac_prepass(x, scale, chip.dac.bits, lay.t_in, rows, noisy)  # (T, g*B, R)
    if not bool(torch.isfinite(amax).all()):
        return None, None, used
    T, GB, R = codes.shape
    y = torch.matmul(codes.view(T, g, GB // g, R), rm.w.float()).view(T, GB, -1)  # (T, g*B, S*out); as weight_matmul
    var = None
    if rm.var is not None and sq is not None:
        var = torch.matmul(sq.view(T, g, GB // g, R), rm.var).view(T, GB, -1)
    rs = used if row_scale is None else used * row_scale
    o, sat = finish_read(y, var, rm, chip, generator, rs, out_scale, bias, out)
    return o, sat, used


def _onehot_pass(idx: torch.Tensor, scale: torch.Tensor | None, rm: ReadMatrices, g: int, rows: int,
                 chip: ChipSpec, generator: torch.Generator | None, row_scale: torch.Tensor | None,
                 out: torch.Tensor | None = None):
    """:func:`_pass` for one-hot inputs ``e_idx`` (k rows) read by each of ``g`` chips:
    their partial sums are the code of a 1 times one row of ``w`` (a single product each,
    as exact as the matmul), so they are gathered instead of multiplied."""
    lay = rm.layout
    noisy = rm.var is not None and generator is not None
    k = idx.numel()
    one = torch.zeros(1, lay.in_features, device=idx.device)
    one[0, 0] = 1.0
    codes, sq, _, used = dac_prepass(one, None if scale is None else scale[:1], chip.dac.bits, lay.t_in, rows, noisy)
    t_of, r_of, ar = idx // rows, idx % rows, torch.arange(k, device=idx.device)
    T, N = rm.w.shape[0], rm.w.shape[-1]
    if T == 1:  # one tile: each chip's rows of w, already chip-major (gathered, then scaled: same products)
        y1 = (codes[0, 0, 0] * rm.w[0].index_select(1, idx).float()).view(1, g * k, N)
        var1 = None
        if rm.var is not None and sq is not None:
            var1 = (sq[0, 0, 0].float() * rm.var[0].float()).to(rm.var.dtype).index_select(1, idx).view(1, g * k, N)
        rs = used.expand(g * k) if row_scale is None else used * row_scale
        o, sat = finish_read(y1, var1, rm, chip, generator, rs, out=out)
        return o, sat, used.expand(g * k)
    y = rm.w.new_zeros(T, k, g, N, dtype=torch.float32)
    y[t_of, ar] = codes[0, 0, 0] * rm.w[t_of, :, r_of].float()  # (k, g, N)
    var = None
    if rm.var is not None and sq is not None:
        var = rm.var.new_zeros(T, k, g, N)
        var[t_of, ar] = (sq[0, 0, 0].float() * rm.var[t_of, :, r_of].float()).to(rm.var.dtype)
        var = var.transpose(1, 2).reshape(T, g * k, N)
    rs = used.expand(g * k) if row_scale is None else used * row_scale
    o, sat = finish_read(y.transpose(1, 2).reshape(T, g * k, N), var, rm, chip, generator, rs, out=out)
    return o, sat, used.expand(g * k)


def _rows_per_chip(n: int, C: int, name: str) -> int:
    if n % C:
        raise ValueError(f"{name}: {n} input rows do not split into {C} chips (chip-major rows expected)")
    return n // C


def _digital(v: torch.Tensor | None, n: int) -> torch.Tensor | None:
    """A per-column digital scale or bias as the fused pass takes it: float32 (n,)."""
    return None if v is None else v.detach().to(torch.float32).expand(n).contiguous()


def _groups(C: int, g: int, B: int, out: torch.Tensor, read: Callable[[int, int, torch.Tensor], None]) -> torch.Tensor:
    """``out`` (C*B, n) filled by ``read(c0, c1, rows)``, which writes chips ``c0..c1-1``'s
    outputs (``B`` rows each) into ``rows``, over groups of ``g`` chips."""
    for c0 in range(0, C, g):
        c1 = min(C, c0 + g)
        read(c0, c1, out[c0 * B: c1 * B])
    return out


def _bound_manage_chips(o: torch.Tensor, sat: torch.Tensor | None, c0: int, c1: int, B: int,
                        rows_of: Callable[[int], torch.Tensor], used: torch.Tensor, cr: ChipsRead, chip: ChipSpec,
                        generator: torch.Generator | None, gain: torch.Tensor | None,
                        out_scale: torch.Tensor | None, bias: torch.Tensor | None) -> None:
    """Re-read (in place) the saturated rows of chips ``c0..c1-1`` in ``o`` (``B`` rows each)
    by bound management, one chip at a time (rare); ``rows_of(c)`` gives chip ``c``'s inputs."""
    if sat is None or chip.adc.bm_max_iter <= 0 or not bool(sat.any()):
        return
    for k in sat.view(c1 - c0, B).any(dim=1).nonzero().flatten().tolist():
        blk, c = slice(k * B, (k + 1) * B), c0 + k
        sc = out_scale if gain is None else (gain[c] if out_scale is None else gain[c] * out_scale)
        xs = rows_of(c)
        bound_manage_(o[blk], sat[blk], lambda idx: xs[idx], used[blk], cr.chip(c), chip, generator, True, sc, bias)


def _read(rows_of: Callable[[int, int], torch.Tensor], B: int, cr: ChipsRead, chip: ChipSpec,
          generator: torch.Generator | None, name: str, input_range: float | None, gain: torch.Tensor | None,
          out_scale: torch.Tensor | None, bias: torch.Tensor | None, onehot: torch.Tensor | None = None
          ) -> torch.Tensor:
    """The read of ``B`` rows per chip, ``rows_of(c0, c1)`` giving chips ``c0..c1-1``'s
    rows (chip-major), a group of chips at a time (:func:`_group`) -> (C*B, out).
    ``onehot``: the rows are the unit vectors ``e_onehot`` (:func:`_onehot_pass`)."""
    rm, C = cr.rm, cr.n_chips
    lay = rm.layout
    fs = full_scale(chip, input_range, name)
    out_scale, bias = _digital(out_scale, lay.out_features), _digital(bias, lay.out_features)
    g = _group(C, B * lay.t_in * (cr.rows + rm.w.shape[-1]))

    def read(c0: int, c1: int, dest: torch.Tensor) -> None:
        n = (c1 - c0) * B
        scale = None if fs is None else torch.full((n,), fs, device=rm.w.device)
        row = None if gain is None else gain[c0:c1].detach().float().repeat_interleave(B)
        sub = ReadMatrices(lay, rm.w[:, c0:c1], None if rm.var is None else rm.var[:, c0:c1], rm.out_var, rm.post,
                           rm.code_max)
        if onehot is not None and out_scale is None and bias is None:
            o, sat, used = _onehot_pass(onehot, scale, sub, c1 - c0, cr.rows, chip, generator, row, dest)
        else:
            x = rows_of(c0, c1).detach()
            o, sat, used = _pass(x, scale, sub, c1 - c0, cr.rows, chip, generator, row, out_scale, bias, dest)
        if o is None:
            raise ValueError(f"{name}: input contains NaN or Inf")
        _bound_manage_chips(o, sat, c0, c1, B, lambda c: rows_of(c, c + 1).detach(), used, cr, chip, generator, gain,
                            out_scale, bias)

    return _groups(C, g, B, rm.w.new_empty(C * B, lay.out_features, dtype=torch.float32), read)


def mvm_chips(x: torch.Tensor, cr: ChipsRead, chip: ChipSpec, generator: torch.Generator | None = None,
              name: str = "mvm_chips", input_range: float | None = None, gain: torch.Tensor | None = None,
              out_scale: torch.Tensor | None = None, bias: torch.Tensor | None = None,
              shared: bool = False, onehot: torch.Tensor | None = None) -> torch.Tensor:
    """One analog MVM per row of chip-major ``x`` (C*B, in) -> (C*B, out) (module doc).

    Args:
        x: rows ``c*B .. c*B+B-1`` are read by chip ``c``; with ``shared``, ``x`` (B, in)
            is read by every chip.
        cr: the chips' read matrices (:func:`chips_read_matrices`).
        chip: the chip spec (all chips are instances of it).
        generator: the read-noise stream (required when the read is noisy).
        name: named in error messages.
        input_range: static DAC full scale (as :func:`aimc.tiles.mvm`).
        gain: per-chip digital gain (C,) (drift compensation), or None.
        out_scale, bias: per-column digital scale and bias (out,), as :func:`aimc.tiles.mvm`.
        shared: every chip reads the same rows ``x``.
        onehot: with ``shared``, the indices ``i`` of rows ``x`` that are unit vectors
            ``e_i`` (calibration reads): their partial sums are gathered, not multiplied.

    Raises:
        ValueError: wrong shape, rows not a multiple of the chips, NaN/Inf input.
    """
    lay = cr.rm.layout
    if shared and onehot is not None:
        return _read(lambda c0, c1: x.repeat(c1 - c0, 1), x.shape[0], cr, chip, generator, name, input_range,
                     gain, out_scale, bias, onehot)
    if x.dim() != 2 or x.shape[1] != lay.in_features:
        raise ValueError(f"{name}: input must be (chips*batch, {lay.in_features}), got shape {tuple(x.shape)}")
    if shared:
        return _read(lambda c0, c1: x.repeat(c1 - c0, 1), x.shape[0], cr, chip, generator, name, input_range,
                     gain, out_scale, bias)
    B = _rows_per_chip(x.shape[0], cr.n_chips, name)
    return _read(lambda c0, c1: x[c0 * B: c1 * B], B, cr, chip, generator, name, input_range, gain, out_scale, bias)


def _patch_read(x: torch.Tensor, Bi: int, cr: ChipsRead, chip: ChipSpec, geo: ConvGeometry,
                generator: torch.Generator | None, name: str, input_range: float | None,
                gain: torch.Tensor | None, out_scale: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor:
    """The compiled patch read of each chip's images (``x`` chip-major, ``Bi`` per chip)
    -> (C*Bi*L, out); saturated pixels are re-read by bound management."""
    full, lay = cr.full, cr.rm.layout
    fs = full_scale(chip, input_range, name)
    fvar = full.var if generator is not None else None
    noisy = fvar is not None
    levels = max_code(chip.dac.bits)
    xin, pads = x.detach(), geo.pads
    if geo.padding_mode != "zeros":
        xin, pads = _pad(xin, geo), (0,) * len(geo.pads)
    k: tuple[int, ...]
    st: tuple[int, ...]
    dl: tuple[int, ...]
    if len(geo.kernel) == 1:
        xin, k, st, dl, p4 = xin.unsqueeze(2), (1, *geo.kernel), (1, *geo.stride), (1, *geo.dilation), (0, 0, *pads)
    else:
        k, st, dl, p4 = geo.kernel, geo.stride, geo.dilation, (pads[2], pads[3], pads[0], pads[1])
    out_scale, bias = _digital(out_scale, lay.out_features), _digital(bias, lay.out_features)
    C, L = cr.n_chips, Bi * prod(conv_out_shape(x, geo))
    g = _group(C, L * full.w.shape[1] * full.w.shape[-1] * (2 if noisy else 1))

    mod, rm = cpp.load(), cr.rm
    geo_args = (list(k), list(st), list(p4), list(dl), -1 if levels is None else levels, 0.0 if fs is None else fs)

    def read(c0: int, c1: int, dest: torch.Tensor) -> None:  # a group of chips per call: partial sums stay cache-sized
        xs, ws, vs = xin[c0 * Bi: c1 * Bi], full.w[c0:c1], None if fvar is None else fvar[c0:c1]
        g_c = None if gain is None else gain[c0:c1].detach().float().contiguous()
        if lay.slices == 1:  # the patch read and finish_read in one pass (same draws, same numbers)
            o, sat, amax = mod.conv_read_chips(xs, ws, vs, *geo_args, rm.post.float().contiguous(), float(rm.out_var),
                                               -1 if rm.code_max is None else rm.code_max,
                                               _signed64(noise_seed(rm, generator)), g_c, out_scale, bias, dest)
            sat = sat if wants_saturation(rm, chip) else None
        else:
            y, var, amax = mod.conv_patch_read_chips(xs, ws, vs, *geo_args)  # (T, (c1-c0)*L, N)
            rs = amax if g_c is None else amax * g_c.repeat_interleave(L)
            o, sat = finish_read(y, var if noisy else None, rm, chip, generator, rs, out_scale, bias, dest)
        _bound_manage_chips(o, sat, c0, c1, L, lambda c: im2col(x[c * Bi: (c + 1) * Bi].detach(), geo), amax, cr,
                            chip, generator, gain, out_scale, bias)

    return _groups(C, g, L, full.w.new_empty(C * L, lay.out_features, dtype=torch.float32), read)


def conv_mvm_chips(x: torch.Tensor, cr: ChipsRead, chip: ChipSpec, geo: ConvGeometry,
                   generator: torch.Generator | None = None, name: str = "conv_mvm_chips",
                   input_range: float | None = None, gain: torch.Tensor | None = None,
                   out_scale: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The analog convolution of chip-major images ``x`` (C*B, Cin, *spatial) ->
    (C*B, out, *out_spatial): each chip reads its own images' patches, with gains and bias
    in the same pass. On CPU (1-d and 2-d, float32) the chips' patches go through the
    compiled patch read (:mod:`aimc.tiles.conv`: patches gathered and quantised in
    registers, never stored) of a group of chips per call, each chip with its own
    matrices (C chips' im2col rows would stream C times the patches through memory);
    elsewhere the im2col rows of a group of chips at a time (:func:`mvm_chips`)."""
    if x.dim() != len(geo.kernel) + 2 or x.shape[1] * prod(geo.kernel) != cr.rm.layout.in_features:
        raise ValueError(f"{name}: input must be (chips*batch, {cr.rm.layout.in_features // prod(geo.kernel)}, "
                         f"*spatial), got shape {tuple(x.shape)}")
    Bi = _rows_per_chip(x.shape[0], cr.n_chips, name)
    out_sp = conv_out_shape(x, geo)
    L = prod(out_sp)
    if _fused_usable(x):
        y = _patch_read(x, Bi, cr, chip, geo, generator, name, input_range, gain, out_scale, bias)
        return y.view(x.shape[0], *out_sp, -1).movedim(-1, 1)
    y = _read(lambda c0, c1: im2col(x[c0 * Bi: c1 * Bi].detach(), geo), Bi * L, cr, chip, generator, name,
              input_range, gain, out_scale, bias)
    return y.view(x.shape[0], *out_sp, -1).movedim(-1, 1)
