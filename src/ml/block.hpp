// Backbone blocks beyond plain Sequentials, and the ONNX graph writer they export through.
//
// A Classifier's backbone is a list of blocks. The original cnn/mlp blocks are
// torch::nn::Sequential (their parameter names are kept, so older weights.pt files load);
// every other architecture (mobilenet_v2, resnet, a graph imported from ONNX) uses blocks
// derived from BlockImpl: one input tensor, one output tensor, and a method that writes the
// block's inference graph (batch norm folded or kept, dropout dropped) into an ONNX graph.
// Fine-tune strategies freeze or train whole blocks, so every architecture splits into
// several blocks followed by the Linear head.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "common/result.hpp"

namespace onnx {
class GraphProto;
class NodeProto;
}  // namespace onnx

namespace edgeloop::ml {

// Appends nodes and initializers to an ONNX graph. Names made by Fresh() are unique within
// the writer; initializer names are the caller's and must be unique too.
class OnnxGraphWriter {
 public:
  explicit OnnxGraphWriter(onnx::GraphProto* g) : g_(g) {}

  // A float32 initializer holding t (any device or dtype; converted), returns its name.
  std::string Initializer(const std::string& name, const torch::Tensor& t);
  // A 1-D int64 initializer (shapes, axes, pads), returns its name.
  std::string IntInitializer(const std::string& name, const std::vector<int64_t>& values);
  onnx::NodeProto* Node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::string& output);
  std::string Fresh(const std::string& base);

  static void IntsAttr(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v);
  static void IntAttr(onnx::NodeProto* n, const std::string& name, int64_t v);
  static void FloatAttr(onnx::NodeProto* n, const std::string& name, float v);

  onnx::GraphProto* graph() { return g_; }

 private:
  onnx::GraphProto* g_;
  int counter_ = 0;
};

class BlockImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  // Writes the block's inference-mode graph reading the value named `input`; `prefix` makes
  // its initializer names unique ("block3"). Returns the name of the block's output value.
  virtual Result<std::string> ExportOnnx(OnnxGraphWriter& w, const std::string& input,
                                         const std::string& prefix) = 0;
};

// Runs one backbone block, whichever kind it is.
torch::Tensor ForwardBlock(const std::shared_ptr<torch::nn::Module>& block, torch::Tensor x);

}  // namespace edgeloop::ml
