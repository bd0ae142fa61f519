// The layer-normalised GRU (lstmlab.LayerNormGRUCell: torch's GRU, reset after the matmul, with
// Ba, Kiros & Hinton's layer norm on both halves of the pre-activations) as a fused sequence
// operation with a hand-written backward; tests/test_fused.py holds it to the readable loop.
// The input half a_t = LN(W_ih x_t; γ_ih) + b_ih comes precomputed for all steps (the caller
// differentiates it with autograd). Per step:
//   v = γ_hh ⊙ n(h_{t-1} W_hh^T) + b_hh;  r = σ(a_r + v_r), z = σ(a_z + v_z)
//   n = tanh(a_n + r ⊙ v_n);  h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
// Regularisers (empty tensors when off): rec_mask (B, H), recurrent dropout (Gal & Ghahramani
// 2016) on h_{t-1} where W_hh meets it -- not in the carry z ⊙ h_{t-1}; keep_h (T, B, H),
// zoneout (Krueger et al. 2016) of h_t.
#pragma once

#include "blas.h"
#include "common.h"
#include "ln_lstm.h"  // normalise_row, normalise_row_backward

namespace lstmlab {

// a (T, B, 3H) rows r, z, n; w_hh (3H, H); g_hh (3H,); b_hh (3H,) or empty. Returns hs
// (T+1, B, H), acts (T, B, 3H) = r, z, n, and n_hh (T, B, 3H), rs_hh (T, B) of the recurrent
// half's layer norm.
inline std::vector<at::Tensor> ln_gru_forward(const at::Tensor& a, const at::Tensor& w_hh,
                                              const at::Tensor& g_hh, const at::Tensor& b_hh,
                                              const at::Tensor& h0, const at::Tensor& lengths,
                                              double eps, const at::Tensor& rec_mask,
                                              const at::Tensor& keep_h) {
  const int64_t T = a.size(0), B = a.size(1), H = w_hh.size(1), G = 3 * H;
  const bool drop = rec_mask.numel() > 0, zone_h = keep_h.numel() > 0;
  auto opts = a.options();
  at::Tensor hs = at::empty({T + 1, B, H}, opts), acts = at::empty({T, B, G}, opts);
  at::Tensor n_hh = at::empty({T, B, G}, opts), rs_hh = at::empty({T, B}, opts);
  at::Tensor u = at::empty({B, G}, opts);
  hs[0].copy_(h0);
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  const at::Tensor whh = w_hh.contiguous(), a_c = a.contiguous();
  const at::Tensor mask = drop ? rec_mask.expand({B, H}).contiguous() : at::Tensor();
  const at::Tensor kh_all = zone_h ? keep_h.expand({T, B, H}).contiguous() : at::Tensor();
  at::Tensor h_in = drop ? at::empty({B, H}, opts) : at::Tensor();   // h_{t-1} ⊙ mask
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "ln_gru_forward", [&] {
    using T_ = scalar_t;
    const T_ *whh_p = whh.data_ptr<T_>(), *a_p = a_c.data_ptr<T_>(), *ghh = g_hh.data_ptr<T_>();
    const T_* bhh = data_or_null<T_>(b_hh);
    T_ *hs_p = hs.data_ptr<T_>(), *u_p = u.data_ptr<T_>(), *act_p = acts.data_ptr<T_>();
    T_ *nhh_p = n_hh.data_ptr<T_>(), *rhh_p = rs_hh.data_ptr<T_>();
    const T_ *mk = data_or_null<T_>(mask), *kh_p = data_or_null<T_>(kh_all);
    T_* hin_p = drop ? h_in.data_ptr<T_>() : nullptr;
    for (int64_t t = 0; t < T; ++t) {
      const T_* hprev = hs_p + t * B * H;
      T_* hn = hs_p + (t + 1) * B * H;
      const T_* hw = hprev;
      if (drop) {
        for (int64_t j = 0; j < B * H; ++j) hin_p[j] = hprev[j] * mk[j];
        hw = hin_p;
      }
      gemm_nt<T_>(B, G, H, hw, whh_p, T_(0), u_p);          // u = (h_{t-1} ⊙ mask) W_hh^T
      for_rows(B, 4 * G, [&](int64_t b) {
        const int64_t tb = t * B + b;
        T_ *n = nhh_p + tb * G, *v = u_p + b * G, *act = act_p + tb * G;
        rhh_p[tb] = normalise_row(v, n, G, eps);
        for (int64_t j = 0; j < G; ++j) v[j] = ghh[j] * n[j] + (bhh ? bhh[j] : T_(0));
        const T_* ab = a_p + tb * G;
        T_ *r = act, *z = act + H, *nn = act + 2 * H;
        for (int64_t j = 0; j < H; ++j) r[j] = sigmoid(ab[j] + v[j]);
        for (int64_t j = 0; j < H; ++j) z[j] = sigmoid(ab[H + j] + v[H + j]);
        for (int64_t j = 0; j < H; ++j) nn[j] = tanh_(ab[2 * H + j] + r[j] * v[2 * H + j]);
        const T_* hp = hprev + b * H;
        T_* h = hn + b * H;
        for (int64_t j = 0; j < H; ++j) h[j] = (T_(1) - z[j]) * nn[j] + z[j] * hp[j];
      });
      if (zone_h) zone_rows(hn, hprev, hn, kh_p + t * B * H, B, H, len, t);
      hold_ended(hn, hprev, B, H, len, t);
    }
  });
  return {hs, acts, n_hh, rs_hh};
}

