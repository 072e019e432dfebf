#include "runtime/kernel.hpp"

#include <algorithm>
#include <cstring>
#include <map>

#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime {
namespace {

const std::map<std::string, const OpKernel*>& Registry() {
  static const std::map<std::string, const OpKernel*> registry = [] {
    std::map<std::string, const OpKernel*> r;
    for (const OpKernel* k : kernels::All()) r[k->op_type] = k;
    return r;
  }();
  return registry;
}

}  // namespace

const OpKernel* FindKernel(const std::string& op_type) {
  auto it = Registry().find(op_type);
  return it == Registry().end() ? nullptr : it->second;
}

std::vector<std::string> SupportedOps() {
  std::vector<std::string> out;
  for (const auto& kv : Registry()) out.push_back(kv.first);
  return out;
}

Error NodeError(const Node& n, Errc code, const std::string& what) {
  return Error(code, "node '" + n.name + "' (" + n.op_type + "): " + what);
}

bool BroadcastShapes(const Shape& a, const Shape& b, Shape* out) {
  size_t r = std::max(a.size(), b.size());
  out->assign(r, 1);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da == db || db == 1)
      (*out)[i] = da;
    else if (da == 1)
      (*out)[i] = db;
    else
      return false;
  }
  return true;
}

bool NormalizeAxis(int64_t axis, int64_t rank, int64_t* out) {
  if (axis < -rank || axis >= rank) return false;
  *out = axis < 0 ? axis + rank : axis;
  return true;
}

Status CheckArity(const Node& n, size_t lo, size_t hi, size_t outs) {
  if (n.inputs.size() < lo || n.inputs.size() > hi)
    return NodeError(n, Errc::kFormat,
                     "takes " + std::to_string(lo) + (lo == hi ? "" : "-" + std::to_string(hi)) +
                         " inputs, the model gives " + std::to_string(n.inputs.size()));
  for (size_t i = 0; i < lo; ++i)
    if (n.inputs[i] < 0)
      return NodeError(n, Errc::kFormat, "required input " + std::to_string(i) + " is missing");
  if (n.outputs.size() < outs)
    return NodeError(n, Errc::kFormat, "needs " + std::to_string(outs) + " output(s)");
  return Status::Ok();
}

Status CopyInputToOutput(RunContext& c) {
  if (c.out[0]->data != c.in[0]->data && c.in[0]->bytes() > 0)
    std::memcpy(c.out[0]->data, c.in[0]->data, c.in[0]->bytes());
  return Status::Ok();
}

Status RequireType(const InferContext& c, size_t i, std::initializer_list<DType> types) {
  const TensorInfo* t = c.in[i];
  for (DType d : types)
    if (t->dtype == d) return Status::Ok();
  return NodeError(c.node, Errc::kUnsupported,
                   std::string("input ") + std::to_string(i) + " of type " + DTypeName(t->dtype) +
                       " is not supported by this op");
}

}  // namespace edgeloop::runtime
