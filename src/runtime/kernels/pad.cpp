// Pad: grows (or, with negative pads, crops) every axis by a number of elements at each
// end, filled with a constant or taken from the input by reflecting, repeating its edge or
// wrapping around. Pads are an attribute up to opset 10 and an input known at planning from
// opset 11 (with an optional constant_value input, and an axes input from opset 18).
#include <algorithm>
#include <cstring>

#include "runtime/kernels/layout.hpp"

namespace edgeloop::runtime::kernels {
namespace {

enum class PadMode { kConstant, kReflect, kEdge, kWrap };

bool ParseMode(std::string_view s, PadMode* m) {
  if (s == "constant")
    *m = PadMode::kConstant;
  else if (s == "reflect")
    *m = PadMode::kReflect;
  else if (s == "edge")
    *m = PadMode::kEdge;
  else if (s == "wrap")
    *m = PadMode::kWrap;
  else
    return false;
  return true;
}

PadMode Mode(const Node& n) {
  PadMode m = PadMode::kConstant;
  ParseMode(StringAttr(n, "mode", "constant"), &m);
  return m;
}

// The input index an output position i - pad_begin reads along an axis of n elements, or -1
// for a constant fill.
int64_t SourceIndex(int64_t i, int64_t n, PadMode m) {
  if (i >= 0 && i < n) return i;
  switch (m) {
    case PadMode::kConstant:
      return -1;
    case PadMode::kEdge:
      return i < 0 ? 0 : n - 1;
    case PadMode::kWrap:
      return ((i % n) + n) % n;
    case PadMode::kReflect: {
      if (n == 1) return 0;
      const int64_t period = 2 * (n - 1);
      int64_t j = ((i % period) + period) % period;
      return j < n ? j : period - j;
    }
  }
  return -1;
}

Status CheckPad(const Node& n) {
  PadMode m;
  if (!ParseMode(StringAttr(n, "mode", "constant"), &m))
    return NodeError(n, Errc::kUnsupported, "mode '" + n.String("mode", "") + "' is not supported");
  if (n.opset < 11) {
    if (!n.Has("pads") && !n.Has("paddings"))
      return NodeError(n, Errc::kFormat, "needs a 'pads' attribute");
    return CheckArity(n, 1, 1);
  }
  return CheckArity(n, 2, n.opset >= 18 ? 4 : 3);
}

IntList AttrPads(const Node& n) {
  return n.Has("pads") ? IntList::Attr(n, "pads") : IntList::Attr(n, "paddings");
}

// Pads before (begin[d]) and after (end[d]) every input dimension.
Status ResolvePads(const Node& n, IntList pads, IntList axes, size_t rank, int64_t* begin,
                   int64_t* end) {
  for (size_t d = 0; d < rank; ++d) begin[d] = end[d] = 0;
  const int64_t k = axes.present() ? axes.size() : static_cast<int64_t>(rank);
  if (pads.size() != 2 * k)
    return NodeError(
        n, Errc::kMismatch,
        "pads has " + std::to_string(pads.size()) + " entries, expected " + std::to_string(2 * k));
  for (int64_t i = 0; i < k; ++i) {
    int64_t axis = i;
    if (axes.present() && !NormalizeAxis(axes[i], static_cast<int64_t>(rank), &axis))
      return NodeError(n, Errc::kMismatch, "axis " + std::to_string(axes[i]) + " is out of range");
    const int64_t b = pads[i], e = pads[i + k];
    if (b < -kMaxDim || b > kMaxDim || e < -kMaxDim || e > kMaxDim)
      return NodeError(n, Errc::kMismatch,
                       "a pad of " + std::to_string(b) + " or " + std::to_string(e) + " is absurd");
    begin[axis] = b;
    end[axis] = e;
  }
  return Status::Ok();
}

Status InferPad(InferContext& c) {
  const Shape& in = c.in[0]->shape;
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, in.size()));
  IntList pads = AttrPads(c.node), axes;
  if (c.node.opset >= 11) {
    EDGELOOP_ASSIGN_OR_RETURN(pads, PlanningInts(c, 1, "pads"));
    EDGELOOP_ASSIGN_OR_RETURN(axes, PlanningInts(c, 3, "axes"));
    if (c.in.size() > 2 && c.in[2]) {
      if (c.in[2]->dtype != c.in[0]->dtype)
        return c.Fail("constant_value must have the type of the data");
      if (NumElements(c.in[2]->shape) != 1) return c.Fail("constant_value must be one element");
    }
  }
  DimArray begin, end;
  EDGELOOP_RETURN_IF_ERROR(ResolvePads(c.node, pads, axes, in.size(), begin.data(), end.data()));
  const PadMode mode = Mode(c.node);
  Shape out(in.size());
  for (size_t d = 0; d < in.size(); ++d) {
    out[d] = in[d] + begin[d] + end[d];
    if (begin[d] < -in[d] || end[d] < -in[d] || out[d] < 0)
      return c.Fail("pads " + std::to_string(begin[d]) + ", " + std::to_string(end[d]) +
                    " remove more than the " + std::to_string(in[d]) + " elements of axis " +
                    std::to_string(d));
    if (mode != PadMode::kConstant && in[d] == 0 && out[d] > 0)
      return c.Fail("axis " + std::to_string(d) + " is empty: there is nothing to pad from");
  }
  c.out = {TensorInfo{c.in[0]->dtype, out}};
  return Status::Ok();
}

