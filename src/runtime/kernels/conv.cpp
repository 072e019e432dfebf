// Conv for any number of spatial axes, with pads, strides, dilations and groups (float32).
// Reference: a direct loop over outputs and the window. Fast: for each image and group, the
// window is unrolled into a column matrix (im2col, in scratch memory planned at load) and
// multiplied by the weights with one GEMM; a 1x1, stride-1, unpadded convolution needs no
// unrolling at all. Depthwise 2-D convolutions (one input and one output channel per group)
// run a direct kernel per channel over a padded copy of its plane. On the fast backend the
// planner may fold a residual Add (input 3, "edgeloop.fused_add") and the Relu after it into the
// layer: y = act(conv + input 3), computed as the outputs are written.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include "runtime/gemm.hpp"
#include "runtime/isa/kernels.hpp"
#include "runtime/kernels/conv_geometry.hpp"
#include "runtime/kernels/depthwise.hpp"
#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {
namespace {

bool IsPointwise(const ConvGeometry& g) {
  for (size_t i = 0; i < g.w.rank(); ++i)
    if (g.w.kernel[i] != 1 || g.w.stride[i] != 1 || g.w.pad_begin[i] != 0 || g.w.pad_end[i] != 0)
      return false;
  return true;
}

// Depthwise (kernels/depthwise.hpp): the padding of the phase planes is filled once, each
// channel rewrites their inside.
size_t DepthwiseScratch(const ConvGeometry& g) {
  return static_cast<size_t>(DepthwiseScratchElements(DepthwiseArgsOf(g))) * sizeof(float);
}

void DepthwiseConv(const ConvGeometry& g, const float* x, const float* w, const float* bias,
                   float lo, float hi, float* y, void* scratch) {
  const IsaKernels& isa = ActiveKernels();
  DepthwiseArgs a = DepthwiseArgsOf(g);
  a.lo = lo;
  a.hi = hi;
  float* padded = static_cast<float*>(scratch);
  float* wide = padded + a.sh * a.sw * a.plane;
  std::fill(padded, wide, 0.0f);
  const int64_t taps = a.kh * a.kw;
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t ch = 0; ch < g.m; ++ch)
      isa.depthwise_f32(a, x + (b * g.c + ch) * g.in_size, w + ch * taps, bias ? bias[ch] : 0.0f,
                        padded, wide, y + (b * g.m + ch) * g.out_size);
}

// 2-D with stride 1: every window row is a contiguous run of the padded input if outputs are
// computed on the padded width (the extra columns are dropped afterwards).
bool UsesShiftedRows(const ConvGeometry& g) {
  return g.w.rank() == 2 && g.w.stride[0] == 1 && g.w.stride[1] == 1 && !IsPointwise(g);
}

// Conv of one image's channel group through shifted rows of its zero-padded copy.
// y[i] = clamp(y[i] + r[i], lo, hi): a folded residual Add and its activation.
void AddClamp(float* __restrict y, const float* __restrict r, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) {
    float v = y[i] + r[i];
    v = lo > v ? lo : v;  // max and min that keep a NaN, which vectorise
    y[i] = hi < v ? hi : v;
  }
}

