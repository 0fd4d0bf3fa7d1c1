"""C++ source of the fused programming and read-matrix pass of PCM devices (semantics and
Python entry points: :mod:`aimc.tiles.progfused`).

``pcm_draw_block`` programs one block of devices: per device ``i`` (flat index of the
block's state ``(S, 2, TT, R, c)``) two standard normals from the counter-based generator
of :mod:`aimc.cpp.rng`, ``z_prog = z[2i]`` and ``z_nu = z[2i + 1]`` of the block's key,
and the formulas of :class:`~aimc.physics.pcm.PCM` / ``PCMHermes`` ``program`` (programming
noise, drift exponent), padding rows at 0 S without drift.

``pcm_read_block`` turns one block's state into its columns of the read matrices at one
time: drift ``g (t/t0)^-nu``, first-order IR drop on each physical tile, the effective
weights ``(G+_eff - G-_eff) * unit / dg`` and the read-noise variances
``(sd+^2 + sd-^2) (unit / dg)^2`` of the 1/f read noise, written straight into the output
matrices (float32 or bfloat16, rounded to nearest even as ``Tensor.to`` does).

Every float operation is that of the PyTorch path, in the same order and precision
(float32 elementwise, no FMA contraction; the cumulative sums of the IR drop accumulate in
float64 and round each partial sum to float32 as ATen's CPU ``cumsum`` does), except the
transcendental functions: log and exp are branch-free float32 polynomials (Cephes
``logf``/``expf``), within ~1 ulp of ATen's. So without noise the read matrices equal the
PyTorch path's bit for bit wherever no log/exp result enters (tests), and within float32
rounding elsewhere.
"""

