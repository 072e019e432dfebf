// Reductions over a set of axes: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceL2; and
// ArgMax, ArgMin along one axis.
//
// The axes are the `axes` attribute, or from opset 13 (ReduceSum) and 18 (the others) an
// optional second input, which must be known when the model is planned (an initializer, a
// constant or a graph input) since it decides the output's shape. No axes means every axis,
// or, with noop_with_empty_axes = 1, no reduction at all. Sums and means accumulate in double
// (floating point, and for ReduceL2 of any type) or in 64-bit integers, in scratch memory; an
// empty reduction gives 0 for sums, NaN (integers: 0) for means, and the lowest (highest)
// value of the type for ReduceMax (ReduceMin).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "runtime/kernels/broadcast.hpp"
#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {
namespace {

enum class Op { kSum, kMean, kMax, kMin, kL2 };

// Attribute names longer than the small-string buffer, made once so Run does not allocate.
const std::string& NoopKey() {
  static const std::string k = "noop_with_empty_axes";
  return k;
}
const std::string& SelectLastKey() {
  static const std::string k = "select_last_index";
  return k;
}

bool AxesAreInput(Op op, int64_t opset) {
  return opset >= (op == Op::kSum ? 13 : 18);
}

template <Op kOp>
Status CheckReduce(const Node& n) {
  const bool as_input = AxesAreInput(kOp, n.opset);
  EDGELOOP_RETURN_IF_ERROR(CheckArity(n, 1, as_input ? 2 : 1));
  if (as_input && n.Has("axes"))
    return NodeError(n, Errc::kFormat,
                     "from opset " + std::to_string(kOp == Op::kSum ? 13 : 18) +
                         " axes are an input, not an attribute");
  return Status::Ok();
}

// Which of the input's `rank` dimensions are reduced. `axes` is the axes input (nullptr when
// the axes are the attribute or omitted). *noop is set when nothing is reduced at all.
template <Op kOp>
Status ReducedAxes(const Node& n, const Tensor* axes, size_t rank, std::array<bool, kMaxRank>* mask,
                   bool* noop) {
  mask->fill(false);
  *noop = false;
  const int64_t* list = nullptr;
  size_t count = 0;
  if (AxesAreInput(kOp, n.opset)) {
    if (axes) {
      if (axes->dtype != DType::kInt64 || axes->shape.size() > 1)
        return NodeError(n, Errc::kMismatch, "axes must be a 1-D int64 tensor");
      list = axes->as<int64_t>();
      count = static_cast<size_t>(axes->size());
    }
  } else {
    auto it = n.attrs.find("axes");
    if (it != n.attrs.end()) {
      list = it->second.ints.data();
      count = it->second.ints.size();
    }
  }
  if (count == 0) {
    if (AxesAreInput(kOp, n.opset) && n.Int(NoopKey(), 0) != 0)
      *noop = true;
    else
      std::fill(mask->begin(), mask->begin() + static_cast<std::ptrdiff_t>(rank), true);
    return Status::Ok();
  }
  if (count > rank)
    return NodeError(n, Errc::kMismatch,
                     std::to_string(count) + " axes for an input of rank " + std::to_string(rank));
  for (size_t i = 0; i < count; ++i) {
    int64_t a;
    if (!NormalizeAxis(list[i], static_cast<int64_t>(rank), &a))
      return NodeError(
          n, Errc::kMismatch,
          "axis " + std::to_string(list[i]) + " is out of range for rank " + std::to_string(rank));
    if ((*mask)[static_cast<size_t>(a)])
      return NodeError(n, Errc::kMismatch, "axis " + std::to_string(list[i]) + " is repeated");
    (*mask)[static_cast<size_t>(a)] = true;
  }
  return Status::Ok();
}

// Accumulators: double for floating point (and for every type under ReduceL2), else uint64_t,
// whose sums wrap (as the integer types' own arithmetic does) instead of overflowing.
template <Op kOp, typename T>
using Acc = std::conditional_t<std::is_floating_point_v<T> || kOp == Op::kL2, double, uint64_t>;

template <Op kOp>
Status InferReduce(InferContext& c) {
  const TensorInfo& x = *c.in[0];
  if (!DispatchNumeric(x.dtype, [](auto) {}))
    return NodeError(c.node, Errc::kUnsupported, std::string("type ") + DTypeName(x.dtype));
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, x.shape));
  const Tensor* axes = nullptr;
  if (AxesAreInput(kOp, c.node.opset) && c.in.size() > 1 && c.in[1]) {
    axes = c.values[1];
    if (!axes) return c.Fail("the axes input must be known when the model is planned");
  }
  std::array<bool, kMaxRank> mask;
  bool noop;
  EDGELOOP_RETURN_IF_ERROR(ReducedAxes<kOp>(c.node, axes, x.shape.size(), &mask, &noop));
  const bool keep = c.node.Int("keepdims", 1) != 0;
  Shape out;
  for (size_t d = 0; d < x.shape.size(); ++d) {
    if (noop || !mask[d])
      out.push_back(x.shape[d]);
    else if (keep)
      out.push_back(1);
  }
  c.out = {TensorInfo{x.dtype, out}};
  if (!noop && kOp != Op::kMax && kOp != Op::kMin)
    c.scratch_bytes = static_cast<size_t>(NumElements(out)) * sizeof(double);
  return Status::Ok();
}

