// Element-wise math beyond unary.cpp's activations: HardSigmoid, HardSwish, LeakyRelu, Elu,
// Selu, Softplus, Exp, Log, Sqrt, Erf, Floor, Ceil, Reciprocal (floating point); Neg and Abs
// (every numeric type; Neg only signed ones); PRelu (a slope that broadcasts to the input) and
// Pow (numpy broadcasting; from opset 12 the exponent may have another numeric type, the
// result has the base's type).
//
// One loop serves both backends: each op is a plain function of one element that the compiler
// vectorises where it can, so there is no separate fast path to keep in step.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "runtime/kernels/broadcast.hpp"
#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {
namespace {

enum class Fn {
  kHardSigmoid,
  kHardSwish,
  kLeakyRelu,
  kElu,
  kSelu,
  kSoftplus,
  kExp,
  kLog,
  kSqrt,
  kErf,
  kFloor,
  kCeil,
  kReciprocal,
};

// The attributes an op reads, decoded once per Run.
struct FnParams {
  double alpha = 0, beta = 0, gamma = 0;
};

FnParams ParamsOf(Fn fn, const Node& n) {
  FnParams p;
  switch (fn) {
    case Fn::kHardSigmoid:
      p.alpha = n.Float("alpha", 0.2f);
      p.beta = n.Float("beta", 0.5f);
      break;
    case Fn::kLeakyRelu:
      p.alpha = n.Float("alpha", 0.01f);
      break;
    case Fn::kElu:
      p.alpha = n.Float("alpha", 1.0f);
      break;
    case Fn::kSelu:
      p.alpha = n.Float("alpha", 1.67326319217681884765625f);
      p.gamma = n.Float("gamma", 1.05070102214813232421875f);
      break;
    default:
      break;
  }
  return p;
}

template <Fn kFn, typename T>
inline T Apply(T x, T alpha, T beta, T gamma) {
  if constexpr (kFn == Fn::kHardSigmoid) return std::max(T(0), std::min(T(1), alpha * x + beta));
  if constexpr (kFn == Fn::kHardSwish) return x * std::max(T(0), std::min(T(1), x / T(6) + T(0.5)));
  if constexpr (kFn == Fn::kLeakyRelu) return x < T(0) ? alpha * x : x;
  if constexpr (kFn == Fn::kElu) return x < T(0) ? alpha * (std::exp(x) - T(1)) : x;
  if constexpr (kFn == Fn::kSelu)
    return x <= T(0) ? gamma * alpha * (std::exp(x) - T(1)) : gamma * x;
  // log(1 + e^x) without overflow for large x.
  if constexpr (kFn == Fn::kSoftplus)
    return x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
  if constexpr (kFn == Fn::kExp) return std::exp(x);
  if constexpr (kFn == Fn::kLog) return std::log(x);
  if constexpr (kFn == Fn::kSqrt) return std::sqrt(x);
  if constexpr (kFn == Fn::kErf) return std::erf(x);
  if constexpr (kFn == Fn::kFloor) return std::floor(x);
  if constexpr (kFn == Fn::kCeil) return std::ceil(x);
  if constexpr (kFn == Fn::kReciprocal) return T(1) / x;
}

template <Fn kFn, typename T>
void MapTyped(const Tensor& in, Tensor& out, const FnParams& p) {
  const T* x = in.as<T>();
  T* y = out.as<T>();
  const T alpha = static_cast<T>(p.alpha), beta = static_cast<T>(p.beta),
          gamma = static_cast<T>(p.gamma);
  for (int64_t i = 0, n = in.size(); i < n; ++i) y[i] = Apply<kFn>(x[i], alpha, beta, gamma);
}

Status CheckOne(const Node& n) {
  return CheckArity(n, 1, 1);
}

Status InferFloat(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32, DType::kFloat64}));
  c.out = {*c.in[0]};
  return Status::Ok();
}

template <Fn kFn>
Status RunFloat(RunContext& c) {
  const FnParams p = ParamsOf(kFn, c.node);
  if (c.in[0]->dtype == DType::kFloat32)
    MapTyped<kFn, float>(*c.in[0], *c.out[0], p);
  else
    MapTyped<kFn, double>(*c.in[0], *c.out[0], p);
  return Status::Ok();
}

// --- Neg, Abs ----------------------------------------------------------------------------
Status InferSigned(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(
      c, 0, {DType::kFloat32, DType::kFloat64, DType::kInt8, DType::kInt32, DType::kInt64}));
  c.out = {*c.in[0]};
  return Status::Ok();
}

