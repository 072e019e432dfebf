// ConvTranspose (the gradient of Conv, used by decoders and upsampling heads), any number of
// spatial axes: X [N, C, D1...], W [C, M/group, k1...], optional B [M]. Each input element
// scatters x * w into the output window it maps to: out = in * stride + k * dilation - pad.
// Output size per axis: stride * (in - 1) + output_padding + (k - 1) * dilation + 1 - pads,
// or `output_shape`, with the padding then derived as ONNX specifies (SAME_UPPER puts the
// odd pixel at the end). One implementation serves both backends.
#include <algorithm>
#include <cstring>

#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {
namespace {

struct Geometry {
  int64_t n = 0, c = 0, m = 0, group = 1;
  Shape in, kernel, out, stride, dilation, pad_begin;
};

// The geometry, or an error naming what is wrong.
Result<Geometry> Plan(const Node& node, const Shape& x, const Shape& w) {
  if (x.size() < 3 || w.size() != x.size())
    return NodeError(node, Errc::kMismatch, "X must be [N, C, D...] and W [C, M/group, k...]");
  Geometry g;
  const size_t sp = x.size() - 2;
  g.n = x[0];
  g.c = x[1];
  g.group = node.Int("group", 1);
  if (g.group < 1 || g.c % g.group != 0 || w[0] != g.c)
    return NodeError(node, Errc::kMismatch, "W's first axis must be C, divisible by group");
  g.m = w[1] * g.group;
  g.in.assign(x.begin() + 2, x.end());
  g.kernel.assign(w.begin() + 2, w.end());
  if (node.Has("kernel_shape") && node.Ints("kernel_shape") != g.kernel)
    return NodeError(node, Errc::kMismatch, "kernel_shape does not match W");
  auto per_axis = [&](const char* name, int64_t dflt) -> Result<Shape> {
    Shape v = node.Ints(name, Shape(sp, dflt));
    if (v.size() != sp)
      return NodeError(node, Errc::kMismatch,
                       std::string(name) + " needs one value per spatial axis");
    return v;
  };
  EDGELOOP_ASSIGN_OR_RETURN(g.stride, per_axis("strides", 1));
  EDGELOOP_ASSIGN_OR_RETURN(g.dilation, per_axis("dilations", 1));
  EDGELOOP_ASSIGN_OR_RETURN(Shape out_pad, per_axis("output_padding", 0));
  Shape pads = node.Ints("pads", Shape(2 * sp, 0));
  if (pads.size() != 2 * sp) return NodeError(node, Errc::kMismatch, "pads needs 2 per axis");
  for (size_t i = 0; i < sp; ++i)
    if (g.stride[i] < 1 || g.dilation[i] < 1 || g.kernel[i] < 1 || out_pad[i] < 0 || pads[i] < 0 ||
        pads[sp + i] < 0 || g.in[i] < 0)
      return NodeError(node, Errc::kMismatch, "strides, dilations and kernel must be positive");
  const std::string auto_pad = node.String("auto_pad", "NOTSET");
  Shape wanted = node.Ints("output_shape");
  if (!wanted.empty() && wanted.size() == sp + 2) wanted.erase(wanted.begin(), wanted.begin() + 2);
  if (wanted.empty() && (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER"))
    for (size_t i = 0; i < sp; ++i) wanted.push_back(g.in[i] * g.stride[i]);
  if (!wanted.empty() && wanted.size() != sp)
    return NodeError(node, Errc::kMismatch, "output_shape needs one value per spatial axis");
  g.out.resize(sp);
  g.pad_begin.resize(sp);
  for (size_t i = 0; i < sp; ++i) {
    const int64_t full =
        g.stride[i] * (g.in[i] - 1) + out_pad[i] + (g.kernel[i] - 1) * g.dilation[i] + 1;
    if (!wanted.empty()) {
      const int64_t total = full - wanted[i];
      g.out[i] = wanted[i];
      // Floor division, as ONNX's reference computes it: a negative total (output_shape
      // larger than the full size) pads the end.
      const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
      g.pad_begin[i] = auto_pad == "SAME_UPPER" ? half : total - half;
    } else {
      g.out[i] = full - pads[i] - pads[sp + i];
      g.pad_begin[i] = pads[i];
    }
    if (g.out[i] < 1 || g.out[i] > (int64_t{1} << 24))
      return NodeError(node, Errc::kMismatch,
                       "output size " + std::to_string(g.out[i]) + " on axis " + std::to_string(i) +
                           " is invalid");
  }
  return g;
}

Status CheckConvTranspose(const Node& n) {
  EDGELOOP_RETURN_IF_ERROR(CheckArity(n, 2, 3));
  const std::string auto_pad = n.String("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER" &&
      auto_pad != "VALID")
    return NodeError(n, Errc::kFormat, "auto_pad '" + auto_pad + "' is not an ONNX value");
  return Status::Ok();
}

Status InferConvTranspose(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32}));
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 1, {DType::kFloat32}));
  EDGELOOP_ASSIGN_OR_RETURN(Geometry g, Plan(c.node, c.in[0]->shape, c.in[1]->shape));
  if (c.in.size() > 2 && c.in[2] != nullptr &&
      (c.in[2]->dtype != DType::kFloat32 || c.in[2]->shape != Shape{g.m}))
    return c.Fail("B must be float32 [" + std::to_string(g.m) + "]");
  Shape out = {g.n, g.m};
  out.insert(out.end(), g.out.begin(), g.out.end());
  c.out = {TensorInfo{DType::kFloat32, out}};
  return Status::Ok();
}

