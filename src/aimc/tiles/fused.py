"""Fused CPU kernel for the post-matmul part of an analog MVM: noise, ADC, post-scale, sum.

After the main matmul, ``y`` (T, B, N) holds the noiseless outputs in ADC-code units.
:func:`fused_noise_adc` does, in one pass over ``y`` and with no (T, B, N) temporaries::

    v   = var[t, b, n] (as float32) + out_var            # var may be None (then v = out_var)
    val = y[t, b, n] + sqrt(v) * z[t, b, n]               # z ~ N(0, 1)
    if code_max >= 0:
        sat[b] |= |val| > code_max                        # before clamping
        val = round_half_to_even(clamp(val, -code_max, code_max))
    out[b, n] = sum_t post[t, 0, n] * val                 # t = 0, 1, ... in float32, no FMA

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
``var=None`` and ``out_var=0`` (no noise) both give bit-identical results.
"""
from __future__ import annotations

import torch

from aimc import cpp
from aimc.physics.periphery import adc_codes_

__all__ = ["fused_noise_adc", "available", "fallback_noise_adc"]


def available() -> bool:
    """True when the compiled kernel can be used (compiles it on first call)."""
    return cpp.available()


def _signed64(seed: int) -> int:
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    return seed - (1 << 64) if seed >= (1 << 63) else seed


def fallback_noise_adc(y: torch.Tensor, var: torch.Tensor | None, out_var: float, post: torch.Tensor,
                       code_max: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
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
    return out, sat


def fused_noise_adc(y: torch.Tensor, var: torch.Tensor | None, out_var: float, post: torch.Tensor,
                    code_max: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise + ADC + post-scale + sum over tiles: ``y`` (T, B, N) -> (out (B, N) f32, sat (B,) bool).

    ``var``: (T, B, N) bf16/f32 per-element noise variance or None; ``out_var``: variance
    added to every element; ``post``: (T, 1, N) f32; ``code_max``: ADC clip level, -1 for
    no ADC (then ``sat`` is all False); ``seed``: the noise stream (deterministic).
    """
    mod = cpp.load() if y.device.type == "cpu" else None
    if mod is None:
        return fallback_noise_adc(y, var, out_var, post, code_max, seed)
    y = y.contiguous() if y.dtype == torch.float32 else y.float().contiguous()
    if var is not None:
        if var.dtype not in (torch.bfloat16, torch.float32):
            var = var.float()
        var = var.contiguous()
    post = post.float().contiguous()
    out, sat = mod.fused_noise_adc(y, var, float(out_var), post, int(code_max), _signed64(seed))
    return out, sat


def normal_stream(seed: int, start: int, n: int) -> torch.Tensor:
    """The kernel's N(0, 1) draws ``z[start:start + n]`` (flat index) for ``seed``."""
    mod = cpp.load()
    if mod is None:
        raise RuntimeError("fused C++ kernel unavailable")
    return mod.normal_stream(_signed64(seed), int(start), int(n))
