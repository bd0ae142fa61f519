// The depth-gated LSTM layer (lstmlab.DepthGatedLSTMCell, Yao et al. 2015) as a fused sequence
// operation with a hand-written backward; tests/test_fused.py holds it to the readable loop.
// The parts that do not depend on the recurrence come precomputed for all steps (the caller
// differentiates them with autograd): a_t = W_ih x_t + b (4H: i, f, g, o) and, with a depth
// gate, e_t = W_xd x_t + b_d + w_ld ⊙ c_t^low. Per step:
//   z = a_t + h_{t-1} W_hh^T;  i = σ(z_i + w_ci ⊙ c_{t-1}), f = σ(z_f + w_cf ⊙ c_{t-1}),
//   g = tanh(z_g);  d = σ(e_t + w_cd ⊙ c_{t-1});  c_t = d ⊙ c_t^low + f ⊙ c_{t-1} + i ⊙ g
//   o = σ(z_o + w_co ⊙ c_t);  h_t = o ⊙ tanh(c_t)
// Every c_t is an output (the layer above reads it), so the backward takes a gradient for each.
#pragma once

#include "blas.h"
#include "common.h"

namespace lstmlab {

// a (T, B, 4H); e, c_low (T, B, H) or empty (no depth gate: the bottom layer); w_hh (4H, H);
// w_ci, w_cf, w_co (H,); w_cd (H,) or empty. Returns hs, cs (T+1, B, H), acts (T, B, 4H) = i,
// f, g, o and ds (T, B, H) the depth gate (empty without one).
inline std::vector<at::Tensor> depth_gated_forward(
    const at::Tensor& a, const at::Tensor& e, const at::Tensor& c_low, const at::Tensor& w_hh,
    const at::Tensor& w_ci, const at::Tensor& w_cf, const at::Tensor& w_co,
    const at::Tensor& w_cd, const at::Tensor& h0, const at::Tensor& c0,
    const at::Tensor& lengths) {
  const int64_t T = a.size(0), B = a.size(1), H = w_hh.size(1), G = 4 * H;
  const bool depth = e.numel() > 0;
  auto opts = a.options();
  at::Tensor hs = at::empty({T + 1, B, H}, opts), cs = at::empty({T + 1, B, H}, opts);
  at::Tensor acts = at::empty({T, B, G}, opts);
  at::Tensor ds = depth ? at::empty({T, B, H}, opts) : at::empty({0}, opts);
  hs[0].copy_(h0);
  cs[0].copy_(c0);
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  const at::Tensor whh = w_hh.contiguous(), a_c = a.contiguous();
  const at::Tensor e_c = depth ? e.contiguous() : e, cl_c = depth ? c_low.contiguous() : c_low;
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "depth_gated_forward", [&] {
    using T_ = scalar_t;
    const T_ *whh_p = whh.data_ptr<T_>(), *a_p = a_c.data_ptr<T_>();
    const T_ *wci = w_ci.data_ptr<T_>(), *wcf = w_cf.data_ptr<T_>(), *wco = w_co.data_ptr<T_>();
    const T_* wcd = data_or_null<T_>(w_cd);
    const T_* e_p = depth ? e_c.data_ptr<T_>() : nullptr;
    const T_* cl_p = depth ? cl_c.data_ptr<T_>() : nullptr;
    T_ *hs_p = hs.data_ptr<T_>(), *cs_p = cs.data_ptr<T_>(), *act_p = acts.data_ptr<T_>();
    T_* ds_p = depth ? ds.data_ptr<T_>() : nullptr;
    const int64_t BH = B * H;
    for (int64_t t = 0; t < T; ++t) {
      const T_ *hprev = hs_p + t * BH, *cprev = cs_p + t * BH;
      T_ *hn = hs_p + (t + 1) * BH, *cn = cs_p + (t + 1) * BH, *z_t = act_p + t * B * G;
      std::memcpy(z_t, a_p + t * B * G, B * G * sizeof(T_));
      gemm_nt<T_>(B, G, H, hprev, whh_p, T_(1), z_t);               // z = a_t + h_{t-1} W_hh^T
      for_rows(B, 2 * G, [&](int64_t b) {
        T_* z = z_t + b * G;
        T_ *ig = z, *fg = z + H, *gg = z + 2 * H, *og = z + 3 * H;
        const T_* cp = cprev + b * H;
        T_ *c = cn + b * H, *h = hn + b * H;
        for (int64_t j = 0; j < H; ++j) ig[j] = sigmoid(ig[j] + wci[j] * cp[j]);
        for (int64_t j = 0; j < H; ++j) fg[j] = sigmoid(fg[j] + wcf[j] * cp[j]);
        for (int64_t j = 0; j < H; ++j) gg[j] = tanh_(gg[j]);
        for (int64_t j = 0; j < H; ++j) c[j] = fg[j] * cp[j] + ig[j] * gg[j];
        if (depth) {            // Yao et al. 2015: the lower layer's cell flows in through d
          const int64_t tb = (t * B + b) * H;
          T_* d = ds_p + tb;
          const T_ *eb = e_p + tb, *cl = cl_p + tb;
          for (int64_t j = 0; j < H; ++j) d[j] = sigmoid(eb[j] + wcd[j] * cp[j]);
          for (int64_t j = 0; j < H; ++j) c[j] += d[j] * cl[j];
        }
        for (int64_t j = 0; j < H; ++j) og[j] = sigmoid(og[j] + wco[j] * c[j]);
        for (int64_t j = 0; j < H; ++j) h[j] = og[j] * tanh_(c[j]);
      });
      hold_ended(hn, hprev, B, H, len, t);
      hold_ended(cn, cprev, B, H, len, t);
    }
  });
  return {hs, cs, acts, ds};
}

