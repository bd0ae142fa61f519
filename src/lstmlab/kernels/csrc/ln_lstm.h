// The layer-normalised LSTM (lstmlab.LayerNormLSTMCell, Ba, Kiros & Hinton 2016) as a fused
// sequence operation with a hand-written backward; tests/test_fused.py holds it to the readable
// loop. The input half of the pre-activations, a_t = LN(W_ih x_t; γ_ih) + b, does not depend on
// the recurrence: the caller computes it for all steps (one GEMM, then ln_rows_forward) and the
// kernel returns its gradient (ln_rows_backward takes it through the input half's norm). Per step:
//   u = h_{t-1} W_hh^T;  z = a_t + γ_hh ⊙ n(u);  i, f, o = σ(z_i, z_f, z_o), g = tanh(z_g)
//   c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ tanh(γ_c ⊙ n(c_t) + β_c)
// with n(v) = (v - mean v) / sqrt(var v + eps) over the features of a row. Regularisers as in
// lstm.h: recurrent dropout multiplies h_{t-1} where W_hh meets it, zoneout mixes the step's own
// h_t, c_t with h_{t-1}, c_{t-1}. No projection here: the Python side runs that through the
// readable loop.
//
// Memory: the backward keeps per step only what it cannot rebuild cheaply -- hs, cs (T+1, B, H),
// the gate activations (T, B, 4H), n(c_t) (T, B, H) and the norms' 1/std (T, B). The normalised
// recurrent half n(u) (T, B, 4H) is rebuilt in the backward from hs with one GEMM for all steps,
// into the buffer that then holds dL/du, and the input half's W_ih x likewise from x.
#pragma once

#include "blas.h"
#include "common.h"

namespace lstmlab {

// sum_j f(j) over one row of width W, in 8 interleaved partial sums: a single running sum is
// one add's latency per element and keeps the loop scalar, 8 lanes fill one AVX register.
template <typename T, typename F>
LSTMLAB_INLINE T row_sum(int64_t W, const F& f) {
  T s[8] = {};
  int64_t j = 0;
  for (; j + 8 <= W; j += 8)
    for (int k = 0; k < 8; ++k) s[k] += f(j + k);
  T r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; j < W; ++j) r += f(j);
  return r;
}

// mean v over one row of width W, summed as normalise_row sums it.
template <typename T>
LSTMLAB_INLINE T row_mean(const T* v, int64_t W) {
  return row_sum<T>(W, [&](int64_t j) { return v[j]; }) / T(W);
}

// n = (v - mean v) * rs with rs = 1 / sqrt(var v + eps), over one row of width W; returns rs.
// n may be v.
template <typename T>
LSTMLAB_INLINE T normalise_row(const T* v, T* n, int64_t W, double eps) {
  const T mean = row_mean(v, W);
  const T var = row_sum<T>(W, [&](int64_t j) {
    return (v[j] - mean) * (v[j] - mean);
  });
  const T rs = T(1) / std::sqrt(var / T(W) + T(eps));
  for (int64_t j = 0; j < W; ++j) n[j] = (v[j] - mean) * rs;
  return rs;
}

// The gradient through n = normalise(v): dv = rs * (dn - mean(dn) - n * mean(dn * n)); dv may be
// n or dn (both are read in full before dv is written).
template <typename T>
LSTMLAB_INLINE void normalise_row_backward(const T* n, const T* dn, T rs, T* dv, int64_t W) {
  const T m1 = row_sum<T>(W, [&](int64_t j) { return dn[j]; }) / T(W);
  const T m2 =
      row_sum<T>(W, [&](int64_t j) { return dn[j] * n[j]; }) / T(W);
  for (int64_t j = 0; j < W; ++j) dv[j] = rs * (dn[j] - m1 - n[j] * m2);
}

