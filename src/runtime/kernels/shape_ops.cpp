// Ops that move or relabel data without arithmetic: Flatten, Reshape, Transpose, Concat,
// plus Shape and Constant (usually folded away at planning).
#include <algorithm>
#include <cstring>
#include <numeric>

#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {
namespace {

// --- Flatten ---------------------------------------------------------------------------
Status CheckFlatten(const Node& n) {
  return CheckArity(n, 1, 1);
}

Status InferFlatten(InferContext& c) {
  const Shape& s = c.in[0]->shape;
  int64_t r = static_cast<int64_t>(s.size());
  int64_t axis = c.node.Int("axis", 1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis > r)
    return c.Fail("axis " + std::to_string(c.node.Int("axis", 1)) + " is out of range");
  int64_t a = 1, b = 1;
  for (int64_t i = 0; i < r; ++i) (i < axis ? a : b) *= s[static_cast<size_t>(i)];
  c.out = {TensorInfo{c.in[0]->dtype, {a, b}}};
  return Status::Ok();
}

// --- Reshape ---------------------------------------------------------------------------
Status CheckReshape(const Node& n) {
  if (n.opset < 5) {
    if (!n.Has("shape")) return NodeError(n, Errc::kFormat, "needs a 'shape' attribute");
    return CheckArity(n, 1, 1);
  }
  return CheckArity(n, 2, 2);
}

Status InferReshape(InferContext& c) {
  std::vector<int64_t> spec;
  if (c.node.opset < 5) {
    spec = c.node.Ints("shape");
  } else {
    if (c.in[1]->dtype != DType::kInt64) return c.Fail("the shape input must be int64");
    const Tensor* target = c.Value(1);
    if (!target)
      return NodeError(c.node, Errc::kUnsupported,
                       "the target shape is computed at run time; only constant or input shapes "
                       "are supported");
    spec.assign(target->as<int64_t>(), target->as<int64_t>() + target->size());
  }
  const bool allowzero = c.node.Int("allowzero", 0) != 0;
  const Shape& in = c.in[0]->shape;
  const int64_t total = NumElements(in);
  Shape out(spec.size());
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < spec.size(); ++i) {
    int64_t d = spec[i];
    if (d == 0 && !allowzero) {
      if (i >= in.size())
        return c.Fail("shape entry 0 at " + std::to_string(i) + " has no input dimension to copy");
      d = in[i];
    }
    if (d == -1) {
      if (infer_at >= 0) return c.Fail("more than one -1 in the target shape");
      infer_at = static_cast<int64_t>(i);
      continue;
    }
    if (d < 0) return c.Fail("negative dimension " + std::to_string(d) + " in the target shape");
    out[i] = d;
    known *= d;
  }
  if (infer_at >= 0) {
    if (known == 0 || total % known != 0)
      return c.Fail("cannot infer -1: " + std::to_string(total) + " elements into " +
                    ShapeString(out));
    out[static_cast<size_t>(infer_at)] = total / known;
  } else if (known != total) {
    return c.Fail("cannot reshape " + ShapeString(in) + " to " + ShapeString(out));
  }
  c.out = {TensorInfo{c.in[0]->dtype, out}};
  return Status::Ok();
}

// --- Transpose -------------------------------------------------------------------------
Status CheckTranspose(const Node& n) {
  return CheckArity(n, 1, 1);
}

std::vector<int64_t> Perm(const Node& n, size_t rank) {
  std::vector<int64_t> perm = n.Ints("perm");
  if (perm.empty()) {
    perm.resize(rank);
    for (size_t i = 0; i < rank; ++i) perm[i] = static_cast<int64_t>(rank - 1 - i);
  }
  return perm;
}

