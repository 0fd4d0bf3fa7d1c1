"""The tile read of a convolution: one MVM per output pixel, without an im2col matrix.

A convolution (groups=1) with ``C`` input channels and a kernel of ``K`` positions is a
matrix ``(out, C*K)`` on the tiles (:class:`~aimc.tiles.crossbar.TileLayout`): each output
pixel's patch, flattened in ``F.unfold``'s order ``(c, i, j)``, is one input vector, as a
chip streams a convolution (Le Gallo et al., Nat. Electron. 2023; aihwkit's analog
convolutions unfold the same way). :func:`conv_mvm` reads it with exactly the semantics
of :func:`aimc.tiles.crossbar.mvm` on those vectors:

* **DAC** per patch: with noise management ``abs_max`` each patch is divided by its own
  abs-max (the max of ``|x|`` over the patch window, padding counting as 0), then
  ``code = round(clamp(v / amax, -1, 1) * L)``; with a static ``input_range`` or noise
  management ``none`` the same with that fixed full scale;
* per tile ``t``: partial sums ``y = codes_t @ w_t`` and read-noise variances
  ``var = codes_t^2 @ sigma_t^2`` (``ReadMatrices.w``/``var``: drift and IR drop applied);
* output noise, per-column ADC with saturation, digital post-scale and the sum over tiles
  in :func:`aimc.tiles.crossbar.finish_read` (the fused C++ pass), on ``y`` laid out as
  ``(T, B*L, N)`` in im2col's row order, a chunk of images at a time (about 1 M partial
  sums: the buffers stay small and are reused instead of faulted in); each chunk draws
  its own noise seed from ``generator`` (with one chunk the draws are the im2col read's);
* bound management re-reads each saturated pixel (its patch) with halved input.

Why not one convolution of pre-quantised ``x``: the DAC code of an element depends on the
abs-max of the patch being read, and an element lies in up to ``K`` patches with different
abs-maxima, so with per-patch noise management no single quantised copy of ``x`` gives the
chip's codes (``conv(x) / amax`` is exact only without DAC rounding; HAT models the rounding
as noise instead). The C++ front end (:mod:`aimc.cpp.tile_conv`) therefore gathers and
quantises 16 patches at a time in registers and a cache-resident buffer and multiplies
them by each tile's weights: the codes are bit-identical to the im2col read's and no
``(B*L, C*K)`` matrix is ever allocated; the partial sums differ from the im2col matmul's
only by float rounding (and the read-noise variances by bfloat16 rounding, as there).
With a static ``input_range`` or noise management ``none`` the codes would not need the
patch (one convolution of quantised ``x`` would do); the same kernel serves them exactly.
Without the compiled kernels (or for other devices/dtypes) the reference im2col read
runs (``method="im2col"``, also used by the oracle tests).

Example:
    >>> import torch
    >>> from aimc.chips import load
    >>> from aimc.tiles import encode, program_tiles, read_matrices
    >>> from aimc.tiles.conv import ConvGeometry, conv_mvm
    >>> chip = load("ideal")
    >>> w = torch.randn(4, 3, 3, 3)
    >>> tiles = program_tiles(encode(w.flatten(1), chip), chip, torch.Generator().manual_seed(0))
    >>> x = torch.randn(2, 3, 8, 8)
    >>> geo = ConvGeometry(kernel=(3, 3), stride=(1, 1), dilation=(1, 1), pads=(1, 1, 1, 1))
    >>> y = conv_mvm(x, read_matrices(tiles, chip, 0.0), chip, geo)
    >>> torch.allclose(y, torch.nn.functional.conv2d(x, w, padding=1), atol=1e-4)
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from types import EllipsisType
from typing import cast

import torch
import torch.nn.functional as F

from aimc import cpp
from aimc.chips.spec import ChipSpec
from aimc.physics.periphery import max_code
from aimc.tiles.crossbar import ReadMatrices, bound_manage_, finish_read, full_scale, mvm

__all__ = ["ConvGeometry", "im2col", "conv_mvm", "conv_out_shape", "METHODS"]

#: Partial sums (tiles x pixels x columns) per chunk of images of the C++ read.
_CHUNK_ELEMENTS = 1 << 20

#: ``auto``: the C++ patch read where it applies, else ``im2col``; ``fused``: the C++ read
#: (error if unavailable); ``im2col``: the reference read through copied patches.
METHODS = ("auto", "fused", "im2col")


@dataclass(frozen=True)
class ConvGeometry:
    """Kernel, stride and dilation per spatial axis and the padding in ``F.pad`` order
    (last axis first: ``(left, right)`` in 1-d, ``(left, right, top, bottom)`` in 2-d),
    e.g. a layer's ``_reversed_padding_repeated_twice``; ``padding_mode`` as ``nn.Conv``'s."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[int, ...]
    padding_mode: str = "zeros"

    def __post_init__(self):
        nd = len(self.kernel)
        if nd not in (1, 2, 3) or len(self.stride) != nd or len(self.dilation) != nd or len(self.pads) != 2 * nd:
            raise ValueError(f"ConvGeometry: kernel, stride, dilation need 1 to 3 entries and pads twice as many, "
                             f"got {self.kernel}, {self.stride}, {self.dilation}, {self.pads}")
        if min(*self.kernel, *self.stride, *self.dilation) < 1 or min(self.pads) < 0:
            raise ValueError(f"ConvGeometry: kernel, stride and dilation must be >= 1 and pads >= 0, got "
                             f"{self.kernel}, {self.stride}, {self.dilation}, {self.pads}")

    @classmethod
    def of(cls, layer) -> "ConvGeometry":
        """The geometry of an ``nn.Conv1d``/``2d``/``3d`` (groups=1)."""
        return cls(tuple(layer.kernel_size), tuple(layer.stride), tuple(layer.dilation),
                   tuple(layer._reversed_padding_repeated_twice), layer.padding_mode)


