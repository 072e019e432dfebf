// An imported graph as a chain of backbone blocks. The nodes between a start value and a
// target value are cut where exactly one tensor is live (the graph narrows to one edge) and
// no trainable weight is shared across the cut, so each block has one input and one output,
// like every other backbone block; cuts are placed just before the next layer with weights
// (Conv, Gemm, MatMul), so a block is one layer with its batch norm, activation and pooling,
// or a whole residual unit where the graph branches. The fine-tune strategies then freeze or
// train whole imported layers.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "ml/block.hpp"
#include "ml/onnx_import_graph.hpp"

namespace edgeloop::ml::onnx_import {

struct BlockPlan {
  std::vector<int> nodes;  // node indices, ascending
  int input = -1;          // value ids
  int output = -1;
};

struct BackbonePlan {
  std::vector<BlockPlan> blocks;  // empty when target == start
  std::set<int> weights;          // constant values that become trainable parameters
};

// The nodes `target` depends on, back to `start` (the graph input, or where the input
// normalization lifted out of the graph ends), as blocks. Errors when a node on the way reads
// the graph input other than through `start`.
Result<BackbonePlan> PlanBackbone(const Graph& g, int start, int target);

// One block of imported nodes. Weights are parameters, other constants buffers (batch-norm
// running statistics among them, updated while the block trains).
class OnnxBlockImpl : public BlockImpl {
 public:
  OnnxBlockImpl(const Graph& g, const BlockPlan& plan, const std::set<int>& weights);
  torch::Tensor forward(torch::Tensor x) override;
  Result<std::string> ExportOnnx(OnnxGraphWriter& w, const std::string& input,
                                 const std::string& prefix) override;
  size_t num_nodes() const { return steps_.size(); }

 private:
  struct Ref {
    enum class Kind { kAbsent, kInput, kStep, kTensor } kind = Kind::kAbsent;
    size_t index = 0;
  };
  struct Step {
    std::shared_ptr<const NodeOp> op;
    std::vector<Ref> in;
    std::string name, op_type;
  };
  std::vector<Step> steps_;
  std::vector<torch::Tensor> tensors_;              // the registered parameters and buffers
  std::vector<std::string> onnx_names_;             // their names in the file, for export
  std::vector<std::vector<size_t>> release_after_;  // per step: step values it reads last
};

// The whole graph, from its input to its first output, as one trainable module of blocks (no
// head split, no normalization lifted): the importer's ops checked against other runtimes.
class GraphModuleImpl : public torch::nn::Module {
 public:
  explicit GraphModuleImpl(const Graph& g);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::ModuleList& blocks() { return blocks_; }

 private:
  torch::nn::ModuleList blocks_{nullptr};
};
TORCH_MODULE(GraphModule);

Result<GraphModule> ImportGraphModule(std::string_view bytes, const std::string& origin,
                                      const ImportLimits& limits = {});

}  // namespace edgeloop::ml::onnx_import
