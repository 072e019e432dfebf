// Resize (opset 10+) and Upsample (opset 7, 9): resampling by nearest, linear or cubic
// interpolation over any axes, with ONNX's coordinate transformation modes. The output
// shape follows the scales or sizes, which must be known at planning.
//
// Interpolation is separable: for every axis, Run first tabulates, per output position, the
// input positions it reads and their weights (1 for nearest, 2 for linear, 4 for cubic) in
// scratch memory; each output element is then the weighted sum over the product of its
// axes' taps. Axes the op leaves alone reduce to one tap of weight 1.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/kernels/layout.hpp"

namespace edgeloop::runtime::kernels {
namespace {

enum class Interp { kNearest, kLinear, kCubic };
enum class Coord {
  kHalfPixel,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelForNn,
  kTfCropAndResize
};
enum class Rounding { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };

struct ResizeParams {
  Interp interp = Interp::kNearest;
  Coord coord = Coord::kHalfPixel;
  Rounding rounding = Rounding::kRoundPreferFloor;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0;
};

// The legacy ops (Upsample, Resize-10) sample asymmetrically and round nearest down.
bool IsLegacy(const Node& n) {
  return n.op_type == "Upsample" || n.opset < 11;
}

Status ParseParams(const Node& n, ResizeParams* p) {
  const std::string_view mode = StringAttr(n, "mode", "nearest");
  if (mode == "nearest")
    p->interp = Interp::kNearest;
  else if (mode == "linear" || mode == "bilinear")
    p->interp = Interp::kLinear;
  else if (mode == "cubic" && !IsLegacy(n))
    p->interp = Interp::kCubic;
  else
    return NodeError(n, Errc::kUnsupported, "mode '" + std::string(mode) + "' is not supported");
  if (IsLegacy(n)) {
    p->coord = Coord::kAsymmetric;
    p->rounding = Rounding::kFloor;
    return Status::Ok();
  }
  const std::string_view coord = StringAttr(n, "coordinate_transformation_mode", "half_pixel");
  if (coord == "half_pixel")
    p->coord = Coord::kHalfPixel;
  else if (coord == "pytorch_half_pixel")
    p->coord = Coord::kPytorchHalfPixel;
  else if (coord == "align_corners")
    p->coord = Coord::kAlignCorners;
  else if (coord == "asymmetric")
    p->coord = Coord::kAsymmetric;
  else if (coord == "tf_half_pixel_for_nn")
    p->coord = Coord::kTfHalfPixelForNn;
  else if (coord == "tf_crop_and_resize")
    p->coord = Coord::kTfCropAndResize;
  else
    return NodeError(
        n, Errc::kUnsupported,
        "coordinate_transformation_mode '" + std::string(coord) + "' is not supported");
  const std::string_view nearest = StringAttr(n, "nearest_mode", "round_prefer_floor");
  if (nearest == "round_prefer_floor")
    p->rounding = Rounding::kRoundPreferFloor;
  else if (nearest == "round_prefer_ceil")
    p->rounding = Rounding::kRoundPreferCeil;
  else if (nearest == "floor")
    p->rounding = Rounding::kFloor;
  else if (nearest == "ceil")
    p->rounding = Rounding::kCeil;
  else
    return NodeError(n, Errc::kUnsupported,
                     "nearest_mode '" + std::string(nearest) + "' is not supported");
  p->cubic_a = n.Float("cubic_coeff_a", -0.75f);
  p->exclude_outside = n.Int("exclude_outside", 0) != 0;
  p->extrapolation = n.Float("extrapolation_value", 0.0f);
  return Status::Ok();
}

Status CheckResize(const Node& n) {
  ResizeParams p;
  EDGELOOP_RETURN_IF_ERROR(ParseParams(n, &p));
  if (n.Int("antialias", 0) != 0)
    return NodeError(n, Errc::kUnsupported, "antialias is not supported");
  if (n.Has("axes") || n.String("keep_aspect_ratio_policy", "stretch") != "stretch")
    return NodeError(n, Errc::kUnsupported, "axes and keep_aspect_ratio_policy are not supported");
  return n.opset < 11 ? CheckArity(n, 2, 2) : CheckArity(n, 1, 4);
}

Status CheckUpsample(const Node& n) {
  if (n.opset < 7)
    return NodeError(n, Errc::kUnsupported, "Upsample before opset 7 is not supported");
  ResizeParams p;
  EDGELOOP_RETURN_IF_ERROR(ParseParams(n, &p));
  if (n.opset < 9) {
    if (!n.Has("scales")) return NodeError(n, Errc::kFormat, "needs a 'scales' attribute");
    return CheckArity(n, 1, 1);
  }
  return CheckArity(n, 2, 2);
}

// Where the op's scales, sizes and roi come from: attribute or input tensors (nullptr when
// omitted or empty).
struct ResizeInputs {
  const float* scales = nullptr;
  int64_t num_scales = 0;
  const Tensor* sizes = nullptr;
  const Tensor* roi = nullptr;
};

// Per axis: the scale that maps output to input coordinates and the output length.
Status ResolveResize(const Node& n, const ResizeParams& p, const ResizeInputs& in, const Shape& x,
                     double* scale, int64_t* out) {
  const size_t r = x.size();
  auto roi = [&](size_t d, bool end) -> double {
    if (!in.roi || in.roi->size() != static_cast<int64_t>(2 * r)) return end ? 1.0 : 0.0;
    const size_t i = end ? r + d : d;
    return in.roi->dtype == DType::kFloat64 ? in.roi->as<double>()[i] : in.roi->as<float>()[i];
  };
  if (in.num_scales > 0 && in.sizes)
    return NodeError(n, Errc::kMismatch, "give scales or sizes, not both");
  if (in.num_scales > 0) {
    if (in.num_scales != static_cast<int64_t>(r))
      return NodeError(n, Errc::kMismatch,
                       std::to_string(in.num_scales) + " scales for rank " + std::to_string(r));
    for (size_t d = 0; d < r; ++d) {
      const double s = in.scales[d];
      if (!(s > 0) || !std::isfinite(s))
        return NodeError(n, Errc::kMismatch, "scale " + std::to_string(s) + " is not positive");
      double len =
          std::floor(static_cast<double>(x[d]) * s *
                     (p.coord == Coord::kTfCropAndResize ? roi(d, true) - roi(d, false) : 1.0));
      if (!(len >= 0))
        return NodeError(n, Errc::kMismatch,
                         "scale " + std::to_string(s) + " gives an invalid output length");
      if (len > static_cast<double>(kMaxDim))
        return NodeError(n, Errc::kResourceExhausted,
                         "scale " + std::to_string(s) + " gives an output axis of more than " +
                             std::to_string(kMaxDim) + " elements");
      scale[d] = s;
      out[d] = static_cast<int64_t>(len);
    }
    return Status::Ok();
  }
  if (!in.sizes) return NodeError(n, Errc::kMismatch, "needs scales or sizes");
  if (in.sizes->size() != static_cast<int64_t>(r))
    return NodeError(n, Errc::kMismatch,
                     std::to_string(in.sizes->size()) + " sizes for rank " + std::to_string(r));
  for (size_t d = 0; d < r; ++d) {
    const int64_t len = IntAt(*in.sizes, static_cast<int64_t>(d));
    if (len < 0)
      return NodeError(n, Errc::kMismatch, "size " + std::to_string(len) + " is negative");
    if (len > kMaxDim)
      return NodeError(n, Errc::kResourceExhausted,
                       "size " + std::to_string(len) + " is more than " + std::to_string(kMaxDim));
    if (x[d] == 0 && len > 0)
      return NodeError(n, Errc::kMismatch, "cannot resize an empty axis to " + std::to_string(len));
    scale[d] = x[d] > 0 ? static_cast<double>(len) / static_cast<double>(x[d]) : 1.0;
    out[d] = len;
  }
  return Status::Ok();
}

size_t TapsPerPosition(Interp i) {
  return i == Interp::kNearest ? 1 : i == Interp::kLinear ? 2 : 4;
}

struct Tap {
  int64_t index;  // input position; -1 in a position's first tap: outside the crop
  double weight;
};

// Fills taps[x * T + t] for every output position x of one axis; returns how many taps per
// position remain after dropping those of weight 0 where every position has one tap of 1.
size_t TabulateAxis(const ResizeParams& p, int64_t in_len, int64_t out_len, double scale,
                    double roi_start, double roi_end, Tap* taps) {
  const size_t T = TapsPerPosition(p.interp);
  const double in_f = static_cast<double>(in_len);
  const double out_f = scale * in_f;  // the length ONNX's reference uses: not rounded
  for (int64_t x = 0; x < out_len; ++x) {
    const double xr = static_cast<double>(x);
    double xo = 0;
    switch (p.coord) {
      case Coord::kHalfPixel:
        xo = (xr + 0.5) / scale - 0.5;
        break;
      case Coord::kPytorchHalfPixel:
        xo = out_len > 1 ? (xr + 0.5) / scale - 0.5 : 0.0;
        break;
      case Coord::kAlignCorners:
        xo = out_f == 1 ? 0.0 : xr * (in_f - 1) / (out_f - 1);
        break;
      case Coord::kAsymmetric:
        xo = xr / scale;
        break;
      case Coord::kTfHalfPixelForNn:
        xo = (xr + 0.5) / scale;
        break;
      case Coord::kTfCropAndResize:
        xo = out_f == 1 ? (roi_end - roi_start) * (in_f - 1) / 2
                        : xr * (roi_end - roi_start) * (in_f - 1) / (out_f - 1);
        xo += roi_start * (in_f - 1);
        break;
    }
    Tap* row = taps + static_cast<size_t>(x) * T;
    for (size_t t = 0; t < T; ++t) row[t] = {0, 0};
    if (p.coord == Coord::kTfCropAndResize && !(xo >= 0 && xo <= in_f - 1)) {
      row[0].index = -1;
      continue;
    }
    xo = std::clamp(xo, -2.0, in_f + 1);  // keeps the integer conversions below defined
    const double left = std::floor(xo), frac = xo - left;
    const int64_t li = static_cast<int64_t>(left);
    auto clamp = [&](int64_t i) { return std::clamp<int64_t>(i, 0, in_len - 1); };
    if (p.interp == Interp::kNearest) {
      int64_t i = li;
      if (frac > 0) {
        switch (p.rounding) {
          case Rounding::kRoundPreferFloor:
            i = frac <= 0.5 ? li : li + 1;
            break;
          case Rounding::kRoundPreferCeil:
            i = frac < 0.5 ? li : li + 1;
            break;
          case Rounding::kFloor:
            break;
          case Rounding::kCeil:
            i = li + 1;
            break;
        }
      }
      row[0] = {clamp(i), 1.0};
    } else if (p.interp == Interp::kLinear) {
      row[0] = {clamp(li), 1 - frac};
      row[1] = {clamp(li + 1), frac};
    } else {
      const double A = p.cubic_a, s = frac, u = 1 - frac;
      const double w[4] = {((A * (s + 1) - 5 * A) * (s + 1) + 8 * A) * (s + 1) - 4 * A,
                           ((A + 2) * s - (A + 3)) * s * s + 1, ((A + 2) * u - (A + 3)) * u * u + 1,
                           ((A * (u + 1) - 5 * A) * (u + 1) + 8 * A) * (u + 1) - 4 * A};
      double sum = 0;
      for (size_t t = 0; t < 4; ++t) {
        const int64_t i = li - 1 + static_cast<int64_t>(t);
        const bool outside = i < 0 || i >= in_len;
        row[t] = {clamp(i), p.exclude_outside && outside ? 0.0 : w[t]};
        sum += row[t].weight;
      }
      if (p.exclude_outside && sum != 0)
        for (size_t t = 0; t < 4; ++t) row[t].weight /= sum;
    }
  }
  if (T == 1) return 1;
  // Compact to one tap when every position reads exactly one input with weight 1.
  for (int64_t x = 0; x < out_len; ++x) {
    const Tap* row = taps + static_cast<size_t>(x) * T;
    size_t ones = 0, zeros = 0;
    for (size_t t = 0; t < T; ++t) {
      ones += row[t].weight == 1.0 && row[t].index >= 0;
      zeros += row[t].weight == 0.0;
    }
    if (ones != 1 || zeros != T - 1 || row[0].index < 0) return T;
  }
  for (int64_t x = 0; x < out_len; ++x) {
    const Tap* row = taps + static_cast<size_t>(x) * T;
    Tap one = row[0];
    for (size_t t = 0; t < T; ++t)
      if (row[t].weight == 1.0) one = row[t];
    taps[x] = one;
  }
  return 1;
}

Result<ResizeInputs> PlanningInputs(InferContext& c, const ResizeParams& p) {
  ResizeInputs in;
  const Node& n = c.node;
  if (n.op_type == "Upsample" && n.opset < 9) {
    const auto& f = n.attrs.at("scales").floats;
    in.scales = f.data();
    in.num_scales = static_cast<int64_t>(f.size());
    return in;
  }
  const size_t si = IsLegacy(n) ? 1 : 2;
  if (si < c.in.size() && c.in[si] && NumElements(c.in[si]->shape) > 0) {
    if (c.in[si]->dtype != DType::kFloat32) return c.Fail("scales must be float32");
    EDGELOOP_ASSIGN_OR_RETURN(const Tensor* s, PlanningValue(c, si, "scales"));
    in.scales = s->as<float>();
    in.num_scales = s->size();
  }
  if (!IsLegacy(n) && c.in.size() > 3 && c.in[3] && NumElements(c.in[3]->shape) > 0) {
    if (!IsIndexType(c.in[3]->dtype)) return c.Fail("sizes must be int64");
    EDGELOOP_ASSIGN_OR_RETURN(in.sizes, PlanningValue(c, 3, "sizes"));
  }
  if (!IsLegacy(n) && p.coord == Coord::kTfCropAndResize && c.in.size() > 1 && c.in[1]) {
    if (c.in[1]->dtype != DType::kFloat32 && c.in[1]->dtype != DType::kFloat64)
      return c.Fail("roi must be float32 or float64");
    EDGELOOP_ASSIGN_OR_RETURN(in.roi, PlanningValue(c, 1, "roi"));
  }
  return in;
}

ResizeInputs RunInputs(const RunContext& c, const ResizeParams& p) {
  ResizeInputs in;
  const Node& n = c.node;
  if (n.op_type == "Upsample" && n.opset < 9) {
    const auto& f = n.attrs.at("scales").floats;
    in.scales = f.data();
    in.num_scales = static_cast<int64_t>(f.size());
    return in;
  }
  const size_t si = IsLegacy(n) ? 1 : 2;
  if (si < c.in.size() && c.in[si] && c.in[si]->size() > 0) {
    in.scales = c.in[si]->as<float>();
    in.num_scales = c.in[si]->size();
  }
  if (!IsLegacy(n) && c.in.size() > 3 && c.in[3] && c.in[3]->size() > 0) in.sizes = c.in[3];
  if (!IsLegacy(n) && p.coord == Coord::kTfCropAndResize && c.in.size() > 1) in.roi = c.in[1];
  return in;
}

Status InferResize(InferContext& c) {
  ResizeParams p;
  EDGELOOP_RETURN_IF_ERROR(ParseParams(c.node, &p));
  const Shape& x = c.in[0]->shape;
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, x.size()));
  if (p.interp != Interp::kNearest || p.coord == Coord::kTfCropAndResize)
    EDGELOOP_RETURN_IF_ERROR(RequireType(c, 0, {DType::kFloat32, DType::kFloat64}));
  EDGELOOP_ASSIGN_OR_RETURN(ResizeInputs in, PlanningInputs(c, p));
  std::array<double, kMaxRank> scale;
  DimArray out;
  EDGELOOP_RETURN_IF_ERROR(ResolveResize(c.node, p, in, x, scale.data(), out.data()));
  Shape shape(out.begin(), out.begin() + x.size());
  c.out = {TensorInfo{c.in[0]->dtype, shape}};
  size_t taps = 0;
  if (NumElements(shape) > 0)
    for (int64_t len : shape) taps += static_cast<size_t>(len) * TapsPerPosition(p.interp);
  c.scratch_bytes = taps * sizeof(Tap);
  return Status::Ok();
}

