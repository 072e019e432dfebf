// The backbone zoo beyond the original cnn and mlp: MobileNetV2 and CIFAR-style ResNets, sized
// for small images (28x28, 32x32, 64x64). Each builder appends its blocks (all derived from
// BlockImpl) to a Classifier's backbone and returns the width of the embedding the last block
// produces; the Classifier adds the Linear head. Builders expect a spec that passed the
// matching Validate function.
#pragma once

#include <torch/torch.h>

#include "common/result.hpp"
#include "ml/model.hpp"

namespace edgeloop::ml {

// mobilenet_v2: images [c,h,w] of at least 8x8, width_mult in [0.1, 4].
Status ValidateMobileNetV2(const ModelSpec& spec);
int64_t BuildMobileNetV2(const ModelSpec& spec, torch::nn::ModuleList& backbone);

// resnet: images [c,h,w] of at least 8x8, depth 6n + 2 (8, 14, 20, ... 110), width_mult in
// [0.1, 4].
Status ValidateResNet(const ModelSpec& spec);
int64_t BuildResNet(const ModelSpec& spec, torch::nn::ModuleList& backbone);

}  // namespace edgeloop::ml
