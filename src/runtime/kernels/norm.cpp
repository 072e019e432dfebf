// Normalisation layers besides BatchNormalization:
//   InstanceNormalization  y = scale[c] * (x - mean) / sqrt(var + epsilon) + B[c], the
//                          statistics of each (n, c) plane;
//   LayerNormalization     the same over the axes from `axis` on, with Scale and B of those
//                          axes' shape (broadcast); optional outputs Mean and InvStdDev,
//                          shaped like X with 1 for the normalised axes;
//   LRN                    y = x / (bias + alpha / size * sum of x^2 over `size` channels
//                          around c)^beta.
// float32 and float64; statistics accumulate in double. One implementation serves both
// backends: these layers are memory-bound and rare in the models that matter for latency.
#include <algorithm>
#include <cmath>

#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {
namespace {

template <typename F>
Status ForFloat(DType t, F&& f) {
  if (t == DType::kFloat32) return f(float{});
  if (t == DType::kFloat64) return f(double{});
  return Status(Error(Errc::kUnsupported, "normalisation needs float32 or float64 data"));
}

// Mean and (population) variance of n values, accumulated in double.
template <typename T>
void Moments(const T* p, int64_t n, double* mean, double* var) {
  double s = 0, ss = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(p[i]);
  *mean = n > 0 ? s / static_cast<double>(n) : 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(p[i]) - *mean;
    ss += d * d;
  }
  *var = n > 0 ? ss / static_cast<double>(n) : 0;
}

// ---- InstanceNormalization

Status CheckInstanceNorm(const Node& n) {
  return CheckArity(n, 3, 3);
}

Status InferInstanceNorm(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32, DType::kFloat64}));
  const Shape& x = c.in[0]->shape;
  if (x.size() < 3) return c.Fail("input must be [N, C, D1, ...]");
  for (size_t i = 1; i < 3; ++i)
    if (c.in[i]->dtype != c.in[0]->dtype || c.in[i]->shape != Shape{x[1]})
      return c.Fail("scale and B must have shape [" + std::to_string(x[1]) + "] and X's type");
  c.out = {*c.in[0]};
  return Status::Ok();
}

Status RunInstanceNorm(RunContext& c) {
  return ForFloat(c.in[0]->dtype, [&](auto zero) -> Status {
    using T = decltype(zero);
    const Tensor& x = *c.in[0];
    const int64_t n = x.shape[0], ch = x.shape[1];
    const int64_t inner = n * ch == 0 ? 0 : x.size() / (n * ch);
    const double eps = c.node.Float("epsilon", 1e-5f);
    const T *scale = c.in[1]->as<T>(), *bias = c.in[2]->as<T>();
    for (int64_t p = 0; p < n * ch; ++p) {
      const T* xp = x.as<T>() + p * inner;
      T* yp = c.out[0]->as<T>() + p * inner;
      double mu = 0, var = 0;
      Moments(xp, inner, &mu, &var);
      const double a = static_cast<double>(scale[p % ch]) / std::sqrt(var + eps);
      const double b = static_cast<double>(bias[p % ch]);
      for (int64_t i = 0; i < inner; ++i)
        yp[i] = static_cast<T>(a * (static_cast<double>(xp[i]) - mu) + b);
    }
    return Status::Ok();
  });
}

// ---- LayerNormalization

Status CheckLayerNorm(const Node& n) {
  EDGELOOP_RETURN_IF_ERROR(CheckArity(n, 2, 3));
  if (n.Int("stash_type", 1) != 1)
    return NodeError(n, Errc::kUnsupported, "stash_type other than 1 (float) is not supported");
  return Status::Ok();
}

// The first normalised axis, or -1 when out of range.
int64_t LayerAxis(const Node& n, int64_t rank) {
  int64_t axis = 0;
  return NormalizeAxis(n.Int("axis", -1), rank, &axis) ? axis : -1;
}

// Whether `s` broadcasts (numpy rules) onto the trailing dimensions of x from `axis` on.
bool BroadcastsOnto(const Shape& s, const Shape& x, int64_t axis) {
  if (s.size() > x.size() - static_cast<size_t>(axis)) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const int64_t d = s[s.size() - 1 - i], xd = x[x.size() - 1 - i];
    if (d != 1 && d != xd) return false;
  }
  return true;
}

Status InferLayerNorm(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32, DType::kFloat64}));
  const Shape& x = c.in[0]->shape;
  const int64_t axis = LayerAxis(c.node, static_cast<int64_t>(x.size()));
  if (axis < 0) return c.Fail("axis is outside the input's rank");
  for (size_t i = 1; i < c.in.size(); ++i) {
    if (c.in[i] == nullptr) continue;
    if (c.in[i]->dtype != c.in[0]->dtype || !BroadcastsOnto(c.in[i]->shape, x, axis))
      return c.Fail("Scale and B must broadcast onto the normalised axes");
  }
  c.out = {*c.in[0]};
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis); d < x.size(); ++d) inner *= x[d];
  c.scratch_bytes = 2 * static_cast<size_t>(inner) * sizeof(double);
  Shape stats = x;
  for (size_t d = static_cast<size_t>(axis); d < stats.size(); ++d) stats[d] = 1;
  for (size_t o = 1; o < c.node.outputs.size(); ++o)
    c.out.push_back(TensorInfo{DType::kFloat32, stats});
  return Status::Ok();
}

