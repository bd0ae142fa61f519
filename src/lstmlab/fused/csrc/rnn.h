// The Elman RNN (lstmlab.RNNCell) as a fused sequence operation with a hand-written backward.
#pragma once

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
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnn_forward", [&] {
    using T_ = scalar_t;
    for (int64_t t = 0; t < T; ++t) {
      at::Tensor h = zone_h ? hz[t] : hs[t + 1];
      at::addmm_out(h, z[t], drop ? hs[t] * rec_mask : hs[t], w_hh.t());
      T_* hp = h.data_ptr<T_>();
      for_rows(B, 2 * H, [&](int64_t b) {
        T_* row = hp + b * H;
        if (relu) for (int64_t j = 0; j < H; ++j) row[j] = row[j] > T_(0) ? row[j] : T_(0);
        else for (int64_t j = 0; j < H; ++j) row[j] = tanh_(row[j]);
      });
      T_* hn = hs[t + 1].data_ptr<T_>();
      if (zone_h) zone_rows(hn, hs[t].data_ptr<T_>(), hp, keep_h[t].data_ptr<T_>(), B, H, len, t);
      hold_ended(hn, hs[t].data_ptr<T_>(), B, H, len, t);
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
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnn_backward", [&] {
    using T_ = scalar_t;
    for (int64_t t = T - 1; t >= 0; --t) {
      at::Tensor dht = dh.add(grad_hs[t + 1]);
      // Through zoneout: the step's own h_t gets (1 - k) of the gradient, h_{t-1} k of it.
      at::Tensor dstep = zone_h ? dht * (1 - keep_h[t]) : dht;
      const T_* h = zone_h ? hz[t].data_ptr<T_>() : hs[t + 1].data_ptr<T_>();
      const T_* g = dstep.data_ptr<T_>();
      T_* dz = dZ[t].data_ptr<T_>();
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
      dh = at::mm(dZ[t], w_hh);
      if (drop) dh.mul_(rec_mask);
      if (zone_h) dh.addcmul_(keep_h[t], dht);
      hold_ended(dh.data_ptr<T_>(), dht.data_ptr<T_>(), B, H, len, t);
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
