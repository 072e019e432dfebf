// The one conversion between 8-bit pixels and model values, shared by the image
// preprocessing (src/data), the wire's uint8 tensors and every loader, so the same byte is
// the same float everywhere and a float goes back to a byte only when that is exact.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace edgeloop {

inline float PixelValue(uint8_t b) { return static_cast<float>(b) / 255.0f; }

// The bytes b with PixelValue(b) == values[i], written to out; false (out partly written)
// as soon as one value is not exactly such a pixel (noise, normalised or feature values).
inline bool ToPixels(const float* values, size_t n, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) {
    const float v = values[i];
    if (!(v >= 0.0f && v <= 1.0f)) return false;  // negated, so that NaN fails too
    const auto b = static_cast<uint8_t>(std::lround(v * 255.0f));
    if (PixelValue(b) != v) return false;
    out[i] = b;
  }
  return true;
}

}  // namespace edgeloop
