// Ops that select parts of a tensor: Slice, Split and Gather. Slice and Split take their
// bounds from attributes (older opsets) or from inputs known at planning (newer ones);
// Gather's indices are data, checked as it runs.
#include <algorithm>
#include <cstring>
#include <limits>

#include "runtime/kernels/layout.hpp"

namespace edgeloop::runtime::kernels {
namespace {

// --- Slice -----------------------------------------------------------------------------
Status CheckSlice(const Node& n) {
  if (n.opset < 10) {
    if (!n.Has("starts") || !n.Has("ends"))
      return NodeError(n, Errc::kFormat, "needs 'starts' and 'ends' attributes");
    return CheckArity(n, 1, 1);
  }
  return CheckArity(n, 3, 5);
}

struct SliceLists {
  IntList starts, ends, axes, steps;
};

// Per input dimension: the first element taken, the step and how many are taken. Bounds
// are clamped as ONNX says (to [0, dim] going forwards, to [-1, dim - 1] going backwards).
Status ResolveSlice(const Node& n, const SliceLists& l, const Shape& in, int64_t* start,
                    int64_t* step, int64_t* len) {
  const int64_t r = static_cast<int64_t>(in.size());
  for (size_t d = 0; d < in.size(); ++d) {
    start[d] = 0;
    step[d] = 1;
    len[d] = in[d];
  }
  const int64_t k = l.starts.size();
  if (l.ends.size() != k || (l.axes.present() && l.axes.size() != k) ||
      (l.steps.present() && l.steps.size() != k))
    return NodeError(n, Errc::kMismatch, "starts, ends, axes and steps differ in length");
  std::array<bool, kMaxRank> seen{};
  for (int64_t i = 0; i < k; ++i) {
    int64_t axis;
    if (!NormalizeAxis(l.axes.present() ? l.axes[i] : i, r, &axis))
      return NodeError(n, Errc::kMismatch,
                       "axis " + std::to_string(l.axes.present() ? l.axes[i] : i) +
                           " is out of range for rank " + std::to_string(r));
    const size_t a = static_cast<size_t>(axis);
    if (seen[a]) return NodeError(n, Errc::kMismatch, "axis " + std::to_string(axis) + " repeats");
    seen[a] = true;
    const int64_t st = l.steps.present() ? l.steps[i] : 1;
    if (st == 0) return NodeError(n, Errc::kMismatch, "a step is 0");
    const int64_t dim = in[a];
    int64_t s = l.starts[i], e = l.ends[i];
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    int64_t count = 0;
    if (st > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      if (e > s) count = (e - s - 1) / st + 1;
    } else if (dim > 0) {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      const int64_t mag =
          st == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max() : -st;
      if (s > e) count = (s - e - 1) / mag + 1;
    }
    start[a] = count > 0 ? s : 0;
    step[a] = count > 1 ? st : 1;  // a single element needs no step (which could overflow)
    len[a] = count;
  }
  return Status::Ok();
}

SliceLists AttrSliceLists(const Node& n) {
  return {IntList::Attr(n, "starts"), IntList::Attr(n, "ends"), IntList::Attr(n, "axes"),
          IntList()};
}

Status InferSlice(InferContext& c) {
  const Shape& in = c.in[0]->shape;
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, in.size()));
  SliceLists l;
  if (c.node.opset < 10) {
    l = AttrSliceLists(c.node);
  } else {
    EDGELOOP_ASSIGN_OR_RETURN(l.starts, PlanningInts(c, 1, "starts"));
    EDGELOOP_ASSIGN_OR_RETURN(l.ends, PlanningInts(c, 2, "ends"));
    EDGELOOP_ASSIGN_OR_RETURN(l.axes, PlanningInts(c, 3, "axes"));
    EDGELOOP_ASSIGN_OR_RETURN(l.steps, PlanningInts(c, 4, "steps"));
  }
  DimArray start, step, len;
  EDGELOOP_RETURN_IF_ERROR(ResolveSlice(c.node, l, in, start.data(), step.data(), len.data()));
  c.out = {TensorInfo{c.in[0]->dtype, Shape(len.begin(), len.begin() + in.size())}};
  return Status::Ok();
}

