"""C++ source of the tile read's two passes around the matmuls: the DAC pre-pass (input
scaling, DAC codes, their squares for the noise variance) and the fused noise + ADC +
post-scale kernel (see :mod:`aimc.tiles.fused` for their semantics and the Python entry
points)."""

SOURCE = r"""
#include <limits>

namespace {

constexpr int64_t CH = 512;  // n-elements per block row chunk (multiple of 16)

template <typename VT>
static inline float to_f(VT v) { return (float)v; }
template <>
inline float to_f<at::BFloat16>(at::BFloat16 v) { return as_float(((uint32_t)v.x) << 16); }
// A read-noise variance code (aimc.tiles.fused.encode_var): an unsigned float with 4 exponent
// and 4 mantissa bits, k -> 2^(e - 15) (1 + m / 16) for k = 16 e + m >= 1 (bits of a float32
// shifted into place), 0 for k = 0.
template <>
inline float to_f<uint8_t>(uint8_t k) { return k ? as_float(((uint32_t)k << 19) + (112u << 23)) : 0.0f; }

template <typename VT, bool HAS_VAR, bool NOISY, bool ADC>
void kernel(const float* __restrict y, const VT* __restrict var, float out_var, const float* __restrict post,
            float cm, uint64_t key, int64_t T, int64_t B, int64_t N, int64_t G, const float* __restrict rs,
            const float* __restrict cs, const float* __restrict bias, float* __restrict out,
            uint8_t* __restrict satblk) {
  const int64_t nch = (N + CH - 1) / CH;
  const int64_t NG = N / G;  // columns of one logical row (G logical rows side by side per row)
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
      // each step rounded as the separate PyTorch ops would round it; a run is the part
      // of one logical row (row b * G + (n0 + n) / NG, columns from (n0 + n) % NG) in the chunk
      for (int64_t n = 0; n < len;) {
        const int64_t col = (n0 + n) % NG, run = std::min<int64_t>(len - n, NG - col);
        float* __restrict a = acc + n;
        if (rs != nullptr) {
          const float r = rs[b * G + (n0 + n) / NG];
          for (int64_t j = 0; j < run; ++j) a[j] = a[j] * r;
        }
        if (cs != nullptr)
          for (int64_t j = 0; j < run; ++j) a[j] = a[j] * cs[col + j];
        if (bias != nullptr)
          for (int64_t j = 0; j < run; ++j) a[j] = a[j] + bias[col + j];
        n += run;
      }
      for (int64_t n = 0; n < len; ++n) o[n] = acc[n];
      satblk[blk] = (uint8_t)(sat != 0);
    }
  });
}

template <typename VT, bool HAS_VAR>
void dispatch_noise(bool noisy, bool adc, const float* y, const VT* var, float out_var, const float* post,
                    float cm, uint64_t key, int64_t T, int64_t B, int64_t N, int64_t G, const float* rs,
                    const float* cs, const float* bias, float* out, uint8_t* satblk) {
  if (noisy) {
    if (adc) kernel<VT, HAS_VAR, true, true>(y, var, out_var, post, cm, key, T, B, N, G, rs, cs, bias, out, satblk);
    else kernel<VT, HAS_VAR, true, false>(y, var, out_var, post, cm, key, T, B, N, G, rs, cs, bias, out, satblk);
  } else {
    if (adc) kernel<VT, false, false, true>(y, nullptr, 0.f, post, cm, key, T, B, N, G, rs, cs, bias, out, satblk);
    else kernel<VT, false, false, false>(y, nullptr, 0.f, post, cm, key, T, B, N, G, rs, cs, bias, out, satblk);
  }
}

// DAC of one input row b: |x| max (NaN when the row holds NaN or Inf), the scale used
// (given, or the abs-max with 0 -> 1), codes = round(clamp(x / scale, -1, 1) * levels)
// (no rounding when levels < 0) and optionally bf16(codes^2), written tile by tile to
// c[t * ts + r] (ts = B * R: the (T, B, R) layout of the matmuls), zero past K.
void tile_dac_row(const float* __restrict xr, int64_t K, int64_t T, int64_t R, int64_t ts, const float* given,
                  float levels, bool round, float* __restrict amax, float* __restrict used, float* __restrict c,
                  at::BFloat16* __restrict q) {
  // abs-max in 16 lanes (GCC vectorises them; a max is exact, so any order gives the same m)
  float mv[16] = {};
  int32_t bv[16] = {};
  int64_t k = 0;
  for (; k + 16 <= K; k += 16)
    for (int64_t l = 0; l < 16; ++l) {
      const float a = std::fabs(xr[k + l]);
      bv[l] |= (int32_t)!(a <= std::numeric_limits<float>::max());
      mv[l] = a > mv[l] ? a : mv[l];
    }
  float m = 0.0f;
  int32_t bad = 0;
  for (int64_t l = 0; l < 16; ++l) {
    bad |= bv[l];
    m = mv[l] > m ? mv[l] : m;
  }
  for (; k < K; ++k) {
    const float a = std::fabs(xr[k]);
    bad |= (int32_t)!(a <= std::numeric_limits<float>::max());
    m = a > m ? a : m;
  }
  *amax = bad ? std::numeric_limits<float>::quiet_NaN() : m;
  const float s = given != nullptr ? *given : (m > 0.0f ? m : 1.0f);
  *used = s;
  for (int64_t t = 0; t < T; ++t) {
    const float* __restrict xt = xr + t * R;
    float* __restrict ct = c + t * ts;
    const int64_t n = std::max<int64_t>(0, std::min<int64_t>(R, K - t * R));
    for (int64_t r = 0; r < n; ++r) {
      float v = xt[r] / s;
      v = v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
      if (round) v = std::nearbyint(v * levels);
      ct[r] = v;
    }
    for (int64_t r = n; r < R; ++r) ct[r] = 0.0f;
    if (q != nullptr) {
      at::BFloat16* __restrict qt = q + t * ts;
      for (int64_t r = 0; r < R; ++r) qt[r] = at::BFloat16(ct[r] * ct[r]);  // round to nearest even, as Tensor.to
    }
  }
}

}  // namespace

std::vector<torch::Tensor> fused_noise_adc(torch::Tensor y, c10::optional<torch::Tensor> var, double out_var,
                                           torch::Tensor post, int64_t code_max, int64_t seed,
                                           c10::optional<torch::Tensor> row_scale,
                                           c10::optional<torch::Tensor> col_scale, c10::optional<torch::Tensor> bias,
                                           int64_t group, c10::optional<torch::Tensor> out_buf) {
  TORCH_CHECK(y.device().is_cpu() && y.scalar_type() == at::kFloat && y.dim() == 3 && y.is_contiguous(),
              "y must be a contiguous float32 CPU tensor (T, B, N)");
  const int64_t T = y.size(0), B = y.size(1), N = y.size(2), G = group;
  TORCH_CHECK(G >= 1 && N % G == 0, "group must be >= 1 and divide y.size(2)");
  TORCH_CHECK(post.scalar_type() == at::kFloat && post.is_contiguous() && post.numel() == T * N,
              "post must be a contiguous float32 tensor (T, 1, N)");
  const bool has_var = var.has_value() && var->defined();
  if (has_var) {
    TORCH_CHECK(var->is_contiguous() && var->sizes() == y.sizes(), "var must be contiguous with y's shape");
    TORCH_CHECK(var->scalar_type() == at::kBFloat16 || var->scalar_type() == at::kFloat, "var must be bf16 or f32");
  }
  const bool has_rs = row_scale.has_value() && row_scale->defined();
  if (has_rs)
    TORCH_CHECK(row_scale->scalar_type() == at::kFloat && row_scale->is_contiguous() && row_scale->numel() == B * G,
                "row_scale must be a contiguous float32 tensor of B * group elements");
  const float* rs = has_rs ? row_scale->data_ptr<float>() : nullptr;
  const float* cs = nullptr;
  const float* bp = nullptr;
  if (col_scale.has_value() && col_scale->defined()) {
    TORCH_CHECK(col_scale->scalar_type() == at::kFloat && col_scale->is_contiguous() && col_scale->numel() == N / G,
                "col_scale must be a contiguous float32 tensor of N / group elements");
    cs = col_scale->data_ptr<float>();
  }
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK(bias->scalar_type() == at::kFloat && bias->is_contiguous() && bias->numel() == N / G,
                "bias must be a contiguous float32 tensor of N / group elements");
    bp = bias->data_ptr<float>();
  }
  const bool noisy = has_var || out_var != 0.0;
  const bool adc = code_max >= 0;
  const float cm = adc ? (float)code_max : 0.f;
  const uint64_t key = mix64((uint64_t)seed ^ 0x6A09E667F3BCC909ULL);
  torch::Tensor out;
  if (out_buf.has_value() && out_buf->defined()) {  // written in place (e.g. one group's rows of a larger output)
    out = *out_buf;
    TORCH_CHECK(out.scalar_type() == at::kFloat && out.is_contiguous() && out.numel() == B * N,
                "out must be a contiguous float32 tensor of ", B * N, " elements");
  } else {
    out = torch::empty({B, N}, y.options());
  }
  const int64_t nch = (N + CH - 1) / CH;
  auto satblk = torch::zeros({B, nch}, y.options().dtype(at::kByte));
  const float* yp = y.data_ptr<float>();
  const float* pp = post.data_ptr<float>();
  float* op = out.data_ptr<float>();
  uint8_t* sp = satblk.data_ptr<uint8_t>();
  if (B * N > 0) {
    if (has_var && var->scalar_type() == at::kBFloat16)
      dispatch_noise<at::BFloat16, true>(noisy, adc, yp, var->data_ptr<at::BFloat16>(), (float)out_var, pp, cm, key, T, B, N, G, rs, cs, bp, op, sp);
    else if (has_var)
      dispatch_noise<float, true>(noisy, adc, yp, var->data_ptr<float>(), (float)out_var, pp, cm, key, T, B, N, G, rs, cs, bp, op, sp);
    else
      dispatch_noise<float, false>(noisy, adc, yp, nullptr, (float)out_var, pp, cm, key, T, B, N, G, rs, cs, bp, op, sp);
  }
  auto sat = nch > 0 ? satblk.amax(1).to(at::kBool) : torch::zeros({B}, y.options().dtype(at::kBool));
  return {out, sat};
}

// DAC pre-pass of a read (see aimc.tiles.fused.dac_prepass): one pass over x (B, K) ->
// codes (T, B, R), bf16 squares (T, B, R) or an empty tensor, row abs-max (B,), scale used (B,).
// Serial below 2^22 elements: an OpenMP region costs more than it saves on a busy machine.
std::vector<torch::Tensor> dac_prepass(torch::Tensor x, c10::optional<torch::Tensor> scale, int64_t levels,
                                       int64_t T, int64_t R, bool squares) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 2 && x.is_contiguous(),
              "x must be a contiguous 2-D float32 CPU tensor (B, K)");
  const int64_t B = x.size(0), K = x.size(1);
  TORCH_CHECK(T >= 0 && R > 0 && T * R >= K, "tiles * rows must be >= x.size(1)");
  const bool given = scale.has_value() && scale->defined();
  if (given)
    TORCH_CHECK(scale->scalar_type() == at::kFloat && scale->is_contiguous() && scale->numel() == B,
                "scale must be a contiguous float32 tensor of B elements");
  auto codes = torch::empty({T, B, R}, x.options());
  auto sq = squares ? torch::empty({T, B, R}, x.options().dtype(at::kBFloat16)) : torch::empty({0}, x.options());
  auto amax = torch::empty({B}, x.options()), used = torch::empty({B}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* sp = given ? scale->data_ptr<float>() : nullptr;
  float* cp = codes.data_ptr<float>();
  at::BFloat16* qp = squares ? sq.data_ptr<at::BFloat16>() : nullptr;
  float* ap = amax.data_ptr<float>();
  float* up = used.data_ptr<float>();
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 22) / (T * R));
  at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      tile_dac_row(xp + b * K, K, T, R, B * R, given ? sp + b : nullptr, (float)levels, levels >= 0, ap + b, up + b,
                   cp + b * R, qp != nullptr ? qp + b * R : nullptr);
  });
  return {codes, sq, amax, used};
}

// Small-batch tile matmul: out[t, b, n] = sum_r x[t, b, r] * w[t, r, n], fp32 accumulation
// over r in ascending order (products rounded, no FMA); x and w each float32 or bfloat16
// (or w uint8 variance codes with bfloat16 x).
// For few input vectors (token-by-token decoding) a matmul streams w once and is bound by
// memory: this reads each w row once per block of 2048 columns for all B vectors and skips
// the rows whose input is zero (the padding rows of a layer's last tile).
template <typename XT, typename WT>
void small_bmm_impl(const XT* __restrict xp, const WT* __restrict wp, float* __restrict op, int64_t T, int64_t B,
                    int64_t R, int64_t N) {
  constexpr int64_t NC = 2048;
  const int64_t nch = (N + NC - 1) / NC;
  at::parallel_for(0, T * nch, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t t = blk / nch, n0 = (blk % nch) * NC, len = std::min<int64_t>(NC, N - n0);
      for (int64_t r = 0; r < R; ++r) {
        const WT* __restrict row = wp + (t * R + r) * N + n0;
        for (int64_t b = 0; b < B; ++b) {
          const float c = to_f<XT>(xp[(t * B + b) * R + r]);
          if (c == 0.0f) continue;
          float* __restrict o = op + (t * B + b) * N + n0;
          for (int64_t n = 0; n < len; ++n) o[n] += c * to_f<WT>(row[n]);
        }
      }
    }
  });
}

torch::Tensor small_bmm(torch::Tensor x, torch::Tensor w) {
  TORCH_CHECK(x.dim() == 3 && w.dim() == 3 && x.size(0) == w.size(0) && x.size(2) == w.size(1),
              "small_bmm: x (T, B, R) and w (T, R, N) expected");
  auto xc = x.contiguous(), wc = w.contiguous();
  const int64_t T = xc.size(0), B = xc.size(1), R = xc.size(2), N = wc.size(2);
  auto out = torch::zeros({T, B, N}, torch::dtype(torch::kFloat));
  float* op = out.data_ptr<float>();
  const bool xb = xc.scalar_type() == at::kBFloat16, wb = wc.scalar_type() == at::kBFloat16;
  if (xb && wc.scalar_type() == at::kByte) {  // bf16 squares of codes @ variance codes
    small_bmm_impl(xc.data_ptr<at::BFloat16>(), wc.data_ptr<uint8_t>(), op, T, B, R, N);
    return out;
  }
  TORCH_CHECK((xb || xc.scalar_type() == at::kFloat) && (wb || wc.scalar_type() == at::kFloat),
              "small_bmm: float32 or bfloat16 tensors (or bfloat16 x with uint8 variance codes) expected");
  if (xb && wb) small_bmm_impl(xc.data_ptr<at::BFloat16>(), wc.data_ptr<at::BFloat16>(), op, T, B, R, N);
  else if (xb) small_bmm_impl(xc.data_ptr<at::BFloat16>(), wc.data_ptr<float>(), op, T, B, R, N);
  else if (wb) small_bmm_impl(xc.data_ptr<float>(), wc.data_ptr<at::BFloat16>(), op, T, B, R, N);
  else small_bmm_impl(xc.data_ptr<float>(), wc.data_ptr<float>(), op, T, B, R, N);
  return out;
}

// The kernel's standard normals z[i] for i in [start, start + n) (tests and diagnostics).
torch::Tensor normal_stream(int64_t seed, int64_t start, int64_t n) {
  TORCH_CHECK(start >= 0 && n >= 0, "start and n must be >= 0");
  const uint64_t key = mix64((uint64_t)seed ^ 0x6A09E667F3BCC909ULL);
  auto out = torch::empty({n}, torch::dtype(torch::kFloat));
  float* o = out.data_ptr<float>();
  const int64_t per = 1 << 14;
  at::parallel_for(0, (n + per - 1) / per, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t i0 = start + blk * per;
      fill_normal_at(key, i0, std::min<int64_t>(per, start + n - i0), o + (i0 - start));
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

FUNCTIONS = ("fused_noise_adc", "dac_prepass", "small_bmm", "normal_stream", "log_approx_t", "sincos_turns24_t")
