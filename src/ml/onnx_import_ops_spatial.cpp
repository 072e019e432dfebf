// Conv, BatchNormalization and pooling, over 1 to 3 spatial axes. Window geometry (strides,
// dilations, explicit pads or auto_pad, ceil_mode) is resolved at import, where the spatial
// sizes are known, into explicit begin/end pads; the output sizes follow the edge runtime's
// rules (src/runtime/kernels/spatial.hpp), so both compute the same windows. Padding libtorch
// cannot express (asymmetric, or more than half the kernel) is applied as an explicit pad.
#include <onnx/onnx_pb.h>

#include <limits>

#include "ml/onnx_import_ops.hpp"

namespace edgeloop::ml::onnx_import {
namespace {

// Kernels, strides, dilations and pads beyond this are refused (no real model is near it).
constexpr int64_t kMaxWindowValue = int64_t{1} << 20;

struct Window {
  Dims kernel, stride, dilation, pad_begin, pad_end, out;
  size_t rank() const { return kernel.size(); }
  // Symmetric pads libtorch's own pooling and convolution take (at most half the kernel).
  bool TorchPads(Dims* pads) const {
    pads->clear();
    for (size_t i = 0; i < rank(); ++i) {
      if (pad_begin[i] != pad_end[i] || pad_begin[i] > kernel[i] / 2) return false;
      pads->push_back(pad_begin[i]);
    }
    return true;
  }
  // constant_pad_nd's order: last axis first, (begin, end) pairs; `extra` widens the end.
  std::vector<int64_t> PadArg(const Dims& extra) const {
    std::vector<int64_t> p;
    for (size_t i = rank(); i-- > 0;) {
      p.push_back(pad_begin[i]);
      p.push_back(pad_end[i] + extra[i]);
    }
    return p;
  }
};

Status PlanWindow(const NodeContext& c, const Dims& in, const Dims& kernel, bool ceil_mode,
                  Window* w) {
  const size_t r = in.size();
  w->kernel = kernel;
  w->stride = c.Ints("strides", Dims(r, 1));
  w->dilation = c.Ints("dilations", Dims(r, 1));
  Dims pads = c.Ints("pads", Dims(2 * r, 0));
  if (kernel.size() != r || w->stride.size() != r || w->dilation.size() != r ||
      pads.size() != 2 * r)
    return c.Fail(Errc::kMismatch, "kernel_shape, strides, dilations or pads do not match the " +
                                       std::to_string(r) + " spatial axes");
  w->pad_begin.assign(pads.begin(), pads.begin() + static_cast<long>(r));
  w->pad_end.assign(pads.begin() + static_cast<long>(r), pads.end());
  const std::string auto_pad = c.String("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" &&
      auto_pad != "SAME_LOWER")
    return c.Fail(Errc::kUnsupported, "auto_pad '" + auto_pad + "'");
  w->out.resize(r);
  for (size_t i = 0; i < r; ++i) {
    for (int64_t v : {kernel[i], w->stride[i], w->dilation[i]})
      if (v < 1 || v > kMaxWindowValue)
        return c.Fail(Errc::kFormat, "kernel, strides and dilations must be in [1, " +
                                         std::to_string(kMaxWindowValue) + "]");
    for (int64_t v : {w->pad_begin[i], w->pad_end[i]})
      if (v < 0 || v > kMaxWindowValue)
        return c.Fail(Errc::kFormat,
                      "pads must be in [0, " + std::to_string(kMaxWindowValue) + "]");
    const int64_t span = w->dilation[i] * (kernel[i] - 1) + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      w->out[i] = (in[i] + w->stride[i] - 1) / w->stride[i];
      int64_t total = std::max<int64_t>(0, (w->out[i] - 1) * w->stride[i] + span - in[i]);
      int64_t small = total / 2;
      w->pad_begin[i] = auto_pad == "SAME_UPPER" ? small : total - small;
      w->pad_end[i] = total - w->pad_begin[i];
      continue;
    }
    if (auto_pad == "VALID") w->pad_begin[i] = w->pad_end[i] = 0;
    const int64_t padded = in[i] + w->pad_begin[i] + w->pad_end[i];
    if (padded < span)
      return c.Fail(Errc::kMismatch, "the window (" + std::to_string(span) +
                                         ") is larger than the padded input (" +
                                         std::to_string(padded) + ")");
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

void WindowAttrs(onnx::NodeProto* n, const Window& w, bool with_dilations) {
  OnnxGraphWriter::IntsAttr(n, "kernel_shape", w.kernel);
  OnnxGraphWriter::IntsAttr(n, "strides", w.stride);
  Dims pads = w.pad_begin;
  pads.insert(pads.end(), w.pad_end.begin(), w.pad_end.end());
  OnnxGraphWriter::IntsAttr(n, "pads", pads);
  if (with_dilations) OnnxGraphWriter::IntsAttr(n, "dilations", w.dilation);
}

class ConvOp : public NodeOp {
 public:
  ConvOp(Window w, int64_t group) : w_(std::move(w)), group_(group) {}
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool) const override {
    Dims pads;
    torch::Tensor x = in[0];
    if (!w_.TorchPads(&pads)) {
      x = torch::constant_pad_nd(x, w_.PadArg(Dims(w_.rank(), 0)), 0);
      pads.assign(w_.rank(), 0);
    }
    c10::optional<torch::Tensor> bias;
    if (in.size() > 2 && in[2].defined()) bias = in[2];
    return torch::convolution(x, in[1], bias, w_.stride, pads, w_.dilation, false,
                              Dims(w_.rank(), 0), group_);
  }
  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    std::string out = w.Fresh(prefix);
    std::vector<std::string> inputs = {in[0], in[1]};
    if (in.size() > 2 && !in[2].empty()) inputs.push_back(in[2]);
    auto* n = w.Node("Conv", inputs, out);
    WindowAttrs(n, w_, true);
    OnnxGraphWriter::IntAttr(n, "group", group_);
    return out;
  }
  std::vector<size_t> WeightInputs() const override { return {1, 2}; }

