// Squeeze and Unsqueeze: drop or insert size-1 dimensions. The data does not change, so Run
// is a copy (and the planner makes the output an alias of the input when it can). The axes
// are an attribute up to opset 12 and an input known at planning from opset 13.
#include <array>

#include "runtime/kernels/layout.hpp"

namespace edgeloop::runtime::kernels {
namespace {

Status CheckAxesOp(const Node& n, bool axes_required) {
  if (n.opset < 13) {
    if (axes_required && !n.Has("axes"))
      return NodeError(n, Errc::kFormat, "needs an 'axes' attribute");
    return CheckArity(n, 1, 1);
  }
  return CheckArity(n, axes_required ? 2 : 1, 2);
}

Result<IntList> Axes(InferContext& c) {
  if (c.node.opset < 13) return IntList::Attr(c.node, "axes");
  return PlanningInts(c, 1, "axes");
}

// --- Squeeze ---------------------------------------------------------------------------
Status CheckSqueeze(const Node& n) {
  return CheckAxesOp(n, false);
}

Status InferSqueeze(InferContext& c) {
  const Shape& in = c.in[0]->shape;
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, in.size()));
  EDGELOOP_ASSIGN_OR_RETURN(IntList axes, Axes(c));
  std::array<bool, kMaxRank> drop{};
  if (!axes.present()) {
    for (size_t d = 0; d < in.size(); ++d) drop[d] = in[d] == 1;
  } else {
    for (int64_t i = 0; i < axes.size(); ++i) {
      int64_t a;
      if (!NormalizeAxis(axes[i], static_cast<int64_t>(in.size()), &a))
        return c.Fail("axis " + std::to_string(axes[i]) + " is out of range for rank " +
                      std::to_string(in.size()));
      if (in[static_cast<size_t>(a)] != 1)
        return c.Fail("cannot squeeze axis " + std::to_string(a) + " of " + ShapeString(in) +
                      ": its size is not 1");
      drop[static_cast<size_t>(a)] = true;
    }
  }
  Shape out;
  for (size_t d = 0; d < in.size(); ++d)
    if (!drop[d]) out.push_back(in[d]);
  c.out = {TensorInfo{c.in[0]->dtype, out}};
  return Status::Ok();
}

// --- Unsqueeze -------------------------------------------------------------------------
Status CheckUnsqueeze(const Node& n) {
  return CheckAxesOp(n, true);
}

Status InferUnsqueeze(InferContext& c) {
  const Shape& in = c.in[0]->shape;
  EDGELOOP_ASSIGN_OR_RETURN(IntList axes, Axes(c));
  if (!axes.present()) return c.Fail("needs axes");
  const int64_t rank = static_cast<int64_t>(in.size()) + axes.size();
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, static_cast<size_t>(rank)));
  std::array<bool, kMaxRank> inserted{};
  for (int64_t i = 0; i < axes.size(); ++i) {
    int64_t a;
    if (!NormalizeAxis(axes[i], rank, &a))
      return c.Fail("axis " + std::to_string(axes[i]) + " is out of range for rank " +
                    std::to_string(rank));
    if (inserted[static_cast<size_t>(a)]) return c.Fail("axis " + std::to_string(a) + " repeats");
    inserted[static_cast<size_t>(a)] = true;
  }
  Shape out;
  size_t next = 0;
  for (int64_t d = 0; d < rank; ++d)
    out.push_back(inserted[static_cast<size_t>(d)] ? 1 : in[next++]);
  c.out = {TensorInfo{c.in[0]->dtype, out}};
  return Status::Ok();
}

}  // namespace

const OpKernel kSqueeze{"Squeeze", CheckSqueeze, InferSqueeze, CopyInputToOutput};
const OpKernel kUnsqueeze{"Unsqueeze", CheckUnsqueeze, InferUnsqueeze, CopyInputToOutput};

}  // namespace edgeloop::runtime::kernels
