// The GRU in both forms (lstmlab.GRUCell) as a fused sequence operation with a hand-written
// backward through time. Equations: src/lstmlab/cells/gru.py.
//
// reset_after=True:  per step one matmul hh = h W_hh^T + b_hh, then r, z, n, h' pointwise.
// reset_after=False: per step h W_hr,z^T, then (r ⊙ h) W_hn^T: two dependent matmuls.
#pragma once

#include "blas.h"
#include "common.h"

namespace lstmlab {

// The row loops, as functions whose rows never overlap (__restrict__), so that they vectorise.
// reset_after forward: r, z, n (in: pre-activations from x, out: gates), q = [h_r, h_z, h_n].
template <typename T>
inline void gru_row_after(int64_t H, T* __restrict__ r, T* __restrict__ z, T* __restrict__ n,
                          const T* __restrict__ qr, const T* __restrict__ qz,
                          const T* __restrict__ qn, const T* __restrict__ h, T* __restrict__ au,
                          T* __restrict__ hn) {
  for (int64_t j = 0; j < H; ++j) {
    r[j] = sigmoid(r[j] + qr[j]);
    z[j] = sigmoid(z[j] + qz[j]);
    n[j] = tanh_(n[j] + r[j] * qn[j]);                  // n = tanh(x_n + r ⊙ (W_hn h + b_hn))
    au[j] = qn[j];
    hn[j] = (T(1) - z[j]) * n[j] + z[j] * h[j];
  }
}

// reset before, first half: r, z and r ⊙ h (h as W_hh sees it).
template <typename T>
inline void gru_row_rz(int64_t H, T* __restrict__ r, T* __restrict__ z, const T* __restrict__ qr,
                       const T* __restrict__ qz, const T* __restrict__ h, T* __restrict__ au) {
  for (int64_t j = 0; j < H; ++j) {
    r[j] = sigmoid(r[j] + qr[j]);
    z[j] = sigmoid(z[j] + qz[j]);
    au[j] = r[j] * h[j];
  }
}

// reset before, second half: n and h_t.
template <typename T>
inline void gru_row_n(int64_t H, const T* __restrict__ z, T* __restrict__ n,
                      const T* __restrict__ qn, const T* __restrict__ h, T* __restrict__ hn) {
  for (int64_t j = 0; j < H; ++j) {
    n[j] = tanh_(n[j] + qn[j]);                         // n = tanh(x_n + W_hn (r ⊙ h) + b)
    hn[j] = (T(1) - z[j]) * n[j] + z[j] * h[j];
  }
}

// reset_after backward: dr, dz, dn = dL/d(x-side pre-activations), qr, qz, qn = dL/d(h-side
// products), db = the part of dL/dh_{t-1} outside the matmul; g = dL/dh_t (this step's share).
template <typename T>
inline void gru_row_after_back(int64_t H, const T* __restrict__ r, const T* __restrict__ z,
                               const T* __restrict__ n, const T* __restrict__ h,
                               const T* __restrict__ gb, const T* __restrict__ hq,
                               T* __restrict__ dr, T* __restrict__ dz, T* __restrict__ dn,
                               T* __restrict__ qr, T* __restrict__ qz, T* __restrict__ qn,
                               T* __restrict__ db) {
  for (int64_t j = 0; j < H; ++j) {
    const T dn_pre = gb[j] * (T(1) - z[j]) * (T(1) - n[j] * n[j]);
    dz[j] = gb[j] * (h[j] - n[j]) * z[j] * (T(1) - z[j]);
    dn[j] = dn_pre;
    dr[j] = dn_pre * hq[j] * r[j] * (T(1) - r[j]);
    qr[j] = dr[j];
    qz[j] = dz[j];
    qn[j] = dn_pre * r[j];
    db[j] = gb[j] * z[j];
  }
}

// Returns hs (T+1, B, H), acts (T, B, 3H) = [r, z, n], aux (T, B, H): W_hn h + b_hn
// (reset_after) or r ⊙ h (reset before). Regularisers (empty tensors when off): rec_mask (B, H),
// recurrent dropout (Gal & Ghahramani 2016) on h_{t-1} where W_hh meets it -- not in the carry
// z ⊙ h_{t-1}; keep_h (T, B, H), zoneout (Krueger et al. 2016) of h_t.
inline std::vector<at::Tensor> gru_forward(const at::Tensor& x, const at::Tensor& w_ih,
                                           const at::Tensor& b_ih, const at::Tensor& w_hh,
                                           const at::Tensor& b_hh, const at::Tensor& h0,
                                           const at::Tensor& lengths, bool reset_after,
                                           const at::Tensor& rec_mask, const at::Tensor& keep_h) {
  const int64_t T = x.size(0), B = x.size(1), H = w_hh.size(1);
  const bool drop = rec_mask.numel() > 0, zone_h = keep_h.numel() > 0;
  const auto x2 = x.reshape({T * B, x.size(2)});
  // Reset before the matmul: every bias is outside the gates' products, so both fold into Z.
  at::Tensor b = reset_after ? b_ih : (b_ih.numel() ? b_ih + b_hh : b_ih);
  at::Tensor acts = (b.numel() ? at::addmm(b, x2, w_ih.t()) : at::mm(x2, w_ih.t()))
                        .view({T, B, 3 * H});
  auto opts = x.options();
  at::Tensor hs = at::empty({T + 1, B, H}, opts), aux = at::zeros({T, B, H}, opts);  // rows past a length stay 0
  hs[0].copy_(h0);
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  // Raw pointers per step: at B = 1 an ATen op costs more than the step's arithmetic.
  const at::Tensor whh = w_hh.contiguous();
  const at::Tensor bhh = b_hh.numel() ? b_hh.contiguous() : at::Tensor();
  const at::Tensor mask = drop ? rec_mask.expand({B, H}).contiguous() : at::Tensor();
  const at::Tensor kh_all = zone_h ? keep_h.expand({T, B, H}).contiguous() : at::Tensor();
  at::Tensor h_in = drop ? at::empty({B, H}, opts) : at::Tensor();
  at::Tensor q_buf = at::empty({B, 3 * H}, opts);               // the step's h-side products
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gru_forward", [&] {
    using T_ = scalar_t;
    const T_* whh_p = whh.data_ptr<T_>();
    const T_* bhh_p = b_hh.numel() ? bhh.data_ptr<T_>() : nullptr;
    const T_* mk = drop ? mask.data_ptr<T_>() : nullptr;
    const T_* kh_p = zone_h ? kh_all.data_ptr<T_>() : nullptr;
    T_* hin_p = drop ? h_in.data_ptr<T_>() : nullptr;
    T_* q = q_buf.data_ptr<T_>();
    T_* acts_p = acts.data_ptr<T_>();
    T_* hs_p = hs.data_ptr<T_>();
    T_* aux_p = aux.data_ptr<T_>();
    const int64_t BH = B * H;
    for (int64_t t = 0; t < T; ++t) {
      T_* a = acts_p + t * 3 * BH;
      const T_* hp = hs_p + t * BH;
      T_* hn_ = hs_p + (t + 1) * BH;
      T_* au = aux_p + t * BH;
      const T_* hi = hp;                                         // what W_hh sees, (B, H)
      if (drop) {
        for (int64_t j = 0; j < BH; ++j) hin_p[j] = hp[j] * mk[j];
        hi = hin_p;
      }
      if (reset_after) {
        // hh = h W_hh^T + b_hh, (B, 3H): [h_r, h_z, h_n]
        if (bhh_p)
          for (int64_t b = 0; b < B; ++b) std::memcpy(q + b * 3 * H, bhh_p, 3 * H * sizeof(T_));
        gemm_nt<T_>(B, 3 * H, H, hi, whh_p, bhh_p ? T_(1) : T_(0), q);
        for_rows(B, 6 * H, [&](int64_t b) {
          if (!live(len, b, t)) return;
          T_* r = a + b * 3 * H;
          const T_* qr = q + b * 3 * H;
          gru_row_after<T_>(H, r, r + H, r + 2 * H, qr, qr + H, qr + 2 * H, hp + b * H,
                            au + b * H, hn_ + b * H);
        });
      } else {
        gemm_nt<T_>(B, 2 * H, H, hi, whh_p, T_(0), q);          // [r, z] from h, (B, 2H)
        for_rows(B, 3 * H, [&](int64_t b) {
          T_* r = a + b * 3 * H;
          const T_* qr = q + b * 2 * H;
          gru_row_rz<T_>(H, r, r + H, qr, qr + H, hi + b * H, au + b * H);
        });
        gemm_nt<T_>(B, H, H, au, whh_p + 2 * H * H, T_(0), q);   // (r ⊙ h) W_hn^T, (B, H)
        const T_* qn = q;
        for_rows(B, 3 * H, [&](int64_t b) {
          if (!live(len, b, t)) return;
          T_* z = a + b * 3 * H + H;
          gru_row_n<T_>(H, z, z + H, qn + b * H, hp + b * H, hn_ + b * H);
        });
      }
      if (zone_h) zone_rows(hn_, hp, hn_, kh_p + t * BH, B, H, len, t);
      hold_ended(hn_, hp, B, H, len, t);
    }
  });
  return {hs, acts, aux};
}

