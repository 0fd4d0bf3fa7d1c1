"""C++ source of the tile read's convolution front end (see :mod:`aimc.tiles.conv` for its
semantics and the Python entry point).

``conv_patch_read`` computes, for every output pixel ``p`` of a 2-d convolution (1-d runs
with a height of 1), the DAC codes of its patch and the tiles' partial sums::

    v[p, k]    = x[b, c, oh*sh - pt + i*dh, ow*sw - pl + j*dw]    k = (c*kh + i)*kw + j, 0 outside
    s[p]       = scale if scale > 0 else (max_k |v[p, k]| or 1 if that is 0)
    code[p, k] = round_half_even(clamp(v[p, k] / s[p], -1, 1) * levels)   (no rounding if levels < 0)
    y[t, p, n] = sum_r code[p, t*R + r] * w[t, r, n]
    var[t, p, n] = sum_r code[p, t*R + r]^2 * vw[t, r, n]                (when vw is given)

in the float32 operations of :func:`aimc.physics.periphery.dac_codes` (division, clamp,
multiplication, rounding half to even), so the codes are bit-identical to those of the
im2col read. The patches never exist as one matrix. Each output row ``(b, oh)`` (rows in
parallel): the scales from a column-wise max of ``|x|`` over the rows the kernel covers,
then a window max; the ``C*kh`` input rows it reads copied into a zero-padded band; then
per segment of 16 output pixels, the codes of every patch element as one 16-lane vector
(one vector load from the band at stride 1), and the partial sums with the pixels along
the vector lanes, 8 output columns per register block (fused multiply-adds: the sums'
float rounding may differ from a matmul's). Where the CPU has AVX512-BF16 and ``vw`` is
bfloat16 (as :class:`aimc.tiles.ReadMatrices` stores it) the variances take two rows per
``vdpbf16ps`` on squared codes rounded to bfloat16 with float32 sums, as the row read's
bfloat16 matmul does; elsewhere in float32. Where ``w`` is bfloat16 too (the read matrices
of a noisy chip, :func:`aimc.nn.chipstate.lean_w_dtype`: its programming noise is at least
ten times bfloat16's rounding) and the DAC codes are integers of at most 8 bits
(``0 < levels <= 256``: exact in bfloat16), the partial sums take two rows per
``vdpbf16ps`` as well: exact products of the codes and the bfloat16 weights with float32
sums, the float32 arithmetic on the same values up to the order of the sums. Returns ``{y (T, P, N), var (T, P, N) f32 or
undefined, s (P,)}``; noise, ADC and the digital sum over tiles follow in
:mod:`aimc.cpp.tile`.
"""

