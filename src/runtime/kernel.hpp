// The contract between the planner and the operator kernels. An op provides three functions:
//   Check  at load: attributes and input counts are valid (no shapes known yet);
//   Infer  at planning: output types and shapes from input types and shapes (and, for inputs
//          that determine a shape, such as Reshape's, their values when known), plus the
//          scratch memory Run will need;
//   Run    at inference: computes outputs into memory the planner assigned. Run never
//          allocates; it may fail only on data it cannot see at planning (e.g. an index).
// Every op has a portable reference implementation; ops with a fast path take it when the
// backend is kFast, and tests check the two against each other.
#pragma once

#include <string>
#include <vector>

#include "common/result.hpp"
#include "runtime/graph.hpp"
#include "runtime/tensor.hpp"

namespace edgeloop::runtime {

enum class Backend { kReference, kFast };

struct InferContext {
  const Node& node;
  std::vector<const TensorInfo*> in;  // nullptr for omitted optional inputs
  std::vector<const Tensor*> values;  // input values known at planning, else nullptr
  std::vector<TensorInfo> out;        // filled by Infer, one per node output
  size_t scratch_bytes = 0;           // filled by Infer when Run needs scratch memory
  Backend backend = Backend::kFast;
  std::vector<bool> read;  // which values Infer looked at through Value()

  // The value of input i when known at planning, else nullptr. Kernels whose output shapes
  // follow an input's value read it through here: the planner then knows the plan depends
  // on that value and keeps one plan per value when it is a graph input.
  const Tensor* Value(size_t i) {
    if (i >= values.size() || !values[i]) return nullptr;
    read.resize(values.size(), false);
    read[i] = true;
    return values[i];
  }

  Error Fail(const std::string& what) const {
    return Error(Errc::kMismatch, "node '" + node.name + "' (" + node.op_type + "): " + what);
  }
};

struct RunContext {
  const Node& node;
  std::vector<const Tensor*> in;  // nullptr for omitted optional inputs
  std::vector<Tensor*> out;       // nullptr for omitted optional outputs
  void* scratch = nullptr;
  Backend backend = Backend::kFast;
  // Kernel-private data kept with the plan for this node (e.g. weights repacked for the fast
  // path), empty on the first run; nullptr when nothing may be kept (constant folding).
  std::vector<unsigned char>* state = nullptr;
};

struct OpKernel {
  const char* op_type;
  Status (*check)(const Node&);
  Status (*infer)(InferContext&);
  Status (*run)(RunContext&);
};

// The kernel for op_type, or nullptr when the runtime does not support it.
const OpKernel* FindKernel(const std::string& op_type);
// All supported op types, sorted.
std::vector<std::string> SupportedOps();

// Shared helpers for kernels.
Error NodeError(const Node& n, Errc code, const std::string& what);
// Numpy-style broadcast of two shapes; false when they do not broadcast.
bool BroadcastShapes(const Shape& a, const Shape& b, Shape* out);
// Normalises an axis in [-rank, rank) to [0, rank); false when out of range.
bool NormalizeAxis(int64_t axis, int64_t rank, int64_t* out);
// Checks the node has between lo and hi inputs (counting omitted ones) and at least `outs`
// outputs.
Status CheckArity(const Node& n, size_t lo, size_t hi, size_t outs = 1);
// Copies input 0 to output 0 (Identity, Flatten, Reshape, Dropout).
Status CopyInputToOutput(RunContext& c);
// Requires input i to be of one of the given types.
Status RequireType(const InferContext& c, size_t i, std::initializer_list<DType> types);

}  // namespace edgeloop::runtime
