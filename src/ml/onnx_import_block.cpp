#include "ml/onnx_import_block.hpp"

#include <algorithm>
#include <map>

namespace edgeloop::ml::onnx_import {
namespace {

// libtorch parameter names: no dots, not empty.
std::string TorchName(const std::string& onnx_name, std::set<std::string>& used) {
  std::string s;
  for (char ch : onnx_name)
    s += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_') ? ch : '_';
  if (s.empty()) s = "t";
  std::string name = s;
  for (int i = 2; !used.insert(name).second; ++i) name = s + "_" + std::to_string(i);
  return name;
}

}  // namespace

Result<BackbonePlan> PlanBackbone(const Graph& g, int start, int target) {
  BackbonePlan plan;
  if (target == start) return plan;

  // The nodes target depends on.
  std::vector<bool> needed(g.nodes.size(), false), seen(g.values.size(), false);
  std::vector<int> stack = {target};
  while (!stack.empty()) {
    int v = stack.back();
    stack.pop_back();
    if (v == start || seen[v]) continue;
    seen[v] = true;
    const Value& val = g.values[v];
    if (val.is_constant()) continue;
    if (val.producer < 0)
      return Error(Errc::kUnsupported,
                   g.origin + ": '" + val.name + "' is read apart from the input normalization");
    needed[val.producer] = true;
    for (int in : g.nodes[val.producer].inputs)
      if (in >= 0) stack.push_back(in);
  }
  std::vector<int> order;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (needed[i]) order.push_back(static_cast<int>(i));
  const int n = static_cast<int>(order.size());

  // Trainable weights: the weight inputs of Conv, Gemm, MatMul and batch norm, and a constant
  // added straight to the output of such a node (a bias written as a separate Add).
  for (int i : order) {
    const Node& node = g.nodes[i];
    auto constant_input = [&](size_t k) {
      return k < node.inputs.size() && node.inputs[k] >= 0 && !node.absorbed[k] &&
             g.values[node.inputs[k]].is_constant() &&
             g.values[node.inputs[k]].constant.is_floating_point();
    };
    for (size_t k : node.op->WeightInputs())
      if (constant_input(k)) plan.weights.insert(node.inputs[k]);
    if (node.op_type == "Add") {
      for (size_t side = 0; side < 2; ++side) {
        int self = node.inputs[side];
        if (!constant_input(1 - side) || self < 0 || g.values[self].producer < 0) continue;
        if (!g.nodes[g.values[self].producer].op->WeightInputs().empty())
          plan.weights.insert(node.inputs[1 - side]);
      }
    }
  }
  std::vector<bool> weighted(n, false);
  std::vector<int> first_use(g.values.size(), n), last_use(g.values.size(), -1);
  for (int i = 0; i < n; ++i) {
    for (int v : g.nodes[order[i]].inputs) {
      if (v < 0) continue;
      first_use[v] = std::min(first_use[v], i);
      last_use[v] = std::max(last_use[v], i);
      // Batch norm trains with the layer before it rather than starting one.
      if (plan.weights.count(v) && g.nodes[order[i]].op_type != "BatchNormalization")
        weighted[i] = true;
    }
  }
  last_use[target] = n;

  // cut_ok[p]: between order[p-1] and order[p] one data value is live (cut_value[p]) and no
  // weight is read on both sides.
  std::vector<int> blocked(n + 1, 0);
  for (int w : plan.weights)
    if (first_use[w] + 1 <= last_use[w]) {
      ++blocked[first_use[w] + 1];
      --blocked[last_use[w] + 1];
    }
  for (int p = 1; p <= n; ++p) blocked[p] += blocked[p - 1];
  std::vector<bool> cut_ok(n + 1, false);
  std::vector<int> cut_value(n + 1, -1);
  std::set<int> live = {start};
  for (int p = 1; p < n; ++p) {
    const Node& prev = g.nodes[order[p - 1]];
    live.insert(prev.output);
    for (int v : prev.inputs)
      if (v >= 0 && last_use[v] == p - 1) live.erase(v);
    if (live.size() == 1 && blocked[p] == 0) {
      cut_ok[p] = true;
      cut_value[p] = *live.begin();
    }
  }

  // Cut before each weighted node once the block has one, at the latest possible point.
  // latest_cut[p]: the last cut point <= p; next_weighted[p]: the first weighted node >= p.
  std::vector<int> latest_cut(n + 1, 0), next_weighted(n + 1, n);
  for (int p = 1; p <= n; ++p) latest_cut[p] = cut_ok[p] ? p : latest_cut[p - 1];
  for (int p = n; p-- > 0;) next_weighted[p] = weighted[p] ? p : next_weighted[p + 1];
  std::vector<int> cuts = {0};
  for (int i = 0; i < n; ++i) {
    if (!weighted[i]) continue;
    int first_w = next_weighted[cuts.back()];  // of the block being filled
    if (first_w >= i) continue;
    int p = latest_cut[i];
    if (p > first_w) cuts.push_back(p);
  }
  cuts.push_back(n);
  for (size_t k = 0; k + 1 < cuts.size(); ++k) {
    BlockPlan b;
    b.input = k == 0 ? start : cut_value[cuts[k]];
    for (int i = cuts[k]; i < cuts[k + 1]; ++i) b.nodes.push_back(order[i]);
    b.output = g.nodes[b.nodes.back()].output;
    plan.blocks.push_back(std::move(b));
  }
  return plan;
}

OnnxBlockImpl::OnnxBlockImpl(const Graph& g, const BlockPlan& plan, const std::set<int>& weights) {
  std::map<int, Ref> refs = {{plan.input, Ref{Ref::Kind::kInput, 0}}};
  std::set<std::string> used;
  for (int ni : plan.nodes) {
    const Node& node = g.nodes[ni];
    Step s{node.op, {}, node.name, node.op_type};
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      int v = node.inputs[k];
      if (v < 0 || node.absorbed[k]) {
        s.in.emplace_back();
        continue;
      }
      auto it = refs.find(v);
      if (it == refs.end()) {
        const Value& val = g.values[v];
        if (!val.is_constant())
          throw std::logic_error("onnx import: block reads '" + val.name + "' from outside");
        std::string name = TorchName(val.name, used);
        torch::Tensor t = weights.count(v) ? register_parameter(name, val.constant.clone())
                                           : register_buffer(name, val.constant.clone());
        tensors_.push_back(t);
        onnx_names_.push_back(val.name);
        it = refs.emplace(v, Ref{Ref::Kind::kTensor, tensors_.size() - 1}).first;
      }
      s.in.push_back(it->second);
    }
    refs[node.output] = Ref{Ref::Kind::kStep, steps_.size()};
    steps_.push_back(std::move(s));
  }
  // Each step's value is dropped after its last reader, so a long block does not hold every
  // activation at once (autograd keeps what training needs).
  std::vector<size_t> last_read(steps_.size(), 0);
  for (size_t i = 0; i < steps_.size(); ++i)
    for (const Ref& r : steps_[i].in)
      if (r.kind == Ref::Kind::kStep) last_read[r.index] = i;
  release_after_.resize(steps_.size());
  for (size_t j = 0; j + 1 < steps_.size(); ++j) release_after_[last_read[j]].push_back(j);
}

