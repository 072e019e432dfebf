#include "runtime/gemm.hpp"

#include <Eigen/Core>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;
using Map = Eigen::Map<RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;

void EigenGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  ConstMap A(a, ta ? k : m, ta ? m : k, Eigen::OuterStride<>(lda));
  ConstMap B(b, tb ? n : k, tb ? k : n, Eigen::OuterStride<>(ldb));
  Map C(c, m, n, Eigen::OuterStride<>(ldc));
  if (beta == 0.0f) {
    if (!ta && !tb)
      C.noalias() = A * B;
    else if (ta && !tb)
      C.noalias() = A.transpose() * B;
    else if (!ta && tb)
      C.noalias() = A * B.transpose();
    else
      C.noalias() = A.transpose() * B.transpose();
    if (alpha != 1.0f) C *= alpha;
    return;
  }
  if (beta != 1.0f) C *= beta;
  if (!ta && !tb)
    C.noalias() += alpha * (A * B);
  else if (ta && !tb)
    C.noalias() += alpha * (A.transpose() * B);
  else if (!ta && tb)
    C.noalias() += alpha * (A * B.transpose());
  else
    C.noalias() += alpha * (A.transpose() * B.transpose());
}

}  // namespace

void Sgemm(Backend backend, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
           float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
           float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (backend == Backend::kFast && k > 0)
    EigenGemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    ReferenceGemm<float>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#if defined(__AVX512F__)
namespace {
// Rows [0, 4) of the block and columns [j, j + 32) (masked at the right edge): eight named
// accumulators (arrays of vectors get spilled), two loads of B and four broadcasts of A per k.
template <typename Rows>
inline void ConvGemm4x32(int64_t n, int64_t k, const float* a, Rows rows, float* c, int64_t j) {
  const int64_t left = n - j;
  const __mmask16 m0 = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
  const __mmask16 m1 = left >= 32   ? __mmask16(0xFFFF)
                       : left <= 16 ? __mmask16(0)
                                    : __mmask16((1u << (left - 16)) - 1);
  float* c0 = c + j;
  float* c1 = c0 + n;
  float* c2 = c1 + n;
  float* c3 = c2 + n;
  __m512 x0 = _mm512_maskz_loadu_ps(m0, c0), y0 = _mm512_maskz_loadu_ps(m1, c0 + 16);
  __m512 x1 = _mm512_maskz_loadu_ps(m0, c1), y1 = _mm512_maskz_loadu_ps(m1, c1 + 16);
  __m512 x2 = _mm512_maskz_loadu_ps(m0, c2), y2 = _mm512_maskz_loadu_ps(m1, c2 + 16);
  __m512 x3 = _mm512_maskz_loadu_ps(m0, c3), y3 = _mm512_maskz_loadu_ps(m1, c3 + 16);
  const float* a0 = a;
  const float* a1 = a0 + k;
  const float* a2 = a1 + k;
  const float* a3 = a2 + k;
  for (int64_t p = 0; p < k; ++p) {
    const float* bp = rows(p) + j;
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, bp);
    const __m512 b1 = _mm512_maskz_loadu_ps(m1, bp + 16);
    __m512 v = _mm512_set1_ps(a0[p]);
    x0 = _mm512_fmadd_ps(v, b0, x0);
    y0 = _mm512_fmadd_ps(v, b1, y0);
    v = _mm512_set1_ps(a1[p]);
    x1 = _mm512_fmadd_ps(v, b0, x1);
    y1 = _mm512_fmadd_ps(v, b1, y1);
    v = _mm512_set1_ps(a2[p]);
    x2 = _mm512_fmadd_ps(v, b0, x2);
    y2 = _mm512_fmadd_ps(v, b1, y2);
    v = _mm512_set1_ps(a3[p]);
    x3 = _mm512_fmadd_ps(v, b0, x3);
    y3 = _mm512_fmadd_ps(v, b1, y3);
  }
  _mm512_mask_storeu_ps(c0, m0, x0);
  _mm512_mask_storeu_ps(c0 + 16, m1, y0);
  _mm512_mask_storeu_ps(c1, m0, x1);
  _mm512_mask_storeu_ps(c1 + 16, m1, y1);
  _mm512_mask_storeu_ps(c2, m0, x2);
  _mm512_mask_storeu_ps(c2 + 16, m1, y2);
  _mm512_mask_storeu_ps(c3, m0, x3);
  _mm512_mask_storeu_ps(c3 + 16, m1, y3);
}

// Rows [0, 8) and columns [j, j + 32) (masked at the right edge): sixteen named accumulators
// (arrays of vectors get spilled), two loads of B and eight broadcasts of A per step of k, so
// each B element loaded from cache feeds eight multiply-adds.
template <typename Rows>
inline void ConvGemm8x32(int64_t n, int64_t k, const float* a, Rows rows, float* c, int64_t j) {
  const int64_t left = n - j;
  const __mmask16 m0 = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
  const __mmask16 m1 = left >= 32   ? __mmask16(0xFFFF)
                       : left <= 16 ? __mmask16(0)
                                    : __mmask16((1u << (left - 16)) - 1);
  float* c0 = c + 0 * n + j;
  __m512 x0 = _mm512_maskz_loadu_ps(m0, c0), y0 = _mm512_maskz_loadu_ps(m1, c0 + 16);
  const float* a0 = a + 0 * k;
  float* c1 = c + 1 * n + j;
  __m512 x1 = _mm512_maskz_loadu_ps(m0, c1), y1 = _mm512_maskz_loadu_ps(m1, c1 + 16);
  const float* a1 = a + 1 * k;
  float* c2 = c + 2 * n + j;
  __m512 x2 = _mm512_maskz_loadu_ps(m0, c2), y2 = _mm512_maskz_loadu_ps(m1, c2 + 16);
  const float* a2 = a + 2 * k;
  float* c3 = c + 3 * n + j;
  __m512 x3 = _mm512_maskz_loadu_ps(m0, c3), y3 = _mm512_maskz_loadu_ps(m1, c3 + 16);
  const float* a3 = a + 3 * k;
  float* c4 = c + 4 * n + j;
  __m512 x4 = _mm512_maskz_loadu_ps(m0, c4), y4 = _mm512_maskz_loadu_ps(m1, c4 + 16);
  const float* a4 = a + 4 * k;
  float* c5 = c + 5 * n + j;
  __m512 x5 = _mm512_maskz_loadu_ps(m0, c5), y5 = _mm512_maskz_loadu_ps(m1, c5 + 16);
  const float* a5 = a + 5 * k;
  float* c6 = c + 6 * n + j;
  __m512 x6 = _mm512_maskz_loadu_ps(m0, c6), y6 = _mm512_maskz_loadu_ps(m1, c6 + 16);
  const float* a6 = a + 6 * k;
  float* c7 = c + 7 * n + j;
  __m512 x7 = _mm512_maskz_loadu_ps(m0, c7), y7 = _mm512_maskz_loadu_ps(m1, c7 + 16);
  const float* a7 = a + 7 * k;
  for (int64_t p = 0; p < k; ++p) {
    const float* bp = rows(p) + j;
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, bp);
    const __m512 b1 = _mm512_maskz_loadu_ps(m1, bp + 16);
    const __m512 v0 = _mm512_set1_ps(a0[p]);
    x0 = _mm512_fmadd_ps(v0, b0, x0);
    y0 = _mm512_fmadd_ps(v0, b1, y0);
    const __m512 v1 = _mm512_set1_ps(a1[p]);
    x1 = _mm512_fmadd_ps(v1, b0, x1);
    y1 = _mm512_fmadd_ps(v1, b1, y1);
    const __m512 v2 = _mm512_set1_ps(a2[p]);
    x2 = _mm512_fmadd_ps(v2, b0, x2);
    y2 = _mm512_fmadd_ps(v2, b1, y2);
    const __m512 v3 = _mm512_set1_ps(a3[p]);
    x3 = _mm512_fmadd_ps(v3, b0, x3);
    y3 = _mm512_fmadd_ps(v3, b1, y3);
    const __m512 v4 = _mm512_set1_ps(a4[p]);
    x4 = _mm512_fmadd_ps(v4, b0, x4);
    y4 = _mm512_fmadd_ps(v4, b1, y4);
    const __m512 v5 = _mm512_set1_ps(a5[p]);
    x5 = _mm512_fmadd_ps(v5, b0, x5);
    y5 = _mm512_fmadd_ps(v5, b1, y5);
    const __m512 v6 = _mm512_set1_ps(a6[p]);
    x6 = _mm512_fmadd_ps(v6, b0, x6);
    y6 = _mm512_fmadd_ps(v6, b1, y6);
    const __m512 v7 = _mm512_set1_ps(a7[p]);
    x7 = _mm512_fmadd_ps(v7, b0, x7);
    y7 = _mm512_fmadd_ps(v7, b1, y7);
  }
  _mm512_mask_storeu_ps(c0, m0, x0);
  _mm512_mask_storeu_ps(c0 + 16, m1, y0);
  _mm512_mask_storeu_ps(c1, m0, x1);
  _mm512_mask_storeu_ps(c1 + 16, m1, y1);
  _mm512_mask_storeu_ps(c2, m0, x2);
  _mm512_mask_storeu_ps(c2 + 16, m1, y2);
  _mm512_mask_storeu_ps(c3, m0, x3);
  _mm512_mask_storeu_ps(c3 + 16, m1, y3);
  _mm512_mask_storeu_ps(c4, m0, x4);
  _mm512_mask_storeu_ps(c4 + 16, m1, y4);
  _mm512_mask_storeu_ps(c5, m0, x5);
  _mm512_mask_storeu_ps(c5 + 16, m1, y5);
  _mm512_mask_storeu_ps(c6, m0, x6);
  _mm512_mask_storeu_ps(c6 + 16, m1, y6);
  _mm512_mask_storeu_ps(c7, m0, x7);
  _mm512_mask_storeu_ps(c7 + 16, m1, y7);
}

