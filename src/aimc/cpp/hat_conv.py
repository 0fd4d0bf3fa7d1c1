"""C++ source of the fused hardware-aware-training read of 1-d and 2-d convolutions, without
im2col (semantics: :meth:`aimc.train.hat.HATForward.conv`; it uses the weight-side and
row kernels of :mod:`aimc.cpp.hat`, compiled in the same unit).

Per layer: the tiles' weights stacked along the output channels (``T*O`` channels, zero
outside each tile's rows), one ``at::convolution`` per tile over just the input channels
its rows touch (a tile boundary may cut a channel's kernel: its other rows are zero), the patch
abs-max of the dynamic input range from a separable window max, the DAC rounding as its
additive-noise equivalent (std ``sqrt(sum_k w_k^2 / (12 L^2))`` per column, ``L`` DAC levels),
output noise and ADC in the layout oneDNN returned (NCHW, or channels-last when the input
is), so that the layers after it see the same memory format as in plain training.
"""

SOURCE = r"""
namespace {

struct ConvGeom {
  std::vector<int64_t> k, st, dl, cp;  // kernel, stride, dilation, conv padding (2-d)
  std::vector<int64_t> pads;           // explicit F.pad order padding (4), all 0 when symmetric
  bool explicit_pad;
};

// 1-d convs run as 2-d with a height of 1.
ConvGeom geom(const at::Tensor& w, const std::vector<int64_t>& pads, const std::vector<int64_t>& stride,
              const std::vector<int64_t>& dilation) {
  ConvGeom g;
  const bool one = w.dim() == 3;
  g.k = one ? std::vector<int64_t>{1, w.size(2)} : std::vector<int64_t>{w.size(2), w.size(3)};
  g.st = one ? std::vector<int64_t>{1, stride[0]} : stride;
  g.dl = one ? std::vector<int64_t>{1, dilation[0]} : dilation;
  std::vector<int64_t> p4 = one ? std::vector<int64_t>{pads[0], pads[1], 0, 0} : pads;  // (l, r, top, bottom)
  g.explicit_pad = p4[0] != p4[1] || p4[2] != p4[3];
  g.cp = g.explicit_pad ? std::vector<int64_t>{0, 0} : std::vector<int64_t>{p4[2], p4[0]};
  g.pads = g.explicit_pad ? p4 : std::vector<int64_t>{0, 0, 0, 0};
  return g;
}

// Input channels [c0, c0 + ct) that tile t's rows [t*R, min(I, (t+1)*R)) of the
// (channel, kernel position)-flattened patch touch (K kernel positions per channel).
inline std::pair<int64_t, int64_t> tile_channels(int64_t t, int64_t R, int64_t I, int64_t K) {
  const int64_t lo = t * R, hi = std::min(I, (t + 1) * R);
  return {lo / K, (hi - 1) / K - lo / K + 1};
}

// Weights of tile t over its channels: the stacked rows t*O.. (zero outside the tile's rows).
inline at::Tensor tile_weight(const at::Tensor& ws4, int64_t t, int64_t O, int64_t c0, int64_t ct) {
  return ws4.narrow(0, t * O, O).narrow(1, c0, ct).contiguous();
}

// All tiles' partial sums (B, T*O, Ho, Wo): one convolution per tile over just the input
// channels its rows touch (the same sums as one convolution with all T*O stacked output
// channels, with about 1/T of its work).
at::Tensor tile_convs(const at::Tensor& xin, const at::Tensor& ws4, int64_t T, int64_t O, int64_t R, int64_t I,
                      const ConvGeom& g) {
  if (T == 1) return at::convolution(xin, ws4, {}, g.st, g.cp, g.dl, false, {0, 0}, 1);
  const int64_t K = g.k[0] * g.k[1];
  std::vector<at::Tensor> ys;
  for (int64_t t = 0; t < T; ++t) {
    const auto [c0, ct] = tile_channels(t, R, I, K);
    ys.push_back(at::convolution(xin.narrow(1, c0, ct), tile_weight(ws4, t, O, c0, ct), {}, g.st, g.cp, g.dl, false,
                                 {0, 0}, 1));
  }
  return at::cat(ys, 1);
}

}  // namespace

// Convolution training read (no im2col): x (B, C, *sp) -> out (B, O, *osp). Returns
// {out, xe (the conv's input before the DAC, padded if asymmetric), xin (conv input), amax,
//  inside (B, T*O, S) u8 (the partial sums' layout), pre (B, O, S), wstack (T*O, C, *k), scale, dfac,
//  gain = gdc * out_gain}.
std::vector<torch::Tensor> hat_conv_fwd(torch::Tensor x, torch::Tensor w, torch::Tensor gdc, torch::Tensor out_gain,
                                        c10::optional<torch::Tensor> bias, int64_t T, int64_t R,
                                        c10::optional<torch::Tensor> mean_tab, c10::optional<torch::Tensor> sd_tab,
                                        double noise_scale, double sd_const, std::vector<int64_t> pads,
                                        std::vector<int64_t> stride, std::vector<int64_t> dilation, double r_in,
                                        int64_t dac, double bound, double lsb, double out_sd, bool quant,
                                        int64_t seed, bool keep_pre, c10::optional<torch::Tensor> delta,
                                        std::vector<double> ir) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat, "x must be a float32 CPU tensor");
  check_f32(w, "w");
  const auto gain = (gdc * out_gain).contiguous();  // drift compensation x per-column gains
  const bool one = x.dim() == 3;
  const int64_t O = w.size(0), I = w.numel() / O, B = x.size(0);
  const ConvGeom g = geom(w, pads, stride, dilation);
  auto W = weights_impl(w.view({O, I}), T, R, mean_tab, sd_tab, noise_scale, sd_const, (uint64_t)seed, delta, false,
                        ir_of(ir));
  at::Tensor ws;
  if (T == 1) {
    ws = W.wn.view({O, I});
  } else {
    ws = at::zeros({T * O, I}, w.options());
    float* d = ws.data_ptr<float>();
    const float* s = W.wn.data_ptr<float>();
    for (int64_t t = 0; t < T; ++t) {
      const int64_t len = std::min<int64_t>(R, I - t * R);
      for (int64_t o = 0; o < O; ++o) std::memcpy(d + (t * O + o) * I + t * R, s + (t * O + o) * R, sizeof(float) * len);
    }
  }
  const int64_t C = w.size(1);
  auto ws4 = ws.view({T * O, C, g.k[0], g.k[1]});
  auto x4 = one ? x.unsqueeze(2) : x;
  auto xe = g.explicit_pad ? at::constant_pad_nd(x4, g.pads) : x4;
  const bool xcl = !xe.is_contiguous() && xe.is_contiguous(at::MemoryFormat::ChannelsLast);  // NHWC input
  if (!xcl) xe = xe.contiguous();
  const int64_t He = xe.size(2), We = xe.size(3);
  const int64_t Ho = (He + 2 * g.cp[0] - g.dl[0] * (g.k[0] - 1) - 1) / g.st[0] + 1;
  const int64_t Wo = (We + 2 * g.cp[1] - g.dl[1] * (g.k[1] - 1) - 1) / g.st[1] + 1;
  const int64_t S = Ho * Wo, TO = T * O;
  const bool learned = r_in > 0.0;
  const int64_t dq = quant ? dac : -1;
  at::Tensor xin, amax;
  std::vector<float> sd(TO, 0.f);
  if (learned) {
    xin = at::empty_like(xe);
    const float* a = xe.data_ptr<float>();
    float* q = xin.data_ptr<float>();
    const float r = (float)r_in;
    dac_row(a, q, xe.numel(), r, dq);  // the DAC acts per element: exact without im2col
    amax = at::full({}, r, x.options());
    if (quant) std::fill(sd.begin(), sd.end(), (float)out_sd);
  } else {
    xin = xe;
    // patch abs-max: max over channels into a zero-padded plane (padding counts as 0), then
    // the window max, separably: along the width, then along the height
    const int64_t ph = g.cp[0], pw = g.cp[1], Hp = He + 2 * ph, Wp = We + 2 * pw;
    std::vector<float> m(Hp * Wp), tmp(Hp * Wo);
    const float* a = xe.data_ptr<float>();
    amax = at::empty({B, S}, x.options());
    float* am = amax.data_ptr<float>();
    for (int64_t b = 0; b < B; ++b) {
      std::fill(m.begin(), m.end(), 0.f);
      if (!xcl) {
        for (int64_t c = 0; c < C; ++c)
          for (int64_t h = 0; h < He; ++h) {
            const float* __restrict src = a + ((b * C + c) * He + h) * We;
            float* __restrict dst = m.data() + (h + ph) * Wp + pw;
            for (int64_t w_ = 0; w_ < We; ++w_) dst[w_] = std::max(dst[w_], std::fabs(src[w_]));
          }
      } else {
        for (int64_t h = 0; h < He; ++h)
          for (int64_t w_ = 0; w_ < We; ++w_) {
            const float* __restrict src = a + ((b * He + h) * We + w_) * C;
            float mx = 0.f;
            for (int64_t c = 0; c < C; ++c) mx = std::max(mx, std::fabs(src[c]));
            m[(h + ph) * Wp + pw + w_] = mx;
          }
      }
      for (int64_t h = 0; h < Hp; ++h) {
        float* __restrict t_ = tmp.data() + h * Wo;
        const float* __restrict row = m.data() + h * Wp;
        for (int64_t wo = 0; wo < Wo; ++wo) t_[wo] = 0.f;
        for (int64_t j = 0; j < g.k[1]; ++j)
          for (int64_t wo = 0; wo < Wo; ++wo) t_[wo] = std::max(t_[wo], row[wo * g.st[1] + j * g.dl[1]]);
      }
      for (int64_t ho = 0; ho < Ho; ++ho) {
        float* __restrict o_ = am + b * S + ho * Wo;
        for (int64_t wo = 0; wo < Wo; ++wo) o_[wo] = 1e-12f;
        for (int64_t i = 0; i < g.k[0]; ++i) {
          const float* __restrict t_ = tmp.data() + (ho * g.st[0] + i * g.dl[0]) * Wo;
          for (int64_t wo = 0; wo < Wo; ++wo) o_[wo] = std::max(o_[wo], t_[wo]);
        }
      }
    }
    if (quant) {
      const float* wp = ws.data_ptr<float>();
      for (int64_t k = 0; k < TO; ++k) {
        float v = 0.f;
        if (dq > 0) {
          float s2 = 0.f;
          for (int64_t i = 0; i < I; ++i) s2 += wp[k * I + i] * wp[k * I + i];
          v = s2 / (12.0f * (float)(dq * dq));
        }
        sd[k] = std::sqrt(v + (float)(out_sd * out_sd));
      }
    }
  }
  auto y = tile_convs(xin, ws4, T, O, R, I, g);  // (B, T*O, Ho, Wo)
  // work in the layout oneDNN returned (channels-last for 1-channel inputs), so that the
  // layers after this one (pooling) see the same memory format as in plain training
  const bool cl = !y.is_contiguous() && y.is_contiguous(at::MemoryFormat::ChannelsLast);
  if (!cl) y = y.contiguous();
  const auto opts = x.options().memory_format(cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
  // one tile: the output overwrites the partial sums once a row is read (one buffer fewer)
  auto out = T == 1 ? y : at::empty({B, O, Ho, Wo}, opts);
  auto inside = at::empty_like(y, y.options().dtype(at::kByte));  // the gradient mask, y's layout
  at::Tensor pre = keep_pre ? at::empty({B, O, Ho, Wo}, opts) : at::Tensor();
  const bool noisy = *std::max_element(sd.begin(), sd.end()) > 0.f;
  const uint64_t key = mix64((uint64_t)seed ^ KEY_Y);
  const float bnd = (float)bound, ls = quant ? (float)lsb : 0.f;
  const float* sc = W.scale.data_ptr<float>();
  const float* gp = gain.data_ptr<float>();
  const float* bp = opt_ptr(bias);
  const float* am = learned ? nullptr : amax.data_ptr<float>();
  const float r = (float)r_in;
  float* op = out.data_ptr<float>();
  float* pp = keep_pre ? pre.data_ptr<float>() : nullptr;
  const float* ym = y.data_ptr<float>();
  uint8_t* ip = inside.data_ptr<uint8_t>();
  const bool adc_on = ls > 0.f;
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {  // images are independent; z by index
   std::vector<float> z(noisy ? TO * S : 0);
   for (int64_t b = b0; b < b1; ++b) {
    if (noisy) fill_normal_at(key, b * TO * S, TO * S, z.data());  // z in memory order of the partial sums
    if (!cl) {
      std::vector<float> acc(S);
      const float* amb = am ? am + b * S : nullptr;
      for (int64_t o = 0; o < O; ++o) {
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t t = 0; t < T; ++t) {
          const int64_t k = t * O + o;
          adc_row_any<false>(am != nullptr, sd[k] > 0.f, adc_on, ym + (b * TO + k) * S, ip + (b * TO + k) * S, amb, 1.f,
                             noisy ? z.data() + k * S : nullptr, nullptr, sd[k], nullptr, sc[k], bnd, ls, acc.data(), S);
        }
        const int64_t j0 = (b * O + o) * S;
        const float gg = gp[o], bi = bp ? bp[o] : 0.f;
        for (int64_t s = 0; s < S; ++s) {
          const float p = acc[s] * (amb ? amb[s] : r);
          if (pp) pp[j0 + s] = p;
          op[j0 + s] = p * gg + bi;
        }
      }
    } else {
      std::vector<float> acc(O);
      for (int64_t s = 0; s < S; ++s) {
        const float ams = am ? am[b * S + s] : r;
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t t = 0; t < T; ++t) {
          const int64_t k0 = t * O;
          adc_row_any<true>(am != nullptr, noisy, adc_on, ym + (b * S + s) * TO + k0, ip + (b * S + s) * TO + k0,
                            nullptr, ams,
                            noisy ? z.data() + s * TO + k0 : nullptr, sd.data() + k0, 0.f, sc + k0, 0.f, bnd, ls,
                            acc.data(), O);
        }
        const int64_t j0 = (b * S + s) * O;
        for (int64_t o = 0; o < O; ++o) {
          const float p = acc[o] * ams;
          if (pp) pp[j0 + o] = p;
          op[j0 + o] = p * gp[o] + (bp ? bp[o] : 0.f);
        }
      }
    }
   }
  });
  return {one ? out.squeeze(2) : out, xe, xin, amax, inside, pre, ws4, W.scale, W.dfac, gain};
}

// Backward of hat_conv_fwd: {gx, gw, gbias, ggain, gr, gdelta} (undefined where not needed).
std::vector<torch::Tensor> hat_conv_bwd(torch::Tensor gout, torch::Tensor x, torch::Tensor xe, torch::Tensor xin,
                                        torch::Tensor inside, c10::optional<torch::Tensor> pre_, torch::Tensor ws4,
                                        torch::Tensor scale, torch::Tensor dfac, torch::Tensor gain, torch::Tensor w,
                                        std::vector<int64_t> pads, std::vector<int64_t> stride,
                                        std::vector<int64_t> dilation, double r_in, bool need_x, bool need_w,
                                        bool need_bias, bool need_gain, bool need_r, bool need_delta) {
  const at::Tensor pre = pre_.has_value() ? *pre_ : at::Tensor();  // kept only for the gain / range gradients
  const int64_t B = x.size(0), O = w.size(0), I = w.numel() / O, T = scale.size(0), TO = T * O;
  const ConvGeom g = geom(w, pads, stride, dilation);
  const bool cl = !inside.is_contiguous();  // the mask keeps the layout of the forward's partial sums
  auto g4 = (gout.dim() == 3 ? gout.unsqueeze(2) : gout)
                .contiguous(cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
  const int64_t Ho = g4.size(2), Wo = g4.size(3), S = Ho * Wo;
  const bool learned = r_in > 0.0;
  const float r = (float)r_in, rf = learned ? r : 1.f;
  auto gy4 = at::empty_like(inside, inside.options().dtype(at::kFloat));  // same strides as the mask
  const float* go = g4.data_ptr<float>();
  const float* gp = gain.data_ptr<float>();
  const float* sc = scale.data_ptr<float>();
  const uint8_t* ip = inside.data_ptr<uint8_t>();
  float* yp = gy4.data_ptr<float>();
  if (!cl) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t o = 0; o < O; ++o) {
          const float f = gp[o] * sc[t * O + o] * rf;
          const float* __restrict gr_ = go + (b * O + o) * S;
          const int64_t i0 = (b * TO + t * O + o) * S;
          for (int64_t s = 0; s < S; ++s) yp[i0 + s] = (float)ip[i0 + s] * (gr_[s] * f);
        }
  } else {
    std::vector<float> f(TO);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t o = 0; o < O; ++o) f[t * O + o] = gp[o] * sc[t * O + o] * rf;
    for (int64_t bs = 0; bs < B * S; ++bs)
      for (int64_t t = 0; t < T; ++t) {
        const float* __restrict gr_ = go + bs * O;
        const int64_t i0 = bs * TO + t * O;
        for (int64_t o = 0; o < O; ++o) yp[i0 + o] = (float)ip[i0 + o] * (gr_[o] * f[t * O + o]);
      }
  }
  at::Tensor gx, gw, gb, gg, gr, gd;
  const bool want_x = need_x || (need_r && learned);
  // one backward over the stacked weights: exact (they are zero outside each tile's rows),
  // and faster here than one backward per tile on channel slices
  auto res = at::convolution_backward(gy4, xin, ws4, c10::nullopt, g.st, g.cp, g.dl, false, {0, 0}, 1,
                                      {want_x, need_w || need_delta, false});
  if (want_x) {
    at::Tensor gxe = std::get<0>(res);
    if (learned) {
      gxe = gxe.contiguous(xe.is_contiguous() ? at::MemoryFormat::Contiguous : at::MemoryFormat::ChannelsLast);
      auto out = at::empty_like(gxe);
      const float* q = gxe.data_ptr<float>();
      const float* a = xe.data_ptr<float>();
      float* d = out.data_ptr<float>();
      double sr = 0.0;
      for (int64_t i = 0; i < gxe.numel(); ++i) {
        const float xn = a[i] / r;
        const float m = (xn >= -1.f && xn <= 1.f) ? 1.f : 0.f;
        d[i] = q[i] * m / r;
        sr += (double)(q[i] * m) * (double)(-a[i] / (r * r));
      }
      gxe = out;
      if (need_r) {
        const double s2 = ((g4 * pre).sum({0, 2, 3}) * gain).sum().item<double>();
        gr = at::full({}, sr + s2 / r, x.options());
      }
    }
    if (need_x) {
      if (g.explicit_pad) {
        const int64_t H = x.dim() == 3 ? 1 : x.size(2), Wd = x.size(-1);
        gxe = gxe.narrow(2, g.pads[2], H).narrow(3, g.pads[0], Wd);
      }
      gx = gxe.reshape(x.sizes());
    }
  }
  const int64_t Rt = dfac.size(2);
  if (need_w) gw = weight_grad(std::get<1>(res).contiguous(), dfac, O, I, true, T, Rt).view(w.sizes());
  if (need_delta) gd = weight_grad(std::get<1>(res).contiguous(), at::Tensor(), O, I, true, T, Rt);
  if (need_bias) gb = g4.sum({0, 2, 3});
  if (need_gain) gg = (g4 * pre).sum({0, 2, 3});
  return {gx, gw, gb, gg, gr, gd};
}

"""

FUNCTIONS = ("hat_conv_fwd", "hat_conv_bwd")
