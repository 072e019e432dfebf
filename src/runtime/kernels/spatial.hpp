// Window geometry shared by Conv and the pooling ops: kernel, strides, dilations and pads
// (explicit or auto_pad SAME_UPPER / SAME_LOWER / VALID) for any number of spatial axes.
#pragma once

#include <string>
#include <vector>

#include "runtime/kernel.hpp"

namespace edgeloop::runtime::kernels {

struct Window {
  std::vector<int64_t> in, kernel, stride, dilation, pad_begin, pad_end, out;
  size_t rank() const { return in.size(); }
};

// in: the spatial input extent; kernel: window size per axis. ceil_mode for pools.
inline Status PlanWindow(const Node& n, const std::vector<int64_t>& in,
                         const std::vector<int64_t>& kernel, bool ceil_mode, Window* w) {
  const size_t r = in.size();
  w->in = in;
  w->kernel = kernel;
  w->stride = n.Ints("strides", std::vector<int64_t>(r, 1));
  w->dilation = n.Ints("dilations", std::vector<int64_t>(r, 1));
  std::vector<int64_t> pads = n.Ints("pads", std::vector<int64_t>(2 * r, 0));
  if (kernel.size() != r || w->stride.size() != r || w->dilation.size() != r ||
      pads.size() != 2 * r)
    return NodeError(n, Errc::kMismatch,
                     "kernel_shape, strides, dilations or pads do not match the " +
                         std::to_string(r) + " spatial axes");
  w->pad_begin.assign(pads.begin(), pads.begin() + static_cast<long>(r));
  w->pad_end.assign(pads.begin() + static_cast<long>(r), pads.end());
  const std::string auto_pad = n.String("auto_pad", "NOTSET");
  w->out.resize(r);
  for (size_t i = 0; i < r; ++i) {
    if (kernel[i] < 1 || w->stride[i] < 1 || w->dilation[i] < 1 || w->pad_begin[i] < 0 ||
        w->pad_end[i] < 0)
      return NodeError(n, Errc::kMismatch,
                       "kernel, strides and dilations must be positive, pads non-negative");
    const int64_t span = w->dilation[i] * (kernel[i] - 1) + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      w->out[i] = (in[i] + w->stride[i] - 1) / w->stride[i];
      int64_t total = std::max<int64_t>(0, (w->out[i] - 1) * w->stride[i] + span - in[i]);
      int64_t small = total / 2;
      w->pad_begin[i] = auto_pad == "SAME_UPPER" ? small : total - small;
      w->pad_end[i] = total - w->pad_begin[i];
      continue;
    }
    if (auto_pad == "VALID") {
      w->pad_begin[i] = w->pad_end[i] = 0;
    } else if (auto_pad != "NOTSET") {
      return NodeError(n, Errc::kUnsupported, "auto_pad '" + auto_pad + "'");
    }
    const int64_t padded = in[i] + w->pad_begin[i] + w->pad_end[i];
    if (padded < span)
      return NodeError(n, Errc::kMismatch,
                       "the window (" + std::to_string(span) +
                           ") is larger than the padded input (" + std::to_string(padded) + ")");
    if (ceil_mode) {
      w->out[i] = (padded - span + w->stride[i] - 1) / w->stride[i] + 1;
      // The last window must start inside the input or its left padding.
      if ((w->out[i] - 1) * w->stride[i] >= in[i] + w->pad_begin[i]) --w->out[i];
    } else {
      w->out[i] = (padded - span) / w->stride[i] + 1;
    }
  }
  return Status::Ok();
}

// The flat input offset of window element k for output position o (multi-indices), or false
// when it falls into the padding. pos receives the per-axis input coordinates.
inline bool WindowOffset(const Window& w, const std::vector<int64_t>& o,
                         const std::vector<int64_t>& k, std::vector<int64_t>& pos, int64_t* off) {
  int64_t flat = 0;
  for (size_t d = 0; d < w.rank(); ++d) {
    pos[d] = o[d] * w.stride[d] - w.pad_begin[d] + k[d] * w.dilation[d];
    if (pos[d] < 0 || pos[d] >= w.in[d]) return false;
    flat = flat * w.in[d] + pos[d];
  }
  *off = flat;
  return true;
}

// Advances a multi-index over extents; false after the last position.
inline bool NextIndex(std::vector<int64_t>& idx, const std::vector<int64_t>& extent) {
  for (size_t d = idx.size(); d-- > 0;) {
    if (++idx[d] < extent[d]) return true;
    idx[d] = 0;
  }
  return false;
}

}  // namespace edgeloop::runtime::kernels
