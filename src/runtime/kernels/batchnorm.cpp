// BatchNormalization: y = scale * (x - mean) / sqrt(var + epsilon) + bias per channel (axis 1).
// Inference uses the given mean and variance. Training mode (opset 14+, training_mode = 1)
// normalises with the batch's own statistics and also outputs the updated running mean and
// variance (running * momentum + batch * (1 - momentum)), as ONNX defines it.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {
namespace {

Status CheckBatchNorm(const Node& n) {
  EDGELOOP_RETURN_IF_ERROR(CheckArity(n, 5, 5));
  if (n.opset < 7 && n.Has("is_test") && n.Int("is_test", 0) == 0)
    return NodeError(n, Errc::kUnsupported, "training-mode batch normalization is not supported");
  if (n.opset < 9 && n.Int("spatial", 1) == 0)
    return NodeError(n, Errc::kUnsupported, "non-spatial batch normalization (spatial = 0)");
  if (n.opset >= 14 && n.Int("training_mode", 0) == 0 && n.outputs.size() > 1)
    return NodeError(n, Errc::kFormat, "running statistics outputs need training_mode = 1");
  return Status::Ok();
}

Status InferBatchNorm(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32, DType::kFloat64}));
  const Shape& x = c.in[0]->shape;
  if (x.size() < 2) return c.Fail("input must be [N, C, ...]");
  for (size_t i = 1; i < 5; ++i)
    if (c.in[i]->dtype != c.in[0]->dtype || c.in[i]->shape != Shape{x[1]})
      return c.Fail("scale, bias, mean and var must have shape [" + std::to_string(x[1]) + "]");
  c.out = {*c.in[0]};
  // Older opsets list mean/var/saved outputs; in inference they are the inputs passed through.
  for (size_t i = 1; i < c.node.outputs.size(); ++i)
    c.out.push_back(*c.in[std::min<size_t>(i + 2, 4)]);
  return Status::Ok();
}

template <typename T>
void Normalize(RunContext& c) {
  const Tensor& x = *c.in[0];
  const int64_t n = x.shape[0], ch = x.shape[1];
  const int64_t inner = (n * ch) == 0 ? 0 : x.size() / (n * ch);
  const double eps = c.node.Float("epsilon", 1e-5f);
  const T *scale = c.in[1]->as<T>(), *bias = c.in[2]->as<T>(), *mean = c.in[3]->as<T>(),
          *var = c.in[4]->as<T>();
  const bool training = c.node.opset >= 14 && c.node.Int("training_mode", 0) != 0;
  for (int64_t ci = 0; ci < ch; ++ci) {
    double mu = static_cast<double>(mean[ci]), sigma2 = static_cast<double>(var[ci]);
    if (training) {
      double s = 0, ss = 0;
      const double count = static_cast<double>(n * inner);
      for (int64_t b0 = 0; b0 < n; ++b0)
        for (int64_t i = 0; i < inner; ++i)
          s += static_cast<double>(x.as<T>()[(b0 * ch + ci) * inner + i]);
      mu = count > 0 ? s / count : 0;
      for (int64_t b0 = 0; b0 < n; ++b0)
        for (int64_t i = 0; i < inner; ++i) {
          double d = static_cast<double>(x.as<T>()[(b0 * ch + ci) * inner + i]) - mu;
          ss += d * d;
        }
      sigma2 = count > 0 ? ss / count : 0;
      const double momentum = c.node.Float("momentum", 0.9f);
      if (c.out.size() > 1 && c.out[1])
        c.out[1]->as<T>()[ci] =
            static_cast<T>(static_cast<double>(mean[ci]) * momentum + mu * (1 - momentum));
      if (c.out.size() > 2 && c.out[2])
        c.out[2]->as<T>()[ci] =
            static_cast<T>(static_cast<double>(var[ci]) * momentum + sigma2 * (1 - momentum));
    }
    const double a = static_cast<double>(scale[ci]) / std::sqrt(sigma2 + eps);
    const double b = static_cast<double>(bias[ci]) - a * mu;
    for (int64_t b0 = 0; b0 < n; ++b0) {
      const T* xp = x.as<T>() + (b0 * ch + ci) * inner;
      T* yp = c.out[0]->as<T>() + (b0 * ch + ci) * inner;
      for (int64_t i = 0; i < inner; ++i)
        yp[i] = static_cast<T>(a * static_cast<double>(xp[i]) + b);
    }
  }
  for (size_t i = 1; i < c.out.size() && !training; ++i)
    if (c.out[i])
      std::memcpy(c.out[i]->data, c.in[std::min<size_t>(i + 2, 4)]->data, c.out[i]->bytes());
}

Status RunBatchNorm(RunContext& c) {
  if (c.in[0]->dtype == DType::kFloat32)
    Normalize<float>(c);
  else
    Normalize<double>(c);
  return Status::Ok();
}

}  // namespace

const OpKernel kBatchNormalization{"BatchNormalization", CheckBatchNorm, InferBatchNorm,
                                   RunBatchNorm};

}  // namespace edgeloop::runtime::kernels
