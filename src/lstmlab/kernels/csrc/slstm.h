// The sLSTM of xLSTM (Beck et al. 2024, section 2.2) as one fused sequence operation with a
// hand-written backward through time. The equations are those of src/lstmlab/nn/cells/slstm.py;
// tests/test_slstm.py holds this file to the readable loop in src/lstmlab/nn/recurrent.py.
//
// Inside, the 4H pre-activation columns are laid out head by head, [head k: i | f | z | o], each
// block d = H / K wide, so that head k's recurrent product is one matmul into contiguous
// columns: z_t[:, k-block] += h_{t-1}[:, k*d:(k+1)*d] R_k^T with R_k = w_hh[k] (4d, d).
// weight_ih and the bias come in torch's gate-major order (rows g*H + k*d + j) and are permuted
// once per call.
//
// Forward: Z = X W_ih^T + b for all steps in one matmul; per step K small matmuls (one per
// head, straight to BLAS) and one vectorised pointwise loop per head of each row. Saved: the
// raw input and forget pre-activations, tanh(z̃), σ(õ), and the states h, c, n, m of every
// step. Backward: per step the pointwise derivatives (the stabilised gates recomputed from m)
// and K matmuls; the weight gradients after the loop, one matmul each over all T*B rows (K for
// w_hh, reading the head's columns in place).
#pragma once

#include <limits>

#include "blas.h"
#include "common.h"