Status RunSlice(RunContext& c) {
  const Tensor& x = *c.in[0];
  const size_t r = x.shape.size();
  SliceLists l = c.node.opset < 10
                     ? AttrSliceLists(c.node)
                     : SliceLists{RunInts(c, 1), RunInts(c, 2), RunInts(c, 3), RunInts(c, 4)};
  DimArray start, step, len, stride;
  EDGELOOP_RETURN_IF_ERROR(ResolveSlice(c.node, l, x.shape, start.data(), step.data(), len.data()));
  const size_t es = DTypeSize(x.dtype);
  int64_t base = 0, in_stride = 1;
  for (size_t d = r; d-- > 0;) {
    if (len[d] == 0) return Status::Ok();
    base += start[d] * in_stride;
    stride[d] = step[d] * in_stride;
    in_stride *= x.shape[d];
  }
  CopyStrided(c.out[0]->data, static_cast<const unsigned char*>(x.data) + base * es, r, len.data(),
              stride.data(), es);
  return Status::Ok();
}

// --- Split -----------------------------------------------------------------------------
Status CheckSplit(const Node& n) {
  EDGELOOP_RETURN_IF_ERROR(CheckArity(n, 1, n.opset == 1 || n.opset >= 13 ? 2 : 1));
  if (n.outputs.empty()) return NodeError(n, Errc::kFormat, "needs at least one output");
  for (int id : n.outputs)
    if (id < 0) return NodeError(n, Errc::kFormat, "every output must be named");
  if (n.Has("num_outputs") && n.Int("num_outputs", 0) != static_cast<int64_t>(n.outputs.size()))
    return NodeError(n, Errc::kFormat, "num_outputs differs from the number of outputs");
  return Status::Ok();
}

Status InferSplit(InferContext& c) {
  const Shape& in = c.in[0]->shape;
  int64_t axis;
  if (!NormalizeAxis(c.node.Int("axis", 0), static_cast<int64_t>(in.size()), &axis))
    return c.Fail("axis " + std::to_string(c.node.Int("axis", 0)) + " is out of range");
  IntList split = IntList::Attr(c.node, "split");
  if (c.in.size() > 1 && c.in[1]) {
    EDGELOOP_ASSIGN_OR_RETURN(split, PlanningInts(c, 1, "split"));
  }
  const size_t n = c.node.outputs.size();
  const int64_t dim = in[static_cast<size_t>(axis)];
  c.out.assign(n, TensorInfo{c.in[0]->dtype, in});
  if (split.present()) {
    if (split.size() != static_cast<int64_t>(n))
      return c.Fail("split has " + std::to_string(split.size()) + " entries for " +
                    std::to_string(n) + " outputs");
    int64_t total = 0;
    for (size_t k = 0; k < n; ++k) {
      const int64_t s = split[static_cast<int64_t>(k)];
      if (s < 0 || s > dim) return c.Fail("split entry " + std::to_string(s) + " is invalid");
      total += s;
      c.out[k].shape[static_cast<size_t>(axis)] = s;
    }
    if (total != dim)
      return c.Fail("split sums to " + std::to_string(total) + ", the axis has " +
                    std::to_string(dim));
    return Status::Ok();
  }
  // Equal parts; with num_outputs (opset 18) the last part may be smaller.
  const int64_t parts = static_cast<int64_t>(n);
  const int64_t chunk = c.node.Has("num_outputs") ? (dim + parts - 1) / parts : dim / parts;
  if ((!c.node.Has("num_outputs") && dim % parts != 0) ||
      (c.node.Has("num_outputs") && parts > 1 && chunk * (parts - 1) >= dim && dim > 0))
    return c.Fail("an axis of " + std::to_string(dim) + " does not split into " +
                  std::to_string(parts) + " parts");
  for (size_t k = 0; k < n; ++k)
    c.out[k].shape[static_cast<size_t>(axis)] =
        k + 1 < n ? chunk : dim - chunk * static_cast<int64_t>(n - 1);
  return Status::Ok();
}