// Rows [0, 8) and columns [j, j + 48) (masked at the right edge): twenty-four named
// accumulators, three loads of B and eight broadcasts of A per step of k.
template <typename Rows>
inline void ConvGemm8x48(int64_t n, int64_t k, const float* a, Rows rows, float* c, int64_t j) {
  const int64_t left = n - j;
  auto mask = [left](int64_t from) {
    return left - from >= 16 ? __mmask16(0xFFFF)
           : left <= from    ? __mmask16(0)
                             : __mmask16((1u << (left - from)) - 1);
  };
  const __mmask16 m0 = mask(0), m1 = mask(16), m2 = mask(32);
  float* c0 = c + 0 * n + j;
  __m512 x0 = _mm512_maskz_loadu_ps(m0, c0), y0 = _mm512_maskz_loadu_ps(m1, c0 + 16),
         z0 = _mm512_maskz_loadu_ps(m2, c0 + 32);
  const float* a0 = a + 0 * k;
  float* c1 = c + 1 * n + j;
  __m512 x1 = _mm512_maskz_loadu_ps(m0, c1), y1 = _mm512_maskz_loadu_ps(m1, c1 + 16),
         z1 = _mm512_maskz_loadu_ps(m2, c1 + 32);
  const float* a1 = a + 1 * k;
  float* c2 = c + 2 * n + j;
  __m512 x2 = _mm512_maskz_loadu_ps(m0, c2), y2 = _mm512_maskz_loadu_ps(m1, c2 + 16),
         z2 = _mm512_maskz_loadu_ps(m2, c2 + 32);
  const float* a2 = a + 2 * k;
  float* c3 = c + 3 * n + j;
  __m512 x3 = _mm512_maskz_loadu_ps(m0, c3), y3 = _mm512_maskz_loadu_ps(m1, c3 + 16),
         z3 = _mm512_maskz_loadu_ps(m2, c3 + 32);
  const float* a3 = a + 3 * k;
  float* c4 = c + 4 * n + j;
  __m512 x4 = _mm512_maskz_loadu_ps(m0, c4), y4 = _mm512_maskz_loadu_ps(m1, c4 + 16),
         z4 = _mm512_maskz_loadu_ps(m2, c4 + 32);
  const float* a4 = a + 4 * k;
  float* c5 = c + 5 * n + j;
  __m512 x5 = _mm512_maskz_loadu_ps(m0, c5), y5 = _mm512_maskz_loadu_ps(m1, c5 + 16),
         z5 = _mm512_maskz_loadu_ps(m2, c5 + 32);
  const float* a5 = a + 5 * k;
  float* c6 = c + 6 * n + j;
  __m512 x6 = _mm512_maskz_loadu_ps(m0, c6), y6 = _mm512_maskz_loadu_ps(m1, c6 + 16),
         z6 = _mm512_maskz_loadu_ps(m2, c6 + 32);
  const float* a6 = a + 6 * k;
  float* c7 = c + 7 * n + j;
  __m512 x7 = _mm512_maskz_loadu_ps(m0, c7), y7 = _mm512_maskz_loadu_ps(m1, c7 + 16),
         z7 = _mm512_maskz_loadu_ps(m2, c7 + 32);
  const float* a7 = a + 7 * k;
  for (int64_t p = 0; p < k; ++p) {
    const float* bp = rows(p) + j;
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, bp);
    const __m512 b1 = _mm512_maskz_loadu_ps(m1, bp + 16);
    const __m512 b2 = _mm512_maskz_loadu_ps(m2, bp + 32);
    const __m512 v0 = _mm512_set1_ps(a0[p]);
    x0 = _mm512_fmadd_ps(v0, b0, x0);
    y0 = _mm512_fmadd_ps(v0, b1, y0);
    z0 = _mm512_fmadd_ps(v0, b2, z0);
    const __m512 v1 = _mm512_set1_ps(a1[p]);
    x1 = _mm512_fmadd_ps(v1, b0, x1);
    y1 = _mm512_fmadd_ps(v1, b1, y1);
    z1 = _mm512_fmadd_ps(v1, b2, z1);
    const __m512 v2 = _mm512_set1_ps(a2[p]);
    x2 = _mm512_fmadd_ps(v2, b0, x2);
    y2 = _mm512_fmadd_ps(v2, b1, y2);
    z2 = _mm512_fmadd_ps(v2, b2, z2);
    const __m512 v3 = _mm512_set1_ps(a3[p]);
    x3 = _mm512_fmadd_ps(v3, b0, x3);
    y3 = _mm512_fmadd_ps(v3, b1, y3);
    z3 = _mm512_fmadd_ps(v3, b2, z3);
    const __m512 v4 = _mm512_set1_ps(a4[p]);
    x4 = _mm512_fmadd_ps(v4, b0, x4);
    y4 = _mm512_fmadd_ps(v4, b1, y4);
    z4 = _mm512_fmadd_ps(v4, b2, z4);
    const __m512 v5 = _mm512_set1_ps(a5[p]);
    x5 = _mm512_fmadd_ps(v5, b0, x5);
    y5 = _mm512_fmadd_ps(v5, b1, y5);
    z5 = _mm512_fmadd_ps(v5, b2, z5);
    const __m512 v6 = _mm512_set1_ps(a6[p]);
    x6 = _mm512_fmadd_ps(v6, b0, x6);
    y6 = _mm512_fmadd_ps(v6, b1, y6);
    z6 = _mm512_fmadd_ps(v6, b2, z6);
    const __m512 v7 = _mm512_set1_ps(a7[p]);
    x7 = _mm512_fmadd_ps(v7, b0, x7);
    y7 = _mm512_fmadd_ps(v7, b1, y7);
    z7 = _mm512_fmadd_ps(v7, b2, z7);
  }
  _mm512_mask_storeu_ps(c0, m0, x0);
  _mm512_mask_storeu_ps(c0 + 16, m1, y0);
  _mm512_mask_storeu_ps(c0 + 32, m2, z0);
  _mm512_mask_storeu_ps(c1, m0, x1);
  _mm512_mask_storeu_ps(c1 + 16, m1, y1);
  _mm512_mask_storeu_ps(c1 + 32, m2, z1);
  _mm512_mask_storeu_ps(c2, m0, x2);
  _mm512_mask_storeu_ps(c2 + 16, m1, y2);
  _mm512_mask_storeu_ps(c2 + 32, m2, z2);
  _mm512_mask_storeu_ps(c3, m0, x3);
  _mm512_mask_storeu_ps(c3 + 16, m1, y3);
  _mm512_mask_storeu_ps(c3 + 32, m2, z3);
  _mm512_mask_storeu_ps(c4, m0, x4);
  _mm512_mask_storeu_ps(c4 + 16, m1, y4);
  _mm512_mask_storeu_ps(c4 + 32, m2, z4);
  _mm512_mask_storeu_ps(c5, m0, x5);
  _mm512_mask_storeu_ps(c5 + 16, m1, y5);
  _mm512_mask_storeu_ps(c5 + 32, m2, z5);
  _mm512_mask_storeu_ps(c6, m0, x6);
  _mm512_mask_storeu_ps(c6 + 16, m1, y6);
  _mm512_mask_storeu_ps(c6 + 32, m2, z6);
  _mm512_mask_storeu_ps(c7, m0, x7);
  _mm512_mask_storeu_ps(c7 + 16, m1, y7);
  _mm512_mask_storeu_ps(c7 + 32, m2, z7);
}