// Gradients for: a, e (empty without a depth gate), c_low (the direct path d ⊙ c_low; empty
// without), w_hh, w_ci, w_cf, w_co, w_cd (empty without), h0, c0. grad_hs, grad_cs (T+1, B, H).
inline std::vector<at::Tensor> depth_gated_backward(
    const at::Tensor& grad_hs, const at::Tensor& grad_cs, const at::Tensor& c_low,
    const at::Tensor& w_hh, const at::Tensor& w_ci, const at::Tensor& w_cf,
    const at::Tensor& w_co, const at::Tensor& w_cd, const at::Tensor& hs, const at::Tensor& cs,
    const at::Tensor& acts, const at::Tensor& ds, const at::Tensor& lengths) {
  const int64_t T = acts.size(0), B = acts.size(1), H = w_hh.size(1), G = 4 * H;
  const bool depth = ds.numel() > 0;
  auto opts = acts.options();
  at::Tensor dz = at::empty({T, B, G}, opts);
  at::Tensor de = depth ? at::empty({T, B, H}, opts) : at::empty({0}, opts);
  at::Tensor dcl = depth ? at::empty({T, B, H}, opts) : at::empty({0}, opts);
  at::Tensor dh = at::zeros({B, H}, opts), dc = at::zeros({B, H}, opts);
  at::Tensor dht = at::empty({B, H}, opts), dct = at::empty({B, H}, opts);
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  const at::Tensor whh = w_hh.contiguous(), ghs = grad_hs.contiguous();
  const at::Tensor gcs = grad_cs.contiguous();
  const at::Tensor cl_c = depth ? c_low.contiguous() : c_low;
  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "depth_gated_backward", [&] {
    using T_ = scalar_t;
    const T_ *whh_p = whh.data_ptr<T_>(), *gh_p = ghs.data_ptr<T_>(), *gc_p = gcs.data_ptr<T_>();
    const T_ *wci = w_ci.data_ptr<T_>(), *wcf = w_cf.data_ptr<T_>(), *wco = w_co.data_ptr<T_>();
    const T_* wcd = data_or_null<T_>(w_cd);
    const T_ *cs_p = cs.data_ptr<T_>(), *act_p = acts.data_ptr<T_>();
    const T_* ds_p = depth ? ds.data_ptr<T_>() : nullptr;
    const T_* cl_p = depth ? cl_c.data_ptr<T_>() : nullptr;
    T_ *dz_p = dz.data_ptr<T_>(), *de_p = depth ? de.data_ptr<T_>() : nullptr;
    T_* dcl_p = depth ? dcl.data_ptr<T_>() : nullptr;
    T_ *dh_p = dh.data_ptr<T_>(), *dc_p = dc.data_ptr<T_>();
    T_ *dht_p = dht.data_ptr<T_>(), *dct_p = dct.data_ptr<T_>();
    const int64_t BH = B * H;
    for (int64_t t = T - 1; t >= 0; --t) {
      for (int64_t j = 0; j < BH; ++j) dht_p[j] = dh_p[j] + gh_p[(t + 1) * BH + j];
      for (int64_t j = 0; j < BH; ++j) dct_p[j] = dc_p[j] + gc_p[(t + 1) * BH + j];
      for_rows(B, 2 * G, [&](int64_t b) {
        const int64_t tb = t * B + b;
        T_* dzb = dz_p + tb * G;
        if (!live(len, b, t)) {            // an ended row: the gradients pass straight through
          std::memset(dzb, 0, G * sizeof(T_));
          if (depth) {
            std::memset(de_p + tb * H, 0, H * sizeof(T_));
            std::memset(dcl_p + tb * H, 0, H * sizeof(T_));
          }
          return;
        }
        const T_ *z = act_p + tb * G, *ig = z, *fg = z + H, *gg = z + 2 * H, *og = z + 3 * H;
        const T_ *cp = cs_p + t * BH + b * H, *c = cs_p + (t + 1) * BH + b * H;
        const T_ *dhb = dht_p + b * H, *dcb = dct_p + b * H;
        T_ *dzi = dzb, *dzf = dzb + H, *dzg = dzb + 2 * H, *dzo = dzb + 3 * H;
        T_* dcp = dc_p + b * H;                                      // becomes dL/dc_{t-1}
        for (int64_t j = 0; j < H; ++j) {
          const T_ th = tanh_(c[j]);
          dzo[j] = dhb[j] * th * og[j] * (T_(1) - og[j]);
          // all of dL/dc_t: from later steps and the layer above, through h_t and o's peephole
          const T_ d = dcb[j] + dhb[j] * og[j] * (T_(1) - th * th) + dzo[j] * wco[j];
          dzi[j] = d * gg[j] * ig[j] * (T_(1) - ig[j]);
          dzf[j] = d * cp[j] * fg[j] * (T_(1) - fg[j]);
          dzg[j] = d * ig[j] * (T_(1) - gg[j] * gg[j]);
          dcp[j] = d * fg[j] + dzi[j] * wci[j] + dzf[j] * wcf[j];
          if (depth) {
            const int64_t k = tb * H + j;
            const T_ dg = ds_p[k];
            de_p[k] = d * cl_p[k] * dg * (T_(1) - dg);
            dcl_p[k] = d * dg;
            dcp[j] += de_p[k] * wcd[j];
          }
        }
      });
      gemm_nn<T_>(B, H, G, dz_p + t * B * G, whh_p, T_(0), dh_p);    // dL/dh_{t-1} via W_hh
      hold_ended(dh_p, dht_p, B, H, len, t);
      hold_ended(dc_p, dct_p, B, H, len, t);
    }
  });
  const at::Tensor c_prev = cs.narrow(0, 0, T), c_now = cs.narrow(0, 1, T);
  at::Tensor empty = at::empty({0}, opts);
  dh.add_(grad_hs[0]);
  dc.add_(grad_cs[0]);
  return {dz, de, dcl,
          at::mm(dz.view({T * B, G}).t(), hs.narrow(0, 0, T).reshape({T * B, H})),
          (dz.narrow(2, 0, H) * c_prev).sum({0, 1}),
          (dz.narrow(2, H, H) * c_prev).sum({0, 1}),
          (dz.narrow(2, 3 * H, H) * c_now).sum({0, 1}),
          depth ? (de * c_prev).sum({0, 1}) : empty,
          dh, dc};
}

}  // namespace lstmlab
