#include "runtime/model.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>

#include "common/file.hpp"

namespace edgeloop::runtime {
namespace {

double Elements(const TensorInfo* t) {
  if (t == nullptr) return 0;
  double n = 1;
  for (int64_t d : t->shape) n *= static_cast<double>(std::max<int64_t>(d, 0));
  return n;
}

// Arithmetic a node does per inference: two per multiply-add for the layers whose cost is a
// product of their weights and their outputs; one per element read or written for the
// rest, which are bound by memory. An estimate for a budget, not a profile.
double NodeFlops(const Node& node, const InferContext& c) {
  auto in = [&](size_t i) { return i < c.in.size() ? c.in[i] : nullptr; };
  auto weight_fan_in = [&](size_t i) {  // elements of W per output channel: W[1:]
    const TensorInfo* w = in(i);
    if (w == nullptr || w->shape.empty()) return 0.0;
    double n = 1;
    for (size_t d = 1; d < w->shape.size(); ++d)
      n *= static_cast<double>(std::max<int64_t>(w->shape[d], 0));
    return n;
  };
  const double out = c.out.empty() ? 0 : Elements(&c.out[0]);
  const std::string& op = node.op_type;
  if (op == "Conv" || op == "ConvInteger") return 2 * out * weight_fan_in(1);
  if (op == "QLinearConv") return 2 * out * weight_fan_in(3);
  if (op == "ConvTranspose") return 2 * Elements(in(0)) * weight_fan_in(1);
  if (op == "Gemm" || op == "MatMul" || op == "QLinearMatMul" || op == "MatMulInteger") {
    const TensorInfo* a = in(0);
    if (a == nullptr || a->shape.empty()) return out;
    int64_t k = a->shape.back();
    if (op == "Gemm" && node.Int("transA", 0) != 0) k = a->shape.front();
    return 2 * out * static_cast<double>(std::max<int64_t>(k, 0));
  }
  if (op == "LSTM" || op == "GRU" || op == "RNN") {
    const TensorInfo* x = in(0);
    double steps = x != nullptr && x->shape.size() >= 2
                       ? static_cast<double>(x->shape[0]) * static_cast<double>(x->shape[1])
                       : 0;
    return 2 * steps * (Elements(in(1)) + Elements(in(2)));
  }
  if (op == "MaxPool" || op == "AveragePool" || op == "LpPool") {  // a window per output
    double window = 1;
    for (int64_t k : node.Ints("kernel_shape"))
      window *= static_cast<double>(std::max<int64_t>(k, 1));
    return out * window + Elements(in(0));
  }
  if (op == "LRN")
    return Elements(in(0)) * static_cast<double>(std::max<int64_t>(node.Int("size", 1), 1));
  double n = 0;
  for (const TensorInfo* t : c.in) n += Elements(t);
  for (const TensorInfo& t : c.out) n += Elements(&t);
  return n;
}

std::string FlopsString(double flops) {
  char buf[32];
  if (flops >= 1e9)
    std::snprintf(buf, sizeof buf, "%.3g GFLOP", flops / 1e9);
  else
    std::snprintf(buf, sizeof buf, "%.3g MFLOP", flops / 1e6);
  return buf;
}

constexpr size_t kAlign = 64;
size_t AlignUp(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

// kAlias: a view of another arena value's memory under a new shape (the output of Flatten,
// Reshape, Squeeze, Unsqueeze, Identity or Dropout when nothing else reads the input), so no copy
// is made.
enum class SlotKind { kNone, kInitializer, kConstant, kInput, kArena, kAlias };

struct Slot {
  SlotKind kind = SlotKind::kNone;
  TensorInfo info;
  size_t offset = 0;          // kArena
  size_t input_index = 0;     // kInput
  OwnedTensor folded;         // kConstant
  int first = -1, last = -1;  // step indices of definition and last use (kArena)
  int alias_of = -1;          // kAlias: the kArena value whose memory this one shares
};

struct Step {
  const Node* node;
  const OpKernel* kernel;
  std::vector<unsigned char> state;  // RunContext::state
};

// 64-byte aligned, zero-initialised memory that never moves.
class Arena {
 public:
  void Reset(size_t bytes) {
    storage_.assign(bytes + kAlign, 0);
    auto p = reinterpret_cast<uintptr_t>(storage_.data());
    base_ = storage_.data() + (AlignUp(p) - p);
  }
  unsigned char* base() { return base_; }

 private:
  std::vector<unsigned char> storage_;
  unsigned char* base_ = nullptr;
};

// A float Clip's constant bounds (attributes before opset 11, constant inputs after); false
// when a bound is not a constant scalar.
bool ClipBounds(const Graph& g, const Node& clip, float* lo, float* hi) {
  *lo = -std::numeric_limits<float>::infinity();
  *hi = std::numeric_limits<float>::infinity();
  if (clip.opset < 11) {
    *lo = clip.Float("min", *lo);
    *hi = clip.Float("max", *hi);
    return true;
  }
  for (size_t k = 1; k <= 2; ++k) {
    const int id = clip.Input(k);
    if (id < 0) continue;
    auto it = g.initializers.find(id);
    if (it == g.initializers.end() || it->second.dtype != DType::kFloat32 ||
        NumElements(it->second.shape) != 1)
      return false;
    (k == 1 ? *lo : *hi) = it->second.as<float>()[0];
  }
  return true;
}

// How many nodes (and graph outputs) read each value.
std::map<int, int> Readers(const Graph& g) {
  std::map<int, int> readers;
  for (const Node& n : g.nodes)
    for (int id : n.inputs)
      if (id >= 0) ++readers[id];
  for (int id : g.outputs) ++readers[id];
  return readers;
}

// The index of the node that computes each value.
std::map<int, size_t> Producers(const Graph& g) {
  std::map<int, size_t> producer;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int id : g.nodes[i].outputs)
      if (id >= 0) producer[id] = i;
  return producer;
}

// Removes the nodes marked in `drop` (folded into others) and their kernels.
void DropNodes(Graph& g, std::vector<const OpKernel*>& kernels, const std::vector<bool>& drop) {
  std::vector<Node> nodes;
  std::vector<const OpKernel*> ks;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (drop[i]) continue;
    nodes.push_back(std::move(g.nodes[i]));
    ks.push_back(kernels[i]);
  }
  g.nodes = std::move(nodes);
  kernels = std::move(ks);
}

// Folds a Relu, or a Clip with constant bounds (Relu6), into the Conv or Gemm that feeds it when
// nothing else reads the layer's output: the layer applies max(0, .) as it writes (attribute
// "edgeloop.fused_relu"), saving a pass over memory and a buffer. Only for the fast backend; the
// reference backend runs the graph as written.
void FuseRelu(Graph& g, std::vector<const OpKernel*>& kernels) {
  std::map<int, int> readers = Readers(g);
  const std::map<int, size_t> producer = Producers(g);
  std::vector<bool> drop(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& relu = g.nodes[i];
    float lo = 0, hi = std::numeric_limits<float>::infinity();
    if (relu.op_type == "Clip") {
      if (!ClipBounds(g, relu, &lo, &hi)) continue;
    } else if (relu.op_type != "Relu" || relu.inputs.size() != 1) {
      continue;
    }
    if (relu.inputs.empty() || relu.inputs[0] < 0) continue;
    auto p = producer.find(relu.inputs[0]);
    if (p == producer.end() || readers[relu.inputs[0]] != 1) continue;
    Node& layer = g.nodes[p->second];
    if ((layer.op_type != "Conv" && layer.op_type != "Gemm") || layer.outputs.size() != 1) continue;
    Attribute a;
    a.kind = Attribute::Kind::kInt;
    a.i = 1;
    if (relu.op_type == "Relu") {
      layer.attrs["edgeloop.fused_relu"] = a;
    } else {
      Attribute b;
      b.kind = Attribute::Kind::kFloat;
      b.f = lo;
      layer.attrs["edgeloop.fused_clip_min"] = b;
      b.f = hi;
      layer.attrs["edgeloop.fused_clip_max"] = b;
    }
    layer.outputs[0] = relu.outputs[0];
    drop[i] = true;
  }
  DropNodes(g, kernels, drop);
}

// Folds an Add of a Conv's output and another activation into the Conv when nothing else
// reads the Conv's output and the other operand is computed before the Conv: the Conv adds it
// (input 3, attribute "edgeloop.fused_add") as it writes, and a Relu that alone reads the sum
// is folded as well, so a residual block's Add and Relu make no pass of their own over memory.
// The operand must have the Conv's output shape (InferConv checks). Fast backend only.
void FuseResidualAdd(Graph& g, std::vector<const OpKernel*>& kernels) {
  std::map<int, int> readers = Readers(g);
  const std::map<int, size_t> producer = Producers(g);
  std::vector<bool> drop(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& add = g.nodes[i];
    if (drop[i] || add.op_type != "Add" || add.inputs.size() != 2 || add.outputs.size() != 1)
      continue;
    for (int side = 0; side < 2; ++side) {
      const int conv_out = add.inputs[side], other = add.inputs[1 - side];
      if (conv_out < 0 || other < 0 || conv_out == other || readers[conv_out] != 1) continue;
      auto p = producer.find(conv_out);
      if (p == producer.end() || g.initializers.count(other)) continue;
      Node& layer = g.nodes[p->second];
      if (layer.op_type != "Conv" || layer.outputs.size() != 1 || layer.inputs.size() > 3 ||
          layer.Has("edgeloop.fused_relu") || layer.Has("edgeloop.fused_clip_min"))
        continue;
      auto q = producer.find(other);
      if (q != producer.end() && q->second >= p->second) continue;
      layer.inputs.resize(3, -1);
      layer.inputs.push_back(other);
      Attribute one;
      one.kind = Attribute::Kind::kInt;
      one.i = 1;
      layer.attrs["edgeloop.fused_add"] = one;
      layer.outputs[0] = add.outputs[0];
      drop[i] = true;
      const int sum = add.outputs[0];
      if (readers[sum] == 1)
        for (size_t j = i + 1; j < g.nodes.size(); ++j) {
          Node& relu = g.nodes[j];
          if (relu.op_type == "Relu" && relu.inputs.size() == 1 && relu.inputs[0] == sum &&
              relu.outputs.size() == 1) {
            layer.attrs["edgeloop.fused_relu"] = one;
            layer.outputs[0] = relu.outputs[0];
            drop[j] = true;
            break;
          }
        }
      break;
    }
  }
  DropNodes(g, kernels, drop);
}

}  // namespace

