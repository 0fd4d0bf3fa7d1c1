"""C++ source of the fused hardware-aware-training read: weight side, output rows, linear
layers (convolutions: :mod:`aimc.cpp.hat_conv`) (semantics: :mod:`aimc.train.hat`;
Python entry points and autograd: :mod:`aimc.train.hat_fused`).

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
last, an optional additive ``delta`` (O, I) in the same normalised units (the IR-drop
correction of :mod:`aimc.tiles.irdrop`: :mod:`aimc.cpp.hat_irdrop`), whose gradient is returned
as that of ``wn`` (laid out as ``w``).
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
  at::Tensor wn, scale, dfac;  // (T, O, R), (T, O), (T, O, R)
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

// Row helpers: restrict-qualified parameters let GCC vectorise the loops (gathers included).
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
    dr[r] = sg * sg * ((hi - lo) * pm1) * inv;
  }
}

void abs_row(const float* __restrict wr, float* __restrict tmp, int64_t len, float s) {
  for (int64_t r = 0; r < len; ++r) tmp[r] = std::fabs(wr[r]) * s;
}

void plain_row(const float* __restrict row, float* __restrict wr, float* __restrict dr, int64_t len, float s) {
  const float inv = 1.0f / s;
  for (int64_t r = 0; r < len; ++r) { wr[r] = row[r] / s; dr[r] = inv; }
}

void sd_row(const float* __restrict row, const float* __restrict st, float* __restrict sb, int64_t len, float s,
            float ns, float ps1) {
  for (int64_t r = 0; r < len; ++r) sb[r] = ns * st[(int32_t)std::nearbyint(std::min(std::fabs(row[r]) / s, 1.0f) * ps1)];
}

void finish_row(float* __restrict wr, float* __restrict dr, const float* __restrict sb, const float* __restrict zr,
                int64_t len, float gdc) {
  if (sb) {
    for (int64_t r = 0; r < len; ++r) { wr[r] = wr[r] * gdc + sb[r] * zr[r]; dr[r] = dr[r] * gdc; }
  } else {
    for (int64_t r = 0; r < len; ++r) { wr[r] = wr[r] * gdc; dr[r] = dr[r] * gdc; }
  }
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

// See the module doc. w: (O, I) f32 contiguous.
Weights weights_impl(const at::Tensor& w, int64_t T, int64_t R, const c10::optional<at::Tensor>& mean_tab,
                     const c10::optional<at::Tensor>& sd_tab, double noise_scale, double sd_const, uint64_t seed,
                     const c10::optional<at::Tensor>& delta = c10::nullopt) {
  const int64_t O = w.size(0), I = w.size(1), n = T * O * R;
  const bool padded = T * R != I;  // rows past in_features stay zero
  auto wn = padded ? at::zeros({T, O, R}, w.options()) : at::empty({T, O, R}, w.options());
  auto dfac = padded ? at::zeros({T, O, R}, w.options()) : at::empty({T, O, R}, w.options());
  auto scale = at::empty({T, O}, w.options());
  const float* wp = w.data_ptr<float>();
  float* np_ = wn.data_ptr<float>();
  float* dp = dfac.data_ptr<float>();
  float* sp = scale.data_ptr<float>();
  for (int64_t t = 0; t < T; ++t) {
    const int64_t len = std::min<int64_t>(R, I - t * R);
    for (int64_t o = 0; o < O; ++o) {
      const float* row = wp + o * I + t * R;
      float m = 0.f;
      for (int64_t r = 0; r < len; ++r) m = std::max(m, std::fabs(row[r]));
      sp[t * O + o] = std::max(m, 1e-12f);
    }
  }
  const bool drift = mean_tab.has_value() && mean_tab->defined();
  const bool noisy = noise_scale > 0.0;
  const bool table = noisy && sd_tab.has_value() && sd_tab->defined();
  const float* __restrict mt = drift ? mean_tab->data_ptr<float>() : nullptr;
  const float* __restrict st = table ? sd_tab->data_ptr<float>() : nullptr;
  const int32_t PM = drift ? (int32_t)mean_tab->numel() : 2, PS = table ? (int32_t)sd_tab->numel() : 1;
  const float pm1 = (float)(PM - 1), ps1 = (float)(PS - 1), ns = (float)noise_scale;
  std::vector<float> sdb(noisy ? n : 0), tmp(R);
  double before = 0.0, after = 0.0;
  for (int64_t o = 0; o < O; ++o) {
    float bo = 0.f, ao = 0.f;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t len = std::min<int64_t>(R, I - t * R), base = (t * O + o) * R;
      const float s = sp[t * O + o];
      const float* row = wp + o * I + t * R;
      float* wr = np_ + base;
      float* dr = dp + base;
      if (drift) {
        drift_row(row, mt, wr, dr, len, s, pm1, PM);
        abs_row(row, tmp.data(), len, 1.0f);
        bo += sum8(tmp.data(), len);
        abs_row(wr, tmp.data(), len, s);
        ao += sum8(tmp.data(), len);
      } else {
        plain_row(row, wr, dr, len, s);
      }
      if (noisy) {
        float* sb = sdb.data() + base;
        if (table) {
          sd_row(row, st, sb, len, s, ns, ps1);
        } else {
          std::fill(sb, sb + len, (float)(noise_scale * sd_const));
        }
      }
    }
    before += (double)bo;
    after += (double)ao;
  }
  const float gdc = drift ? (float)(before / std::max(after, 1e-30)) : 1.0f;
  std::vector<float> z(noisy ? n : 0);
  if (noisy) fill_normal_at(mix64(seed ^ KEY_W), 0, n, z.data());
  const bool has_delta = delta.has_value() && delta->defined();
  if (has_delta) TORCH_CHECK(delta->is_contiguous() && delta->scalar_type() == at::kFloat && delta->numel() == O * I,
                             "delta must be a contiguous float32 (O, I) tensor");
  const float* dl = has_delta ? delta->data_ptr<float>() : nullptr;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t len = std::min<int64_t>(R, I - t * R);
    for (int64_t o = 0; o < O; ++o) {
      const int64_t base = (t * O + o) * R;
      float* wr = np_ + base;
      float* dr = dp + base;
      if (noisy || drift) finish_row(wr, dr, noisy ? sdb.data() + base : nullptr, noisy ? z.data() + base : nullptr, len, gdc);
      if (dl) {
        const float* __restrict dd = dl + o * I + t * R;
        for (int64_t r = 0; r < len; ++r) wr[r] += dd[r];
      }
    }
  }
  return {wn, scale, dfac};
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

// Linear training read: x (B, I) -> out (B, O). Returns
// {out, xq (T, B, R), amax (B), inside (T, B, O) u8, pre (B, O), wn, scale, dfac, gain}.
std::vector<torch::Tensor> hat_linear_fwd(torch::Tensor x, torch::Tensor w, torch::Tensor gdc, torch::Tensor out_gain,
                                          c10::optional<torch::Tensor> bias, int64_t T, int64_t R,
                                          c10::optional<torch::Tensor> mean_tab, c10::optional<torch::Tensor> sd_tab,
                                          double noise_scale, double sd_const, double r_in, int64_t dac, double bound,
                                          double lsb, double out_sd, bool quant, int64_t seed, bool keep_pre,
                                          c10::optional<torch::Tensor> delta) {
  check_f32(x, "x"); check_f32(w, "w");
  const auto gain = (gdc * out_gain).contiguous();  // drift compensation x per-column gains
  const int64_t B = x.size(0), I = x.size(1), O = w.size(0);
  TORCH_CHECK(w.numel() == O * I, "w must have in_features = ", I, " columns");
  auto W = weights_impl(w.view({O, I}), T, R, mean_tab, sd_tab, noise_scale, sd_const, (uint64_t)seed, delta);
  auto xq = T * R != I ? at::zeros({T, B, R}, x.options()) : at::empty({T, B, R}, x.options());
  auto amax = at::empty({B}, x.options());
  const float* xp = x.data_ptr<float>();
  float* qp = xq.data_ptr<float>();
  float* ap = amax.data_ptr<float>();
  const int64_t dq = quant ? dac : -1;
  for (int64_t b = 0; b < B; ++b) {
    const float* xr = xp + b * I;
    float am = (float)r_in;
    if (r_in <= 0.0) {
      float m = 0.f;
      for (int64_t i = 0; i < I; ++i) m = std::max(m, std::fabs(xr[i]));
      am = std::max(m, 1e-12f);
    }
    ap[b] = am;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t len = std::min<int64_t>(R, I - t * R);
      float* q = qp + (t * B + b) * R;
      dac_row(xr + t * R, q, len, am, dq);
    }
  }
  auto y = (T == 1 ? at::mm(xq[0], W.wn[0].t()).unsqueeze(0) : at::bmm(xq, W.wn.transpose(1, 2))).contiguous();  // (T, B, O)
  const float sd = quant ? (float)out_sd : 0.f;
  std::vector<float> z;
  if (sd > 0.f) { z.resize(T * B * O); fill_normal_at(mix64((uint64_t)seed ^ KEY_Y), 0, T * B * O, z.data()); }
  auto out = at::empty({B, O}, x.options());
  at::Tensor pre = keep_pre ? at::empty({B, O}, x.options()) : at::Tensor();
  const float bnd = (float)bound, ls = quant ? (float)lsb : 0.f;
  const float* sc = W.scale.data_ptr<float>();
  const float* gp = gain.data_ptr<float>();
  const float* bp = opt_ptr(bias);
  float* op = out.data_ptr<float>();
  float* pp = keep_pre ? pre.data_ptr<float>() : nullptr;
  const float* ym = y.data_ptr<float>();
  auto inside = at::empty({T, B, O}, x.options().dtype(at::kByte));  // the gradient mask
  uint8_t* ip = inside.data_ptr<uint8_t>();
  std::vector<float> acc(O), sdv(O, sd);
  for (int64_t b = 0; b < B; ++b) {
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i0 = (t * B + b) * O;
      adc_row_any<true>(false, sd > 0.f, ls > 0.f, ym + i0, ip + i0, nullptr, 1.f, sd > 0.f ? z.data() + i0 : nullptr,
                        sdv.data(), 0.f, sc + t * O, 0.f, bnd, ls, acc.data(), O);
    }
    for (int64_t o = 0; o < O; ++o) {
      const float p = acc[o] * ap[b];
      if (pp) pp[b * O + o] = p;
      op[b * O + o] = p * gp[o] + (bp ? bp[o] : 0.f);
    }
  }
  return {out, xq, amax, inside, pre, W.wn, W.scale, W.dfac, gain};
}

// Backward of hat_linear_fwd: {gx, gw, gbias, ggain, gr, gdelta} (undefined where not needed).
std::vector<torch::Tensor> hat_linear_bwd(torch::Tensor gout, torch::Tensor x, torch::Tensor xq, torch::Tensor amax,
                                          torch::Tensor inside, c10::optional<torch::Tensor> pre_, torch::Tensor wn,
                                          torch::Tensor scale, torch::Tensor dfac, torch::Tensor gain, double r_in,
                                          bool need_x, bool need_w, bool need_bias, bool need_gain, bool need_r,
                                          bool need_delta) {
  const at::Tensor pre = pre_.has_value() ? *pre_ : at::Tensor();  // kept only for the gain / range gradients
  gout = gout.contiguous();
  const int64_t T = wn.size(0), O = wn.size(1), R = wn.size(2), B = x.size(0), I = x.size(1);
  auto gy = at::empty({T, B, O}, gout.options());
  const float* go = gout.data_ptr<float>();
  const float* gp = gain.data_ptr<float>();
  const float* ap = amax.data_ptr<float>();
  const float* sc = scale.data_ptr<float>();
  const uint8_t* ip = inside.data_ptr<uint8_t>();
  float* yp = gy.data_ptr<float>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t o = 0; o < O; ++o) {
        const int64_t i = (t * B + b) * O + o;
        yp[i] = (float)ip[i] * (go[b * O + o] * gp[o] * ap[b] * sc[t * O + o]);
      }
  at::Tensor gx, gw, gb, gg, gr, gd;
  const bool learned = r_in > 0.0;
  if (need_x || (need_r && learned)) {
    auto gxq = T == 1 ? at::mm(gy[0], wn[0]).unsqueeze(0) : at::bmm(gy, wn);  // (T, B, R)
    const float* qp = gxq.data_ptr<float>();
    const float* xp = x.data_ptr<float>();
    gx = at::empty({B, I}, x.options());
    float* xg = gx.data_ptr<float>();
    const float r = (float)r_in;
    double sr = 0.0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        const int64_t len = std::min<int64_t>(R, I - t * R);
        const float* q = qp + (t * B + b) * R;
        for (int64_t k = 0; k < len; ++k) {
          const int64_t i = b * I + t * R + k;
          if (learned) {
            const float xn = xp[i] / r;
            const float m = (xn >= -1.f && xn <= 1.f) ? 1.f : 0.f;
            xg[i] = q[k] * m / r;
            sr += (double)(q[k] * m) * (double)(-xp[i] / (r * r));
          } else {
            xg[i] = q[k] / ap[b];
          }
        }
      }
    if (learned && need_r) {
      double s2 = 0.0;
      const float* pp = pre.data_ptr<float>();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t o = 0; o < O; ++o) s2 += (double)(go[b * O + o] * gp[o]) * (double)pp[b * O + o];
      gr = at::full({}, sr + s2 / r, x.options());
    }
    if (!need_x) gx = at::Tensor();
  }
  if (need_w || need_delta) {
    auto gwn = (T == 1 ? at::mm(gy[0].t(), xq[0]).unsqueeze(0) : at::bmm(gy.transpose(1, 2), xq)).contiguous();  // (T, O, R)
    if (need_w) gw = weight_grad(gwn, dfac, O, I, false, T, R);
    if (need_delta) gd = weight_grad(gwn, at::Tensor(), O, I, false, T, R);
  }
  if (need_bias) gb = gout.sum(0);
  if (need_gain) gg = (gout * pre).sum(0);
  return {gx, gw, gb, gg, gr, gd};
}

"""

FUNCTIONS = ("hat_weights", "hat_linear_fwd", "hat_linear_bwd")
