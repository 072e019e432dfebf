// Comparison and selection: Equal, Greater, Less (numpy broadcasting, bool output), Where
// (three-way broadcasting) and Cast between the runtime's types.
//
// Bool tensors are stored one byte per element; any non-zero byte reads as true, and the
// kernels write 0 or 1. Cast from floating point to an integer type truncates toward zero,
// maps NaN to 0 and saturates values out of the target's range (C++ leaves those undefined,
// ONNX leaves them unspecified).
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>

#include "runtime/kernels/broadcast.hpp"
#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {
namespace {

// Calls f with a value of the storage type of any runtime dtype (uint8_t for bool).
template <typename F>
bool DispatchStorage(DType t, F&& f) {
  if (t == DType::kBool) {
    f(uint8_t{});
    return true;
  }
  return DispatchNumeric(t, f);
}

enum class Cmp { kEqual, kGreater, kLess };

template <Cmp kCmp>
Status CheckCompare(const Node& n) {
  EDGELOOP_RETURN_IF_ERROR(CheckArity(n, 2, 2));
  if (n.opset < 7 && n.Int("broadcast", 0) != 0 && n.Has("axis"))
    return NodeError(n, Errc::kUnsupported, "legacy broadcasting along an axis is not supported");
  return Status::Ok();
}

template <Cmp kCmp>
Status InferCompare(InferContext& c) {
  const DType a = c.in[0]->dtype, b = c.in[1]->dtype;
  if (a != b)
    return c.Fail(std::string("input types differ: ") + DTypeName(a) + " and " + DTypeName(b));
  const bool ok =
      kCmp == Cmp::kEqual ? DispatchStorage(a, [](auto) {}) : DispatchNumeric(a, [](auto) {});
  if (!ok) return NodeError(c.node, Errc::kUnsupported, std::string("type ") + DTypeName(a));
  Shape out;
  if (!BroadcastShapes(c.in[0]->shape, c.in[1]->shape, &out))
    return c.Fail("shapes " + ShapeString(c.in[0]->shape) + " and " + ShapeString(c.in[1]->shape) +
                  " do not broadcast");
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, out));
  c.out = {TensorInfo{DType::kBool, out}};
  return Status::Ok();
}

template <Cmp kCmp, typename T>
inline uint8_t Compare(T a, T b) {
  if constexpr (kCmp == Cmp::kEqual) return a == b;
  if constexpr (kCmp == Cmp::kGreater) return a > b;
  if constexpr (kCmp == Cmp::kLess) return a < b;
}

template <Cmp kCmp>
Status RunCompare(RunContext& c) {
  const Tensor& a = *c.in[0];
  const Tensor& b = *c.in[1];
  Tensor& y = *c.out[0];
  const bool boolean = a.dtype == DType::kBool;
  DispatchStorage(a.dtype, [&](auto t) {
    using T = decltype(t);
    const T* pa = a.as<T>();
    const T* pb = b.as<T>();
    uint8_t* py = y.as<uint8_t>();
    ForEachBroadcast<2>(y.shape, {&a.shape, &b.shape}, [&](int64_t i, const auto& off) {
      T va = pa[off[0]], vb = pb[off[1]];
      if (boolean) {
        va = T(va != T(0));
        vb = T(vb != T(0));
      }
      py[i] = Compare<kCmp>(va, vb);
    });
  });
  return Status::Ok();
}

// --- Where -------------------------------------------------------------------------------
Status CheckWhere(const Node& n) {
  return CheckArity(n, 3, 3);
}

Status InferWhere(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kBool}));
  const DType x = c.in[1]->dtype, y = c.in[2]->dtype;
  if (x != y)
    return c.Fail(std::string("X and Y types differ: ") + DTypeName(x) + " and " + DTypeName(y));
  if (!DispatchStorage(x, [](auto) {}))
    return NodeError(c.node, Errc::kUnsupported, std::string("type ") + DTypeName(x));
  Shape xy, out;
  if (!BroadcastShapes(c.in[1]->shape, c.in[2]->shape, &xy) ||
      !BroadcastShapes(c.in[0]->shape, xy, &out))
    return c.Fail("shapes " + ShapeString(c.in[0]->shape) + ", " + ShapeString(c.in[1]->shape) +
                  " and " + ShapeString(c.in[2]->shape) + " do not broadcast");
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, out));
  c.out = {TensorInfo{x, out}};
  return Status::Ok();
}

Status RunWhere(RunContext& c) {
  const Tensor& cond = *c.in[0];
  const Tensor& x = *c.in[1];
  const Tensor& y = *c.in[2];
  Tensor& z = *c.out[0];
  DispatchStorage(x.dtype, [&](auto t) {
    using T = decltype(t);
    const uint8_t* pc = cond.as<uint8_t>();
    const T* px = x.as<T>();
    const T* py = y.as<T>();
    T* pz = z.as<T>();
    ForEachBroadcast<3>(
        z.shape, {&cond.shape, &x.shape, &y.shape},
        [&](int64_t i, const auto& off) { pz[i] = pc[off[0]] ? px[off[1]] : py[off[2]]; });
  });
  return Status::Ok();
}

