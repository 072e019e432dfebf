// MaxPool (with optional Indices output), AveragePool and GlobalAveragePool for any number of
// spatial axes: pads, strides, dilations (MaxPool), ceil_mode and count_include_pad.
#include <algorithm>
#include <limits>

#include "runtime/kernels/kernels.hpp"
#include "runtime/kernels/spatial.hpp"

namespace edgeloop::runtime::kernels {
namespace {

Status CheckPool(const Node& n) {
  EDGELOOP_RETURN_IF_ERROR(CheckArity(n, 1, 1));
  if (!n.Has("kernel_shape"))
    return NodeError(n, Errc::kFormat, "needs a 'kernel_shape' attribute");
  if (n.op_type == "AveragePool" && n.Has("dilations")) {
    for (int64_t d : n.Ints("dilations"))
      if (d != 1) return NodeError(n, Errc::kUnsupported, "dilated AveragePool");
  }
  if (n.Int("storage_order", 0) != 0 && n.outputs.size() > 1 && n.Ints("kernel_shape").size() != 2)
    return NodeError(n, Errc::kUnsupported, "column-major indices beyond 2-D");
  return Status::Ok();
}

Status PoolWindow(const Node& n, const Shape& x, Window* w) {
  if (x.size() < 3)
    return NodeError(n, Errc::kMismatch, "input must be [N, C, spatial...], got " + ShapeString(x));
  std::vector<int64_t> in(x.begin() + 2, x.end());
  return PlanWindow(n, in, n.Ints("kernel_shape"), n.Int("ceil_mode", 0) != 0, w);
}

Status InferPool(InferContext& c) {
  if (c.node.op_type == "MaxPool")
    EDGELOOP_RETURN_IF_ERROR(
        RequireType(c, 0, {DType::kFloat32, DType::kFloat64, DType::kUint8, DType::kInt8}));
  else
    EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32, DType::kFloat64}));
  Window w;
  EDGELOOP_RETURN_IF_ERROR(PoolWindow(c.node, c.in[0]->shape, &w));
  Shape out{c.in[0]->shape[0], c.in[0]->shape[1]};
  out.insert(out.end(), w.out.begin(), w.out.end());
  c.out = {TensorInfo{c.in[0]->dtype, out}};
  if (c.node.outputs.size() > 1) c.out.push_back(TensorInfo{DType::kInt64, out});
  return Status::Ok();
}

// 2-D max pooling without indices: plain loops over rows and columns, with the common
// unpadded 2x2 / stride-2 window spelled out.
template <typename T>
void MaxPool2d(const Window& w, int64_t planes, const T* __restrict x, T* __restrict y) {
  const int64_t ih = w.in[0], iw = w.in[1], oh = w.out[0], ow = w.out[1];
  const int64_t kh = w.kernel[0], kw = w.kernel[1], sh = w.stride[0], sw = w.stride[1];
  const int64_t dh = w.dilation[0], dw = w.dilation[1], ph = w.pad_begin[0], pw = w.pad_begin[1];
  const bool two_by_two = kh == 2 && kw == 2 && sh == 2 && sw == 2 && dh == 1 && dw == 1 &&
                          ph == 0 && pw == 0 && 2 * oh <= ih && 2 * ow <= iw;
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * ih * iw;
    T* yp = y + p * oh * ow;
    if (two_by_two) {
      for (int64_t oy = 0; oy < oh; ++oy) {
        const T* r0 = xp + 2 * oy * iw;
        const T* r1 = r0 + iw;
        T* out = yp + oy * ow;
        for (int64_t ox = 0; ox < ow; ++ox)
          out[ox] =
              std::max(std::max(r0[2 * ox], r0[2 * ox + 1]), std::max(r1[2 * ox], r1[2 * ox + 1]));
      }
      continue;
    }
    for (int64_t oy = 0; oy < oh; ++oy) {
      for (int64_t ox = 0; ox < ow; ++ox) {
        T best = std::numeric_limits<T>::lowest();
        for (int64_t ky = 0; ky < kh; ++ky) {
          const int64_t yy = oy * sh - ph + ky * dh;
          if (yy < 0 || yy >= ih) continue;
          for (int64_t kx = 0; kx < kw; ++kx) {
            const int64_t xx = ox * sw - pw + kx * dw;
            if (xx >= 0 && xx < iw) best = std::max(best, xp[yy * iw + xx]);
          }
        }
        yp[oy * ow + ox] = best;
      }
    }
  }
}

