// Image-folder reader: DIR/<class>/<image>.png, decoded to grayscale with libpng's
// simplified API. Each PNG's header is read before its pixels are, so an image of the wrong
// size is refused before memory is allocated for it.
#include <png.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset.hpp"

namespace edgeloop::data {
namespace {

namespace fs = std::filesystem;

// Larger images are almost certainly a mistake for this platform's models; refusing them
// keeps a single bad file from exhausting memory.
constexpr png_uint_32 kMaxSide = 8192;

// Owns a png_image and releases libpng's state on every path out.
class PngReader {
 public:
  PngReader() {
    std::memset(&image_, 0, sizeof(image_));
    image_.version = PNG_IMAGE_VERSION;
  }
  ~PngReader() { png_image_free(&image_); }
  PngReader(const PngReader&) = delete;
  PngReader& operator=(const PngReader&) = delete;
  png_image& image() { return image_; }

 private:
  png_image image_;
};

std::string SizeText(png_uint_32 w, png_uint_32 h) {
  return std::to_string(w) + "x" + std::to_string(h);
}

bool IsHidden(const fs::path& p) {
  std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

}  // namespace

Result<Dataset> LoadImageFolder(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Error(Errc::kNotFound, dir + ": no such directory");
  if (!fs::is_directory(dir, ec))
    return Error(Errc::kInvalidArgument,
                 dir + ": not a directory (expected one subfolder per class)");

  // Classes are the sorted subfolder names; files inside are sorted too, so the sample order
  // (and therefore the hash) does not depend on the file system's listing order.
  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory() && !IsHidden(e.path())) classes.push_back(e.path().filename().string());
  }
  if (ec) return Error(Errc::kIo, dir + ": cannot list: " + ec.message());
  std::sort(classes.begin(), classes.end());
  std::vector<std::pair<std::string, int32_t>> files;
  for (size_t k = 0; k < classes.size(); ++k) {
    std::vector<std::string> in_class;
    const fs::path class_dir = fs::path(dir) / classes[k];
    for (const auto& e : fs::directory_iterator(class_dir, ec)) {
      if (e.is_regular_file() && !IsHidden(e.path())) in_class.push_back(e.path().string());
    }
    if (ec) return Error(Errc::kIo, class_dir.string() + ": cannot list: " + ec.message());
    std::sort(in_class.begin(), in_class.end());
    for (auto& f : in_class) files.emplace_back(std::move(f), static_cast<int32_t>(k));
  }
  if (files.empty())
    return Error(Errc::kFormat, dir + ": dataset is empty (no images in class subfolders)");

  Dataset d;
  d.class_names = classes;
  png_uint_32 width = 0, height = 0;
  std::string first;
  std::vector<unsigned char> pixels;
  for (const auto& [file, label] : files) {
    PngReader r;
    png_image& img = r.image();
    if (!png_image_begin_read_from_file(&img, file.c_str()))
      return Error(Errc::kFormat, file + ": not a readable PNG image (" + img.message + ")");
    if (img.width == 0 || img.height == 0 || img.width > kMaxSide || img.height > kMaxSide)
      return Error(Errc::kFormat,
                   file + ": unsupported image size " + SizeText(img.width, img.height));
    if (first.empty()) {
      first = file;
      width = img.width;
      height = img.height;
      d.sample_shape = {1, static_cast<int64_t>(height), static_cast<int64_t>(width)};
      d.x.reserve(files.size() * size_t{width} * height);
    } else if (img.width != width || img.height != height) {
      return Error(Errc::kMismatch, file + ": image is " + SizeText(img.width, img.height) +
                                        " but " + first + " is " + SizeText(width, height) +
                                        " (all images must have the same size)");
    }
    img.format = PNG_FORMAT_GRAY;
    pixels.resize(PNG_IMAGE_SIZE(img));
    if (!png_image_finish_read(&img, nullptr, pixels.data(), 0, nullptr))
      return Error(Errc::kFormat, file + ": corrupt PNG image (" + img.message + ")");
    for (unsigned char p : pixels) d.x.push_back(static_cast<float>(p) / 255.0f);
    d.y.push_back(label);
  }
  d.source = "images:" + dir;
  d.hash = ComputeHash(d);
  return d;
}

}  // namespace edgeloop::data