torch::Tensor OnnxBlockImpl::forward(torch::Tensor x) {
  std::vector<torch::Tensor> values(steps_.size()), args;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    args.clear();
    for (const Ref& r : s.in) {
      switch (r.kind) {
        case Ref::Kind::kAbsent:
          args.emplace_back();
          break;
        case Ref::Kind::kInput:
          args.push_back(x);
          break;
        case Ref::Kind::kStep:
          args.push_back(values[r.index]);
          break;
        case Ref::Kind::kTensor:
          args.push_back(tensors_[r.index]);
          break;
      }
    }
    try {
      values[i] = s.op->Forward(args, is_training());
    } catch (const c10::Error& e) {
      throw std::runtime_error("node '" + s.name + "' (" + s.op_type +
                               "): " + e.what_without_backtrace());
    }
    for (size_t j : release_after_[i]) values[j] = torch::Tensor();
  }
  return steps_.empty() ? x : values.back();
}

Result<std::string> OnnxBlockImpl::ExportOnnx(OnnxGraphWriter& w, const std::string& input,
                                              const std::string& prefix) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> names(steps_.size()), written(tensors_.size());
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    std::vector<std::string> in;
    for (const Ref& r : s.in) {
      switch (r.kind) {
        case Ref::Kind::kAbsent:
          in.emplace_back();
          break;
        case Ref::Kind::kInput:
          in.push_back(input);
          break;
        case Ref::Kind::kStep:
          in.push_back(names[r.index]);
          break;
        case Ref::Kind::kTensor: {
          std::string& name = written[r.index];
          const torch::Tensor& t = tensors_[r.index];
          if (name.empty()) {
            name = prefix + "." + onnx_names_[r.index];
            if (t.is_floating_point()) {
              w.Initializer(name, t);
            } else if (t.dim() == 1) {
              auto c = t.to(torch::kInt64).contiguous();
              w.IntInitializer(name, std::vector<int64_t>(c.data_ptr<int64_t>(),
                                                          c.data_ptr<int64_t>() + c.numel()));
            } else {
              return Error(Errc::kUnsupported, "export: node '" + s.name + "' (" + s.op_type +
                                                   ") reads an integer tensor of rank " +
                                                   std::to_string(t.dim()));
            }
          }
          in.push_back(name);
          break;
        }
      }
    }
    names[i] = s.op->Export(w, in, w.Fresh(prefix + "_" + s.op_type));
  }
  return steps_.empty() ? input : names.back();
}

GraphModuleImpl::GraphModuleImpl(const Graph& g) {
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  auto plan = PlanBackbone(g, g.input, g.output);
  if (!plan.ok()) throw std::runtime_error(plan.error().message);
  for (const auto& b : plan->blocks)
    blocks_->push_back(std::make_shared<OnnxBlockImpl>(g, b, plan->weights));
}

torch::Tensor GraphModuleImpl::forward(torch::Tensor x) {
  for (const auto& b : *blocks_) x = ForwardBlock(b, x);
  return x;
}

Result<GraphModule> ImportGraphModule(std::string_view bytes, const std::string& origin,
                                      const ImportLimits& limits) {
  EDGELOOP_ASSIGN_OR_RETURN(Graph g, ReadGraph(bytes, origin, limits));
  EDGELOOP_RETURN_IF_ERROR(PlanBackbone(g, g.input, g.output));
  return GraphModule(g);
}

}  // namespace edgeloop::ml::onnx_import
