// The operators the ONNX importer turns into libtorch computations. Each op is built once per
// node at import, from the node's attributes and what is known about its inputs then (shapes;
// values of constant inputs), and checks everything it reads before anything is allocated.
// A built op is immutable: it computes its output in libtorch (trainable: gradients flow to
// weight inputs) and writes itself back into an ONNX graph in opset-13 form, whatever opset
// the file it came from used (Clip bounds as inputs, explicit pads instead of auto_pad, ...),
// using only ops the edge runtime runs.
//
// Shapes at import are full ONNX shapes with the batch as the first dimension of every data
// value, held at 1 (a placeholder: the built op works for any batch). Constants have no batch.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "ml/block.hpp"
#include "runtime/kernel.hpp"
#include "runtime/tensor.hpp"

namespace onnx {
class AttributeProto;
class NodeProto;
}  // namespace onnx

namespace edgeloop::ml::onnx_import {

using Dims = std::vector<int64_t>;

// One input of a node as seen at import.
struct OpInput {
  bool present = false;
  Dims dims;
  torch::Tensor constant;  // defined when the value is a constant (initializer, folded)
  bool is_constant() const { return constant.defined(); }
};

// The node an op is built from: attributes (type-checked; a wrong type is remembered and
// reported by the importer after the build) and its inputs.
class NodeContext {
 public:
  NodeContext(const onnx::NodeProto& node, std::string name, int64_t opset,
              std::vector<OpInput> inputs);

  const std::string& name() const { return name_; }
  const std::string& op_type() const;
  int64_t opset() const { return opset_; }
  size_t num_inputs() const { return inputs_.size(); }
  // Input i, or an absent input when the node has fewer.
  const OpInput& in(size_t i) const;

  bool Has(const std::string& attr) const;
  int64_t Int(const std::string& attr, int64_t def) const;
  float Float(const std::string& attr, float def) const;
  std::vector<int64_t> Ints(const std::string& attr, std::vector<int64_t> def) const;
  std::vector<float> Floats(const std::string& attr) const;
  std::string String(const std::string& attr, std::string def) const;
  const onnx::AttributeProto* Attr(const std::string& attr) const;

  // "node 'name' (Op): what", with the given code.
  Error Fail(Errc code, const std::string& what) const;
  // The first attribute read with the wrong type, if any.
  const std::optional<Error>& attr_error() const { return attr_error_; }

  // Checks shared by many ops.
  // Present, and data unless every input of the node is constant (the node is then folded).
  Status RequireData(size_t i) const;
  Status RequireConstant(size_t i) const;  // present and a constant
  Status RequireRank(size_t i, size_t lo, size_t hi) const;

 private:
  const onnx::AttributeProto* Typed(const std::string& attr, int type) const;

  const onnx::NodeProto& node_;
  std::string name_;
  int64_t opset_;
  std::vector<OpInput> inputs_;
  OpInput absent_;
  mutable std::optional<Error> attr_error_;
};

class NodeOp {
 public:
  virtual ~NodeOp() = default;
  // in[i] is undefined for absent inputs and for inputs the op absorbed at build.
  virtual torch::Tensor Forward(const std::vector<torch::Tensor>& in, bool training) const = 0;
  // Writes the op's inference form reading the values named in `in` ("" where Forward gets
  // an undefined tensor); returns the name of the value it produces. `prefix` is unique to
  // this node and names the initializers the op writes itself.
  virtual std::string Export(OnnxGraphWriter& w, const std::vector<std::string>& in,
                             const std::string& prefix) const = 0;
  // Inputs that, when constant, are trainable weights (Conv, Gemm, MatMul, BatchNormalization).
  virtual std::vector<size_t> WeightInputs() const { return {}; }
  // Gemm and MatMul: Y = alpha * op(A) op(B) + beta * C, so one can become a Linear head.
  struct MatrixProduct {
    float alpha = 1.f, beta = 1.f;
    bool trans_a = false, trans_b = false;
  };
  virtual std::optional<MatrixProduct> AsMatrixProduct() const { return std::nullopt; }
};

struct OpBuild {
  std::shared_ptr<const NodeOp> op;
  Dims out;                      // the shape of the node's (first) output
  std::vector<size_t> absorbed;  // constant inputs read at build (attributes in disguise)
};

using OpBuilder = Result<OpBuild> (*)(const NodeContext&);

// nullptr for ops the importer does not handle. "Constant" is handled by the graph reader.
OpBuilder FindOpBuilder(const std::string& op_type);
std::vector<std::string> SupportedOps();

// Shape helpers shared with the edge runtime: numpy-style broadcasting (false when the shapes
// do not fit), element counts (-1 on overflow or a negative dimension), "[1,3,28,28]".
using runtime::BroadcastShapes;
using runtime::NumElements;
inline std::string DimsString(const Dims& d) {
  return runtime::ShapeString(d);
}

// Per-category builders (onnx_import_ops_*.cpp), each filling in its part of the registry.
struct OpEntry {
  const char* op_type;
  OpBuilder build;
};
std::vector<OpEntry> ElementwiseOps();  // activations, Clip, binary arithmetic, Dropout, Identity
std::vector<OpEntry> SpatialOps();      // Conv, BatchNormalization, pooling
std::vector<OpEntry> TensorOps();  // Gemm, MatMul, Flatten, Reshape, Transpose, Concat, Softmax

}  // namespace edgeloop::ml::onnx_import
