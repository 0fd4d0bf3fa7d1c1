"""C++ autograd nodes of the fused HAT read: one call from Python per layer and pass, and a
backward that never returns to Python (``torch::autograd::Function`` around the kernels of
:mod:`aimc.cpp.hat` and :mod:`aimc.cpp.hat_conv`). Entry point: :func:`aimc.train.hat_fused.read`.
"""

SOURCE = r"""
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Forward inputs: x, w, gdc, out_gain, bias?, r?, delta? (edges 0..3, then bias, r and
// delta where given), then the non-differentiable settings (ir: the IR-drop settings of the
// weight side, aimc.train.hat_fused.Static.ir, or empty). Gradients needed, in the
// kernels' order: x, weight, bias, gain, r, delta.
inline std::array<bool, 6> needs(AutogradContext* ctx) {
  const bool hb = ctx->saved_data["has_bias"].toBool(), hr = ctx->saved_data["has_r"].toBool(),
             hd = ctx->saved_data["has_delta"].toBool();
  return {ctx->needs_input_grad(0), ctx->needs_input_grad(1), hb && ctx->needs_input_grad(4),
          ctx->needs_input_grad(3), hr && ctx->needs_input_grad(hb ? 5 : 4),
          hd && ctx->needs_input_grad(4 + (hb ? 1 : 0) + (hr ? 1 : 0))};
}

inline void mark(AutogradContext* ctx, const c10::optional<at::Tensor>& bias, const c10::optional<at::Tensor>& r,
                 const c10::optional<at::Tensor>& delta) {
  ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
  ctx->saved_data["has_r"] = r.has_value() && r->defined();
  ctx->saved_data["has_delta"] = delta.has_value() && delta->defined();
}

inline c10::optional<at::Tensor> opt(const at::Tensor& t) {
  return t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt;
}

struct HatLinearFn : public torch::autograd::Function<HatLinearFn> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, at::Tensor w, at::Tensor gdc, at::Tensor out_gain,
                            c10::optional<at::Tensor> bias, c10::optional<at::Tensor> r,
                            c10::optional<at::Tensor> delta, c10::optional<at::Tensor> mean_tab,
                            c10::optional<at::Tensor> sd_tab, int64_t T, int64_t R, double noise_scale,
                            double sd_const, double r_in, int64_t dac, double bound, double lsb, double out_sd,
                            bool quant, int64_t seed, std::vector<double> ir) {
    mark(ctx, bias, r, delta);
    auto o = hat_linear_fwd(x, w, gdc, out_gain, bias, T, R, mean_tab, sd_tab, noise_scale, sd_const, r_in, dac,
                            bound, lsb, out_sd, quant, seed, r_in > 0.0 || out_gain.requires_grad(), delta, ir);
    // o: out, xq, amax, inside, pre, wn, scale, gdc_w, gain
    ctx->save_for_backward({x, o[1], o[2], o[3], o[4], o[5], o[6], o[7], o[8], gdc, w,
                            mean_tab.has_value() ? *mean_tab : at::Tensor()});
    ctx->saved_data["r"] = r_in;
    ctx->saved_data["R"] = R;
    return o[0];
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    const auto n = needs(ctx);
    auto g = hat_linear_bwd(grads[0], s[0], s[1], s[2], s[3], opt(s[4]), s[5], s[6], s[10], opt(s[11]), s[7], s[8],
                            ctx->saved_data["r"].toDouble(), ctx->saved_data["R"].toInt(), n[0], n[1], n[2], n[3],
                            n[4], n[5]);
    variable_list out(21);
    out[0] = g[0]; out[1] = g[1];
    out[3] = g[3].defined() ? g[3] * s[9] : at::Tensor();  // d/d out_gain = gdc * d/d gain
    out[4] = g[2]; out[5] = g[4]; out[6] = g[5];
    return out;
  }
};

struct HatConvFn : public torch::autograd::Function<HatConvFn> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, at::Tensor w, at::Tensor gdc, at::Tensor out_gain,
                            c10::optional<at::Tensor> bias, c10::optional<at::Tensor> r,
                            c10::optional<at::Tensor> delta, c10::optional<at::Tensor> mean_tab,
                            c10::optional<at::Tensor> sd_tab, int64_t T, int64_t R, double noise_scale,
                            double sd_const, std::vector<int64_t> pads, std::vector<int64_t> stride,
                            std::vector<int64_t> dilation, double r_in, int64_t dac, double bound, double lsb,
                            double out_sd, bool quant, int64_t seed, std::vector<double> ir) {
    mark(ctx, bias, r, delta);
    auto o = hat_conv_fwd(x, w, gdc, out_gain, bias, T, R, mean_tab, sd_tab, noise_scale, sd_const, pads, stride,
                          dilation, r_in, dac, bound, lsb, out_sd, quant, seed, r_in > 0.0 || out_gain.requires_grad(),
                          delta, ir);
    // o: out, xe, xin, amax, inside, pre, wstack, scale, dfac, gain
    ctx->save_for_backward({x, o[1], o[2], o[4], o[5], o[6], o[7], o[8], o[9], w, gdc});
    ctx->saved_data["r"] = r_in;
    ctx->saved_data["pads"] = pads;
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["dilation"] = dilation;
    return o[0];
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    const auto n = needs(ctx);
    auto g = hat_conv_bwd(grads[0], s[0], s[1], s[2], s[3], opt(s[4]), s[5], s[6], s[7], s[8], s[9],
                          ctx->saved_data["pads"].toIntVector(), ctx->saved_data["stride"].toIntVector(),
                          ctx->saved_data["dilation"].toIntVector(), ctx->saved_data["r"].toDouble(), n[0], n[1],
                          n[2], n[3], n[4], n[5]);
    variable_list out(24);
    out[0] = g[0]; out[1] = g[1];
    out[3] = g[3].defined() ? g[3] * s[10] : at::Tensor();
    out[4] = g[2]; out[5] = g[4]; out[6] = g[5];
    return out;
  }
};

}  // namespace

// The whole training read of a linear layer (B, in) -> (B, out), differentiable.
torch::Tensor hat_linear(torch::Tensor x, torch::Tensor w, torch::Tensor gdc, torch::Tensor out_gain,
                         c10::optional<torch::Tensor> bias, c10::optional<torch::Tensor> r,
                         c10::optional<torch::Tensor> delta,
                         c10::optional<torch::Tensor> mean_tab, c10::optional<torch::Tensor> sd_tab, int64_t T, int64_t R,
                         double noise_scale, double sd_const, double r_in, int64_t dac, double bound, double lsb,
                         double out_sd, bool quant, int64_t seed, std::vector<double> ir) {
  return HatLinearFn::apply(x.contiguous(), w.contiguous(), gdc, out_gain.contiguous(), bias,
                            r, delta, mean_tab, sd_tab, T, R, noise_scale, sd_const, r_in, dac, bound,
                            lsb, out_sd, quant, seed, ir);
}

// The whole training read of a 1-d or 2-d convolution, differentiable.
torch::Tensor hat_conv(torch::Tensor x, torch::Tensor w, torch::Tensor gdc, torch::Tensor out_gain,
                       c10::optional<torch::Tensor> bias, c10::optional<torch::Tensor> r,
                       c10::optional<torch::Tensor> delta,
                       c10::optional<torch::Tensor> mean_tab, c10::optional<torch::Tensor> sd_tab, int64_t T, int64_t R,
                       double noise_scale, double sd_const, std::vector<int64_t> pads, std::vector<int64_t> stride,
                       std::vector<int64_t> dilation, double r_in, int64_t dac, double bound, double lsb,
                       double out_sd, bool quant, int64_t seed, std::vector<double> ir) {
  return HatConvFn::apply(x, w.contiguous(), gdc, out_gain.contiguous(), bias,
                          r, delta, mean_tab, sd_tab, T, R, noise_scale, sd_const, pads, stride,
                          dilation, r_in, dac, bound, lsb, out_sd, quant, seed, ir);
}
"""

FUNCTIONS = ("hat_linear", "hat_conv")
