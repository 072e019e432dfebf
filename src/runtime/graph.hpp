// The runtime's own view of an ONNX graph, independent of protobuf once loaded: values
// (graph inputs, initializers, node outputs) numbered densely, nodes in topological order,
// attributes decoded.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/tensor.hpp"

namespace edgeloop::runtime {

struct Attribute {
  enum class Kind { kInt, kFloat, kString, kInts, kFloats, kTensor } kind = Kind::kInt;
  int64_t i = 0;
  float f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  OwnedTensor tensor;
};

struct Node {
  std::string name;  // the node's name, or "<op_type>#<index>" when the file has none
  std::string op_type;
  int64_t opset = 0;         // the default domain's opset the model imports
  std::vector<int> inputs;   // value ids; -1 for an omitted optional input
  std::vector<int> outputs;  // value ids; -1 for an omitted optional output
  std::map<std::string, Attribute> attrs;

  bool Has(const std::string& a) const { return attrs.count(a) != 0; }
  int64_t Int(const std::string& a, int64_t dflt) const;
  float Float(const std::string& a, float dflt) const;
  std::string String(const std::string& a, const std::string& dflt) const;
  std::vector<int64_t> Ints(const std::string& a, std::vector<int64_t> dflt = {}) const;
  // The input's value id, or -1 when the node has fewer inputs or the input is omitted.
  int Input(size_t i) const { return i < inputs.size() ? inputs[i] : -1; }
  int Output(size_t i) const { return i < outputs.size() ? outputs[i] : -1; }
};

struct ValueInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  // Declared shape; std::nullopt entries are symbolic or unknown dimensions.
  std::vector<std::optional<int64_t>> dims;
  bool has_shape = false;
};

struct Graph {
  std::vector<std::string> value_names;     // by value id
  std::map<int, OwnedTensor> initializers;  // value id -> constant data
  std::vector<int> inputs;                  // graph inputs that are not initializers
  std::vector<ValueInfo> input_info;        // parallel to inputs
  std::vector<int> outputs;
  std::vector<ValueInfo> output_info;
  std::vector<Node> nodes;                      // topologically sorted
  std::map<std::string, std::string> metadata;  // metadata_props
  int64_t opset = 0;
  int64_t ir_version = 0;
  std::string producer;
};

}  // namespace edgeloop::runtime
