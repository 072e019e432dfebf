// The layers the zoo's backbones are made of: convolution + batch norm + activation, and the
// pooling block that turns a feature map into the embedding the head reads. Each exports its
// inference graph with batch norm folded into the convolution, so no BatchNormalization node
// ships.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>

#include "ml/block.hpp"
#include "ml/model.hpp"

namespace edgeloop::ml {

// Conv followed by BatchNorm (inference) equals one Conv with scaled weights and a shifted
// bias: {weight, bias} of that Conv, from the batch norm's running statistics.
std::pair<torch::Tensor, torch::Tensor> FoldBatchNorm(torch::nn::Conv2dImpl& conv,
                                                      torch::nn::BatchNorm2dImpl& bn);

// Writes conv + bn as one folded ONNX Conv (its strides, pads and group) reading `input`;
// initializers are named prefix + ".weight" and prefix + ".bias". Returns the output's name.
std::string WriteFoldedConv(OnnxGraphWriter& w, const std::string& input,
                            torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn,
                            const std::string& prefix);

enum class Activation { kNone, kRelu, kRelu6 };

// Writes the activation (Relu, or Clip to [0, 6] with opset-13 min/max inputs) after `input`.
std::string WriteActivation(OnnxGraphWriter& w, const std::string& input, Activation act,
                            const std::string& prefix);

struct ConvBnActOptions {
  int64_t in = 0, out = 0;
  int64_t kernel = 3;
  int64_t stride = 1;
  int64_t groups = 1;  // groups == in == out: a depthwise convolution
  Activation act = Activation::kRelu;
};

// Conv2d without bias ("same" padding, kernel / 2), BatchNorm2d, then the activation.
class ConvBnActImpl : public BlockImpl {
 public:
  explicit ConvBnActImpl(const ConvBnActOptions& o);
  torch::Tensor forward(torch::Tensor x) override;
  Result<std::string> ExportOnnx(OnnxGraphWriter& w, const std::string& input,
                                 const std::string& prefix) override;

 private:
  torch::nn::Conv2d conv_{nullptr};
  torch::nn::BatchNorm2d bn_{nullptr};
  Activation act_;
};
TORCH_MODULE(ConvBnAct);

// Runs `inner`, then global average pooling over the spatial axes, flattening to [n, c], and
// dropout (training only): the last backbone block, whose output is the embedding.
class GlobalPoolBlockImpl : public BlockImpl {
 public:
  GlobalPoolBlockImpl(std::shared_ptr<BlockImpl> inner, double dropout);
  torch::Tensor forward(torch::Tensor x) override;
  Result<std::string> ExportOnnx(OnnxGraphWriter& w, const std::string& input,
                                 const std::string& prefix) override;

 private:
  std::shared_ptr<BlockImpl> inner_;
  torch::nn::Dropout dropout_{nullptr};
};

// Channels scaled by a width multiplier, rounded to the nearest multiple of `divisor` (at least
// `divisor`) without losing more than 10 % of the scaled width, as MobileNet does.
int64_t ScaleChannels(int64_t channels, double width_mult, int64_t divisor);

// Checks shared by the zoo's image backbones: images [c,h,w] with both sides at least
// `min_side`, and a width multiplier in [0.1, 4].
Status CheckImageBackbone(const ModelSpec& spec, int64_t min_side);

}  // namespace edgeloop::ml
