"""C++ source of the tile read's fused noise + ADC + post-scale kernel (see
:mod:`aimc.tiles.fused` for its semantics and the Python entry points)."""

SOURCE = r"""
namespace {

constexpr int64_t CH = 512;  // n-elements per block row chunk (multiple of 16)

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

FUNCTIONS = ("fused_noise_adc", "normal_stream", "log_approx_t", "sincos_turns24_t")