// Element i of a tensor of shape s broadcast onto the trailing `inner` elements of x.
template <typename T>
void Expand(const Tensor& t, const Shape& x, int64_t axis, double* out) {
  const size_t rank = x.size();
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis); d < rank; ++d) inner *= x[d];
  const std::vector<int64_t> st = Strides(t.shape);
  for (int64_t i = 0; i < inner; ++i) {
    int64_t rem = i, off = 0;
    for (size_t d = rank; d-- > static_cast<size_t>(axis);) {
      const int64_t idx = rem % x[d];
      rem /= x[d];
      const size_t k = rank - 1 - d;  // from the last axis
      if (k < t.shape.size()) {
        const size_t td = t.shape.size() - 1 - k;
        if (t.shape[td] != 1) off += idx * st[td];
      }
    }
    out[i] = static_cast<double>(t.as<T>()[off]);
  }
}

Status RunLayerNorm(RunContext& c) {
  return ForFloat(c.in[0]->dtype, [&](auto zero) -> Status {
    using T = decltype(zero);
    const Tensor& x = *c.in[0];
    const int64_t axis = LayerAxis(c.node, static_cast<int64_t>(x.shape.size()));
    int64_t inner = 1;
    for (size_t d = static_cast<size_t>(axis); d < x.shape.size(); ++d) inner *= x.shape[d];
    const int64_t outer = inner == 0 ? 0 : x.size() / inner;
    const double eps = c.node.Float("epsilon", 1e-5f);
    // Scale and B broadcast onto the normalised axes, in the scratch Infer asked for.
    double* scale = static_cast<double*>(c.scratch);
    double* bias = scale + inner;
    Expand<T>(*c.in[1], x.shape, axis, scale);
    if (c.in.size() > 2 && c.in[2] != nullptr)
      Expand<T>(*c.in[2], x.shape, axis, bias);
    else
      std::fill(bias, bias + inner, 0.0);
    for (int64_t o = 0; o < outer; ++o) {
      const T* xp = x.as<T>() + o * inner;
      T* yp = c.out[0]->as<T>() + o * inner;
      double mu = 0, var = 0;
      Moments(xp, inner, &mu, &var);
      const double inv = 1.0 / std::sqrt(var + eps);
      for (int64_t i = 0; i < inner; ++i) {
        yp[i] = static_cast<T>((static_cast<double>(xp[i]) - mu) * inv * scale[i] + bias[i]);
      }
      if (c.out.size() > 1 && c.out[1] != nullptr)
        c.out[1]->as<float>()[o] = static_cast<float>(mu);
      if (c.out.size() > 2 && c.out[2] != nullptr)
        c.out[2]->as<float>()[o] = static_cast<float>(inv);
    }
    return Status::Ok();
  });
}

// ---- LRN

Status CheckLrn(const Node& n) {
  EDGELOOP_RETURN_IF_ERROR(CheckArity(n, 1, 1));
  if (n.Int("size", 0) < 1) return NodeError(n, Errc::kFormat, "size must be at least 1");
  return Status::Ok();
}

Status InferLrn(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32, DType::kFloat64}));
  if (c.in[0]->shape.size() < 3) return c.Fail("input must be [N, C, D1, ...]");
  c.out = {*c.in[0]};
  return Status::Ok();
}

Status RunLrn(RunContext& c) {
  return ForFloat(c.in[0]->dtype, [&](auto zero) -> Status {
    using T = decltype(zero);
    const Tensor& x = *c.in[0];
    const int64_t n = x.shape[0], ch = x.shape[1];
    const int64_t inner = n * ch == 0 ? 0 : x.size() / (n * ch);
    const int64_t size = c.node.Int("size", 1);
    const double alpha = c.node.Float("alpha", 1e-4f), beta = c.node.Float("beta", 0.75f),
                 bias = c.node.Float("bias", 1.0f);
    const int64_t before = (size - 1) / 2, after = size - 1 - before;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t ci = 0; ci < ch; ++ci)
        for (int64_t i = 0; i < inner; ++i) {
          double sq = 0;
          for (int64_t k = std::max<int64_t>(0, ci - before); k <= std::min(ch - 1, ci + after);
               ++k) {
            const double v = static_cast<double>(x.as<T>()[(b * ch + k) * inner + i]);
            sq += v * v;
          }
          const int64_t at = (b * ch + ci) * inner + i;
          c.out[0]->as<T>()[at] =
              static_cast<T>(static_cast<double>(x.as<T>()[at]) /
                             std::pow(bias + alpha / static_cast<double>(size) * sq, beta));
        }
    return Status::Ok();
  });
}

}  // namespace

const OpKernel kInstanceNormalization{"InstanceNormalization", CheckInstanceNorm, InferInstanceNorm,
                                      RunInstanceNorm};
const OpKernel kLayerNormalization{"LayerNormalization", CheckLayerNorm, InferLayerNorm,
                                   RunLayerNorm};
const OpKernel kLRN{"LRN", CheckLrn, InferLrn, RunLrn};

}  // namespace edgeloop::runtime::kernels
