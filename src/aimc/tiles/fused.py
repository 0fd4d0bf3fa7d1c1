"""Fused CPU kernels around the matmuls of an analog MVM: the DAC pre-pass before them and
noise, ADC, post-scale and sum over tiles after them.

Before the matmuls, :func:`dac_prepass` turns the inputs ``x`` (B, K) into DAC codes in one
pass (no temporaries, no OpenMP region below 2^22 elements)::

    amax[b]  = max_k |x[b, k]|                            # NaN if the row holds NaN or Inf
    s[b]     = scale[b] if given else (amax[b] if amax[b] > 0 else 1)
    c[b]     = round_half_to_even(clamp(x[b] / s[b], -1, 1) * levels), zero-padded to T * R
    codes    = c.view(B, T, R).transpose(0, 1)              # (T, B, R), contiguous: the tiles' inputs
    sq       = bfloat16(codes ** 2)                         # inputs of the noise-variance matmul

(``levels = 2**(bits-1) - 1``; no rounding for an exact DAC, ``bits=None``). After the main matmul, ``y`` (T, B, N) holds the noiseless outputs in ADC-code units.
:func:`fused_noise_adc` does, in one pass over ``y`` and with no (T, B, N) temporaries::

    v   = var[t, b, n] (as float32) + out_var            # var may be None (then v = out_var)
    val = y[t, b, n] + sqrt(v) * z[t, b, n]               # z ~ N(0, 1)
    if code_max >= 0:
        sat[b] |= |val| > code_max                        # before clamping
        val = round_half_to_even(clamp(val, -code_max, code_max))
    out[b, n] = sum_t post[t, 0, n] * val                 # t = 0, 1, ... in float32, no FMA
    out[b, n] = out[b, n] * row_scale[b] * col_scale[n] + bias[n]   # each when given, rounded in turn

The C++ kernel (:mod:`aimc.cpp.tile`, compiled on first use by :func:`aimc.cpp.load`)
draws ``z`` from a counter-based generator: pair ``p = i // 2`` of the linear index
``i = (t * B + b) * N + n`` is hashed with the seed (SplitMix64 finaliser), giving two
24-bit uniforms, and a Box-Muller transform gives ``z[2p]`` and ``z[2p + 1]`` (u1 = 1 - k/2^24
in (0, 1], so |z| <= sqrt(48 ln 2) = 5.77: a tail mass of 2^-24 = 6e-8 is cut off). So ``z``
depends only on ``(seed, i)``: the result is the same whatever the number of threads.
The log and sin/cos of the transform are branch-free float32 polynomials (Cephes
``logf``/``sinf``/``cosf`` coefficients and range reduction), so GCC vectorises the whole
loop (AVX-512 where available, including the 64-bit integer multiplies of the hash).

Where the extension cannot be compiled, for non-CPU tensors, or with the environment
variable ``AIMC_NO_CPP=1``, a pure-PyTorch fallback with the same semantics runs; only its
random stream differs (``torch.randn`` from a generator seeded with ``seed``). With
``var=None`` and ``out_var=0`` (no noise) both give bit-identical results; the pre-pass is
bit-identical to its fallback always.

Why fewer passes matter: each PyTorch elementwise op on a (B, K) tensor over 32,768
elements opens an OpenMP parallel region, and under libgomp's default wait policy the
team's threads spin between regions. On a machine where another process holds a core,
every region then waits for a descheduled thread, so a read's cost grows with its number
of regions (measured: a digits-size read went from 15 regions to 6 with these passes).

Example:
    >>> x = torch.tensor([[0.5, -2.0, 1.0]])
    >>> codes, sq, amax, scale = dac_prepass(x, None, 8, tiles=2, rows=2, squares=True)
    >>> codes.tolist(), sq.float().tolist(), amax.tolist(), scale.tolist()
    ([[[32.0, -127.0]], [[64.0, 0.0]]], [[[1024.0, 16128.0]], [[4096.0, 0.0]]], [2.0], [2.0])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from aimc import cpp
from aimc.physics.periphery import adc_codes_, dac_codes, max_code

__all__ = ["dac_prepass", "fallback_dac_prepass", "fused_noise_adc", "available", "fallback_noise_adc",
           "variance_matmul", "weight_matmul", "SMALL_BATCH", "encode_var", "decode_var"]


def available() -> bool:
    """True when the compiled kernel can be used (compiles it on first call)."""
    return cpp.available()


def _signed64(seed: int) -> int:
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    return seed - (1 << 64) if seed >= (1 << 63) else seed


def fallback_dac_prepass(x: torch.Tensor, scale: torch.Tensor | None, bits: int | None, tiles: int, rows: int,
                         squares: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Pure-PyTorch version of :func:`dac_prepass` (bit-identical)."""
    B = x.shape[0]
    amax = x.abs().amax(dim=1)  # (B,)
    s = scale if scale is not None else torch.where(amax > 0, amax, torch.ones_like(amax))
    c = F.pad(dac_codes(x / s[:, None], bits), (0, tiles * rows - x.shape[1]))  # (B, T*R)
    codes = c.view(B, tiles, rows).transpose(0, 1).contiguous()  # (T, B, R)
    sq = (codes * codes).to(torch.bfloat16) if squares else None
    return codes, sq, amax, s


