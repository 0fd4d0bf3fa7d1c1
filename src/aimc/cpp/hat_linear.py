"""C++ source of the fused hardware-aware-training read of linear layers (semantics:
:meth:`aimc.train.hat.HATForward.linear`; weight side and output rows: :mod:`aimc.cpp.hat`,
compiled before it in the same unit; autograd: :mod:`aimc.cpp.hat_autograd`).

Forward: the weight side (``weights_impl``) laid out as the weight, ``(O, I)``, without
padding rows; the DAC per input vector; then one tile at a time: its partial sums
``(B, O)`` as one ``mm`` over just its rows (the last tile of a 576-input layer is 64
rows, not 256), output noise and ADC per row into the running tile sum. Backward, one tile
at a time: the partial sums' gradient (the clipped straight-through mask, gains, input
scale, column scale) and its two ``mm`` into the input and weight gradients' columns of
that tile. Only one tile's ``(B, O)`` partial sums are held at a time (the ``lm_head`` of
SmolLM2 has 3 tiles x 49,152 columns).
"""

SOURCE = r"""
namespace {

// Rows of hat_linear_bwd (restrict-qualified, so that GCC vectorises them): the partial sums'
// gradient y = inside * gout * gain * amax * scale; the input gradient through the DAC (with a
// learned range r: zero outside [-r, r], and the sum of the range's gradient terms, in 16
// interleaved float sums); sum of a * b * c.
inline void gy_row(const uint8_t* __restrict m, const float* __restrict go, const float* __restrict gp,
                   const float* __restrict sc, float a, float* __restrict y, int64_t n) {
  for (int64_t o = 0; o < n; ++o) y[o] = (float)m[o] * (go[o] * gp[o] * a * sc[o]);
}

inline void gx_row(const float* __restrict q, float* __restrict g, int64_t n, float a) {
  for (int64_t k = 0; k < n; ++k) g[k] = q[k] / a;
}

inline float gx_row_learned(const float* __restrict q, const float* __restrict x, float* __restrict g, int64_t n,
                            float r) {
  float acc[16] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  const float r2 = r * r;
  int64_t k = 0;
  for (; k + 16 <= n; k += 16)
    for (int j = 0; j < 16; ++j) {
      const float xn = x[k + j] / r, m = (xn >= -1.f && xn <= 1.f) ? 1.f : 0.f;
      g[k + j] = q[k + j] * m / r;
      acc[j] += (q[k + j] * m) * (-x[k + j] / r2);
    }
  float s = 0.f;
  for (; k < n; ++k) {
    const float xn = x[k] / r, m = (xn >= -1.f && xn <= 1.f) ? 1.f : 0.f;
    g[k] = q[k] * m / r;
    s += (q[k] * m) * (-x[k] / r2);
  }
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

inline float dot3_16(const float* __restrict a, const float* __restrict b, const float* __restrict c, int64_t n) {
  float acc[16] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t k = 0;
  for (; k + 16 <= n; k += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[k + j] * b[k + j] * c[k + j];
  float s = 0.f;
  for (; k < n; ++k) s += a[k] * b[k] * c[k];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

}  // namespace

// Linear training read: x (B, I) -> out (B, O). Returns
// {out, xq (B, I), amax (B), inside (T, B, O) u8, pre (B, O), wn (O, I), scale, gdc_w (the weight
// side's drift compensation, for the backward's dfac), gain}.
std::vector<torch::Tensor> hat_linear_fwd(torch::Tensor x, torch::Tensor w, torch::Tensor gdc, torch::Tensor out_gain,
                                          c10::optional<torch::Tensor> bias, int64_t T, int64_t R,
                                          c10::optional<torch::Tensor> mean_tab, c10::optional<torch::Tensor> sd_tab,
                                          double noise_scale, double sd_const, double r_in, int64_t dac, double bound,
                                          double lsb, double out_sd, bool quant, int64_t seed, bool keep_pre,
                                          c10::optional<torch::Tensor> delta, std::vector<double> ir) {
  check_f32(x, "x"); check_f32(w, "w");
  const auto gain = (gdc * out_gain).contiguous();  // drift compensation x per-column gains
  const int64_t B = x.size(0), I = x.size(1), O = w.size(0);
  TORCH_CHECK(w.numel() == O * I, "w must have in_features = ", I, " columns");
  auto W = weights_impl(w.view({O, I}), T, R, mean_tab, sd_tab, noise_scale, sd_const, (uint64_t)seed, delta, true,
                        ir_of(ir), false);
  auto xq = at::empty({B, I}, x.options());  // laid out as x: tile t is columns t*R .. t*R + len
  auto amax = at::empty({B}, x.options());
  const float* xp = x.data_ptr<float>();
  float* qp = xq.data_ptr<float>();
  float* ap = amax.data_ptr<float>();
  const int64_t dq = quant ? dac : -1;
  for (int64_t b = 0; b < B; ++b) {
    const float* xr = xp + b * I;
    float am = (float)r_in;
    if (r_in <= 0.0) am = absmax16(xr, I, 1e-12f);
    ap[b] = am;
    dac_row(xr, qp + b * I, I, am, dq);
  }
  const float sd = quant ? (float)out_sd : 0.f;
  const uint64_t key_y = mix64((uint64_t)seed ^ KEY_Y);
  std::vector<float> z(sd > 0.f ? O : 0), sdv(O, sd);  // one row of the output noise (stream index (t, b, o))
  auto out = at::zeros({B, O}, x.options());  // the tiles' converted partial sums, then the outputs
  at::Tensor pre = keep_pre ? at::empty({B, O}, x.options()) : at::Tensor();
  auto yt = at::empty({B, O}, x.options());  // one tile's partial sums at a time
  const float bnd = (float)bound, ls = quant ? (float)lsb : 0.f;
  const float* sc = W.scale.data_ptr<float>();
  const float* gp = gain.data_ptr<float>();
  const float* bp = opt_ptr(bias);
  float* op = out.data_ptr<float>();
  float* pp = keep_pre ? pre.data_ptr<float>() : nullptr;
  const float* ym = yt.data_ptr<float>();
  auto inside = at::empty({T, B, O}, x.options().dtype(at::kByte));  // the gradient mask
  uint8_t* ip = inside.data_ptr<uint8_t>();
  for (int64_t t = 0; t < T; ++t) {  // the tile's rows only: no padding rows multiplied
    const int64_t len = std::min<int64_t>(R, I - t * R);
    at::mm_out(yt, xq.narrow(1, t * R, len), W.wn.narrow(1, t * R, len).t());
    for (int64_t b = 0; b < B; ++b) {
      const int64_t i0 = (t * B + b) * O;
      if (sd > 0.f) fill_normal_at(key_y, i0, O, z.data());
      adc_row_any<true>(false, sd > 0.f, ls > 0.f, ym + b * O, ip + i0, nullptr, 1.f, sd > 0.f ? z.data() : nullptr,
                        sdv.data(), 0.f, sc + t * O, 0.f, bnd, ls, op + b * O, O);
    }
  }
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < O; ++o) {
      const float p = op[b * O + o] * ap[b];
      if (pp) pp[b * O + o] = p;
      op[b * O + o] = p * gp[o] + (bp ? bp[o] : 0.f);
    }
  return {out, xq, amax, inside, pre, W.wn, W.scale, at::full({}, W.gdc, x.options()), gain};
}

// Backward of hat_linear_fwd: {gx, gw, gbias, ggain, gr, gdelta} (undefined where not needed).
std::vector<torch::Tensor> hat_linear_bwd(torch::Tensor gout, torch::Tensor x, torch::Tensor xq, torch::Tensor amax,
                                          torch::Tensor inside, c10::optional<torch::Tensor> pre_, torch::Tensor wn,
                                          torch::Tensor scale, torch::Tensor w, c10::optional<torch::Tensor> mean_tab,
                                          torch::Tensor gdc_w, torch::Tensor gain, double r_in, int64_t R, bool need_x, bool need_w, bool need_bias, bool need_gain, bool need_r,
                                          bool need_delta) {
  const at::Tensor pre = pre_.has_value() ? *pre_ : at::Tensor();  // kept only for the gain / range gradients
  gout = gout.contiguous();
  const int64_t T = scale.size(0), O = wn.size(0), B = x.size(0), I = x.size(1);
  const float* go = gout.data_ptr<float>();
  const float* gp = gain.data_ptr<float>();
  const float* ap = amax.data_ptr<float>();
  const float* sc = scale.data_ptr<float>();
  const uint8_t* ip = inside.data_ptr<uint8_t>();
  at::Tensor gx, gw, gb, gg, gr, gd;
  const bool learned = r_in > 0.0, want_xq = need_x || (need_r && learned), want_w = need_w || need_delta;
  auto gy = at::empty({B, O}, gout.options());  // one tile's partial sums' gradient at a time
  float* yp = gy.data_ptr<float>();
  at::Tensor gxq = want_xq ? at::empty({B, I}, x.options()) : at::Tensor();  // laid out as x
  at::Tensor gwn = want_w ? at::empty({O, I}, x.options()) : at::Tensor();   // laid out as w
  for (int64_t t = 0; t < T; ++t) {
    const int64_t len = std::min<int64_t>(R, I - t * R);
    for (int64_t b = 0; b < B; ++b) gy_row(ip + (t * B + b) * O, go + b * O, gp, sc + t * O, ap[b], yp + b * O, O);
    if (want_xq) {
      auto dst = gxq.narrow(1, t * R, len);
      at::mm_out(dst, gy, wn.narrow(1, t * R, len));
    }
    if (want_w) {
      auto dst = gwn.narrow(1, t * R, len);
      at::mm_out(dst, gy.t(), xq.narrow(1, t * R, len));
    }
  }
  if (want_xq) {
    const float* qp = gxq.data_ptr<float>();
    const float* xp = x.data_ptr<float>();
    gx = at::empty({B, I}, x.options());
    float* xg = gx.data_ptr<float>();
    const float r = (float)r_in;
    double sr = 0.0;
    for (int64_t b = 0; b < B; ++b) {
      if (learned) sr += (double)gx_row_learned(qp + b * I, xp + b * I, xg + b * I, I, r);
      else gx_row(qp + b * I, xg + b * I, I, ap[b]);
    }
    if (learned && need_r) {
      double s2 = 0.0;
      const float* pp = pre.data_ptr<float>();
      for (int64_t b = 0; b < B; ++b) s2 += (double)dot3_16(go + b * O, gp, pp + b * O, O);
      gr = at::full({}, sr + s2 / r, x.options());
    }
    if (!need_x) gx = at::Tensor();
  }
  if (want_w) {
    if (need_delta) gd = need_w ? gwn.clone() : gwn;
    if (need_w) {  // times d wn / d w, recomputed from w (wgrad_row)
      const bool drift = mean_tab.has_value() && mean_tab->defined();
      const float* mt = drift ? mean_tab->data_ptr<float>() : nullptr;
      const int32_t PM = drift ? (int32_t)mean_tab->numel() : 2;
      const float g = gdc_w.item<float>();
      const float* wp = w.data_ptr<float>();
      float* gp_ = gwn.data_ptr<float>();
      for (int64_t o = 0; o < O; ++o)
        for (int64_t t = 0; t < T; ++t)
          wgrad_row(wp + o * I + t * R, mt, gp_ + o * I + t * R, std::min<int64_t>(R, I - t * R), sc[t * O + o],
                    (float)(PM - 1), PM, g);
      gw = gwn;
    }
  }
  if (need_bias) gb = gout.sum(0);
  if (need_gain) gg = (gout * pre).sum(0);
  return {gx, gw, gb, gg, gr, gd};
}

"""

FUNCTIONS = ("hat_linear_fwd", "hat_linear_bwd")