struct Plan {
  std::vector<Slot> slots;
  std::vector<Step> steps;
  std::vector<Tensor> views;  // by value id; inputs are refreshed per run
  size_t scratch_offset = 0, scratch_bytes = 0;
  Arena arena;
  PlanStats stats;
};

struct Model::Impl {
  Graph graph;
  ModelOptions options;
  std::vector<const OpKernel*> kernels;  // by node index
  std::map<std::string, std::unique_ptr<Plan>> plans;
  Plan* current = nullptr;
  // Graph inputs (by index) whose values a kernel read while planning (Resize scales, Range
  // limits, Slice starts, ...): the plan's shapes follow them, so plans are made per value.
  // Learned by BuildPlan.
  std::vector<bool> shaping_inputs;
  std::vector<QdqPattern> qdq;
  std::map<std::string, OpTime> op_times;  // ModelOptions::profile

  Result<std::unique_ptr<Plan>> BuildPlan(const std::vector<Tensor>& inputs);
  std::string PlanKey(const std::vector<Tensor>& inputs) const;
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

const Graph& Model::graph() const {
  return impl_->graph;
}
const std::vector<ValueInfo>& Model::inputs() const {
  return impl_->graph.input_info;
}
const std::vector<ValueInfo>& Model::outputs() const {
  return impl_->graph.output_info;
}

int64_t Model::ParameterCount() const {
  int64_t n = 0;
  for (const auto& kv : impl_->graph.initializers) n += NumElements(kv.second.shape);
  return n;
}
size_t Model::ParameterBytes() const {
  size_t n = 0;
  for (const auto& kv : impl_->graph.initializers) n += kv.second.bytes.size();
  return n;
}
std::vector<OpTime> Model::op_times() const {
  std::vector<OpTime> out;
  for (const auto& kv : impl_->op_times) out.push_back(kv.second);
  std::sort(out.begin(), out.end(),
            [](const OpTime& a, const OpTime& b) { return a.seconds > b.seconds; });
  return out;
}
const std::vector<QdqPattern>& Model::qdq_patterns() const {
  return impl_->qdq;
}
PlanStats Model::plan_stats() const {
  return impl_->current ? impl_->current->stats : PlanStats{};
}

Result<Model> Model::Load(const std::string& path, const ModelOptions& options) {
  EDGELOOP_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return LoadFromBytes(bytes, path, options);
}

std::vector<OpUse> OpSupport(const Graph& graph) {
  std::vector<OpUse> out;
  std::map<std::string, size_t> at;
  for (const Node& n : graph.nodes) {
    auto [it, fresh] = at.emplace(n.op_type, out.size());
    if (fresh) out.push_back({n.op_type, 0, FindKernel(n.op_type) != nullptr, n.name});
    ++out[it->second].count;
  }
  std::sort(out.begin(), out.end(),
            [](const OpUse& a, const OpUse& b) { return a.op_type < b.op_type; });
  return out;
}

Result<Model> Model::LoadFromBytes(std::string_view bytes, const std::string& origin,
                                   const ModelOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  EDGELOOP_ASSIGN_OR_RETURN(impl->graph, ParseOnnxModel(bytes, origin, options.limits));
  impl->shaping_inputs.assign(impl->graph.inputs.size(), false);
  // Every op the runtime lacks is named at once, with its node count and first node, so a
  // user sees the whole gap, not the first op of it.
  std::vector<OpUse> missing;
  for (const OpUse& use : OpSupport(impl->graph))
    if (!use.supported) missing.push_back(use);
  if (!missing.empty()) {
    std::string list;
    for (const OpUse& m : missing)
      list += (list.empty() ? "" : ", ") + std::string("op '") + m.op_type + "' (" +
              std::to_string(m.count) + (m.count == 1 ? " node" : " nodes") + ", first node '" +
              m.first_node + "')";
    return Error(Errc::kUnsupported, origin + ": not supported by the edgeloop runtime (opset " +
                                         std::to_string(impl->graph.nodes.front().opset) +
                                         "): " + list);
  }
  for (const Node& n : impl->graph.nodes) {
    auto st = FindKernel(n.op_type)->check(n);
    if (!st.ok()) return st.error().WithContext(origin);
  }
  // QDQ patterns become integer kernels on the fast backend; the reference backend runs the
  // graph as written, so the report says what the fast one does.
  impl->qdq = FuseQdq(impl->graph, options.backend == Backend::kFast);
  const bool rewritten = options.backend == Backend::kFast &&
                         std::any_of(impl->qdq.begin(), impl->qdq.end(),
                                     [](const QdqPattern& p) { return !p.fused_into.empty(); });
  for (const Node& n : impl->graph.nodes) {
    const OpKernel* k = FindKernel(n.op_type);
    // Only a rewritten graph has nodes the first pass has not checked.
    if (rewritten) {
      auto st = k->check(n);
      if (!st.ok()) return st.error().WithContext(origin + ": after QDQ fusion");
    }
    impl->kernels.push_back(k);
  }
  if (options.backend == Backend::kFast) {
    FuseRelu(impl->graph, impl->kernels);
    if (options.fold_residual_adds) FuseResidualAdd(impl->graph, impl->kernels);
  }
  // Plan for the declared shapes now when they are fixed (symbolic dimensions taken as 1)
  // and no input's value shapes the graph, so that the first Run allocates nothing. A plan
  // that turns out to follow an input's (placeholder) value is dropped: the first Run makes
  // it from the real value.
  std::vector<OwnedTensor> dummies;
  bool plannable = true;
  for (const ValueInfo& vi : impl->graph.input_info) {
    if (!vi.has_shape || vi.dtype == DType::kInt64) {
      plannable = false;
      break;
    }
    OwnedTensor t;
    t.dtype = vi.dtype;
    for (const auto& d : vi.dims) t.shape.push_back(d.value_or(1));
    int64_t n = NumElements(t.shape);
    if (n < 0 || static_cast<size_t>(n) * DTypeSize(t.dtype) > options.limits.max_tensor_bytes)
      return Error(
          Errc::kResourceExhausted,
          origin + ": input '" + vi.name + "' declares an absurd shape " + ShapeString(t.shape));
    t.bytes.assign(static_cast<size_t>(n) * DTypeSize(t.dtype), 0);
    dummies.push_back(std::move(t));
  }
  Model model(std::move(impl));
  if (plannable) {
    std::vector<Tensor> views;
    for (auto& d : dummies) views.push_back(d.view());
    auto plan = model.impl_->BuildPlan(views);
    const auto& shaping = model.impl_->shaping_inputs;
    if (std::find(shaping.begin(), shaping.end(), true) != shaping.end()) return model;
    if (!plan.ok()) return plan.error().WithContext(origin);
    model.impl_->current = plan->get();
    model.impl_->plans[model.impl_->PlanKey(views)] = std::move(*plan);
  }
  return model;
}

std::string Model::Impl::PlanKey(const std::vector<Tensor>& inputs) const {
  std::string key;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    key += ShapeString(t.shape);
    if (i < shaping_inputs.size() && shaping_inputs[i]) {
      static const char kHex[] = "0123456789abcdef";
      key += "#";
      const auto* b = static_cast<const unsigned char*>(t.data);
      for (size_t k = 0; b && k < t.bytes(); ++k) {
        key += kHex[b[k] >> 4];
        key += kHex[b[k] & 15];
      }
    } else if (t.dtype == DType::kInt64 && t.size() <= 16) {  // values may shape the graph
      key += "=";
      for (int64_t k = 0; k < t.size(); ++k) key += std::to_string(t.as<int64_t>()[k]) + ",";
    }
    key += ";";
  }
  return key;
}