Status InferTranspose(InferContext& c) {
  const Shape& in = c.in[0]->shape;
  auto perm = Perm(c.node, in.size());
  if (perm.size() != in.size())
    return c.Fail("perm has " + std::to_string(perm.size()) + " entries for rank " +
                  std::to_string(in.size()));
  std::vector<bool> seen(in.size(), false);
  Shape out(in.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    if (perm[i] < 0 || perm[i] >= static_cast<int64_t>(in.size()) ||
        seen[static_cast<size_t>(perm[i])])
      return c.Fail("perm is not a permutation");
    seen[static_cast<size_t>(perm[i])] = true;
    out[i] = in[static_cast<size_t>(perm[i])];
  }
  c.out = {TensorInfo{c.in[0]->dtype, out}};
  return Status::Ok();
}

Status RunTranspose(RunContext& c) {
  const Tensor& x = *c.in[0];
  Tensor& y = *c.out[0];
  const size_t r = x.shape.size();
  const size_t es = DTypeSize(x.dtype);
  auto perm = Perm(c.node, r);
  auto in_strides = Strides(x.shape);
  std::vector<int64_t> step(r);  // input stride for each output dimension
  for (size_t i = 0; i < r; ++i) step[i] = in_strides[static_cast<size_t>(perm[i])];
  const auto* src = static_cast<const unsigned char*>(x.data);
  auto* dst = static_cast<unsigned char*>(y.data);
  std::vector<int64_t> idx(r, 0);
  int64_t off = 0;
  for (int64_t i = 0, n = y.size(); i < n; ++i) {
    std::memcpy(dst + static_cast<size_t>(i) * es, src + static_cast<size_t>(off) * es, es);
    for (size_t d = r; d-- > 0;) {
      ++idx[d];
      off += step[d];
      if (idx[d] < y.shape[d]) break;
      off -= step[d] * idx[d];
      idx[d] = 0;
    }
  }
  return Status::Ok();
}

// --- Concat ----------------------------------------------------------------------------
Status CheckConcat(const Node& n) {
  if (n.inputs.empty()) return NodeError(n, Errc::kFormat, "needs at least one input");
  if (n.opset >= 4 && !n.Has("axis"))
    return NodeError(n, Errc::kFormat, "needs an 'axis' attribute");
  return Status::Ok();
}

Status InferConcat(InferContext& c) {
  const Shape& first = c.in[0]->shape;
  int64_t axis;
  if (!NormalizeAxis(c.node.Int("axis", 1), static_cast<int64_t>(first.size()), &axis))
    return c.Fail("axis is out of range");
  Shape out = first;
  out[static_cast<size_t>(axis)] = 0;
  for (size_t i = 0; i < c.in.size(); ++i) {
    if (!c.in[i]) return c.Fail("an input is missing");
    const Shape& s = c.in[i]->shape;
    if (c.in[i]->dtype != c.in[0]->dtype || s.size() != first.size())
      return c.Fail("inputs differ in type or rank");
    for (size_t d = 0; d < s.size(); ++d)
      if (static_cast<int64_t>(d) != axis && s[d] != first[d])
        return c.Fail("input shapes " + ShapeString(first) + " and " + ShapeString(s) +
                      " do not concatenate");
    out[static_cast<size_t>(axis)] += s[static_cast<size_t>(axis)];
  }
  c.out = {TensorInfo{c.in[0]->dtype, out}};
  return Status::Ok();
}

Status RunConcat(RunContext& c) {
  Tensor& y = *c.out[0];
  int64_t axis;
  NormalizeAxis(c.node.Int("axis", 1), static_cast<int64_t>(y.shape.size()), &axis);
  const size_t es = DTypeSize(y.dtype);
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= y.shape[static_cast<size_t>(d)];
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < y.shape.size(); ++d) inner *= y.shape[d];
  const size_t out_row = static_cast<size_t>(y.shape[static_cast<size_t>(axis)] * inner) * es;
  auto* dst = static_cast<unsigned char*>(y.data);
  size_t col = 0;
  for (const Tensor* x : c.in) {
    const size_t row = static_cast<size_t>(x->shape[static_cast<size_t>(axis)] * inner) * es;
    const auto* src = static_cast<const unsigned char*>(x->data);
    for (int64_t o = 0; o < outer; ++o)
      if (row)
        std::memcpy(dst + static_cast<size_t>(o) * out_row + col,
                    src + static_cast<size_t>(o) * row, row);
    col += row;
  }
  return Status::Ok();
}