_KERNEL = r"""
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

// exp for float32 (Cephes expf): n = round(x log2 e), r = x - n ln2 (two parts), a degree-5
// polynomial, times 2^n; 0 below -87.3, +inf above 88.7.
static inline float exp_approx(float x) {
  const float xc = std::min(std::max(x, -87.3365447505f), 88.7228391117f);
  const float n = std::nearbyint(xc * 1.44269504088896341f);
  float r = std::fma(n, -0.693359375f, xc);
  r = std::fma(n, 2.12194440e-4f, r);
  const float z = r * r;
  float p = 1.9875691500E-4f;
  p = std::fma(p, r, 1.3981999507E-3f);
  p = std::fma(p, r, 8.3334519073E-3f);
  p = std::fma(p, r, 4.1665795894E-2f);
  p = std::fma(p, r, 1.6666665459E-1f);
  p = std::fma(p, r, 5.0000001201E-1f);
  float y = std::fma(p, z, r) + 1.0f;
  const int32_t ni = (int32_t)n;
  const int32_t n1 = ni / 2, n2 = ni - n1;  // 2^n in two factors (n = 128 or -126 stay finite)
  y = y * as_float((uint32_t)(n1 + 127) << 23) * as_float((uint32_t)(n2 + 127) << 23);
  return x < -87.3365447505f ? 0.0f : (x > 88.7228391117f ? INFINITY : y);
}

// Parameters (doubles, the layout of aimc.tiles.progfused.kernel_params).
enum : int {
  P_GMAX = 0, P_PROG_N = 1, P_PROG = 2, P_PROG_MULT = 8, P_PROG_SCALE = 9,
  P_DM = 10, P_DS = 22, P_DRIFT_SCALE = 34, P_QFORM = 35, P_QS = 36, P_QEXP = 37, P_QMIN = 38, P_QMAX = 39,
  P_Q = 40, P_LEN = 52
};
// a piecewise fit at p: break, a, b, lo, hi, n, coeffs[6]: clamp(a ln x + b, lo, hi) for x < break, else poly(x)

constexpr int64_t CK = 256;  // elements per chunk of the elementwise loops

// out = poly(x) (Horner as aimc.physics.pcm.polynomial: c_last, then out * x + c_k)
static inline void horner(const float* __restrict x, float* __restrict out, int64_t n, const double* c, int nc) {
  const float cl = (float)c[nc - 1];
  for (int64_t i = 0; i < n; ++i) out[i] = cl;
  for (int k = nc - 2; k >= 0; --k) {
    const float ck = (float)c[k];
    for (int64_t i = 0; i < n; ++i) out[i] = out[i] * x[i] + ck;
  }
}

// out = where(x < brk, clamp(a lx + b, lo, hi), poly(x)); lx = ln(max(x, 1e-7))
static inline void piecewise(const float* __restrict x, const float* __restrict lx, float* __restrict out,
                             float* __restrict tmp, int64_t n, const double* p) {
  const float brk = (float)p[0], a = (float)p[1], b = (float)p[2], lo = (float)p[3], hi = (float)p[4];
  horner(x, tmp, n, p + 6, (int)p[5]);
  for (int64_t i = 0; i < n; ++i) {
    const float low = std::min(std::max(a * lx[i] + b, lo), hi);
    out[i] = x[i] < brk ? low : tmp[i];
  }
}

static inline void log_clamped(const float* __restrict x, float* __restrict lx, int64_t n) {
  const float floor_ = 1e-7f;
  for (int64_t i = 0; i < n; ++i) lx[i] = log_approx(std::max(x[i], floor_));
}

// Q_s(g) of the programmed conductances g (>= 0) into q
static inline void read_q(const float* __restrict g, float* __restrict q, float* __restrict x, float* __restrict lx,
                          float* __restrict tmp, int64_t n, const double* P) {
  const float gmax = (float)P[P_GMAX];
  for (int64_t i = 0; i < n; ++i) x[i] = g[i] / gmax;
  if (P[P_QFORM] == 0.0) {  // PCM: min(q_s / max(x^e, qmin), qmax)
    const float qs = (float)P[P_QS], e = (float)P[P_QEXP], qmin = (float)P[P_QMIN], qmax = (float)P[P_QMAX];
    for (int64_t i = 0; i < n; ++i) {
      // x^e as torch.pow: 0^e = 0 (1 for e = 0); below 1e-30, (1e-30)^e (then far below qmin)
      const float pw = x[i] == 0.0f ? (e == 0.0f ? 1.0f : 0.0f) : exp_approx(e * log_approx(std::max(x[i], 1e-30f)));
      q[i] = std::min(qs / std::max(pw, qmin), qmax);
    }
  } else {
    log_clamped(x, lx, n);
    piecewise(x, lx, q, tmp, n, P + P_Q);
  }
}

static inline uint16_t to_bf16(float f) {
  const uint32_t u = as_bits(f);
  if (std::isnan(f)) return 0x7FC0;
  return (uint16_t)((u + (((u >> 16) & 1u) + 0x7FFFu)) >> 16);
}
static inline void store(float* o, float v) { *o = v; }
static inline void store(at::BFloat16* o, float v) { o->x = to_bf16(v); }

void draw_rows(const float* __restrict gt, const int64_t* st, const bool* __restrict used, uint64_t key, int64_t SP,
               int64_t TT, int64_t R, int64_t nb, const double* P, float* __restrict g, float* __restrict nu) {
  const int64_t rows = SP * TT * R, nch = (nb + CK - 1) / CK;
  at::parallel_for(0, rows * nch, 16, [&](int64_t b0, int64_t b1) {
    alignas(64) float zc[CK], zs[CK], x[CK], lx[CK], sd[CK], mu[CK], tmp[CK];
    const float gmax = (float)P[P_GMAX], m1 = (float)P[P_PROG_MULT], m2 = (float)P[P_PROG_SCALE];
    const float dscale = (float)P[P_DRIFT_SCALE];
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t row = blk / nch, j0 = (blk % nch) * CK, n = std::min<int64_t>(CK, nb - j0);
      const int64_t i0 = row * nb + j0;
      float* __restrict go = g + i0;
      float* __restrict no = nu + i0;
      if (!used[row % (TT * R)]) {
        for (int64_t i = 0; i < n; ++i) { go[i] = 0.0f; no[i] = 0.0f; }
        continue;
      }
      const int64_t sp = row / (TT * R), tt = (row / R) % TT, r = row % R;  // (s, p) flat, tile, row
      const float* __restrict t = gt + (sp / 2) * st[0] + (sp % 2) * st[1] + tt * st[2] + r * st[3] + j0;
      gen_normal_pairs(key, (uint64_t)i0, n, zc, zs);
      for (int64_t i = 0; i < n; ++i) x[i] = t[i] / gmax;
      horner(x, sd, n, P + P_PROG, (int)P[P_PROG_N]);
      for (int64_t i = 0; i < n; ++i) {
        const float std_ = sd[i] * m1 * m2;
        go[i] = std::max(t[i] + std_ * zc[i], 0.0f);
      }
      log_clamped(x, lx, n);
      piecewise(x, lx, mu, tmp, n, P + P_DM);
      piecewise(x, lx, sd, tmp, n, P + P_DS);
      for (int64_t i = 0; i < n; ++i) no[i] = std::max(mu[i] + sd[i] * zs[i], 0.0f) * dscale;
    }
  });
}

// dst (nc x nr; row stride ds) = src (nr x nc; row stride ss)^T for nr, nc <= 16 (AVX-512 shuffles for a
// full 16 x 16 block where available; pure data movement, so both paths give the same bits).
static inline void transpose16(const float* __restrict src, int64_t ss, float* __restrict dst, int64_t ds, int64_t nr,
                               int64_t nc) {
#if defined(__AVX512F__)
  if (nr == 16 && nc == 16) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * ss);
    for (int i = 0; i < 8; ++i) {
      t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {
      const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
      const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
      r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
      r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
      r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
      r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < 4; ++i) {
        t[8 * h + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0x88);
        t[8 * h + 4 + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0xdd);
      }
    for (int i = 0; i < 8; ++i) {
      r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
      r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
    }
    for (int i = 0; i < 16; ++i) _mm512_storeu_ps(dst + i * ds, r[i]);
    return;
  }
#endif
  for (int64_t i = 0; i < nr; ++i)
    for (int64_t j = 0; j < nc; ++j) dst[j * ds + i] = src[i * ss + j];
}

// One physical tile of one polarity, row-major G (R x W): G <- G - s (D + K) (first-order IR drop,
// aimc.physics.circuit.effective_conductance_first_order with extra_rows); ch: R x W scratch.
void ir_tile(float* __restrict G, int64_t R, int64_t W, int64_t extra, float s, float* __restrict ch,
             double* __restrict dacc, float* __restrict strip, float* __restrict strip2) {
  // column wires: col_head = cumsum over rows (float64 sums, float32 results), col_tail its reverse cumsum
  for (int64_t j = 0; j < W; ++j) dacc[j] = 0.0;
  for (int64_t r = 0; r < R; ++r) {
    const float* __restrict gr = G + r * W;
    float* __restrict cr = ch + r * W;
    for (int64_t j = 0; j < W; ++j) { dacc[j] += (double)gr[j]; cr[j] = (float)dacc[j]; }
  }
  std::vector<float> last(ch + (R - 1) * W, ch + R * W);
  const float fe = (float)extra;
  for (int64_t j = 0; j < W; ++j) dacc[j] = 0.0;
  for (int64_t r = R - 1; r >= 0; --r) {  // K = g * col_tail, into ch (row r of ch is read before written)
    const float* __restrict gr = G + r * W;
    float* __restrict cr = ch + r * W;
    for (int64_t j = 0; j < W; ++j) {
      dacc[j] += (double)cr[j];
      float ct = (float)dacc[j];
      if (extra) ct = ct + fe * last[j];
      cr[j] = gr[j] * ct;
    }
  }
  // row wires, 16 rows at a time on the transposed strip: D = g * cumsum(revcumsum(g)) along the row
  constexpr int64_t SR = 16;
  for (int64_t r0 = 0; r0 < R; r0 += SR) {
    const int64_t nr = std::min<int64_t>(SR, R - r0);
    for (int64_t j0 = 0; j0 < W; j0 += 16)  // strip (W x 16) = G[r0 : r0 + nr]^T
      transpose16(G + r0 * W + j0, W, strip + j0 * SR, SR, nr, std::min<int64_t>(16, W - j0));
    double a[SR], b[SR];
    for (int64_t r = 0; r < SR; ++r) { a[r] = 0.0; b[r] = 0.0; }
    for (int64_t j = W - 1; j >= 0; --j)
      for (int64_t r = 0; r < SR; ++r) { a[r] += (double)strip[j * SR + r]; strip2[j * SR + r] = (float)a[r]; }
    for (int64_t j = 0; j < W; ++j)
      for (int64_t r = 0; r < SR; ++r) {
        b[r] += (double)strip2[j * SR + r];
        strip2[j * SR + r] = strip[j * SR + r] * (float)b[r];
      }
    for (int64_t j0 = 0; j0 < W; j0 += 16)  // D back to rows, into strip (nr x W)
      transpose16(strip2 + j0 * SR, SR, strip + j0, W, std::min<int64_t>(16, W - j0), nr);
    for (int64_t r = 0; r < nr; ++r) {
      float* __restrict gr = G + (r0 + r) * W;
      const float* __restrict kr = ch + (r0 + r) * W;
      const float* __restrict dr = strip + r * W;
      for (int64_t j = 0; j < W; ++j) gr[j] = gr[j] - s * (dr[j] + kr[j]);
    }
  }
}

template <typename WT>
void read_tiles(const float* __restrict g, const float* __restrict nu, int64_t S, int64_t TT, int64_t R, int64_t nb,
                const double* P, float L, bool drift, float rd, float ir_s, int64_t cw, int64_t phys_rows, float u,
                float u2, WT* __restrict w, at::BFloat16* __restrict var_bf, uint8_t* __restrict var_code,
                float* __restrict var_scale, int64_t n_out, int64_t c0) {
  const int64_t t_out = (nb + cw - 1) / cw, WM = cw * S;
  const bool var = var_bf != nullptr || var_code != nullptr;
  at::parallel_for(0, TT * t_out, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> G(2 * R * WM), V(var ? R * WM : 0), ch(ir_s != 0.0f ? R * WM : 0), strip(16 * WM),
        strip2(16 * WM), colmax(var_code ? WM : 0);
    std::vector<double> dacc(WM);
    alignas(64) float gt[CK], sq[CK], ag[CK], q[CK], x[CK], lx[CK], tmp[CK];
    for (int64_t unit = b0; unit < b1; ++unit) {
      const int64_t tt = unit / t_out, o0 = (unit % t_out) * cw, wo = std::min<int64_t>(cw, nb - o0), W = wo * S;
      for (int64_t p = 0; p < 2; ++p)
        for (int64_t s = 0; s < S; ++s)
          for (int64_t r = 0; r < R; ++r) {
            const int64_t src = ((s * 2 + p) * TT + tt) * R * nb + r * nb + o0;
            const float* __restrict g0 = g + src;
            const float* __restrict n0 = nu + src;
            float* __restrict dst = G.data() + p * R * W + r * W;
            float* __restrict vd = var ? V.data() + r * W : nullptr;
            for (int64_t j0 = 0; j0 < wo; j0 += CK) {
              const int64_t n = std::min<int64_t>(CK, wo - j0);
              if (drift) {
                for (int64_t i = 0; i < n; ++i) gt[i] = g0[j0 + i] * exp_approx(-n0[j0 + i] * L);
              } else {
                for (int64_t i = 0; i < n; ++i) gt[i] = g0[j0 + i];
              }
              if (var) {
                for (int64_t i = 0; i < n; ++i) ag[i] = std::fabs(g0[j0 + i]);
                read_q(ag, q, x, lx, tmp, n, P);
                for (int64_t i = 0; i < n; ++i) {
                  const float sdv = std::fabs(gt[i]) * q[i] * rd;
                  sq[i] = sdv * sdv;
                }
              }
              if (S == 1) {
                for (int64_t i = 0; i < n; ++i) dst[j0 + i] = gt[i];
                if (var) {
                  if (p == 0) for (int64_t i = 0; i < n; ++i) vd[j0 + i] = sq[i];
                  else for (int64_t i = 0; i < n; ++i) vd[j0 + i] = vd[j0 + i] + sq[i];
                }
              } else {
                for (int64_t i = 0; i < n; ++i) dst[(j0 + i) * S + s] = gt[i];
                if (var) {
                  if (p == 0) for (int64_t i = 0; i < n; ++i) vd[(j0 + i) * S + s] = sq[i];
                  else for (int64_t i = 0; i < n; ++i) vd[(j0 + i) * S + s] = vd[(j0 + i) * S + s] + sq[i];
                }
              }
            }
          }
      if (ir_s != 0.0f)
        for (int64_t p = 0; p < 2; ++p)
          ir_tile(G.data() + p * R * W, R, W, phys_rows - R, ir_s, ch.data(), dacc.data(), strip.data(), strip2.data());
      if (var_code) {  // each tile column's largest variance (aimc.tiles.fused.encode_var's scale)
        for (int64_t j = 0; j < W; ++j) colmax[j] = -INFINITY;
        for (int64_t r = 0; r < R; ++r) {
          const float* __restrict vr = V.data() + r * W;
          for (int64_t j = 0; j < W; ++j) colmax[j] = std::max(colmax[j], vr[j] * u2);
        }
        for (int64_t j = 0; j < W; ++j) colmax[j] = colmax[j] > 0.0f ? colmax[j] : 1.0f;
        for (int64_t s = 0; s < S; ++s)
          for (int64_t c = 0; c < wo; ++c) var_scale[(tt * S + s) * n_out + c0 + o0 + c] = colmax[c * S + s];
      }
      for (int64_t r = 0; r < R; ++r) {
        const float* __restrict gp = G.data() + r * W;
        const float* __restrict gn = G.data() + R * W + r * W;
        const float* __restrict vr = var ? V.data() + r * W : nullptr;
        for (int64_t s = 0; s < S; ++s) {
          const int64_t o = ((tt * R + r) * S + s) * n_out + c0 + o0;
          WT* __restrict wr = w + o;
          for (int64_t c = 0; c < wo; ++c) store(wr + c, (gp[c * S + s] - gn[c * S + s]) * u);
          if (var_bf) for (int64_t c = 0; c < wo; ++c) store(var_bf + o + c, vr[c * S + s] * u2);
          if (var_code)
            for (int64_t c = 0; c < wo; ++c) {  // one-byte code of v / scale (encode_var)
              const int32_t bits = (int32_t)as_bits((vr[c * S + s] * u2) / colmax[c * S + s]);
              const int32_t k = ((bits + (1 << 18)) >> 19) - (112 << 4);
              var_code[o + c] = (uint8_t)std::min(std::max(k, 0), 255);
            }
        }
      }
    }
  });
}

}  // namespace
"""