template <typename T>
void Interpolate(const Tensor& x, Tensor& y, const ResizeParams& p, Tap* const* table,
                 const size_t* taps) {
  const size_t r = x.shape.size();
  DimArray in_stride, idx{};
  int64_t s = 1;
  for (size_t d = r; d-- > 0;) {
    in_stride[d] = s;
    s *= x.shape[d];
  }
  size_t combos = 1;
  for (size_t d = 0; d < r; ++d) combos *= taps[d];
  const T* src = x.as<T>();
  T* dst = y.as<T>();
  for (int64_t o = 0, n = y.size(); o < n; ++o) {
    bool outside = false;
    for (size_t d = 0; d < r; ++d)
      outside |= table[d][static_cast<size_t>(idx[d]) * taps[d]].index < 0;
    if (outside) {
      dst[o] = static_cast<T>(p.extrapolation);
    } else if (combos == 1) {
      int64_t off = 0;
      for (size_t d = 0; d < r; ++d) off += table[d][idx[d]].index * in_stride[d];
      dst[o] = src[off];
    } else {
      double acc = 0;
      for (size_t k = 0; k < combos; ++k) {
        size_t rest = k;
        int64_t off = 0;
        double w = 1;
        for (size_t d = 0; d < r; ++d) {
          const size_t t = rest % taps[d];
          rest /= taps[d];
          const Tap& tap = table[d][static_cast<size_t>(idx[d]) * taps[d] + t];
          off += tap.index * in_stride[d];
          w *= tap.weight;
        }
        acc += w * static_cast<double>(src[off]);
      }
      dst[o] = static_cast<T>(acc);
    }
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < y.shape[d]) break;
      idx[d] = 0;
    }
  }
}