// The fill value of constant mode as the data's element bytes.
void FillValue(const RunContext& c, unsigned char* value) {
  const size_t es = DTypeSize(c.in[0]->dtype);
  std::memset(value, 0, 8);
  if (c.node.opset >= 11) {
    if (c.in.size() > 2 && c.in[2]) std::memcpy(value, c.in[2]->data, es);
    return;
  }
  const float v = c.node.Float("value", 0.0f);
  if (c.in[0]->dtype == DType::kBool) {
    value[0] = v != 0;
    return;
  }
  DispatchNumeric(c.in[0]->dtype, [&](auto zero) {
    const auto typed = static_cast<decltype(zero)>(v);
    std::memcpy(value, &typed, sizeof(typed));
  });
}

Status RunPad(RunContext& c) {
  const Tensor& x = *c.in[0];
  Tensor& y = *c.out[0];
  const size_t r = x.shape.size(), es = DTypeSize(x.dtype);
  if (y.size() == 0) return Status::Ok();
  const IntList pads = c.node.opset >= 11 ? RunInts(c, 1) : AttrPads(c.node);
  const IntList axes = c.node.opset >= 11 ? RunInts(c, 3) : IntList();
  DimArray begin, end;
  EDGELOOP_RETURN_IF_ERROR(ResolvePads(c.node, pads, axes, r, begin.data(), end.data()));
  const PadMode mode = Mode(c.node);
  unsigned char value[8];
  FillValue(c, value);
  auto* dst = static_cast<unsigned char*>(y.data);
  const auto* src = static_cast<const unsigned char*>(x.data);
  if (r == 0) {
    std::memcpy(dst, src, es);
    return Status::Ok();
  }
  DimArray in_strides;
  in_strides[r - 1] = 1;
  for (size_t d = r - 1; d-- > 0;) in_strides[d] = in_strides[d + 1] * x.shape[d + 1];
  const int64_t in_last = x.shape[r - 1], out_last = y.shape[r - 1], b_last = begin[r - 1];
  // The run of the last axis copied as one block: outputs [lo, hi) read inputs lo - b_last...
  const int64_t lo = std::clamp<int64_t>(b_last, 0, out_last);
  const int64_t hi = std::clamp<int64_t>(b_last + in_last, lo, out_last);
  DimArray idx{};
  const int64_t rows = y.size() / out_last;
  for (int64_t row = 0; row < rows; ++row) {
    int64_t base = 0;
    bool fill = false;
    for (size_t d = 0; d + 1 < r; ++d) {
      const int64_t s = SourceIndex(idx[d] - begin[d], x.shape[d], mode);
      if (s < 0) {
        fill = true;
        break;
      }
      base += s * in_strides[d];
    }
    unsigned char* out_row = dst + static_cast<size_t>(row * out_last) * es;
    const unsigned char* in_row = src + static_cast<size_t>(base) * es;
    for (int64_t k = 0; k < out_last; ++k) {
      if (!fill && k == lo && hi > lo) {
        std::memcpy(out_row + static_cast<size_t>(k) * es,
                    in_row + static_cast<size_t>(k - b_last) * es,
                    static_cast<size_t>(hi - lo) * es);
        k = hi - 1;
        continue;
      }
      const int64_t s = fill ? -1 : SourceIndex(k - b_last, in_last, mode);
      std::memcpy(out_row + static_cast<size_t>(k) * es,
                  s < 0 ? value : in_row + static_cast<size_t>(s) * es, es);
    }
    for (size_t d = r - 1; d-- > 0;) {
      if (++idx[d] < y.shape[d]) break;
      idx[d] = 0;
    }
  }
  return Status::Ok();
}

}  // namespace

const OpKernel kPad{"Pad", CheckPad, InferPad, RunPad};

}  // namespace edgeloop::runtime::kernels
