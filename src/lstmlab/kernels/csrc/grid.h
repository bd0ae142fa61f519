// The 2-D Grid LSTM column (lstmlab.GridLSTMColumn, Kalchbrenner et al. 2015) as a fused
// sequence operation with a hand-written backward; tests/test_fused.py holds it to the readable
// loop. The input projection d_t = W_in x_t comes precomputed for all steps (the caller
// differentiates it with autograd). Per step t, up the column l = 0 .. L-1, with the depth pair
// starting at (d_t, 0):
//   z = [h^time_l ; h^depth] W_l^T + b_l   (8H: the time LSTM's i, f, g, o, then the depth one's)
//   m^time_l = f_0 ⊙ m^time_l + i_0 ⊙ g_0,  h^time_l = o_0 ⊙ tanh(m^time_l)
//   m^depth  = f_1 ⊙ m^depth + i_1 ⊙ g_1,   h^depth = o_1 ⊙ tanh(m^depth)
// and the step's output is the top block's h^depth. No dropout here: the Python side runs a
// training column with dropout through the readable loop.
#pragma once

#include "blas.h"
#include "common.h"

namespace lstmlab {

// One N-LSTM block's pointwise part for one row and one dimension: z (4H: i, f, g, o) becomes
// the activations; m_new = f ⊙ m_old + i ⊙ g, h_new = o ⊙ tanh(m_new).
template <typename T>
LSTMLAB_INLINE void grid_lstm_row(T* z, const T* m_old, T* m_new, T* h_new, int64_t H) {
  T *ig = z, *fg = z + H, *gg = z + 2 * H, *og = z + 3 * H;
  for (int64_t j = 0; j < H; ++j) ig[j] = sigmoid(ig[j]);
  for (int64_t j = 0; j < H; ++j) fg[j] = sigmoid(fg[j]);
  for (int64_t j = 0; j < H; ++j) gg[j] = tanh_(gg[j]);
  for (int64_t j = 0; j < H; ++j) og[j] = sigmoid(og[j]);
  for (int64_t j = 0; j < H; ++j) m_new[j] = fg[j] * m_old[j] + ig[j] * gg[j];
  for (int64_t j = 0; j < H; ++j) h_new[j] = og[j] * tanh_(m_new[j]);
}

// Its gradient: dh, dm (into h_new, m_new) -> dz (4H) and dm_old (= dL/dm_old).
template <typename T>
LSTMLAB_INLINE void grid_lstm_row_backward(const T* z, const T* m_old, const T* m_new,
                                           const T* dh, const T* dm, T* dz, T* dm_old,
                                           int64_t H) {
  const T *ig = z, *fg = z + H, *gg = z + 2 * H, *og = z + 3 * H;
  T *dzi = dz, *dzf = dz + H, *dzg = dz + 2 * H, *dzo = dz + 3 * H;
  for (int64_t j = 0; j < H; ++j) {
    const T th = tanh_(m_new[j]);
    dzo[j] = dh[j] * th * og[j] * (T(1) - og[j]);
    const T d = dm[j] + dh[j] * og[j] * (T(1) - th * th);               // all of dL/dm_new
    dzi[j] = d * gg[j] * ig[j] * (T(1) - ig[j]);
    dzf[j] = d * m_old[j] * fg[j] * (T(1) - fg[j]);
    dzg[j] = d * ig[j] * (T(1) - gg[j] * gg[j]);
    dm_old[j] = d * fg[j];
  }
}

// d (T, B, H); w (L, 8H, 2H); bias (L, 8H) or empty; h0, m0 (B, L·H). Returns ys (T, B, H);
// hs, ms (T+1, B, L·H) the time pairs; inp (T, L, B, 2H) each block's input [h^time; h^depth];
// md (T, L+1, B, H) the depth memory into each block (and out of the top one); acts (T, L, B,
// 8H).
inline std::vector<at::Tensor> grid_forward(const at::Tensor& d, const at::Tensor& w,
                                            const at::Tensor& bias, const at::Tensor& h0,
                                            const at::Tensor& m0, const at::Tensor& lengths) {
  const int64_t T = d.size(0), B = d.size(1), H = d.size(2), L = w.size(0), LH = L * H;
  auto opts = d.options();
  at::Tensor ys = at::empty({T, B, H}, opts);
  at::Tensor hs = at::empty({T + 1, B, LH}, opts), ms = at::empty({T + 1, B, LH}, opts);
  at::Tensor inp = at::empty({T, L, B, 2 * H}, opts), md = at::zeros({T, L + 1, B, H}, opts);
  at::Tensor acts = at::empty({T, L, B, 8 * H}, opts), hd = at::empty({B, H}, opts);
  hs[0].copy_(h0);
  ms[0].copy_(m0);
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  const at::Tensor w_c = w.contiguous(), d_c = d.contiguous();
  AT_DISPATCH_FLOATING_TYPES(d.scalar_type(), "grid_forward", [&] {
    using T_ = scalar_t;
    const T_ *w_p = w_c.data_ptr<T_>(), *d_p = d_c.data_ptr<T_>();
    const T_* b_p = data_or_null<T_>(bias);
    T_ *ys_p = ys.data_ptr<T_>(), *hs_p = hs.data_ptr<T_>(), *ms_p = ms.data_ptr<T_>();
    T_ *in_p = inp.data_ptr<T_>(), *md_p = md.data_ptr<T_>(), *act_p = acts.data_ptr<T_>();
    T_* hd_p = hd.data_ptr<T_>();
    const int64_t BH = B * H, G = 8 * H;
    for (int64_t t = 0; t < T; ++t) {
      std::memcpy(hd_p, d_p + t * BH, BH * sizeof(T_));               // the depth pair (d_t, 0)
      const T_ *hprev = hs_p + t * B * LH, *mprev = ms_p + t * B * LH;
      T_ *hn = hs_p + (t + 1) * B * LH, *mn = ms_p + (t + 1) * B * LH;
      for (int64_t l = 0; l < L; ++l) {
        T_* in = in_p + (t * L + l) * B * 2 * H;
        T_* z = act_p + (t * L + l) * B * G;
        for (int64_t b = 0; b < B; ++b) {                              // [h^time_l ; h^depth]
          std::memcpy(in + b * 2 * H, hprev + b * LH + l * H, H * sizeof(T_));
          std::memcpy(in + b * 2 * H + H, hd_p + b * H, H * sizeof(T_));
        }
        if (b_p)
          for (int64_t b = 0; b < B; ++b) std::memcpy(z + b * G, b_p + l * G, G * sizeof(T_));
        gemm_nt<T_>(B, G, 2 * H, in, w_p + l * G * 2 * H, b_p ? T_(1) : T_(0), z);
        const T_* md_in = md_p + (t * (L + 1) + l) * BH;
        T_* md_out = md_p + (t * (L + 1) + l + 1) * BH;
        for_rows(B, 2 * G, [&](int64_t b) {
          T_* zb = z + b * G;
          const int64_t k = b * LH + l * H;
          grid_lstm_row(zb, mprev + k, mn + k, hn + k, H);
          grid_lstm_row(zb + 4 * H, md_in + b * H, md_out + b * H, hd_p + b * H, H);
        });
      }
      std::memcpy(ys_p + t * BH, hd_p, BH * sizeof(T_));
      hold_ended(hn, hprev, B, LH, len, t);
      hold_ended(mn, mprev, B, LH, len, t);
    }
  });
  return {ys, hs, ms, inp, md, acts};
}

// Gradients for: d, w, bias (empty if none), h0, m0. grad_ys (T, B, H); grad_hn, grad_mn
// (B, L·H).
inline std::vector<at::Tensor> grid_backward(
    const at::Tensor& grad_ys, const at::Tensor& grad_hn, const at::Tensor& grad_mn,
    const at::Tensor& w, bool has_bias, const at::Tensor& ms, const at::Tensor& inp,
    const at::Tensor& md, const at::Tensor& acts, const at::Tensor& lengths) {
  const int64_t T = acts.size(0), L = acts.size(1), B = acts.size(2), H = acts.size(3) / 8;
  const int64_t LH = L * H, G = 8 * H, BH = B * H;
  auto opts = acts.options();
  at::Tensor dd = at::empty({T, B, H}, opts), dz = at::empty({T, L, B, G}, opts);
  at::Tensor dh = grad_hn.clone().contiguous(), dm = grad_mn.clone().contiguous();
  at::Tensor dhd = at::empty({B, H}, opts), dmd = at::empty({B, H}, opts);
  at::Tensor dmd_in = at::empty({B, H}, opts), din = at::empty({B, 2 * H}, opts);
  at::Tensor zeros = at::zeros({B, H}, opts);
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  const at::Tensor w_c = w.contiguous(), gy = grad_ys.contiguous();
  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "grid_backward", [&] {
    using T_ = scalar_t;
    const T_ *w_p = w_c.data_ptr<T_>(), *gy_p = gy.data_ptr<T_>(), *ms_p = ms.data_ptr<T_>();
    const T_ *md_p = md.data_ptr<T_>(), *act_p = acts.data_ptr<T_>();
    T_ *dd_p = dd.data_ptr<T_>(), *dz_p = dz.data_ptr<T_>();
    T_ *dh_p = dh.data_ptr<T_>(), *dm_p = dm.data_ptr<T_>(), *dhd_p = dhd.data_ptr<T_>();
    T_ *dmd_p = dmd.data_ptr<T_>(), *dmi_p = dmd_in.data_ptr<T_>(), *din_p = din.data_ptr<T_>();
    for (int64_t t = T - 1; t >= 0; --t) {
      std::memcpy(dhd_p, gy_p + t * BH, BH * sizeof(T_));            // into the top h^depth
      std::memset(dmd_p, 0, BH * sizeof(T_));
      const T_ *mprev = ms_p + t * B * LH, *mnow = ms_p + (t + 1) * B * LH;
      for (int64_t l = L - 1; l >= 0; --l) {
        const T_* z = act_p + (t * L + l) * B * G;
        T_* dzl = dz_p + (t * L + l) * B * G;
        const T_* md_in = md_p + (t * (L + 1) + l) * BH;
        const T_* md_out = md_p + (t * (L + 1) + l + 1) * BH;
        for_rows(B, 2 * G, [&](int64_t b) {
          T_* dzb = dzl + b * G;
          if (!live(len, b, t)) {          // an ended row: its time pair's gradient waits
            std::memset(dzb, 0, G * sizeof(T_));
            std::memset(dmi_p + b * H, 0, H * sizeof(T_));
            return;
          }
          const int64_t k = b * LH + l * H;
          // The time LSTM: its outputs' gradients come from step t+1; dm_p becomes dL/dm_{t-1}.
          grid_lstm_row_backward(z + b * G, mprev + k, mnow + k, dh_p + k, dm_p + k, dzb,
                                 dm_p + k, H);
          grid_lstm_row_backward(z + b * G + 4 * H, md_in + b * H, md_out + b * H,
                                 dhd_p + b * H, dmd_p + b * H, dzb + 4 * H, dmi_p + b * H, H);
        });
        gemm_nn<T_>(B, 2 * H, G, dzl, w_p + l * G * 2 * H, T_(0), din_p);   // dL/d[h^t; h^d]
        for (int64_t b = 0; b < B; ++b) {
          if (!live(len, b, t)) continue;
          std::memcpy(dh_p + b * LH + l * H, din_p + b * 2 * H, H * sizeof(T_));
          std::memcpy(dhd_p + b * H, din_p + b * 2 * H + H, H * sizeof(T_));
        }
        std::memcpy(dmd_p, dmi_p, BH * sizeof(T_));
      }
      std::memcpy(dd_p + t * BH, dhd_p, BH * sizeof(T_));            // into d_t = W_in x_t
      for (int64_t b = 0; b < B; ++b)
        if (!live(len, b, t)) std::memset(dd_p + t * BH + b * H, 0, H * sizeof(T_));
    }
  });
  // Weight gradients over all steps: dW_l = Σ_t dz_{t,l}^T [h^time; h^depth]_{t,l}.
  const at::Tensor dzl = dz.permute({1, 0, 2, 3}).reshape({L, T * B, G});
  const at::Tensor inl = inp.permute({1, 0, 2, 3}).reshape({L, T * B, 2 * H});
  at::Tensor empty = at::empty({0}, opts);
  return {dd, at::bmm(dzl.transpose(1, 2), inl), has_bias ? dzl.sum(1) : empty, dh, dm};
}

}  // namespace lstmlab
