"""C++ source of the fused hardware-aware-training read: weight side and output rows (linear
layers: :mod:`aimc.cpp.hat_linear`, convolutions: :mod:`aimc.cpp.hat_conv`) (semantics:
:mod:`aimc.train.hat`; Python entry points and autograd: :mod:`aimc.train.hat_fused`).

One call does a layer's whole training read forward (weights, DAC, MVM, noise, ADC, tile
sum, gain, bias) and one call its backward, so that a HAT step costs a few kernel calls per
layer instead of ~40 PyTorch operations. The MVM itself is ATen's ``bmm``/``mm`` or
``convolution`` (and ``convolution_backward``), the same kernels plain training uses.

Weight side (``weights_impl``), for ``w`` (O, I) cut into ``T`` tiles of ``R`` rows:
``scale[t,o] = max_r |w|``; ``a = |w|/scale``; with a drift table ``h`` (``P`` points over
``a`` in [0, 1], linear interpolation) ``wn = sign(w) h(a) * gdc`` with
``gdc = sum |w| / sum h(a) scale`` (global drift compensation as the chip's one-hot
calibration measures it: :func:`aimc.physics.drift.gdc_statistic`, the reads weighted by the
programmed weights' signs), else ``wn = a sign(w)``; then
``wn += noise_scale * sd(a) * z`` with ``sd`` the device table at the nearest grid point
(or the constant ``sd_const``); ``dfac = d wn / d w`` (noise and ``scale`` held constant);
before the noise, with IR-drop settings, the first-order IR-drop correction of the clean
weights of each tile (``irdrop_block`` of :mod:`aimc.cpp.hat_irdrop`, one output tile at a
time while it is in cache; gradients straight through), and an optional additive ``delta``
(O, I) in the same normalised units (a correction computed in PyTorch, e.g. programming
levels), whose gradient is returned as that of ``wn`` (laid out as ``w``). The result is
laid out ``(T, O, R)`` (rows past ``in_features`` zero; convolutions) or, ``flat``, as
``w`` itself, ``(O, I)`` (linear layers: no padding rows).
The sd and the normal draws are made one row segment at a time (no weight-sized
temporaries besides ``wn`` and ``dfac``).
Random numbers ``z`` come from the counter-based generator of :mod:`aimc.cpp.rng` with a
key derived from the call's seed (weights and outputs use different keys).
"""