Result<std::unique_ptr<Plan>> Model::Impl::BuildPlan(const std::vector<Tensor>& inputs) {
  auto plan = std::make_unique<Plan>();
  auto& slots = plan->slots;
  slots.resize(graph.value_names.size());
  // How many nodes (and graph outputs) read each value.
  std::vector<int> readers(slots.size(), 0);
  for (const Node& n : graph.nodes)
    for (int id : n.inputs)
      if (id >= 0) ++readers[static_cast<size_t>(id)];
  for (int id : graph.outputs) ++readers[static_cast<size_t>(id)];
  for (const auto& kv : graph.initializers) {
    slots[static_cast<size_t>(kv.first)].kind = SlotKind::kInitializer;
    slots[static_cast<size_t>(kv.first)].info = {kv.second.dtype, kv.second.shape};
  }
  for (size_t i = 0; i < graph.inputs.size(); ++i) {
    Slot& s = slots[static_cast<size_t>(graph.inputs[i])];
    s.kind = SlotKind::kInput;
    s.input_index = i;
    s.info = {inputs[i].dtype, inputs[i].shape};
  }
  std::vector<Tensor> known(slots.size());
  std::vector<bool> has_known(slots.size(), false);
  for (const auto& kv : graph.initializers) {
    known[static_cast<size_t>(kv.first)] = kv.second.view();
    has_known[static_cast<size_t>(kv.first)] = true;
  }
  for (size_t i = 0; i < graph.inputs.size(); ++i) {
    known[static_cast<size_t>(graph.inputs[i])] = inputs[i];
    has_known[static_cast<size_t>(graph.inputs[i])] = true;
  }

  size_t naive = 0;
  double flops = 0;
  for (size_t ni = 0; ni < graph.nodes.size(); ++ni) {
    const Node& node = graph.nodes[ni];
    const OpKernel* kernel = kernels[ni];
    InferContext ic{node, {}, {}, {}, 0, options.backend, {}};
    // Shape reads only its input's shape, which planning knows: it is always folded, so that
    // shapes computed from it (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) become
    // constants of the plan and nothing of the chain runs per inference.
    const bool shape_only = node.op_type == "Shape";
    bool all_constant = true;
    for (int id : node.inputs) {
      if (id < 0) {
        ic.in.push_back(nullptr);
        ic.values.push_back(nullptr);
        continue;
      }
      const Slot& s = slots[static_cast<size_t>(id)];
      ic.in.push_back(&s.info);
      ic.values.push_back(has_known[static_cast<size_t>(id)] ? &known[static_cast<size_t>(id)]
                                                             : nullptr);
      if (!shape_only && s.kind != SlotKind::kInitializer && s.kind != SlotKind::kConstant)
        all_constant = false;
    }
    Status inferred = kernel->infer(ic);
    for (size_t i = 0; i < ic.read.size(); ++i) {
      if (!ic.read[i] || node.inputs[i] < 0) continue;
      const Slot& s = slots[static_cast<size_t>(node.inputs[i])];
      if (s.kind == SlotKind::kInput) shaping_inputs[s.input_index] = true;
    }
    EDGELOOP_RETURN_IF_ERROR(inferred);
    // The compute budget, before anything of this node runs (folding included).
    flops += NodeFlops(node, ic);
    if (flops > options.max_flops)
      return NodeError(node, Errc::kResourceExhausted,
                       "the plan needs " + FlopsString(flops) + " per inference, more than the " +
                           FlopsString(options.max_flops) + " compute budget");
    if (ic.scratch_bytes > options.max_arena_bytes)
      return NodeError(node, Errc::kResourceExhausted,
                       "needs " + std::to_string(ic.scratch_bytes >> 20) +
                           " MiB of scratch memory, more than the arena limit");
    if (ic.out.size() < node.outputs.size())
      return NodeError(node, Errc::kInternal, "shape inference gave too few outputs");
    for (size_t o = 0; o < node.outputs.size(); ++o) {
      if (node.outputs[o] < 0) continue;
      const TensorInfo& info = ic.out[o];
      int64_t n = NumElements(info.shape);
      if (n < 0 || static_cast<size_t>(n) >
                       options.limits.max_tensor_bytes / std::max<size_t>(1, DTypeSize(info.dtype)))
        return NodeError(node, Errc::kResourceExhausted,
                         "output shape " + ShapeString(info.shape) + " is too large to allocate");
      Slot& s = slots[static_cast<size_t>(node.outputs[o])];
      s.info = info;
    }
    if (all_constant) {
      // Constant folding: compute now, keep the result with the plan.
      std::vector<unsigned char> scratch(ic.scratch_bytes);
      RunContext rc{node, {}, {}, scratch.data(), options.backend};
      std::vector<Tensor> shapes(node.inputs.size());  // for a shape_only node's computed inputs
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        const int id = node.inputs[i];
        if (id < 0) {
          rc.in.push_back(nullptr);
        } else if (has_known[static_cast<size_t>(id)]) {
          rc.in.push_back(&known[static_cast<size_t>(id)]);
        } else {
          const TensorInfo& info = slots[static_cast<size_t>(id)].info;
          shapes[i] = Tensor{info.dtype, info.shape, nullptr};
          rc.in.push_back(&shapes[i]);
        }
      }
      // A folded node no longer reads its inputs at run time (this matters to a shape_only
      // node, whose input may be computed per inference and then alias into a later Reshape).
      for (int id : node.inputs)
        if (id >= 0) --readers[static_cast<size_t>(id)];
      std::vector<Tensor> outs(node.outputs.size());
      for (size_t o = 0; o < node.outputs.size(); ++o) {
        if (node.outputs[o] < 0) {
          rc.out.push_back(nullptr);
          continue;
        }
        Slot& s = slots[static_cast<size_t>(node.outputs[o])];
        s.kind = SlotKind::kConstant;
        s.folded.dtype = s.info.dtype;
        s.folded.shape = s.info.shape;
        s.folded.bytes.assign(s.info.bytes(), 0);
        outs[o] = s.folded.view();
        rc.out.push_back(&outs[o]);
      }
      EDGELOOP_RETURN_IF_ERROR(kernel->run(rc));
      for (int id : node.outputs) {
        if (id < 0) continue;
        known[static_cast<size_t>(id)] = slots[static_cast<size_t>(id)].folded.view();
        has_known[static_cast<size_t>(id)] = true;
      }
      ++plan->stats.folded_nodes;
      continue;
    }
    const int step = static_cast<int>(plan->steps.size());
    plan->steps.push_back({&node, kernel, {}});
    plan->scratch_bytes = std::max(plan->scratch_bytes, ic.scratch_bytes);
    auto root = [&](int id) {
      while (slots[static_cast<size_t>(id)].kind == SlotKind::kAlias)
        id = slots[static_cast<size_t>(id)].alias_of;
      return id;
    };
    for (int id : node.inputs) {
      if (id < 0) continue;
      Slot& s = slots[static_cast<size_t>(root(id))];
      if (s.kind == SlotKind::kArena) s.last = step;
    }
    const bool copy_op = node.op_type == "Flatten" || node.op_type == "Reshape" ||
                         node.op_type == "Identity" || node.op_type == "Squeeze" ||
                         node.op_type == "Unsqueeze" ||
                         (node.op_type == "Dropout" && node.outputs.size() == 1);
    if (copy_op && node.inputs[0] >= 0 && node.outputs[0] >= 0 &&
        slots[static_cast<size_t>(root(node.inputs[0]))].kind == SlotKind::kArena &&
        readers[static_cast<size_t>(node.inputs[0])] == 1) {
      Slot& s = slots[static_cast<size_t>(node.outputs[0])];
      s.kind = SlotKind::kAlias;
      s.alias_of = root(node.inputs[0]);
      continue;
    }
    for (int id : node.outputs) {
      if (id < 0) continue;
      Slot& s = slots[static_cast<size_t>(id)];
      s.kind = SlotKind::kArena;
      s.first = s.last = step;
      naive += AlignUp(s.info.bytes());
    }
  }
  for (int id : graph.outputs) {
    while (slots[static_cast<size_t>(id)].kind == SlotKind::kAlias)
      id = slots[static_cast<size_t>(id)].alias_of;
    Slot& s = slots[static_cast<size_t>(id)];
    if (s.kind == SlotKind::kArena) s.last = static_cast<int>(plan->steps.size());
  }

  // Offsets: largest buffers first, each at the lowest offset that does not overlap a placed
  // buffer whose lifetime intersects its own.
  std::vector<int> order;
  for (size_t i = 0; i < slots.size(); ++i)
    if (slots[i].kind == SlotKind::kArena) order.push_back(static_cast<int>(i));
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return slots[static_cast<size_t>(a)].info.bytes() > slots[static_cast<size_t>(b)].info.bytes();
  });
  std::vector<int> placed;
  size_t total = 0;
  for (int id : order) {
    Slot& s = slots[static_cast<size_t>(id)];
    size_t need = AlignUp(std::max<size_t>(s.info.bytes(), 1));
    std::vector<std::pair<size_t, size_t>> busy;
    for (int pid : placed) {
      const Slot& p = slots[static_cast<size_t>(pid)];
      if (p.first <= s.last && s.first <= p.last)
        busy.push_back({p.offset, p.offset + AlignUp(std::max<size_t>(p.info.bytes(), 1))});
    }
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& [b, e] : busy) {
      if (offset + need <= b) break;
      offset = std::max(offset, e);
    }
    s.offset = offset;
    total = std::max(total, offset + need);
    placed.push_back(id);
  }
  plan->scratch_offset = total;
  total += AlignUp(plan->scratch_bytes);
  if (total > options.max_arena_bytes)
    return Error(Errc::kResourceExhausted,
                 "planned memory of " + std::to_string(total >> 20) + " MiB exceeds the limit of " +
                     std::to_string(options.max_arena_bytes >> 20) + " MiB");
  plan->arena.Reset(total);
  plan->stats.arena_bytes = total;
  plan->stats.naive_bytes = naive + plan->scratch_bytes;
  plan->stats.steps = plan->steps.size();
  plan->stats.flops = flops;

  plan->views.resize(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    Slot& s = slots[i];
    Tensor& v = plan->views[i];
    v.dtype = s.info.dtype;
    v.shape = s.info.shape;
    switch (s.kind) {
      case SlotKind::kInitializer:
        v = graph.initializers.at(static_cast<int>(i)).view();
        break;
      case SlotKind::kConstant:
        v = s.folded.view();
        break;
      case SlotKind::kArena:
        v.data = plan->arena.base() + s.offset;
        break;
      case SlotKind::kAlias:
        v.data = plan->arena.base() + slots[static_cast<size_t>(s.alias_of)].offset;
        break;
      case SlotKind::kInput:
      case SlotKind::kNone:
        break;
    }
  }
  return plan;
}