// res: the folded residual of this group's outputs (nullptr: none), added before lo and hi
// are applied.
void ShiftedRowsConv(const ConvGeometry& g, const float* xg, const float* wg, const float* bias,
                     float lo, float hi, const float* res, float* yg, void* scratch) {
  const int64_t ih = g.w.in[0], iw = g.w.in[1], oh = g.w.out[0], ow = g.w.out[1];
  const int64_t hp = ih + g.w.pad_begin[0] + g.w.pad_end[0],
                wp = iw + g.w.pad_begin[1] + g.w.pad_end[1];
  const int64_t kh = g.w.kernel[0], kw = g.w.kernel[1], dh = g.w.dilation[0], dw = g.w.dilation[1];
  const int64_t plane = hp * wp + wp;  // one spare row: the last window row reads past the end
  float* padded = static_cast<float*>(scratch);
  float* wide = padded + g.cg * plane;  // [mg, oh * wp]
  // The window pointers follow the floats, aligned for a pointer (Infer reserves 64 spare
  // bytes for it): an odd float count would leave them 4-byte aligned.
  const auto rows_at = reinterpret_cast<uintptr_t>(wide + g.mg * oh * wp);
  auto** rows = reinterpret_cast<const float**>((rows_at + alignof(const float*) - 1) &
                                                ~uintptr_t{alignof(const float*) - 1});
  // Each padded row is written once: zeros around the input row, the top and bottom pads
  // and the spare row whole.
  const int64_t pt = g.w.pad_begin[0], pl = g.w.pad_begin[1];
  for (int64_t ci = 0; ci < g.cg; ++ci) {
    float* p = padded + ci * plane;
    std::fill(p, p + pt * wp, 0.0f);
    for (int64_t y = 0; y < ih; ++y) {
      const float* src = xg + (ci * ih + y) * iw;
      float* row = p + (y + pt) * wp;
      for (int64_t x = 0; x < pl; ++x) row[x] = 0.0f;
      for (int64_t x = 0; x < iw; ++x) row[pl + x] = src[x];
      for (int64_t x = pl + iw; x < wp; ++x) row[x] = 0.0f;
    }
    std::fill(p + (pt + ih) * wp, p + plane, 0.0f);
  }
  for (int64_t ci = 0; ci < g.cg; ++ci)
    for (int64_t ky = 0; ky < kh; ++ky)
      for (int64_t kx = 0; kx < kw; ++kx)
        rows[(ci * kh + ky) * kw + kx] = padded + ci * plane + ky * dh * wp + kx * dw;
  const int64_t n = oh * wp;
  if (res) {
    // The sums as they are; the copy to the output adds the residual and clamps.
    const float inf = std::numeric_limits<float>::infinity();
    ConvGemmRows(g.mg, n, g.cg * g.k_size, wg, rows, bias, -inf, inf, wide);
    for (int64_t m = 0; m < g.mg; ++m)
      for (int64_t oy = 0; oy < oh; ++oy) {
        const float* src = wide + m * n + oy * wp;
        const float* r = res + (m * oh + oy) * ow;
        float* dst = yg + (m * oh + oy) * ow;
        for (int64_t ox = 0; ox < ow; ++ox) {
          float v = src[ox] + r[ox];
          v = lo > v ? lo : v;
          dst[ox] = hi < v ? hi : v;
        }
      }
    return;
  }
  ConvGemmRows(g.mg, n, g.cg * g.k_size, wg, rows, bias, lo, hi, wide);
  for (int64_t m = 0; m < g.mg; ++m)
    for (int64_t oy = 0; oy < oh; ++oy) {
      const float* src = wide + m * n + oy * wp;
      float* dst = yg + (m * oh + oy) * ow;
      for (int64_t ox = 0; ox < ow; ++ox) dst[ox] = src[ox];
    }
}

Status CheckConv(const Node& n) {
  return CheckArity(n, 2, 3);
}

Status InferConv(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32}));
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 1, {DType::kFloat32}));
  ConvGeometry g;
  EDGELOOP_RETURN_IF_ERROR(ConvGeometryOf(c.node, c.in[0]->shape, c.in[1]->shape, &g));
  if (c.in.size() > 2 && c.in[2] && c.in[2]->shape != Shape{g.m})
    return c.Fail("bias must have shape [" + std::to_string(g.m) + "]");
  Shape out{g.n, g.m};
  out.insert(out.end(), g.w.out.begin(), g.w.out.end());
  c.out = {TensorInfo{DType::kFloat32, out}};
  if (c.node.Int("edgeloop.fused_add", 0) &&
      (c.in.size() < 4 || !c.in[3] || c.in[3]->dtype != DType::kFloat32 || c.in[3]->shape != out))
    return c.Fail("the folded residual Add needs a float32 operand of the output's shape " +
                  ShapeString(out));
  if (c.backend == Backend::kFast && IsDepthwise(g)) {
    c.scratch_bytes = DepthwiseScratch(g);
  } else if (c.backend == Backend::kFast && UsesShiftedRows(g)) {
    const int64_t hp = g.w.in[0] + g.w.pad_begin[0] + g.w.pad_end[0];
    const int64_t wp = g.w.in[1] + g.w.pad_begin[1] + g.w.pad_end[1];
    c.scratch_bytes =
        static_cast<size_t>(g.cg * (hp * wp + wp) + g.mg * g.w.out[0] * wp) * sizeof(float) +
        static_cast<size_t>(g.cg * g.k_size) * sizeof(float*) + 64;
  } else if (c.backend == Backend::kFast && !IsPointwise(g)) {
    c.scratch_bytes = static_cast<size_t>(g.cg * g.k_size * g.out_size) * sizeof(float);
  }
  return Status::Ok();
}