template <typename T>
void Pool(const Node& node, const Window& w, int64_t planes, const T* x, T* y, int64_t* indices) {
  const size_t r = w.rank();
  if (node.op_type == "MaxPool" && r == 2 && !indices) {
    MaxPool2d(w, planes, x, y);
    return;
  }
  const bool is_max = node.op_type == "MaxPool";
  const bool include_pad = node.Int("count_include_pad", 0) != 0;
  const bool col_major = node.Int("storage_order", 0) != 0;
  int64_t in_size = 1, out_size = 1, k_size = 1;
  for (size_t d = 0; d < r; ++d) {
    in_size *= w.in[d];
    out_size *= w.out[d];
    k_size *= w.kernel[d];
  }
  std::vector<int64_t> o(r), k(r), pos(r);
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * in_size;
    T* yp = y + p * out_size;
    std::fill(o.begin(), o.end(), 0);
    for (int64_t op = 0; op < out_size; ++op) {
      double sum = 0;
      T best = std::numeric_limits<T>::lowest();
      int64_t best_off = -1, count = 0, padded_count = 1;
      for (size_t d = 0; d < r; ++d) {
        int64_t start = o[d] * w.stride[d] - w.pad_begin[d];
        int64_t end = std::min(start + w.kernel[d], w.in[d] + w.pad_end[d]);
        padded_count *= end - start;
      }
      std::fill(k.begin(), k.end(), 0);
      for (int64_t kp = 0; kp < k_size; ++kp) {
        int64_t off = 0;
        const bool inside = WindowOffset(w, o, k, pos, &off);
        if (inside) {
          T v = xp[off];
          if (is_max) {
            if (best_off < 0 || v > best) {
              best = v;
              best_off = col_major && r == 2 ? pos[1] * w.in[0] + pos[0] : off;
            }
          } else {
            sum += static_cast<double>(v);
            ++count;
          }
        }
        NextIndex(k, w.kernel);
      }
      if (is_max) {
        yp[op] = best;
        if (indices) indices[p * out_size + op] = p * in_size + best_off;
      } else {
        int64_t div = include_pad ? padded_count : count;
        yp[op] = static_cast<T>(div > 0 ? sum / static_cast<double>(div) : 0.0);
      }
      NextIndex(o, w.out);
    }
  }
}

Status RunPool(RunContext& c) {
  Window w;
  EDGELOOP_RETURN_IF_ERROR(PoolWindow(c.node, c.in[0]->shape, &w));
  const int64_t planes = c.in[0]->shape[0] * c.in[0]->shape[1];
  int64_t* indices = c.out.size() > 1 && c.out[1] ? c.out[1]->as<int64_t>() : nullptr;
  switch (c.in[0]->dtype) {
    case DType::kFloat32:
      Pool(c.node, w, planes, c.in[0]->as<float>(), c.out[0]->as<float>(), indices);
      break;
    case DType::kFloat64:
      Pool(c.node, w, planes, c.in[0]->as<double>(), c.out[0]->as<double>(), indices);
      break;
    case DType::kUint8:
      Pool(c.node, w, planes, c.in[0]->as<uint8_t>(), c.out[0]->as<uint8_t>(), indices);
      break;
    case DType::kInt8:
      Pool(c.node, w, planes, c.in[0]->as<int8_t>(), c.out[0]->as<int8_t>(), indices);
      break;
    default:
      return NodeError(c.node, Errc::kUnsupported, "type");
  }
  return Status::Ok();
}

// --- GlobalAveragePool -------------------------------------------------------------------
Status CheckGlobal(const Node& n) {
  return CheckArity(n, 1, 1);
}

Status InferGlobal(InferContext& c) {
  EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32, DType::kFloat64}));
  const Shape& s = c.in[0]->shape;
  if (s.size() < 3) return c.Fail("input must be [N, C, spatial...]");
  Shape out(s.size(), 1);
  out[0] = s[0];
  out[1] = s[1];
  c.out = {TensorInfo{c.in[0]->dtype, out}};
  return Status::Ok();
}

template <typename T>
void GlobalAverage(const Tensor& x, Tensor& y) {
  const int64_t planes = x.shape[0] * x.shape[1];
  const int64_t n = planes == 0 ? 0 : x.size() / planes;
  for (int64_t p = 0; p < planes; ++p) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x.as<T>()[p * n + i]);
    y.as<T>()[p] = static_cast<T>(n ? s / static_cast<double>(n) : 0.0);
  }
}

Status RunGlobal(RunContext& c) {
  if (c.in[0]->dtype == DType::kFloat32)
    GlobalAverage<float>(*c.in[0], *c.out[0]);
  else
    GlobalAverage<double>(*c.in[0], *c.out[0]);
  return Status::Ok();
}

}  // namespace

const OpKernel kMaxPool{"MaxPool", CheckPool, InferPool, RunPool};
const OpKernel kAveragePool{"AveragePool", CheckPool, InferPool, RunPool};
const OpKernel kGlobalAveragePool{"GlobalAveragePool", CheckGlobal, InferGlobal, RunGlobal};

}  // namespace edgeloop::runtime::kernels