SOURCE = r"""
#if defined(__AVX2__)
#include <immintrin.h>
#endif
namespace {

constexpr int64_t PX = 16;  // output pixels per vector: a segment of one output row
constexpr int64_t NB = 8;   // output columns per register block
typedef float v16 __attribute__((vector_size(64)));  // GCC vector extension (one AVX-512 register)

// round half to even of |v| < 2^22 (the DAC codes), as std::nearbyint in the default mode
static inline v16 round_even(v16 v) {
  const v16 magic = v16{} + 12582912.0f;  // 1.5 * 2^23
  return (v + magic) - magic;
}

// the partial sums may use fused multiply-adds (their rounding is not part of the semantics)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast")
// Partial sums of one tile for PX pixels: codes q (len, PX), weights w/vw (len, Np) (Np a
// multiple of NB, zero-padded) -> ay/av (NB, PX) for columns n0..n0+NB.
template <bool VAR>
inline void tile_block(const float* __restrict q, int64_t len, const float* __restrict w, const float* __restrict vw,
                       int64_t Np, int64_t n0, float* __restrict ay, float* __restrict av) {
  v16 acc[NB], accv[NB];
  for (int64_t n = 0; n < NB; ++n) { acc[n] = v16{}; accv[n] = v16{}; }
  for (int64_t k = 0; k < len; ++k) {
    v16 c;
    std::memcpy(&c, q + k * PX, sizeof(v16));
    const float* __restrict wk = w + k * Np + n0;
    for (int64_t n = 0; n < NB; ++n) acc[n] += c * wk[n];
    if (VAR) {
      const v16 c2 = c * c;
      const float* __restrict vk = vw + k * Np + n0;
      for (int64_t n = 0; n < NB; ++n) accv[n] += c2 * vk[n];
    }
  }
  for (int64_t n = 0; n < NB; ++n) {
    std::memcpy(ay + n * PX, &acc[n], sizeof(v16));
    if (VAR) std::memcpy(av + n * PX, &accv[n], sizeof(v16));
  }
}
#pragma GCC pop_options

#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#define AIMC_CONV_BF16 1
// Dot products of PX pixels over a tile's rows, two rows per instruction in bf16 with
// float32 sums: q2 (npairs, 16 x uint32), each lane the bf16 pair (a[2m], a[2m+1]) of one
// pixel (its codes, or its squared codes); wp (npairs, Np) the bf16 pairs of the weights
// (or variances) -> o (NB, PX) for columns n0..n0+NB.
inline void pair_block_bf16(const uint32_t* __restrict q2, int64_t npairs, const uint32_t* __restrict wp, int64_t Np,
                            int64_t n0, float* __restrict o) {
  __m512 acc[NB];
  for (int64_t n = 0; n < NB; ++n) acc[n] = _mm512_setzero_ps();
  for (int64_t m = 0; m < npairs; ++m) {
    const __m512bh a = (__m512bh)_mm512_loadu_si512(q2 + m * PX);
    const uint32_t* __restrict wk = wp + m * Np + n0;
    for (int64_t n = 0; n < NB; ++n) acc[n] = _mm512_dpbf16_ps(acc[n], a, (__m512bh)_mm512_set1_epi32((int)wk[n]));
  }
  for (int64_t n = 0; n < NB; ++n) _mm512_storeu_ps(o + n * PX, acc[n]);
}

// q2 of a tile (module doc of pair_block_bf16) from its codes q (len, PX): the codes
// themselves (exact: integers of at most 8 bits) or, with SQUARE, their squares (RNE to bf16).
template <bool SQUARE>
inline void code_pairs_bf16(const float* __restrict q, int64_t len, uint32_t* __restrict q2) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5,
                                       20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int64_t m = 0; 2 * m < len; ++m) {
    __m512 a = _mm512_loadu_ps(q + 2 * m * PX);
    __m512 b = 2 * m + 1 < len ? _mm512_loadu_ps(q + (2 * m + 1) * PX) : _mm512_setzero_ps();
    if (SQUARE) { a = _mm512_mul_ps(a, a); b = _mm512_mul_ps(b, b); }
    const __m512i pk = (__m512i)_mm512_cvtne2ps_pbh(b, a);  // a low, b high
    _mm512_storeu_si512(q2 + m * PX, _mm512_permutexvar_epi16(idx, pk));
  }
}
#endif

// Column-major block a (NB columns of PX pixels: a[n * PX + l]) -> rows of the output, o[l * ld + n]
// for the nl pixels l < nl and nc columns n < nc (a transpose; pure data movement).
inline void store_block(const float* __restrict a, int64_t nl, int64_t nc, float* __restrict o, int64_t ld) {
#if defined(__AVX2__)
  static_assert(NB == 8 && PX == 16, "the AVX2 transpose is written for 8 columns x 16 pixels");
  if (nc == NB) {  // two 8 x 8 transposes (unpack, shuffle, lane permute), one 8-float row store per pixel
    for (int64_t h = 0; h < PX && h < nl; h += 8) {
      __m256 r[8], t[8];
      for (int64_t n = 0; n < 8; ++n) r[n] = _mm256_loadu_ps(a + n * PX + h);
      for (int64_t n = 0; n < 8; n += 2) {
        t[n] = _mm256_unpacklo_ps(r[n], r[n + 1]);
        t[n + 1] = _mm256_unpackhi_ps(r[n], r[n + 1]);
      }
      for (int64_t n = 0; n < 8; n += 4) {
        r[n] = _mm256_shuffle_ps(t[n], t[n + 2], 0x44);
        r[n + 1] = _mm256_shuffle_ps(t[n], t[n + 2], 0xEE);
        r[n + 2] = _mm256_shuffle_ps(t[n + 1], t[n + 3], 0x44);
        r[n + 3] = _mm256_shuffle_ps(t[n + 1], t[n + 3], 0xEE);
      }
      // r[0..3]: pixels (0, 1, 2, 3) of columns 0-3 | 4-7 in the two 128-bit lanes, r[4..7]: columns 4-7
      const __m256 rows[8] = {_mm256_permute2f128_ps(r[0], r[4], 0x20), _mm256_permute2f128_ps(r[1], r[5], 0x20),
                              _mm256_permute2f128_ps(r[2], r[6], 0x20), _mm256_permute2f128_ps(r[3], r[7], 0x20),
                              _mm256_permute2f128_ps(r[0], r[4], 0x31), _mm256_permute2f128_ps(r[1], r[5], 0x31),
                              _mm256_permute2f128_ps(r[2], r[6], 0x31), _mm256_permute2f128_ps(r[3], r[7], 0x31)};
      const int64_t m = std::min<int64_t>(8, nl - h);
      for (int64_t l = 0; l < m; ++l) _mm256_storeu_ps(o + (h + l) * ld, rows[l]);
    }
    return;
  }
#endif
  for (int64_t l = 0; l < nl; ++l)
    for (int64_t n = 0; n < nc; ++n) o[l * ld + n] = a[n * PX + l];
}

// The tiles' weights as the kernels read them, for weights w (..., R, N) (the leading
// dimensions: chips and tiles) and variances vw: w float32 padded to Np columns (whole
// register blocks), the variances vw float32 likewise or, where the CPU has AVX512-BF16 and
// vw is bfloat16, as bf16 row pairs vpair (..., R2, Np). Where w is bfloat16 too (the read
// matrices of a noisy chip, aimc.nn.chipstate.lean_w_dtype), the codes are exact in bfloat16
// (integers of at most 8 bits: 0 < levels <= 256) and the variances are absent or bf16
// pairs, w is kept as bf16 row pairs wpair: the partial sums then take two rows per
// vdpbf16ps (exact products, float32 sums), the same products as float32 arithmetic on
// the bfloat16 weights. Otherwise w is read in float32.
struct TileWeights {
  int64_t Np, R2;
  bool bf16, wbf16;
  at::Tensor wp, vp;
  std::vector<uint32_t> vpair, wpair;
  static void pairs(const torch::Tensor& a, int64_t lead, int64_t R, int64_t N, int64_t Np, std::vector<uint32_t>& out) {
    const int64_t R2 = (R + 1) / 2;
    out.assign(lead * R2 * Np, 0u);  // bf16 bits of rows 2m | 2m+1 << 16 (0 past R and N)
    auto ac = a.contiguous();
    const uint16_t* ab = reinterpret_cast<const uint16_t*>(ac.data_ptr<at::BFloat16>());
    for (int64_t t = 0; t < lead; ++t)
      for (int64_t m = 0; m < R2; ++m) {
        const uint16_t* __restrict lo = ab + (t * R + 2 * m) * N;
        uint32_t* __restrict o = out.data() + (t * R2 + m) * Np;
        if (2 * m + 1 < R) {
          const uint16_t* __restrict hi = lo + N;
          for (int64_t n = 0; n < N; ++n) o[n] = (uint32_t)lo[n] | ((uint32_t)hi[n] << 16);
        } else {
          for (int64_t n = 0; n < N; ++n) o[n] = (uint32_t)lo[n];
        }
      }
  }
  TileWeights(const torch::Tensor& w, const c10::optional<torch::Tensor>& vw, bool has_var, int64_t levels) {
    const int64_t R = w.size(-2), N = w.size(-1), lead = w.numel() / std::max<int64_t>(R * N, 1);
    R2 = (R + 1) / 2;
    Np = (N + NB - 1) / NB * NB;
#ifdef AIMC_CONV_BF16
    bf16 = has_var && vw->scalar_type() == at::kBFloat16;
    wbf16 = w.scalar_type() == at::kBFloat16 && levels > 0 && levels <= 256 && (!has_var || bf16);
#else
    bf16 = wbf16 = false;
#endif
    if (wbf16) pairs(w, lead, R, N, Np, wpair);
    else wp = at::constant_pad_nd(w.to(at::kFloat), {0, Np - N}).contiguous();
    if (has_var && !bf16) vp = at::constant_pad_nd(vw->to(at::kFloat), {0, Np - N}).contiguous();
    if (bf16) pairs(*vw, lead, R, N, Np, vpair);
  }
  // scratch of segment_sums: the code pairs and the squared-code pairs of a tile
  int64_t scratch() const { return (bf16 || wbf16) ? 2 * R2 * PX : 0; }
};

// The partial sums of PX pixels' codes q (I, PX) on each of the T tiles (R rows each) of
// the weights tw, tiles t0 .. t0+T-1 of its leading dimension (chip c's tiles: t0 = c*T)
// -> rows p0 .. p0+nl-1 of y and var (T, Ptot, N); q2 (tw.scratch()), ay, av are scratch.
inline void segment_sums(const float* q, uint32_t* q2, int64_t I, int64_t T, int64_t R, int64_t N,
                         const TileWeights& tw, int64_t t0, bool has_var, float* yp, float* vap, int64_t Ptot,
                         int64_t p0, int64_t nl, float* ay, float* av) {
  const int64_t Np = tw.Np, R2 = tw.R2;
  const bool bf16 = tw.bf16, wbf16 = tw.wbf16;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t k0 = t * R, len = std::min<int64_t>(R, I - k0), tt = t0 + t;
#ifdef AIMC_CONV_BF16
    if (wbf16) code_pairs_bf16<false>(q + k0 * PX, len, q2 + R2 * PX);
    if (bf16) code_pairs_bf16<true>(q + k0 * PX, len, q2);
#endif
    for (int64_t n0 = 0; n0 < N; n0 += NB) {
      const int64_t nc = std::min<int64_t>(NB, N - n0);
      if (wbf16) {
#ifdef AIMC_CONV_BF16
        pair_block_bf16(q2 + R2 * PX, (len + 1) / 2, tw.wpair.data() + tt * R2 * Np, Np, n0, ay);
#endif
      } else if (has_var && !bf16) {
        tile_block<true>(q + k0 * PX, len, tw.wp.data_ptr<float>() + tt * R * Np, tw.vp.data_ptr<float>() + tt * R * Np,
                         Np, n0, ay, av);
      } else {
        tile_block<false>(q + k0 * PX, len, tw.wp.data_ptr<float>() + tt * R * Np, nullptr, Np, n0, ay, nullptr);
      }
#ifdef AIMC_CONV_BF16
      if (bf16) pair_block_bf16(q2, (len + 1) / 2, tw.vpair.data() + tt * R2 * Np, Np, n0, av);
#endif
      store_block(ay, nl, nc, yp + (t * Ptot + p0) * N + n0, N);
      if (has_var) store_block(av, nl, nc, vap + (t * Ptot + p0) * N + n0, N);
    }
  }
}

}  // namespace

std::vector<torch::Tensor> conv_patch_read(torch::Tensor x, torch::Tensor w, c10::optional<torch::Tensor> vw,
                                           std::vector<int64_t> kernel, std::vector<int64_t> stride,
                                           std::vector<int64_t> pads, std::vector<int64_t> dilation, int64_t levels,
                                           double scale) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4,
              "x must be a float32 CPU tensor (B, C, H, W)");
  TORCH_CHECK(kernel.size() == 2 && stride.size() == 2 && dilation.size() == 2 && pads.size() == 4,
              "kernel, stride, dilation need 2 entries and pads 4 (top, bottom, left, right)");
  TORCH_CHECK(w.dim() == 3, "w must be (T, R, N)");
  const bool has_var = vw.has_value() && vw->defined();
  if (has_var) TORCH_CHECK(vw->sizes() == w.sizes(), "vw must have w's shape");
  if (x.stride(3) != 1 && !x.is_contiguous(at::MemoryFormat::ChannelsLast)) x = x.contiguous();
  const int64_t xsb = x.stride(0), xsc = x.stride(1), xsh = x.stride(2), xsw = x.stride(3);  // NCHW or NHWC
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t kh = kernel[0], kw = kernel[1], sh = stride[0], sw = stride[1], dh = dilation[0], dw = dilation[1];
  const int64_t pt = pads[0], pb = pads[1], pl = pads[2], pr = pads[3];
  const int64_t Wp = W + pl + pr;
  const int64_t Ho = (H + pt + pb - dh * (kh - 1) - 1) / sh + 1, Wo = (Wp - dw * (kw - 1) - 1) / sw + 1;
  TORCH_CHECK(Ho > 0 && Wo > 0, "the kernel does not fit the padded input");
  const int64_t K = kh * kw, I = C * K, P = B * Ho * Wo;
  const int64_t T = w.size(0), R = w.size(1), N = w.size(2);
  TORCH_CHECK(T * R >= I && T * R - R < I, "w's tiles (", T, " x ", R, " rows) do not hold ", I, " patch elements");
  const TileWeights tw(w, vw, has_var, levels);
  auto y = at::empty({T, P, N}, x.options());
  at::Tensor var = has_var ? at::empty({T, P, N}, x.options()) : at::Tensor();
  auto s_out = at::empty({P}, x.options());
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  float* vap = has_var ? var.data_ptr<float>() : nullptr;
  float* sp = s_out.data_ptr<float>();
  const float fixed = (float)scale, lv = (float)levels;
  const v16 one = v16{} + 1.f;
  const int64_t BW = Wp + PX * sw;  // band row: padded input row + slack for the last vector
  at::parallel_for(0, B * Ho, 1, [&](int64_t row0, int64_t row1) {  // one output row (b, oh) at a time
    std::vector<float> colmax(Wp), srow(Wo + PX), q(I * PX), ay(NB * PX), av(NB * PX), band(C * kh * BW);
    std::vector<uint32_t> q2(tw.scratch());
    for (int64_t row = row0; row < row1; ++row) {
      const int64_t b = row / Ho, oh = row % Ho, h0 = oh * sh - pt;
      const float* __restrict xb = xp + b * xsb;
      // each pixel's full scale: its patch's abs-max (padding counts as 0), or the fixed scale
      if (fixed > 0.f) {
        for (int64_t ow = 0; ow < Wo; ++ow) srow[ow] = fixed;
      } else {
        std::fill(colmax.begin(), colmax.end(), 0.f);
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = 0; i < kh; ++i) {
            const int64_t h = h0 + i * dh;
            if (h < 0 || h >= H) continue;
            const float* __restrict src = xb + c * xsc + h * xsh;
            float* __restrict cm = colmax.data() + pl;
            for (int64_t w_ = 0; w_ < W; ++w_) cm[w_] = std::max(cm[w_], std::fabs(src[w_ * xsw]));
          }
        for (int64_t ow = 0; ow < Wo; ++ow) {
          float m = 0.f;
          for (int64_t j = 0; j < kw; ++j) m = std::max(m, colmax[ow * sw + j * dw]);
          srow[ow] = m > 0.f ? m : 1.f;
        }
      }
      for (int64_t l = Wo; l < Wo + PX; ++l) srow[l] = 1.f;
      // the C*kh input rows this output row reads, zero-padded (+ PX columns of slack)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < kh; ++i) {
          float* __restrict dst = band.data() + (c * kh + i) * BW;
          const int64_t h = h0 + i * dh;
          std::fill(dst, dst + BW, 0.f);
          if (h < 0 || h >= H) continue;
          const float* __restrict src = xb + c * xsc + h * xsh;
          if (xsw == 1) std::memcpy(dst + pl, src, sizeof(float) * W);
          else for (int64_t w_ = 0; w_ < W; ++w_) dst[pl + w_] = src[w_ * xsw];
        }
      const int64_t prow = row * Wo;
      for (int64_t ow = 0; ow < Wo; ++ow) sp[prow + ow] = srow[ow];
      for (int64_t ow0 = 0; ow0 < Wo; ow0 += PX) {
        const int64_t nl = std::min<int64_t>(PX, Wo - ow0);
        v16 sv;
        std::memcpy(&sv, srow.data() + ow0, sizeof(v16));
        // DAC codes of the PX pixels' patches, element-major: q[k * PX + lane]
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j) {
              const float* __restrict src = band.data() + (c * kh + i) * BW + ow0 * sw + j * dw;
              v16 v;
              if (sw == 1) {
                std::memcpy(&v, src, sizeof(v16));
              } else {
                float tmp[PX];
                for (int64_t l = 0; l < PX; ++l) tmp[l] = l < nl ? src[l * sw] : 0.f;
                std::memcpy(&v, tmp, sizeof(v16));
              }
              v = v / sv;
              v = v < -one ? -one : v;
              v = v > one ? one : v;
              if (levels > 0) v = round_even(v * lv);
              std::memcpy(q.data() + ((c * kh + i) * kw + j) * PX, &v, sizeof(v16));
            }
        segment_sums(q.data(), q2.data(), I, T, R, N, tw, 0, has_var, yp, vap, P, prow + ow0, nl, ay.data(),
                     av.data());
      }
    }
  });
  return {y, var, s_out};
}

"""

FUNCTIONS = ("conv_patch_read",)
