// The codec backends behind DecodeImage (image.hpp), one per library: image_png.cpp (libpng),
// image_jpeg.cpp (libjpeg-turbo). Internal to src/data.
#pragma once

#include <string>
#include <string_view>

#include "data/image.hpp"

namespace edgeloop::data::detail {

Result<Image> DecodePng(std::string_view bytes, const std::string& name, const ImageLimits& limits);
Result<Image> DecodeJpeg(std::string_view bytes, const std::string& name,
                         const ImageLimits& limits);
Result<std::string> EncodeJpeg(const Image& image, int quality);
// The one size check both codecs run on the declared header, before allocating pixels.
Status CheckDeclaredSize(int64_t width, int64_t height, const std::string& name,
                         const ImageLimits& limits);

}  // namespace edgeloop::data::detail
