// For tests: deterministic pseudo-random bytes (incompressible, so any saving a delta shows
// comes from the base, not from zstd's entropy stage). Header-only; not used by the product.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace edgeloop::testing {

inline std::string PseudoRandomBytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  for (auto& c : s) {
    seed = seed * 1664525u + 1013904223u;  // the Numerical Recipes LCG
    c = static_cast<char>(seed >> 24);
  }
  return s;
}

}  // namespace edgeloop::testing
