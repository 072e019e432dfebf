// The edge runtime's public API: load an ONNX model, run it.
//
//   auto m = runtime::Model::Load("model.onnx");          // parse, check every node
//   auto out = m->Run({runtime::Tensor{kFloat32, {1,1,28,28}, pixels}});
//
// Loading checks the whole graph (every op supported, attributes valid, initializer sizes
// match their shapes) and, when the inputs have fixed shapes (symbolic dimensions count as
// 1), plans memory for them: shapes of every value, constant folding, and one arena with
// offsets assigned by lifetime. A later Run with the same input shapes allocates nothing but
// its result; other shapes are planned once each and cached.
//
// Thread safety: a Model may be used by one thread at a time (the arena is shared); load one
// Model per thread for parallel inference.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "runtime/graph.hpp"
#include "runtime/kernel.hpp"
#include "runtime/onnx_loader.hpp"
#include "runtime/qdq.hpp"

namespace edgeloop::runtime {

struct ModelOptions {
  Backend backend = Backend::kFast;
  LoadLimits limits;
  size_t max_arena_bytes = size_t{1} << 30;  // plans needing more are refused
  // Plans whose multiply-adds and other arithmetic, counted per inference (PlanStats::flops),
  // exceed this are refused: a model, or a batch, that would take minutes on the device. The
  // default (10^12, about 100 ResNet-50 inferences) stops only pathological graphs.
  double max_flops = 1e12;
  // Times every step of Run by op type (op_times()); costs a clock read per step.
  bool profile = false;
  // The fast backend folds a Conv's residual Add (and the Relu after it) into the Conv, so an
  // observer of Run never sees the Conv's own output. Calibration, which needs every
  // activation's range, turns it off.
  bool fold_residual_adds = true;
};

// Time spent per op type over the Runs of a profiling model ("Conv", "Conv (grouped)", ...).
struct OpTime {
  std::string op;
  int64_t calls = 0;
  double seconds = 0;
};

struct PlanStats {
  size_t arena_bytes = 0;   // activations, after lifetime-based reuse
  size_t naive_bytes = 0;   // what one buffer per value would need
  size_t folded_nodes = 0;  // nodes computed at planning (constant inputs only)
  size_t steps = 0;         // nodes run per inference
  double flops = 0;         // floating-point (or integer) operations per inference
};

// One op type of a graph: how many nodes use it, whether the runtime has it, and the first
// node that does (for messages).
struct OpUse {
  std::string op_type;
  int64_t count = 0;
  bool supported = false;
  std::string first_node;
};
// Every op type of the graph, sorted by name.
std::vector<OpUse> OpSupport(const Graph& graph);

class Model {
 public:
  static Result<Model> Load(const std::string& path, const ModelOptions& options = {});
  static Result<Model> LoadFromBytes(std::string_view bytes, const std::string& origin,
                                     const ModelOptions& options = {});
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  const Graph& graph() const;
  // Declared input and output names, types and shapes.
  const std::vector<ValueInfo>& inputs() const;
  const std::vector<ValueInfo>& outputs() const;
  int64_t ParameterCount() const;  // elements in all initializers
  size_t ParameterBytes() const;

  // Runs the graph; inputs in the order of inputs(). Errors: wrong count, type or shape.
  Result<std::vector<OwnedTensor>> Run(const std::vector<Tensor>& inputs);
  // The same, calling observe(value name, tensor) for every graph input and every value a
  // node computes, as soon as it exists (calibration and debugging; slower).
  using Observer = std::function<void(const std::string&, const Tensor&)>;
  Result<std::vector<OwnedTensor>> Run(const std::vector<Tensor>& inputs, const Observer& observe);
  // Every node fed by a DequantizeLinear, and whether the fast backend fused it into an
  // integer kernel (qdq.hpp).
  const std::vector<QdqPattern>& qdq_patterns() const;
  // With ModelOptions::profile: time per op type since load, slowest first.
  std::vector<OpTime> op_times() const;
  // The plan for the most recent input shapes.
  PlanStats plan_stats() const;

 private:
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeloop::runtime
