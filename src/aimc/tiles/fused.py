"""Fused CPU kernel for the post-matmul part of an analog MVM: noise, ADC, post-scale, sum.

After the main matmul, ``y`` (T, B, N) holds the noiseless outputs in ADC-code units.
:func:`fused_noise_adc` does, in one pass over ``y`` and with no (T, B, N) temporaries::

    v   = var[t, b, n] (as float32) + out_var            # var may be None (then v = out_var)
    val = y[t, b, n] + sqrt(v) * z[t, b, n]               # z ~ N(0, 1)
    if code_max >= 0:
        sat[b] |= |val| > code_max                        # before clamping
        val = round_half_to_even(clamp(val, -code_max, code_max))
    out[b, n] = sum_t post[t, 0, n] * val                 # t = 0, 1, ... in float32, no FMA

The C++ kernel (compiled on first use with ``torch.utils.cpp_extension.load_inline``)
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

import hashlib
import os
import threading
import warnings

import torch

from aimc.physics.periphery import adc_codes_

__all__ = ["fused_noise_adc", "available", "fallback_noise_adc"]

_CPP_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

constexpr int64_t CH = 512;  // n-elements per block row chunk (multiple of 16)

static inline float as_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
static inline uint32_t as_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

// SplitMix64 finaliser (Steele, Lea & Flood 2014; constants of Stafford's "Mix13").
static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30; x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27; x *= 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return x;
}

// Natural log for finite x > 0 (normal numbers), Cephes logf: x = m * 2^e with
// m in [sqrt(1/2), sqrt(2)), log(1 + f) = f - f^2/2 + f^3 P(f), ln2 split in two parts.
static inline float log_approx(float x) {
  uint32_t ix = as_bits(x);
  int32_t e = (int32_t)((ix >> 23) & 0xffu) - 126;
  float m = as_float((ix & 0x007fffffu) | 0x3f000000u);  // [0.5, 1)
  const bool small = m < 0.70710678118654752440f;
  e = small ? e - 1 : e;
  float f = small ? (m + m) - 1.0f : m - 1.0f;
  const float fe = (float)e;
  const float z = f * f;
  float p = 7.0376836292E-2f;
  p = std::fma(p, f, -1.1514610310E-1f);
  p = std::fma(p, f, 1.1676998740E-1f);
  p = std::fma(p, f, -1.2420140846E-1f);
  p = std::fma(p, f, 1.4249322787E-1f);
  p = std::fma(p, f, -1.6668057665E-1f);
  p = std::fma(p, f, 2.0000714765E-1f);
  p = std::fma(p, f, -2.4999993993E-1f);
  p = std::fma(p, f, 3.3333331174E-1f);
  float y = p * f * z;
  y = std::fma(fe, -2.12194440e-4f, y);
  y = std::fma(-0.5f, z, y);
  float r = f + y;
  r = std::fma(fe, 0.693359375f, r);
  return r;
}

// cos and sin of 2*pi*k/2^24 for an integer k in [0, 2^24): exact integer quadrant
// reduction, then Cephes sinf/cosf minimax polynomials on [-pi/4, pi/4].
static inline void sincos_turns24(uint32_t k, float& c_out, float& s_out) {
  const uint32_t qn = (k + (1u << 21)) >> 22;           // nearest quarter turn, 0..4
  const int32_t rem = (int32_t)k - (int32_t)(qn << 22);  // [-2^21, 2^21)
  const uint32_t q = qn & 3u;
  const float r = (float)rem * 3.7450702829239286e-07f;  // (pi/2) / 2^22
  const float z = r * r;
  float s = -1.9515295891E-4f;
  s = std::fma(s, z, 8.3321608736E-3f);
  s = std::fma(s, z, -1.6666654611E-1f);
  s = std::fma(s * z, r, r);
  float c = 2.443315711809948E-5f;
  c = std::fma(c, z, -1.388731625493765E-3f);
  c = std::fma(c, z, 4.166664568298827E-2f);
  c = std::fma(c * z, z, std::fma(-0.5f, z, 1.0f));
  const bool swap = (q & 1u) != 0;
  const float a = swap ? s : c;
  const float b = swap ? c : s;
  const uint32_t sc = ((q + 1u) & 2u) << 30;  // cos negative in quadrants 1, 2
  const uint32_t ss = (q & 2u) << 30;         // sin negative in quadrants 2, 3
  c_out = as_float(as_bits(a) ^ sc);
  s_out = as_float(as_bits(b) ^ ss);
}

// z[2j], z[2j+1] for pairs p0 .. p0+np-1.
static inline void gen_normal_pairs(uint64_t key, uint64_t p0, int64_t np, float* __restrict zc,
                                    float* __restrict zs) {
  for (int64_t j = 0; j < np; ++j) {
    const uint64_t h = mix64(key + (p0 + (uint64_t)j) * 0x9E3779B97F4A7C15ULL);
    const uint32_t h1 = (uint32_t)(h >> 40);              // 24 bits
    const uint32_t h2 = (uint32_t)(h >> 8) & 0xffffffu;   // 24 bits
    const float u1 = 1.0f - (float)h1 * 5.9604644775390625e-08f;  // (0, 1] exactly: 1 - h1 / 2^24
    const float rad = std::sqrt(-2.0f * log_approx(u1));
    float c, s;
    sincos_turns24(h2, c, s);
    zc[j] = rad * c;
    zs[j] = rad * s;
  }
}

static inline void interleave(const float* __restrict zc, const float* __restrict zs, int64_t np,
                              float* __restrict z) {
  for (int64_t j = 0; j < np; ++j) { z[2 * j] = zc[j]; z[2 * j + 1] = zs[j]; }
}

template <typename VT>
static inline float to_f(VT v) { return (float)v; }
template <>
inline float to_f<at::BFloat16>(at::BFloat16 v) { return as_float(((uint32_t)v.x) << 16); }

template <typename VT, bool HAS_VAR, bool NOISY, bool ADC>
void kernel(const float* __restrict y, const VT* __restrict var, float out_var, const float* __restrict post,
            float cm, uint64_t key, int64_t T, int64_t B, int64_t N, float* __restrict out,
            uint8_t* __restrict satblk) {
  const int64_t nch = (N + CH - 1) / CH;
  at::parallel_for(0, B * nch, 1, [&](int64_t begin, int64_t end) {
    alignas(64) float acc[CH];
    alignas(64) float zbuf[CH + 16];
    alignas(64) float zc[CH / 2 + 8];
    alignas(64) float zs[CH / 2 + 8];
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t b = blk / nch;
      const int64_t n0 = (blk % nch) * CH;
      const int64_t len = std::min<int64_t>(CH, N - n0);
      for (int64_t n = 0; n < len; ++n) acc[n] = 0.0f;
      int32_t sat = 0;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t i0 = (t * B + b) * N + n0;
        const float* __restrict yr = y + i0;
        const float* __restrict pr = post + t * N + n0;
        const float* __restrict z = zbuf;
        if (NOISY) {
          const int64_t off = i0 & 1;
          const int64_t np = (len + off + 1) >> 1;
          gen_normal_pairs(key, (uint64_t)(i0 >> 1), np, zc, zs);
          interleave(zc, zs, np, zbuf);
          z = zbuf + off;
        }
        const VT* __restrict vr = HAS_VAR ? var + i0 : nullptr;
        for (int64_t n = 0; n < len; ++n) {
          float val = yr[n];
          if (NOISY) {
            const float v = HAS_VAR ? to_f<VT>(vr[n]) + out_var : out_var;
            val = val + std::sqrt(v) * z[n];
          }
          if (ADC) {
            sat |= (int32_t)(std::fabs(val) > cm);
            val = val < -cm ? -cm : (val > cm ? cm : val);
            val = std::nearbyint(val);
          }
          acc[n] = acc[n] + pr[n] * val;
        }
      }
      float* __restrict o = out + b * N + n0;
      for (int64_t n = 0; n < len; ++n) o[n] = acc[n];
      satblk[blk] = (uint8_t)(sat != 0);
    }
  });
}

template <typename VT, bool HAS_VAR>
void dispatch_noise(bool noisy, bool adc, const float* y, const VT* var, float out_var, const float* post,
                    float cm, uint64_t key, int64_t T, int64_t B, int64_t N, float* out, uint8_t* satblk) {
  if (noisy) {
    if (adc) kernel<VT, HAS_VAR, true, true>(y, var, out_var, post, cm, key, T, B, N, out, satblk);
    else kernel<VT, HAS_VAR, true, false>(y, var, out_var, post, cm, key, T, B, N, out, satblk);
  } else {
    if (adc) kernel<VT, false, false, true>(y, nullptr, 0.f, post, cm, key, T, B, N, out, satblk);
    else kernel<VT, false, false, false>(y, nullptr, 0.f, post, cm, key, T, B, N, out, satblk);
  }
}

}  // namespace

std::vector<torch::Tensor> fused_noise_adc(torch::Tensor y, c10::optional<torch::Tensor> var, double out_var,
                                           torch::Tensor post, int64_t code_max, int64_t seed) {
  TORCH_CHECK(y.device().is_cpu() && y.scalar_type() == at::kFloat && y.dim() == 3 && y.is_contiguous(),
              "y must be a contiguous float32 CPU tensor (T, B, N)");
  const int64_t T = y.size(0), B = y.size(1), N = y.size(2);
  TORCH_CHECK(post.scalar_type() == at::kFloat && post.is_contiguous() && post.numel() == T * N,
              "post must be a contiguous float32 tensor (T, 1, N)");
  const bool has_var = var.has_value() && var->defined();
  if (has_var) {
    TORCH_CHECK(var->is_contiguous() && var->sizes() == y.sizes(), "var must be contiguous with y's shape");
    TORCH_CHECK(var->scalar_type() == at::kBFloat16 || var->scalar_type() == at::kFloat, "var must be bf16 or f32");
  }
  const bool noisy = has_var || out_var != 0.0;
  const bool adc = code_max >= 0;
  const float cm = adc ? (float)code_max : 0.f;
  const uint64_t key = mix64((uint64_t)seed ^ 0x6A09E667F3BCC909ULL);
  auto out = torch::empty({B, N}, y.options());
  const int64_t nch = (N + CH - 1) / CH;
  auto satblk = torch::zeros({B, nch}, y.options().dtype(at::kByte));
  const float* yp = y.data_ptr<float>();
  const float* pp = post.data_ptr<float>();
  float* op = out.data_ptr<float>();
  uint8_t* sp = satblk.data_ptr<uint8_t>();
  if (B * N > 0) {
    if (has_var && var->scalar_type() == at::kBFloat16)
      dispatch_noise<at::BFloat16, true>(noisy, adc, yp, var->data_ptr<at::BFloat16>(), (float)out_var, pp, cm, key, T, B, N, op, sp);
    else if (has_var)
      dispatch_noise<float, true>(noisy, adc, yp, var->data_ptr<float>(), (float)out_var, pp, cm, key, T, B, N, op, sp);
    else
      dispatch_noise<float, false>(noisy, adc, yp, nullptr, (float)out_var, pp, cm, key, T, B, N, op, sp);
  }
  auto sat = nch > 0 ? satblk.amax(1).to(at::kBool) : torch::zeros({B}, y.options().dtype(at::kBool));
  return {out, sat};
}

// The kernel's standard normals z[i] for i in [start, start + n) (tests and diagnostics).
torch::Tensor normal_stream(int64_t seed, int64_t start, int64_t n) {
  TORCH_CHECK(start >= 0 && n >= 0, "start and n must be >= 0");
  const uint64_t key = mix64((uint64_t)seed ^ 0x6A09E667F3BCC909ULL);
  auto out = torch::empty({n}, torch::dtype(torch::kFloat));
  float* o = out.data_ptr<float>();
  const int64_t per = 1 << 14;
  at::parallel_for(0, (n + per - 1) / per, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> zc(per / 2 + 2), zs(per / 2 + 2), z(per + 4);
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t i0 = start + blk * per;
      const int64_t len = std::min<int64_t>(per, start + n - i0);
      const int64_t off = i0 & 1, np = (len + off + 1) >> 1;
      gen_normal_pairs(key, (uint64_t)(i0 >> 1), np, zc.data(), zs.data());
      interleave(zc.data(), zs.data(), np, z.data());
      std::memcpy(o + (i0 - start), z.data() + off, sizeof(float) * len);
    }
  });
  return out;
}

// The polynomial approximations themselves (accuracy checks).
torch::Tensor log_approx_t(torch::Tensor x) {
  auto xc = x.contiguous().to(at::kFloat);
  auto out = torch::empty_like(xc);
  const float* a = xc.data_ptr<float>();
  float* o = out.data_ptr<float>();
  for (int64_t i = 0; i < xc.numel(); ++i) o[i] = log_approx(a[i]);
  return out;
}

std::vector<torch::Tensor> sincos_turns24_t(torch::Tensor k) {
  auto kc = k.contiguous().to(at::kInt);
  auto c = torch::empty(kc.sizes(), torch::dtype(torch::kFloat)), s = torch::empty_like(c);
  const int32_t* a = kc.data_ptr<int32_t>();
  float* cp = c.data_ptr<float>();
  float* sp = s.data_ptr<float>();
  for (int64_t i = 0; i < kc.numel(); ++i) sincos_turns24((uint32_t)a[i] & 0xffffffu, cp[i], sp[i]);
  return {c, s};
}
"""

