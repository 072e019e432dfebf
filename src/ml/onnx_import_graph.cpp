#include "ml/onnx_import_graph.hpp"

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <cstring>
#include <limits>

namespace edgeloop::ml::onnx_import {
namespace {

constexpr size_t kMaxRank = 8;

Error FileError(Errc code, const std::string& origin, const std::string& what) {
  return Error(code, origin + ": " + what);
}

// The tensor's shape, checked: rank, non-negative dimensions, element count within the limit.
Result<Dims> CheckedDims(const onnx::TensorProto& t, size_t element_size, const std::string& where,
                         const ImportLimits& limits) {
  if (static_cast<size_t>(t.dims_size()) > kMaxRank)
    return Error(Errc::kFormat, where + ": more than " + std::to_string(kMaxRank) + " dimensions");
  Dims dims(t.dims().begin(), t.dims().end());
  int64_t n = NumElements(dims);
  if (n < 0)
    return Error(Errc::kFormat,
                 where + ": shape " + DimsString(dims) + " has a negative dimension or overflows");
  if (static_cast<uint64_t>(n) > limits.max_tensor_bytes / element_size)
    return Error(Errc::kResourceExhausted,
                 where + ": shape " + DimsString(dims) + " needs more than " +
                     std::to_string(limits.max_tensor_bytes >> 20) + " MiB");
  return dims;
}

// Decodes float and integer tensors (float64 narrowed to float32, int32 widened to int64),
// checking that the data present holds exactly the elements the shape needs.
Result<torch::Tensor> DecodeTensor(const onnx::TensorProto& t, const std::string& where,
                                   const ImportLimits& limits) {
  if (t.data_location() == onnx::TensorProto::EXTERNAL)
    return Error(Errc::kUnsupported, where + ": external tensor data is not supported");
  torch::ScalarType type;
  const void* data = nullptr;  // the typed field's elements, unless raw_data is set
  size_t count = 0;
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      type = torch::kFloat32;
      data = t.float_data().data();
      count = static_cast<size_t>(t.float_data_size());
      break;
    case onnx::TensorProto::DOUBLE:
      type = torch::kFloat64;
      data = t.double_data().data();
      count = static_cast<size_t>(t.double_data_size());
      break;
    case onnx::TensorProto::INT64:
      type = torch::kInt64;
      data = t.int64_data().data();
      count = static_cast<size_t>(t.int64_data_size());
      break;
    case onnx::TensorProto::INT32:
      type = torch::kInt32;
      data = t.int32_data().data();
      count = static_cast<size_t>(t.int32_data_size());
      break;
    default:
      return Error(Errc::kUnsupported, where + ": element type " + std::to_string(t.data_type()) +
                                           " is not supported by the importer");
  }
  const size_t esize = c10::elementSize(type);
  EDGELOOP_ASSIGN_OR_RETURN(Dims dims, CheckedDims(t, esize, where, limits));
  const auto n = static_cast<size_t>(NumElements(dims));
  if (t.has_raw_data()) {
    data = t.raw_data().data();
    count = t.raw_data().size() % esize == 0 ? t.raw_data().size() / esize : SIZE_MAX;
  }
  if (count != n)
    return Error(Errc::kFormat,
                 where + ": shape " + DimsString(dims) + " needs " + std::to_string(n) +
                     " elements but the data holds " +
                     (count == SIZE_MAX ? "a partial element" : std::to_string(count)));
  torch::Tensor out = torch::empty(dims, type);
  if (n) std::memcpy(out.data_ptr(), data, n * esize);
  if (type == torch::kFloat64) return out.to(torch::kFloat32);
  if (type == torch::kInt32) return out.to(torch::kInt64);
  return out;
}

// The value a Constant node holds.
Result<torch::Tensor> ConstantValue(const onnx::NodeProto& n, const std::string& where,
                                    const ImportLimits& limits) {
  if (n.attribute_size() != 1)
    return Error(Errc::kFormat, where + ": needs exactly one value attribute");
  const auto& a = n.attribute(0);
  if (a.name() == "value" && a.has_t()) return DecodeTensor(a.t(), where, limits);
  if (a.name() == "value_float") return torch::tensor(a.f());
  if (a.name() == "value_int") return torch::tensor(static_cast<int64_t>(a.i()));
  if (a.name() == "value_floats")
    return torch::tensor(std::vector<float>(a.floats().begin(), a.floats().end()));
  if (a.name() == "value_ints")
    return torch::tensor(std::vector<int64_t>(a.ints().begin(), a.ints().end()));
  return Error(Errc::kUnsupported, where + ": attribute '" + a.name() + "' is not supported");
}

Result<Dims> ReadInputShape(const onnx::ValueInfoProto& v, const std::string& origin,
                            const ImportLimits& limits) {
  const std::string where = origin + ": graph input '" + v.name() + "'";
  if (!v.has_type() || !v.type().has_tensor_type())
    return Error(Errc::kUnsupported, where + " is not a tensor");
  const auto& tt = v.type().tensor_type();
  if (tt.elem_type() != onnx::TensorProto::FLOAT)
    return Error(Errc::kUnsupported,
                 where + " has element type " + std::to_string(tt.elem_type()) + ", not float32");
  if (!tt.has_shape() || tt.shape().dim_size() < 1)
    return Error(Errc::kUnsupported, where + " has no shape (at least [batch, ...] is needed)");
  if (static_cast<size_t>(tt.shape().dim_size()) > kMaxRank)
    return Error(Errc::kFormat,
                 where + " has more than " + std::to_string(kMaxRank) + " dimensions");
  Dims dims = {1};  // the batch, whatever the file declares
  for (int i = 1; i < tt.shape().dim_size(); ++i) {
    const auto& d = tt.shape().dim(i);
    if (!d.has_dim_value() || d.dim_value() < 1)
      return Error(Errc::kUnsupported, where + ": dimension " + std::to_string(i) +
                                           " must be a fixed positive size (only the batch, "
                                           "the first, may be symbolic)");
    dims.push_back(d.dim_value());
  }
  int64_t n = NumElements(dims);
  if (n < 0 || static_cast<uint64_t>(n) > limits.max_tensor_bytes / sizeof(float))
    return Error(Errc::kResourceExhausted, where + ": shape " + DimsString(dims) + " is too large");
  return dims;
}

// Checks a node's output shape: bounded, non-empty, and for data the batch still first.
Status CheckOutput(const NodeContext& c, const Dims& out, bool is_data,
                   const ImportLimits& limits) {
  if (out.empty() && is_data)
    return c.Fail(Errc::kUnsupported, "its output has no batch dimension");
  if (out.size() > kMaxRank)
    return c.Fail(Errc::kUnsupported,
                  "its output has more than " + std::to_string(kMaxRank) + " dimensions");
  int64_t n = NumElements(out);
  if (n == 0) return c.Fail(Errc::kUnsupported, "its output " + DimsString(out) + " is empty");
  if (n < 0 || static_cast<uint64_t>(n) > limits.max_tensor_bytes / sizeof(float))
    return c.Fail(Errc::kResourceExhausted, "its output " + DimsString(out) + " needs more than " +
                                                std::to_string(limits.max_tensor_bytes >> 20) +
                                                " MiB per sample");
  if (is_data && out[0] != 1)
    return c.Fail(Errc::kUnsupported, "its output " + DimsString(out) +
                                          " would not keep the batch as the first dimension");
  return Status::Ok();
}

}  // namespace

