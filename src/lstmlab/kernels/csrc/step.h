// One step of a cell without autograd: the generation path (src/lstmlab/fused/step.py).
// A sampling loop calls the cell once per token with B = 1, so the cost is the number of tensor
// operations around the tiny matmuls, not arithmetic: here a step is two matmuls, one pointwise
// pass per row (the same row kernels as the sequence operations) and the new state's storage.
#pragma once

#include "blas.h"
#include "gru.h"
#include "lstm.h"

namespace lstmlab {

// x (B, I), h (B, P), c (B, H), a (B, sH) [FGR] -> {h_t, c_t[, a_t]}; biases may be empty.
inline std::vector<at::Tensor> lstm_step(
    const at::Tensor& x_in, const at::Tensor& w_ih, const at::Tensor& b_ih, const at::Tensor& b_hh,
    const at::Tensor& w_hh, const at::Tensor& w_hr, const at::Tensor& w_ci,
    const at::Tensor& w_cf, const at::Tensor& w_co, const at::Tensor& w_gg, const at::Tensor& h_in,
    const at::Tensor& c_in, const at::Tensor& a_in, const std::vector<int64_t>& layout) {
  const LSTMLayout L(layout);
  const at::Tensor x = x_in.contiguous(), h = h_in.contiguous(), c = c_in.contiguous();
  const bool proj = w_hr.numel() > 0, fgr = w_gg.numel() > 0;
  const at::Tensor a = fgr ? a_in.contiguous() : a_in;
  const int64_t B = x.size(0), I = x.size(1), nH = w_hh.size(0), P = w_hh.size(1);
  const int64_t H = c.size(1), sH = fgr ? a.size(1) : 0;
  // One allocation for everything the step writes: z (B, nH), c_t, m (B, H), rec/a_t (B, sH).
  at::Tensor buf = at::empty({B * (nH + 2 * H + 2 * sH)}, x.options());
  at::Tensor c_new = buf.narrow(0, B * nH, B * H).view({B, H});
  at::Tensor m = buf.narrow(0, B * (nH + H), B * H).view({B, H});
  at::Tensor a_new = buf.narrow(0, B * (nH + 2 * H + sH), B * sH).view({B, sH});
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_step", [&] {
    using T_ = scalar_t;
    T_* z = buf.data_ptr<T_>();
    gemm_nt<T_>(B, nH, I, x.data_ptr<T_>(), w_ih.data_ptr<T_>(), T_(0), z);  // z = x W_ih^T
    gemm_nt<T_>(B, nH, P, h.data_ptr<T_>(), w_hh.data_ptr<T_>(), T_(1), z);  //   + h W_hh^T
    T_* rec = fgr ? z + B * (nH + 2 * H) : nullptr;                           // a_{t-1} W_gg^T
    if (fgr) gemm_nt<T_>(B, sH, sH, a.data_ptr<T_>(), w_gg.data_ptr<T_>(), T_(0), rec);
    const T_ *bi = data_or_null<T_>(b_ih), *bh = data_or_null<T_>(b_hh);
    const T_ *wci = data_or_null<T_>(w_ci), *wcf = data_or_null<T_>(w_cf),
             *wco = data_or_null<T_>(w_co);
    const T_* cp = c.data_ptr<T_>();
    T_ *cn = c_new.data_ptr<T_>(), *mp = m.data_ptr<T_>();
    T_* anew = fgr ? a_new.data_ptr<T_>() : nullptr;
    for (int64_t b = 0; b < B; ++b) {
      T_* zb = z + b * nH;
      if (bi) for (int64_t j = 0; j < nH; ++j) zb[j] += bi[j] + bh[j];
      LSTMRow<T_> r{zb, cp + b * H, cn + b * H, mp + b * H};
      lstm_row_forward<T_>(L, H, r, rec ? rec + b * sH : nullptr,
                           anew ? anew + b * sH : nullptr, wci, wcf, wco);
    }
  });
  at::Tensor h_new = proj ? at::mm(m, w_hr.t()) : m;                        // (B, P)
  if (fgr) return {h_new, c_new, a_new};
  return {h_new, c_new};
}