namespace lstmlab {

LSTMLAB_INLINE float exp_(float x) { return exp_approx(x); }
LSTMLAB_INLINE double exp_(double x) { return std::exp(x); }

// log(1 + e) for e in [0, 1] as 2 atanh(s), s = e / (2 + e) <= 1/3: a polynomial in s²
// (error < 2e-9 relative), inlined where libm's log1pf is a call; float64 uses libm.
LSTMLAB_INLINE float log1p_unit(float e) {
  const float s = e / (2.0f + e), s2 = s * s;
  float p = 1.0f / 15.0f;
  p = p * s2 + 1.0f / 13.0f;
  p = p * s2 + 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return 2.0f * s * p;
}
LSTMLAB_INLINE double log1p_unit(double e) { return std::log1p(e); }

// log σ(x) = min(x, 0) - log(1 + exp(-|x|)), finite for any x.
template <typename T>
LSTMLAB_INLINE T log_sigmoid(T x) {
  return std::min(x, T(0)) - log1p_unit(exp_(-std::abs(x)));
}

// C (M, N) += A (M, K) W^T with row strides lda, ldc; W (N, K) contiguous.
template <typename T>
inline void gemm_nt_strided(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
                            const T* W, T* C, int64_t ldc) {
  if (M == 0 || N == 0 || K == 0) return;
  if (have_blas<T>()) {
    const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
    const int la = static_cast<int>(lda), lc = static_cast<int>(ldc);
    const T one = T(1);
    blas_gemm("T", "N", &m, &n, &k, &one, W, &k, A, &la, &one, C, &lc);
    return;
  }
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor a = at::from_blob(const_cast<T*>(A), {M, K}, {lda, 1}, opts);
  at::Tensor w = at::from_blob(const_cast<T*>(W), {N, K}, opts);
  at::Tensor c = at::from_blob(C, {M, N}, {ldc, 1}, opts);
  c.addmm_(a, w.t());
}

// C (M, N) = A (M, K) W with row strides lda, ldc; W (K, N) contiguous.
template <typename T>
inline void gemm_nn_strided(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
                            const T* W, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (have_blas<T>() && K > 0) {
    const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
    const int la = static_cast<int>(lda), lc = static_cast<int>(ldc);
    const T one = T(1), zero = T(0);
    blas_gemm("N", "N", &m, &n, &k, &one, W, &m, A, &la, &zero, C, &lc);
    return;
  }
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor a = at::from_blob(const_cast<T*>(A), {M, K}, {lda, 1}, opts);
  at::Tensor w = at::from_blob(const_cast<T*>(W), {K, N}, opts);
  at::Tensor c = at::from_blob(C, {M, N}, {ldc, 1}, opts);
  at::mm_out(c, a, w);
}

// C (M, N) = A^T B for A (K, M), B (K, N) with row strides lda, ldb; C contiguous. (For the
// weight gradient of one head: a sum over all T*B rows.)
template <typename T>
inline void gemm_tn_strided(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
                            const T* B, int64_t ldb, T* C) {
  if (M == 0 || N == 0) return;
  if (have_blas<T>() && K > 0) {  // column-major: C^T (N, M) = B^T A
    const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
    const int la = static_cast<int>(lda), lb = static_cast<int>(ldb);
    const T one = T(1), zero = T(0);
    blas_gemm("N", "T", &m, &n, &k, &one, B, &lb, A, &la, &zero, C, &m);
    return;
  }
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor a = at::from_blob(const_cast<T*>(A), {K, M}, {lda, 1}, opts);
  at::Tensor b = at::from_blob(const_cast<T*>(B), {K, N}, {ldb, 1}, opts);
  at::Tensor c = at::from_blob(C, {M, N}, opts);
  at::mm_out(c, a.t(), b);
}

// Torch's gate-major rows (4, K, d, ...) <-> head-major (K, 4, d, ...), for weight_ih (4H, I)
// and the bias (4H).
inline at::Tensor heads_first(const at::Tensor& w, int64_t K) {
  auto sizes = w.sizes().vec();
  std::vector<int64_t> split = {4, K, sizes[0] / (4 * K)};
  split.insert(split.end(), sizes.begin() + 1, sizes.end());
  return w.reshape(split).transpose(0, 1).reshape(sizes);
}
inline at::Tensor gates_first(const at::Tensor& w, int64_t K) {
  auto sizes = w.sizes().vec();
  std::vector<int64_t> split = {K, 4, sizes[0] / (4 * K)};
  split.insert(split.end(), sizes.begin() + 1, sizes.end());
  return w.reshape(split).transpose(0, 1).reshape(sizes);
}

// The head functions below are kept out of line: there the __restrict promises hold, which
// lets GCC vectorise their loops (inlined into the row loop, it sees every pointer derive
// from one tensor and gives up).
#define LSTMLAB_NOINLINE __attribute__((noinline))

// One head of one row of one step: d units, every pointer to d contiguous values, none
// aliasing another (so the loop vectorises: the gates are selects, not branches). In: ĩ, f̃
// (raw pre-activations, kept for the backward), z̃, õ (overwritten with tanh(z̃), σ(õ)) and the
// state of step t-1; out: the state of step t.
template <typename T, bool exp_forget>
LSTMLAB_NOINLINE void slstm_head_forward(
    int64_t d, const T* __restrict zi, const T* __restrict zf, T* __restrict zz,
    T* __restrict zo, const T* __restrict cp, const T* __restrict np, const T* __restrict mp,
    T* __restrict h, T* __restrict c, T* __restrict n, T* __restrict m) {
  const T inf = std::numeric_limits<T>::infinity();
  for (int64_t j = 0; j < d; ++j) {
    const T log_f = exp_forget ? zf[j] : log_sigmoid(zf[j]);
    const T stored = np[j] != T(0) ? T(1) : T(0);  // 0: nothing stored yet, m_{t-1} = -inf
    const T a = np[j] != T(0) ? log_f + mp[j] : -inf;
    const T m_t = std::max(a, zi[j]);              // m_t = max(log f + m_{t-1}, log i)
    const T ig = exp_(zi[j] - m_t);                // i'
    const T fg = stored * exp_(a - m_t);           // f'
    const T zt = tanh_(zz[j]);
    const T ot = sigmoid(zo[j]);
    const T ct = fg * cp[j] + ig * zt;
    const T nt = fg * np[j] + ig;
    c[j] = ct;
    n[j] = nt;
    m[j] = m_t;
    h[j] = ot * (ct / nt);
    zz[j] = zt;
    zo[j] = ot;
  }
}

// The gradients of one head of one row of one step (pointers as in slstm_head_forward; cp,
// np, mp the state of step t-1, c, n, m that of step t). In: dh = dL/dh_t, and dc, dn, dm =
// dL/d(c_t, n_t, m_t) from later steps, overwritten with dL/d(c, n, m)_{t-1}; out: dL/d(ĩ, f̃,
// z̃, õ).
template <typename T, bool exp_forget>
LSTMLAB_NOINLINE void slstm_head_backward(
    int64_t d, const T* __restrict zi, const T* __restrict zf, const T* __restrict zz,
    const T* __restrict zo, const T* __restrict cp, const T* __restrict np,
    const T* __restrict mp, const T* __restrict c, const T* __restrict n,
    const T* __restrict m, const T* __restrict dh, T* __restrict dc, T* __restrict dn,
    T* __restrict dm, T* __restrict dzi, T* __restrict dzf, T* __restrict dzz,
    T* __restrict dzo) {
  const T inf = std::numeric_limits<T>::infinity();
  for (int64_t j = 0; j < d; ++j) {
    const T log_i = zi[j];
    const T log_f = exp_forget ? zf[j] : log_sigmoid(zf[j]);  // as the forward computed it
    const T stored = np[j] != T(0) ? T(1) : T(0);
    const T a = np[j] != T(0) ? log_f + mp[j] : -inf;
    const T m_t = m[j];
    const T ig = exp_(log_i - m_t);
    const T fg = stored * exp_(a - m_t);
    const T zt = zz[j], ot = zo[j];
    const T inv_n = T(1) / n[j];
    const T ht = c[j] * inv_n;                                  // h̃ = c_t / n_t
    const T dht = dh[j] * ot;
    dzo[j] = dh[j] * ht * ot * (T(1) - ot);
    const T dct = dc[j] + dht * inv_n;
    const T dnt = dn[j] - dht * ht * inv_n;
    const T di = dct * zt + dnt;                                // dL/di'
    const T df = dct * cp[j] + dnt * np[j];                     // dL/df'
    dzz[j] = dct * ig * (T(1) - zt * zt);
    dc[j] = dct * fg;
    dn[j] = dnt * fg;
    // i' = exp(log i - m_t), f' = exp(a - m_t), m_t = max(a, log i): ties split as torch's
    // maximum does.
    const T dmt = dm[j] - di * ig - df * fg;
    const T at_i = m_t == log_i ? T(1) : T(0);
    const T at_a = m_t == a ? stored : T(0);
    const T to_i = at_i * (T(1) - T(0.5) * at_a);               // the share of dm_t ĩ gets
    const T da = df * fg + (T(1) - to_i) * dmt;
    dzi[j] = di * ig + to_i * dmt;
    dm[j] = stored * da;                                        // a = log f + m_{t-1}
    dzf[j] = exp_forget ? da : da * sigmoid(-zf[j]);            // (log σ)'(x) = σ(-x)
  }
}

// The pointwise part of step t on every live row, head by head: z (B, 4H, head-major), the
// state of step t-1 (cp, np, mp) and of step t (h, c, n, m), each (B, H).
template <typename T, bool exp_forget>
void slstm_step_forward(int64_t B, int64_t K, int64_t d, T* z, const T* cp, const T* np,
                        const T* mp, T* h, T* c, T* n, T* m, const int64_t* len, int64_t t) {
  const int64_t H = K * d;
  for_rows(B, 12 * H, [&](int64_t b) {
    if (!live(len, b, t)) return;
    for (int64_t k = 0; k < K; ++k) {
      T* zk = z + b * 4 * H + k * 4 * d;  // [i | f | z | o] of head k
      const int64_t u = b * H + k * d;    // its units in the state
      slstm_head_forward<T, exp_forget>(d, zk, zk + d, zk + 2 * d, zk + 3 * d, cp + u, np + u,
                                        mp + u, h + u, c + u, n + u, m + u);
    }
  });
}

// The pointwise gradients of step t (see slstm_head_backward): s = (c, n, m) of steps t-1 and
// t, dh = dL/dh_t (B, H), dc, dn, dm carried from step t to t-1, out dz (B, 4H, head-major).
// An ended row passes its gradients through and leaves dz at 0.
template <typename T, bool exp_forget>
void slstm_step_backward(int64_t B, int64_t K, int64_t d, const T* z, const T* cp,
                         const T* np, const T* mp, const T* c, const T* n, const T* m,
                         const T* dh, T* dc, T* dn, T* dm, T* dz, const int64_t* len,
                         int64_t t) {
  const int64_t H = K * d;
  for_rows(B, 16 * H, [&](int64_t b) {
    if (!live(len, b, t)) return;
    for (int64_t k = 0; k < K; ++k) {
      const int64_t g = b * 4 * H + k * 4 * d, u = b * H + k * d;
      const T* zk = z + g;
      T* dzk = dz + g;
      slstm_head_backward<T, exp_forget>(d, zk, zk + d, zk + 2 * d, zk + 3 * d, cp + u,
                                         np + u, mp + u, c + u, n + u, m + u, dh + u, dc + u,
                                         dn + u, dm + u, dzk, dzk + d, dzk + 2 * d,
                                         dzk + 3 * d);
    }
  });
}

// Returns hs, cs, ns, ms (T+1, B, H), index 0 the initial state, and acts (T, B, 4H): per row,
// head by head, ĩ, f̃, tanh(z̃), σ(õ).
inline std::vector<at::Tensor> slstm_forward(
    const at::Tensor& x, const at::Tensor& w_ih, const at::Tensor& bias, const at::Tensor& w_hh,
    const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& n0, const at::Tensor& m0,
    const at::Tensor& lengths, bool exponential_forget) {
  const int64_t T = x.size(0), B = x.size(1), K = w_hh.size(0), d = w_hh.size(2);
  const int64_t H = K * d, G = 4 * H;
  const auto x2 = x.reshape({T * B, x.size(2)});
  const at::Tensor w = heads_first(w_ih, K);
  at::Tensor acts = (bias.numel() ? at::addmm(heads_first(bias, K), x2, w.t()) : at::mm(x2, w.t()))
                        .view({T, B, G})
                        .contiguous();
  auto opts = x.options();
  at::Tensor hs = at::empty({T + 1, B, H}, opts), cs = at::empty({T + 1, B, H}, opts);
  at::Tensor ns = at::empty({T + 1, B, H}, opts), ms = at::empty({T + 1, B, H}, opts);
  hs[0].copy_(h0);
  cs[0].copy_(c0);
  ns[0].copy_(n0);
  ms[0].copy_(m0);
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  const at::Tensor whh = w_hh.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "slstm_forward", [&] {
    using T_ = scalar_t;
    const T_* r = whh.data_ptr<T_>();
    T_* acts_p = acts.data_ptr<T_>();
    T_* hs_p = hs.data_ptr<T_>();
    T_* cs_p = cs.data_ptr<T_>();
    T_* ns_p = ns.data_ptr<T_>();
    T_* ms_p = ms.data_ptr<T_>();
    const int64_t BH = B * H;
    auto step = exponential_forget ? slstm_step_forward<T_, true> : slstm_step_forward<T_, false>;
    for (int64_t t = 0; t < T; ++t) {
      T_* zp = acts_p + t * B * G;
      const T_* hp = hs_p + t * BH;
      for (int64_t k = 0; k < K; ++k)  // z_t[:, head k] += h_{t-1}[:, head k] R_k^T
        gemm_nt_strided<T_>(B, 4 * d, d, hp + k * d, H, r + k * 4 * d * d, zp + k * 4 * d, G);
      T_* hn = hs_p + (t + 1) * BH;
      T_* cn = cs_p + (t + 1) * BH;
      T_* nn = ns_p + (t + 1) * BH;
      T_* mn = ms_p + (t + 1) * BH;
      const T_* cp = cs_p + t * BH;
      const T_* np = ns_p + t * BH;
      const T_* mp = ms_p + t * BH;
      step(B, K, d, zp, cp, np, mp, hn, cn, nn, mn, len, t);
      hold_ended(hn, hp, B, H, len, t);
      hold_ended(cn, cp, B, H, len, t);
      hold_ended(nn, np, B, H, len, t);
      hold_ended(mn, mp, B, H, len, t);
    }
  });
  return {hs, cs, ns, ms, acts};
}