void ReferenceConv(const ConvGeometry& g, const float* x, const float* w, const float* bias,
                   float* y) {
  const size_t r = g.w.rank();
  std::vector<int64_t> o(r), k(r), pos(r);
  for (int64_t b = 0; b < g.n; ++b) {
    for (int64_t m = 0; m < g.m; ++m) {
      const int64_t grp = m / g.mg;
      float* yp = y + (b * g.m + m) * g.out_size;
      std::fill(o.begin(), o.end(), 0);
      for (int64_t op = 0; op < g.out_size; ++op) {
        double acc = bias ? bias[m] : 0.0;
        for (int64_t ci = 0; ci < g.cg; ++ci) {
          const float* xp = x + (b * g.c + grp * g.cg + ci) * g.in_size;
          const float* wp = w + (m * g.cg + ci) * g.k_size;
          std::fill(k.begin(), k.end(), 0);
          for (int64_t kp = 0; kp < g.k_size; ++kp) {
            int64_t off;
            if (WindowOffset(g.w, o, k, pos, &off)) acc += static_cast<double>(xp[off]) * wp[kp];
            NextIndex(k, g.w.kernel);
          }
        }
        yp[op] = static_cast<float>(acc);
        NextIndex(o, g.w.out);
      }
    }
  }
}

// Unrolls the windows of one image's channel group into col[cg * k_size, out_size].
void Im2Col(const ConvGeometry& g, const float* x, float* col) {
  const size_t r = g.w.rank();
  if (r == 2) {
    const int64_t ih = g.w.in[0], iw = g.w.in[1], oh = g.w.out[0], ow = g.w.out[1];
    const int64_t kh = g.w.kernel[0], kw = g.w.kernel[1];
    const int64_t sh = g.w.stride[0], sw = g.w.stride[1], dh = g.w.dilation[0],
                  dw = g.w.dilation[1];
    const int64_t ph = g.w.pad_begin[0], pw = g.w.pad_begin[1];
    for (int64_t ci = 0; ci < g.cg; ++ci) {
      const float* xp = x + ci * ih * iw;
      for (int64_t ky = 0; ky < kh; ++ky) {
        for (int64_t kx = 0; kx < kw; ++kx) {
          float* row = col + ((ci * kh + ky) * kw + kx) * oh * ow;
          for (int64_t oy = 0; oy < oh; ++oy) {
            const int64_t y = oy * sh - ph + ky * dh;
            float* dst = row + oy * ow;
            if (y < 0 || y >= ih) {
              std::fill(dst, dst + ow, 0.0f);
              continue;
            }
            const float* src = xp + y * iw;
            if (sw == 1) {
              // Contiguous run: zero the left and right borders, copy the middle.
              const int64_t x0 = -pw + kx * dw;
              int64_t lo = std::clamp<int64_t>(-x0, 0, ow),
                      hi = std::clamp<int64_t>(iw - x0, 0, ow);
              hi = std::max(hi, lo);
              // Rows are short (tens of values): plain loops beat memcpy/memset calls.
              for (int64_t i = 0; i < lo; ++i) dst[i] = 0.0f;
              for (int64_t i = lo; i < hi; ++i) dst[i] = src[x0 + i];
              for (int64_t i = hi; i < ow; ++i) dst[i] = 0.0f;
            } else {
              for (int64_t ox = 0; ox < ow; ++ox) {
                const int64_t xx = ox * sw - pw + kx * dw;
                dst[ox] = (xx < 0 || xx >= iw) ? 0.0f : src[xx];
              }
            }
          }
        }
      }
    }
    return;
  }
  // Any rank: the same unrolling with multi-indices.
  std::vector<int64_t> k(r), o(r), pos(r);
  for (int64_t ci = 0; ci < g.cg; ++ci) {
    const float* xp = x + ci * g.in_size;
    std::fill(k.begin(), k.end(), 0);
    for (int64_t kp = 0; kp < g.k_size; ++kp) {
      float* row = col + (ci * g.k_size + kp) * g.out_size;
      std::fill(o.begin(), o.end(), 0);
      for (int64_t op = 0; op < g.out_size; ++op) {
        int64_t off;
        row[op] = WindowOffset(g.w, o, k, pos, &off) ? xp[off] : 0.0f;
        NextIndex(o, g.w.out);
      }
      NextIndex(k, g.w.kernel);
    }
  }
}

