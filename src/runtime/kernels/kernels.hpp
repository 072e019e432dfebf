// Every operator kernel the runtime has, one definition per op (see ../kernel.hpp).
#pragma once

#include <algorithm>
#include <limits>
#include <vector>

#include "runtime/kernel.hpp"

namespace edgeloop::runtime::kernels {

extern const OpKernel kAdd, kSub, kMul, kDiv;
extern const OpKernel kRelu, kSigmoid, kTanh, kIdentity, kDropout, kClip;
extern const OpKernel kSoftmax;
extern const OpKernel kFlatten, kReshape, kTranspose, kConcat, kShape, kConstant;
extern const OpKernel kGemm, kMatMul;
extern const OpKernel kConv, kConvTranspose;
extern const OpKernel kRNN, kGRU, kLSTM;
extern const OpKernel kMaxPool, kAveragePool, kGlobalAveragePool;
extern const OpKernel kBatchNormalization;
extern const OpKernel kInstanceNormalization, kLayerNormalization, kLRN;
extern const OpKernel kQuantizeLinear, kDequantizeLinear;
extern const OpKernel kQLinearConv, kQLinearMatMul, kQLinearAdd;
extern const OpKernel kHardSigmoid, kHardSwish, kLeakyRelu, kPRelu, kElu, kSelu, kSoftplus;
extern const OpKernel kExp, kLog, kSqrt, kPow, kNeg, kAbs, kReciprocal, kErf, kFloor, kCeil;
extern const OpKernel kReduceMean, kReduceSum, kReduceMax, kReduceMin, kReduceL2;
extern const OpKernel kArgMax, kArgMin;
extern const OpKernel kEqual, kGreater, kLess, kWhere, kCast;
extern const OpKernel kSlice, kSplit, kGather;
extern const OpKernel kSqueeze, kUnsqueeze;
extern const OpKernel kExpand, kTile, kConstantOfShape, kRange;
extern const OpKernel kPad;
extern const OpKernel kResize, kUpsample;

inline std::vector<const OpKernel*> All() {
  return {&kAdd,
          &kSub,
          &kMul,
          &kDiv,
          &kRelu,
          &kSigmoid,
          &kTanh,
          &kIdentity,
          &kDropout,
          &kClip,
          &kSoftmax,
          &kFlatten,
          &kReshape,
          &kTranspose,
          &kConcat,
          &kShape,
          &kConstant,
          &kGemm,
          &kMatMul,
          &kConv,
          &kConvTranspose,
          &kRNN,
          &kGRU,
          &kLSTM,
          &kMaxPool,
          &kAveragePool,
          &kGlobalAveragePool,
          &kBatchNormalization,
          &kInstanceNormalization,
          &kLayerNormalization,
          &kLRN,
          &kQuantizeLinear,
          &kDequantizeLinear,
          &kQLinearConv,
          &kQLinearMatMul,
          &kQLinearAdd,
          &kHardSigmoid,
          &kHardSwish,
          &kLeakyRelu,
          &kPRelu,
          &kElu,
          &kSelu,
          &kSoftplus,
          &kExp,
          &kLog,
          &kSqrt,
          &kPow,
          &kNeg,
          &kAbs,
          &kReciprocal,
          &kErf,
          &kFloor,
          &kCeil,
          &kReduceMean,
          &kReduceSum,
          &kReduceMax,
          &kReduceMin,
          &kReduceL2,
          &kArgMax,
          &kArgMin,
          &kEqual,
          &kGreater,
          &kLess,
          &kWhere,
          &kCast,
          &kSlice,
          &kSplit,
          &kGather,
          &kSqueeze,
          &kUnsqueeze,
          &kExpand,
          &kTile,
          &kConstantOfShape,
          &kRange,
          &kPad,
          &kResize,
          &kUpsample};
}

// Calls f with a value of the C++ type for a numeric dtype (float, double, int8_t, uint8_t,
// int32_t, int64_t); returns false for other types.
template <typename F>
bool DispatchNumeric(DType t, F&& f) {
  switch (t) {
    case DType::kFloat32:
      f(float{});
      return true;
    case DType::kFloat64:
      f(double{});
      return true;
    case DType::kInt8:
      f(int8_t{});
      return true;
    case DType::kUint8:
      f(uint8_t{});
      return true;
    case DType::kInt32:
      f(int32_t{});
      return true;
    case DType::kInt64:
      f(int64_t{});
      return true;
    default:
      return false;
  }
}

// The activation the planner folded into a Conv or Gemm (model.cpp, FuseRelu): Relu, or a
// Clip to [edgeloop.fused_clip_min, edgeloop.fused_clip_max], applied to its n outputs.
inline void ApplyFusedActivation(const Node& node, float* y, int64_t n) {
  if (node.Int("edgeloop.fused_relu", 0)) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::max(y[i], 0.0f);
  } else if (node.Has("edgeloop.fused_clip_min")) {
    const float lo = node.Float("edgeloop.fused_clip_min", 0.0f);
    const float hi = node.Float("edgeloop.fused_clip_max", 0.0f);
    for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(y[i], lo), hi);
  }
}

// The same activation as bounds: y = clamp(y, lo, hi), +-infinity where it has none (for the
// kernels that apply it as they store).
inline void FusedActivationBounds(const Node& node, float* lo, float* hi) {
  *lo = -std::numeric_limits<float>::infinity();
  *hi = std::numeric_limits<float>::infinity();
  if (node.Int("edgeloop.fused_relu", 0)) {
    *lo = 0.0f;
  } else if (node.Has("edgeloop.fused_clip_min")) {
    *lo = node.Float("edgeloop.fused_clip_min", 0.0f);
    *hi = node.Float("edgeloop.fused_clip_max", 0.0f);
  }
}

// Row-major strides of a shape.
inline std::vector<int64_t> Strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

}  // namespace edgeloop::runtime::kernels