template <typename Rows>
inline void ConvGemm1x16(int64_t n, int64_t k, const float* a, Rows rows, float* c, int64_t j) {
  const int64_t left = n - j;
  const __mmask16 m0 = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
  __m512 x = _mm512_maskz_loadu_ps(m0, c + j);
  for (int64_t p = 0; p < k; ++p)
    x = _mm512_fmadd_ps(_mm512_set1_ps(a[p]), _mm512_maskz_loadu_ps(m0, rows(p) + j), x);
  _mm512_mask_storeu_ps(c + j, m0, x);
}
}  // namespace
#endif

namespace {
template <typename Rows>
void ConvGemmImpl(int64_t m, int64_t n, int64_t k, const float* a, Rows rows, float* c) {
#if defined(__AVX512F__)
  int64_t i = 0;
  for (; i + 8 <= m; i += 8)
    for (int64_t j = 0; j < n; j += 48) ConvGemm8x48(n, k, a + i * k, rows, c + i * n, j);
  for (; i + 4 <= m; i += 4)
    for (int64_t j = 0; j < n; j += 32) ConvGemm4x32(n, k, a + i * k, rows, c + i * n, j);
  for (; i < m; ++i)
    for (int64_t j = 0; j < n; j += 16) ConvGemm1x16(n, k, a + i * k, rows, c + i * n, j);
#else
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p) {
      const float av = a[i * k + p];
      const float* bp = rows(p);
      for (int64_t j = 0; j < n; ++j) c[i * n + j] += av * bp[j];
    }
#endif
}
}  // namespace