def _pad(x: torch.Tensor, geo: ConvGeometry) -> torch.Tensor:
    if not any(geo.pads):
        return x
    return F.pad(x, geo.pads, mode="constant" if geo.padding_mode == "zeros" else geo.padding_mode)


def conv_out_shape(x: torch.Tensor, geo: ConvGeometry) -> tuple[int, ...]:
    """The output's spatial shape for input ``x`` (B, C, *spatial)."""
    nd = len(geo.kernel)
    out = []
    for d in range(nd):
        n = x.shape[2 + d] + geo.pads[2 * (nd - 1 - d)] + geo.pads[2 * (nd - 1 - d) + 1]
        out.append((n - geo.dilation[d] * (geo.kernel[d] - 1) - 1) // geo.stride[d] + 1)
    return tuple(out)


def im2col(x: torch.Tensor, geo: ConvGeometry) -> torch.Tensor:
    """The patches of ``x`` (B, C, *spatial) as rows (B*L, C*K), pixel-major, in
    ``F.unfold``'s element order (a strided view copied once)."""
    nd = len(geo.kernel)
    patches = _pad(x, geo)
    for d, (k, st, dl) in enumerate(zip(geo.kernel, geo.stride, geo.dilation)):
        patches = patches.unfold(2 + d, dl * (k - 1) + 1, st)
    if any(dl > 1 for dl in geo.dilation):
        every_dl: tuple[EllipsisType | slice, ...] = (..., *(slice(None, None, dl) for dl in geo.dilation))
        patches = patches[every_dl]
    order = (0, *range(2, 2 + nd), 1, *range(2 + nd, 2 + 2 * nd))  # patches: (B, C, *out, *k)
    return patches.permute(order).reshape(-1, x.shape[1] * prod(geo.kernel))


def _check(x: torch.Tensor, rm: ReadMatrices, geo: ConvGeometry, name: str) -> None:
    nd, n_in = len(geo.kernel), rm.layout.in_features
    if x.dim() != nd + 2 or x.shape[1] * prod(geo.kernel) != n_in:
        raise ValueError(f"{name}: input must be (batch, {n_in // prod(geo.kernel)}, "
                         f"{'length' if nd == 1 else 'height, width'}), got shape {tuple(x.shape)}")
    if min(conv_out_shape(x, geo)) < 1:
        raise ValueError(f"{name}: input of shape {tuple(x.shape)} is smaller than the kernel {geo.kernel}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: input of shape {tuple(x.shape)} contains NaN or Inf")


def _fused_usable(x: torch.Tensor) -> bool:
    """The C++ patch read takes 1-d and 2-d float32 CPU convolutions (3-d: im2col rows)."""
    return x.dim() in (3, 4) and x.device.type == "cpu" and x.dtype == torch.float32 and cpp.load() is not None


def conv_mvm(x: torch.Tensor, rm: ReadMatrices, chip: ChipSpec, geo: ConvGeometry,
             generator: torch.Generator | None = None, name: str = "conv_mvm", input_range: float | None = None,
             method: str = "auto") -> torch.Tensor:
    """The analog convolution ``x`` (B, C, *spatial) -> (B, out, *out_spatial) (module doc).

    Args:
        x: input; ``C * prod(kernel)`` must equal the tiles' ``in_features``.
        rm: the tiles' read matrices (:func:`aimc.tiles.read_matrices`).
        chip: the chip (DAC, ADC, noise, bound management).
        geo: the convolution's geometry.
        generator: the read-noise stream (required when the read is noisy).
        name: named in error messages.
        input_range: static DAC full scale (as in :func:`aimc.tiles.mvm`).
        method: one of :data:`METHODS`.

    Returns:
        The outputs, without bias; a channels-last view of a (B*L, out) matrix.

    Raises:
        ValueError: wrong shape, NaN/Inf input, bad ``input_range`` or ``method``, or
            ``method="fused"`` where the kernel cannot run.
    """
    if method not in METHODS:
        raise ValueError(f"{name}: method must be one of {', '.join(METHODS)}, got {method!r}")
    _check(x, rm, geo, name)
    nd, B, out_sp = len(geo.kernel), x.shape[0], conv_out_shape(x, geo)
    fused = method == "fused" or (method == "auto" and _fused_usable(x))
    if fused and not _fused_usable(x):
        raise ValueError(f"{name}: method='fused' needs a 1-d or 2-d float32 CPU input and the compiled kernels")
    if not fused:
        y = mvm(im2col(x, geo), rm, chip, generator, name=name, input_range=input_range)
        return y.view(B, *out_sp, -1).movedim(-1, 1)
    fs = full_scale(chip, input_range, name)
    xin, pads = x, geo.pads
    if geo.padding_mode != "zeros":  # reflect/replicate/circular: pad here, zero padding in the kernel
        xin, pads = _pad(x, geo), (0,) * len(geo.pads)
    if nd == 1:
        xin, k, st, dl, p4 = xin.unsqueeze(2), (1, *geo.kernel), (1, *geo.stride), (1, *geo.dilation), (0, 0, *pads)
    else:
        k, st, dl, p4 = geo.kernel, geo.stride, geo.dilation, (pads[2], pads[3], pads[0], pads[1])
    noisy = rm.var is not None and generator is not None
    levels = max_code(chip.dac.bits)
    vw = rm.dense_var() if noisy else None  # bf16: read in bf16 pairs where the CPU has them, else in float32
    xin = xin.detach()  # NCHW or channels-last: the kernel reads either
    # a few images at a time: the partial sums stay small (allocations reused, not faulted in)
    w = rm.w  # bfloat16 matrices of a lean layer: exact bf16 dot products where the codes allow (aimc.cpp.tile_conv)
    per_image = w.shape[0] * w.shape[2] * prod(out_sp)
    step = max(1, _CHUNK_ELEMENTS // per_image)
    outs, sats, scales = [], [], []
    for b0 in range(0, B, step):
        y, var, amax = cpp.load().conv_patch_read(
            xin[b0:b0 + step], w, vw, list(k), list(st), list(p4), list(dl), -1 if levels is None else levels,
            0.0 if fs is None else fs)
        o, sat = finish_read(y, var if noisy else None, rm, chip, generator)  # (b*L, out); one seed per chunk
        outs.append(o)
        sats.append(sat)
        scales.append(amax)
    out = outs[0] if len(outs) == 1 else torch.cat(outs)
    sat = None if sats[0] is None else torch.cat(cast("list[torch.Tensor]", sats))  # all chunks alike
    amax = torch.cat(scales)
    amax = amax.unsqueeze(1)  # (B*L, 1)
    if sat is not None and chip.adc.bm_max_iter > 0 and bool(sat.any()):
        cols = im2col(x.detach(), geo)  # the saturated pixels' patches: rare, so copied here
        bound_manage_(out, sat, lambda idx: cols[idx], amax, rm, chip, generator)
    out.mul_(amax)
    return out.view(B, *out_sp, -1).movedim(-1, 1)
