// Element-wise ops with one data input: Relu, Sigmoid, Tanh, Clip, Identity, and Dropout in
// inference mode (output = input, mask all true).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {
namespace {

Status CheckOne(const Node& n) {
  return CheckArity(n, 1, 1);
}

Status InferSame(InferContext& c) {
  c.out = {*c.in[0]};
  return Status::Ok();
}

Status InferFloat(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32, DType::kFloat64}));
  return InferSame(c);
}

Status InferNumeric(InferContext& c) {
  if (!DispatchNumeric(c.in[0]->dtype, [](auto) {}))
    return NodeError(c.node, Errc::kUnsupported, std::string("type ") + DTypeName(c.in[0]->dtype));
  return InferSame(c);
}

template <typename F>
Status MapFloat(RunContext& c, F f) {
  const Tensor& x = *c.in[0];
  Tensor& y = *c.out[0];
  if (x.dtype == DType::kFloat32) {
    const float* px = x.as<float>();
    float* py = y.as<float>();
    for (int64_t i = 0, n = x.size(); i < n; ++i) py[i] = static_cast<float>(f(px[i]));
  } else {
    const double* px = x.as<double>();
    double* py = y.as<double>();
    for (int64_t i = 0, n = x.size(); i < n; ++i) py[i] = f(px[i]);
  }
  return Status::Ok();
}

Status RunRelu(RunContext& c) {
  Status st;
  DispatchNumeric(c.in[0]->dtype, [&](auto t) {
    using T = decltype(t);
    const T* px = c.in[0]->as<T>();
    T* py = c.out[0]->as<T>();
    for (int64_t i = 0, n = c.in[0]->size(); i < n; ++i) py[i] = px[i] > T(0) ? px[i] : T(0);
  });
  return st;
}

Status RunSigmoid(RunContext& c) {
  return MapFloat(c, [](auto v) {
    using T = decltype(v);
    return v >= 0 ? T(1) / (T(1) + std::exp(-v)) : std::exp(v) / (T(1) + std::exp(v));
  });
}

Status RunTanh(RunContext& c) {
  return MapFloat(c, [](auto v) { return std::tanh(v); });
}

// --- Dropout ---------------------------------------------------------------------------
Status CheckDropout(const Node& n) {
  EDGELOOP_RETURN_IF_ERROR(CheckArity(n, 1, 3, 1));
  if (n.opset < 7 && n.Has("is_test") && n.Int("is_test", 0) == 0)
    return NodeError(n, Errc::kUnsupported, "training-mode dropout (is_test = 0) is not supported");
  return Status::Ok();
}

// Training-mode dropout is random; it is computed only when its ratio is 0 (the identity).
// `in` holds the data, ratio and training_mode tensors (nullptr when omitted).
bool RandomDropout(const std::vector<const Tensor*>& in) {
  if (in.size() < 3 || !in[2] || !in[2]->as<bool>()[0]) return false;
  if (!in[1]) return true;  // the default ratio is 0.5
  const Tensor* r = in[1];
  return r->dtype == DType::kFloat64 ? r->as<double>()[0] != 0.0 : r->as<float>()[0] != 0.0f;
}

Status InferDropout(InferContext& c) {
  const bool known = c.in.size() > 2 && c.values[2] && (!c.in[1] || c.values[1]);
  if (known && RandomDropout(c.values))
    return NodeError(c.node, Errc::kUnsupported,
                     "training-mode dropout with a non-zero ratio is random and not supported");
  c.out = {*c.in[0]};
  if (c.node.outputs.size() > 1)
    c.out.push_back(TensorInfo{c.node.opset >= 10 ? DType::kBool : c.in[0]->dtype, c.in[0]->shape});
  return Status::Ok();
}

Status RunDropout(RunContext& c) {
  if (RandomDropout(c.in))
    return NodeError(c.node, Errc::kUnsupported,
                     "training-mode dropout with a non-zero ratio is random and not supported");
  EDGELOOP_RETURN_IF_ERROR(CopyInputToOutput(c));
  if (c.out.size() > 1 && c.out[1]) {
    Tensor& m = *c.out[1];
    if (m.dtype == DType::kBool) {
      std::memset(m.data, 1, m.bytes());
    } else {
      DispatchNumeric(m.dtype, [&](auto t) {
        using T = decltype(t);
        std::fill(m.as<T>(), m.as<T>() + m.size(), T(1));
      });
    }
  }
  return Status::Ok();
}

// --- Clip ------------------------------------------------------------------------------
Status CheckClip(const Node& n) {
  return CheckArity(n, 1, 3);
}

Status InferClip(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(InferNumeric(c));
  for (size_t i = 1; i < c.in.size(); ++i)
    if (c.in[i] && (c.in[i]->dtype != c.in[0]->dtype || NumElements(c.in[i]->shape) != 1))
      return c.Fail("min and max must be scalars of the input's type");
  return Status::Ok();
}

Status RunClip(RunContext& c) {
  DispatchNumeric(c.in[0]->dtype, [&](auto t) {
    using T = decltype(t);
    T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
    if (c.node.opset < 11) {
      lo = static_cast<T>(c.node.Float("min", -std::numeric_limits<float>::max()));
      hi = static_cast<T>(c.node.Float("max", std::numeric_limits<float>::max()));
      if constexpr (std::is_floating_point_v<T>) {
        if (!c.node.Has("min")) lo = -std::numeric_limits<T>::infinity();
        if (!c.node.Has("max")) hi = std::numeric_limits<T>::infinity();
      }
    } else {
      if (c.in.size() > 1 && c.in[1]) lo = c.in[1]->as<T>()[0];
      if (c.in.size() > 2 && c.in[2]) hi = c.in[2]->as<T>()[0];
    }
    const T* px = c.in[0]->as<T>();
    T* py = c.out[0]->as<T>();
    for (int64_t i = 0, n = c.in[0]->size(); i < n; ++i) py[i] = std::min(std::max(px[i], lo), hi);
  });
  return Status::Ok();
}

}  // namespace

const OpKernel kRelu{"Relu", CheckOne, InferNumeric, RunRelu};
const OpKernel kSigmoid{"Sigmoid", CheckOne, InferFloat, RunSigmoid};
const OpKernel kTanh{"Tanh", CheckOne, InferFloat, RunTanh};
const OpKernel kIdentity{"Identity", CheckOne, InferSame, CopyInputToOutput};
const OpKernel kDropout{"Dropout", CheckDropout, InferDropout, RunDropout};
const OpKernel kClip{"Clip", CheckClip, InferClip, RunClip};

}  // namespace edgeloop::runtime::kernels
