"""C++ source of the IR-drop correction of the fused HAT read (semantics:
:func:`aimc.tiles.irdrop.effective_weights` with ``ir_drop.mode: first_order``; Python
entry point: :func:`aimc.train.hat_fused.ir_drop_delta`).

``irdrop_block`` (in ``KERNEL``, compiled before :mod:`aimc.cpp.hat`, whose weight side
calls it when the read is given IR-drop settings) computes the correction of one block of
a tile; ``hat_irdrop_delta`` computes, in one call, the noise-free normalised tile weights of the
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

The nested cumulative sums are evaluated in closed form from prefix sums (see
``irdrop_block``), in float32; the result equals the PyTorch reference to float32 rounding
of a weight (``tests/train/test_hat_irdrop_fast.py``).
"""

KERNEL = r"""
namespace {

// dst (cols, rows; row stride ds) = src (rows, cols; row stride ss)^T, in 16 x 16 blocks.
inline void transpose_block(const float* __restrict src, int64_t ss, float* __restrict dst, int64_t ds, int64_t rows,
                            int64_t cols) {
  for (int64_t i0 = 0; i0 < rows; i0 += 16)
    for (int64_t j0 = 0; j0 < cols; j0 += 16)
      for (int64_t i = i0; i < std::min<int64_t>(i0 + 16, rows); ++i)
        for (int64_t j = j0; j < std::min<int64_t>(j0 + 16, cols); ++j) dst[j * ds + i] = src[i * ss + j];
}

// The first-order IR-drop correction, in normalised weight units, of a block of nb columns
// of one tile (one output tile, or part of one) at the clean weights wc, WRITTEN to out
// (see the module doc). Column o of the block (weight row o) holds rows 0..len at
// wc + o * ws; its correction goes to out + o * os. With g+- = g_min + max(+-w, 0) dg and
// c = -r_uS / dg the correction is c * sum_p sgn_p g_p (A_p + K_p), where
//   A[o] = cumsum_o(revcumsum_o(g))[o] = P(o) + k (Tot - C(o)),  k = o + 1,
//          C, P: inclusive prefix sums over the block of g and k g, Tot: its sum of g;
//   K[r] = revcumsum_r(cumsum_r(g))[r] + extra S = (len - r) C(r) + (Q - Qc(r)) + extra S,
//          C, Qc: inclusive prefix sums over the rows of g and (len - r) g, S, Q their totals,
//          extra = rows - len (the unused rows' wire segments).
// Float sums: a block's sums are at most rows * width * g_max (~1e6 uS for 256 x 256 at
// 25 uS), so their rounding (relative 6e-8) moves the correction, itself ~r g N^2 ~ 1 % of
// a weight, by ~1e-9 of a weight.
// Loop bodies of irdrop_block: restrict-qualified parameters, so that GCC vectorises them.
inline void ir_row_tot(const float* __restrict w, float* __restrict Tp, float* __restrict Tn, int64_t n, float gm,
                       float d) {
  for (int64_t r = 0; r < n; ++r) {
    Tp[r] += gm + std::max(w[r], 0.f) * d;
    Tn[r] += gm + std::max(-w[r], 0.f) * d;
  }
}

inline void ir_row(const float* __restrict w, float* __restrict y, float* __restrict Cp, float* __restrict Cn,
                   float* __restrict Pp, float* __restrict Pn, const float* __restrict Tp, const float* __restrict Tn,
                   int64_t n, float k, float gm, float d, float c) {
  for (int64_t r = 0; r < n; ++r) {
    const float gp = gm + std::max(w[r], 0.f) * d, gn = gm + std::max(-w[r], 0.f) * d;
    Cp[r] += gp; Cn[r] += gn; Pp[r] += k * gp; Pn[r] += k * gn;
    y[r] = c * (gp * (Pp[r] + k * (Tp[r] - Cp[r])) - gn * (Pn[r] + k * (Tn[r] - Cn[r])));
  }
}

inline void ir_col_tot(const float* __restrict w, float* __restrict Sp, float* __restrict Sn, float* __restrict Qp,
                       float* __restrict Qn, int64_t n, float m, float gm, float d) {
  for (int64_t o = 0; o < n; ++o) {
    const float gp = gm + std::max(w[o], 0.f) * d, gn = gm + std::max(-w[o], 0.f) * d;
    Sp[o] += gp; Sn[o] += gn; Qp[o] += m * gp; Qn[o] += m * gn;
  }
}

inline void ir_col(const float* __restrict w, float* __restrict y, float* __restrict Kp, float* __restrict Kn,
                   float* __restrict Rp, float* __restrict Rn, const float* __restrict Sp, const float* __restrict Sn,
                   const float* __restrict Qp, const float* __restrict Qn, int64_t n, float m, float gm, float d,
                   float c, float extra) {
  for (int64_t o = 0; o < n; ++o) {
    const float gp = gm + std::max(w[o], 0.f) * d, gn = gm + std::max(-w[o], 0.f) * d;
    Kp[o] += gp; Kn[o] += gn; Rp[o] += m * gp; Rn[o] += m * gn;
    y[o] = c * (gp * (m * Kp[o] + (Qp[o] - Rp[o]) + extra * Sp[o]) - gn * (m * Kn[o] + (Qn[o] - Rn[o]) + extra * Sn[o]));
  }
}

void irdrop_block(const float* __restrict wc, int64_t ws, float* __restrict out, int64_t os, int64_t nb, int64_t len,
                  double r_uS, double g_min, double dg, int64_t rows) {
  const float gm = (float)g_min, d = (float)dg, c = (float)(-r_uS / dg), extra = (float)(rows - len);
  std::vector<float> buf(6 * len, 0.f);  // row wires: totals, prefix sums of g and k g, per row
  float* T = buf.data();
  for (int64_t o = 0; o < nb; ++o) ir_row_tot(wc + o * ws, T, T + len, len, gm, d);
  for (int64_t o = 0; o < nb; ++o)
    ir_row(wc + o * ws, out + o * os, T + 2 * len, T + 3 * len, T + 4 * len, T + 5 * len, T, T + len, len,
           (float)(o + 1), gm, d, c);
  // column wires, along the rows of each column: vectorised across the block's columns on
  // the block transposed (rows outer), then added back
  std::vector<float> wt(len * nb), kt(len * nb), acc(8 * nb, 0.f);
  transpose_block(wc, ws, wt.data(), nb, nb, len);
  float* A = acc.data();
  for (int64_t r = 0; r < len; ++r)
    ir_col_tot(wt.data() + r * nb, A, A + nb, A + 2 * nb, A + 3 * nb, nb, (float)(len - r), gm, d);
  for (int64_t r = 0; r < len; ++r)
    ir_col(wt.data() + r * nb, kt.data() + r * nb, A + 4 * nb, A + 5 * nb, A + 6 * nb, A + 7 * nb, A, A + nb,
           A + 2 * nb, A + 3 * nb, nb, (float)(len - r), gm, d, c, extra);
  for (int64_t r0 = 0; r0 < len; r0 += 16)  // out (nb, len; row stride os) += kt^T
    for (int64_t o0 = 0; o0 < nb; o0 += 16)
      for (int64_t o = o0; o < std::min<int64_t>(o0 + 16, nb); ++o)
        for (int64_t r = r0; r < std::min<int64_t>(r0 + 16, len); ++r) out[o * os + r] += kt[r * nb + o];
}

}  // namespace
"""