 private:
  Window w_;
  int64_t group_;
};

Result<OpBuild> BuildConv(const NodeContext& c) {
  EDGELOOP_RETURN_IF_ERROR(c.RequireData(0));
  EDGELOOP_RETURN_IF_ERROR(c.RequireConstant(1));
  EDGELOOP_RETURN_IF_ERROR(c.RequireRank(0, 3, 5));
  const Dims& x = c.in(0).dims;
  const Dims& wt = c.in(1).dims;
  if (wt.size() != x.size())
    return c.Fail(Errc::kMismatch, "weights " + DimsString(wt) + " do not fit input " +
                                       DimsString(x) + " ([M, C/group, kernel...] expected)");
  const int64_t group = c.Int("group", 1);
  if (group < 1 || x[1] % group != 0 || wt[0] % group != 0)
    return c.Fail(Errc::kMismatch,
                  "group " + std::to_string(group) + " does not divide the channels");
  if (wt[1] * group != x[1])
    return c.Fail(Errc::kMismatch, "weights expect " + std::to_string(wt[1] * group) +
                                       " input channels, the input has " + std::to_string(x[1]));
  if (c.in(2).present) {
    EDGELOOP_RETURN_IF_ERROR(c.RequireConstant(2));
    if (c.in(2).dims != Dims{wt[0]})
      return c.Fail(Errc::kMismatch, "bias " + DimsString(c.in(2).dims) + " does not match " +
                                         std::to_string(wt[0]) + " output channels");
  }
  Dims in(x.begin() + 2, x.end()), kernel(wt.begin() + 2, wt.end());
  if (c.Ints("kernel_shape", kernel) != kernel)
    return c.Fail(Errc::kMismatch, "kernel_shape does not match the weights");
  Window w;
  EDGELOOP_RETURN_IF_ERROR(PlanWindow(c, in, kernel, false, &w));
  Dims out = {x[0], wt[0]};
  out.insert(out.end(), w.out.begin(), w.out.end());
  return OpBuild{std::make_shared<ConvOp>(std::move(w), group), out, {}};
}

class BatchNormOp : public NodeOp {
 public:
  BatchNormOp(float epsilon, float momentum) : epsilon_(epsilon), momentum_(momentum) {}
  // Training normalizes with the batch's statistics and updates the running ones (inputs 3
  // and 4, the block's buffers) in place; ONNX's momentum weighs the old running value.
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool training) const override {
    return torch::batch_norm(in[0], in[1], in[2], in[3], in[4], training, 1.0 - momentum_, epsilon_,
                             false);
  }
  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    std::string out = w.Fresh(prefix);
    auto* n = w.Node("BatchNormalization", {in[0], in[1], in[2], in[3], in[4]}, out);
    OnnxGraphWriter::FloatAttr(n, "epsilon", epsilon_);
    OnnxGraphWriter::FloatAttr(n, "momentum", momentum_);
    return out;
  }
  std::vector<size_t> WeightInputs() const override { return {1, 2}; }

 private:
  float epsilon_, momentum_;
};