// Gradients for: a, w_hh, g_hh, b_hh (empty if none), h0.
inline std::vector<at::Tensor> ln_gru_backward(const at::Tensor& grad_hs, const at::Tensor& w_hh,
                                               const at::Tensor& g_hh, const at::Tensor& b_hh,
                                               const at::Tensor& hs, const at::Tensor& acts,
                                               const at::Tensor& n_hh, const at::Tensor& rs_hh,
                                               const at::Tensor& lengths,
                                               const at::Tensor& rec_mask,
                                               const at::Tensor& keep_h) {
  const int64_t T = acts.size(0), B = acts.size(1), H = w_hh.size(1), G = 3 * H;
  const bool drop = rec_mask.numel() > 0, zone_h = keep_h.numel() > 0;
  auto opts = acts.options();
  // Per step: da = dL/da (r, z, n pre-activations), dv = dL/dv, du = dL/d(h_{t-1} W_hh^T).
  at::Tensor da = at::empty({T, B, G}, opts), dv = at::empty({T, B, G}, opts);
  at::Tensor du = at::empty({T, B, G}, opts);
  at::Tensor dh = at::zeros({B, H}, opts), dht = at::empty({B, H}, opts);
  at::Tensor carry = at::empty({B, H}, opts), scratch = at::empty({B, G}, opts);
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  const at::Tensor whh = w_hh.contiguous(), ghs = grad_hs.contiguous(), hs_c = hs.contiguous();
  const at::Tensor mask = drop ? rec_mask.expand({B, H}).contiguous() : at::Tensor();
  const at::Tensor kh_all = zone_h ? keep_h.expand({T, B, H}).contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "ln_gru_backward", [&] {
    using T_ = scalar_t;
    const T_ *whh_p = whh.data_ptr<T_>(), *g_p = ghs.data_ptr<T_>(), *ghh = g_hh.data_ptr<T_>();
    const T_* bhh = data_or_null<T_>(b_hh);
    const T_ *hs_p = hs_c.data_ptr<T_>(), *act_p = acts.data_ptr<T_>();
    const T_ *nhh_p = n_hh.data_ptr<T_>(), *rhh_p = rs_hh.data_ptr<T_>();
    T_ *da_p = da.data_ptr<T_>(), *dv_p = dv.data_ptr<T_>(), *du_p = du.data_ptr<T_>();
    T_ *dh_p = dh.data_ptr<T_>(), *dht_p = dht.data_ptr<T_>(), *cr_p = carry.data_ptr<T_>();
    T_* sc_p = scratch.data_ptr<T_>();
    const T_ *mk = data_or_null<T_>(mask), *kh_p = data_or_null<T_>(kh_all);
    const int64_t BH = B * H;
    for (int64_t t = T - 1; t >= 0; --t) {
      const T_* gt = g_p + (t + 1) * BH;
      for (int64_t j = 0; j < BH; ++j) dht_p[j] = dh_p[j] + gt[j];
      const T_* kh = kh_p ? kh_p + t * BH : nullptr;      // zoneout: (1 - k) to the step's own h_t
      for_rows(B, 4 * G, [&](int64_t b) {
        const int64_t tb = t * B + b;
        T_ *dab = da_p + tb * G, *dvb = dv_p + tb * G, *dub = du_p + tb * G;
        T_* cr = cr_p + b * H;
        if (!live(len, b, t)) {            // an ended row: the gradient passes straight through
          std::memset(dab, 0, G * sizeof(T_));
          std::memset(dvb, 0, G * sizeof(T_));
          std::memset(dub, 0, G * sizeof(T_));
          std::memset(cr, 0, H * sizeof(T_));
          return;
        }
        const T_ *act = act_p + tb * G, *r = act, *z = act + H, *nn = act + 2 * H;
        const T_ *nh = nhh_p + tb * G, *hp = hs_p + t * BH + b * H, *dt = dht_p + b * H;
        const T_* khb = kh ? kh + b * H : nullptr;
        for (int64_t j = 0; j < H; ++j) {
          const T_ dj = khb ? dt[j] * (T_(1) - khb[j]) : dt[j];          // dL/d(own h_t)
          const T_ vn = ghh[2 * H + j] * nh[2 * H + j] + (bhh ? bhh[2 * H + j] : T_(0));
          const T_ dn = dj * (T_(1) - z[j]) * (T_(1) - nn[j] * nn[j]);    // dL/d(n's input)
          const T_ dr = dn * vn * r[j] * (T_(1) - r[j]);
          const T_ dz = dj * (hp[j] - nn[j]) * z[j] * (T_(1) - z[j]);
          dab[j] = dr;
          dab[H + j] = dz;
          dab[2 * H + j] = dn;
          dvb[j] = dr;
          dvb[H + j] = dz;
          dvb[2 * H + j] = dn * r[j];
          cr[j] = dj * z[j] + (khb ? khb[j] * dt[j] : T_(0));    // z ⊙ h_{t-1}, k ⊙ h_{t-1}
        }
        T_* dn_hh = sc_p + b * G;
        for (int64_t j = 0; j < G; ++j) dn_hh[j] = dvb[j] * ghh[j];  // v = γ_hh ⊙ n(u) + b_hh
        normalise_row_backward(nh, dn_hh, rhh_p[tb], dub, G);
      });
      gemm_nn<T_>(B, H, G, du_p + t * B * G, whh_p, T_(0), dh_p);    // dL/dh_{t-1} via W_hh
      if (drop) for (int64_t j = 0; j < BH; ++j) dh_p[j] *= mk[j];
      for (int64_t j = 0; j < BH; ++j) dh_p[j] += cr_p[j];
      hold_ended(dh_p, dht_p, B, H, len, t);
    }
  });
  const at::Tensor du2 = du.view({T * B, G}), dv2 = dv.view({T * B, G});
  // What W_hh saw at every step: h_{t-1} ⊙ mask, (T, B, H).
  const at::Tensor h_in = drop ? hs.narrow(0, 0, T) * rec_mask : hs.narrow(0, 0, T);
  at::Tensor empty = at::empty({0}, opts);
  dh.add_(grad_hs[0]);
  return {da,
          at::mm(du2.t(), h_in.reshape({T * B, H})),
          (dv * n_hh).sum({0, 1}),
          b_hh.numel() ? dv2.sum(0) : empty,
          dh};
}

}  // namespace lstmlab