SOURCE = r"""
// Clean weights of w (O, I) (weights_impl, noise off) -> their first-order IR-drop delta (O, I).
torch::Tensor hat_irdrop_delta(torch::Tensor w, int64_t T, int64_t R, c10::optional<torch::Tensor> mean_tab,
                               double r_uS, double g_min, double dg, int64_t rows, int64_t width) {
  check_f32(w, "w");
  TORCH_CHECK(dg > 0.0 && r_uS >= 0.0 && g_min >= 0.0 && width >= 1 && rows >= R,
              "hat_irdrop_delta: need dg > 0, r_uS >= 0, g_min >= 0, width >= 1 and rows >= R");
  const int64_t O = w.size(0), I = w.numel() / std::max<int64_t>(O, 1);
  auto W = weights_impl(w.view({O, I}), T, R, mean_tab, c10::nullopt, 0.0, 1.0, 0, c10::nullopt, true, IrDrop(), false);
  auto delta = at::empty({O, I}, w.options());
  const float* wc = W.wn.data_ptr<float>();
  float* dp = delta.data_ptr<float>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t o0 = 0; o0 < O; o0 += width)
      irdrop_block(wc + o0 * I + t * R, I, dp + o0 * I + t * R, I, std::min<int64_t>(width, O - o0),
                   std::min<int64_t>(R, I - t * R), r_uS, g_min, dg, rows);
  return delta;
}
"""

FUNCTIONS = ("hat_irdrop_delta",)
