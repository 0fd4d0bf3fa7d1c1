"""The counter-based N(0, 1) generator shared by aimc's C++ kernels (C++ source text).

``z`` for a linear index ``i``: pair ``p = i // 2`` is hashed with a key (SplitMix64
finaliser), giving two 24-bit uniforms, and a Box-Muller transform gives ``z[2p]`` and
``z[2p + 1]`` (u1 = 1 - k/2^24 in (0, 1], so |z| <= sqrt(48 ln 2) = 5.77: a tail mass of
2^-24 = 6e-8 is cut off). ``z`` depends only on ``(key, i)``, whatever the number of
threads. The log and sin/cos are branch-free float32 polynomials (Cephes
``logf``/``sinf``/``cosf`` coefficients and range reduction), so GCC vectorises the loops.
``fill_normal_at(key, start, n, out)`` writes ``z[start:start + n]`` (any start).
"""

SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

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

// z[start .. start + n) of the stream `key` into out (any start parity).
void fill_normal_at(uint64_t key, int64_t start, int64_t n, float* __restrict out) {
  constexpr int64_t NP = 256;
  alignas(64) float zc[NP], zs[NP], z[2 * NP];
  int64_t i = start;
  const int64_t end = start + n;
  while (i < end) {
    const int64_t off = i & 1;
    const int64_t len = std::min<int64_t>(2 * NP - off, end - i);
    const int64_t np = (len + off + 1) >> 1;
    gen_normal_pairs(key, (uint64_t)(i >> 1), np, zc, zs);
    interleave(zc, zs, np, z);
    std::memcpy(out + (i - start), z + off, sizeof(float) * len);
    i += len;
  }
}

}  // namespace
"""
