// Gemm (Y = alpha * op(A) op(B) + beta * C, C broadcast to [M, N]) and MatMul (numpy
// semantics: 1-D operands promoted, batch dimensions broadcast), float32 and float64.
#include <algorithm>
#include <cstring>

#include "runtime/gemm.hpp"
#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {
namespace {

// --- Gemm ------------------------------------------------------------------------------
Status CheckGemm(const Node& n) {
  return CheckArity(n, 2, 3);
}

Status InferGemm(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32, DType::kFloat64}));
  const Shape& a = c.in[0]->shape;
  const Shape& b = c.in[1]->shape;
  if (a.size() != 2 || b.size() != 2) return c.Fail("A and B must be matrices");
  if (c.in[1]->dtype != c.in[0]->dtype) return c.Fail("A and B differ in type");
  const bool ta = c.node.Int("transA", 0) != 0, tb = c.node.Int("transB", 0) != 0;
  int64_t m = ta ? a[1] : a[0], k = ta ? a[0] : a[1];
  int64_t kb = tb ? b[1] : b[0], n = tb ? b[0] : b[1];
  if (k != kb) return c.Fail("inner dimensions differ: " + ShapeString(a) + " x " + ShapeString(b));
  if (c.in.size() > 2 && c.in[2]) {
    Shape bc;
    if (c.in[2]->dtype != c.in[0]->dtype || !BroadcastShapes({m, n}, c.in[2]->shape, &bc) ||
        bc != Shape{m, n})
      return c.Fail("C of shape " + ShapeString(c.in[2]->shape) + " does not broadcast to " +
                    ShapeString({m, n}));
  }
  c.out = {TensorInfo{c.in[0]->dtype, {m, n}}};
  return Status::Ok();
}

template <typename T>
void FillBias(const Tensor* bias, T* y, int64_t m, int64_t n) {
  if (!bias) {
    std::fill(y, y + m * n, T(0));
    return;
  }
  const T* pc = bias->as<T>();
  const Shape& s = bias->shape;
  int64_t rows = s.size() == 2 ? s[0] : 1;
  int64_t cols = s.empty() ? 1 : s.back();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      y[i * n + j] = pc[(rows == 1 ? 0 : i) * cols + (cols == 1 ? 0 : j)];
}

Status RunGemm(RunContext& c) {
  const Tensor& a = *c.in[0];
  const Tensor& b = *c.in[1];
  const Tensor* bias = c.in.size() > 2 ? c.in[2] : nullptr;
  Tensor& y = *c.out[0];
  const bool ta = c.node.Int("transA", 0) != 0, tb = c.node.Int("transB", 0) != 0;
  const float alpha = c.node.Float("alpha", 1.0f), beta = c.node.Float("beta", 1.0f);
  const int64_t m = y.shape[0], n = y.shape[1], k = ta ? a.shape[0] : a.shape[1];
  const bool use_bias = bias && beta != 0.0f;
  if (a.dtype == DType::kFloat32) {
    FillBias<float>(use_bias ? bias : nullptr, y.as<float>(), m, n);
    if (c.backend == Backend::kFast && !ta && tb && alpha == 1.0f && (!use_bias || beta == 1.0f) &&
        m <= 4) {
      // A fully connected layer on a few samples: dot products against the weight rows.
      for (int64_t i = 0; i < m; ++i)
        DotRows(a.as<float>() + i * k, b.as<float>(), n, k, y.as<float>() + i * n);
    } else {
      Sgemm(c.backend, ta, tb, m, n, k, alpha, a.as<float>(), a.shape[1], b.as<float>(), b.shape[1],
            use_bias ? beta : 0.0f, y.as<float>(), n);
    }
    ApplyFusedActivation(c.node, y.as<float>(), m * n);
  } else {
    FillBias<double>(use_bias ? bias : nullptr, y.as<double>(), m, n);
    Dgemm(ta, tb, m, n, k, alpha, a.as<double>(), a.shape[1], b.as<double>(), b.shape[1],
          use_bias ? beta : 0.0, y.as<double>(), n);
  }
  return Status::Ok();
}

