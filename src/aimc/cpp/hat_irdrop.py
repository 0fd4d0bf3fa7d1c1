"""C++ source of the IR-drop correction of the fused HAT read (semantics:
:func:`aimc.tiles.irdrop.effective_weights` with ``ir_drop.mode: first_order``; Python
entry point: :func:`aimc.train.hat_fused.ir_drop_delta`).

``hat_irdrop_delta`` computes, in one call, the noise-free normalised tile weights of the
HAT weight side (``weights_impl`` of :mod:`aimc.cpp.hat` with the noise off: per-column
scale, expected drift and its compensation) and from them the first-order IR-drop
correction ``delta = w_eff - w`` (O, I), the additive ``delta`` of the fused read.

The formula is that of :func:`aimc.physics.circuit.effective_conductance_first_order`, on
the tiles as :mod:`aimc.tiles.irdrop` places them (one slice): for tile ``t`` (rows
``len`` used of ``rows``), polarity ``p`` (``G+ = g_min + max(w, 0) dg``, ``G- = g_min +
max(-w, 0) dg``, each its own array) and output tile (columns ``o0 .. o0 + width``)::

    D[r, o] = g[r, o] * cumsum_o(revcumsum_o(g))[r, o]              (row wires)
    K[r, o] = g[r, o] * (revcumsum_r(cumsum_r(g)) + (rows - len) * sum_r g)[r, o]  (column wires)
    G_eff   = g - r_uS (D + K)                                       (r_uS = 1e-6 r_wire_ohm)
    delta   = (G+_eff - G-_eff) / dg - w

Sums accumulate in double (as ATen's CPU ``cumsum`` does for float), so the result equals
the PyTorch reference to float32 rounding.
"""

SOURCE = r"""
namespace {

// delta (O, I) of the first-order IR drop at the clean weights wc (T, O, R) (see the module doc).
void irdrop_delta_impl(const float* __restrict wc, float* __restrict out, int64_t T, int64_t O, int64_t R, int64_t I,
                       double r_uS, double g_min, double dg, int64_t rows, int64_t width) {
  std::vector<double> g(O * R), a(O * R), e(O * R), hd(O * R), run(R), h(O), ex(O);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t len = std::min<int64_t>(R, I - t * R);
    const double extra = (double)(rows - len);
    std::fill(e.begin(), e.end(), 0.0);
    for (int p = 0; p < 2; ++p) {
      const double sgn = p == 0 ? 1.0 : -1.0;
      for (int64_t o = 0; o < O; ++o) {
        const float* w = wc + (t * O + o) * R;
        double* go = g.data() + o * R;
        for (int64_t r = 0; r < len; ++r) go[r] = g_min + std::max(sgn * (double)w[r], 0.0) * dg;
      }
      // row wires, per output tile: a = cumsum_o(revcumsum_o(g)), then a *= g
      for (int64_t o0 = 0; o0 < O; o0 += width) {
        const int64_t o1 = std::min<int64_t>(o0 + width, O);
        std::fill(run.begin(), run.end(), 0.0);
        for (int64_t o = o1 - 1; o >= o0; --o)
          for (int64_t r = 0; r < len; ++r) { run[r] += g[o * R + r]; a[o * R + r] = run[r]; }
        std::fill(run.begin(), run.end(), 0.0);
        for (int64_t o = o0; o < o1; ++o)
          for (int64_t r = 0; r < len; ++r) { run[r] += a[o * R + r]; a[o * R + r] = run[r]; }
      }
      // column wires: k = revcumsum_r(cumsum_r(g)) + extra * sum_r g, the columns side by side
      // (independent running sums, not one serial chain per column)
      std::fill(h.begin(), h.end(), 0.0);
      for (int64_t r = 0; r < len; ++r)
        for (int64_t o = 0; o < O; ++o) { h[o] += g[o * R + r]; hd[o * R + r] = h[o]; }
      for (int64_t o = 0; o < O; ++o) { ex[o] = extra * h[o]; h[o] = 0.0; }
      for (int64_t r = len - 1; r >= 0; --r)
        for (int64_t o = 0; o < O; ++o) {
          const int64_t i = o * R + r;
          h[o] += hd[i];
          e[i] += sgn * (g[i] - r_uS * (g[i] * a[i] + g[i] * (h[o] + ex[o])));
        }
    }
    for (int64_t o = 0; o < O; ++o) {
      const float* w = wc + (t * O + o) * R;
      float* dst = out + o * I + t * R;
      const double* eo = e.data() + o * R;
      for (int64_t r = 0; r < len; ++r) dst[r] = (float)(eo[r] / dg) - w[r];
    }
  }
}

}  // namespace

// Clean weights of w (O, I) (weights_impl, noise off) -> their first-order IR-drop delta (O, I).
torch::Tensor hat_irdrop_delta(torch::Tensor w, int64_t T, int64_t R, c10::optional<torch::Tensor> mean_tab,
                               double r_uS, double g_min, double dg, int64_t rows, int64_t width) {
  check_f32(w, "w");
  TORCH_CHECK(dg > 0.0 && r_uS >= 0.0 && g_min >= 0.0 && width >= 1 && rows >= R,
              "hat_irdrop_delta: need dg > 0, r_uS >= 0, g_min >= 0, width >= 1 and rows >= R");
  const int64_t O = w.size(0), I = w.numel() / std::max<int64_t>(O, 1);
  auto W = weights_impl(w.view({O, I}), T, R, mean_tab, c10::nullopt, 0.0, 1.0, 0);
  auto delta = at::empty({O, I}, w.options());
  irdrop_delta_impl(W.wn.data_ptr<float>(), delta.data_ptr<float>(), T, O, R, I, r_uS, g_min, dg, rows, width);
  return delta;
}
"""

FUNCTIONS = ("hat_irdrop_delta",)