template <Op kOp, typename T>
void ReduceTyped(const Tensor& x, const std::array<bool, kMaxRank>& mask, Tensor& y,
                 void* scratch) {
  const size_t r = x.shape.size();
  // The output offset of every input element: output strides on kept axes, 0 on reduced ones.
  OperandStrides<1> st{};
  int64_t stride = 1, reduced = 1;
  for (size_t d = r; d-- > 0;) {
    if (mask[d]) {
      reduced *= x.shape[d];
    } else {
      st[0][d] = stride;
      stride *= x.shape[d];
    }
  }
  const T* px = x.as<T>();
  T* py = y.as<T>();
  const int64_t n = y.size();
  if constexpr (kOp == Op::kMax || kOp == Op::kMin) {
    T init;
    if constexpr (std::is_floating_point_v<T>)
      init = kOp == Op::kMax ? -std::numeric_limits<T>::infinity()
                             : std::numeric_limits<T>::infinity();
    else
      init = kOp == Op::kMax ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
    std::fill(py, py + n, init);
    WalkStrided<1>(x.shape, st, [&](int64_t i, const auto& off) {
      const T v = px[i];
      T& m = py[off[0]];
      // A NaN wins, as in numpy.
      bool nan = false;
      if constexpr (std::is_floating_point_v<T>) nan = std::isnan(v);
      if (nan || (kOp == Op::kMax ? v > m : v < m)) m = v;
    });
  } else {
    using A = Acc<kOp, T>;
    A* acc = static_cast<A*>(scratch);
    std::fill(acc, acc + n, A(0));
    WalkStrided<1>(x.shape, st, [&](int64_t i, const auto& off) {
      const A v = static_cast<A>(px[i]);
      if constexpr (kOp == Op::kL2)
        acc[off[0]] += v * v;
      else
        acc[off[0]] += v;
    });
    for (int64_t i = 0; i < n; ++i) {
      if constexpr (kOp == Op::kL2) {
        py[i] = static_cast<T>(std::sqrt(acc[i]));
      } else if constexpr (kOp == Op::kMean) {
        if constexpr (std::is_floating_point_v<A>)
          py[i] = static_cast<T>(acc[i] / static_cast<double>(reduced));
        else if constexpr (std::is_signed_v<T>)
          py[i] = reduced == 0 ? T(0) : static_cast<T>(static_cast<int64_t>(acc[i]) / reduced);
        else
          py[i] = reduced == 0 ? T(0) : static_cast<T>(acc[i] / static_cast<uint64_t>(reduced));
      } else {
        py[i] = static_cast<T>(acc[i]);
      }
    }
  }
}

