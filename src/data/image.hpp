// Image decoding: PNG (libpng) and JPEG (libjpeg-turbo), from a file or from memory, to 8-bit
// grayscale or RGB pixels of any size, as cameras and image folders deliver them.
//
// The header is read first and a declared size over the limits is refused before any pixel
// memory is allocated. 16-bit and palette PNGs are converted to 8 bits; an alpha channel is
// composited onto black (the colour "pad" letterboxing uses). CMYK/YCCK JPEGs, truncated or
// corrupt files are errors; every error is one line that starts with the file's name.
// Thread-safe: no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::data {

struct Image {
  int width = 0, height = 0;
  int channels = 0;             // 1 (grayscale) or 3 (RGB)
  std::vector<uint8_t> pixels;  // height * width * channels bytes, interleaved (HWC), top row first
};

struct ImageLimits {
  int64_t max_side = 60000;              // width or height
  int64_t max_pixels = int64_t{64} << 20;  // width * height (64 Mpixel)
};

// Decodes PNG or JPEG bytes (told apart by their signature, not by a file name). `name`
// names the image in errors.
Result<Image> DecodeImage(std::string_view bytes, const std::string& name,
                          const ImageLimits& limits = {});
// Reads and decodes a file (at most 256 MiB).
Result<Image> DecodeImageFile(const std::string& path, const ImageLimits& limits = {});

// Baseline JPEG of an 8-bit grayscale or RGB image at quality 1..100 (clamped), as a camera
// writes its frames. An image whose pixel count does not match its size is an error.
Result<std::string> EncodeJpeg(const Image& image, int quality);

// True for the names image folders and watched folders read: .png, .jpg, .jpeg (any case).
bool IsImageFileName(const std::string& name);

}  // namespace edgeloop::data
