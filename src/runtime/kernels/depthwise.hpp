// Depthwise 2-D convolution (one input and one output channel per group, MobileNet's 3x3
// layers), float32 and uint8 x int8, one channel plane at a time, vectorised along the
// plane: the input is copied into a zero-padded copy split into stride phases (padded row r,
// column x go to phase plane (r % sh, x % sw) at row r / sh, column x / sw), so that every
// window tap of consecutive outputs, across rows too, reads a contiguous run of one phase
// plane at a fixed offset. Outputs are computed on the phase plane's width and the columns
// past the output's width dropped (isa/kernels.hpp, depthwise_*).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#include "runtime/isa/kernels.hpp"
#include "runtime/kernels/conv_geometry.hpp"

namespace edgeloop::runtime::kernels {

inline bool IsDepthwise(const ConvGeometry& g) {
  return g.w.rank() == 2 && g.cg == 1 && g.mg == 1 && g.group > 1;
}

inline DepthwiseArgs DepthwiseArgsOf(const ConvGeometry& g) {
  DepthwiseArgs a{};
  a.ih = g.w.in[0];
  a.iw = g.w.in[1];
  a.pt = g.w.pad_begin[0];
  a.pl = g.w.pad_begin[1];
  a.hp = g.w.in[0] + g.w.pad_begin[0] + g.w.pad_end[0];
  a.wp = g.w.in[1] + g.w.pad_begin[1] + g.w.pad_end[1];
  a.oh = g.w.out[0];
  a.ow = g.w.out[1];
  a.kh = g.w.kernel[0];
  a.kw = g.w.kernel[1];
  a.sh = g.w.stride[0];
  a.sw = g.w.stride[1];
  a.dh = g.w.dilation[0];
  a.dw = g.w.dilation[1];
  a.hq = (a.hp + a.sh - 1) / a.sh;
  a.wq = (a.wp + a.sw - 1) / a.sw;
  // The last block of 16 outputs reads up to 15 values past the last output and a window
  // (at most a phase plane's rows and one row) further on.
  a.plane = (a.hq + 1) * a.wq + 16;
  a.wide = (a.oh * a.wq + 15) / 16 * 16;
  a.lo = -std::numeric_limits<float>::infinity();
  a.hi = std::numeric_limits<float>::infinity();
  if (a.kh * a.kw <= kDepthwiseTapOffsets)
    for (int64_t ky = 0; ky < a.kh; ++ky)
      for (int64_t kx = 0; kx < a.kw; ++kx) {
        const int64_t r = ky * a.dh, col = kx * a.dw;
        a.tap_offset[ky * a.kw + kx] =
            ((r % a.sh) * a.sw + col % a.sw) * a.plane + (r / a.sh) * a.wq + col / a.sw;
      }
  return a;
}

// Floats of scratch: the phase planes, then the outputs on the phase plane's width.
inline int64_t DepthwiseScratchElements(const DepthwiseArgs& a) {
  return a.sh * a.sw * a.plane + a.wide;
}

}  // namespace edgeloop::runtime::kernels