Result<OpBuild> BuildBatchNorm(const NodeContext& c) {
  EDGELOOP_RETURN_IF_ERROR(c.RequireData(0));
  EDGELOOP_RETURN_IF_ERROR(c.RequireRank(0, 2, 5));
  const int64_t channels = c.in(0).dims[1];
  for (size_t i = 1; i <= 4; ++i) {
    EDGELOOP_RETURN_IF_ERROR(c.RequireConstant(i));
    if (c.in(i).dims != Dims{channels})
      return c.Fail(Errc::kMismatch, "input " + std::to_string(i) + " has shape " +
                                         DimsString(c.in(i).dims) + ", [" +
                                         std::to_string(channels) + "] expected");
  }
  if (c.opset() < 9 && c.Int("spatial", 1) == 0)
    return c.Fail(Errc::kUnsupported, "per-activation batch normalization (spatial = 0)");
  if (c.opset() >= 14 && c.Int("training_mode", 0) != 0)
    return c.Fail(Errc::kUnsupported, "training_mode = 1 in the graph");
  const float eps = c.Float("epsilon", 1e-5f), momentum = c.Float("momentum", 0.9f);
  if (!(eps > 0) || !(momentum >= 0 && momentum <= 1))
    return c.Fail(Errc::kFormat, "epsilon must be positive and momentum in [0, 1]");
  return OpBuild{std::make_shared<BatchNormOp>(eps, momentum), c.in(0).dims, {}};
}

torch::Tensor MaxPoolNd(const torch::Tensor& x, const Window& w, const Dims& pads, bool ceil) {
  switch (w.rank()) {
    case 1:
      return torch::max_pool1d(x, w.kernel, w.stride, pads, w.dilation, ceil);
    case 2:
      return torch::max_pool2d(x, w.kernel, w.stride, pads, w.dilation, ceil);
    default:
      return torch::max_pool3d(x, w.kernel, w.stride, pads, w.dilation, ceil);
  }
}

torch::Tensor AvgPoolNd(const torch::Tensor& x, const Window& w, const Dims& pads, bool ceil,
                        bool include_pad) {
  switch (w.rank()) {
    case 1:
      return torch::avg_pool1d(x, w.kernel, w.stride, pads, ceil, include_pad);
    case 2:
      return torch::avg_pool2d(x, w.kernel, w.stride, pads, ceil, include_pad);
    default:
      return torch::avg_pool3d(x, w.kernel, w.stride, pads, ceil, include_pad);
  }
}