Status RunSplit(RunContext& c) {
  const Tensor& x = *c.in[0];
  int64_t axis;
  NormalizeAxis(c.node.Int("axis", 0), static_cast<int64_t>(x.shape.size()), &axis);
  const size_t es = DTypeSize(x.dtype);
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < x.shape.size(); ++d) {
    if (static_cast<int64_t>(d) < axis) outer *= x.shape[d];
    if (static_cast<int64_t>(d) > axis) inner *= x.shape[d];
  }
  const size_t in_row = static_cast<size_t>(x.shape[static_cast<size_t>(axis)] * inner) * es;
  const auto* src = static_cast<const unsigned char*>(x.data);
  size_t col = 0;
  for (Tensor* y : c.out) {
    const size_t row = static_cast<size_t>(y->shape[static_cast<size_t>(axis)] * inner) * es;
    auto* dst = static_cast<unsigned char*>(y->data);
    if (row)
      for (int64_t o = 0; o < outer; ++o)
        std::memcpy(dst + static_cast<size_t>(o) * row, src + static_cast<size_t>(o) * in_row + col,
                    row);
    col += row;
  }
  return Status::Ok();
}

// --- Gather ----------------------------------------------------------------------------
Status CheckGather(const Node& n) {
  return CheckArity(n, 2, 2);
}

Status InferGather(InferContext& c) {
  const Shape& data = c.in[0]->shape;
  const Shape& idx = c.in[1]->shape;
  if (!IsIndexType(c.in[1]->dtype)) return c.Fail("indices must be int32 or int64");
  int64_t axis;
  if (!NormalizeAxis(c.node.Int("axis", 0), static_cast<int64_t>(data.size()), &axis))
    return c.Fail("axis " + std::to_string(c.node.Int("axis", 0)) + " is out of range for rank " +
                  std::to_string(data.size()));
  Shape out(data.begin(), data.begin() + axis);
  out.insert(out.end(), idx.begin(), idx.end());
  out.insert(out.end(), data.begin() + axis + 1, data.end());
  c.out = {TensorInfo{c.in[0]->dtype, out}};
  return Status::Ok();
}

Status RunGather(RunContext& c) {
  const Tensor& x = *c.in[0];
  const Tensor& idx = *c.in[1];
  int64_t axis;
  NormalizeAxis(c.node.Int("axis", 0), static_cast<int64_t>(x.shape.size()), &axis);
  const size_t es = DTypeSize(x.dtype);
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < x.shape.size(); ++d) {
    if (static_cast<int64_t>(d) < axis) outer *= x.shape[d];
    if (static_cast<int64_t>(d) > axis) inner *= x.shape[d];
  }
  const int64_t dim = x.shape[static_cast<size_t>(axis)], count = idx.size();
  for (int64_t j = 0; j < count; ++j) {
    const int64_t i = IntAt(idx, j);
    if (i < -dim || i >= dim)
      return NodeError(
          c.node, Errc::kInvalidArgument,
          "index " + std::to_string(i) + " is out of range for an axis of " + std::to_string(dim));
  }
  const size_t block = static_cast<size_t>(inner) * es;
  const auto* src = static_cast<const unsigned char*>(x.data);
  auto* dst = static_cast<unsigned char*>(c.out[0]->data);
  if (block == 0) return Status::Ok();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < count; ++j) {
      int64_t i = IntAt(idx, j);
      if (i < 0) i += dim;
      std::memcpy(dst + static_cast<size_t>(o * count + j) * block,
                  src + static_cast<size_t>(o * dim + i) * block, block);
    }
  return Status::Ok();
}

}  // namespace

const OpKernel kSlice{"Slice", CheckSlice, InferSlice, RunSlice};
const OpKernel kSplit{"Split", CheckSplit, InferSplit, RunSplit};
const OpKernel kGather{"Gather", CheckGather, InferGather, RunGather};

}  // namespace edgeloop::runtime::kernels