template <Op kOp>
Status RunReduce(RunContext& c) {
  const Tensor& x = *c.in[0];
  const Tensor* axes = c.in.size() > 1 ? c.in[1] : nullptr;
  std::array<bool, kMaxRank> mask;
  bool noop;
  EDGELOOP_RETURN_IF_ERROR(ReducedAxes<kOp>(c.node, axes, x.shape.size(), &mask, &noop));
  if (noop) return CopyInputToOutput(c);
  DispatchNumeric(x.dtype,
                  [&](auto t) { ReduceTyped<kOp, decltype(t)>(x, mask, *c.out[0], c.scratch); });
  return Status::Ok();
}

// --- ArgMax, ArgMin -----------------------------------------------------------------------
Status CheckArg(const Node& n) {
  return CheckArity(n, 1, 1);
}

Status InferArg(InferContext& c) {
  const TensorInfo& x = *c.in[0];
  if (!DispatchNumeric(x.dtype, [](auto) {}))
    return NodeError(c.node, Errc::kUnsupported, std::string("type ") + DTypeName(x.dtype));
  EDGELOOP_RETURN_IF_ERROR(RequireRank(c, x.shape));
  int64_t axis;
  const int64_t r = static_cast<int64_t>(x.shape.size());
  if (!NormalizeAxis(c.node.Int("axis", 0), r, &axis))
    return c.Fail("axis " + std::to_string(c.node.Int("axis", 0)) + " is out of range for rank " +
                  std::to_string(r));
  if (x.shape[static_cast<size_t>(axis)] == 0)
    return c.Fail("the axis has no elements to choose from");
  Shape out = x.shape;
  if (c.node.Int("keepdims", 1) != 0)
    out[static_cast<size_t>(axis)] = 1;
  else
    out.erase(out.begin() + axis);
  c.out = {TensorInfo{DType::kInt64, out}};
  return Status::Ok();
}

template <bool kMax, typename T>
void ArgTyped(const Tensor& x, int64_t axis, bool last, Tensor& y) {
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < x.shape.size(); ++d) inner *= x.shape[d];
  const int64_t n = x.shape[static_cast<size_t>(axis)];
  const T* px = x.as<T>();
  int64_t* py = y.as<int64_t>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < inner; ++j) {
      const T* p = px + o * n * inner + j;
      T best = p[0];
      int64_t at = 0;
      for (int64_t k = 1; k < n; ++k) {
        const T v = p[k * inner];
        const bool better = kMax ? (last ? v >= best : v > best) : (last ? v <= best : v < best);
        if (better) {
          best = v;
          at = k;
        }
      }
      py[o * inner + j] = at;
    }
  }
}

template <bool kMax>
Status RunArg(RunContext& c) {
  const Tensor& x = *c.in[0];
  int64_t axis;
  if (!NormalizeAxis(c.node.Int("axis", 0), static_cast<int64_t>(x.shape.size()), &axis))
    return NodeError(c.node, Errc::kMismatch, "axis is out of range");
  const bool last = c.node.Int(SelectLastKey(), 0) != 0;
  DispatchNumeric(x.dtype, [&](auto t) { ArgTyped<kMax, decltype(t)>(x, axis, last, *c.out[0]); });
  return Status::Ok();
}

}  // namespace

const OpKernel kReduceSum{"ReduceSum", CheckReduce<Op::kSum>, InferReduce<Op::kSum>,
                          RunReduce<Op::kSum>};
const OpKernel kReduceMean{"ReduceMean", CheckReduce<Op::kMean>, InferReduce<Op::kMean>,
                           RunReduce<Op::kMean>};
const OpKernel kReduceMax{"ReduceMax", CheckReduce<Op::kMax>, InferReduce<Op::kMax>,
                          RunReduce<Op::kMax>};
const OpKernel kReduceMin{"ReduceMin", CheckReduce<Op::kMin>, InferReduce<Op::kMin>,
                          RunReduce<Op::kMin>};
const OpKernel kReduceL2{"ReduceL2", CheckReduce<Op::kL2>, InferReduce<Op::kL2>,
                         RunReduce<Op::kL2>};
const OpKernel kArgMax{"ArgMax", CheckArg, InferArg, RunArg<true>};
const OpKernel kArgMin{"ArgMin", CheckArg, InferArg, RunArg<false>};

}  // namespace edgeloop::runtime::kernels
