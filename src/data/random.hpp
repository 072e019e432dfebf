// Portable random draws for the data module. std::mt19937_64 produces the same sequence on
// every standard library, but std::shuffle and the std::*_distribution classes do not; splits
// and corruptions are part of a dataset's lineage, so they use these fixed algorithms instead.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace edgeloop::data::detail {

// Uniform integer in [0, n), n > 0, without modulo bias (rejection sampling).
inline uint64_t UniformIndex(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t v;
  do {
    v = rng();
  } while (v >= limit);
  return v % n;
}

// Uniform double in [0, 1) from the top 53 bits.
inline double Uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}

// Standard normal (Box-Muller; one draw per call, so the stream position is predictable).
inline double StandardNormal(std::mt19937_64& rng) {
  double u1 = Uniform01(rng);
  double u2 = Uniform01(rng);
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// Fisher-Yates shuffle.
template <typename T>
void Shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    size_t j = static_cast<size_t>(UniformIndex(rng, i));
    std::swap(v[i - 1], v[j]);
  }
}

// SplitMix64: derives independent seeds (per sample, per class) from one user seed.
inline uint64_t MixSeed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace edgeloop::data::detail
