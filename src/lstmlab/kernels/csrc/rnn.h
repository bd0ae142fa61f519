// The Elman RNN (lstmlab.RNNCell) as a fused sequence operation with a hand-written backward.
#pragma once

#include "blas.h"
#include "common.h"

namespace lstmlab {

// Returns hs (T+1, B, H); h_t = φ(x_t W_ih^T + b + h_{t-1} W_hh^T), and hz (T, B, H), the
// step's own h_t before zoneout [zoneout only]. Regularisers (empty tensors when off): rec_mask
// (B, H), recurrent dropout (Gal & Ghahramani 2016) on h_{t-1} as W_hh sees it; keep_h (T, B, H),
// zoneout (Krueger et al. 2016) of h_t.
inline std::vector<at::Tensor> rnn_forward(const at::Tensor& x, const at::Tensor& w_ih,
                                           const at::Tensor& bias, const at::Tensor& w_hh,
                                           const at::Tensor& h0, const at::Tensor& lengths,
                                           bool relu, const at::Tensor& rec_mask,
                                           const at::Tensor& keep_h) {
  const int64_t T = x.size(0), B = x.size(1), H = w_hh.size(0);
  const bool drop = rec_mask.numel() > 0, zone_h = keep_h.numel() > 0;
  const auto x2 = x.reshape({T * B, x.size(2)});
  at::Tensor z = (bias.numel() ? at::addmm(bias, x2, w_ih.t()) : at::mm(x2, w_ih.t()))
                     .view({T, B, H});
  at::Tensor hs = at::empty({T + 1, B, H}, x.options());
  at::Tensor hz = zone_h ? at::empty({T, B, H}, x.options()) : at::empty({0}, x.options());
  hs[0].copy_(h0);
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  // Raw pointers per step: at B = 1 an ATen op costs more than the step's arithmetic.
  const at::Tensor whh = w_hh.contiguous();
  const at::Tensor mask = drop ? rec_mask.expand({B, H}).contiguous() : at::Tensor();
  const at::Tensor kh_all = zone_h ? keep_h.expand({T, B, H}).contiguous() : at::Tensor();
  at::Tensor h_in = drop ? at::empty({B, H}, x.options()) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnn_forward", [&] {
    using T_ = scalar_t;
    const T_* whh_p = whh.data_ptr<T_>();
    const T_* mk = drop ? mask.data_ptr<T_>() : nullptr;
    const T_* kh_p = zone_h ? kh_all.data_ptr<T_>() : nullptr;
    T_* hin_p = drop ? h_in.data_ptr<T_>() : nullptr;
    const T_* z_p = z.data_ptr<T_>();
    T_* hs_p = hs.data_ptr<T_>();
    T_* hz_p = zone_h ? hz.data_ptr<T_>() : nullptr;
    const int64_t BH = B * H;
    for (int64_t t = 0; t < T; ++t) {
      T_* hprev = hs_p + t * BH;
      T_* hn = hprev + BH;
      T_* hp = zone_h ? hz_p + t * BH : hn;                      // the step's own h_t
      const T_* hw = hprev;
      if (drop) {
        for (int64_t j = 0; j < BH; ++j) hin_p[j] = hprev[j] * mk[j];
        hw = hin_p;
      }
      std::memcpy(hp, z_p + t * BH, BH * sizeof(T_));
      gemm_nt<T_>(B, H, H, hw, whh_p, T_(1), hp);                // z_t + (h_{t-1} ⊙ mask) W_hh^T
      for_rows(B, 2 * H, [&](int64_t b) {
        T_* row = hp + b * H;
        if (relu) for (int64_t j = 0; j < H; ++j) row[j] = row[j] > T_(0) ? row[j] : T_(0);
        else for (int64_t j = 0; j < H; ++j) row[j] = tanh_(row[j]);
      });
      if (zone_h) zone_rows(hn, hprev, hp, kh_p + t * BH, B, H, len, t);
      hold_ended(hn, hprev, B, H, len, t);
    }
  });
  return {hs, hz};
}

