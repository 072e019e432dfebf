// Add, Sub, Mul, Div with numpy broadcasting, for every numeric type. Integer Div truncates
// toward zero, as ONNX (and C++) define it; integer division by zero is an error.
#include <cstring>

#include "runtime/kernels/broadcast.hpp"
#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {
namespace {

enum class BinOp { kAdd, kSub, kMul, kDiv };

Status CheckBinary(const Node& n) {
  return CheckArity(n, 2, 2);
}

// Before opset 7, broadcasting was opt-in (broadcast = 1) and B's dimensions lined up with
// A's starting at `axis` (default: trailing). Returns B's shape as numpy broadcasting sees it.
Shape EffectiveB(const Node& n, const Shape& a, const Shape& b) {
  if (n.opset >= 7 || n.Int("broadcast", 0) == 0 || b.size() > a.size()) return b;
  int64_t axis = n.Int("axis", static_cast<int64_t>(a.size() - b.size()));
  if (axis < 0) axis += static_cast<int64_t>(a.size());
  if (axis < 0 || axis + static_cast<int64_t>(b.size()) > static_cast<int64_t>(a.size())) return b;
  Shape out(a.size() - static_cast<size_t>(axis), 1);
  for (size_t i = 0; i < b.size(); ++i) out[i] = b[i];
  return out;
}

Status InferBinary(InferContext& c) {
  if (c.in[0]->dtype != c.in[1]->dtype)
    return c.Fail(std::string("input types differ: ") + DTypeName(c.in[0]->dtype) + " and " +
                  DTypeName(c.in[1]->dtype));
  if (!DispatchNumeric(c.in[0]->dtype, [](auto) {}))
    return NodeError(c.node, Errc::kUnsupported, std::string("type ") + DTypeName(c.in[0]->dtype));
  Shape out;
  if (!BroadcastShapes(c.in[0]->shape, EffectiveB(c.node, c.in[0]->shape, c.in[1]->shape), &out))
    return c.Fail("shapes " + ShapeString(c.in[0]->shape) + " and " + ShapeString(c.in[1]->shape) +
                  " do not broadcast");
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, out));
  c.out = {TensorInfo{c.in[0]->dtype, out}};
  return Status::Ok();
}

template <BinOp kOp, typename T>
inline T Apply(T a, T b) {
  if constexpr (kOp == BinOp::kAdd) return static_cast<T>(a + b);
  if constexpr (kOp == BinOp::kSub) return static_cast<T>(a - b);
  if constexpr (kOp == BinOp::kMul) return static_cast<T>(a * b);
  if constexpr (kOp == BinOp::kDiv) return static_cast<T>(a / b);
}

template <BinOp kOp, typename T>
Status RunTyped(RunContext& c) {
  const Tensor& a = *c.in[0];
  Tensor b = *c.in[1];
  b.shape = EffectiveB(c.node, a.shape, b.shape);
  Tensor& o = *c.out[0];
  const T* pa = a.as<T>();
  const T* pb = b.as<T>();
  T* po = o.as<T>();
  const int64_t n = o.size();
  if constexpr (kOp == BinOp::kDiv && std::is_integral_v<T>) {
    for (int64_t i = 0; i < b.size(); ++i)
      if (pb[i] == 0) return NodeError(c.node, Errc::kInvalidArgument, "integer division by zero");
  }
  if (a.shape == b.shape) {
    for (int64_t i = 0; i < n; ++i) po[i] = Apply<kOp>(pa[i], pb[i]);
    return Status::Ok();
  }
  if (b.size() == 1 && a.size() == n) {
    const T v = pb[0];
    for (int64_t i = 0; i < n; ++i) po[i] = Apply<kOp>(pa[i], v);
    return Status::Ok();
  }
  if (a.size() == 1 && b.size() == n) {
    const T v = pa[0];
    for (int64_t i = 0; i < n; ++i) po[i] = Apply<kOp>(v, pb[i]);
    return Status::Ok();
  }
  ForEachBroadcast<2>(o.shape, {&a.shape, &b.shape}, [&](int64_t i, const auto& off) {
    po[i] = Apply<kOp>(pa[off[0]], pb[off[1]]);
  });
  return Status::Ok();
}

template <BinOp kOp>
Status RunBinary(RunContext& c) {
  Status st;
  DispatchNumeric(c.in[0]->dtype, [&](auto t) { st = RunTyped<kOp, decltype(t)>(c); });
  return st;
}

}  // namespace

const OpKernel kAdd{"Add", CheckBinary, InferBinary, RunBinary<BinOp::kAdd>};
const OpKernel kSub{"Sub", CheckBinary, InferBinary, RunBinary<BinOp::kSub>};
const OpKernel kMul{"Mul", CheckBinary, InferBinary, RunBinary<BinOp::kMul>};
const OpKernel kDiv{"Div", CheckBinary, InferBinary, RunBinary<BinOp::kDiv>};

}  // namespace edgeloop::runtime::kernels
