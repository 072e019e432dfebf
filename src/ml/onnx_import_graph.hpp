// The ONNX importer's view of a model file: one float input with a batch first, the nodes in
// topological order each with its op built (attributes and shapes checked), and constants as
// libtorch tensors. Constant nodes, and nodes that read nothing but constants, are evaluated
// while reading, so what remains computes on data.
//
// Everything read from the file is checked before it is used: sizes against limits and
// against the data present (before allocating), references against what is defined earlier,
// shapes and attributes by each op. A hostile file gets an error naming the file, the node
// or initializer, and the problem; never a crash or an unbounded allocation.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "ml/onnx_import_ops.hpp"

namespace edgeloop::ml::onnx_import {

struct ImportLimits {
  size_t max_file_bytes = size_t{1} << 30;
  size_t max_nodes = 100000;
  // Any one initializer, and any one value per sample (data values are sized at batch 1).
  size_t max_tensor_bytes = size_t{1} << 30;
  // All values the nodes compute, per sample, and all constants computed while reading.
  size_t max_total_bytes = size_t{2} << 30;
};

struct Value {
  std::string name;
  Dims dims;               // full shape; for data the first dimension is the batch (held at 1)
  torch::Tensor constant;  // defined for constants
  int producer = -1;       // node index; -1 for the graph input and constants
  bool computed = true;    // false for extra outputs (pool indices, dropout masks) not computed
  bool is_constant() const { return constant.defined(); }
};

struct Node {
  std::string name, op_type;
  std::vector<int> inputs;     // value ids, -1 for absent inputs
  std::vector<bool> absorbed;  // per input: read by the op at build, not at run time
  int output = -1;
  std::shared_ptr<const NodeOp> op;
};

struct Graph {
  std::string origin;  // the file, for messages
  std::vector<Value> values;
  std::vector<Node> nodes;
  int input = -1;   // the one data input
  int output = -1;  // the first graph output
  int64_t opset = 0;
  std::string name, producer;
  std::map<std::string, std::string> metadata;

  // Per value, the nodes that read it (ascending).
  std::vector<std::vector<int>> Consumers() const;
  // The graph input's shape per sample (without the batch).
  Dims SampleShape() const;
};

Result<Graph> ReadGraph(std::string_view bytes, const std::string& origin,
                        const ImportLimits& limits = {});

}  // namespace edgeloop::ml::onnx_import