// --- Cast --------------------------------------------------------------------------------
// The target type: `to` is an element type number, or before opset 6 its name.
bool CastTarget(const Node& n, DType* to) {
  auto it = n.attrs.find("to");
  if (it == n.attrs.end()) return false;
  if (it->second.kind != Attribute::Kind::kString)
    return it->second.i >= 0 && it->second.i <= std::numeric_limits<int32_t>::max() &&
           DTypeFromOnnx(static_cast<int32_t>(it->second.i), to);
  static const std::pair<const char*, DType> kNames[] = {
      {"FLOAT", DType::kFloat32}, {"DOUBLE", DType::kFloat64}, {"INT8", DType::kInt8},
      {"UINT8", DType::kUint8},   {"INT32", DType::kInt32},    {"INT64", DType::kInt64},
      {"BOOL", DType::kBool}};
  for (const auto& [name, t] : kNames) {
    if (it->second.s == name) {
      *to = t;
      return true;
    }
  }
  return false;
}

Status CheckCast(const Node& n) {
  EDGELOOP_RETURN_IF_ERROR(CheckArity(n, 1, 1));
  if (!n.Has("to")) return NodeError(n, Errc::kFormat, "attribute 'to' is missing");
  DType to;
  if (!CastTarget(n, &to)) {
    const Attribute& a = n.attrs.at("to");
    return NodeError(n, Errc::kUnsupported,
                     "cast to element type " +
                         (a.kind == Attribute::Kind::kString ? a.s : std::to_string(a.i)) +
                         ", which the runtime does not support");
  }
  return Status::Ok();
}

Status InferCast(InferContext& c) {
  DType to = DType::kUndefined;
  if (!CastTarget(c.node, &to)) return c.Fail("unsupported target type");
  if (!DispatchStorage(c.in[0]->dtype, [](auto) {}))
    return NodeError(c.node, Errc::kUnsupported, std::string("type ") + DTypeName(c.in[0]->dtype));
  c.out = {TensorInfo{to, c.in[0]->shape}};
  return Status::Ok();
}

template <typename To, typename From>
To CastValue(From v) {
  if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    const double d = static_cast<double>(v);
    if (std::isnan(d)) return To(0);
    // The bounds +-1 are exact or round outward, so the truncating conversion stays in range.
    if (!(d < static_cast<double>(std::numeric_limits<To>::max()) + 1.0))
      return std::numeric_limits<To>::max();
    if (!(d > static_cast<double>(std::numeric_limits<To>::lowest()) - 1.0))
      return std::numeric_limits<To>::lowest();
    return static_cast<To>(d);
  } else {
    return static_cast<To>(v);
  }
}

Status RunCast(RunContext& c) {
  const Tensor& x = *c.in[0];
  Tensor& y = *c.out[0];
  const int64_t n = x.size();
  const bool from_bool = x.dtype == DType::kBool, to_bool = y.dtype == DType::kBool;
  DispatchStorage(x.dtype, [&](auto tf) {
    using From = decltype(tf);
    const From* px = x.as<From>();
    if (to_bool) {
      uint8_t* py = y.as<uint8_t>();
      for (int64_t i = 0; i < n; ++i) py[i] = px[i] != From(0);
      return;
    }
    DispatchNumeric(y.dtype, [&](auto tt) {
      using To = decltype(tt);
      To* py = y.as<To>();
      if (from_bool) {
        for (int64_t i = 0; i < n; ++i) py[i] = px[i] != From(0) ? To(1) : To(0);
        return;
      }
      for (int64_t i = 0; i < n; ++i) py[i] = CastValue<To>(px[i]);
    });
  });
  return Status::Ok();
}

}  // namespace

const OpKernel kEqual{"Equal", CheckCompare<Cmp::kEqual>, InferCompare<Cmp::kEqual>,
                      RunCompare<Cmp::kEqual>};
const OpKernel kGreater{"Greater", CheckCompare<Cmp::kGreater>, InferCompare<Cmp::kGreater>,
                        RunCompare<Cmp::kGreater>};
const OpKernel kLess{"Less", CheckCompare<Cmp::kLess>, InferCompare<Cmp::kLess>,
                     RunCompare<Cmp::kLess>};
const OpKernel kWhere{"Where", CheckWhere, InferWhere, RunWhere};
const OpKernel kCast{"Cast", CheckCast, InferCast, RunCast};

}  // namespace edgeloop::runtime::kernels