Status InferNumeric(InferContext& c) {
  if (!DispatchNumeric(c.in[0]->dtype, [](auto) {}))
    return NodeError(c.node, Errc::kUnsupported, std::string("type ") + DTypeName(c.in[0]->dtype));
  c.out = {*c.in[0]};
  return Status::Ok();
}

// Negation and absolute value wrap for the most negative integer, as two's complement does
// (numpy gives the same), instead of overflowing.
template <typename T>
T WrapNeg(T v) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(0u - static_cast<std::make_unsigned_t<T>>(v));
  else
    return -v;
}

Status RunNeg(RunContext& c) {
  DispatchNumeric(c.in[0]->dtype, [&](auto t) {
    using T = decltype(t);
    const T* x = c.in[0]->as<T>();
    T* y = c.out[0]->as<T>();
    for (int64_t i = 0, n = c.in[0]->size(); i < n; ++i) y[i] = WrapNeg(x[i]);
  });
  return Status::Ok();
}

Status RunAbs(RunContext& c) {
  DispatchNumeric(c.in[0]->dtype, [&](auto t) {
    using T = decltype(t);
    const T* x = c.in[0]->as<T>();
    T* y = c.out[0]->as<T>();
    for (int64_t i = 0, n = c.in[0]->size(); i < n; ++i) {
      if constexpr (std::is_unsigned_v<T>)
        y[i] = x[i];
      else if constexpr (std::is_integral_v<T>)
        y[i] = x[i] < T(0) ? WrapNeg(x[i]) : x[i];
      else
        y[i] = std::fabs(x[i]);
    }
  });
  return Status::Ok();
}

// --- PRelu -------------------------------------------------------------------------------
Status CheckTwo(const Node& n) {
  return CheckArity(n, 2, 2);
}

// Opset 6 and older broadcast a 1-D slope of C values along axis 1 (one slope per channel),
// as PyTorch's PReLU(num_parameters = C) exports it; numpy broadcasting would refuse it.
bool PerChannelSlope(const Shape& x, const Shape& slope) {
  Shape out;
  return x.size() >= 2 && slope.size() == 1 && slope[0] == x[1] && slope[0] != 1 &&
         !BroadcastShapes(x, slope, &out);
}

Status InferPRelu(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32, DType::kFloat64}));
  if (c.in[1]->dtype != c.in[0]->dtype)
    return c.Fail(std::string("slope of type ") + DTypeName(c.in[1]->dtype) +
                  " for input of type " + DTypeName(c.in[0]->dtype));
  Shape out = c.in[0]->shape;
  if (!PerChannelSlope(c.in[0]->shape, c.in[1]->shape) &&
      (!BroadcastShapes(c.in[0]->shape, c.in[1]->shape, &out) || out != c.in[0]->shape))
    return c.Fail("slope of shape " + ShapeString(c.in[1]->shape) +
                  " does not broadcast to the input's " + ShapeString(c.in[0]->shape));
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, out));
  c.out = {*c.in[0]};
  return Status::Ok();
}

template <typename T>
void PReluTyped(const Tensor& x, const Tensor& slope, Tensor& y) {
  const T* px = x.as<T>();
  const T* ps = slope.as<T>();
  T* py = y.as<T>();
  if (slope.size() == 1) {
    const T s = ps[0];
    for (int64_t i = 0, n = x.size(); i < n; ++i) py[i] = px[i] < T(0) ? s * px[i] : px[i];
    return;
  }
  if (PerChannelSlope(x.shape, slope.shape)) {
    const int64_t ch = x.shape[1], inner = x.shape[0] * ch == 0 ? 0 : x.size() / (x.shape[0] * ch);
    for (int64_t i = 0, n = x.size(); i < n; ++i) {
      const T v = px[i];
      py[i] = v < T(0) ? ps[(i / inner) % ch] * v : v;
    }
    return;
  }
  ForEachBroadcast<2>(y.shape, {&x.shape, &slope.shape}, [&](int64_t i, const auto& off) {
    const T v = px[off[0]];
    py[i] = v < T(0) ? ps[off[1]] * v : v;
  });
}

Status RunPRelu(RunContext& c) {
  if (c.in[0]->dtype == DType::kFloat32)
    PReluTyped<float>(*c.in[0], *c.in[1], *c.out[0]);
  else
    PReluTyped<double>(*c.in[0], *c.in[1], *c.out[0]);
  return Status::Ok();
}