def dac_prepass(x: torch.Tensor, scale: torch.Tensor | None, bits: int | None, tiles: int, rows: int,
                squares: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """DAC codes of ``x`` (B, K) in one pass: ``(codes (T, B, R) f32, sq (T, B, R) bf16 or
    None, amax (B,) f32, scale used (B,) f32)``; see the module docstring.

    Args:
        x: inputs (B, K), float.
        scale: per-row full scale (B,) (> 0), or None for each row's abs-max (0 -> 1).
        bits: DAC resolution (``levels = max_code(bits)``), or None for an exact DAC.
        tiles, rows: the tile layout's ``t_in`` and ``rows`` (``tiles * rows >= K``).
        squares: also return ``bfloat16(codes ** 2)`` (for the read-noise variance).
    """
    if tiles * rows < x.shape[1] or rows < 1:
        raise ValueError(f"tiles * rows must be >= x.shape[1] = {x.shape[1]}, got {tiles} x {rows}")
    mod = cpp.load() if x.device.type == "cpu" else None
    if mod is None:
        return fallback_dac_prepass(x, scale, bits, tiles, rows, squares)
    x = x.detach().to(torch.float32).contiguous()
    if scale is not None:
        scale = scale.detach().to(torch.float32).reshape(-1).contiguous()
    levels = max_code(bits)
    codes, sq, amax, used = mod.dac_prepass(x, scale, -1 if levels is None else int(levels), int(tiles), int(rows),
                                            bool(squares))
    return codes, (sq if squares else None), amax, used


#: Input vectors up to which :func:`variance_matmul` and :func:`weight_matmul` use the
#: small-batch kernel.
SMALL_BATCH = 8


def weight_matmul(codes: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Tile outputs ``codes`` (T, B, R) float32 @ ``w`` (T, R, N), float32: float32 ``w``
    by torch's batched matmul; bfloat16 ``w`` (the read matrices of a lean layer on a
    noisy chip, :mod:`aimc.tiles.seeded`) by the compiled small-batch kernel for up to
    :data:`SMALL_BATCH` vectors (it streams the half-size matrix once and skips the
    padding rows), else by torch's float32 matmul of a float32 copy.

    Example:
        >>> x = torch.ones(1, 2, 3)
        >>> weight_matmul(x, torch.full((1, 3, 4), 0.5, dtype=torch.bfloat16)).tolist()
        [[[1.5, 1.5, 1.5, 1.5], [1.5, 1.5, 1.5, 1.5]]]
    """
    if w.dtype == torch.float32:
        return torch.bmm(codes, w)
    if codes.shape[1] <= SMALL_BATCH and codes.device.type == "cpu":
        mod = cpp.load()
        if mod is not None:
            return mod.small_bmm(codes, w)
    return torch.bmm(codes, w.float())


_VAR_EXP = 112  # float32 exponent field of a variance code's e = 0 (2^-15 of its column's scale)


def encode_var(var: torch.Tensor, rows_dim: int = -2) -> tuple[torch.Tensor, torch.Tensor]:
    """Read-noise variances ``var`` (..., R, N) >= 0 -> one byte each: ``(codes`` uint8
    (..., R, N), ``scale`` float32 (..., 1, N)), ``var ~= scale * v(code)`` with ``scale``
    each column's largest variance and ``v`` an unsigned float of 4 exponent and 4
    mantissa bits, ``v(16 e + m) = 2^(e - 15) (1 + m / 16)`` (``v(0) = 0``), rounded to
    nearest: at most 2^-5 (3.1 %) of a variance off (1.6 % of its noise std) down to 2^-15
    of its column's largest; below that a variance reads as 0 or as the smallest code
    (33/32 2^-15 of the largest).

    A tile column's output-noise variance is the sum over its rows of ``x^2 var``
    (:func:`variance_matmul`), so these independent roundings of its devices average out
    to a fraction of a per cent of the column's; the device models' own variance
    (e.g. PCM's 1/f read noise, fitted to measurements, Nandakumar et al. 2019) is known
    far less precisely. Half the bytes of bfloat16: the form in which lean layers
    (:mod:`aimc.tiles.seeded`) keep their variances.

    Example:
        >>> codes, scale = encode_var(torch.tensor([[4.0], [1.0], [0.3], [0.0]]))
        >>> codes.flatten().tolist(), scale.flatten().tolist()
        ([240, 208, 179, 0], [4.0])
        >>> decode_var(codes, scale, torch.float32).flatten().tolist()  # 0.3 -> 0.296875
        [4.0, 1.0, 0.296875, 0.0]
    """
    v = var.float()
    scale = v.amax(dim=rows_dim, keepdim=True)  # each column's largest (rows along ``rows_dim``)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    bits = (v / scale).contiguous().view(torch.int32)
    codes = ((bits + (1 << 18)) >> 19) - (_VAR_EXP << 4)  # mantissa rounded to 4 bits, exponent rebased
    return codes.clamp_(0, 255).to(torch.uint8), scale


def decode_var(codes: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """The variances ``scale * v(codes)`` of :func:`encode_var`, in ``dtype``."""
    k = codes.to(torch.int32)
    v = ((k << 19) + (_VAR_EXP << 23)).view(torch.float32)
    return (torch.where(k > 0, v, 0.0) * scale).to(dtype)


def variance_matmul(sq: torch.Tensor, var: torch.Tensor, var_scale: torch.Tensor | None = None) -> torch.Tensor:
    """Read-noise variances of the tile outputs, ``sq`` (T, B, R) @ ``var`` (T, R, N), both
    bfloat16 (or ``var`` the uint8 codes of :func:`encode_var` with their ``var_scale``
    (T, 1, N)), accumulated in float32: bfloat16 (torch's batched matmul) for many input
    vectors, float32 from the compiled small-batch kernel for up to :data:`SMALL_BATCH`
    (token-by-token decoding, where torch's bfloat16 matmul has no fast path on most CPUs
    and took twice as long as the float32 weight matmul; the kernel streams ``var`` once
    and skips the padding rows, whose inputs are 0).

    Example:
        >>> sq = torch.ones(1, 2, 3, dtype=torch.bfloat16)
        >>> variance_matmul(sq, torch.full((1, 3, 4), 0.5, dtype=torch.bfloat16)).float().tolist()
        [[[1.5, 1.5, 1.5, 1.5], [1.5, 1.5, 1.5, 1.5]]]
    """
    if var.dtype == torch.uint8 and var_scale is None:
        raise ValueError("variance_matmul: uint8 variance codes need their var_scale")
    scale = var_scale if var.dtype == torch.uint8 else None
    if sq.shape[1] <= SMALL_BATCH and sq.device.type == "cpu":
        mod = cpp.load()
        if mod is not None:
            out = mod.small_bmm(sq, var)
            return out if scale is None else out.mul_(scale)
    return torch.bmm(sq, var if scale is None else decode_var(var, scale))


def fallback_noise_adc(y: torch.Tensor, var: torch.Tensor | None, out_var: float, post: torch.Tensor,
                       code_max: int, seed: int, row_scale: torch.Tensor | None = None,
                       col_scale: torch.Tensor | None = None,
                       bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pure-PyTorch version of :func:`fused_noise_adc` (``z`` from ``torch.randn``)."""
    T, B, N = y.shape
    out_var = float(out_var)
    val = y.to(torch.float32, copy=True)  # worked on in place; the caller's y is left alone
    if var is not None or out_var != 0.0:
        g = torch.Generator(device=y.device).manual_seed(int(seed) & 0x7FFFFFFFFFFFFFFF)
        z = torch.randn(y.shape, generator=g, device=y.device, dtype=torch.float32)
        if var is not None:
            v = var.float() + out_var if out_var != 0.0 else var.float()
            val.add_(v.sqrt() * z)
        else:
            val.add_(torch.tensor(out_var, dtype=torch.float32).sqrt().item() * z)
    if code_max >= 0:
        sat = (val.abs() > float(code_max)).any(dim=2).any(dim=0)
        adc_codes_(val, code_max)
    else:
        sat = torch.zeros(B, dtype=torch.bool, device=y.device)
    post = post.reshape(T, 1, N).float()
    out = torch.zeros(B, N, dtype=torch.float32, device=y.device)
    for t in range(T):  # sequential in t, product rounded before the add: as the kernel
        out.add_(val[t] * post[t])
    if row_scale is not None:
        out.mul_(row_scale.reshape(B, 1).float())
    if col_scale is not None:
        out.mul_(col_scale.reshape(N).float())
    if bias is not None:
        out.add_(bias.reshape(N).float())
    return out, sat


def fused_noise_adc(y: torch.Tensor, var: torch.Tensor | None, out_var: float, post: torch.Tensor,
                    code_max: int, seed: int, row_scale: torch.Tensor | None = None,
                    col_scale: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                    group: int = 1, out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise + ADC + post-scale + sum over tiles: ``y`` (T, B, N) -> (out (B, N) f32, sat (B,) bool).

    ``var``: (T, B, N) bf16/f32 per-element noise variance or None; ``out_var``: variance
    added to every element; ``post``: (T, 1, N) f32; ``code_max``: ADC clip level, -1 for
    no ADC (then ``sat`` is all False); ``seed``: the noise stream (deterministic);
    ``row_scale`` (B,), ``col_scale`` (N,): multiply each output row / column, then ``bias``
    (N,) is added (each optional, applied in this order). ``group``: each row of ``y``
    holds ``group`` rows of ``N / group`` outputs side by side (short rows passed a few at
    a time; the noise of an element depends on its linear index only): ``row_scale`` then
    has ``B * group`` elements, ``col_scale`` and ``bias`` ``N / group`` (``sat`` stays per
    row of ``y``). ``out``: a contiguous float32 tensor of ``B * N`` elements the outputs are
    written to (returned, viewed as (B, N)), instead of a new one.
    """
    mod = cpp.load() if y.device.type == "cpu" else None
    if mod is None:
        T, B, N = y.shape
        res, sat = fallback_noise_adc(y.reshape(T, B * group, N // group),
                                      None if var is None else var.reshape(T, B * group, N // group), out_var,
                                      post.reshape(T, 1, group, N // group)[:, :, 0], code_max, seed, row_scale,
                                      col_scale, bias)
        res, sat = res.view(B, N), sat.view(B, group).any(dim=1)
        return (res, sat) if out is None else (out.view(B, N).copy_(res), sat)
    y = y.contiguous() if y.dtype == torch.float32 else y.float().contiguous()
    if var is not None:
        if var.dtype not in (torch.bfloat16, torch.float32):
            var = var.float()
        var = var.contiguous()
    post = post.float().contiguous()
    row_scale, col_scale, bias = (None if v is None else v.detach().to(torch.float32).reshape(-1).contiguous()
                                  for v in (row_scale, col_scale, bias))
    res, sat = mod.fused_noise_adc(y, var, float(out_var), post, int(code_max), _signed64(seed), row_scale,
                                   col_scale, bias, int(group), out)
    return res.view(y.shape[1], y.shape[2]), sat


def normal_stream(seed: int, start: int, n: int) -> torch.Tensor:
    """The kernel's N(0, 1) draws ``z[start:start + n]`` (flat index) for ``seed``."""
    mod = cpp.load()
    if mod is None:
        raise RuntimeError("fused C++ kernel unavailable")
    return mod.normal_stream(_signed64(seed), int(start), int(n))