// Layer norm over the rows of p (R, W), in place: p <- γ ⊙ n(p) + β (β may be empty). Returns
// rs (R,), what ln_rows_backward needs besides p itself.
inline at::Tensor ln_rows_forward(at::Tensor p, const at::Tensor& g, const at::Tensor& b,
                                  double eps) {
  TORCH_CHECK(p.dim() == 2 && p.is_contiguous(), "ln_rows_forward: p must be (R, W), contiguous");
  const int64_t R = p.size(0), W = p.size(1);
  at::Tensor rs = at::empty({R}, p.options());
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "ln_rows_forward", [&] {
    using T_ = scalar_t;
    T_ *p_p = p.data_ptr<T_>(), *rs_p = rs.data_ptr<T_>();
    const T_* gp = g.data_ptr<T_>();
    const T_* bp = data_or_null<T_>(b);
    for_rows(R, 4 * W, [&](int64_t r) {
      T_* v = p_p + r * W;
      rs_p[r] = normalise_row(v, v, W, eps);
      if (bp) for (int64_t j = 0; j < W; ++j) v[j] = gp[j] * v[j] + bp[j];
      else for (int64_t j = 0; j < W; ++j) v[j] *= gp[j];
    });
  });
  return rs;
}

// The backward of ln_rows_forward: p (R, W) the layer's input again (rebuilt by the caller),
// overwritten with dL/dp; dy (R, W) = dL/d(output); rs (R,) from the forward. Returns dL/dγ (W,).
inline at::Tensor ln_rows_backward(at::Tensor p, const at::Tensor& dy, const at::Tensor& g,
                                   const at::Tensor& rs) {
  TORCH_CHECK(p.dim() == 2 && p.is_contiguous(), "ln_rows_backward: p must be (R, W), contiguous");
  const int64_t R = p.size(0), W = p.size(1);
  const at::Tensor dy_c = dy.reshape({R, W}).contiguous();
  // One row of partial sums of dL/dγ per block of rows, added up at the end: (blocks, W).
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(R, at::get_num_threads()));
  at::Tensor partial = at::zeros({blocks, W}, p.options());
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "ln_rows_backward", [&] {
    using T_ = scalar_t;
    T_ *p_p = p.data_ptr<T_>(), *part_p = partial.data_ptr<T_>();
    const T_ *dy_p = dy_c.data_ptr<T_>(), *gp = g.data_ptr<T_>(), *rs_p = rs.data_ptr<T_>();
    at::parallel_for(0, blocks, 1, [&](int64_t k0, int64_t k1) {
      std::vector<T_> dn(W);
      for (int64_t k = k0; k < k1; ++k) {
        T_* acc = part_p + k * W;
        for (int64_t r = k * R / blocks; r < (k + 1) * R / blocks; ++r) {
          T_* v = p_p + r * W;
          const T_* d = dy_p + r * W;
          const T_ mean = row_mean(v, W), s = rs_p[r];
          for (int64_t j = 0; j < W; ++j) v[j] = (v[j] - mean) * s;   // n(p)
          for (int64_t j = 0; j < W; ++j) {
            acc[j] += d[j] * v[j];
            dn[j] = d[j] * gp[j];
          }
          normalise_row_backward(v, dn.data(), s, v, W);
        }
      }
    });
  });
  return partial.sum(0);
}

