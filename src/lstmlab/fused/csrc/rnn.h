// The Elman RNN (lstmlab.RNNCell) as a fused sequence operation with a hand-written backward.
#pragma once

#include "common.h"

namespace lstmlab {

// Returns hs (T+1, B, H); h_t = φ(x_t W_ih^T + b + h_{t-1} W_hh^T).
inline std::vector<at::Tensor> rnn_forward(const at::Tensor& x, const at::Tensor& w_ih,
                                           const at::Tensor& bias, const at::Tensor& w_hh,
                                           const at::Tensor& h0, const at::Tensor& lengths,
                                           bool relu) {
  const int64_t T = x.size(0), B = x.size(1), H = w_hh.size(0);
  const auto x2 = x.reshape({T * B, x.size(2)});
  at::Tensor z = (bias.numel() ? at::addmm(bias, x2, w_ih.t()) : at::mm(x2, w_ih.t()))
                     .view({T, B, H});
  at::Tensor hs = at::empty({T + 1, B, H}, x.options());
  hs[0].copy_(h0);
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnn_forward", [&] {
    using T_ = scalar_t;
    for (int64_t t = 0; t < T; ++t) {
      at::Tensor h = hs[t + 1];
      at::addmm_out(h, z[t], hs[t], w_hh.t());
      T_* hp = h.data_ptr<T_>();
      for_rows(B, 2 * H, [&](int64_t b) {
        T_* row = hp + b * H;
        if (relu) for (int64_t j = 0; j < H; ++j) row[j] = row[j] > T_(0) ? row[j] : T_(0);
        else for (int64_t j = 0; j < H; ++j) row[j] = tanh_(row[j]);
      });
      hold_ended(hp, hs[t].data_ptr<T_>(), B, H, len, t);
    }
  });
  return {hs};
}

// Gradients for: x, w_ih, bias, w_hh, h0.
inline std::vector<at::Tensor> rnn_backward(const at::Tensor& grad_hs, const at::Tensor& x,
                                            const at::Tensor& w_ih, const at::Tensor& w_hh,
                                            bool has_bias, const at::Tensor& hs,
                                            const at::Tensor& lengths, bool relu) {
  const int64_t T = x.size(0), B = x.size(1), H = w_hh.size(0);
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  auto opts = x.options();
  at::Tensor dZ = at::empty({T, B, H}, opts), dh = at::zeros({B, H}, opts);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnn_backward", [&] {
    using T_ = scalar_t;
    for (int64_t t = T - 1; t >= 0; --t) {
      at::Tensor dht = dh.add(grad_hs[t + 1]);
      const T_* h = hs[t + 1].data_ptr<T_>();
      const T_* g = dht.data_ptr<T_>();
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
      hold_ended(dh.data_ptr<T_>(), g, B, H, len, t);
    }
  });
  const at::Tensor dZ2 = dZ.view({T * B, H});
  at::Tensor empty = at::empty({0}, opts);
  dh.add_(grad_hs[0]);
  return {at::mm(dZ2, w_ih).view(x.sizes()), at::mm(dZ2.t(), x.reshape({T * B, x.size(2)})),
          has_bias ? dZ2.sum(0) : empty,
          at::mm(dZ2.t(), hs.narrow(0, 0, T).reshape({T * B, H})), dh};
}

}  // namespace lstmlab