// x (B, I), h (B, H) -> h_t, both GRU forms (Cho et al. 2014; reset after the matmul as cuDNN).
inline at::Tensor gru_step(const at::Tensor& x_in, const at::Tensor& w_ih,
                           const at::Tensor& b_ih, const at::Tensor& w_hh,
                           const at::Tensor& b_hh, const at::Tensor& h_in, bool reset_after) {
  const at::Tensor x = x_in.contiguous(), h = h_in.contiguous();
  const int64_t B = x.size(0), I = x.size(1), H = w_hh.size(1);
  // xs (B, 3H) = x W_ih^T + b_ih; hs (B, 3H) = h W_hh^T (+ b_hh), or (B, 2H) + (B, H) before.
  // Scratch laid out as xs (3H) | hs (2H or 3H) | r ⊙ h (H) | z (H) | (r ⊙ h) W_hn^T (H) | h_t.
  at::Tensor buf = at::empty({B * 9 * H}, x.options());
  at::Tensor h_new = buf.narrow(0, B * 8 * H, B * H).view({B, H});
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gru_step", [&] {
    using T_ = scalar_t;
    T_ *xs = buf.data_ptr<T_>(), *hs = xs + B * 3 * H, *hn = h_new.data_ptr<T_>();
    const T_ *hp = h.data_ptr<T_>(), *whh = w_hh.data_ptr<T_>();
    const T_ *bi = data_or_null<T_>(b_ih), *bh = data_or_null<T_>(b_hh);
    gemm_nt<T_>(B, 3 * H, I, x.data_ptr<T_>(), w_ih.data_ptr<T_>(), T_(0), xs);
    if (reset_after) {
      gemm_nt<T_>(B, 3 * H, H, hp, whh, T_(0), hs);
      for (int64_t b = 0; b < B; ++b) {
        T_ *xr = xs + b * 3 * H, *xz = xr + H, *xn = xr + 2 * H;
        T_ *qr = hs + b * 3 * H, *qz = qr + H, *qn = qr + 2 * H;
        for (int64_t j = 0; j < H; ++j) {
          const T_ r = sigmoid(xr[j] + qr[j] + (bi ? bi[j] + bh[j] : T_(0)));
          const T_ z = sigmoid(xz[j] + qz[j] + (bi ? bi[H + j] + bh[H + j] : T_(0)));
          const T_ n = tanh_(xn[j] + (bi ? bi[2 * H + j] : T_(0))
                             + r * (qn[j] + (bh ? bh[2 * H + j] : T_(0))));
          hn[b * H + j] = (T_(1) - z) * n + z * hp[b * H + j];
        }
      }
    } else {
      gemm_nt<T_>(B, 2 * H, H, hp, whh, T_(0), hs);                  // [r, z] from h
      T_* rh = hs + B * 3 * H;                                       // r ⊙ h, (B, H)
      T_* zs = rh + B * H;                                           // z, (B, H)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < H; ++j) {
          const T_ r = sigmoid(xs[b * 3 * H + j] + hs[b * 2 * H + j] + (bi ? bi[j] + bh[j] : T_(0)));
          zs[b * H + j] = sigmoid(xs[b * 3 * H + H + j] + hs[b * 2 * H + H + j]
                                  + (bi ? bi[H + j] + bh[H + j] : T_(0)));
          rh[b * H + j] = r * hp[b * H + j];
        }
      T_* q = zs + B * H;                                            // (r ⊙ h) W_hn^T, (B, H)
      gemm_nt<T_>(B, H, H, rh, whh + 2 * H * H, T_(0), q);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < H; ++j) {
          const T_ n = tanh_(xs[b * 3 * H + 2 * H + j] + q[b * H + j]
                             + (bi ? bi[2 * H + j] + bh[2 * H + j] : T_(0)));
          const T_ z = zs[b * H + j];
          hn[b * H + j] = (T_(1) - z) * n + z * hp[b * H + j];
        }
    }
  });
  return h_new;
}

}  // namespace lstmlab