// a (T, B, 4H) rows i, f, g, o; w_hh (4H, H); g_hh (4H,); g_c, b_c (H,) (b_c may be empty).
// Regularisers (empty tensors when off): rec_mask (B, H), keep_h and keep_c (T, B, H).
// Returns hs, cs (T+1, B, H); acts (T, B, 4H) the gate activations; rs_hh (T, B) of the
// recurrent half; n_c (T, B, H) and rs_c (T, B) of the step's own cell state.
inline std::vector<at::Tensor> ln_lstm_forward(const at::Tensor& a, const at::Tensor& w_hh,
                                               const at::Tensor& g_hh, const at::Tensor& g_c,
                                               const at::Tensor& b_c, const at::Tensor& h0,
                                               const at::Tensor& c0, const at::Tensor& lengths,
                                               double eps, const at::Tensor& rec_mask,
                                               const at::Tensor& keep_h, const at::Tensor& keep_c) {
  const int64_t T = a.size(0), B = a.size(1), H = w_hh.size(1), G = 4 * H;
  const bool drop = rec_mask.numel() > 0, zone_h = keep_h.numel() > 0, zone_c = keep_c.numel() > 0;
  auto opts = a.options();
  at::Tensor hs = at::empty({T + 1, B, H}, opts), cs = at::empty({T + 1, B, H}, opts);
  at::Tensor acts = at::empty({T, B, G}, opts);
  at::Tensor n_c = at::empty({T, B, H}, opts);
  at::Tensor rs_hh = at::empty({T, B}, opts), rs_c = at::empty({T, B}, opts);
  at::Tensor u = at::empty({B, G}, opts);
  hs[0].copy_(h0);
  cs[0].copy_(c0);
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  const at::Tensor whh = w_hh.contiguous(), a_c = a.contiguous();
  const at::Tensor mask = drop ? rec_mask.expand({B, H}).contiguous() : at::Tensor();
  const at::Tensor kh_all = zone_h ? keep_h.expand({T, B, H}).contiguous() : at::Tensor();
  const at::Tensor kc_all = zone_c ? keep_c.expand({T, B, H}).contiguous() : at::Tensor();
  at::Tensor h_in = drop ? at::empty({B, H}, opts) : at::Tensor();   // h_{t-1} ⊙ mask
  at::Tensor own_c = zone_c ? at::empty({B, H}, opts) : at::Tensor();  // c_t before zoneout
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "ln_lstm_forward", [&] {
    using T_ = scalar_t;
    const T_ *whh_p = whh.data_ptr<T_>(), *a_p = a_c.data_ptr<T_>();
    const T_ *ghh = g_hh.data_ptr<T_>(), *gc = g_c.data_ptr<T_>();
    const T_* bc = data_or_null<T_>(b_c);
    T_ *hs_p = hs.data_ptr<T_>(), *cs_p = cs.data_ptr<T_>(), *u_p = u.data_ptr<T_>();
    T_ *act_p = acts.data_ptr<T_>(), *nc_p = n_c.data_ptr<T_>();
    T_ *rhh_p = rs_hh.data_ptr<T_>(), *rc_p = rs_c.data_ptr<T_>();
    const T_* mk = data_or_null<T_>(mask);
    const T_ *kh_p = data_or_null<T_>(kh_all), *kc_p = data_or_null<T_>(kc_all);
    T_* hin_p = drop ? h_in.data_ptr<T_>() : nullptr;
    T_* own_p = zone_c ? own_c.data_ptr<T_>() : nullptr;
    for (int64_t t = 0; t < T; ++t) {
      const T_ *hprev = hs_p + t * B * H, *cprev = cs_p + t * B * H;
      T_ *hn = hs_p + (t + 1) * B * H, *cn = cs_p + (t + 1) * B * H;
      T_* ct = zone_c ? own_p : cn;                                    // the step's own c_t
      const T_* hw = hprev;
      if (drop) {
        for (int64_t j = 0; j < B * H; ++j) hin_p[j] = hprev[j] * mk[j];
        hw = hin_p;
      }
      gemm_nt<T_>(B, G, H, hw, whh_p, T_(0), u_p);          // u = (h_{t-1} ⊙ mask) W_hh^T
      for_rows(B, 4 * G, [&](int64_t b) {
        const int64_t tb = t * B + b;
        T_* z = act_p + tb * G;
        T_* n = u_p + b * G;                                        // n(u), in place
        rhh_p[tb] = normalise_row(n, n, G, eps);
        const T_* ab = a_p + tb * G;
        for (int64_t j = 0; j < G; ++j) z[j] = ab[j] + ghh[j] * n[j];
        T_ *ig = z, *fg = z + H, *gg = z + 2 * H, *og = z + 3 * H;
        for (int64_t j = 0; j < H; ++j) ig[j] = sigmoid(ig[j]);
        for (int64_t j = 0; j < H; ++j) fg[j] = sigmoid(fg[j]);
        for (int64_t j = 0; j < H; ++j) gg[j] = tanh_(gg[j]);
        for (int64_t j = 0; j < H; ++j) og[j] = sigmoid(og[j]);
        const T_* cp = cprev + b * H;
        T_ *c = ct + b * H, *h = hn + b * H, *nc = nc_p + tb * H;
        for (int64_t j = 0; j < H; ++j) c[j] = fg[j] * cp[j] + ig[j] * gg[j];
        rc_p[tb] = normalise_row(c, nc, H, eps);
        if (bc) for (int64_t j = 0; j < H; ++j) h[j] = og[j] * tanh_(gc[j] * nc[j] + bc[j]);
        else for (int64_t j = 0; j < H; ++j) h[j] = og[j] * tanh_(gc[j] * nc[j]);
      });
      if (zone_h) zone_rows(hn, hprev, hn, kh_p + t * B * H, B, H, len, t);
      if (zone_c) zone_rows(cn, cprev, ct, kc_p + t * B * H, B, H, len, t);
      hold_ended(hn, hprev, B, H, len, t);
      hold_ended(cn, cprev, B, H, len, t);
    }
  });
  return {hs, cs, acts, rs_hh, n_c, rs_c};
}

