// Depthwise 2-D convolution (one input and one output channel per group, MobileNet's 3x3
// layers), float32 and uint8 x int8, vectorised across channels: 16 channels at a time are
// copied into a padded [hp][wp][16] block, each output position sums its window taps over the
// 16 lanes at once, and the [oh][ow][16] result is copied back to NCHW (isa/kernels.hpp,
// depthwise_*). Small planes (MobileNet's late 4x4 and 2x2 layers) cost no more per value than
// large ones.
#pragma once

#include <algorithm>
#include <cstdint>

#include "runtime/isa/kernels.hpp"
#include "runtime/kernels/conv_geometry.hpp"

namespace edgeloop::runtime::kernels {

inline constexpr int64_t kDepthwiseLanes = 16;

inline bool IsDepthwise(const ConvGeometry& g) {
  return g.w.rank() == 2 && g.cg == 1 && g.mg == 1 && g.group > 1;
}

struct DepthwiseShape {
  int64_t hp, wp;  // the padded input plane
  int64_t taps;    // kh * kw
  int64_t blocks;  // channel blocks of kDepthwiseLanes
};

inline DepthwiseShape DepthwiseShapeOf(const ConvGeometry& g) {
  return {g.w.in[0] + g.w.pad_begin[0] + g.w.pad_end[0],
          g.w.in[1] + g.w.pad_begin[1] + g.w.pad_end[1], g.w.kernel[0] * g.w.kernel[1],
          (g.m + kDepthwiseLanes - 1) / kDepthwiseLanes};
}

// Elements of the input block, of the output block, and of the block's weights.
inline int64_t DepthwiseInElements(const DepthwiseShape& d) {
  return d.hp * d.wp * kDepthwiseLanes;
}
inline int64_t DepthwiseOutElements(const ConvGeometry& g) {
  return g.out_size * kDepthwiseLanes;
}
inline int64_t DepthwiseWeightElements(const DepthwiseShape& d) {
  return d.taps * kDepthwiseLanes;
}

// The block's weights, [tap][lane], zero for lanes past the last channel.
template <typename W, typename T>
void GatherWeights(const DepthwiseShape& d, const W* w, int64_t lanes, T* out) {
  std::fill(out, out + DepthwiseWeightElements(d), T{0});
  for (int64_t c = 0; c < lanes; ++c)
    for (int64_t t = 0; t < d.taps; ++t)
      out[t * kDepthwiseLanes + c] = static_cast<T>(w[c * d.taps + t]);
}

inline DepthwiseArgs DepthwiseArgsOf(const ConvGeometry& g, const DepthwiseShape& d) {
  return {g.w.in[0],     g.w.in[1],     g.w.pad_begin[0], g.w.pad_begin[1], d.hp,
          d.wp,          g.w.out[0],    g.w.out[1],       g.w.kernel[0],    g.w.kernel[1],
          g.w.stride[0], g.w.stride[1], g.w.dilation[0],  g.w.dilation[1],  g.in_size,
          g.out_size};
}

}  // namespace edgeloop::runtime::kernels