SOURCE = r"""
#include <ATen/ATen.h>
#include <algorithm>

namespace {

constexpr uint64_t KEY_W = 0x3C6EF372FE94F82BULL;  // weight noise stream
constexpr uint64_t KEY_Y = 0xA54FF53A5F1D36F1ULL;  // output noise stream

struct Weights {
  at::Tensor wn, scale, dfac;  // (T, O, R) or (O, I), (T, O), as wn (undefined when not asked for)
  float gdc;                   // the weights' drift compensation factor (1: no drift)
};

// Sum of x[0..n) with 8 interleaved float accumulators (vectorisable without -ffast-math).
inline float sum8(const float* __restrict x, int64_t n) {
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += x[i + k];
  float s = 0.f;
  for (; i < n; ++i) s += x[i];
  for (int k = 0; k < 8; ++k) s += acc[k];
  return s;
}

// max |x[i]| over [0, n), 16 interleaved maxima (a plain max reduction does not vectorise:
// std::max is not associative for NaN); at least `floor`.
inline float absmax16(const float* __restrict x, int64_t n, float floor) {
  float acc[16];
  for (int k = 0; k < 16; ++k) acc[k] = floor;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) acc[k] = std::max(acc[k], std::fabs(x[i + k]));
  float m = floor;
  for (; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  for (int k = 0; k < 16; ++k) m = std::max(m, acc[k]);
  return m;
}

// Row helpers: restrict-qualified parameters let GCC vectorise the loops (gathers included);
// D: also write the derivative dr = d wr / d row (else dr is not touched).
template <bool D>
void drift_row(const float* __restrict row, const float* __restrict mt, float* __restrict wr, float* __restrict dr,
               int64_t len, float s, float pm1, int32_t PM) {
  const float inv = 1.0f / s;
  for (int64_t r = 0; r < len; ++r) {
    const float v = row[r];
    const float a = std::min(std::fabs(v) / s, 1.0f);
    const float pos = a * pm1;
    const int32_t i0 = std::min((int32_t)pos, PM - 2);  // pos >= 0: truncation is floor
    const float frac = pos - (float)i0;
    const float lo = mt[i0], hi = mt[i0 + 1];
    const float sg = (v > 0.f ? 1.f : 0.f) - (v < 0.f ? 1.f : 0.f);
    wr[r] = sg * (lo + (hi - lo) * frac);
    if (D) dr[r] = sg * sg * ((hi - lo) * pm1) * inv;
  }
}

// g *= d wn / d w of the weight side, recomputed from the weights row (drift table mt, or
// nullptr: no drift) and the compensation factor gdc: the backward of linear layers, which
// keep no weight-sized derivative between forward and backward.
void wgrad_row(const float* __restrict row, const float* __restrict mt, float* __restrict g, int64_t len, float s,
               float pm1, int32_t PM, float gdc) {
  const float inv = 1.0f / s;
  if (!mt) {
    const float d = inv * gdc;
    for (int64_t r = 0; r < len; ++r) g[r] = g[r] * d;
    return;
  }
  for (int64_t r = 0; r < len; ++r) {
    const float v = row[r];
    const float a = std::min(std::fabs(v) / s, 1.0f);
    const float pos = a * pm1;
    const int32_t i0 = std::min((int32_t)pos, PM - 2);
    const float sg = (v > 0.f ? 1.f : 0.f) - (v < 0.f ? 1.f : 0.f);
    g[r] = g[r] * ((sg * sg * ((mt[i0 + 1] - mt[i0]) * pm1) * inv) * gdc);
  }
}

void abs_row(const float* __restrict wr, float* __restrict tmp, int64_t len, float s) {
  for (int64_t r = 0; r < len; ++r) tmp[r] = std::fabs(wr[r]) * s;
}

template <bool D>
void plain_row(const float* __restrict row, float* __restrict wr, float* __restrict dr, int64_t len, float s) {
  const float inv = 1.0f / s;
  for (int64_t r = 0; r < len; ++r) { wr[r] = row[r] / s; if (D) dr[r] = inv; }
}

void sd_row(const float* __restrict row, const float* __restrict st, float* __restrict sb, int64_t len, float s,
            float ns, float ps1) {
  for (int64_t r = 0; r < len; ++r) sb[r] = ns * st[(int32_t)std::nearbyint(std::min(std::fabs(row[r]) / s, 1.0f) * ps1)];
}

template <bool D>
void scale_row(float* __restrict wr, float* __restrict dr, int64_t len, float gdc) {
  for (int64_t r = 0; r < len; ++r) { wr[r] = wr[r] * gdc; if (D) dr[r] = dr[r] * gdc; }
}

void dac_row(const float* __restrict x, float* __restrict q, int64_t n, float am, int64_t dac) {
  if (dac > 0) {
    const float d = (float)dac;
    for (int64_t k = 0; k < n; ++k) {
      float v = x[k] / am;
      v = v < -1.f ? -1.f : (v > 1.f ? 1.f : v);
      q[k] = std::nearbyint(v * d) / d;
    }
  } else {
    for (int64_t k = 0; k < n; ++k) {
      const float v = x[k] / am;
      q[k] = v < -1.f ? -1.f : (v > 1.f ? 1.f : v);
    }
  }
}

// IR-drop settings of the weight side (irdrop_block of aimc.cpp.hat_irdrop); rows == 0: none.
struct IrDrop {
  double r_uS = 0.0, g_min = 0.0, dg = 1.0;
  int64_t rows = 0, width = 1;
};

// From (r_uS, g_min_uS, dg_uS, rows, width) (aimc.train.hat_fused.Static.ir) or () for none.
IrDrop ir_of(const std::vector<double>& v) {
  IrDrop s;
  TORCH_CHECK(v.empty() || v.size() == 5, "ir must be empty or (r_uS, g_min_uS, dg_uS, rows, width)");
  if (v.size() == 5) { s.r_uS = v[0]; s.g_min = v[1]; s.dg = v[2]; s.rows = (int64_t)v[3]; s.width = (int64_t)v[4]; }
  TORCH_CHECK(s.dg > 0.0 && s.r_uS >= 0.0 && s.width >= 1, "ir: need dg > 0, r_uS >= 0 and width >= 1");
  return s;
}

// See the module doc. w: (O, I) f32 contiguous. flat: wn and dfac laid out as w (O, I), tile t
// of row o at o * I + t * R (no padding rows); else (T, O, R), rows past in_features zero.
// ir.rows > 0: the first-order IR-drop correction of the clean weights of each tile is added
// (irdrop_block; the same as delta = hat_irdrop_delta), before the noise. want_dfac false:
// no dfac (wgrad_row recomputes it in the backward).
Weights weights_impl(const at::Tensor& w, int64_t T, int64_t R, const c10::optional<at::Tensor>& mean_tab,
                     const c10::optional<at::Tensor>& sd_tab, double noise_scale, double sd_const, uint64_t seed,
                     const c10::optional<at::Tensor>& delta = c10::nullopt, bool flat = false,
                     const IrDrop& ir = IrDrop(), bool want_dfac = true) {
  const int64_t O = w.size(0), I = w.size(1);
  const bool padded = !flat && T * R != I;  // rows past in_features stay zero
  const std::vector<int64_t> shape = flat ? std::vector<int64_t>{O, I} : std::vector<int64_t>{T, O, R};
  auto wn = padded ? at::zeros(shape, w.options()) : at::empty(shape, w.options());
  auto dfac = !want_dfac ? at::Tensor() : padded ? at::zeros(shape, w.options()) : at::empty(shape, w.options());
  auto scale = at::empty({T, O}, w.options());
  const int64_t ws = flat ? I : R;  // between the rows of one tile
  auto off = [&](int64_t t, int64_t o) { return flat ? o * I + t * R : (t * O + o) * R; };
  const float* wp = w.data_ptr<float>();
  float* np_ = wn.data_ptr<float>();
  float* dp = want_dfac ? dfac.data_ptr<float>() : nullptr;
  float* sp = scale.data_ptr<float>();
  for (int64_t t = 0; t < T; ++t) {
    const int64_t len = std::min<int64_t>(R, I - t * R);
    for (int64_t o = 0; o < O; ++o) sp[t * O + o] = absmax16(wp + o * I + t * R, len, 1e-12f);
  }
  const bool drift = mean_tab.has_value() && mean_tab->defined();
  const bool noisy = noise_scale > 0.0;
  const bool table = noisy && sd_tab.has_value() && sd_tab->defined();
  const float* __restrict mt = drift ? mean_tab->data_ptr<float>() : nullptr;
  const float* __restrict st = table ? sd_tab->data_ptr<float>() : nullptr;
  const int32_t PM = drift ? (int32_t)mean_tab->numel() : 2, PS = table ? (int32_t)sd_tab->numel() : 1;
  const float pm1 = (float)(PM - 1), ps1 = (float)(PS - 1), ns = (float)noise_scale;
  std::vector<float> tmp(R), sb(noisy ? R : 0), z(noisy ? R : 0), irb(ir.rows > 0 ? std::min(ir.width, O) * R : 0);
  double before = 0.0, after = 0.0;
  for (int64_t o = 0; o < O; ++o) {
    float bo = 0.f, ao = 0.f;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t len = std::min<int64_t>(R, I - t * R), base = off(t, o);
      const float s = sp[t * O + o];
      const float* row = wp + o * I + t * R;
      if (drift) {
        if (want_dfac) drift_row<true>(row, mt, np_ + base, dp + base, len, s, pm1, PM);
        else drift_row<false>(row, mt, np_ + base, nullptr, len, s, pm1, PM);
        abs_row(row, tmp.data(), len, 1.0f);
        bo += sum8(tmp.data(), len);
        abs_row(np_ + base, tmp.data(), len, s);
        ao += sum8(tmp.data(), len);
      } else {
        if (want_dfac) plain_row<true>(row, np_ + base, dp + base, len, s);
        else plain_row<false>(row, np_ + base, nullptr, len, s);
      }
    }
    before += (double)bo;
    after += (double)ao;
  }
  const float gdc = drift ? (float)(before / std::max(after, 1e-30)) : 1.0f;
  const bool has_delta = delta.has_value() && delta->defined();
  if (has_delta) TORCH_CHECK(delta->is_contiguous() && delta->scalar_type() == at::kFloat && delta->numel() == O * I,
                             "delta must be a contiguous float32 (O, I) tensor");
  const float* dl = has_delta ? delta->data_ptr<float>() : nullptr;
  const uint64_t key = mix64(seed ^ KEY_W);
  const int64_t block = ir.rows > 0 ? ir.width : O;  // IR drop: one output tile at a time, in cache
  for (int64_t t = 0; t < T; ++t) {
    const int64_t len = std::min<int64_t>(R, I - t * R);
    for (int64_t o0 = 0; o0 < O; o0 += block) {
      const int64_t o1 = std::min<int64_t>(o0 + block, O);
      if (drift)
        for (int64_t o = o0; o < o1; ++o) {
          if (want_dfac) scale_row<true>(np_ + off(t, o), dp + off(t, o), len, gdc);
          else scale_row<false>(np_ + off(t, o), nullptr, len, gdc);
        }
      if (ir.rows > 0) {  // at the clean weights; gradients straight through (dfac unchanged)
        irdrop_block(np_ + off(t, o0), ws, irb.data(), len, o1 - o0, len, ir.r_uS, ir.g_min, ir.dg, ir.rows);
        for (int64_t o = o0; o < o1; ++o) {
          float* __restrict wr = np_ + off(t, o);
          const float* __restrict e = irb.data() + (o - o0) * len;
          for (int64_t r = 0; r < len; ++r) wr[r] += e[r];
        }
      }
      for (int64_t o = o0; o < o1; ++o) {
        const int64_t base = off(t, o);
        float* __restrict wr = np_ + base;
        if (dl) {
          const float* __restrict dd = dl + o * I + t * R;
          for (int64_t r = 0; r < len; ++r) wr[r] += dd[r];
        }
        if (noisy) {
          const float* row = wp + o * I + t * R;
          if (table) sd_row(row, st, sb.data(), len, sp[t * O + o], ns, ps1);
          else std::fill(sb.begin(), sb.begin() + len, (float)(noise_scale * sd_const));
          fill_normal_at(key, base, len, z.data());
          const float* __restrict sv = sb.data();
          const float* __restrict zv = z.data();
          for (int64_t r = 0; r < len; ++r) wr[r] += sv[r] * zv[r];
        }
      }
    }
  }
  return {wn, scale, dfac, gdc};
}

// grad of w (O, I) from the grad of the stacked weight rows g (T*O, I) (block t*O+o holds
// tile t's rows of column o, zero elsewhere) or, with stacked=false, from g (T, O, R); with
// dfac undefined, the grad of the additive weight delta (O, I) (dfac = 1).
at::Tensor weight_grad(const at::Tensor& g, const at::Tensor& dfac, int64_t O, int64_t I, bool stacked, int64_t T,
                       int64_t R) {
  const bool ones = !dfac.defined();
  auto gw = at::empty({O, I}, g.options());
  const float* gp = g.data_ptr<float>();
  const float* dp = ones ? nullptr : dfac.data_ptr<float>();
  float* op = gw.data_ptr<float>();
  for (int64_t t = 0; t < T; ++t) {
    const int64_t len = std::min<int64_t>(R, I - t * R);
    for (int64_t o = 0; o < O; ++o) {
      const float* src = stacked ? gp + (t * O + o) * I + t * R : gp + (t * O + o) * R;
      float* dst = op + o * I + t * R;
      if (ones) {
        for (int64_t r = 0; r < len; ++r) dst[r] = src[r];
      } else {
        const float* d = dp + (t * O + o) * R;
        for (int64_t r = 0; r < len; ++r) dst[r] = src[r] * d[r];
      }
    }
  }
  return gw;
}

// One row of partial sums: v = y (/ amax) (+ sd z), ADC (clamp at +-bound, round to lsb),
// acc += v * c, and mask = 1 where |v| <= bound (the clipped straight-through estimator
// passes there). NCHW rows run along the positions of one column (amax per element; sd, c
// scalars); NHWC rows along the columns at one position (amax scalar; sd, c per element).
// Branch-free so that GCC vectorises it.
template <bool NHWC, bool DIV, bool NOISY, bool ADC>
void adc_row(const float* __restrict y, uint8_t* __restrict mask, const float* __restrict amv, float ams,
             const float* __restrict z, const float* __restrict sdv, float sds, const float* __restrict cv, float cs,
             float bound, float lsb, float* __restrict acc, int64_t n) {
  for (int64_t s = 0; s < n; ++s) {
    float v = y[s];
    if (DIV) v = v / (NHWC ? ams : amv[s]);
    if (NOISY) v = v + (NHWC ? sdv[s] : sds) * z[s];
    uint8_t m = 1;
    if (ADC) {
      m = std::fabs(v) <= bound ? 1 : 0;
      v = v < -bound ? -bound : (v > bound ? bound : v);
      v = std::nearbyint(v / lsb) * lsb;
    }
    mask[s] = m;
    acc[s] = acc[s] + v * (NHWC ? cv[s] : cs);
  }
}

template <bool NHWC>
void adc_row_any(bool div, bool noisy, bool adc, const float* y, uint8_t* mask, const float* amv, float ams,
                 const float* z, const float* sdv, float sds, const float* cv, float cs, float bound, float lsb,
                 float* acc, int64_t n) {
#define AIMC_ROW(D, N, A) adc_row<NHWC, D, N, A>(y, mask, amv, ams, z, sdv, sds, cv, cs, bound, lsb, acc, n)
  if (div) {
    if (noisy) { if (adc) AIMC_ROW(true, true, true); else AIMC_ROW(true, true, false); }
    else { if (adc) AIMC_ROW(true, false, true); else AIMC_ROW(true, false, false); }
  } else {
    if (noisy) { if (adc) AIMC_ROW(false, true, true); else AIMC_ROW(false, true, false); }
    else { if (adc) AIMC_ROW(false, false, true); else AIMC_ROW(false, false, false); }
  }
#undef AIMC_ROW
}

const float* opt_ptr(const c10::optional<at::Tensor>& t) {
  return (t.has_value() && t->defined()) ? t->data_ptr<float>() : nullptr;
}

void check_f32(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous(),
              name, " must be a contiguous float32 CPU tensor");
}

}  // namespace

std::vector<torch::Tensor> hat_weights(torch::Tensor w, int64_t T, int64_t R, c10::optional<torch::Tensor> mean_tab,
                                       c10::optional<torch::Tensor> sd_tab, double noise_scale, double sd_const,
                                       int64_t seed) {
  check_f32(w, "w");
  auto r = weights_impl(w.view({w.size(0), -1}), T, R, mean_tab, sd_tab, noise_scale, sd_const, (uint64_t)seed);
  return {r.wn, r.scale, r.dfac};
}

"""

FUNCTIONS = ("hat_weights",)