_BINDINGS = r"""
// The programmed state (g, nu) (S, 2, TT, R, nb) of targets g_target (same shape; any strides, the last
// dimension contiguous) into out (2, S * 2 * TT * R * nb or more, contiguous): see aimc.tiles.progfused.
std::vector<torch::Tensor> pcm_draw_block(torch::Tensor g_target, torch::Tensor used, int64_t seed,
                                          std::vector<double> params, torch::Tensor out) {
  TORCH_CHECK(g_target.dim() == 5 && g_target.scalar_type() == at::kFloat && g_target.stride(4) == 1 &&
              g_target.device().is_cpu(), "pcm_draw_block: float32 CPU targets (S, 2, TT, R, nb), rows contiguous");
  TORCH_CHECK((int64_t)params.size() == P_LEN, "pcm_draw_block: wrong parameter count");
  const int64_t S = g_target.size(0), TT = g_target.size(2), R = g_target.size(3), nb = g_target.size(4);
  TORCH_CHECK(used.scalar_type() == at::kBool && used.is_contiguous() && used.numel() == TT * R,
              "pcm_draw_block: used must be a contiguous bool tensor of TT * R rows");
  const int64_t n = g_target.numel();
  TORCH_CHECK(out.scalar_type() == at::kFloat && out.is_contiguous() && out.dim() == 2 && out.size(0) == 2 &&
              out.size(1) >= n, "pcm_draw_block: out must be contiguous float32 (2, >= numel)");
  auto g = out[0].narrow(0, 0, n).view(g_target.sizes()), nu = out[1].narrow(0, 0, n).view(g_target.sizes());
  const int64_t st[4] = {g_target.stride(0), g_target.stride(1), g_target.stride(2), g_target.stride(3)};
  const uint64_t key = mix64((uint64_t)seed ^ 0x3C6EF372FE94F82BULL);
  draw_rows(g_target.data_ptr<float>(), st, used.data_ptr<bool>(), key, S * 2, TT, R, nb, params.data(),
            g.data_ptr<float>(), nu.data_ptr<float>());
  return {g, nu};
}

// Columns [c0, c0 + nb) of the read matrices w (TT, R, S, n_out) (and var, bf16, same shape) from the
// state (g, nu) (S, 2, TT, R, nb): see aimc.tiles.progfused.
void pcm_read_block(torch::Tensor g, torch::Tensor nu, std::vector<double> params, double log_ratio, bool drift,
                    double read_factor, double ir_s, int64_t cols_w, int64_t phys_rows, double unit, double unit2,
                    torch::Tensor w, c10::optional<torch::Tensor> var, c10::optional<torch::Tensor> var_scale,
                    int64_t c0) {
  TORCH_CHECK(g.dim() == 5 && g.scalar_type() == at::kFloat && g.is_contiguous() && nu.sizes() == g.sizes() &&
              nu.scalar_type() == at::kFloat && nu.is_contiguous(),
              "pcm_read_block: contiguous float32 state expected");
  TORCH_CHECK((int64_t)params.size() == P_LEN, "pcm_read_block: wrong parameter count");
  const int64_t S = g.size(0), TT = g.size(2), R = g.size(3), nb = g.size(4);
  TORCH_CHECK(w.is_contiguous() && w.dim() == 4 && w.size(0) == TT && w.size(1) == R && w.size(2) == S &&
              c0 >= 0 && c0 + nb <= w.size(3) && cols_w >= 1 && phys_rows >= R,
              "pcm_read_block: w (TT, R, S, n_out) does not match the state");
  at::BFloat16* vb = nullptr;
  uint8_t* vc = nullptr;
  float* vs = nullptr;
  if (var.has_value()) {
    TORCH_CHECK(var->is_contiguous() && var->sizes() == w.sizes() &&
                (var->scalar_type() == at::kBFloat16 || var->scalar_type() == at::kByte),
                "pcm_read_block: var must be bfloat16 or uint8 codes shaped as w");
    if (var->scalar_type() == at::kBFloat16) {
      vb = var->data_ptr<at::BFloat16>();
    } else {
      TORCH_CHECK(var_scale.has_value() && var_scale->is_contiguous() && var_scale->scalar_type() == at::kFloat &&
                  var_scale->numel() == TT * S * w.size(3), "pcm_read_block: codes need their float32 scales");
      vc = var->data_ptr<uint8_t>();
      vs = var_scale->data_ptr<float>();
    }
  }
  const int64_t n_out = w.size(3);
  if (w.scalar_type() == at::kFloat)
    read_tiles(g.data_ptr<float>(), nu.data_ptr<float>(), S, TT, R, nb, params.data(), (float)log_ratio, drift,
               (float)read_factor, (float)ir_s, cols_w, phys_rows, (float)unit, (float)unit2, w.data_ptr<float>(), vb,
               vc, vs, n_out, c0);
  else if (w.scalar_type() == at::kBFloat16)
    read_tiles(g.data_ptr<float>(), nu.data_ptr<float>(), S, TT, R, nb, params.data(), (float)log_ratio, drift,
               (float)read_factor, (float)ir_s, cols_w, phys_rows, (float)unit, (float)unit2,
               w.data_ptr<at::BFloat16>(), vb, vc, vs, n_out, c0);
  else
    TORCH_CHECK(false, "pcm_read_block: w must be float32 or bfloat16");
}
"""

SOURCE = _KERNEL + _BINDINGS

FUNCTIONS = ("pcm_draw_block", "pcm_read_block")
