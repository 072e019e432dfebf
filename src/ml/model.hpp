// Classifier models for the cloud-side ML core (libtorch). Every model is a backbone (a
// sequence of blocks) followed by a linear head, so transfer learning can freeze the backbone,
// unfreeze its last k blocks, or train everything. Input normalization lives inside the model
// (buffers), so an exported ONNX file takes raw pixels in [0, 1] or raw feature values.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::ml {

struct ModelSpec {
  // "cnn", "mobilenet_v2", "resnet" (images [c,h,w]), "mlp" (features [f]) or "onnx".
  std::string arch = "cnn";
  std::vector<int64_t> input_shape;  // per sample, without the batch dimension
  int64_t num_classes = 10;
  std::vector<int64_t> widths = {16, 32};  // cnn: conv channels per block; mlp: hidden sizes
  int64_t embed = 128;                     // cnn: width of the fully connected embedding block
  double dropout = 0.2;                    // before the head (cnn: in the embedding block)
  // mobilenet_v2 and resnet: channel widths scaled by this (1 = the published sizes).
  double width_mult = 1.0;
  // resnet: weighted layers, 6n + 2 (8, 14, 20, ...): n basic blocks in each of three stages.
  int64_t depth = 20;
  // Per-channel (cnn) or per-feature (mlp) normalization: x' = (x - mean) / std.
  std::vector<float> input_mean = {0.f};
  std::vector<float> input_std = {1.f};
  // "onnx" (imported, ml/onnx_import.hpp): the graph's bytes (saved as graph.onnx beside the
  // weights, not in the JSON), their sha256, and the node that became the head.
  std::shared_ptr<const std::string> onnx_graph;
  std::string onnx_graph_sha256;
  std::string onnx_head;

  nlohmann::json ToJson() const;
  static Result<ModelSpec> FromJson(const nlohmann::json& j);
  // Checks that the spec describes a buildable model (shapes, widths, sizes).
  Status Validate() const;
};

class ClassifierImpl : public torch::nn::Module {
 public:
  explicit ClassifierImpl(const ModelSpec& spec);
  torch::Tensor forward(torch::Tensor x);
  // The backbone's output (the head's input), for feature extraction.
  torch::Tensor features(torch::Tensor x);

  const ModelSpec& spec() const { return spec_; }
  torch::nn::ModuleList& backbone() { return backbone_; }
  torch::nn::Linear& head() { return head_; }
  size_t num_blocks() const { return backbone_->size(); }
  // Replaces the head with a freshly initialized one for num_classes outputs.
  void ResetHead(int64_t num_classes);
  int64_t embed_dim() const { return embed_dim_; }

 private:
  ModelSpec spec_;
  torch::Tensor mean_, std_;
  // cnn/mlp blocks are Sequentials, every other architecture's derive from BlockImpl.
  torch::nn::ModuleList backbone_{nullptr};
  torch::nn::Linear head_{nullptr};
  int64_t embed_dim_ = 0;
};
TORCH_MODULE(Classifier);

int64_t ParameterCount(Classifier& model);

}  // namespace edgeloop::ml
