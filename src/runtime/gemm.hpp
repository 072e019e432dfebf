// Single-precision matrix multiply, the workhorse of Conv, Gemm and MatMul:
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
// with row-major matrices and leading dimensions. kReference is three plain loops (the
// definition); kFast uses Eigen's blocked, vectorised product. Tests hold the two together.
// The fast paths run at the active instruction-set level (isa.hpp); thread-safe.
#pragma once

#include <cstdint>

#include "runtime/kernel.hpp"

namespace edgeloop::runtime {

void Sgemm(Backend backend, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
           float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
           float* c, int64_t ldc);

// C[M,N] = clamp(A[M,K] * B[K,N] + bias, lo, hi), all row-major and dense (lda = K, ldb =
// ldc = N), bias[M] per row (nullptr: none), lo and hi the activation folded into the layer
// (+-infinity: none): the shape of a convolution over unrolled windows. At the avx512 level a
// register-blocked kernel (8 rows x 48, 32 or 16 columns per step, no packing, the bias and
// activation applied in registers) is used, which beats a general GEMM for the small M and K
// of edge models; below it, Sgemm.
void ConvGemm(int64_t m, int64_t n, int64_t k, const float* a, const float* b, const float* bias,
              float lo, float hi, float* c);
// The same with row p of B at rows[p] (each n floats long): a stride-1 convolution reads its
// windows straight out of the padded input this way, without unrolling them.
void ConvGemmRows(int64_t m, int64_t n, int64_t k, const float* a, const float* const* rows,
                  const float* bias, float lo, float hi, float* c);

// y[j] += dot(x, w_row_j) for j < n, w row-major [n, k]: a fully connected layer on one sample
// (Gemm with transB). At the avx512 level four rows share each load of x; below it, Eigen's
// matrix-vector product.
void DotRows(const float* x, const float* w, int64_t n, int64_t k, float* y);

// Double precision, reference only (conformance cases use it; devices do not).
void Dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
           const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
           int64_t ldc);

}  // namespace edgeloop::runtime