Result<std::vector<OwnedTensor>> Model::Run(const std::vector<Tensor>& inputs) {
  return Run(inputs, Observer());
}

Result<std::vector<OwnedTensor>> Model::Run(const std::vector<Tensor>& inputs,
                                            const Observer& observe) {
  const Graph& g = impl_->graph;
  if (inputs.size() != g.inputs.size())
    return Error(Errc::kInvalidArgument, "the model takes " + std::to_string(g.inputs.size()) +
                                             " input(s), got " + std::to_string(inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ValueInfo& vi = g.input_info[i];
    const Tensor& t = inputs[i];
    if (t.dtype != vi.dtype)
      return Error(Errc::kMismatch, "input '" + vi.name + "' must be " + DTypeName(vi.dtype) +
                                        ", got " + DTypeName(t.dtype));
    bool ok = !vi.has_shape || t.shape.size() == vi.dims.size();
    for (size_t d = 0; ok && vi.has_shape && d < vi.dims.size(); ++d)
      if (vi.dims[d] && *vi.dims[d] != t.shape[d]) ok = false;
    if (!ok) {
      std::string want = "[";
      for (size_t d = 0; d < vi.dims.size(); ++d)
        want += (d ? "," : "") + (vi.dims[d] ? std::to_string(*vi.dims[d]) : std::string("?"));
      return Error(Errc::kMismatch, "input '" + vi.name + "' must have shape " + want + "]" +
                                        ", got " + ShapeString(t.shape));
    }
    if (t.size() < 0)
      return Error(Errc::kMismatch, "input '" + vi.name + "' has a negative dimension");
    if (t.size() > 0 && !t.data)
      return Error(Errc::kInvalidArgument, "input '" + vi.name + "' has no data");
  }
  std::string key = impl_->PlanKey(inputs);
  auto it = impl_->plans.find(key);
  if (it == impl_->plans.end()) {
    EDGELOOP_ASSIGN_OR_RETURN(auto plan, impl_->BuildPlan(inputs));
    key = impl_->PlanKey(inputs);  // planning may have found inputs whose values shape it
    if (impl_->plans.size() >= 16) impl_->plans.clear();  // bound the cache
    it = impl_->plans.emplace(key, std::move(plan)).first;
  }
  Plan& plan = *it->second;
  impl_->current = &plan;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    plan.views[static_cast<size_t>(g.inputs[i])] = inputs[i];
    if (observe) observe(g.value_names[static_cast<size_t>(g.inputs[i])], inputs[i]);
  }

  void* scratch = plan.arena.base() + plan.scratch_offset;
  for (Step& step : plan.steps) {
    RunContext rc{*step.node, {}, {}, scratch, impl_->options.backend, &step.state};
    rc.in.reserve(step.node->inputs.size());
    for (int id : step.node->inputs)
      rc.in.push_back(id < 0 ? nullptr : &plan.views[static_cast<size_t>(id)]);
    rc.out.reserve(step.node->outputs.size());
    for (int id : step.node->outputs)
      rc.out.push_back(id < 0 ? nullptr : &plan.views[static_cast<size_t>(id)]);
    if (impl_->options.profile) {
      const auto t0 = std::chrono::steady_clock::now();
      EDGELOOP_RETURN_IF_ERROR(step.kernel->run(rc));
      const std::string key =
          step.node->op_type + (step.node->Int("group", 1) > 1 ? " (grouped)" : "");
      OpTime& t = impl_->op_times[key];
      t.op = key;
      ++t.calls;
      t.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } else {
      EDGELOOP_RETURN_IF_ERROR(step.kernel->run(rc));
    }
    if (observe)
      for (int id : step.node->outputs)
        if (id >= 0)
          observe(g.value_names[static_cast<size_t>(id)], plan.views[static_cast<size_t>(id)]);
  }
  std::vector<OwnedTensor> out;
  for (int id : g.outputs) {
    const Tensor& v = plan.views[static_cast<size_t>(id)];
    OwnedTensor o;
    o.dtype = v.dtype;
    o.shape = v.shape;
    o.bytes.resize(v.bytes());
    if (!o.bytes.empty()) std::memcpy(o.bytes.data(), v.data, o.bytes.size());
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace edgeloop::runtime