class PoolOp : public NodeOp {
 public:
  PoolOp(bool is_max, Window w, bool ceil_mode, bool include_pad, const Dims& in)
      : is_max_(is_max), w_(std::move(w)), ceil_(ceil_mode), include_pad_(include_pad) {
    // Beyond what libtorch pads itself: pad explicitly, widened at the end so the last
    // window fits, then cut the result to the planned size.
    Dims pads;
    native_ = w_.TorchPads(&pads);
    extra_.assign(w_.rank(), 0);
    for (size_t i = 0; i < w_.rank(); ++i) {
      int64_t span = w_.dilation[i] * (w_.kernel[i] - 1) + 1;
      int64_t need = (w_.out[i] - 1) * w_.stride[i] + span;
      extra_[i] = std::max<int64_t>(0, need - (in[i] + w_.pad_begin[i] + w_.pad_end[i]));
    }
    if (native_ || is_max_) return;
    // Average: the divisor per output position, counting input elements (and the explicit
    // pads with count_include_pad, as the runtime does) within each window.
    Dims ones_shape = {1, 1};
    ones_shape.insert(ones_shape.end(), in.begin(), in.end());
    torch::NoGradGuard no_grad;
    torch::Tensor ones = torch::ones(ones_shape);
    torch::Tensor mask;
    if (include_pad_) {
      mask = torch::constant_pad_nd(torch::constant_pad_nd(ones, w_.PadArg(Dims(w_.rank(), 0)), 1),
                                    ExtraOnly(), 0);
    } else {
      mask = torch::constant_pad_nd(ones, w_.PadArg(extra_), 0);
    }
    divisor_ = Crop(WindowSums(mask)).clamp_min(1);
  }

  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool) const override {
    Dims pads;
    if (native_) {
      w_.TorchPads(&pads);
      return is_max_ ? MaxPoolNd(in[0], w_, pads, ceil_)
                     : AvgPoolNd(in[0], w_, pads, ceil_, include_pad_);
    }
    if (is_max_) {
      auto x =
          torch::constant_pad_nd(in[0], w_.PadArg(extra_), -std::numeric_limits<float>::infinity());
      return Crop(MaxPoolNd(x, w_, Dims(w_.rank(), 0), false));
    }
    auto x = torch::constant_pad_nd(in[0], w_.PadArg(extra_), 0);
    return Crop(WindowSums(x)) / divisor_;
  }

  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    std::string out = w.Fresh(prefix);
    auto* n = w.Node(is_max_ ? "MaxPool" : "AveragePool", {in[0]}, out);
    WindowAttrs(n, w_, is_max_);
    if (ceil_) OnnxGraphWriter::IntAttr(n, "ceil_mode", 1);
    if (!is_max_ && include_pad_) OnnxGraphWriter::IntAttr(n, "count_include_pad", 1);
    return out;
  }

 private:
  std::vector<int64_t> ExtraOnly() const {
    std::vector<int64_t> p;
    for (size_t i = w_.rank(); i-- > 0;) {
      p.push_back(0);
      p.push_back(extra_[i]);
    }
    return p;
  }
  torch::Tensor WindowSums(const torch::Tensor& padded) const {
    int64_t k = 1;
    for (int64_t v : w_.kernel) k *= v;
    return AvgPoolNd(padded, w_, Dims(w_.rank(), 0), false, true) * static_cast<double>(k);
  }
  torch::Tensor Crop(torch::Tensor t) const {
    for (size_t i = 0; i < w_.rank(); ++i) t = t.narrow(static_cast<int64_t>(i) + 2, 0, w_.out[i]);
    return t;
  }

  bool is_max_;
  Window w_;
  bool ceil_, include_pad_;
  bool native_ = false;
  Dims extra_;
  torch::Tensor divisor_;
};

template <bool kMax>
Result<OpBuild> BuildPool(const NodeContext& c) {
  EDGELOOP_RETURN_IF_ERROR(c.RequireData(0));
  EDGELOOP_RETURN_IF_ERROR(c.RequireRank(0, 3, 5));
  if (!c.Has("kernel_shape")) return c.Fail(Errc::kFormat, "needs a 'kernel_shape' attribute");
  if (!kMax)
    for (int64_t d : c.Ints("dilations", {}))
      if (d != 1) return c.Fail(Errc::kUnsupported, "dilated AveragePool");
  const Dims& x = c.in(0).dims;
  Dims in(x.begin() + 2, x.end());
  const bool ceil_mode = c.Int("ceil_mode", 0) != 0;
  Window w;
  EDGELOOP_RETURN_IF_ERROR(PlanWindow(c, in, c.Ints("kernel_shape", {}), ceil_mode, &w));
  Dims out = {x[0], x[1]};
  out.insert(out.end(), w.out.begin(), w.out.end());
  const bool include_pad = !kMax && c.Int("count_include_pad", 0) != 0;
  return OpBuild{std::make_shared<PoolOp>(kMax, std::move(w), ceil_mode, include_pad, in), out, {}};
}

class GlobalAveragePoolOp : public NodeOp {
 public:
  torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool) const override {
    std::vector<int64_t> axes;
    for (int64_t d = 2; d < in[0].dim(); ++d) axes.push_back(d);
    return in[0].mean(axes, true);
  }
  std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                     const std::string& prefix) const override {
    std::string out = w.Fresh(prefix);
    w.Node("GlobalAveragePool", {in[0]}, out);
    return out;
  }
};

Result<OpBuild> BuildGlobalAveragePool(const NodeContext& c) {
  EDGELOOP_RETURN_IF_ERROR(c.RequireData(0));
  EDGELOOP_RETURN_IF_ERROR(c.RequireRank(0, 3, 5));
  Dims out = c.in(0).dims;
  for (size_t i = 2; i < out.size(); ++i) out[i] = 1;
  return OpBuild{std::make_shared<GlobalAveragePoolOp>(), out, {}};
}

}  // namespace

std::vector<OpEntry> SpatialOps() {
  return {{"Conv", BuildConv},
          {"BatchNormalization", BuildBatchNorm},
          {"MaxPool", BuildPool<true>},
          {"AveragePool", BuildPool<false>},
          {"GlobalAveragePool", BuildGlobalAveragePool}};
}

}  // namespace edgeloop::ml::onnx_import
