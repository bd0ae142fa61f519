// The LSTM family (every switch of lstmlab.LSTMCell) as one fused sequence operation with a
// hand-written backward through time. The equations are those of src/lstmlab/cells/lstm.py;
// tests/test_fused.py holds this file to the readable loop in src/lstmlab/recurrent.py.
//
// Forward: Z = X W_ih^T + b for all steps in one matmul; then per step one matmul
// (z_t += h_{t-1} W_hh^T), [FGR: one more, a_{t-1} W_gg^T], [projection: one more], and one
// pointwise pass per row that overwrites the pre-activations with the gate activations.
// Backward: per step the pointwise derivatives and one matmul (dh_{t-1} = dz_t W_hh) [+ FGR,
// projection]; the weight gradients after the loop as a few large matmuls over all steps.
#pragma once

#include "blas.h"
#include "common.h"

namespace lstmlab {

// Where each pre-activation sits in the n*H columns (-1: the gate is switched off), and the
// position of each sigmoid gate inside the FGR feedback vector a = [i, f, o] (present ones).
struct LSTMLayout {
  int64_t i, f, g, o;     // column blocks
  int64_t ai, af, ao;     // blocks of a (FGR)
  bool coupled, input_activation, output_activation;
  explicit LSTMLayout(const std::vector<int64_t>& v)
      : i(v[0]), f(v[1]), g(v[2]), o(v[3]), ai(v[4]), af(v[5]), ao(v[6]),
        coupled(v[7]), input_activation(v[8]), output_activation(v[9]) {}
};

template <typename T>
struct LSTMRow {  // pointers into one row b of one step
  T* z;           // (n*H) pre-activations -> activations
  const T* cp;    // c_{t-1}
  T* cn;          // c_t
  T* m;           // h_t before projection
};

template <typename T>
void lstm_row_forward(const LSTMLayout& L, int64_t H, LSTMRow<T> r, const T* rec, T* a_new,
                      const T* wci, const T* wcf, const T* wco) {
  T* ig = L.i >= 0 ? r.z + L.i * H : nullptr;
  T* fg = L.f >= 0 ? r.z + L.f * H : nullptr;
  T* gg = r.z + L.g * H;
  T* og = L.o >= 0 ? r.z + L.o * H : nullptr;
  if (rec) {  // Greff et al. 2015, FGR: gates see the gates of step t-1
    if (ig) for (int64_t j = 0; j < H; ++j) ig[j] += rec[L.ai * H + j];
    if (fg) for (int64_t j = 0; j < H; ++j) fg[j] += rec[L.af * H + j];
    if (og) for (int64_t j = 0; j < H; ++j) og[j] += rec[L.ao * H + j];
  }
  if (ig) {  // i = σ(z_i + w_ci ⊙ c_{t-1})
    if (wci) for (int64_t j = 0; j < H; ++j) ig[j] += wci[j] * r.cp[j];
    for (int64_t j = 0; j < H; ++j) ig[j] = sigmoid(ig[j]);
  }
  if (fg) {  // f = σ(z_f + w_cf ⊙ c_{t-1})
    if (wcf) for (int64_t j = 0; j < H; ++j) fg[j] += wcf[j] * r.cp[j];
    for (int64_t j = 0; j < H; ++j) fg[j] = sigmoid(fg[j]);
  }
  if (L.input_activation) for (int64_t j = 0; j < H; ++j) gg[j] = tanh_(gg[j]);
  // c_t = f ⊙ c_{t-1} + i ⊙ g, with f = 1 - i (CIFG), or 1 / i = 1 for a missing gate
  if (L.coupled) {
    for (int64_t j = 0; j < H; ++j) r.cn[j] = (T(1) - ig[j]) * r.cp[j] + ig[j] * gg[j];
  } else if (ig && fg) {
    for (int64_t j = 0; j < H; ++j) r.cn[j] = fg[j] * r.cp[j] + ig[j] * gg[j];
  } else if (fg) {
    for (int64_t j = 0; j < H; ++j) r.cn[j] = fg[j] * r.cp[j] + gg[j];
  } else if (ig) {
    for (int64_t j = 0; j < H; ++j) r.cn[j] = r.cp[j] + ig[j] * gg[j];
  } else {
    for (int64_t j = 0; j < H; ++j) r.cn[j] = r.cp[j] + gg[j];
  }
  if (og) {  // o = σ(z_o + w_co ⊙ c_t)
    if (wco) for (int64_t j = 0; j < H; ++j) og[j] += wco[j] * r.cn[j];
    for (int64_t j = 0; j < H; ++j) og[j] = sigmoid(og[j]);
  }
  // h = o ⊙ tanh(c_t), or o ⊙ c_t (NOAF)
  if (L.output_activation) {
    if (og) for (int64_t j = 0; j < H; ++j) r.m[j] = og[j] * tanh_(r.cn[j]);
    else for (int64_t j = 0; j < H; ++j) r.m[j] = tanh_(r.cn[j]);
  } else {
    if (og) for (int64_t j = 0; j < H; ++j) r.m[j] = og[j] * r.cn[j];
    else for (int64_t j = 0; j < H; ++j) r.m[j] = r.cn[j];
  }
  if (a_new) {
    if (ig) std::memcpy(a_new + L.ai * H, ig, H * sizeof(T));
    if (fg) std::memcpy(a_new + L.af * H, fg, H * sizeof(T));
    if (og) std::memcpy(a_new + L.ao * H, og, H * sizeof(T));
  }
}

// Gradients of one row of one step. In: dm = dL/dm_t, dc = dL/dc_t from later steps, da =
// dL/da_t (FGR). Out: dz (n*H), dcp = dL/dc_{t-1}, dsig (FGR: the sigmoid gates' dz, packed).
template <typename T>
void lstm_row_backward(const LSTMLayout& L, int64_t H, const T* z, const T* cp, const T* cn,
                       const T* dm, const T* dc, const T* da, T* dz, T* dcp, T* dsig,
                       const T* wci, const T* wcf, const T* wco) {
  const T* ig = L.i >= 0 ? z + L.i * H : nullptr;
  const T* fg = L.f >= 0 ? z + L.f * H : nullptr;
  const T* gg = z + L.g * H;
  const T* og = L.o >= 0 ? z + L.o * H : nullptr;
  T* dzi = ig ? dz + L.i * H : nullptr;
  T* dzf = fg ? dz + L.f * H : nullptr;
  T* dzg = dz + L.g * H;
  T* dzo = og ? dz + L.o * H : nullptr;
  // Through h = o ⊙ φ(c_t): dcp holds dL/dc_t for now, dzo holds dL/do.
  for (int64_t j = 0; j < H; ++j) {
    const T o = og ? og[j] : T(1);
    const T phi = L.output_activation ? tanh_(cn[j]) : cn[j];
    const T dphi = L.output_activation ? T(1) - phi * phi : T(1);
    dcp[j] = dc[j] + dm[j] * o * dphi;
    if (dzo) dzo[j] = dm[j] * phi;
  }
  if (dzo) {
    if (da) for (int64_t j = 0; j < H; ++j) dzo[j] += da[L.ao * H + j];
    for (int64_t j = 0; j < H; ++j) dzo[j] *= og[j] * (T(1) - og[j]);
    if (wco) for (int64_t j = 0; j < H; ++j) dcp[j] += dzo[j] * wco[j];
  }
  // Through c_t = f ⊙ c_{t-1} + i ⊙ g.
  // (One loop per output, branches outside: a missing gate's conditional load kept this scalar.)
  if (dzf) for (int64_t j = 0; j < H; ++j) dzf[j] = dcp[j] * cp[j];
  if (dzi && L.coupled) {                                   // CIFG: f = 1 - i
    for (int64_t j = 0; j < H; ++j) {
      const T df = dcp[j] * cp[j];
      dzi[j] = dcp[j] * gg[j] - df;
    }
  } else if (dzi) {
    for (int64_t j = 0; j < H; ++j) dzi[j] = dcp[j] * gg[j];
  }
  if (ig && L.input_activation)
    for (int64_t j = 0; j < H; ++j) dzg[j] = dcp[j] * ig[j] * (T(1) - gg[j] * gg[j]);
  else if (ig)
    for (int64_t j = 0; j < H; ++j) dzg[j] = dcp[j] * ig[j];
  else if (L.input_activation)
    for (int64_t j = 0; j < H; ++j) dzg[j] = dcp[j] * (T(1) - gg[j] * gg[j]);
  else
    for (int64_t j = 0; j < H; ++j) dzg[j] = dcp[j];
  if (L.coupled) for (int64_t j = 0; j < H; ++j) dcp[j] *= T(1) - ig[j];
  else if (fg) for (int64_t j = 0; j < H; ++j) dcp[j] *= fg[j];
  if (dzi) {
    if (da) for (int64_t j = 0; j < H; ++j) dzi[j] += da[L.ai * H + j];
    for (int64_t j = 0; j < H; ++j) dzi[j] *= ig[j] * (T(1) - ig[j]);
    if (wci) for (int64_t j = 0; j < H; ++j) dcp[j] += dzi[j] * wci[j];
  }
  if (dzf) {
    if (da) for (int64_t j = 0; j < H; ++j) dzf[j] += da[L.af * H + j];
    for (int64_t j = 0; j < H; ++j) dzf[j] *= fg[j] * (T(1) - fg[j]);
    if (wcf) for (int64_t j = 0; j < H; ++j) dcp[j] += dzf[j] * wcf[j];
  }
  if (dsig) {
    if (dzi) std::memcpy(dsig + L.ai * H, dzi, H * sizeof(T));
    if (dzf) std::memcpy(dsig + L.af * H, dzf, H * sizeof(T));
    if (dzo) std::memcpy(dsig + L.ao * H, dzo, H * sizeof(T));
  }
}

// Returns hs (T+1, B, P), cs (T+1, B, H), acts (T, B, nH), ms (T, B, H) [projection],
// as (T+1, B, sH) [FGR], cz (T, B, H) [zoneout on c: c_t before zoneout]; hs[0], cs[0], as[0]
// are the initial state. Regularisers (empty tensors when off): rec_mask (B, P), recurrent
// dropout (Gal & Ghahramani 2016) on h_{t-1} as W_hh sees it; keep_h (T, B, P), keep_c (T, B, H),
// zoneout (Krueger et al. 2016) of h_t and c_t.
inline std::vector<at::Tensor> lstm_forward(
    const at::Tensor& x, const at::Tensor& w_ih, const at::Tensor& bias, const at::Tensor& w_hh,
    const at::Tensor& w_hr, const at::Tensor& w_ci, const at::Tensor& w_cf,
    const at::Tensor& w_co, const at::Tensor& w_gg, const at::Tensor& h0, const at::Tensor& c0,
    const at::Tensor& a0, const at::Tensor& lengths, const std::vector<int64_t>& layout,
    const at::Tensor& rec_mask, const at::Tensor& keep_h, const at::Tensor& keep_c) {
  const LSTMLayout L(layout);
  const int64_t T = x.size(0), B = x.size(1), nH = w_hh.size(0), P = w_hh.size(1);
  const int64_t H = c0.size(1);
  const bool proj = w_hr.numel() > 0, fgr = w_gg.numel() > 0;
  const bool drop = rec_mask.numel() > 0, zone_h = keep_h.numel() > 0, zone_c = keep_c.numel() > 0;
  const int64_t sH = fgr ? w_gg.size(0) : 0;
  const auto x2 = x.reshape({T * B, x.size(2)});
  at::Tensor acts = (bias.numel() ? at::addmm(bias, x2, w_ih.t()) : at::mm(x2, w_ih.t()))
                        .view({T, B, nH});
  auto opts = x.options();
  at::Tensor hs = at::empty({T + 1, B, P}, opts), cs = at::empty({T + 1, B, H}, opts);
  hs[0].copy_(h0);
  cs[0].copy_(c0);
  at::Tensor ms = proj ? at::empty({T, B, H}, opts) : at::Tensor();
  at::Tensor as = fgr ? at::empty({T + 1, B, sH}, opts) : at::Tensor();
  at::Tensor cz = zone_c ? at::zeros({T, B, H}, opts) : at::Tensor();
  if (fgr) as[0].copy_(a0);
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  // Raw pointers below: at B = 1 every per-step ATen op (indexing, matmul dispatch) costs more
  // than the step's arithmetic. Weights are contiguous (usually no copy).
  const at::Tensor whh = w_hh.contiguous(), whr = proj ? w_hr.contiguous() : at::Tensor();
  const at::Tensor wgg = fgr ? w_gg.contiguous() : at::Tensor();
  const at::Tensor mask = drop ? rec_mask.expand({B, P}).contiguous() : at::Tensor();
  const at::Tensor kh_all = zone_h ? keep_h.expand({T, B, P}).contiguous() : at::Tensor();
  const at::Tensor kc_all = zone_c ? keep_c.expand({T, B, H}).contiguous() : at::Tensor();
  at::Tensor h_in = drop ? at::empty({B, P}, opts) : at::Tensor();   // h_{t-1} ⊙ mask
  at::Tensor rec_buf = fgr ? at::empty({B, sH}, opts) : at::Tensor();  // a_{t-1} W_gg^T
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_forward", [&] {
    using T_ = scalar_t;
    const T_* wci = data_or_null<T_>(w_ci);
    const T_* wcf = data_or_null<T_>(w_cf);
    const T_* wco = data_or_null<T_>(w_co);
    const T_* whh_p = whh.data_ptr<T_>();
    const T_* whr_p = proj ? whr.data_ptr<T_>() : nullptr;
    const T_* wgg_p = fgr ? wgg.data_ptr<T_>() : nullptr;
    const T_* mk = drop ? mask.data_ptr<T_>() : nullptr;
    T_* hin_p = drop ? h_in.data_ptr<T_>() : nullptr;
    T_* recp = fgr ? rec_buf.data_ptr<T_>() : nullptr;
    T_* acts_p = acts.data_ptr<T_>();
    T_* hs_p = hs.data_ptr<T_>();
    T_* cs_p = cs.data_ptr<T_>();
    T_* ms_p = proj ? ms.data_ptr<T_>() : nullptr;
    T_* as_p = fgr ? as.data_ptr<T_>() : nullptr;
    T_* cz_p = zone_c ? cz.data_ptr<T_>() : nullptr;
    const T_* kh_p = zone_h ? kh_all.data_ptr<T_>() : nullptr;
    const T_* kc_p = zone_c ? kc_all.data_ptr<T_>() : nullptr;
    for (int64_t t = 0; t < T; ++t) {
      T_* zp = acts_p + t * B * nH;
      T_* hp = hs_p + t * B * P;                                  // h_{t-1}
      T_* hn = hp + B * P;                                        // h_t
      const T_* cp = cs_p + t * B * H;
      T_* cn = cs_p + (t + 1) * B * H;
      T_* ct = zone_c ? cz_p + t * B * H : cn;                    // the step's own c_t
      T_* mp = proj ? ms_p + t * B * H : hn;
      const T_* ap = fgr ? as_p + t * B * sH : nullptr;
      T_* anew = fgr ? as_p + (t + 1) * B * sH : nullptr;
      const T_* hw = hp;
      if (drop) {
        for (int64_t j = 0; j < B * P; ++j) hin_p[j] = hp[j] * mk[j];
        hw = hin_p;
      }
      gemm_nt<T_>(B, nH, P, hw, whh_p, T_(1), zp);               // z_t += (h_{t-1} ⊙ mask) W_hh^T
      if (fgr) gemm_nt<T_>(B, sH, sH, ap, wgg_p, T_(0), recp);    // (B, sH)
      for_rows(B, 6 * H, [&](int64_t b) {
        if (!live(len, b, t)) return;
        LSTMRow<T_> r{zp + b * nH, cp + b * H, ct + b * H, mp + b * H};
        lstm_row_forward<T_>(L, H, r, recp ? recp + b * sH : nullptr,
                             anew ? anew + b * sH : nullptr, wci, wcf, wco);
      });
      if (proj) {
        zero_ended(mp, B, H, len, t);
        gemm_nt<T_>(B, P, H, mp, whr_p, T_(0), hn);               // h_t = W_hr m_t
      }
      if (zone_h) zone_rows(hn, hp, hn, kh_p + t * B * P, B, P, len, t);
      if (zone_c) zone_rows(cn, cp, ct, kc_p + t * B * H, B, H, len, t);
      hold_ended(hn, hp, B, P, len, t);
      hold_ended(cn, cp, B, H, len, t);
      if (fgr) hold_ended(anew, ap, B, sH, len, t);
    }
  });
  at::Tensor none = at::empty({0}, opts);
  return {hs, cs, acts, ms.defined() ? ms : none, as.defined() ? as : none,
          cz.defined() ? cz : none};
}