Status RunConv(RunContext& c) {
  ConvGeometry g;
  EDGELOOP_RETURN_IF_ERROR(ConvGeometryOf(c.node, c.in[0]->shape, c.in[1]->shape, &g));
  const float* x = c.in[0]->as<float>();
  const float* w = c.in[1]->as<float>();
  const float* bias = c.in.size() > 2 && c.in[2] ? c.in[2]->as<float>() : nullptr;
  float* y = c.out[0]->as<float>();
  if (c.backend == Backend::kReference) {
    ReferenceConv(g, x, w, bias, y);
    return Status::Ok();
  }
  float lo, hi;
  FusedActivationBounds(c.node, &lo, &hi);
  const float* res = c.node.Int("edgeloop.fused_add", 0) && c.in.size() > 3 && c.in[3]
                         ? c.in[3]->as<float>()
                         : nullptr;
  // With a residual, the paths that write y directly apply lo and hi after adding it.
  const float inf = std::numeric_limits<float>::infinity();
  if (IsDepthwise(g)) {
    DepthwiseConv(g, x, w, bias, res ? -inf : lo, res ? inf : hi, y, c.scratch);
    if (res) AddClamp(y, res, g.n * g.m * g.out_size, lo, hi);
    return Status::Ok();
  }
  const bool pointwise = IsPointwise(g), shifted = UsesShiftedRows(g);
  float* col = static_cast<float*>(c.scratch);
  const int64_t kdim = g.cg * g.k_size;
  for (int64_t b = 0; b < g.n; ++b) {
    for (int64_t grp = 0; grp < g.group; ++grp) {
      const float* xg = x + (b * g.c + grp * g.cg) * g.in_size;
      const float* wg = w + grp * g.mg * kdim;
      const float* bg = bias ? bias + grp * g.mg : nullptr;
      float* yg = y + (b * g.m + grp * g.mg) * g.out_size;
      const float* rg = res ? res + (b * g.m + grp * g.mg) * g.out_size : nullptr;
      if (shifted) {
        ShiftedRowsConv(g, xg, wg, bg, lo, hi, rg, yg, c.scratch);
        continue;
      }
      const float* cols = xg;
      if (!pointwise) {
        Im2Col(g, xg, col);
        cols = col;
      }
      ConvGemm(g.mg, g.out_size, kdim, wg, cols, bg, rg ? -inf : lo, rg ? inf : hi, yg);
      if (rg) AddClamp(yg, rg, g.mg * g.out_size, lo, hi);
    }
  }
  return Status::Ok();
}

}  // namespace

const OpKernel kConv{"Conv", CheckConv, InferConv, RunConv};

}  // namespace edgeloop::runtime::kernels