// --- MatMul ----------------------------------------------------------------------------
Status CheckMatMul(const Node& n) {
  return CheckArity(n, 2, 2);
}

struct MatMulDims {
  Shape a, b;   // promoted to rank >= 2
  Shape batch;  // broadcast batch shape
  Shape out;    // final output shape (promotions removed)
  int64_t m = 0, k = 0, n = 0;
};

bool PlanMatMul(const Shape& sa, const Shape& sb, MatMulDims* d) {
  if (sa.empty() || sb.empty()) return false;
  d->a = sa.size() == 1 ? Shape{1, sa[0]} : sa;
  d->b = sb.size() == 1 ? Shape{sb[0], 1} : sb;
  d->m = d->a[d->a.size() - 2];
  d->k = d->a.back();
  d->n = d->b.back();
  if (d->b[d->b.size() - 2] != d->k) return false;
  Shape ba(d->a.begin(), d->a.end() - 2), bb(d->b.begin(), d->b.end() - 2);
  if (!BroadcastShapes(ba, bb, &d->batch)) return false;
  d->out = d->batch;
  if (sa.size() > 1) d->out.push_back(d->m);
  if (sb.size() > 1) d->out.push_back(d->n);
  return true;
}

Status InferMatMul(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32, DType::kFloat64}));
  if (c.in[1]->dtype != c.in[0]->dtype) return c.Fail("inputs differ in type");
  MatMulDims d;
  if (!PlanMatMul(c.in[0]->shape, c.in[1]->shape, &d))
    return c.Fail("shapes " + ShapeString(c.in[0]->shape) + " and " + ShapeString(c.in[1]->shape) +
                  " do not multiply");
  c.out = {TensorInfo{c.in[0]->dtype, d.out}};
  return Status::Ok();
}

Status RunMatMul(RunContext& c) {
  MatMulDims d;
  PlanMatMul(c.in[0]->shape, c.in[1]->shape, &d);
  const int64_t batches = NumElements(d.batch);
  Shape ba(d.a.begin(), d.a.end() - 2), bb(d.b.begin(), d.b.end() - 2);
  // Offset of each operand's matrix for a flat batch index, honouring broadcast.
  auto offset = [&](const Shape& s, int64_t flat) {
    int64_t off = 0, mul = 1;
    for (size_t i = d.batch.size(); i-- > 0;) {
      int64_t idx = flat % d.batch[i];
      flat /= d.batch[i];
      size_t si = i + s.size();
      if (si < d.batch.size()) continue;
      si -= d.batch.size();
      int64_t dim = s[si];
      off += (dim == 1 ? 0 : idx) * mul;
      mul *= dim;
    }
    return off;
  };
  const int64_t ma = d.m * d.k, mb = d.k * d.n, mo = d.m * d.n;
  for (int64_t bi = 0; bi < batches; ++bi) {
    int64_t oa = offset(ba, bi) * ma, ob = offset(bb, bi) * mb;
    if (c.in[0]->dtype == DType::kFloat32)
      Sgemm(c.backend, false, false, d.m, d.n, d.k, 1.0f, c.in[0]->as<float>() + oa, d.k,
            c.in[1]->as<float>() + ob, d.n, 0.0f, c.out[0]->as<float>() + bi * mo, d.n);
    else
      Dgemm(false, false, d.m, d.n, d.k, 1.0, c.in[0]->as<double>() + oa, d.k,
            c.in[1]->as<double>() + ob, d.n, 0.0, c.out[0]->as<double>() + bi * mo, d.n);
  }
  return Status::Ok();
}

}  // namespace

const OpKernel kGemm{"Gemm", CheckGemm, InferGemm, RunGemm};
const OpKernel kMatMul{"MatMul", CheckMatMul, InferMatMul, RunMatMul};

}  // namespace edgeloop::runtime::kernels
