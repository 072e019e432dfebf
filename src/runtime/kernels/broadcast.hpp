// Walking the elements of a tensor while stepping through several operands that broadcast to
// it (numpy rules) or that it reduces into, without allocating: the index and the strides live
// in fixed arrays, so shapes are limited to kMaxRank dimensions (the loader's limit for
// initializers; Infer refuses higher ranks with RequireRank).
#pragma once

#include <array>
#include <cstdint>

#include "runtime/kernel.hpp"

namespace edgeloop::runtime::kernels {

constexpr size_t kMaxRank = 16;

template <size_t N>
using OperandStrides = std::array<std::array<int64_t, kMaxRank>, N>;

// Refuses a shape of more than kMaxRank dimensions.
inline Status RequireRank(const InferContext& c, const Shape& s) {
  if (s.size() > kMaxRank)
    return c.Fail("rank " + std::to_string(s.size()) + " is more than the " +
                  std::to_string(kMaxRank) + " dimensions the runtime supports");
  return Status::Ok();
}

// Strides of an operand of shape s read as if broadcast to rank r (r >= s.size()): leading
// missing dimensions and dimensions of size 1 get stride 0.
inline void BroadcastStrides(const Shape& s, size_t r, std::array<int64_t, kMaxRank>& st) {
  st.fill(0);
  int64_t stride = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[r - s.size() + i] = s[i] == 1 ? 0 : stride;
    stride *= s[i];
  }
}

// Calls f(i, off) for every element i of `shape` in row-major order, where off[k] is the
// offset into operand k: the sum over dimensions of the index times strides[k][dimension].
// shape.size() must be at most kMaxRank.
template <size_t N, typename F>
void WalkStrided(const Shape& shape, const OperandStrides<N>& strides, F&& f) {
  const size_t r = shape.size();
  const int64_t n = NumElements(shape);
  std::array<int64_t, N> off{};
  if (r == 0) {
    if (n == 1) f(int64_t{0}, off);
    return;
  }
  // The innermost dimension runs as a plain loop; the outer ones advance an index.
  const int64_t inner = shape[r - 1];
  std::array<int64_t, N> step;
  for (size_t k = 0; k < N; ++k) step[k] = strides[k][r - 1];
  std::array<int64_t, kMaxRank> idx{};
  for (int64_t i = 0; i < n; i += inner) {
    std::array<int64_t, N> o = off;
    for (int64_t j = 0; j < inner; ++j) {
      f(i + j, o);
      for (size_t k = 0; k < N; ++k) o[k] += step[k];
    }
    for (size_t d = r - 1; d-- > 0;) {
      ++idx[d];
      for (size_t k = 0; k < N; ++k) off[k] += strides[k][d];
      if (idx[d] < shape[d]) break;
      for (size_t k = 0; k < N; ++k) off[k] -= strides[k][d] * idx[d];
      idx[d] = 0;
    }
  }
}

// Calls f(i, off) for every element i of the broadcast output shape `out`, off[k] being the
// matching element of operand k (of shape *in[k], which broadcasts to out).
template <size_t N, typename F>
void ForEachBroadcast(const Shape& out, const std::array<const Shape*, N>& in, F&& f) {
  OperandStrides<N> st;
  for (size_t k = 0; k < N; ++k) BroadcastStrides(*in[k], out.size(), st[k]);
  WalkStrided<N>(out, st, f);
}

}  // namespace edgeloop::runtime::kernels