Status RunConvTranspose(RunContext& c) {
  EDGELOOP_ASSIGN_OR_RETURN(Geometry g, Plan(c.node, c.in[0]->shape, c.in[1]->shape));
  const float* x = c.in[0]->as<float>();
  const float* w = c.in[1]->as<float>();
  const float* b = c.in.size() > 2 && c.in[2] != nullptr ? c.in[2]->as<float>() : nullptr;
  float* y = c.out[0]->as<float>();
  const size_t sp = g.in.size();
  int64_t in_size = 1, out_size = 1, k_size = 1;
  for (size_t i = 0; i < sp; ++i) {
    in_size *= g.in[i];
    out_size *= g.out[i];
    k_size *= g.kernel[i];
  }
  const int64_t cg = g.c / g.group, mg = g.m / g.group;
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t m = 0; m < g.m; ++m)
      std::fill(y + (n * g.m + m) * out_size, y + (n * g.m + m + 1) * out_size, b ? b[m] : 0.0f);
  // Row-major counters over the input and kernel positions (no allocation: at most 8 axes).
  if (sp > 8) return NodeError(c.node, Errc::kUnsupported, "more than 8 spatial axes");
  int64_t ip[8], kp[8];
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t gi = 0; gi < g.group; ++gi)
      for (int64_t ci = 0; ci < cg; ++ci) {
        const int64_t cin = gi * cg + ci;
        const float* xc = x + (n * g.c + cin) * in_size;
        std::fill(ip, ip + sp, 0);
        for (int64_t i = 0; i < in_size; ++i) {
          const float xv = xc[i];
          std::fill(kp, kp + sp, 0);
          for (int64_t k = 0; k < k_size; ++k) {
            int64_t off = 0;
            bool inside = true;
            for (size_t d = 0; d < sp && inside; ++d) {
              const int64_t o = ip[d] * g.stride[d] + kp[d] * g.dilation[d] - g.pad_begin[d];
              inside = o >= 0 && o < g.out[d];
              off = off * g.out[d] + o;
            }
            if (inside)
              for (int64_t mi = 0; mi < mg; ++mi) {
                const int64_t mo = gi * mg + mi;
                y[(n * g.m + mo) * out_size + off] += xv * w[(cin * mg + mi) * k_size + k];
              }
            for (size_t d = sp; d-- > 0;)  // next kernel position
              if (++kp[d] < g.kernel[d])
                break;
              else
                kp[d] = 0;
          }
          for (size_t d = sp; d-- > 0;)  // next input position
            if (++ip[d] < g.in[d])
              break;
            else
              ip[d] = 0;
        }
      }
  return Status::Ok();
}

}  // namespace

const OpKernel kConvTranspose{"ConvTranspose", CheckConvTranspose, InferConvTranspose,
                              RunConvTranspose};

}  // namespace edgeloop::runtime::kernels