// Gradients for: x, w_ih, bias, w_hh, w_hr, w_ci, w_cf, w_co, w_gg, h0, c0, a0.
inline std::vector<at::Tensor> lstm_backward(
    const at::Tensor& grad_hs, const at::Tensor& grad_cn, const at::Tensor& grad_an,
    const at::Tensor& x, const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& w_hr,
    const at::Tensor& w_ci, const at::Tensor& w_cf, const at::Tensor& w_co,
    const at::Tensor& w_gg, const at::Tensor& hs, const at::Tensor& cs, const at::Tensor& acts,
    const at::Tensor& ms, const at::Tensor& as, const at::Tensor& lengths,
    const std::vector<int64_t>& layout, const at::Tensor& rec_mask, const at::Tensor& keep_h,
    const at::Tensor& keep_c, const at::Tensor& cz) {
  const LSTMLayout L(layout);
  const int64_t T = x.size(0), B = x.size(1), nH = w_hh.size(0), P = w_hh.size(1);
  const int64_t H = cs.size(2);
  const bool proj = w_hr.numel() > 0, fgr = w_gg.numel() > 0;
  const bool drop = rec_mask.numel() > 0, zone_h = keep_h.numel() > 0, zone_c = keep_c.numel() > 0;
  const int64_t sH = fgr ? w_gg.size(0) : 0;
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  auto opts = x.options();
  at::Tensor dZ = at::zeros({T, B, nH}, opts);
  at::Tensor dSig = fgr ? at::zeros({T, B, sH}, opts) : at::Tensor();
  at::Tensor dHs = proj ? at::empty({T, B, P}, opts) : at::Tensor();
  // Per-step work on raw pointers into buffers made once (see lstm_forward).
  at::Tensor dh = at::zeros({B, P}, opts);                       // dL/dh_t from later steps
  at::Tensor dht = at::empty({B, P}, opts);                      // all of dL/dh_t
  at::Tensor dm_buf = at::empty({B, std::max(P, H)}, opts);      // dL/dm_t (zoneout / projection)
  at::Tensor dmz_buf = proj && zone_h ? at::empty({B, P}, opts) : at::Tensor();
  at::Tensor dc = grad_cn.contiguous().clone();                  // dL/dc_t from later steps
  at::Tensor dct_buf = zone_c ? at::empty({B, H}, opts) : at::Tensor();
  at::Tensor da = fgr ? grad_an.contiguous().clone() : at::Tensor();
  at::Tensor da_prev = fgr ? at::empty({B, sH}, opts) : at::Tensor();
  at::Tensor dcp = at::empty({B, H}, opts);
  const at::Tensor whh = w_hh.contiguous(), whr = proj ? w_hr.contiguous() : at::Tensor();
  const at::Tensor wgg = fgr ? w_gg.contiguous() : at::Tensor();
  const at::Tensor mask = drop ? rec_mask.expand({B, P}).contiguous() : at::Tensor();
  const at::Tensor kh_all = zone_h ? keep_h.expand({T, B, P}).contiguous() : at::Tensor();
  const at::Tensor kc_all = zone_c ? keep_c.expand({T, B, H}).contiguous() : at::Tensor();
  const at::Tensor ghs = grad_hs.contiguous(), acts_c = acts.contiguous();
  const at::Tensor cs_c = cs.contiguous(), cz_c = zone_c ? cz.contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_backward", [&] {
    using T_ = scalar_t;
    const T_* wci = data_or_null<T_>(w_ci);
    const T_* wcf = data_or_null<T_>(w_cf);
    const T_* wco = data_or_null<T_>(w_co);
    const T_* whh_p = whh.data_ptr<T_>();
    const T_* whr_p = proj ? whr.data_ptr<T_>() : nullptr;
    const T_* wgg_p = fgr ? wgg.data_ptr<T_>() : nullptr;
    const T_* mk = drop ? mask.data_ptr<T_>() : nullptr;
    const T_* kh_p = zone_h ? kh_all.data_ptr<T_>() : nullptr;
    const T_* kc_p = zone_c ? kc_all.data_ptr<T_>() : nullptr;
    const T_* g_p = ghs.data_ptr<T_>();
    const T_* acts_p = acts_c.data_ptr<T_>();
    const T_* cs_p = cs_c.data_ptr<T_>();
    const T_* cz_p = zone_c ? cz_c.data_ptr<T_>() : nullptr;
    T_* dZ_p = dZ.data_ptr<T_>();
    T_* dSig_p = fgr ? dSig.data_ptr<T_>() : nullptr;
    T_* dHs_p = proj ? dHs.data_ptr<T_>() : nullptr;
    T_* dh_p = dh.data_ptr<T_>();
    T_* dht_p = dht.data_ptr<T_>();
    T_* dm_p = dm_buf.data_ptr<T_>();
    T_* dmz_p = proj && zone_h ? dmz_buf.data_ptr<T_>() : nullptr;
    T_* dct_p = zone_c ? dct_buf.data_ptr<T_>() : nullptr;
    T_* dc_p = dc.data_ptr<T_>();
    T_* dcp_p = dcp.data_ptr<T_>();
    T_* da_p = fgr ? da.data_ptr<T_>() : nullptr;
    T_* dap_p = fgr ? da_prev.data_ptr<T_>() : nullptr;
    const int64_t BP = B * P, BH = B * H;
    for (int64_t t = T - 1; t >= 0; --t) {
      const T_* g = g_p + (t + 1) * BP;
      for (int64_t j = 0; j < BP; ++j) dht_p[j] = dh_p[j] + g[j];
      const T_* kh = zone_h ? kh_p + t * BP : nullptr;
      const T_* kc = zone_c ? kc_p + t * BH : nullptr;
      // Through zoneout: the step's own h_t and c_t get (1 - k) of the gradient, h_{t-1} and
      // c_{t-1} the rest, k (added below).
      const T_* dm = dht_p;
      if (zone_h) {
        T_* out = proj ? dmz_p : dm_p;
        for (int64_t j = 0; j < BP; ++j) out[j] = dht_p[j] * (T_(1) - kh[j]);
        dm = out;
      }
      const T_* dct = dc_p;
      if (zone_c) {
        for (int64_t j = 0; j < BH; ++j) dct_p[j] = dc_p[j] * (T_(1) - kc[j]);
        dct = dct_p;
      }
      if (proj) {
        std::memcpy(dHs_p + t * BP, dm, BP * sizeof(T_));
        gemm_nn<T_>(B, H, P, dm, whr_p, T_(0), dm_p);            // (B, P) -> (B, H)
        dm = dm_p;
      }
      const T_* z = acts_p + t * B * nH;
      const T_* cp = cs_p + t * BH;
      const T_* cn = zone_c ? cz_p + t * BH : cs_p + (t + 1) * BH;
      const T_* dcin = dc_p;
      T_* dz = dZ_p + t * B * nH;
      T_* dsig = fgr ? dSig_p + t * B * sH : nullptr;
      for_rows(B, 8 * H, [&](int64_t b) {
        if (!live(len, b, t)) {                                  // an ended row passes through
          std::memcpy(dcp_p + b * H, dcin + b * H, H * sizeof(T_));
          return;
        }
        lstm_row_backward<T_>(L, H, z + b * nH, cp + b * H, cn + b * H, dm + b * H,
                              dct + b * H, da_p ? da_p + b * sH : nullptr, dz + b * nH,
                              dcp_p + b * H, dsig ? dsig + b * sH : nullptr, wci, wcf, wco);
        if (kc)
          for (int64_t j = b * H; j < (b + 1) * H; ++j) dcp_p[j] += kc[j] * dcin[j];
      });
      gemm_nn<T_>(B, P, nH, dz, whh_p, T_(0), dh_p);              // dh_{t-1}: (B, nH) -> (B, P)
      if (drop) for (int64_t j = 0; j < BP; ++j) dh_p[j] *= mk[j];
      if (zone_h) for (int64_t j = 0; j < BP; ++j) dh_p[j] += kh[j] * dht_p[j];
      hold_ended(dh_p, dht_p, B, P, len, t);
      if (proj) zero_ended(dHs_p + t * BP, B, P, len, t);
      std::swap(dc, dcp);
      std::swap(dc_p, dcp_p);
      if (fgr) {
        gemm_nn<T_>(B, sH, sH, dsig, wgg_p, T_(0), dap_p);
        hold_ended(dap_p, da_p, B, sH, len, t);
        std::swap(da, da_prev);
        std::swap(da_p, dap_p);
      }
    }
  });
  // The weight gradients: one matmul each over all T*B rows.
  const at::Tensor dZ2 = dZ.view({T * B, nH});
  const at::Tensor x2 = x.reshape({T * B, x.size(2)});
  // What W_hh saw at every step: h_{t-1} ⊙ mask, (T, B, ·).
  const at::Tensor h_in = drop ? hs.narrow(0, 0, T) * rec_mask : hs.narrow(0, 0, T);
  at::Tensor dx = at::mm(dZ2, w_ih).view(x.sizes());
  at::Tensor dw_ih = at::mm(dZ2.t(), x2);
  at::Tensor dbias = dZ2.sum(0);
  at::Tensor dw_hh = at::mm(dZ2.t(), h_in.reshape({T * B, P}));
  at::Tensor empty = at::empty({0}, opts);
  at::Tensor dw_hr = proj ? at::mm(dHs.view({T * B, P}).t(), ms.view({T * B, H})) : empty;
  auto block = [&](int64_t k) { return dZ.narrow(2, k * H, H); };
  const at::Tensor c_own = zone_c ? cz : cs.narrow(0, 1, T);    // the c_t the output gate saw
  at::Tensor dw_ci = w_ci.numel() ? (block(L.i) * cs.narrow(0, 0, T)).sum({0, 1}) : empty;
  at::Tensor dw_cf = w_cf.numel() ? (block(L.f) * cs.narrow(0, 0, T)).sum({0, 1}) : empty;
  at::Tensor dw_co = w_co.numel() ? (block(L.o) * c_own).sum({0, 1}) : empty;
  at::Tensor dw_gg = fgr ? at::mm(dSig.view({T * B, sH}).t(),
                                  as.narrow(0, 0, T).reshape({T * B, sH}))
                         : empty;
  dh.add_(grad_hs[0]);
  return {dx, dw_ih, dbias, dw_hh, dw_hr, dw_ci, dw_cf, dw_co, dw_gg, dh, dc,
          fgr ? da : empty};
}

}  // namespace lstmlab