_CPP_DECLS = r"""
#include <torch/extension.h>
#include <vector>
std::vector<torch::Tensor> fused_noise_adc(torch::Tensor y, c10::optional<torch::Tensor> var, double out_var,
                                           torch::Tensor post, int64_t code_max, int64_t seed);
torch::Tensor normal_stream(int64_t seed, int64_t start, int64_t n);
torch::Tensor log_approx_t(torch::Tensor x);
std::vector<torch::Tensor> sincos_turns24_t(torch::Tensor k);
"""

# Flags: no -ffast-math (it would break NaN propagation and the exact rounding);
# -fno-math-errno / -fno-trapping-math let GCC vectorise sqrt and nearbyint;
# -ffp-contract=off keeps the post-scale sum bit-identical to the PyTorch fallback
# (the polynomials use explicit std::fma).
_CFLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-fopenmp"]

_lock = threading.Lock()
_module = None
_failed = False


def _ext_name() -> str:
    h = hashlib.sha1((_CPP_SOURCE + _CPP_DECLS + " ".join(_CFLAGS)).encode()).hexdigest()[:12]
    return f"aimc_fused_{h}"


def _load():
    """The compiled extension, or None (compiled once per process; a failure warns once)."""
    global _module, _failed
    if _module is not None or _failed:
        return _module
    if os.environ.get("AIMC_NO_CPP", "") == "1":
        return None
    with _lock:
        if _module is None and not _failed:
            try:
                from torch.utils.cpp_extension import load_inline

                _module = load_inline(
                    name=_ext_name(),
                    cpp_sources=[_CPP_DECLS, _CPP_SOURCE],
                    functions=["fused_noise_adc", "normal_stream", "log_approx_t", "sincos_turns24_t"],
                    extra_cflags=_CFLAGS,
                    extra_ldflags=["-fopenmp"],
                    verbose=False,
                )
            except Exception as exc:  # no compiler, no headers, ...: use the PyTorch path
                _failed = True
                warnings.warn(f"aimc: fused C++ kernel unavailable ({type(exc).__name__}: {exc}); "
                              "using the PyTorch fallback", RuntimeWarning, stacklevel=3)
    return _module


def available() -> bool:
    """True when the compiled kernel can be used (compiles it on first call)."""
    return _load() is not None


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
    mod = _load() if y.device.type == "cpu" else None
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
    mod = _load()
    if mod is None:
        raise RuntimeError("fused C++ kernel unavailable")
    return mod.normal_stream(_signed64(seed), int(start), int(n))
