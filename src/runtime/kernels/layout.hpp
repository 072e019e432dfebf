// Helpers shared by the kernels that move elements around without arithmetic (Slice, Split,
// Gather, Expand, Tile, Pad, ...): integer inputs read at planning and at run time, and a
// strided copy. Run-time helpers work on fixed-size arrays so that Run never allocates.
#pragma once

#include <array>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/kernels/kernels.hpp"

namespace edgeloop::runtime::kernels {

// The largest rank these kernels accept; Infer refuses more, so Run can use fixed arrays.
constexpr size_t kMaxRank = 16;
// No dimension an op computes from values (Tile, Resize, Range, ...) may exceed this; the
// planner's per-tensor byte limit refuses the product later, this keeps the arithmetic that
// leads to it from overflowing.
constexpr int64_t kMaxDim = int64_t{1} << 40;

using DimArray = std::array<int64_t, 2 * kMaxRank>;

inline bool IsIndexType(DType t) {
  return t == DType::kInt32 || t == DType::kInt64;
}

// Element i of an int32 or int64 tensor.
inline int64_t IntAt(const Tensor& t, int64_t i) {
  return t.dtype == DType::kInt32 ? t.as<int32_t>()[i] : t.as<int64_t>()[i];
}

// The value of input i, which the op needs at planning because the output's shape follows
// it; an error naming `what` when it is computed at run time.
inline Result<const Tensor*> PlanningValue(InferContext& c, size_t i, const char* what) {
  const Tensor* t = c.Value(i);
  if (!t)
    return NodeError(c.node, Errc::kUnsupported,
                     std::string(what) +
                         " is computed at run time; only constant, input or shape-derived values "
                         "are supported");
  return t;
}

// An output dimension over kMaxDim: refused as too large, like any output over the planner's
// byte limit.
inline Error TooLarge(const InferContext& c, const std::string& what) {
  return NodeError(c.node, Errc::kResourceExhausted,
                   what + ": more than " + std::to_string(kMaxDim) + " elements along an axis");
}

inline Status RequireRank(const InferContext& c, size_t rank) {
  if (rank > kMaxRank)
    return c.Fail("rank " + std::to_string(rank) + " is more than the " + std::to_string(kMaxRank) +
                  " this op supports");
  return Status::Ok();
}

// The node's attribute `name`, or nullptr. Looks it up without building a std::string key,
// so that Run can read attributes without allocating.
inline const Attribute* FindAttr(const Node& n, std::string_view name) {
  for (const auto& [key, a] : n.attrs)
    if (key == name) return &a;
  return nullptr;
}

inline std::string_view StringAttr(const Node& n, std::string_view name, std::string_view dflt) {
  const Attribute* a = FindAttr(n, name);
  return a ? std::string_view(a->s) : dflt;
}

// A list of integers given either as an attribute (older opsets) or as an input tensor
// (newer ones), read without copying; absent when neither is given.
class IntList {
 public:
  IntList() = default;
  explicit IntList(const std::vector<int64_t>* attr) : attr_(attr) {}
  explicit IntList(const Tensor* tensor) : tensor_(tensor) {}
  // The attribute's ints, or an absent list when the node has no such attribute.
  static IntList Attr(const Node& n, std::string_view name) {
    const Attribute* a = FindAttr(n, name);
    return a ? IntList(&a->ints) : IntList();
  }
  bool present() const { return attr_ || tensor_; }
  int64_t size() const {
    return attr_ ? static_cast<int64_t>(attr_->size()) : tensor_ ? tensor_->size() : 0;
  }
  int64_t operator[](int64_t i) const {
    return attr_ ? (*attr_)[static_cast<size_t>(i)] : IntAt(*tensor_, i);
  }

 private:
  const std::vector<int64_t>* attr_ = nullptr;
  const Tensor* tensor_ = nullptr;
};

// Checks that optional input i, when given, is a 1-D (or scalar) int32/int64 tensor.
inline Status CheckIntInput(const InferContext& c, size_t i, const char* what) {
  const TensorInfo* t = i < c.in.size() ? c.in[i] : nullptr;
  if (!t) return Status::Ok();
  if (!IsIndexType(t->dtype))
    return c.Fail(std::string(what) + " must be int32 or int64, not " + DTypeName(t->dtype));
  if (t->shape.size() > 1) return c.Fail(std::string(what) + " must be a 1-D tensor");
  return Status::Ok();
}

// The list optional input i gives, at planning: absent when the input is omitted, an error
// when its value is only computed at run time.
inline Result<IntList> PlanningInts(InferContext& c, size_t i, const char* what) {
  if (i >= c.in.size() || !c.in[i]) return IntList();
  EDGELOOP_RETURN_IF_ERROR(CheckIntInput(c, i, what));
  EDGELOOP_ASSIGN_OR_RETURN(const Tensor* t, PlanningValue(c, i, what));
  return IntList(t);
}

// The list optional input i gives, at run time.
inline IntList RunInts(const RunContext& c, size_t i) {
  return i < c.in.size() && c.in[i] ? IntList(c.in[i]) : IntList();
}

// dst (contiguous, `rank` dims of `shape`) = src viewed with element strides `stride` (which
// may be 0 to repeat, or negative to walk backwards). rank may be 0 (one element).
inline void CopyStrided(void* dst, const void* src, size_t rank, const int64_t* shape,
                        const int64_t* stride, size_t es) {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  for (size_t i = 0; i < rank; ++i)
    if (shape[i] == 0) return;
  if (rank == 0) {
    std::memcpy(d, s, es);
    return;
  }
  const int64_t inner = shape[rank - 1], inner_stride = stride[rank - 1];
  const size_t row_bytes = static_cast<size_t>(inner) * es;
  std::array<int64_t, 2 * kMaxRank> idx{};
  int64_t off = 0;  // element offset into src of the current row's first element
  while (true) {
    const unsigned char* from = s + off * static_cast<int64_t>(es);
    if (inner_stride == 1) {
      std::memcpy(d, from, row_bytes);
    } else if (inner_stride == 0) {
      for (int64_t k = 0; k < inner; ++k) std::memcpy(d + static_cast<size_t>(k) * es, from, es);
    } else {
      for (int64_t k = 0; k < inner; ++k)
        std::memcpy(d + static_cast<size_t>(k) * es,
                    from + k * inner_stride * static_cast<int64_t>(es), es);
    }
    d += row_bytes;
    size_t dim = rank - 1;
    while (true) {
      if (dim == 0) return;
      --dim;
      ++idx[dim];
      off += stride[dim];
      if (idx[dim] < shape[dim]) break;
      off -= stride[dim] * idx[dim];
      idx[dim] = 0;
    }
  }
}

}  // namespace edgeloop::runtime::kernels
