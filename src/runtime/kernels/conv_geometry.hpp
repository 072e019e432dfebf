// The geometry of a convolution (float Conv and QLinearConv): batch, channels, groups and the
// window over the spatial axes, checked against the input and weight shapes.
#pragma once

#include <string>
#include <vector>

#include "runtime/kernels/spatial.hpp"

namespace edgeloop::runtime::kernels {

struct ConvGeometry {
  int64_t n = 0, c = 0, m = 0, group = 1, cg = 0, mg = 0;
  Window w;
  int64_t in_size = 1, out_size = 1, k_size = 1;  // products over spatial axes
};

inline Status ConvGeometryOf(const Node& node, const Shape& x, const Shape& wt, ConvGeometry* g) {
  if (x.size() < 3 || wt.size() != x.size())
    return NodeError(node, Errc::kMismatch,
                     "input " + ShapeString(x) + " and weights " + ShapeString(wt) +
                         " must both be [N, C, spatial...] / [M, C/group, kernel...]");
  g->n = x[0];
  g->c = x[1];
  g->m = wt[0];
  g->group = node.Int("group", 1);
  if (g->group < 1 || g->c % g->group != 0 || g->m % g->group != 0)
    return NodeError(node, Errc::kMismatch,
                     "group " + std::to_string(g->group) + " does not divide the channels");
  g->cg = g->c / g->group;
  g->mg = g->m / g->group;
  if (wt[1] != g->cg)
    return NodeError(node, Errc::kMismatch,
                     "weights expect " + std::to_string(wt[1] * g->group) +
                         " input channels, the input has " + std::to_string(g->c));
  std::vector<int64_t> in(x.begin() + 2, x.end()), kernel(wt.begin() + 2, wt.end());
  auto ks = node.Ints("kernel_shape", kernel);
  if (ks != kernel)
    return NodeError(node, Errc::kMismatch, "kernel_shape does not match the weights");
  EDGELOOP_RETURN_IF_ERROR(PlanWindow(node, in, kernel, false, &g->w));
  for (size_t i = 0; i < in.size(); ++i) {
    g->in_size *= in[i];
    g->out_size *= g->w.out[i];
    g->k_size *= kernel[i];
  }
  return Status::Ok();
}

}  // namespace edgeloop::runtime::kernels
