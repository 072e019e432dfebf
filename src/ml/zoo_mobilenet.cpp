// MobileNetV2 (Sandler et al. 2018): a stride-2 stem conv, seven stages of inverted residual
// blocks (1x1 expansion, 3x3 depthwise, 1x1 linear projection, ReLU6 between, residual add when
// the shape is kept), a final 1x1 conv to 1280 channels and global average pooling.
//
// The ImageNet configuration downsamples five times (224 -> 7). Small images cannot afford
// that: the builder keeps only as many of the stride-2 steps as leave a final feature map of at
// least 4x4, dropping the earliest ones (the stem first) so the early high-resolution stages
// run at full input resolution, as CIFAR ports of MobileNetV2 do. 28x28 and 32x32 keep three
// (-> 4x4), 64x64 keeps four (-> 4x4), 224x224 all five (-> 7x7).
#include <algorithm>
#include <array>

#include "ml/zoo.hpp"
#include "ml/zoo_layers.hpp"

namespace edgeloop::ml {
namespace {

constexpr int64_t kMinSide = 8;
constexpr int64_t kMinFinalSide = 4;
constexpr int64_t kStemChannels = 32;
constexpr int64_t kLastChannels = 1280;
constexpr int64_t kDivisor = 8;

struct Stage {
  int64_t expansion, channels, blocks, stride;
};
// The paper's table 2 (t, c, n, s) after the stem.
constexpr std::array<Stage, 7> kStages = {{{1, 16, 1, 1},
                                           {6, 24, 2, 2},
                                           {6, 32, 3, 2},
                                           {6, 64, 4, 2},
                                           {6, 96, 3, 1},
                                           {6, 160, 3, 2},
                                           {6, 320, 1, 1}}};
constexpr int kStrideSteps = 5;  // the stem and the four stride-2 stages

// How many of the five stride-2 steps a side of `side` pixels keeps (see the file comment).
int KeptStrideSteps(int64_t side) {
  int k = 0;
  int64_t s = side;
  while (k < kStrideSteps && (s + 1) / 2 >= kMinFinalSide) {
    s = (s + 1) / 2;  // a 3x3 conv with padding 1 and stride 2 gives ceil(side / 2)
    ++k;
  }
  return k;
}

class InvertedResidualImpl : public BlockImpl {
 public:
  InvertedResidualImpl(int64_t in, int64_t out, int64_t stride, int64_t expansion)
      : residual_(stride == 1 && in == out) {
    int64_t hidden = in * expansion;
    if (expansion != 1)
      expand_ = register_module(
          "expand", ConvBnAct(ConvBnActOptions{in, hidden, 1, 1, 1, Activation::kRelu6}));
    depthwise_ = register_module(
        "depthwise",
        ConvBnAct(ConvBnActOptions{hidden, hidden, 3, stride, hidden, Activation::kRelu6}));
    project_ = register_module(
        "project", ConvBnAct(ConvBnActOptions{hidden, out, 1, 1, 1, Activation::kNone}));
  }

  torch::Tensor forward(torch::Tensor x) override {
    auto y = expand_ ? expand_->forward(x) : x;
    y = project_->forward(depthwise_->forward(y));
    return residual_ ? x + y : y;
  }

  Result<std::string> ExportOnnx(OnnxGraphWriter& w, const std::string& input,
                                 const std::string& prefix) override {
    std::string y = input;
    if (expand_) {
      EDGELOOP_ASSIGN_OR_RETURN(y, expand_->ExportOnnx(w, y, prefix + ".expand"));
    }
    EDGELOOP_ASSIGN_OR_RETURN(y, depthwise_->ExportOnnx(w, y, prefix + ".depthwise"));
    EDGELOOP_ASSIGN_OR_RETURN(y, project_->ExportOnnx(w, y, prefix + ".project"));
    if (!residual_) return y;
    std::string sum = w.Fresh(prefix + "_add");
    w.Node("Add", {input, y}, sum);
    return sum;
  }

 private:
  bool residual_;
  ConvBnAct expand_{nullptr}, depthwise_{nullptr}, project_{nullptr};
};
TORCH_MODULE(InvertedResidual);

}  // namespace

Status ValidateMobileNetV2(const ModelSpec& spec) {
  return CheckImageBackbone(spec, kMinSide);
}

int64_t BuildMobileNetV2(const ModelSpec& spec, torch::nn::ModuleList& backbone) {
  const double w = spec.width_mult;
  const int64_t side = std::min(spec.input_shape[1], spec.input_shape[2]);
  // Step i of the five (0 = stem) strides by 2 only if it is among the last `kept`.
  const int dropped = kStrideSteps - KeptStrideSteps(side);
  int step = 0;
  auto next_stride = [&](int64_t stride) -> int64_t {
    if (stride == 1) return 1;
    return step++ < dropped ? 1 : stride;
  };

  int64_t c = ScaleChannels(kStemChannels, w, kDivisor);
  backbone->push_back(ConvBnAct(
      ConvBnActOptions{spec.input_shape[0], c, 3, next_stride(2), 1, Activation::kRelu6}));
  for (const Stage& st : kStages) {
    int64_t out = ScaleChannels(st.channels, w, kDivisor);
    for (int64_t i = 0; i < st.blocks; ++i) {
      int64_t stride = i == 0 ? next_stride(st.stride) : 1;
      backbone->push_back(InvertedResidual(c, out, stride, st.expansion));
      c = out;
    }
  }
  // The last conv is never narrowed below 1280 (the paper's choice for width_mult < 1).
  int64_t last = ScaleChannels(kLastChannels, std::max(1.0, w), kDivisor);
  backbone->push_back(std::make_shared<GlobalPoolBlockImpl>(
      ConvBnAct(ConvBnActOptions{c, last, 1, 1, 1, Activation::kRelu6}).ptr(), spec.dropout));
  return last;
}

}  // namespace edgeloop::ml
