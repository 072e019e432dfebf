// CIFAR-style ResNets (He et al. 2016, section 4.2): a 3x3 stem conv, three stages of n basic
// blocks at 16, 32 and 64 channels (times the width multiplier), the second and third stage
// halving the resolution, and global average pooling; depth = 6n + 2 weighted layers (8, 14,
// 20, ...). Two downsamplings suit 28x28 to 64x64 inputs (28 -> 7, 64 -> 16). Shortcuts are the
// identity, or a 1x1 conv + batch norm where the shape changes (the paper's option B).
//
// Backbone blocks: the stem, then every basic block; the last one also pools.
#include "ml/zoo.hpp"
#include "ml/zoo_layers.hpp"

namespace edgeloop::ml {
namespace {

constexpr int64_t kMinSide = 8;
constexpr int64_t kMinDepth = 8, kMaxDepth = 110;
constexpr int64_t kStageChannels[] = {16, 32, 64};
constexpr int64_t kDivisor = 4;

// Two 3x3 conv + batch norm layers with a ReLU between, added to the shortcut, then a ReLU.
class BasicBlockImpl : public BlockImpl {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride) {
    conv1_ = register_module("conv1",
                             ConvBnAct(ConvBnActOptions{in, out, 3, stride, 1, Activation::kRelu}));
    conv2_ =
        register_module("conv2", ConvBnAct(ConvBnActOptions{out, out, 3, 1, 1, Activation::kNone}));
    if (stride != 1 || in != out)
      shortcut_ = register_module(
          "shortcut", ConvBnAct(ConvBnActOptions{in, out, 1, stride, 1, Activation::kNone}));
  }

  torch::Tensor forward(torch::Tensor x) override {
    auto y = conv2_->forward(conv1_->forward(x));
    return torch::relu(y + (shortcut_ ? shortcut_->forward(x) : x));
  }

  Result<std::string> ExportOnnx(OnnxGraphWriter& w, const std::string& input,
                                 const std::string& prefix) override {
    EDGELOOP_ASSIGN_OR_RETURN(std::string y, conv1_->ExportOnnx(w, input, prefix + ".conv1"));
    EDGELOOP_ASSIGN_OR_RETURN(y, conv2_->ExportOnnx(w, y, prefix + ".conv2"));
    std::string s = input;
    if (shortcut_) {
      EDGELOOP_ASSIGN_OR_RETURN(s, shortcut_->ExportOnnx(w, input, prefix + ".shortcut"));
    }
    std::string sum = w.Fresh(prefix + "_add");
    w.Node("Add", {y, s}, sum);
    return WriteActivation(w, sum, Activation::kRelu, prefix);
  }

 private:
  ConvBnAct conv1_{nullptr}, conv2_{nullptr}, shortcut_{nullptr};
};
TORCH_MODULE(BasicBlock);

}  // namespace

Status ValidateResNet(const ModelSpec& spec) {
  EDGELOOP_RETURN_IF_ERROR(CheckImageBackbone(spec, kMinSide));
  if (spec.depth < kMinDepth || spec.depth > kMaxDepth || (spec.depth - 2) % 6 != 0)
    return Error(Errc::kInvalidArgument, "resnet depth " + std::to_string(spec.depth) +
                                             " is not 6n + 2 in [8, 110] (8, 14, 20, 26, 32, ...)");
  return Status::Ok();
}

int64_t BuildResNet(const ModelSpec& spec, torch::nn::ModuleList& backbone) {
  const int64_t per_stage = (spec.depth - 2) / 6;
  int64_t c = ScaleChannels(kStageChannels[0], spec.width_mult, kDivisor);
  backbone->push_back(
      ConvBnAct(ConvBnActOptions{spec.input_shape[0], c, 3, 1, 1, Activation::kRelu}));
  std::shared_ptr<BlockImpl> last;
  for (size_t stage = 0; stage < std::size(kStageChannels); ++stage) {
    int64_t out = ScaleChannels(kStageChannels[stage], spec.width_mult, kDivisor);
    for (int64_t i = 0; i < per_stage; ++i) {
      int64_t stride = stage > 0 && i == 0 ? 2 : 1;
      if (last) backbone->push_back(last);
      last = BasicBlock(c, out, stride).ptr();
      c = out;
    }
  }
  backbone->push_back(std::make_shared<GlobalPoolBlockImpl>(last, spec.dropout));
  return c;
}

}  // namespace edgeloop::ml
