// Ops whose output can be far larger than their input, sized by values known at planning:
// Expand, Tile, ConstantOfShape and Range. Infer computes the output shape with checked
// arithmetic (no dimension over kMaxDim); the planner then refuses any output over its
// per-tensor byte limit before anything is allocated, so a hostile shape is an error, not a
// huge allocation.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "runtime/kernels/layout.hpp"

namespace edgeloop::runtime::kernels {
namespace {

// A shape given as a 1-D int64 tensor known at planning; every entry in [0, kMaxDim].
Status ShapeFromValue(InferContext& c, size_t i, const char* what, Shape* out) {
  EDGELOOP_ASSIGN_OR_RETURN(IntList dims, PlanningInts(c, i, what));
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, static_cast<size_t>(dims.size())));
  out->clear();
  for (int64_t k = 0; k < dims.size(); ++k) {
    if (dims[k] < 0)
      return c.Fail(std::string(what) + " has a negative dimension " + std::to_string(dims[k]));
    if (dims[k] > kMaxDim) return TooLarge(c, std::string(what) + " " + std::to_string(dims[k]));
    out->push_back(dims[k]);
  }
  return Status::Ok();
}

// --- Expand ----------------------------------------------------------------------------
Status CheckExpand(const Node& n) {
  return CheckArity(n, 2, 2);
}

Status InferExpand(InferContext& c) {
  Shape target, out;
  EDGELOOP_RETURN_IF_ERROR(ShapeFromValue(c, 1, "the shape", &target));
  if (!BroadcastShapes(c.in[0]->shape, target, &out))
    return c.Fail(ShapeString(c.in[0]->shape) + " does not broadcast to " + ShapeString(target));
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, out.size()));
  c.out = {TensorInfo{c.in[0]->dtype, out}};
  return Status::Ok();
}

Status RunExpand(RunContext& c) {
  const Tensor& x = *c.in[0];
  const Shape& out = c.out[0]->shape;
  const size_t r = out.size(), lead = r - x.shape.size();
  DimArray stride{};
  int64_t s = 1;
  for (size_t d = x.shape.size(); d-- > 0;) {
    stride[lead + d] = x.shape[d] == 1 ? 0 : s;
    s *= x.shape[d];
  }
  CopyStrided(c.out[0]->data, x.data, r, out.data(), stride.data(), DTypeSize(x.dtype));
  return Status::Ok();
}

// --- Tile ------------------------------------------------------------------------------
Status CheckTile(const Node& n) {
  if (n.opset < 6)
    return NodeError(n, Errc::kUnsupported,
                     "Tile before opset 6 (tiles and axis) is not supported");
  return CheckArity(n, 2, 2);
}

Status InferTile(InferContext& c) {
  const Shape& in = c.in[0]->shape;
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, in.size()));
  EDGELOOP_ASSIGN_OR_RETURN(IntList repeats, PlanningInts(c, 1, "repeats"));
  if (repeats.size() != static_cast<int64_t>(in.size()))
    return c.Fail("repeats has " + std::to_string(repeats.size()) + " entries for rank " +
                  std::to_string(in.size()));
  Shape out(in.size());
  for (size_t d = 0; d < in.size(); ++d) {
    const int64_t rep = repeats[static_cast<int64_t>(d)];
    if (rep < 0) return c.Fail("a repeat count is negative");
    if (rep != 0 && in[d] > kMaxDim / rep)
      return TooLarge(c, "tiling " + ShapeString(in) + " " + std::to_string(rep) + " times");
    out[d] = in[d] * rep;
  }
  c.out = {TensorInfo{c.in[0]->dtype, out}};
  return Status::Ok();
}

Status RunTile(RunContext& c) {
  // The output, viewed as [rep0, in0, rep1, in1, ...], is contiguous; the input repeats
  // along each rep axis (stride 0).
  const Tensor& x = *c.in[0];
  const size_t r = x.shape.size();
  DimArray shape{}, stride{};
  int64_t s = 1;
  for (size_t d = r; d-- > 0;) {
    shape[2 * d] = x.shape[d] == 0 ? 0 : c.out[0]->shape[d] / x.shape[d];
    shape[2 * d + 1] = x.shape[d];
    stride[2 * d] = 0;
    stride[2 * d + 1] = s;
    s *= x.shape[d];
  }
  CopyStrided(c.out[0]->data, x.data, 2 * r, shape.data(), stride.data(), DTypeSize(x.dtype));
  return Status::Ok();
}

// --- ConstantOfShape -------------------------------------------------------------------
Status CheckConstantOfShape(const Node& n) {
  if (n.Has("value")) {
    const Attribute& a = n.attrs.at("value");
    if (a.kind != Attribute::Kind::kTensor || NumElements(a.tensor.shape) != 1)
      return NodeError(n, Errc::kFormat, "'value' must be a tensor of one element");
  }
  return CheckArity(n, 1, 1);
}