void ConvGemm(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) {
#if defined(__AVX512F__)
  ConvGemmImpl(
      m, n, k, a, [b, n](int64_t p) { return b + p * n; }, c);
#else
  Sgemm(Backend::kFast, false, false, m, n, k, 1.0f, a, k, b, n, 1.0f, c, n);
#endif
}

void ConvGemmRows(int64_t m, int64_t n, int64_t k, const float* a, const float* const* rows,
                  float* c) {
  ConvGemmImpl(
      m, n, k, a, [rows](int64_t p) { return rows[p]; }, c);
}

void DotRows(const float* x, const float* w, int64_t n, int64_t k, float* y) {
  int64_t j = 0;
#if defined(__AVX512F__)
  for (; j + 4 <= n; j += 4) {
    const float* w0 = w + j * k;
    const float* w1 = w0 + k;
    const float* w2 = w1 + k;
    const float* w3 = w2 + k;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i < k; i += 16) {
      const __mmask16 mk = k - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (k - i)) - 1);
      const __m512 xv = _mm512_maskz_loadu_ps(mk, x + i);
      a0 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(mk, w0 + i), a0);
      a1 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(mk, w1 + i), a1);
      a2 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(mk, w2 + i), a2);
      a3 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(mk, w3 + i), a3);
    }
    y[j] += _mm512_reduce_add_ps(a0);
    y[j + 1] += _mm512_reduce_add_ps(a1);
    y[j + 2] += _mm512_reduce_add_ps(a2);
    y[j + 3] += _mm512_reduce_add_ps(a3);
  }
#endif
  for (; j < n; ++j) {
    float acc = 0;
    for (int64_t i = 0; i < k; ++i) acc += x[i] * w[j * k + i];
    y[j] += acc;
  }
}

void Dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
           const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
           int64_t ldc) {
  if (m == 0 || n == 0) return;
  ReferenceGemm<double>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace edgeloop::runtime
