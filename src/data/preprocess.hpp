// The one image preprocessing routine: a decoded image (any size, gray or RGB) becomes a
// model's input tensor. The trainer's data loading, eval, infer and the edge agent all call
// it, so a device feeds its model exactly the values training saw.
//
// Steps, in this order and in integer pixel space so that the result is still 8-bit pixels:
//   1. channels: RGB -> gray with the ITU-R BT.601 weights (0.299, 0.587, 0.114; what
//      libjpeg uses for a colour JPEG's luma), gray -> RGB by repeating the channel;
//   2. size, by the spec's resize mode: "stretch" to exactly height x width; "center-crop"
//      scales the short side to fit, then crops the centre; "pad" scales the long side to
//      fit and letterboxes with black. Resampling is bilinear, its filter widened by the
//      scale factor when shrinking (so every source pixel counts: area-correct);
//   3. values: (x / 255 - mean[c]) / std[c], laid out CHW. The defaults 0 and 1 give x / 255,
//      because edgeloop's own models normalise inside the graph.
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/pixel.hpp"
#include "common/result.hpp"
#include "data/image.hpp"

namespace edgeloop::data {

enum class ResizeMode { kStretch, kCenterCrop, kPad };

Result<ResizeMode> ParseResizeMode(const std::string& name);  // stretch, center-crop, pad
std::string ResizeModeName(ResizeMode mode);

struct InputSpec {
  int channels = 1;  // 1 or 3
  int height = 0, width = 0;
  ResizeMode resize = ResizeMode::kStretch;
  std::vector<float> mean = {0.f};  // one per channel
  std::vector<float> std = {1.f};   // one per channel, > 0

  // A spec for images of shape {c, h, w} with the default resize and normalisation; an
  // error when the shape is not that of 1- or 3-channel images.
  static Result<InputSpec> ForShape(const std::vector<int64_t>& chw);
  std::vector<int64_t> Shape() const { return {channels, height, width}; }
  // True when the values are x / 255 (what the uint8 wire form and byte-held images need).
  bool IdentityNormalization() const;
  Status Validate() const;
  // {"channels", "height", "width", "resize", "mean", "std"}; FromJson refuses unknown keys
  // and out-of-range values, and fills mean and std with 0 and 1 when they are absent.
  nlohmann::json ToJson() const;
  static Result<InputSpec> FromJson(const nlohmann::json& j);
  bool operator==(const InputSpec&) const = default;
};

// Steps 1 and 2: the image at the spec's channels and size, HWC bytes.
Image ConvertImage(const Image& image, const InputSpec& spec);
// Step 3 on an image already at the spec's channels and size (what ConvertImage returns).
std::vector<float> NormalizeImage(const Image& converted, const InputSpec& spec);
// All three steps. The spec must be valid (Validate) and the image non-empty; an error names
// neither file nor sample, callers add that context.
Result<std::vector<float>> Preprocess(const Image& image, const InputSpec& spec);

// Already-decoded samples: CHW bytes (a uint8 wire tensor, a byte-held replay image) as an
// Image, and back. ImageFromChw needs channels 1 or 3 and data of c * h * w bytes.
Image ImageFromChw(const uint8_t* chw, int channels, int height, int width);
std::vector<uint8_t> ImageToChw(const Image& image);
// Bytes as model values without resizing: x / 255, the conversion every loader uses.
using edgeloop::PixelValue;

}  // namespace edgeloop::data
