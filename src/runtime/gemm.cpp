#include "runtime/gemm.hpp"

#include "runtime/isa/kernels.hpp"

namespace edgeloop::runtime {
namespace {

template <typename T>
void ReferenceGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                   int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      T acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        T av = ta ? a[p * lda + i] : a[i * lda + p];
        T bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        acc += av * bv;
      }
      T prev = beta == T(0) ? T(0) : beta * c[i * ldc + j];
      c[i * ldc + j] = alpha * acc + prev;
    }
  }
}

}  // namespace

void Sgemm(Backend backend, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
           float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
           float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (backend == Backend::kFast && k > 0)
    ActiveKernels().sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    ReferenceGemm<float>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void ConvGemm(int64_t m, int64_t n, int64_t k, const float* a, const float* b, const float* bias,
              float lo, float hi, float* c) {
  ActiveKernels().conv_gemm(m, n, k, a, b, bias, lo, hi, c);
}

void ConvGemmRows(int64_t m, int64_t n, int64_t k, const float* a, const float* const* rows,
                  const float* bias, float lo, float hi, float* c) {
  ActiveKernels().conv_gemm_rows(m, n, k, a, rows, bias, lo, hi, c);
}

void DotRows(const float* x, const float* w, int64_t n, int64_t k, float* y) {
  ActiveKernels().dot_rows(x, w, n, k, y);
}

void Dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
           const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
           int64_t ldc) {
  if (m == 0 || n == 0) return;
  ReferenceGemm<double>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace edgeloop::runtime