// Nearest for any element type: a gather of whole elements.
void CopyNearest(const Tensor& x, Tensor& y, Tap* const* table) {
  const size_t r = x.shape.size(), es = DTypeSize(x.dtype);
  DimArray in_stride, idx{};
  int64_t s = 1;
  for (size_t d = r; d-- > 0;) {
    in_stride[d] = s;
    s *= x.shape[d];
  }
  const auto* src = static_cast<const unsigned char*>(x.data);
  auto* dst = static_cast<unsigned char*>(y.data);
  for (int64_t o = 0, n = y.size(); o < n; ++o) {
    int64_t off = 0;
    for (size_t d = 0; d < r; ++d) off += table[d][idx[d]].index * in_stride[d];
    std::memcpy(dst + static_cast<size_t>(o) * es, src + static_cast<size_t>(off) * es, es);
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < y.shape[d]) break;
      idx[d] = 0;
    }
  }
}

Status RunResize(RunContext& c) {
  const Tensor& x = *c.in[0];
  Tensor& y = *c.out[0];
  if (y.size() == 0) return Status::Ok();
  ResizeParams p;
  EDGELOOP_RETURN_IF_ERROR(ParseParams(c.node, &p));
  const ResizeInputs in = RunInputs(c, p);
  const size_t r = x.shape.size();
  std::array<double, kMaxRank> scale;
  DimArray out;
  EDGELOOP_RETURN_IF_ERROR(ResolveResize(c.node, p, in, x.shape, scale.data(), out.data()));
  std::array<Tap*, kMaxRank> table;
  std::array<size_t, kMaxRank> taps;
  Tap* next = static_cast<Tap*>(c.scratch);
  for (size_t d = 0; d < r; ++d) {
    double roi_start = 0, roi_end = 1;
    if (in.roi && in.roi->size() == static_cast<int64_t>(2 * r)) {
      const bool f64 = in.roi->dtype == DType::kFloat64;
      roi_start = f64 ? in.roi->as<double>()[d] : in.roi->as<float>()[d];
      roi_end = f64 ? in.roi->as<double>()[r + d] : in.roi->as<float>()[r + d];
    }
    table[d] = next;
    taps[d] = TabulateAxis(p, x.shape[d], y.shape[d], scale[d], roi_start, roi_end, next);
    next += static_cast<size_t>(y.shape[d]) * TapsPerPosition(p.interp);
  }
  if (p.interp == Interp::kNearest && p.coord != Coord::kTfCropAndResize)
    CopyNearest(x, y, table.data());
  else if (x.dtype == DType::kFloat64)
    Interpolate<double>(x, y, p, table.data(), taps.data());
  else
    Interpolate<float>(x, y, p, table.data(), taps.data());
  return Status::Ok();
}

}  // namespace

const OpKernel kResize{"Resize", CheckResize, InferResize, RunResize};
const OpKernel kUpsample{"Upsample", CheckUpsample, InferResize, RunResize};

}  // namespace edgeloop::runtime::kernels
