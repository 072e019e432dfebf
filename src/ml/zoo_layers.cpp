#include "ml/zoo_layers.hpp"

#include <cmath>

namespace edgeloop::ml {

namespace nn = torch::nn;

std::pair<torch::Tensor, torch::Tensor> FoldBatchNorm(nn::Conv2dImpl& conv,
                                                      nn::BatchNorm2dImpl& bn) {
  auto scale = bn.weight / torch::sqrt(bn.running_var + bn.options.eps());
  auto w = conv.weight * scale.view({-1, 1, 1, 1});
  auto b = conv.bias.defined() ? conv.bias : torch::zeros_like(bn.running_mean);
  b = (b - bn.running_mean) * scale + bn.bias;
  return {w, b};
}

std::string WriteFoldedConv(OnnxGraphWriter& w, const std::string& input, nn::Conv2dImpl& conv,
                            nn::BatchNorm2dImpl& bn, const std::string& prefix) {
  torch::NoGradGuard no_grad;
  auto [weight, bias] = FoldBatchNorm(conv, bn);
  std::string out = w.Fresh(prefix);
  auto* n = w.Node(
      "Conv",
      {input, w.Initializer(prefix + ".weight", weight), w.Initializer(prefix + ".bias", bias)},
      out);
  const auto& o = conv.options;
  auto k = *o.kernel_size();
  auto s = *o.stride();
  // Every convolution here is built with explicit padding (never "valid"/"same" modes).
  auto p = *c10::get<torch::ExpandingArray<2>>(o.padding());
  OnnxGraphWriter::IntsAttr(n, "kernel_shape", {k[0], k[1]});
  OnnxGraphWriter::IntsAttr(n, "strides", {s[0], s[1]});
  OnnxGraphWriter::IntsAttr(n, "pads", {p[0], p[1], p[0], p[1]});
  OnnxGraphWriter::IntAttr(n, "group", o.groups());
  return out;
}

std::string WriteActivation(OnnxGraphWriter& w, const std::string& input, Activation act,
                            const std::string& prefix) {
  switch (act) {
    case Activation::kNone:
      return input;
    case Activation::kRelu: {
      std::string out = w.Fresh(prefix + "_relu");
      w.Node("Relu", {input}, out);
      return out;
    }
    case Activation::kRelu6: {
      std::string out = w.Fresh(prefix + "_relu6");
      w.Node("Clip",
             {input, w.Initializer(prefix + ".relu6_min", torch::tensor(0.f)),
              w.Initializer(prefix + ".relu6_max", torch::tensor(6.f))},
             out);
      return out;
    }
  }
  return input;
}

ConvBnActImpl::ConvBnActImpl(const ConvBnActOptions& o) : act_(o.act) {
  conv_ = register_module("conv", nn::Conv2d(nn::Conv2dOptions(o.in, o.out, o.kernel)
                                                 .stride(o.stride)
                                                 .padding(o.kernel / 2)
                                                 .groups(o.groups)
                                                 .bias(false)));
  bn_ = register_module("bn", nn::BatchNorm2d(o.out));
}

torch::Tensor ConvBnActImpl::forward(torch::Tensor x) {
  x = bn_->forward(conv_->forward(x));
  switch (act_) {
    case Activation::kNone:
      return x;
    case Activation::kRelu:
      return torch::relu(x);
    case Activation::kRelu6:
      return torch::hardtanh(x, 0.0, 6.0);
  }
  return x;
}

Result<std::string> ConvBnActImpl::ExportOnnx(OnnxGraphWriter& w, const std::string& input,
                                              const std::string& prefix) {
  return WriteActivation(w, WriteFoldedConv(w, input, *conv_, *bn_, prefix), act_, prefix);
}

GlobalPoolBlockImpl::GlobalPoolBlockImpl(std::shared_ptr<BlockImpl> inner, double dropout)
    : inner_(register_module("inner", std::move(inner))),
      dropout_(register_module("dropout", nn::Dropout(dropout))) {}

torch::Tensor GlobalPoolBlockImpl::forward(torch::Tensor x) {
  x = torch::adaptive_avg_pool2d(inner_->forward(x), {1, 1}).flatten(1);
  return dropout_->forward(x);
}

Result<std::string> GlobalPoolBlockImpl::ExportOnnx(OnnxGraphWriter& w, const std::string& input,
                                                    const std::string& prefix) {
  EDGELOOP_ASSIGN_OR_RETURN(std::string x, inner_->ExportOnnx(w, input, prefix + ".inner"));
  std::string pooled = w.Fresh(prefix + "_pool");
  w.Node("GlobalAveragePool", {x}, pooled);
  std::string flat = w.Fresh(prefix + "_flatten");
  OnnxGraphWriter::IntAttr(w.Node("Flatten", {pooled}, flat), "axis", 1);
  return flat;  // dropout is the identity at inference and is not exported
}

int64_t ScaleChannels(int64_t channels, double width_mult, int64_t divisor) {
  double scaled = static_cast<double>(channels) * width_mult;
  int64_t c =
      std::max<int64_t>(divisor, static_cast<int64_t>(scaled + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(c) < 0.9 * scaled) c += divisor;
  return c;
}

Status CheckImageBackbone(const ModelSpec& spec, int64_t min_side) {
  if (spec.input_shape.size() != 3)
    return Error(Errc::kMismatch, spec.arch + " takes images [c,h,w]; the input has " +
                                      std::to_string(spec.input_shape.size()) + " dimensions");
  if (spec.input_shape[0] < 1 || spec.input_shape[0] > 1024)
    return Error(Errc::kInvalidArgument, spec.arch + ": image channels must be in [1, 1024]");
  if (spec.input_shape[1] < min_side || spec.input_shape[2] < min_side)
    return Error(Errc::kMismatch, "image " + std::to_string(spec.input_shape[1]) + "x" +
                                      std::to_string(spec.input_shape[2]) + " is too small for " +
                                      spec.arch + " (at least " + std::to_string(min_side) + "x" +
                                      std::to_string(min_side) + ")");
  if (!(spec.width_mult >= 0.1 && spec.width_mult <= 4.0))
    return Error(Errc::kInvalidArgument, spec.arch + ": width multiplier must be in [0.1, 4]");
  return Status::Ok();
}

}  // namespace edgeloop::ml
