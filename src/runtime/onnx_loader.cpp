#include "runtime/onnx_loader.hpp"

#include <onnx/onnx_pb.h>

#include <cstring>
#include <limits>
#include <map>

namespace edgeloop::runtime {
namespace {

Error FormatError(const std::string& origin, const std::string& what) {
  return Error(Errc::kFormat, origin + ": " + what);
}

// Decodes a TensorProto, checking the element count against the data present before
// allocating anything.
Result<OwnedTensor> DecodeTensor(const onnx::TensorProto& t, const std::string& where,
                                 const LoadLimits& limits) {
  OwnedTensor out;
  if (!DTypeFromOnnx(t.data_type(), &out.dtype))
    return Error(Errc::kUnsupported, where + ": element type " + std::to_string(t.data_type()) +
                                         " is not supported by the runtime");
  if (t.data_location() == onnx::TensorProto::EXTERNAL)
    return Error(Errc::kUnsupported, where + ": external tensor data is not supported");
  if (t.dims_size() > 16) return Error(Errc::kFormat, where + ": more than 16 dimensions");
  int64_t count = 1;
  for (int64_t d : t.dims()) {
    if (d < 0) return Error(Errc::kFormat, where + ": negative dimension " + std::to_string(d));
    out.shape.push_back(d);
    if (d != 0 && count > std::numeric_limits<int64_t>::max() / d)
      return Error(Errc::kResourceExhausted, where + ": element count overflows");
    count *= d;
  }
  const size_t esize = DTypeSize(out.dtype);
  if (static_cast<uint64_t>(count) > limits.max_tensor_bytes / esize)
    return Error(Errc::kResourceExhausted,
                 where + ": shape " + ShapeString(out.shape) + " needs more than " +
                     std::to_string(limits.max_tensor_bytes >> 20) + " MiB");
  const size_t n = static_cast<size_t>(count);
  auto mismatch = [&](size_t have) {
    return Error(Errc::kFormat, where + ": shape " + ShapeString(out.shape) + " needs " +
                                    std::to_string(n) + " elements but the data holds " +
                                    std::to_string(have));
  };
  if (t.has_raw_data()) {
    if (t.raw_data().size() != n * esize) {
      if (t.raw_data().size() % esize != 0)
        return Error(Errc::kFormat, where + ": raw data of " + std::to_string(t.raw_data().size()) +
                                        " bytes is not a whole number of elements");
      return mismatch(t.raw_data().size() / esize);
    }
    out.bytes.assign(t.raw_data().begin(), t.raw_data().end());
    return out;
  }
  out.bytes.resize(n * esize);
  switch (out.dtype) {
    case DType::kFloat32:
      if (static_cast<size_t>(t.float_data_size()) != n) return mismatch(t.float_data_size());
      std::memcpy(out.bytes.data(), t.float_data().data(), n * esize);
      break;
    case DType::kFloat64:
      if (static_cast<size_t>(t.double_data_size()) != n) return mismatch(t.double_data_size());
      std::memcpy(out.bytes.data(), t.double_data().data(), n * esize);
      break;
    case DType::kInt64:
      if (static_cast<size_t>(t.int64_data_size()) != n) return mismatch(t.int64_data_size());
      std::memcpy(out.bytes.data(), t.int64_data().data(), n * esize);
      break;
    case DType::kInt32:
      if (static_cast<size_t>(t.int32_data_size()) != n) return mismatch(t.int32_data_size());
      std::memcpy(out.bytes.data(), t.int32_data().data(), n * esize);
      break;
    case DType::kInt8:
    case DType::kUint8:
    case DType::kBool:
      if (static_cast<size_t>(t.int32_data_size()) != n) return mismatch(t.int32_data_size());
      for (size_t i = 0; i < n; ++i)
        out.bytes[i] = static_cast<unsigned char>(t.int32_data(static_cast<int>(i)));
      break;
    case DType::kUndefined:
      return Error(Errc::kFormat, where + ": undefined element type");
  }
  return out;
}

Result<ValueInfo> DecodeValueInfo(const onnx::ValueInfoProto& v, const std::string& origin) {
  ValueInfo info;
  info.name = v.name();
  if (!v.has_type() || !v.type().has_tensor_type())
    return Error(Errc::kUnsupported, origin + ": graph input/output '" + v.name() +
                                         "' is not a tensor (sequences, maps and optionals "
                                         "are not supported)");
  const auto& tt = v.type().tensor_type();
  if (!DTypeFromOnnx(tt.elem_type(), &info.dtype))
    return Error(Errc::kUnsupported, origin + ": graph input/output '" + v.name() +
                                         "' has element type " + std::to_string(tt.elem_type()) +
                                         ", which the runtime does not support");
  if (tt.has_shape()) {
    info.has_shape = true;
    for (const auto& d : tt.shape().dim()) {
      if (d.has_dim_value() && d.dim_value() >= 0)
        info.dims.emplace_back(d.dim_value());
      else
        info.dims.emplace_back(std::nullopt);
    }
  }
  return info;
}

Result<Attribute> DecodeAttribute(const onnx::AttributeProto& a, const std::string& where,
                                  const LoadLimits& limits) {
  Attribute out;
  switch (a.type()) {
    case onnx::AttributeProto::INT:
      out.kind = Attribute::Kind::kInt;
      out.i = a.i();
      break;
    case onnx::AttributeProto::FLOAT:
      out.kind = Attribute::Kind::kFloat;
      out.f = a.f();
      break;
    case onnx::AttributeProto::STRING:
      out.kind = Attribute::Kind::kString;
      out.s = a.s();
      break;
    case onnx::AttributeProto::INTS:
      out.kind = Attribute::Kind::kInts;
      out.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case onnx::AttributeProto::FLOATS:
      out.kind = Attribute::Kind::kFloats;
      out.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case onnx::AttributeProto::TENSOR: {
      out.kind = Attribute::Kind::kTensor;
      EDGELOOP_ASSIGN_OR_RETURN(
          out.tensor, DecodeTensor(a.t(), where + " attribute '" + a.name() + "'", limits));
      break;
    }
    default:
      return Error(Errc::kUnsupported, where + ": attribute '" + a.name() + "' has a type (" +
                                           std::to_string(a.type()) +
                                           ") the runtime does not support");
  }
  return out;
}

}  // namespace

Result<OwnedTensor> ParseOnnxTensor(std::string_view bytes, const std::string& origin,
                                    const LoadLimits& limits) {
  if (bytes.size() > limits.max_file_bytes)
    return Error(Errc::kResourceExhausted, origin + ": file is larger than the limit");
  onnx::TensorProto t;
  if (!t.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return FormatError(origin, "not a valid ONNX TensorProto");
  return DecodeTensor(t, origin, limits);
}

Result<Graph> ParseOnnxModel(std::string_view bytes, const std::string& origin,
                             const LoadLimits& limits) {
  if (bytes.empty()) return FormatError(origin, "empty file, not an ONNX model");
  if (bytes.size() > limits.max_file_bytes)
    return Error(Errc::kResourceExhausted,
                 origin + ": " + std::to_string(bytes.size()) + " bytes is more than the " +
                     std::to_string(limits.max_file_bytes >> 20) + " MiB limit");
  onnx::ModelProto m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return FormatError(origin, "not a valid ONNX model (protobuf parse failed; truncated?)");
  if (!m.has_graph()) return FormatError(origin, "the model has no graph");

  Graph g;
  g.ir_version = m.ir_version();
  g.producer = m.producer_name();
  for (const auto& op : m.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") g.opset = op.version();
  if (g.opset == 0) {
    if (m.opset_import_size() > 0)
      return Error(Errc::kUnsupported, origin + ": the model imports no default ONNX opset");
    g.opset = 1;  // IR version 1-2 models carry no opset_import
  }
  for (const auto& kv : m.metadata_props()) g.metadata[kv.key()] = kv.value();

  const auto& graph = m.graph();
  std::map<std::string, int> ids;
  auto define = [&](const std::string& name) {
    auto [it, inserted] = ids.emplace(name, static_cast<int>(g.value_names.size()));
    if (inserted) g.value_names.push_back(name);
    return std::pair{it->second, inserted};
  };

  for (const auto& init : graph.initializer()) {
    if (init.name().empty()) return FormatError(origin, "an initializer has no name");
    auto [id, fresh] = define(init.name());
    if (!fresh) return FormatError(origin, "initializer '" + init.name() + "' is defined twice");
    EDGELOOP_ASSIGN_OR_RETURN(
        g.initializers[id],
        DecodeTensor(init, origin + ": initializer '" + init.name() + "'", limits));
  }
  for (const auto& in : graph.input()) {
    auto it = ids.find(in.name());
    if (it != ids.end() && g.initializers.count(it->second)) continue;  // a default value
    EDGELOOP_ASSIGN_OR_RETURN(ValueInfo info, DecodeValueInfo(in, origin));
    auto [id, fresh] = define(in.name());
    if (!fresh) return FormatError(origin, "graph input '" + in.name() + "' is defined twice");
    g.inputs.push_back(id);
    g.input_info.push_back(std::move(info));
  }

  int index = 0;
  for (const auto& n : graph.node()) {
    Node node;
    node.op_type = n.op_type();
    node.name = n.name().empty() ? n.op_type() + "#" + std::to_string(index) : n.name();
    node.opset = g.opset;
    ++index;
    const std::string where = origin + ": node '" + node.name + "' (" + node.op_type + ")";
    if (!n.domain().empty() && n.domain() != "ai.onnx")
      return Error(Errc::kUnsupported,
                   where + ": operator domain '" + n.domain() + "' is not supported");
    for (const auto& in : n.input()) {
      if (in.empty()) {
        node.inputs.push_back(-1);
        continue;
      }
      auto it = ids.find(in);
      if (it == ids.end())
        return FormatError(origin, "node '" + node.name + "' reads '" + in +
                                       "', which no earlier node, input or initializer defines");
      node.inputs.push_back(it->second);
    }
    for (const auto& a : n.attribute()) {
      EDGELOOP_ASSIGN_OR_RETURN(node.attrs[a.name()], DecodeAttribute(a, where, limits));
    }
    for (const auto& out : n.output()) {
      if (out.empty()) {
        node.outputs.push_back(-1);
        continue;
      }
      auto [id, fresh] = define(out);
      if (!fresh) return FormatError(origin, "value '" + out + "' is produced twice");
      node.outputs.push_back(id);
    }
    g.nodes.push_back(std::move(node));
  }
  for (const auto& out : graph.output()) {
    auto it = ids.find(out.name());
    if (it == ids.end())
      return FormatError(origin, "graph output '" + out.name() + "' is never produced");
    EDGELOOP_ASSIGN_OR_RETURN(ValueInfo info, DecodeValueInfo(out, origin));
    g.outputs.push_back(it->second);
    g.output_info.push_back(std::move(info));
  }
  if (g.outputs.empty()) return FormatError(origin, "the graph has no outputs");
  return g;
}

}  // namespace edgeloop::runtime
