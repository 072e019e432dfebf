// Softmax. Before opset 13 the input is viewed as a 2-D matrix split at `axis` (default 1)
// and normalised per row; from opset 13 it is normalised along `axis` (default -1).
#include <algorithm>
#include <cmath>

#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {
namespace {

Status CheckSoftmax(const Node& n) {
  return CheckArity(n, 1, 1);
}

Status InferSoftmax(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32, DType::kFloat64}));
  int64_t axis;
  const int64_t r = static_cast<int64_t>(c.in[0]->shape.size());
  if (!NormalizeAxis(c.node.Int("axis", c.node.opset >= 13 ? -1 : 1), std::max<int64_t>(r, 1),
                     &axis))
    return c.Fail("axis is out of range");
  c.out = {*c.in[0]};
  return Status::Ok();
}

template <typename T>
void SoftmaxRows(const T* x, T* y, int64_t outer, int64_t n, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* px = x + o * n * inner + i;
      T* py = y + o * n * inner + i;
      T mx = px[0];
      for (int64_t k = 1; k < n; ++k) mx = std::max(mx, px[k * inner]);
      T sum = 0;
      for (int64_t k = 0; k < n; ++k) {
        py[k * inner] = std::exp(px[k * inner] - mx);
        sum += py[k * inner];
      }
      for (int64_t k = 0; k < n; ++k) py[k * inner] /= sum;
    }
  }
}

Status RunSoftmax(RunContext& c) {
  const Tensor& x = *c.in[0];
  const Shape& s = x.shape;
  const int64_t r = static_cast<int64_t>(s.size());
  int64_t axis;
  NormalizeAxis(c.node.Int("axis", c.node.opset >= 13 ? -1 : 1), std::max<int64_t>(r, 1), &axis);
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t d = 0; d < r; ++d) {
    int64_t v = s[static_cast<size_t>(d)];
    if (d < axis)
      outer *= v;
    else if (c.node.opset < 13 || d == axis)
      n *= v;
    else
      inner *= v;
  }
  // An empty tensor (a zero among the dimensions) has nothing to normalise; the rows below
  // read their first element, so they must not run.
  if (outer == 0 || n == 0 || inner == 0) return Status::Ok();
  if (x.dtype == DType::kFloat32)
    SoftmaxRows(x.as<float>(), c.out[0]->as<float>(), outer, n, inner);
  else
    SoftmaxRows(x.as<double>(), c.out[0]->as<double>(), outer, n, inner);
  return Status::Ok();
}

}  // namespace

const OpKernel kSoftmax{"Softmax", CheckSoftmax, InferSoftmax, RunSoftmax};

}  // namespace edgeloop::runtime::kernels
