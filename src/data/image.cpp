#include "data/image.hpp"

#include <algorithm>
#include <cctype>

#include "common/file.hpp"
#include "data/image_codecs.hpp"

namespace edgeloop::data {

namespace {
constexpr size_t kMaxImageFileBytes = size_t{256} << 20;

bool StartsWith(std::string_view bytes, std::string_view magic) {
  return bytes.size() >= magic.size() && bytes.substr(0, magic.size()) == magic;
}
}  // namespace

namespace detail {
Status CheckDeclaredSize(int64_t width, int64_t height, const std::string& name,
                         const ImageLimits& limits) {
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (width <= 0 || height <= 0)
    return Error(Errc::kFormat, name + ": image declares an empty size " + size);
  if (width > limits.max_side || height > limits.max_side ||
      width * height > limits.max_pixels)
    return Error(Errc::kResourceExhausted,
                 name + ": image declares " + size + " pixels, more than the limit of " +
                     std::to_string(limits.max_pixels >> 20) + " Mpixel (side at most " +
                     std::to_string(limits.max_side) + ")");
  return Status::Ok();
}
}  // namespace detail

Result<Image> DecodeImage(std::string_view bytes, const std::string& name,
                          const ImageLimits& limits) {
  if (StartsWith(bytes, "\x89PNG\r\n\x1a\n")) return detail::DecodePng(bytes, name, limits);
  if (StartsWith(bytes, "\xff\xd8\xff")) return detail::DecodeJpeg(bytes, name, limits);
  return Error(Errc::kFormat, name + ": neither a PNG nor a JPEG image (" +
                                  std::to_string(bytes.size()) + " bytes, unknown signature)");
}

Result<Image> DecodeImageFile(const std::string& path, const ImageLimits& limits) {
  EDGELOOP_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path, kMaxImageFileBytes));
  return DecodeImage(bytes, path, limits);
}

Result<std::string> EncodeJpeg(const Image& image, int quality) {
  if ((image.channels != 1 && image.channels != 3) || image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height) *
                                 static_cast<size_t>(image.channels))
    return Error(Errc::kInvalidArgument, "JPEG encoding: not an 8-bit grayscale or RGB image");
  return detail::EncodeJpeg(image, std::clamp(quality, 1, 100));
}

bool IsImageFileName(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == "png" || ext == "jpg" || ext == "jpeg";
}

}  // namespace edgeloop::data