// Gradients for: x, w_ih, bias, w_hh, h0, c0, n0, m0.
inline std::vector<at::Tensor> slstm_backward(
    const at::Tensor& grad_hs, const at::Tensor& grad_cn, const at::Tensor& grad_nn,
    const at::Tensor& grad_mn, const at::Tensor& x, const at::Tensor& w_ih,
    const at::Tensor& w_hh, const at::Tensor& hs, const at::Tensor& cs, const at::Tensor& ns,
    const at::Tensor& ms, const at::Tensor& acts, const at::Tensor& lengths,
    bool exponential_forget) {
  const int64_t T = x.size(0), B = x.size(1), K = w_hh.size(0), d = w_hh.size(2);
  const int64_t H = K * d, G = 4 * H;
  const int64_t* len = lengths.numel() ? lengths.data_ptr<int64_t>() : nullptr;
  auto opts = x.options();
  at::Tensor dZ = at::zeros({T, B, G}, opts);
  at::Tensor dh = at::zeros({B, H}, opts);                  // dL/dh_t through later steps
  at::Tensor dht = at::empty({B, H}, opts);                 // all of dL/dh_t
  at::Tensor dc = grad_cn.contiguous().clone(), dn = grad_nn.contiguous().clone();
  at::Tensor dm = grad_mn.contiguous().clone();
  const at::Tensor whh = w_hh.contiguous(), ghs = grad_hs.contiguous();
  const at::Tensor acts_c = acts.contiguous(), hs_c = hs.contiguous(), cs_c = cs.contiguous();
  const at::Tensor ns_c = ns.contiguous(), ms_c = ms.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "slstm_backward", [&] {
    using T_ = scalar_t;
    const T_* r = whh.data_ptr<T_>();
    const T_* g_p = ghs.data_ptr<T_>();
    const T_* acts_p = acts_c.data_ptr<T_>();
    const T_* cs_p = cs_c.data_ptr<T_>();
    const T_* ns_p = ns_c.data_ptr<T_>();
    const T_* ms_p = ms_c.data_ptr<T_>();
    T_* dZ_p = dZ.data_ptr<T_>();
    T_* dh_p = dh.data_ptr<T_>();
    T_* dht_p = dht.data_ptr<T_>();
    T_* dc_p = dc.data_ptr<T_>();
    T_* dn_p = dn.data_ptr<T_>();
    T_* dm_p = dm.data_ptr<T_>();
    const int64_t BH = B * H;
    auto step =
        exponential_forget ? slstm_step_backward<T_, true> : slstm_step_backward<T_, false>;
    for (int64_t t = T - 1; t >= 0; --t) {
      const T_* g = g_p + (t + 1) * BH;
      for (int64_t j = 0; j < BH; ++j) dht_p[j] = dh_p[j] + g[j];
      const T_* z = acts_p + t * B * G;
      T_* dz = dZ_p + t * B * G;
      const T_* cp = cs_p + t * BH;
      const T_* np = ns_p + t * BH;
      const T_* mp = ms_p + t * BH;
      step(B, K, d, z, cp, np, mp, cp + BH, np + BH, mp + BH, dht_p, dc_p, dn_p, dm_p, dz, len,
           t);
      for (int64_t k = 0; k < K; ++k)  // dh_{t-1}[:, head k] = dz_t[:, head k] R_k
        gemm_nn_strided<T_>(B, d, 4 * d, dz + k * 4 * d, G, r + k * 4 * d * d, dh_p + k * d, H);
      hold_ended(dh_p, dht_p, B, H, len, t);
    }
  });
  // The weight gradients: one matmul each over all T*B rows (per head for w_hh).
  const at::Tensor dZ2 = dZ.view({T * B, G});
  const at::Tensor x2 = x.reshape({T * B, x.size(2)});
  at::Tensor dx = at::mm(dZ2, heads_first(w_ih, K)).view(x.sizes());
  at::Tensor dw_ih = gates_first(at::mm(dZ2.t(), x2), K);
  at::Tensor dbias = gates_first(dZ2.sum(0), K);
  at::Tensor dw_hh = at::empty({K, 4 * d, d}, opts);  // dR_k = dZ[:, head k]^T h_{t-1}[:, head k]
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "slstm_backward_weights", [&] {
    using T_ = scalar_t;
    const T_* dz = dZ.data_ptr<T_>();
    const T_* h_in = hs_c.data_ptr<T_>();  // rows 0 .. T*B-1: h_{t-1} of every step
    T_* dr = dw_hh.data_ptr<T_>();
    for (int64_t k = 0; k < K; ++k)
      gemm_tn_strided<T_>(4 * d, d, T * B, dz + k * 4 * d, G, h_in + k * d, H, dr + k * 4 * d * d);
  });
  dh.add_(grad_hs[0]);
  return {dx, dw_ih, dbias, dw_hh, dh, dc, dn, dm};
}

}  // namespace lstmlab
