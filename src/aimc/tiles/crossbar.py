"""Crossbar tiles: weight encoding, programming, and the tiled analog MVM.

A weight matrix ``W`` (out x in) is stored transposed on tiles of ``rows x cols`` unit
cells: inputs drive rows, outputs are column currents. A matrix larger than one tile is
split into ``T = ceil(in / rows)`` tiles along the input and ``ceil(out / (cols / S))``
along the output (:class:`~aimc.tiles.layout.TileLayout`: each weight's ``S`` slices sit
on adjacent columns); each tile column is digitised by its own ADC and the partial sums
are added digitally (as on IBM HERMES, Le Gallo et al. 2023). Each slice is a
differential pair, ``w ∝ G+ - G-``. Converters and scaling: :mod:`aimc.tiles.periphery`;
IR drop: :mod:`aimc.tiles.irdrop`.

The MVM is one pass for the DAC (:func:`aimc.tiles.fused.dac_prepass`), one batched matmul
over tiles — ``(T, B, rows_used) @ (T, rows_used, S*out)`` — and output-referred noise, per-column
ADC quantisation, the digital reduction, the input scale, gains and bias fused in one more
pass (:mod:`aimc.tiles.fused`: C++ kernels compiled on first use, with pure-PyTorch
fallbacks of the same semantics). Read
noise of independent devices is exactly Gaussian at the column output with variance
``sum_i x_i^2 (sigma+_ij^2 + sigma-_ij^2)``, computed with one extra batched matmul; that
matmul runs in bfloat16 (8-bit mantissa, fp32 accumulation: < 0.4 % relative error on
the variance, < 0.2 % on the noise std, far inside the uncertainty of any published
noise model).

Example:
    >>> import torch
    >>> from aimc.chips import load
    >>> from aimc.tiles import encode, program_tiles, read_matrices, mvm
    >>> chip = load("ideal")
    >>> w = torch.randn(3, 5)
    >>> tiles = program_tiles(encode(w, chip), chip, torch.Generator().manual_seed(0))
    >>> x = torch.randn(2, 5)
    >>> y = mvm(x, read_matrices(tiles, chip, 0.0), chip)
    >>> torch.allclose(y, x @ w.t(), atol=1e-5)
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from aimc.chips.spec import ChipSpec
from aimc.physics.devices import DeviceState
from aimc.tiles.faults import apply_faults
from aimc.tiles.fused import dac_prepass, decode_var, fused_noise_adc, variance_matmul, weight_matmul
from aimc.tiles.layout import TileLayout, significance, slice_parts

__all__ = ["TileLayout", "Encoded", "ProgrammedTiles", "ReadMatrices", "encode", "program_tiles",
           "encode_scale", "mvm", "finish_read", "bound_manage_", "full_scale"]


@dataclass
class Encoded:
    """Target conductances ``(S, 2, T, rows_used, out)`` (µS), digital scales ``(S, T, out)``
    and ``used`` ``(T, rows_used)``: True for the tile rows that hold a weight (False for the
    padding rows of the last tile, whose cells are never programmed)."""

    layout: TileLayout
    g_target_uS: torch.Tensor
    scale: torch.Tensor
    used: torch.Tensor


@dataclass
class ProgrammedTiles:
    """Programmed devices (``state``: each ``(S, 2, T, rows_used, out)``) and digital scales."""

    layout: TileLayout
    state: DeviceState
    scale: torch.Tensor


@dataclass
class ReadMatrices:
    """What one read of the tiles needs, precomputed for time ``t``.

    Inside the hot path inputs are DAC codes and outputs ADC codes, so the matrices are
    pre-scaled to those units: ``w = (G+ - G-) / (g_max - g_min) / (lsb_adc * lsb_dac)``.

    Attributes:
        w: effective weights ``(T, rows_used, S*out)`` in output-code units per input code.
        var: per-device read-noise variance in the same units squared, bfloat16, or None.
        out_var: variance of the additive output noise, output codes squared.
        post: digital scale applied to each tile column's code ``(T, 1, S*out)``.
        code_max: largest ADC code (saturation), or None for an exact ADC.
        var_scale: None, or ``var`` holds one-byte codes (uint8) of the variances and
            this their columns' scales ``(T, 1, S*out)`` (:func:`~aimc.tiles.fused.encode_var`;
            a lean layer's form, :mod:`aimc.tiles.seeded`).
    """

    layout: TileLayout
    w: torch.Tensor
    var: torch.Tensor | None
    out_var: float
    post: torch.Tensor
    code_max: int | None
    var_scale: torch.Tensor | None = None

    def dense_var(self) -> torch.Tensor | None:
        """``var`` as bfloat16 variances (decoded when held as codes)."""
        if self.var is None or self.var_scale is None:
            return self.var
        return decode_var(self.var, self.var_scale)


def _check_weight(weight: torch.Tensor) -> None:
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D (out, in), got shape {tuple(weight.shape)}")
    if not torch.isfinite(weight).all():
        raise ValueError(f"weight of shape {tuple(weight.shape)} contains NaN or Inf")


def encode(weight: torch.Tensor, chip: ChipSpec) -> Encoded:
    """Map a weight matrix (out x in) to differential target conductances.

    Per tile column (``per_column``) or per matrix (``per_tensor``) the largest |w| is
    mapped to ``g_max``; ``w/scale`` in [-1, 1] becomes ``G+ = g_min + max(w,0) Δg`` and
    ``G- = g_min + max(-w,0) Δg``. Slicing: see :class:`aimc.chips.MappingConfig`.
    Both devices of every pair that holds a weight get a target, the unused one ``g_min``
    (RESET; 0 µS for PCM); only the cells of padding rows, which hold no weight, get
    ``G = 0`` and are marked unused in ``Encoded.used`` (never programmed).
    """
    _check_weight(weight)
    lay = TileLayout.of(tuple(weight.shape), chip)
    dev = chip.device
    dg = dev.g_max_uS - dev.g_min_uS
    w = lay.split_in(weight.detach()).transpose(1, 2)  # (T, rows_used, out)
    scale = _tile_scale(w, chip)
    wn = w / scale[:, None, :]
    p = slice_parts(wn, chip)  # (S, T, rows_used, out)
    used = lay.used_rows(w.device)
    rows = used.view(1, *used.shape, 1)
    g_pos = torch.where(rows, dev.g_min_uS + p.clamp(min=0) * dg, 0.0)
    g_neg = torch.where(rows, dev.g_min_uS + (-p).clamp(min=0) * dg, 0.0)
    return Encoded(lay, torch.stack([g_pos, g_neg], dim=1), _slice_scales(scale, chip), used)


def _tile_scale(w: torch.Tensor, chip: ChipSpec) -> torch.Tensor:
    """The |w| mapped to ``g_max`` of each tile column ``(T, out)`` of tiled weights ``w``
    ``(T, rows, out)`` (1 where a column holds only zeros)."""
    if chip.mapping.weight_scaling == "per_column":
        scale = w.abs().amax(dim=1)  # (T, out)
    else:
        scale = w.abs().amax().expand(w.shape[0], w.shape[2])
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def _slice_scales(scale: torch.Tensor, chip: ChipSpec) -> torch.Tensor:
    sig = torch.tensor(significance(chip), dtype=scale.dtype, device=scale.device)
    return scale.unsqueeze(0) * sig[:, None, None]


def encode_scale(weight: torch.Tensor, chip: ChipSpec) -> torch.Tensor:
    """``encode(weight, chip).scale`` ``(S, T, out)`` without the conductances (a lean
    layer stores its scales at programming and draws its conductances later)."""
    _check_weight(weight)
    lay = TileLayout.of(tuple(weight.shape), chip)
    col = lay.split_in(weight.detach()).transpose(1, 2)  # (T, rows_used, out); padding rows are 0: no column's max
    return _slice_scales(_tile_scale(col, chip), chip)


def program_tiles(enc: Encoded, chip: ChipSpec, generator: torch.Generator,
                  faults: torch.Tensor | None = None) -> ProgrammedTiles:
    """Write the targets to the devices once: programming noise, levels, faults.

    Every device of a used row is programmed to its target, including the unused device
    of each differential pair (target ``g_min``): a RESET device still has a conductance,
    programming noise (PCM: 0.26 µS std at target 0, the Nandakumar 2019 polynomial at 0,
    clipped at 0 S by the device model) and drift. Only the cells of padding rows
    (``enc.used`` False) stay unprogrammed at exactly 0 S with no drift. ``faults``: the
    die's fault codes ``(S, 2, T, rows, out)`` after fault-aware mapping
    (:mod:`aimc.tiles.faults`), put on the programmed devices.
    """
    st = _program_blocks(enc.g_target_uS, chip, generator)
    if faults is not None:
        st = apply_faults(st, faults, chip)
    unused = ~enc.used.view(1, 1, *enc.used.shape, 1)  # (1, 1, T, rows, 1)
    if bool(unused.any()):
        st = DeviceState(st.g_uS.masked_fill(unused, 0.0), st.drift.masked_fill(unused, 0.0))
    return ProgrammedTiles(enc.layout, st, enc.scale)


#: Devices per block of the element-wise physics in :func:`program_tiles` and
#: :func:`~aimc.tiles.matrices.read_matrices` (4 MB of float32): a block's temporaries stay in the CPU caches,
#: and a large layer never holds whole-layer temporaries.
BLOCK_DEVICES = 1 << 20


def _program_blocks(g_target_uS: torch.Tensor, chip: ChipSpec, generator: torch.Generator) -> DeviceState:
    """``chip.device.program`` of the targets, in blocks of :data:`BLOCK_DEVICES` devices
    (flat order) drawn one after the other from ``generator``: one call for a layer of at
    most one block; a larger layer's devices draw the same distributions from the same
    seed in another order than one call would."""
    n = g_target_uS.numel()
    if n <= BLOCK_DEVICES:
        return chip.device.program(g_target_uS, generator)
    flat = g_target_uS.reshape(-1)
    g, d = torch.empty_like(flat), torch.empty_like(flat)
    for i in range(0, n, BLOCK_DEVICES):
        st = chip.device.program(flat[i: i + BLOCK_DEVICES], generator)
        g[i: i + BLOCK_DEVICES], d[i: i + BLOCK_DEVICES] = st.g_uS, st.drift
    return DeviceState(g.view_as(g_target_uS), d.view_as(g_target_uS))


def full_scale(chip: ChipSpec, input_range: float | None, name: str) -> float | None:
    """The DAC full scale of every input vector: ``input_range`` (static), the DAC bound
    (noise management ``none``), or None for each vector's own abs-max."""
    if input_range is not None:
        if not input_range > 0:
            raise ValueError(f"{name}: input_range must be > 0, got {input_range}")
        return float(input_range)
    return None if chip.dac.noise_management == "abs_max" else float(chip.dac.bound)


