"""C++ source of the convolution read of ``C`` Monte Carlo chips at once (see
:mod:`aimc.tiles.multichip` for its semantics and the Python entry point; it follows
:mod:`aimc.cpp.tile_conv` in the compiled unit and uses its helpers).

``conv_patch_read_chips`` computes each chip's DAC codes and partial sums exactly as
``conv_patch_read`` does for one chip (``x`` chip-major, one set of matrices per chip),
with segments of 16 pixels along a chip's flattened output pixels, so narrow outputs fill
every vector lane. ``conv_read_chips`` adds the noise, ADC, post-scale, gains and bias of
:mod:`aimc.cpp.tile`'s ``fused_noise_adc`` in the same pass: a segment's partial sums stay
in scratch, and only the outputs are written (the same draws for the same linear indices
and the same roundings as the two calls, bit for bit).
"""

SOURCE = r"""
// The patch read of C chips at once: x (C*Bi, Cin, H, W) chip-major, w/vw (C, T, R, N) ->
// y/var (T, C*P, N), s (C*P,) with P = Bi*Ho*Wo pixels per chip (rows chip-major). The
// same codes (operations of conv_patch_read) and the same per-tile sums, but segments of
// PX pixels run along the flattened (image, oh, ow) of one chip, so narrow outputs (Wo < PX)
// fill every vector lane; the input is zero-padded once, so gathering a patch element for
// the 16 lanes needs no bounds checks; (chip, segment) pairs in parallel.
namespace {

// The noise, ADC and digital pass of aimc.cpp.tile's fused_noise_adc (the same operations
// in the same order, the same counter-based draws for the same linear indices) on the rows
// of partial sums of one segment, for conv_read_chips.
struct Finish {
  const float* post;  // (T, N)
  float out_var, cm;
  bool adc;
  uint64_t key;
  const float* gain;  // per chip (row scale = pixel scale * gain) or null
  const float* cs;    // (N,) or null
  const float* bias;  // (N,) or null
  float* out;         // (PT, N)
  int64_t out_numel;  // checked against PT * N before anything is written
  uint8_t* sat;       // (PT,)
};

template <bool HAS_VAR, bool NOISY, bool ADC>
void finish_rows(const Finish& f, const float* __restrict ys, const float* __restrict vs, int64_t T, int64_t PT,
                 int64_t N, int64_t p0, int64_t nl, int64_t c, const float* __restrict sl, float* __restrict acc,
                 float* __restrict zb, float* __restrict zc, float* __restrict zs) {
  const int64_t len = nl * N;
  for (int64_t i = 0; i < len; ++i) acc[i] = 0.0f;
  int32_t sat[PX] = {};
  for (int64_t t = 0; t < T; ++t) {
    const int64_t i0 = (t * PT + p0) * N;  // linear index of (t, p0, 0) in (T, PT, N)
    const float* __restrict z = zb;
    if (NOISY) {
      const int64_t off = i0 & 1, np = (len + off + 1) >> 1;
      gen_normal_pairs(f.key, (uint64_t)(i0 >> 1), np, zc, zs);
      interleave(zc, zs, np, zb);
      z = zb + off;
    }
    const float* __restrict pr = f.post + t * N;
    for (int64_t l = 0; l < nl; ++l) {
      const float* __restrict yr = ys + (t * PX + l) * N;
      const float* __restrict vr = HAS_VAR ? vs + (t * PX + l) * N : nullptr;
      const float* __restrict zr = z + l * N;
      float* __restrict a = acc + l * N;
      int32_t st = 0;
      for (int64_t n = 0; n < N; ++n) {
        float val = yr[n];
        if (NOISY) {
          const float v = HAS_VAR ? vr[n] + f.out_var : f.out_var;
          val = val + std::sqrt(v) * zr[n];
        }
        if (ADC) {
          st |= (int32_t)(std::fabs(val) > f.cm);
          val = val < -f.cm ? -f.cm : (val > f.cm ? f.cm : val);
          val = std::nearbyint(val);
        }
        a[n] = a[n] + pr[n] * val;
      }
      sat[l] |= st;
    }
  }
  for (int64_t l = 0; l < nl; ++l) {  // each step rounded as the separate PyTorch ops would round it
    float* __restrict a = acc + l * N;
    const float r = f.gain != nullptr ? sl[l] * f.gain[c] : sl[l];
    for (int64_t n = 0; n < N; ++n) a[n] = a[n] * r;
    if (f.cs != nullptr)
      for (int64_t n = 0; n < N; ++n) a[n] = a[n] * f.cs[n];
    if (f.bias != nullptr)
      for (int64_t n = 0; n < N; ++n) a[n] = a[n] + f.bias[n];
    std::memcpy(f.out + (p0 + l) * N, a, sizeof(float) * N);
    f.sat[p0 + l] = (uint8_t)(sat[l] != 0);
  }
}

std::vector<torch::Tensor> patch_read_chips_impl(torch::Tensor x, torch::Tensor w, c10::optional<torch::Tensor> vw,
                                                 std::vector<int64_t> kernel, std::vector<int64_t> stride,
                                                 std::vector<int64_t> pads, std::vector<int64_t> dilation,
                                                 int64_t levels, double scale, const Finish* fin) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4,
              "x must be a float32 CPU tensor (C*B, Cin, H, W)");
  TORCH_CHECK(kernel.size() == 2 && stride.size() == 2 && dilation.size() == 2 && pads.size() == 4,
              "kernel, stride, dilation need 2 entries and pads 4 (top, bottom, left, right)");
  TORCH_CHECK(w.dim() == 4, "w must be (chips, T, R, N)");
  const bool has_var = vw.has_value() && vw->defined();
  if (has_var) TORCH_CHECK(vw->sizes() == w.sizes(), "vw must have w's shape");
  const int64_t NC = w.size(0), T = w.size(1), R = w.size(2), N = w.size(3);
  const int64_t BT = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  TORCH_CHECK(BT % NC == 0, "x's ", BT, " images do not split into ", NC, " chips");
  const int64_t Bi = BT / NC;
  const int64_t kh = kernel[0], kw = kernel[1], sh = stride[0], sw = stride[1], dh = dilation[0], dw = dilation[1];
  const int64_t pt = pads[0], pb = pads[1], pl = pads[2], pr = pads[3];
  const int64_t Ho = (H + pt + pb - dh * (kh - 1) - 1) / sh + 1, Wo = (W + pl + pr - dw * (kw - 1) - 1) / sw + 1;
  TORCH_CHECK(Ho > 0 && Wo > 0, "the kernel does not fit the padded input");
  const int64_t K = kh * kw, I = C * K, HWo = Ho * Wo, P = Bi * HWo, PT = NC * P;
  TORCH_CHECK(T * R >= I && T * R - R < I, "w's tiles (", T, " x ", R, " rows) do not hold ", I, " patch elements");
  const TileWeights tw(w, vw, has_var, levels);  // (NC, T, R, Np)
  // with fin, the partial sums of a segment stay in scratch and only the outputs are written
  auto y = fin == nullptr ? at::empty({T, PT, N}, x.options()) : at::Tensor();
  at::Tensor var = has_var && fin == nullptr ? at::empty({T, PT, N}, x.options()) : at::Tensor();
  auto s_out = at::empty({PT}, x.options());
  const bool noisy = fin != nullptr && (has_var || fin->out_var != 0.f);
  if (fin != nullptr) TORCH_CHECK(fin->out_numel == PT * N, "out must hold ", PT * N, " elements");
  // zero-padded input (padding reads as 0): the patch gather needs no bounds checks
  const int64_t Hp = H + pt + pb, Wp = W + pl + pr;
  auto xpad = at::constant_pad_nd(x, {pl, pr, pt, pb}).contiguous();
  const float* xp = xpad.data_ptr<float>();
  float* yp = fin == nullptr ? y.data_ptr<float>() : nullptr;
  float* vap = has_var && fin == nullptr ? var.data_ptr<float>() : nullptr;
  float* sp = s_out.data_ptr<float>();
  const float fixed = (float)scale, lv = (float)levels;
  const v16 one = v16{} + 1.f;
  const int64_t nseg = (P + PX - 1) / PX;
  std::vector<int64_t> koff(I);  // offset of patch element k from its patch's top-left corner
  for (int64_t ci = 0; ci < C; ++ci)
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) koff[(ci * kh + i) * kw + j] = (ci * Hp + i * dh) * Wp + j * dw;
  at::parallel_for(0, NC * nseg, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> q(I * PX), ay(NB * PX), av(NB * PX);
    std::vector<uint32_t> q2(tw.scratch());
    const int64_t fs = fin != nullptr ? PX * N : 0;  // scratch of the fused finish
    std::vector<float> ys(T * fs), vs(has_var ? T * fs : 0), acc(fs), zb(noisy ? fs + 16 : 0),
        zc(noisy ? fs / 2 + 8 : 0), zs(noisy ? fs / 2 + 8 : 0);
    int64_t base[PX];
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t c = item / nseg, p0 = c * P + (item % nseg) * PX, nl = std::min<int64_t>(PX, c * P + P - p0);
      {  // lanes past nl: the last pixel (or 0), computed, never stored; (b, oh, ow) stepped, not divided
        const int64_t pl0 = p0 - c * P;  // this chip's pixel of lane 0
        int64_t b = pl0 / HWo, oh = (pl0 % HWo) / Wo, ow = pl0 % Wo;
        for (int64_t l = 0; l < PX; ++l) {
          base[l] = (c * Bi + b) * C * Hp * Wp + oh * sh * Wp + ow * sw;
          if (l + 1 < nl && ++ow == Wo) {
            ow = 0;
            if (++oh == Ho) { oh = 0; ++b; }
          }
        }
      }
      // raw patch elements, element-major q[k * PX + lane]
#if defined(__AVX512F__)
      {  // lanes at consecutive addresses form runs, each one masked vector load per element
        __mmask16 rmask[PX];
        int64_t roff[PX], nr = 0;
        for (int64_t l = 0; l < nl;) {
          int64_t e = l + 1;
          while (e < nl && base[e] == base[e - 1] + 1) ++e;
          rmask[nr] = (__mmask16)(((1u << (e - l)) - 1u) << l);
          roff[nr++] = base[l] - l;  // lane j of the run reads xp[koff + roff + j]
          l = e;
        }
        for (int64_t k = 0; k < I; ++k) {  // lanes past nl stay 0 (never stored); runs are disjoint: OR of the bits
          const float* src = xp + koff[k];
          __m512i v = _mm512_castps_si512(_mm512_maskz_loadu_ps(rmask[0], src + roff[0]));
          for (int64_t r = 1; r < nr; ++r)
            v = _mm512_or_si512(v, _mm512_castps_si512(_mm512_maskz_loadu_ps(rmask[r], src + roff[r])));
          _mm512_storeu_si512(q.data() + k * PX, v);
        }
      }
#else
      for (int64_t k = 0; k < I; ++k) {
        const float* __restrict src = xp + koff[k];
        float* __restrict qk = q.data() + k * PX;
        for (int64_t l = 0; l < PX; ++l) qk[l] = src[base[l]];
      }
#endif
      v16 sv;
      if (fixed > 0.f) {
        sv = v16{} + fixed;
      } else {
        v16 m = v16{};
        for (int64_t k = 0; k < I; ++k) {
          v16 v;
          std::memcpy(&v, q.data() + k * PX, sizeof(v16));
          v = v < 0.f ? -v : v;
          m = v > m ? v : m;
        }
        sv = m > 0.f ? m : one;
      }
      float sl[PX];
      std::memcpy(sl, &sv, sizeof(v16));
      for (int64_t l = 0; l < nl; ++l) sp[p0 + l] = sl[l];
      for (int64_t k = 0; k < I; ++k) {
        v16 v;
        std::memcpy(&v, q.data() + k * PX, sizeof(v16));
        v = v / sv;
        v = v < -one ? -one : v;
        v = v > one ? one : v;
        if (levels > 0) v = round_even(v * lv);
        std::memcpy(q.data() + k * PX, &v, sizeof(v16));
      }
      if (fin == nullptr) {
        segment_sums(q.data(), q2.data(), I, T, R, N, tw, c * T, has_var, yp, vap, PT, p0, nl, ay.data(), av.data());
        continue;
      }
      segment_sums(q.data(), q2.data(), I, T, R, N, tw, c * T, has_var, ys.data(), has_var ? vs.data() : nullptr, PX, 0,
                   nl, ay.data(), av.data());
      float* a = acc.data();
      float *z = zb.data(), *z1 = zc.data(), *z2 = zs.data();
      const float* v = has_var ? vs.data() : nullptr;
      if (noisy && has_var && fin->adc) finish_rows<true, true, true>(*fin, ys.data(), v, T, PT, N, p0, nl, c, sl, a, z, z1, z2);
      else if (noisy && has_var) finish_rows<true, true, false>(*fin, ys.data(), v, T, PT, N, p0, nl, c, sl, a, z, z1, z2);
      else if (noisy && fin->adc) finish_rows<false, true, true>(*fin, ys.data(), v, T, PT, N, p0, nl, c, sl, a, z, z1, z2);
      else if (noisy) finish_rows<false, true, false>(*fin, ys.data(), v, T, PT, N, p0, nl, c, sl, a, z, z1, z2);
      else if (fin->adc) finish_rows<false, false, true>(*fin, ys.data(), v, T, PT, N, p0, nl, c, sl, a, z, z1, z2);
      else finish_rows<false, false, false>(*fin, ys.data(), v, T, PT, N, p0, nl, c, sl, a, z, z1, z2);
    }
  });
  return {y, var, s_out};
}

}  // namespace

// The patch read of C chips at once (patch_read_chips_impl above): x (C*Bi, Cin, H, W)
// chip-major, w/vw (C, T, R, N) -> y/var (T, C*P, N), s (C*P,).
std::vector<torch::Tensor> conv_patch_read_chips(torch::Tensor x, torch::Tensor w, c10::optional<torch::Tensor> vw,
                                                 std::vector<int64_t> kernel, std::vector<int64_t> stride,
                                                 std::vector<int64_t> pads, std::vector<int64_t> dilation,
                                                 int64_t levels, double scale) {
  return patch_read_chips_impl(x, w, vw, kernel, stride, pads, dilation, levels, scale, nullptr);
}

// conv_patch_read_chips followed by fused_noise_adc(y, var, out_var, post, code_max, seed,
// row_scale = s * gain[chip], col_scale, bias) in one pass: each segment's partial sums stay
// in scratch (never written out); the outputs go to out (C*P, N) (contiguous float32), and
// the result is {out, sat (C*P,) bool: the pixel's ADC saturated, s (C*P,)}, the same
// numbers, bit for bit, as the two calls.
std::vector<torch::Tensor> conv_read_chips(torch::Tensor x, torch::Tensor w, c10::optional<torch::Tensor> vw,
                                           std::vector<int64_t> kernel, std::vector<int64_t> stride,
                                           std::vector<int64_t> pads, std::vector<int64_t> dilation, int64_t levels,
                                           double scale, torch::Tensor post, double out_var, int64_t code_max,
                                           int64_t seed, c10::optional<torch::Tensor> gain,
                                           c10::optional<torch::Tensor> col_scale, c10::optional<torch::Tensor> bias,
                                           torch::Tensor out) {
  TORCH_CHECK(w.dim() == 4, "w must be (chips, T, R, N)");
  const int64_t NC = w.size(0), T = w.size(1), N = w.size(3);
  TORCH_CHECK(x.dim() == 4 && x.size(0) % std::max<int64_t>(NC, 1) == 0, "x must be (C*B, Cin, H, W)");
  TORCH_CHECK(post.scalar_type() == at::kFloat && post.is_contiguous() && post.numel() == T * N,
              "post must be a contiguous float32 tensor (T, 1, N)");
  auto vec = [&](const c10::optional<torch::Tensor>& v, int64_t n, const char* name) -> const float* {
    if (!v.has_value() || !v->defined()) return nullptr;
    TORCH_CHECK(v->scalar_type() == at::kFloat && v->is_contiguous() && v->numel() == n, name,
                " must be a contiguous float32 tensor of ", n, " elements");
    return v->data_ptr<float>();
  };
  TORCH_CHECK(out.scalar_type() == at::kFloat && out.is_contiguous(), "out must be a contiguous float32 tensor");
  auto sat = torch::zeros({out.numel() / std::max<int64_t>(N, 1)}, out.options().dtype(at::kByte));
  Finish f{post.data_ptr<float>(), (float)out_var, code_max >= 0 ? (float)code_max : 0.f, code_max >= 0,
           mix64((uint64_t)seed ^ 0x6A09E667F3BCC909ULL), vec(gain, NC, "gain"), vec(col_scale, N, "col_scale"),
           vec(bias, N, "bias"), out.data_ptr<float>(), out.numel(), sat.data_ptr<uint8_t>()};
  auto r = patch_read_chips_impl(x, w, vw, kernel, stride, pads, dilation, levels, scale, &f);
  return {out, sat.to(at::kBool), r[2]};
}
"""

FUNCTIONS = ("conv_patch_read_chips", "conv_read_chips")