std::vector<std::vector<int>> Graph::Consumers() const {
  std::vector<std::vector<int>> out(values.size());
  for (size_t i = 0; i < nodes.size(); ++i)
    for (int v : nodes[i].inputs)
      if (v >= 0 && (out[v].empty() || out[v].back() != static_cast<int>(i)))
        out[v].push_back(static_cast<int>(i));
  return out;
}

Dims Graph::SampleShape() const {
  const Dims& d = values[input].dims;
  return Dims(d.begin() + 1, d.end());
}

Result<Graph> ReadGraph(std::string_view bytes, const std::string& origin,
                        const ImportLimits& limits) {
  if (bytes.empty()) return FileError(Errc::kFormat, origin, "empty file, not an ONNX model");
  if (bytes.size() > limits.max_file_bytes)
    return FileError(Errc::kResourceExhausted, origin,
                     std::to_string(bytes.size()) + " bytes is more than the " +
                         std::to_string(limits.max_file_bytes >> 20) + " MiB limit");
  onnx::ModelProto m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return FileError(Errc::kFormat, origin,
                     "not a valid ONNX model (protobuf parse failed; truncated?)");
  if (!m.has_graph()) return FileError(Errc::kFormat, origin, "the model has no graph");

  Graph g;
  g.origin = origin;
  g.producer = m.producer_name();
  g.name = m.graph().name();
  for (const auto& op : m.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") g.opset = op.version();
  if (g.opset == 0) {
    if (m.opset_import_size() > 0)
      return FileError(Errc::kUnsupported, origin, "the model imports no default ONNX opset");
    g.opset = 1;
  }
  for (const auto& kv : m.metadata_props()) g.metadata[kv.key()] = kv.value();
  const auto& graph = m.graph();
  if (static_cast<size_t>(graph.node_size()) > limits.max_nodes)
    return FileError(Errc::kResourceExhausted, origin,
                     std::to_string(graph.node_size()) + " nodes is more than the limit of " +
                         std::to_string(limits.max_nodes));

  std::map<std::string, int> ids;
  auto define = [&](Value v) -> Result<int> {
    if (v.name.empty()) return FileError(Errc::kFormat, origin, "a value has no name");
    int id = static_cast<int>(g.values.size());
    if (!ids.emplace(v.name, id).second)
      return FileError(Errc::kFormat, origin, "value '" + v.name + "' is defined twice");
    g.values.push_back(std::move(v));
    return id;
  };

  for (const auto& init : graph.initializer()) {
    Value v;
    v.name = init.name();
    EDGELOOP_ASSIGN_OR_RETURN(
        v.constant, DecodeTensor(init, origin + ": initializer '" + init.name() + "'", limits));
    v.dims = v.constant.sizes().vec();
    EDGELOOP_RETURN_IF_ERROR(define(std::move(v)));
  }
  for (const auto& in : graph.input()) {
    if (ids.count(in.name())) continue;  // an initializer's declaration (older IR versions)
    if (g.input >= 0)
      return FileError(Errc::kUnsupported, origin,
                       "the graph takes more than one input ('" + g.values[g.input].name + "', '" +
                           in.name() + "'); the importer supports one");
    Value v;
    v.name = in.name();
    EDGELOOP_ASSIGN_OR_RETURN(v.dims, ReadInputShape(in, origin, limits));
    EDGELOOP_ASSIGN_OR_RETURN(g.input, define(std::move(v)));
  }
  if (g.input < 0) return FileError(Errc::kFormat, origin, "the graph has no data input");

  int index = 0;
  uint64_t total_bytes = 0;
  for (const auto& n : graph.node()) {
    const std::string name =
        n.name().empty() ? n.op_type() + "#" + std::to_string(index) : n.name();
    ++index;
    const std::string where = origin + ": node '" + name + "' (" + n.op_type() + ")";
    if (!n.domain().empty() && n.domain() != "ai.onnx")
      return Error(Errc::kUnsupported, where + ": operator domain '" + n.domain() +
                                           "' is not supported by the importer");
    if (n.output_size() < 1 || n.output(0).empty())
      return Error(Errc::kFormat, where + ": has no output");
    if (n.op_type() == "Constant") {
      Value v;
      v.name = n.output(0);
      EDGELOOP_ASSIGN_OR_RETURN(v.constant, ConstantValue(n, where, limits));
      v.dims = v.constant.sizes().vec();
      EDGELOOP_RETURN_IF_ERROR(define(std::move(v)));
      continue;
    }
    OpBuilder build = FindOpBuilder(n.op_type());
    if (!build) return Error(Errc::kUnsupported, where + ": op not supported by the importer");

    Node node;
    node.name = name;
    node.op_type = n.op_type();
    std::vector<OpInput> inputs;
    bool any_data = false;
    for (const auto& in : n.input()) {
      if (in.empty()) {
        node.inputs.push_back(-1);
        inputs.emplace_back();
        continue;
      }
      auto it = ids.find(in);
      if (it == ids.end())
        return Error(Errc::kFormat, where + ": reads '" + in +
                                        "', which no earlier node, input or initializer defines");
      const Value& v = g.values[it->second];
      if (!v.computed)
        return Error(Errc::kUnsupported,
                     where + ": reads '" + in + "', an extra output the importer does not compute");
      node.inputs.push_back(it->second);
      inputs.push_back(OpInput{true, v.dims, v.constant});
      any_data |= !v.is_constant();
    }
    NodeContext ctx(n, name, g.opset, inputs);
    auto built = build(ctx);
    if (!built.ok()) return built.error().WithContext(origin);
    if (ctx.attr_error()) return ctx.attr_error()->WithContext(origin);
    if (auto st = CheckOutput(ctx, built->out, any_data, limits); !st.ok())
      return st.error().WithContext(origin);

    // Many values within the per-value limit can still add up to more than memory holds.
    total_bytes += static_cast<uint64_t>(NumElements(built->out)) * sizeof(float);
    if (total_bytes > limits.max_total_bytes)
      return Error(Errc::kResourceExhausted,
                   where + ": the values computed up to here need more than " +
                       std::to_string(limits.max_total_bytes >> 20) + " MiB per sample");
    Value out;
    out.name = n.output(0);
    out.dims = built->out;
    if (!any_data) {
      // Only constants in: compute the value now.
      std::vector<torch::Tensor> args;
      for (const auto& in : inputs) args.push_back(in.constant);
      try {
        torch::NoGradGuard no_grad;
        out.constant = built->op->Forward(args, false).contiguous();
      } catch (const std::exception& e) {
        return Error(Errc::kFormat,
                     where + ": cannot evaluate on its constant inputs: " + e.what());
      }
      if (out.constant.sizes().vec() != out.dims)
        return Error(Errc::kInternal, where + ": evaluated to " +
                                          DimsString(out.constant.sizes().vec()) + ", not " +
                                          DimsString(out.dims));
    } else {
      node.absorbed.assign(node.inputs.size(), false);
      for (size_t i : built->absorbed)
        if (i < node.absorbed.size()) node.absorbed[i] = true;
      node.op = built->op;
      out.producer = static_cast<int>(g.nodes.size());
    }
    EDGELOOP_ASSIGN_OR_RETURN(int out_id, define(std::move(out)));
    if (any_data) {
      node.output = out_id;
      g.nodes.push_back(std::move(node));
    }
    for (int i = 1; i < n.output_size(); ++i) {
      if (n.output(i).empty()) continue;
      Value extra;
      extra.name = n.output(i);
      extra.computed = false;
      EDGELOOP_RETURN_IF_ERROR(define(std::move(extra)));
    }
  }
  if (graph.output_size() < 1) return FileError(Errc::kFormat, origin, "the graph has no outputs");
  auto it = ids.find(graph.output(0).name());
  if (it == ids.end())
    return FileError(Errc::kFormat, origin,
                     "graph output '" + graph.output(0).name() + "' is never produced");
  g.output = it->second;
  if (!g.values[g.output].computed)
    return FileError(Errc::kUnsupported, origin,
                     "graph output '" + graph.output(0).name() +
                         "' is an extra output the importer does not compute");
  if (g.values[g.output].is_constant())
    return FileError(Errc::kUnsupported, origin,
                     "graph output '" + graph.output(0).name() + "' does not depend on the input");
  return g;
}

}  // namespace edgeloop::ml::onnx_import