def _row_group(B: int, N: int, target: int = 1024) -> int:
    """The largest divisor ``k`` of ``B`` with ``k * N <= target`` (at least 1): short rows
    (few output columns) are passed to the fused kernel ``k`` at a time."""
    for k in range(max(1, min(B, target // max(N, 1))), 1, -1):
        if B % k == 0:
            return k
    return 1


def noise_seed(rm: ReadMatrices, generator: torch.Generator | None) -> int:
    """The seed of one read's noise stream, drawn from ``generator`` when the read is noisy
    (0 otherwise): one draw per :func:`finish_read` call."""
    if rm.var is None and not rm.out_var > 0:
        return 0
    if generator is None:
        raise ValueError("a noisy read needs a torch.Generator (program the layer first)")
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))


def wants_saturation(rm: ReadMatrices, chip: ChipSpec) -> bool:
    """True when a read reports its ADC saturation (bound management re-reads those vectors)."""
    return rm.code_max is not None and chip.adc.bound_management


def finish_read(y: torch.Tensor, var: torch.Tensor | None, rm: ReadMatrices, chip: ChipSpec,
                generator: torch.Generator | None, row_scale: torch.Tensor | None = None,
                out_scale: torch.Tensor | None = None,
                bias: torch.Tensor | None = None,
                out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Partial sums ``y`` (T, B, S*out) in output codes and their read-noise variances (or
    None) -> digital outputs (B, out) and the ADC saturation mask (B,) or None: output
    noise, per-column ADC, digital post-scale and sum over tiles (and slices), then
    ``* row_scale`` (B,), ``* out_scale`` (out,) and ``+ bias`` (out,) when given (in the
    fused pass where the layout allows, else as separate ops that round the same).
    ``out``: a contiguous float32 (B, out) tensor the outputs are written to (and
    returned), e.g. a group's rows of a larger output."""
    lay = rm.layout
    seed = noise_seed(rm, generator)
    # noise (counter-based, seeded from the layer's generator), ADC, scales, sum over tiles
    code_max = -1 if rm.code_max is None else rm.code_max
    T, B, N = y.shape
    want_sat = wants_saturation(rm, chip)
    k = 1 if want_sat else _row_group(B, N)
    late = lay.slices > 1  # the slices' sum comes first: the scales and bias cannot ride in the fused pass
    if k > 1:  # k rows side by side: the same elements, linear indices (noise) and sums, longer rows
        digital = (None, None, None) if late else (row_scale, out_scale, bias)
        res, sat = fused_noise_adc(y.reshape(T, B // k, k * N), None if var is None else var.reshape(T, B // k, k * N),
                                   rm.out_var, rm.post.repeat(1, 1, k), code_max, seed, *digital, group=k,
                                   out=None if late else out)
        res = res.view(B, N)
    elif late:
        res, sat = fused_noise_adc(y, var, rm.out_var, rm.post, code_max, seed)
    else:
        res, sat = fused_noise_adc(y, var, rm.out_var, rm.post, code_max, seed, row_scale, out_scale, bias, out=out)
    if late:
        res = res.view(-1, lay.slices, lay.out_features).sum(dim=1)
        res = res if row_scale is None else res * row_scale.reshape(-1, 1)
        res = res if out_scale is None else res * out_scale
        res = res if bias is None else res + bias
        res = res if out is None else out.copy_(res)
    return res, sat if want_sat else None


def _analog_pass(x: torch.Tensor, scale: torch.Tensor | None, rm: ReadMatrices, chip: ChipSpec,
                 generator: torch.Generator | None, fold: bool = False, out_scale: torch.Tensor | None = None,
                 bias: torch.Tensor | None = None):
    """Inputs (B, in) over full scales (B,) (None: each row's abs-max) -> digital outputs
    (B, out) (None if x holds NaN/Inf), ADC saturation mask (B,) or None, and the full
    scales used (B,). With ``fold`` the outputs are in input units, times ``out_scale``
    plus ``bias``; without, in full-scale units (the caller multiplies)."""
    lay = rm.layout
    noisy = rm.var is not None and generator is not None
    xt, sq, amax, scale = dac_prepass(x, scale, chip.dac.bits, lay.t_in, lay.rows_used, noisy)  # (T, B, R)
    if not bool(torch.isfinite(amax).all()):
        return None, None, scale
    y = weight_matmul(xt, rm.w)  # (T, B, S*out), output codes
    var = variance_matmul(sq, rm.var, rm.var_scale) if noisy and sq is not None and rm.var is not None else None
    if not fold:
        return (*finish_read(y, var, rm, chip, generator), scale)
    return (*finish_read(y, var, rm, chip, generator, scale, out_scale, bias), scale)


def bound_manage_(y: torch.Tensor, sat: torch.Tensor | None, rows: Callable[[torch.Tensor], torch.Tensor],
                  amax: torch.Tensor, rm: ReadMatrices, chip: ChipSpec, generator: torch.Generator | None,
                  fold: bool = False, out_scale: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> None:
    """Bound management, in place on ``y`` (B, out): re-read each input vector whose ADC
    saturated (``sat``) with its input halved, up to ``adc.bm_max_iter`` times. ``rows(idx)``
    gives the vectors ``idx`` (n, in); ``amax`` (B, 1) or (B,) their full scales. With
    ``fold``, ``y`` is in input units times ``out_scale`` plus ``bias`` (as
    :func:`_analog_pass` gives it), else in full-scale units."""
    if sat is None or chip.adc.bm_max_iter <= 0 or not bool(sat.any()):
        return
    idx = sat.nonzero().squeeze(1)
    amax = amax.reshape(-1)
    factor = 1.0
    for _ in range(chip.adc.bm_max_iter):
        factor *= 2.0  # a power of two: y * (amax * factor) rounds as (y * factor) * amax
        y_re, sat_re, _ = _analog_pass(rows(idx), amax[idx] * factor, rm, chip, generator, fold, out_scale, bias)
        y[idx] = y_re if fold else y_re * factor
        idx = idx[sat_re]
        if idx.numel() == 0:
            break


def mvm(x: torch.Tensor, rm: ReadMatrices, chip: ChipSpec, generator: torch.Generator | None = None,
        name: str = "mvm", input_range: float | None = None, out_scale: torch.Tensor | None = None,
        bias: torch.Tensor | None = None) -> torch.Tensor:
    """One analog matrix-vector product per row of ``x`` (B, in) -> (B, out).

    Noise management scales each input vector by its abs-max before the DAC (undone
    after the ADC), unless ``input_range`` (a static full scale, e.g. learned by
    hardware-aware training) is given: then inputs beyond it clip. Bound management re-runs vectors whose ADC saturated with the input
    halved, up to ``adc.bm_max_iter`` times. Digital ``out_scale`` (out,) and ``bias``
    (out,), when given, are applied last (``y * out_scale + bias``) in the same pass as the
    ADC. Raises ValueError naming ``name`` on a wrong shape or a NaN/Inf input.
    """
    lay = rm.layout
    if x.dim() != 2 or x.shape[1] != lay.in_features:
        raise ValueError(f"{name}: input must be (batch, {lay.in_features}), got shape {tuple(x.shape)}")
    fs = full_scale(chip, input_range, name)
    scale = None if fs is None else torch.full((x.shape[0],), fs, device=x.device)  # None: each row's abs-max
    if out_scale is not None:
        out_scale = out_scale.detach().to(torch.float32).expand(lay.out_features).contiguous()
    if bias is not None:
        bias = bias.detach().to(torch.float32).expand(lay.out_features).contiguous()
    x = x.detach()
    y, sat, scale = _analog_pass(x, scale, rm, chip, generator, True, out_scale, bias)
    if y is None:
        raise ValueError(f"{name}: input of shape {tuple(x.shape)} contains NaN or Inf")
    bound_manage_(y, sat, lambda idx: x[idx], scale, rm, chip, generator, True, out_scale, bias)
    return y