// Gradients for: a, w_hh, g_hh, g_c, b_c (empty if none), h0, c0.
inline std::vector<at::Tensor> ln_lstm_backward(
    const at::Tensor& grad_hs, const at::Tensor& grad_cn, const at::Tensor& w_hh,
    const at::Tensor& g_hh, const at::Tensor& g_c, const at::Tensor& b_c, const at::Tensor& hs,
    const at::Tensor& cs, const at::Tensor& acts, const at::Tensor& rs_hh, const at::Tensor& n_c, const at::Tensor& rs_c,
    const at::Tensor& lengths, const at::Tensor& rec_mask, const at::Tensor& keep_h,
    const at::Tensor& keep_c) {
  const int64_t T = acts.size(0), B = acts.size(1), H = w_hh.size(1), G = 4 * H;
  const bool drop = rec_mask.numel() > 0, zone_h = keep_h.numel() > 0, zone_c = keep_c.numel() > 0;
  auto opts = acts.options();
  const at::Tensor whh = w_hh.contiguous(), ghs = grad_hs.contiguous();
  // What W_hh saw at every step: h_{t-1} ⊙ mask, (T, B, H).
  const at::Tensor h_in = (drop ? hs.narrow(0, 0, T) * rec_mask : hs.narrow(0, 0, T))
                              .reshape({T * B, H});
  // Per step: dz = dL/dz (= dL/da), dy = dL/d(γ_c ⊙ n_c + β_c); du (T, B, 4H) starts as
  // u = h_in W_hh^T for all steps, becomes n(u) row by row, then dL/du.
  at::Tensor dz = at::empty({T, B, G}, opts), du = at::mm(h_in, whh.t()).view({T, B, G});
  at::Tensor dy = at::empty({T, B, H}, opts);
  at::Tensor dg_rows = at::zeros({B, G}, opts);                // dL/dγ_hh, per row b
  at::Tensor dh = at::zeros({B, H}, opts), dc = grad_cn.clone().contiguous();
  at::Tensor dht = at::empty({B, H}, opts), dct = at::empty({B, H}, opts);
  at::Tensor scratch = at::empty({B, G}, opts);
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  const at::Tensor mask = drop ? rec_mask.expand({B, H}).contiguous() : at::Tensor();
  const at::Tensor kh_all = zone_h ? keep_h.expand({T, B, H}).contiguous() : at::Tensor();
  const at::Tensor kc_all = zone_c ? keep_c.expand({T, B, H}).contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "ln_lstm_backward", [&] {
    using T_ = scalar_t;
    const T_ *whh_p = whh.data_ptr<T_>(), *g_p = ghs.data_ptr<T_>();
    const T_ *ghh = g_hh.data_ptr<T_>(), *gc = g_c.data_ptr<T_>();
    const T_* bc = data_or_null<T_>(b_c);
    const T_ *cs_p = cs.data_ptr<T_>(), *act_p = acts.data_ptr<T_>();
    const T_* nc_p = n_c.data_ptr<T_>();
    const T_ *rhh_p = rs_hh.data_ptr<T_>(), *rc_p = rs_c.data_ptr<T_>();
    T_ *dz_p = dz.data_ptr<T_>(), *du_p = du.data_ptr<T_>(), *dy_p = dy.data_ptr<T_>();
    T_ *dh_p = dh.data_ptr<T_>(), *dc_p = dc.data_ptr<T_>(), *dgr_p = dg_rows.data_ptr<T_>();
    T_ *dht_p = dht.data_ptr<T_>(), *dct_p = dct.data_ptr<T_>(), *sc_p = scratch.data_ptr<T_>();
    const T_* mk = data_or_null<T_>(mask);
    const T_ *kh_p = data_or_null<T_>(kh_all), *kc_p = data_or_null<T_>(kc_all);
    const int64_t BH = B * H;
    for (int64_t t = T - 1; t >= 0; --t) {
      const T_* gt = g_p + (t + 1) * BH;
      // Through zoneout: the step's own h_t and c_t get (1 - k) of dL/dh_t and dL/dc_t,
      // h_{t-1} and c_{t-1} the rest, k.
      const T_ *kh = kh_p ? kh_p + t * BH : nullptr, *kc = kc_p ? kc_p + t * BH : nullptr;
      for (int64_t j = 0; j < BH; ++j) dht_p[j] = dh_p[j] + gt[j];
      std::memcpy(dct_p, dc_p, BH * sizeof(T_));
      for_rows(B, 4 * G, [&](int64_t b) {
        const int64_t tb = t * B + b;
        T_ *dzb = dz_p + tb * G, *dub = du_p + tb * G, *dyb = dy_p + tb * H;
        T_* dcp = dc_p + b * H;                                     // becomes dL/dc_{t-1}
        if (!live(len, b, t)) {            // an ended row: the gradients pass straight through
          std::memset(dzb, 0, G * sizeof(T_));
          std::memset(dub, 0, G * sizeof(T_));
          std::memset(dyb, 0, H * sizeof(T_));
          return;
        }
        const T_ *z = act_p + tb * G, *ig = z, *fg = z + H, *gg = z + 2 * H, *og = z + 3 * H;
        const T_ *nc = nc_p + tb * H, *cp = cs_p + t * BH + b * H, *dhb = dht_p + b * H;
        const T_ *khb = kh ? kh + b * H : nullptr, *kcb = kc ? kc + b * H : nullptr;
        T_* dn = sc_p + b * G;                                       // H, then 4H wide
        T_ *dzi = dzb, *dzf = dzb + H, *dzg = dzb + 2 * H, *dzo = dzb + 3 * H;
        // Through h = o ⊙ tanh(y), y = γ_c ⊙ n_c + β_c.
        for (int64_t j = 0; j < H; ++j) {
          const T_ th = tanh_(gc[j] * nc[j] + (bc ? bc[j] : T_(0)));
          const T_ dho = khb ? dhb[j] * (T_(1) - khb[j]) : dhb[j];    // dL/d(own h_t)
          dzo[j] = dho * th * og[j] * (T_(1) - og[j]);
          dyb[j] = dho * og[j] * (T_(1) - th * th);
          dn[j] = dyb[j] * gc[j];
        }
        normalise_row_backward(nc, dn, rc_p[tb], dcp, H);           // dL/dc_t via LN_c
        const T_* dcb = dct_p + b * H;
        for (int64_t j = 0; j < H; ++j) {
          // all of dL/d(own c_t): through LN_c, and (1 - k) of the zoned c_t's
          const T_ d = dcp[j] + (kcb ? dcb[j] * (T_(1) - kcb[j]) : dcb[j]);
          dzi[j] = d * gg[j] * ig[j] * (T_(1) - ig[j]);
          dzf[j] = d * cp[j] * fg[j] * (T_(1) - fg[j]);
          dzg[j] = d * ig[j] * (T_(1) - gg[j] * gg[j]);
          dcp[j] = kcb ? d * fg[j] + kcb[j] * dcb[j] : d * fg[j];
        }
        // z = a + γ_hh ⊙ n(u); n(u) rebuilt in place from u with the forward's 1/std.
        const T_ mean = row_mean(dub, G), s = rhh_p[tb];
        T_* dgr = dgr_p + b * G;
        for (int64_t j = 0; j < G; ++j) {
          dub[j] = (dub[j] - mean) * s;
          dgr[j] += dzb[j] * dub[j];
          dn[j] = dzb[j] * ghh[j];
        }
        normalise_row_backward(dub, dn, s, dub, G);
      });
      gemm_nn<T_>(B, H, G, du_p + t * B * G, whh_p, T_(0), dh_p);    // dL/dh_{t-1}
      if (drop) for (int64_t j = 0; j < BH; ++j) dh_p[j] *= mk[j];
      if (kh) for (int64_t j = 0; j < BH; ++j) dh_p[j] += kh[j] * dht_p[j];
      hold_ended(dh_p, dht_p, B, H, len, t);
      hold_ended(dc_p, dct_p, B, H, len, t);
    }
  });
  const at::Tensor du2 = du.view({T * B, G}), dy2 = dy.view({T * B, H});
  at::Tensor empty = at::empty({0}, opts);
  dh.add_(grad_hs[0]);
  return {dz,
          at::mm(du2.t(), h_in),
          dg_rows.sum(0),
          (dy * n_c).sum({0, 1}),
          b_c.numel() ? dy2.sum(0) : empty,
          dh, dc};
}

}  // namespace lstmlab