// Gradients for: x, w_ih, bias, w_hh, h0.
inline std::vector<at::Tensor> rnn_backward(const at::Tensor& grad_hs, const at::Tensor& x,
                                            const at::Tensor& w_ih, const at::Tensor& w_hh,
                                            bool has_bias, const at::Tensor& hs,
                                            const at::Tensor& lengths, bool relu,
                                            const at::Tensor& rec_mask, const at::Tensor& keep_h,
                                            const at::Tensor& hz) {
  const int64_t T = x.size(0), B = x.size(1), H = w_hh.size(0);
  const bool drop = rec_mask.numel() > 0, zone_h = keep_h.numel() > 0;
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  auto opts = x.options();
  at::Tensor dZ = at::empty({T, B, H}, opts), dh = at::zeros({B, H}, opts);
  at::Tensor dht = at::empty({B, H}, opts), dstep = at::empty({B, H}, opts);
  const at::Tensor whh = w_hh.contiguous(), ghs = grad_hs.contiguous();
  const at::Tensor mask = drop ? rec_mask.expand({B, H}).contiguous() : at::Tensor();
  const at::Tensor kh_all = zone_h ? keep_h.expand({T, B, H}).contiguous() : at::Tensor();
  const at::Tensor h_all = zone_h ? hz.contiguous() : hs.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnn_backward", [&] {
    using T_ = scalar_t;
    const T_* whh_p = whh.data_ptr<T_>();
    const T_* mk = drop ? mask.data_ptr<T_>() : nullptr;
    const T_* kh_p = zone_h ? kh_all.data_ptr<T_>() : nullptr;
    const T_* g_p = ghs.data_ptr<T_>();
    const T_* h_p = h_all.data_ptr<T_>();
    T_* dZ_p = dZ.data_ptr<T_>();
    T_* dh_p = dh.data_ptr<T_>();
    T_* dht_p = dht.data_ptr<T_>();
    T_* dstep_p = dstep.data_ptr<T_>();
    const int64_t BH = B * H;
    for (int64_t t = T - 1; t >= 0; --t) {
      const T_* gt = g_p + (t + 1) * BH;
      for (int64_t j = 0; j < BH; ++j) dht_p[j] = dh_p[j] + gt[j];
      // Through zoneout: the step's own h_t gets (1 - k) of the gradient, h_{t-1} k of it.
      const T_* kh = zone_h ? kh_p + t * BH : nullptr;
      const T_* g = dht_p;
      if (zone_h) {
        for (int64_t j = 0; j < BH; ++j) dstep_p[j] = dht_p[j] * (T_(1) - kh[j]);
        g = dstep_p;
      }
      const T_* h = zone_h ? h_p + t * BH : h_p + (t + 1) * BH;
      T_* dz = dZ_p + t * BH;
      for_rows(B, 2 * H, [&](int64_t b) {
        T_* d = dz + b * H;
        const T_ *hb = h + b * H, *gb = g + b * H;
        if (!live(len, b, t)) {
          std::memset(d, 0, H * sizeof(T_));
          return;
        }
        if (relu) for (int64_t j = 0; j < H; ++j) d[j] = hb[j] > T_(0) ? gb[j] : T_(0);
        else for (int64_t j = 0; j < H; ++j) d[j] = gb[j] * (T_(1) - hb[j] * hb[j]);
      });
      gemm_nn<T_>(B, H, H, dz, whh_p, T_(0), dh_p);
      if (drop) for (int64_t j = 0; j < BH; ++j) dh_p[j] *= mk[j];
      if (zone_h) for (int64_t j = 0; j < BH; ++j) dh_p[j] += kh[j] * dht_p[j];
      hold_ended(dh_p, dht_p, B, H, len, t);
    }
  });
  const at::Tensor dZ2 = dZ.view({T * B, H});
  // What W_hh saw at every step: h_{t-1} ⊙ mask, (T, B, ·).
  const at::Tensor h_in = drop ? hs.narrow(0, 0, T) * rec_mask : hs.narrow(0, 0, T);
  at::Tensor empty = at::empty({0}, opts);
  dh.add_(grad_hs[0]);
  return {at::mm(dZ2, w_ih).view(x.sizes()), at::mm(dZ2.t(), x.reshape({T * B, x.size(2)})),
          has_bias ? dZ2.sum(0) : empty,
          at::mm(dZ2.t(), h_in.reshape({T * B, H})), dh};
}

}  // namespace lstmlab
