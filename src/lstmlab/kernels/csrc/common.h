// Shared pieces of the fused sequence kernels: activations and the row-parallel loop.
//
// float32 uses a polynomial exp (Cephes expf, about 1 ulp on the reduced range) written so that
// the compiler vectorises whole rows; float64 (tests, gradcheck) uses libm.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace lstmlab {

#define LSTMLAB_INLINE __attribute__((always_inline)) inline

// Forced inline: a call in a row loop would keep that loop scalar.
LSTMLAB_INLINE float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);  // x = n ln2 + r
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

LSTMLAB_INLINE float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
LSTMLAB_INLINE double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
LSTMLAB_INLINE float tanh_(float x) { return 2.0f / (1.0f + exp_approx(-2.0f * x)) - 1.0f; }
LSTMLAB_INLINE double tanh_(double x) { return std::tanh(x); }

// f(b) for every row b of a batch, across threads when a step has enough work.
template <typename F>
inline void for_rows(int64_t rows, int64_t width, const F& f) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(width, 1));
  at::parallel_for(0, rows, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) f(b);
  });
}

// Which rows still run at step t: lengths is empty (all) or (B,) int64.
inline bool live(const int64_t* lengths, int64_t b, int64_t t) {
  return lengths == nullptr || t < lengths[b];
}

// Rows that have ended (t >= length) keep their state: copy `from` into `to` for those rows.
template <typename T>
inline void hold_ended(T* to, const T* from, int64_t rows, int64_t width, const int64_t* lengths,
                       int64_t t) {
  if (!lengths) return;
  for (int64_t b = 0; b < rows; ++b)
    if (t >= lengths[b]) std::memcpy(to + b * width, from + b * width, width * sizeof(T));
}

template <typename T>
inline void zero_ended(T* y, int64_t rows, int64_t width, const int64_t* lengths, int64_t t) {
  if (!lengths) return;
  for (int64_t b = 0; b < rows; ++b)
    if (t >= lengths[b]) std::memset(y + b * width, 0, width * sizeof(T));
}

// Zoneout (Krueger et al. 2016) for one step: out = k ⊙ prev + (1 - k) ⊙ now on the rows still
// running, with k the 0/1 draws while training or the constant z in evaluation; out may be now.
template <typename T>
inline void zone_rows(T* out, const T* prev, const T* now, const T* keep, int64_t rows,
                      int64_t width, const int64_t* lengths, int64_t t) {
  for_rows(rows, 3 * width, [&](int64_t b) {
    if (!live(lengths, b, t)) return;
    for (int64_t j = b * width; j < (b + 1) * width; ++j)
      out[j] = keep[j] * prev[j] + (T(1) - keep[j]) * now[j];
  });
}

template <typename T>
inline const T* data_or_null(const at::Tensor& t) {
  return t.defined() && t.numel() ? t.data_ptr<T>() : nullptr;
}

}  // namespace lstmlab