// Gradients for: x, w_ih, b_ih, w_hh, b_hh, h0.
inline std::vector<at::Tensor> gru_backward(const at::Tensor& grad_hs, const at::Tensor& x,
                                            const at::Tensor& w_ih, const at::Tensor& w_hh,
                                            bool has_bias, const at::Tensor& hs,
                                            const at::Tensor& acts, const at::Tensor& aux,
                                            const at::Tensor& lengths, bool reset_after,
                                            const at::Tensor& rec_mask,
                                            const at::Tensor& keep_h) {
  const int64_t T = x.size(0), B = x.size(1), H = w_hh.size(1);
  const bool drop = rec_mask.numel() > 0, zone_h = keep_h.numel() > 0;
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  auto opts = x.options();
  at::Tensor dX = at::zeros({T, B, 3 * H}, opts);   // dL/d(x W_ih^T + b_ih), per step
  at::Tensor dQ = reset_after ? at::zeros({T, B, 3 * H}, opts) : at::Tensor();  // dL/d(h W_hh^T + b_hh)
  at::Tensor dh = at::zeros({B, H}, opts);
  // Per-step work on raw pointers into buffers made once (see gru_forward).
  at::Tensor dht = at::empty({B, H}, opts), dstep = at::empty({B, H}, opts);
  at::Tensor through_buf = at::empty({B, H}, opts), drh_buf = at::empty({B, H}, opts);
  const at::Tensor whh = w_hh.contiguous(), ghs = grad_hs.contiguous();
  const at::Tensor mask = drop ? rec_mask.expand({B, H}).contiguous() : at::Tensor();
  const at::Tensor kh_all = zone_h ? keep_h.expand({T, B, H}).contiguous() : at::Tensor();
  const at::Tensor acts_c = acts.contiguous(), hs_c = hs.contiguous(), aux_c = aux.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gru_backward", [&] {
    using T_ = scalar_t;
    const T_* whh_p = whh.data_ptr<T_>();
    const T_* mk = drop ? mask.data_ptr<T_>() : nullptr;
    const T_* kh_p = zone_h ? kh_all.data_ptr<T_>() : nullptr;
    const T_* g_p = ghs.data_ptr<T_>();
    const T_* acts_p = acts_c.data_ptr<T_>();
    const T_* hs_p = hs_c.data_ptr<T_>();
    const T_* aux_p = aux_c.data_ptr<T_>();
    T_* dX_p = dX.data_ptr<T_>();
    T_* dQ_p = reset_after ? dQ.data_ptr<T_>() : nullptr;
    T_* dh_p = dh.data_ptr<T_>();
    T_* dht_p = dht.data_ptr<T_>();
    T_* dstep_p = dstep.data_ptr<T_>();
    T_* through = through_buf.data_ptr<T_>();
    T_* q = drh_buf.data_ptr<T_>();
    const int64_t BH = B * H;
    for (int64_t t = T - 1; t >= 0; --t) {
      const T_* gt = g_p + (t + 1) * BH;
      for (int64_t j = 0; j < BH; ++j) dht_p[j] = dh_p[j] + gt[j];  // all of dL/dh_t
      // Through zoneout: the step's own h_t gets (1 - k) of the gradient, h_{t-1} k of it.
      const T_* kh = zone_h ? kh_p + t * BH : nullptr;
      const T_* g = dht_p;
      if (zone_h) {
        for (int64_t j = 0; j < BH; ++j) dstep_p[j] = dht_p[j] * (T_(1) - kh[j]);
        g = dstep_p;
      }
      const T_* g_all = dht_p;
      const T_* a = acts_p + t * 3 * BH;
      const T_* hp = hs_p + t * BH;
      const T_* au = aux_p + t * BH;
      T_* dx = dX_p + t * 3 * BH;
      T_* dd = dh_p;                                             // dL/dh_{t-1} outside the matmul
      if (reset_after) {
        T_* dq = dQ_p + t * 3 * BH;
        for_rows(B, 8 * H, [&](int64_t b) {
          const T_ *r = a + b * 3 * H, *z = r + H, *n = r + 2 * H, *h = hp + b * H;
          const T_ *gb = g + b * H, *qn = au + b * H;
          T_ *dr = dx + b * 3 * H, *dz = dr + H, *dn = dr + 2 * H, *db = dd + b * H;
          T_ *qr = dq + b * 3 * H, *qz = qr + H, *qnn = qr + 2 * H;
          if (!live(len, b, t)) {
            std::memcpy(db, g_all + b * H, H * sizeof(T_));
            return;
          }
          gru_row_after_back<T_>(H, r, z, n, h, gb, qn, dr, dz, dn, qr, qz, qnn, db);
          if (kh) for (int64_t j = 0; j < H; ++j) db[j] += kh[b * H + j] * g_all[b * H + j];
        });
        gemm_nn<T_>(B, H, 3 * H, dq, whh_p, T_(0), through);      // dL/d(h_{t-1} ⊙ mask)
      } else {
        for_rows(B, 6 * H, [&](int64_t b) {
          const T_ *z = a + b * 3 * H + H, *n = z + H, *h = hp + b * H, *gb = g + b * H;
          T_ *dz = dx + b * 3 * H + H, *dn = dz + H;
          if (!live(len, b, t)) return;
          for (int64_t j = 0; j < H; ++j) {
            dn[j] = gb[j] * (T_(1) - z[j]) * (T_(1) - n[j] * n[j]);
            dz[j] = gb[j] * (h[j] - n[j]) * z[j] * (T_(1) - z[j]);
          }
        });
        gemm_nn<T_>(B, H, H, dx + 2 * H, whh_p + 2 * H * H, T_(0), q, 3 * H);  // dL/d(r ⊙ h)
        for_rows(B, 4 * H, [&](int64_t b) {
          const T_ *r = a + b * 3 * H, *z = r + H, *h = hp + b * H, *gb = g + b * H;
          T_ *dr = dx + b * 3 * H, *db = dd + b * H;
          if (!live(len, b, t)) {
            std::memcpy(db, g_all + b * H, H * sizeof(T_));
            return;
          }
          for (int64_t j = 0; j < H; ++j) {
            const T_ m = mk ? mk[b * H + j] : T_(1);             // r ⊙ (h ⊙ mask) met W_hn
            dr[j] = q[b * H + j] * h[j] * m * r[j] * (T_(1) - r[j]);
            db[j] = gb[j] * z[j] + q[b * H + j] * r[j] * m;
          }
          if (kh) for (int64_t j = 0; j < H; ++j) db[j] += kh[b * H + j] * g_all[b * H + j];
        });
        gemm_nn<T_>(B, H, 2 * H, dx, whh_p, T_(0), through, 3 * H);
      }
      if (drop) for (int64_t j = 0; j < BH; ++j) dh_p[j] += through[j] * mk[j];
      else for (int64_t j = 0; j < BH; ++j) dh_p[j] += through[j];
    }
  });
  const at::Tensor dX2 = dX.view({T * B, 3 * H});
  const at::Tensor x2 = x.reshape({T * B, x.size(2)});
  // What W_hh saw at every step: h_{t-1} ⊙ mask, (T, B, ·).
  const at::Tensor h_in = drop ? hs.narrow(0, 0, T) * rec_mask : hs.narrow(0, 0, T);
  const at::Tensor h2 = h_in.reshape({T * B, H});
  at::Tensor dx = at::mm(dX2, w_ih).view(x.sizes());
  at::Tensor dw_ih = at::mm(dX2.t(), x2);
  at::Tensor empty = at::empty({0}, opts);
  at::Tensor db_ih = has_bias ? dX2.sum(0) : empty, db_hh = empty, dw_hh;
  if (reset_after) {
    const at::Tensor dQ2 = dQ.view({T * B, 3 * H});
    dw_hh = at::mm(dQ2.t(), h2);
    if (has_bias) db_hh = dQ2.sum(0);
  } else {
    dw_hh = at::cat({at::mm(dX2.narrow(1, 0, 2 * H).t(), h2),
                     at::mm(dX2.narrow(1, 2 * H, H).t(), aux.view({T * B, H}))});
    if (has_bias) db_hh = db_ih;                                 // the biases were folded
  }
  dh.add_(grad_hs[0]);
  return {dx, dw_ih, db_ih, dw_hh, db_hh, dh};
}

}  // namespace lstmlab
