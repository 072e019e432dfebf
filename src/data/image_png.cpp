// PNG decoding with libpng's simplified API, which reports errors through the png_image
// (no longjmp in our code) and converts 16-bit, palette, gray+alpha and tRNS images to 8-bit
// gray or RGB itself.
#include <png.h>

#include <cstring>

#include "data/image_codecs.hpp"

namespace edgeloop::data::detail {
namespace {

// Owns a png_image and releases libpng's state on every path out.
class PngImage {
 public:
  PngImage() {
    std::memset(&image_, 0, sizeof(image_));
    image_.version = PNG_IMAGE_VERSION;
  }
  ~PngImage() { png_image_free(&image_); }
  PngImage(const PngImage&) = delete;
  PngImage& operator=(const PngImage&) = delete;
  png_image* get() { return &image_; }

 private:
  png_image image_;
};

}  // namespace

Result<Image> DecodePng(std::string_view bytes, const std::string& name, const ImageLimits& limits) {
  PngImage holder;
  png_image* png = holder.get();
  if (!png_image_begin_read_from_memory(png, bytes.data(), bytes.size()))
    return Error(Errc::kFormat, name + ": unreadable PNG header (" + png->message + ")");
  EDGELOOP_RETURN_IF_ERROR(CheckDeclaredSize(png->width, png->height, name, limits));
  const bool color = (png->format & PNG_FORMAT_FLAG_COLOR) != 0;
  // Without a gAMA or sRGB chunk libpng takes 16-bit samples as linear light and would
  // gamma-encode them on the way to 8 bits; cameras and tools write them sRGB-encoded, so
  // the conversion is then a plain rescale, as for 8-bit files.
  png->flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
  png->format = color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  Image img;
  img.width = static_cast<int>(png->width);
  img.height = static_cast<int>(png->height);
  img.channels = color ? 3 : 1;
  img.pixels.resize(PNG_IMAGE_SIZE(*png));
  const png_color black{0, 0, 0};
  if (!png_image_finish_read(png, &black, img.pixels.data(), 0, nullptr))
    return Error(Errc::kFormat, name + ": corrupt PNG image data (" + png->message + ")");
  return img;
}

}  // namespace edgeloop::data::detail
