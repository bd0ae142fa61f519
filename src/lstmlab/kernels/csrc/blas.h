// Small matmuls straight to the BLAS that torch links (MKL on x86 builds), skipping the tensor
// machinery: at B = 1 a step's (1, 4H) matmul costs less than the dispatch around at::addmm.
// The symbols are weak: where this torch build does not export them, the pointer is null and
// gemm_nt falls back to at::mm_out on borrowed tensors (same result, a little slower).
#pragma once

#include <ATen/ATen.h>

extern "C" {
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*,
            const float*, const int*, const float*, const int*, const float*, float*,
            const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*,
            const double*, const int*, const double*, const int*, const double*, double*,
            const int*) __attribute__((weak));
}

namespace lstmlab {

inline void blas_gemm(const char* ta, const char* tb, const int* m, const int* n, const int* k,
                      const float* alpha, const float* a, const int* lda, const float* b,
                      const int* ldb, const float* beta, float* c, const int* ldc) {
  sgemm_(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void blas_gemm(const char* ta, const char* tb, const int* m, const int* n, const int* k,
                      const double* alpha, const double* a, const int* lda, const double* b,
                      const int* ldb, const double* beta, double* c, const int* ldc) {
  dgemm_(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
template <typename T> inline bool have_blas();
template <> inline bool have_blas<float>() { return sgemm_ != nullptr; }
template <> inline bool have_blas<double>() { return dgemm_ != nullptr; }

// C (M, N) = beta * C + A (M, K) W^T, all row-major and contiguous; W is (N, K) like a weight.
// (In BLAS's column-major terms: C^T = W A^T.)
template <typename T>
inline void gemm_nt(int64_t M, int64_t N, int64_t K, const T* A, const T* W, T beta, T* C) {
  if (M == 0 || N == 0) return;
  if (have_blas<T>() && K > 0) {
    const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
    const T one = T(1);
    blas_gemm("T", "N", &m, &n, &k, &one, W, &k, A, &k, &beta, C, &m);
    return;
  }
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor a = at::from_blob(const_cast<T*>(A), {M, K}, opts);
  at::Tensor w = at::from_blob(const_cast<T*>(W), {N, K}, opts);
  at::Tensor c = at::from_blob(C, {M, N}, opts);
  if (beta == T(0)) at::mm_out(c, a, w.t());
  else c.addmm_(a, w.t(), beta, 1);
}

// C (M, N) = beta * C + A (M, K) W, all row-major; W is (K, N) contiguous, e.g. a weight met
// from the output side in a backward pass; A's rows are lda apart (lda = 0: K, contiguous).
// (Column-major: C^T = W^T A^T.)
template <typename T>
inline void gemm_nn(int64_t M, int64_t N, int64_t K, const T* A, const T* W, T beta, T* C,
                    int64_t lda = 0) {
  if (M == 0 || N == 0) return;
  if (lda == 0) lda = K;
  if (have_blas<T>() && K > 0) {
    const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
    const int la = static_cast<int>(lda);
    const T one = T(1);
    blas_gemm("N", "N", &m, &n, &k, &one, W, &m, A, &la, &beta, C, &m);
    return;
  }
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor a = at::from_blob(const_cast<T*>(A), {M, K}, {lda, 1}, opts);
  at::Tensor w = at::from_blob(const_cast<T*>(W), {K, N}, opts);
  at::Tensor c = at::from_blob(C, {M, N}, opts);
  if (beta == T(0)) at::mm_out(c, a, w);
  else c.addmm_(a, w, beta, 1);
}

}  // namespace lstmlab