Status InferConstantOfShape(InferContext& c) {
  Shape out;
  EDGELOOP_RETURN_IF_ERROR(ShapeFromValue(c, 0, "the shape", &out));
  const DType t = c.node.Has("value") ? c.node.attrs.at("value").tensor.dtype : DType::kFloat32;
  c.out = {TensorInfo{t, out}};
  return Status::Ok();
}

Status RunConstantOfShape(RunContext& c) {
  Tensor& y = *c.out[0];
  const size_t es = DTypeSize(y.dtype), n = static_cast<size_t>(y.size());
  auto* dst = static_cast<unsigned char*>(y.data);
  if (!c.node.Has("value")) {
    std::memset(dst, 0, n * es);
    return Status::Ok();
  }
  const unsigned char* v = c.node.attrs.at("value").tensor.bytes.data();
  for (size_t i = 0; i < n; ++i) std::memcpy(dst + i * es, v, es);
  return Status::Ok();
}

// --- Range -----------------------------------------------------------------------------
Status CheckRange(const Node& n) {
  return CheckArity(n, 3, 3);
}

template <typename T>
T ScalarOf(const Tensor& t) {
  return t.as<T>()[0];
}

Status InferRange(InferContext& c) {
  const DType t = c.in[0]->dtype;
  EDGELOOP_RETURN_IF_ERROR(
      RequireType(c, 0, {DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kInt64}));
  const Tensor* v[3];
  for (size_t i = 0; i < 3; ++i) {
    if (c.in[i]->dtype != t) return c.Fail("start, limit and delta differ in type");
    if (NumElements(c.in[i]->shape) != 1) return c.Fail("start, limit and delta must be scalars");
    EDGELOOP_ASSIGN_OR_RETURN(v[i], PlanningValue(c, i, "start, limit or delta"));
  }
  double count = 0;
  if (t == DType::kInt32 || t == DType::kInt64) {
    const int64_t start = IntAt(*v[0], 0), limit = IntAt(*v[1], 0), delta = IntAt(*v[2], 0);
    if (delta == 0) return c.Fail("delta is 0");
    int64_t diff;
    if (__builtin_sub_overflow(limit, start, &diff) ||
        (diff == std::numeric_limits<int64_t>::min() && delta == -1)) {
      count = std::ceil((static_cast<long double>(limit) - start) / delta);
    } else {
      int64_t n = diff / delta;  // exact: ceil by hand
      if (n * delta != diff && (diff > 0) == (delta > 0)) ++n;
      count = static_cast<double>(n);
    }
    if (count < 0) count = 0;
  } else {
    const double start = t == DType::kFloat32 ? ScalarOf<float>(*v[0]) : ScalarOf<double>(*v[0]);
    const double limit = t == DType::kFloat32 ? ScalarOf<float>(*v[1]) : ScalarOf<double>(*v[1]);
    const double delta = t == DType::kFloat32 ? ScalarOf<float>(*v[2]) : ScalarOf<double>(*v[2]);
    if (delta == 0) return c.Fail("delta is 0");
    count = std::ceil((limit - start) / delta);
    if (std::isnan(count)) return c.Fail("start, limit or delta is not a number");
    if (count < 0) count = 0;
  }
  if (count > static_cast<double>(kMaxDim)) return TooLarge(c, "the range");
  c.out = {TensorInfo{t, {static_cast<int64_t>(count)}}};
  return Status::Ok();
}

// Floating ranges multiply (no drift from repeated adds); integer ranges add, stopping before
// the step past the last element, which could overflow.
template <typename T>
void FillRange(const RunContext& c) {
  const T start = ScalarOf<T>(*c.in[0]), delta = ScalarOf<T>(*c.in[2]);
  T* y = c.out[0]->as<T>();
  const int64_t n = c.out[0]->size();
  if constexpr (std::is_floating_point_v<T>) {
    for (int64_t i = 0; i < n; ++i) y[i] = start + static_cast<T>(i) * delta;
  } else {
    T v = start;
    for (int64_t i = 0; i < n; ++i) {
      y[i] = v;
      if (i + 1 < n) v = static_cast<T>(v + delta);
    }
  }
}

Status RunRange(RunContext& c) {
  switch (c.in[0]->dtype) {
    case DType::kFloat32:
      FillRange<float>(c);
      break;
    case DType::kFloat64:
      FillRange<double>(c);
      break;
    case DType::kInt32:
      FillRange<int32_t>(c);
      break;
    default:
      FillRange<int64_t>(c);
      break;
  }
  return Status::Ok();
}

}  // namespace

const OpKernel kExpand{"Expand", CheckExpand, InferExpand, RunExpand};
const OpKernel kTile{"Tile", CheckTile, InferTile, RunTile};
const OpKernel kConstantOfShape{"ConstantOfShape", CheckConstantOfShape, InferConstantOfShape,
                                RunConstantOfShape};
const OpKernel kRange{"Range", CheckRange, InferRange, RunRange};

}  // namespace edgeloop::runtime::kernels
