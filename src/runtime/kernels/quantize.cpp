// QuantizeLinear and DequantizeLinear, per tensor or per axis (opset 13):
//   q = saturate(round_half_to_even(x / scale) + zero_point),   x = (q - zero_point) * scale.
// The quantized type is the zero point's (uint8 when it is omitted); int32 dequantizes too.
#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {
namespace {

Status CheckQdq(const Node& n) {
  return CheckArity(n, 2, 3);
}

// Per-tensor when scale is a scalar or has one element; else per axis along `axis`.
Status CheckScale(InferContext& c, int64_t* axis_out) {
  const Shape& x = c.in[0]->shape;
  const TensorInfo* scale = c.in[1];
  if (scale->dtype != DType::kFloat32) return c.Fail("scale must be float32");
  int64_t n = NumElements(scale->shape);
  *axis_out = -1;
  if (scale->shape.size() > 1) return c.Fail("scale must be a scalar or 1-D");
  if (scale->shape.size() == 1 && !(n == 1 && c.node.opset < 13)) {
    int64_t axis;
    if (!NormalizeAxis(c.node.Int("axis", 1), static_cast<int64_t>(x.size()), &axis))
      return c.Fail("axis is out of range");
    if (x[static_cast<size_t>(axis)] != n && n != 1)
      return c.Fail("scale has " + std::to_string(n) + " entries for axis of size " +
                    std::to_string(x[static_cast<size_t>(axis)]));
    if (n != 1) *axis_out = axis;
  }
  if (c.in.size() > 2 && c.in[2] && c.in[2]->shape != scale->shape)
    return c.Fail("zero point and scale differ in shape");
  return Status::Ok();
}

Status InferQuantize(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32}));
  int64_t axis;
  EDGELOOP_RETURN_IF_ERROR(CheckScale(c, &axis));
  DType q = c.in.size() > 2 && c.in[2] ? c.in[2]->dtype : DType::kUint8;
  if (q != DType::kUint8 && q != DType::kInt8) return c.Fail("zero point must be uint8 or int8");
  c.out = {TensorInfo{q, c.in[0]->shape}};
  return Status::Ok();
}

Status InferDequantize(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kUint8, DType::kInt8, DType::kInt32}));
  int64_t axis;
  EDGELOOP_RETURN_IF_ERROR(CheckScale(c, &axis));
  if (c.in.size() > 2 && c.in[2] && c.in[2]->dtype != c.in[0]->dtype)
    return c.Fail("zero point and input differ in type");
  c.out = {TensorInfo{DType::kFloat32, c.in[0]->shape}};
  return Status::Ok();
}

// Channel index of flat element i for per-axis parameters.
struct AxisWalker {
  int64_t inner = 1, dim = 1;
  AxisWalker(const Shape& s, int64_t axis) {
    if (axis < 0) return;
    dim = s[static_cast<size_t>(axis)];
    for (size_t d = static_cast<size_t>(axis) + 1; d < s.size(); ++d) inner *= s[d];
  }
  int64_t operator()(int64_t i) const { return dim == 1 ? 0 : (i / inner) % dim; }
};

int64_t ScaleAxis(const RunContext& c) {
  const Shape& s = c.in[1]->shape;
  if (s.size() != 1 || s[0] == 1) return -1;
  int64_t axis;
  NormalizeAxis(c.node.Int("axis", 1), static_cast<int64_t>(c.in[0]->shape.size()), &axis);
  return axis;
}

template <typename Q>
void QuantizeTyped(RunContext& c) {
  const Tensor& x = *c.in[0];
  const float* scale = c.in[1]->as<float>();
  const Q* zp = c.in.size() > 2 && c.in[2] ? c.in[2]->as<Q>() : nullptr;
  AxisWalker ch(x.shape, ScaleAxis(c));
  Q* y = c.out[0]->as<Q>();
  const float lo = std::numeric_limits<Q>::min(), hi = std::numeric_limits<Q>::max();
  for (int64_t i = 0, n = x.size(); i < n; ++i) {
    int64_t k = ch(i);
    float v = std::nearbyint(x.as<float>()[i] / scale[k]) + (zp ? static_cast<float>(zp[k]) : 0.0f);
    y[i] = static_cast<Q>(std::clamp(v, lo, hi));
  }
}

Status RunQuantize(RunContext& c) {
  if (c.out[0]->dtype == DType::kUint8)
    QuantizeTyped<uint8_t>(c);
  else
    QuantizeTyped<int8_t>(c);
  return Status::Ok();
}

template <typename Q>
void DequantizeTyped(RunContext& c) {
  const Tensor& x = *c.in[0];
  const float* scale = c.in[1]->as<float>();
  const Q* zp = c.in.size() > 2 && c.in[2] ? c.in[2]->as<Q>() : nullptr;
  AxisWalker ch(x.shape, ScaleAxis(c));
  float* y = c.out[0]->as<float>();
  for (int64_t i = 0, n = x.size(); i < n; ++i) {
    int64_t k = ch(i);
    y[i] = static_cast<float>(static_cast<int64_t>(x.as<Q>()[i]) -
                              (zp ? static_cast<int64_t>(zp[k]) : 0)) *
           scale[k];
  }
}

Status RunDequantize(RunContext& c) {
  switch (c.in[0]->dtype) {
    case DType::kUint8:
      DequantizeTyped<uint8_t>(c);
      break;
    case DType::kInt8:
      DequantizeTyped<int8_t>(c);
      break;
    default:
      DequantizeTyped<int32_t>(c);
      break;
  }
  return Status::Ok();
}

}  // namespace

const OpKernel kQuantizeLinear{"QuantizeLinear", CheckQdq, InferQuantize, RunQuantize};
const OpKernel kDequantizeLinear{"DequantizeLinear", CheckQdq, InferDequantize, RunDequantize};

}  // namespace edgeloop::runtime::kernels