// --- Shape -----------------------------------------------------------------------------
Status CheckShape(const Node& n) {
  return CheckArity(n, 1, 1);
}

std::pair<int64_t, int64_t> ShapeRange(const Node& n, int64_t r) {
  int64_t start = n.Int("start", 0), end = n.Int("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, 0, r);
  return {start, std::max(start, end)};
}

Status InferShape(InferContext& c) {
  auto [s, e] = ShapeRange(c.node, static_cast<int64_t>(c.in[0]->shape.size()));
  c.out = {TensorInfo{DType::kInt64, {e - s}}};
  return Status::Ok();
}

Status RunShape(RunContext& c) {
  const Shape& s = c.in[0]->shape;
  auto [b, e] = ShapeRange(c.node, static_cast<int64_t>(s.size()));
  for (int64_t i = b; i < e; ++i) c.out[0]->as<int64_t>()[i - b] = s[static_cast<size_t>(i)];
  return Status::Ok();
}

// --- Constant --------------------------------------------------------------------------
Status CheckConstant(const Node& n) {
  if (!n.Has("value") && !n.Has("value_float") && !n.Has("value_floats") && !n.Has("value_int") &&
      !n.Has("value_ints"))
    return NodeError(n, Errc::kUnsupported,
                     "needs a value, value_float(s) or value_int(s) attribute");
  return CheckArity(n, 0, 0);
}

Status InferConstant(InferContext& c) {
  const Node& n = c.node;
  if (n.Has("value")) {
    const auto& t = n.attrs.at("value").tensor;
    c.out = {TensorInfo{t.dtype, t.shape}};
  } else if (n.Has("value_float")) {
    c.out = {TensorInfo{DType::kFloat32, {}}};
  } else if (n.Has("value_floats")) {
    c.out = {TensorInfo{DType::kFloat32,
                        {static_cast<int64_t>(n.attrs.at("value_floats").floats.size())}}};
  } else if (n.Has("value_int")) {
    c.out = {TensorInfo{DType::kInt64, {}}};
  } else {
    c.out = {
        TensorInfo{DType::kInt64, {static_cast<int64_t>(n.attrs.at("value_ints").ints.size())}}};
  }
  return Status::Ok();
}

Status RunConstant(RunContext& c) {
  const Node& n = c.node;
  void* dst = c.out[0]->data;
  if (n.Has("value")) {
    const auto& b = n.attrs.at("value").tensor.bytes;
    if (!b.empty()) std::memcpy(dst, b.data(), b.size());
  } else if (n.Has("value_float")) {
    *static_cast<float*>(dst) = n.Float("value_float", 0);
  } else if (n.Has("value_floats")) {
    const auto& f = n.attrs.at("value_floats").floats;
    if (!f.empty()) std::memcpy(dst, f.data(), f.size() * sizeof(float));
  } else if (n.Has("value_int")) {
    *static_cast<int64_t*>(dst) = n.Int("value_int", 0);
  } else {
    const auto& v = n.attrs.at("value_ints").ints;
    if (!v.empty()) std::memcpy(dst, v.data(), v.size() * sizeof(int64_t));
  }
  return Status::Ok();
}

}  // namespace

const OpKernel kFlatten{"Flatten", CheckFlatten, InferFlatten, CopyInputToOutput};
const OpKernel kReshape{"Reshape", CheckReshape, InferReshape, CopyInputToOutput};
const OpKernel kTranspose{"Transpose", CheckTranspose, InferTranspose, RunTranspose};
const OpKernel kConcat{"Concat", CheckConcat, InferConcat, RunConcat};
const OpKernel kShape{"Shape", CheckShape, InferShape, RunShape};
const OpKernel kConstant{"Constant", CheckConstant, InferConstant, RunConstant};

}  // namespace edgeloop::runtime::kernels
