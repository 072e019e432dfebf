#include "ml/onnx_import_ops.hpp"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <limits>
#include <map>

namespace edgeloop::ml::onnx_import {

NodeContext::NodeContext(const onnx::NodeProto& node, std::string name, int64_t opset,
                         std::vector<OpInput> inputs)
    : node_(node), name_(std::move(name)), opset_(opset), inputs_(std::move(inputs)) {}

const std::string& NodeContext::op_type() const {
  return node_.op_type();
}

const OpInput& NodeContext::in(size_t i) const {
  return i < inputs_.size() ? inputs_[i] : absent_;
}

const onnx::AttributeProto* NodeContext::Attr(const std::string& attr) const {
  for (const auto& a : node_.attribute())
    if (a.name() == attr) return &a;
  return nullptr;
}

bool NodeContext::Has(const std::string& attr) const {
  return Attr(attr) != nullptr;
}

const onnx::AttributeProto* NodeContext::Typed(const std::string& attr, int type) const {
  const onnx::AttributeProto* a = Attr(attr);
  if (!a) return nullptr;
  // Files written before attribute types were recorded leave the type unset.
  if (a->type() != type && a->type() != onnx::AttributeProto::UNDEFINED) {
    if (!attr_error_)
      attr_error_ = Fail(Errc::kFormat, "attribute '" + attr + "' has the wrong type (" +
                                            std::to_string(a->type()) + ")");
    return nullptr;
  }
  return a;
}

int64_t NodeContext::Int(const std::string& attr, int64_t def) const {
  const auto* a = Typed(attr, onnx::AttributeProto::INT);
  return a ? a->i() : def;
}

float NodeContext::Float(const std::string& attr, float def) const {
  const auto* a = Typed(attr, onnx::AttributeProto::FLOAT);
  return a ? a->f() : def;
}

std::vector<int64_t> NodeContext::Ints(const std::string& attr, std::vector<int64_t> def) const {
  const auto* a = Typed(attr, onnx::AttributeProto::INTS);
  if (!a) return def;
  return {a->ints().begin(), a->ints().end()};
}

std::vector<float> NodeContext::Floats(const std::string& attr) const {
  const auto* a = Typed(attr, onnx::AttributeProto::FLOATS);
  if (!a) return {};
  return {a->floats().begin(), a->floats().end()};
}

std::string NodeContext::String(const std::string& attr, std::string def) const {
  const auto* a = Typed(attr, onnx::AttributeProto::STRING);
  return a ? a->s() : def;
}

Error NodeContext::Fail(Errc code, const std::string& what) const {
  return Error(code, "node '" + name_ + "' (" + op_type() + "): " + what);
}

Status NodeContext::RequireData(size_t i) const {
  if (!in(i).present) return Fail(Errc::kFormat, "input " + std::to_string(i) + " is missing");
  if (in(i).is_constant())
    for (const auto& other : inputs_)
      if (other.present && !other.is_constant())
        return Fail(Errc::kUnsupported, "input " + std::to_string(i) +
                                            " is a constant where the importer expects data");
  return Status::Ok();
}

Status NodeContext::RequireConstant(size_t i) const {
  if (!in(i).present) return Fail(Errc::kFormat, "input " + std::to_string(i) + " is missing");
  if (!in(i).is_constant())
    return Fail(Errc::kUnsupported,
                "input " + std::to_string(i) + " must be a constant (an initializer)");
  return Status::Ok();
}

Status NodeContext::RequireRank(size_t i, size_t lo, size_t hi) const {
  size_t r = in(i).dims.size();
  if (r < lo || r > hi)
    return Fail(Errc::kMismatch, "input " + std::to_string(i) + " has shape " +
                                     DimsString(in(i).dims) + "; rank " + std::to_string(lo) +
                                     (lo == hi ? "" : "-" + std::to_string(hi)) + " expected");
  return Status::Ok();
}

namespace {

const std::map<std::string, OpBuilder>& Registry() {
  static const std::map<std::string, OpBuilder> registry = [] {
    std::map<std::string, OpBuilder> r;
    for (const auto& list : {ElementwiseOps(), SpatialOps(), TensorOps()})
      for (const OpEntry& e : list) r[e.op_type] = e.build;
    return r;
  }();
  return registry;
}

}  // namespace

OpBuilder FindOpBuilder(const std::string& op_type) {
  auto it = Registry().find(op_type);
  return it == Registry().end() ? nullptr : it->second;
}

std::vector<std::string> SupportedOps() {
  std::vector<std::string> out;
  for (const auto& kv : Registry()) out.push_back(kv.first);
  out.push_back("Constant");
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace edgeloop::ml::onnx_import
