// The GRU in both forms (lstmlab.GRUCell) as a fused sequence operation with a hand-written
// backward through time. Equations: src/lstmlab/cells/gru.py.
//
// reset_after=True:  per step one matmul hh = h W_hh^T + b_hh, then r, z, n, h' pointwise.
// reset_after=False: per step h W_hr,z^T, then (r ⊙ h) W_hn^T: two dependent matmuls.
#pragma once

#include "common.h"

namespace lstmlab {

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
  at::Tensor hs = at::empty({T + 1, B, H}, opts), aux = at::empty({T, B, H}, opts);
  hs[0].copy_(h0);
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  const at::Tensor w_rz = w_hh.narrow(0, 0, 2 * H).t(), w_n = w_hh.narrow(0, 2 * H, H).t();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gru_forward", [&] {
    using T_ = scalar_t;
    for (int64_t t = 0; t < T; ++t) {
      T_* a = acts[t].data_ptr<T_>();
      const T_* hp = hs[t].data_ptr<T_>();
      T_* hn_ = hs[t + 1].data_ptr<T_>();
      T_* au = aux[t].data_ptr<T_>();
      const at::Tensor h_in = drop ? hs[t] * rec_mask : hs[t];  // what W_hh sees, (B, H)
      if (reset_after) {
        at::Tensor hh = b_hh.numel() ? at::addmm(b_hh, h_in, w_hh.t()) : at::mm(h_in, w_hh.t());
        const T_* q = hh.data_ptr<T_>();                         // (B, 3H): [h_r, h_z, h_n]
        for_rows(B, 6 * H, [&](int64_t b) {
          if (!live(len, b, t)) return;
          T_ *r = a + b * 3 * H, *z = r + H, *n = r + 2 * H;
          const T_ *qr = q + b * 3 * H, *qz = qr + H, *qn = qr + 2 * H, *h = hp + b * H;
          for (int64_t j = 0; j < H; ++j) {
            r[j] = sigmoid(r[j] + qr[j]);
            z[j] = sigmoid(z[j] + qz[j]);
            n[j] = tanh_(n[j] + r[j] * qn[j]);                  // n = tanh(x_n + r ⊙ (W_hn h + b_hn))
            au[b * H + j] = qn[j];
            hn_[b * H + j] = (T_(1) - z[j]) * n[j] + z[j] * h[j];
          }
        });
      } else {
        at::Tensor hrz = at::mm(h_in, w_rz);                     // (B, 2H)
        const T_* q = hrz.data_ptr<T_>();
        const T_* hi = h_in.data_ptr<T_>();
        for_rows(B, 3 * H, [&](int64_t b) {
          T_ *r = a + b * 3 * H, *z = r + H;
          const T_ *qr = q + b * 2 * H, *qz = qr + H, *h = hi + b * H;
          for (int64_t j = 0; j < H; ++j) {
            r[j] = sigmoid(r[j] + qr[j]);
            z[j] = sigmoid(z[j] + qz[j]);
            au[b * H + j] = r[j] * h[j];
          }
        });
        at::Tensor hn = at::mm(aux[t], w_n);                     // (r ⊙ h) W_hn^T, (B, H)
        const T_* qn = hn.data_ptr<T_>();
        for_rows(B, 3 * H, [&](int64_t b) {
          if (!live(len, b, t)) return;
          T_ *z = a + b * 3 * H + H, *n = z + H;
          const T_* h = hp + b * H;
          for (int64_t j = 0; j < H; ++j) {
            n[j] = tanh_(n[j] + qn[b * H + j]);                 // n = tanh(x_n + W_hn (r ⊙ h) + b)
            hn_[b * H + j] = (T_(1) - z[j]) * n[j] + z[j] * h[j];
          }
        });
      }
      if (zone_h) zone_rows(hn_, hp, hn_, keep_h[t].data_ptr<T_>(), B, H, len, t);
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
  const at::Tensor w_rz = w_hh.narrow(0, 0, 2 * H), w_n = w_hh.narrow(0, 2 * H, H);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gru_backward", [&] {
    using T_ = scalar_t;
    const T_* mk = drop ? rec_mask.data_ptr<T_>() : nullptr;
    for (int64_t t = T - 1; t >= 0; --t) {
      at::Tensor dht = dh.add(grad_hs[t + 1]);                  // all of dL/dh_t
      // Through zoneout: the step's own h_t gets (1 - k) of the gradient, h_{t-1} k of it.
      at::Tensor dstep = zone_h ? dht * (1 - keep_h[t]) : dht;
      at::Tensor direct = at::empty({B, H}, opts);              // dL/dh_{t-1} outside the matmul
      const T_* a = acts[t].data_ptr<T_>();
      const T_* hp = hs[t].data_ptr<T_>();
      const T_* au = aux[t].data_ptr<T_>();
      const T_* g = dstep.data_ptr<T_>();
      const T_* g_all = dht.data_ptr<T_>();
      const T_* kh = zone_h ? keep_h[t].data_ptr<T_>() : nullptr;
      T_* dx = dX[t].data_ptr<T_>();
      T_* dd = direct.data_ptr<T_>();
      if (reset_after) {
        T_* dq = dQ[t].data_ptr<T_>();
        for_rows(B, 8 * H, [&](int64_t b) {
          const T_ *r = a + b * 3 * H, *z = r + H, *n = r + 2 * H, *h = hp + b * H;
          const T_ *gb = g + b * H, *qn = au + b * H;
          T_ *dr = dx + b * 3 * H, *dz = dr + H, *dn = dr + 2 * H, *db = dd + b * H;
          T_ *qr = dq + b * 3 * H, *qz = qr + H, *qnn = qr + 2 * H;
          if (!live(len, b, t)) {
            std::memcpy(db, g_all + b * H, H * sizeof(T_));
            return;
          }
          for (int64_t j = 0; j < H; ++j) {
            const T_ dn_pre = gb[j] * (T_(1) - z[j]) * (T_(1) - n[j] * n[j]);
            dz[j] = gb[j] * (h[j] - n[j]) * z[j] * (T_(1) - z[j]);
            dn[j] = dn_pre;
            dr[j] = dn_pre * qn[j] * r[j] * (T_(1) - r[j]);
            qr[j] = dr[j];
            qz[j] = dz[j];
            qnn[j] = dn_pre * r[j];
            db[j] = gb[j] * z[j];
          }
          if (kh) for (int64_t j = 0; j < H; ++j) db[j] += kh[b * H + j] * g_all[b * H + j];
        });
        at::Tensor through = at::mm(dQ[t], w_hh);                // dL/d(h_{t-1} ⊙ mask)
        dh = drop ? direct.addcmul_(through, rec_mask) : direct.add_(through);
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
        at::Tensor drh = at::mm(dX[t].narrow(1, 2 * H, H), w_n);  // dL/d(r ⊙ h), (B, H)
        const T_* q = drh.data_ptr<T_>();
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
        at::Tensor through = at::mm(dX[t].narrow(1, 0, 2 * H), w_rz);
        dh = drop ? direct.addcmul_(through, rec_mask) : direct.add_(through);
      }
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