// --- Pow ---------------------------------------------------------------------------------
Status InferPow(InferContext& c) {
  const DType base = c.in[0]->dtype, expo = c.in[1]->dtype;
  if (!DispatchNumeric(base, [](auto) {}) || !DispatchNumeric(expo, [](auto) {}))
    return NodeError(c.node, Errc::kUnsupported,
                     std::string("types ") + DTypeName(base) + " and " + DTypeName(expo));
  if (base != expo && c.node.opset < 12)
    return c.Fail(std::string("base of type ") + DTypeName(base) + " and exponent of type " +
                  DTypeName(expo) + ": before opset 12 they must be of one type");
  Shape out;
  if (!BroadcastShapes(c.in[0]->shape, c.in[1]->shape, &out))
    return c.Fail("shapes " + ShapeString(c.in[0]->shape) + " and " + ShapeString(c.in[1]->shape) +
                  " do not broadcast");
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, out));
  c.out = {TensorInfo{base, out}};
  return Status::Ok();
}

// The power in the base's type. Floating-point bases use std::pow in their own precision;
// integer bases compute in double and convert back, saturating where the result does not fit
// (C++ leaves that conversion undefined).
template <typename T, typename E>
T PowValue(T x, E y) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<E, float>) {
    return std::pow(x, y);
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(y)));
  } else {
    const double r = std::pow(static_cast<double>(x), static_cast<double>(y));
    if (std::isnan(r)) return T(0);
    if (!(r < static_cast<double>(std::numeric_limits<T>::max()) + 1.0))
      return std::numeric_limits<T>::max();
    if (!(r > static_cast<double>(std::numeric_limits<T>::lowest()) - 1.0))
      return std::numeric_limits<T>::lowest();
    return static_cast<T>(r);
  }
}

Status RunPow(RunContext& c) {
  const Tensor& x = *c.in[0];
  const Tensor& y = *c.in[1];
  Tensor& z = *c.out[0];
  DispatchNumeric(x.dtype, [&](auto tx) {
    DispatchNumeric(y.dtype, [&](auto ty) {
      using T = decltype(tx);
      using E = decltype(ty);
      const T* px = x.as<T>();
      const E* py = y.as<E>();
      T* pz = z.as<T>();
      if (y.size() == 1 && x.size() == z.size()) {
        const E e = py[0];
        for (int64_t i = 0, n = z.size(); i < n; ++i) pz[i] = PowValue(px[i], e);
        return;
      }
      ForEachBroadcast<2>(z.shape, {&x.shape, &y.shape}, [&](int64_t i, const auto& off) {
        pz[i] = PowValue(px[off[0]], py[off[1]]);
      });
    });
  });
  return Status::Ok();
}

}  // namespace

const OpKernel kHardSigmoid{"HardSigmoid", CheckOne, InferFloat, RunFloat<Fn::kHardSigmoid>};
const OpKernel kHardSwish{"HardSwish", CheckOne, InferFloat, RunFloat<Fn::kHardSwish>};
const OpKernel kLeakyRelu{"LeakyRelu", CheckOne, InferFloat, RunFloat<Fn::kLeakyRelu>};
const OpKernel kElu{"Elu", CheckOne, InferFloat, RunFloat<Fn::kElu>};
const OpKernel kSelu{"Selu", CheckOne, InferFloat, RunFloat<Fn::kSelu>};
const OpKernel kSoftplus{"Softplus", CheckOne, InferFloat, RunFloat<Fn::kSoftplus>};
const OpKernel kExp{"Exp", CheckOne, InferFloat, RunFloat<Fn::kExp>};
const OpKernel kLog{"Log", CheckOne, InferFloat, RunFloat<Fn::kLog>};
const OpKernel kSqrt{"Sqrt", CheckOne, InferFloat, RunFloat<Fn::kSqrt>};
const OpKernel kErf{"Erf", CheckOne, InferFloat, RunFloat<Fn::kErf>};
const OpKernel kFloor{"Floor", CheckOne, InferFloat, RunFloat<Fn::kFloor>};
const OpKernel kCeil{"Ceil", CheckOne, InferFloat, RunFloat<Fn::kCeil>};
const OpKernel kReciprocal{"Reciprocal", CheckOne, InferFloat, RunFloat<Fn::kReciprocal>};
const OpKernel kNeg{"Neg", CheckOne, InferSigned, RunNeg};
const OpKernel kAbs{"Abs", CheckOne, InferNumeric, RunAbs};
const OpKernel kPRelu{"PRelu", CheckTwo, InferPRelu, RunPRelu};
const OpKernel kPow{"Pow", CheckTwo, InferPow, RunPow};

}  // namespace edgeloop::runtime::kernels
