// Image-folder reader: DIR/<class>/<image>.{png,jpg,jpeg}, decoded by image.hpp and converted
// by preprocess.hpp. Each image's header is checked before its pixels are allocated.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "data/image.hpp"
#include "data/preprocess.hpp"

namespace edgeloop::data {
namespace {

namespace fs = std::filesystem;

bool IsHidden(const fs::path& p) {
  std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// "24x20 (HxW) RGB", in the order --input-size takes.
std::string ShapeText(int channels, int height, int width) {
  return std::to_string(height) + "x" + std::to_string(width) + " (HxW) " +
         (channels == 3 ? "RGB" : "grayscale");
}

}  // namespace

Result<Dataset> LoadImageFolder(const std::string& dir) { return LoadImageFolder(dir, nullptr); }

Result<Dataset> LoadImageFolder(const std::string& dir, const InputSpec* spec) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Error(Errc::kNotFound, dir + ": no such directory");
  if (!fs::is_directory(dir, ec))
    return Error(Errc::kInvalidArgument,
                 dir + ": not a directory (expected one subfolder per class)");
  if (spec) {
    if (auto st = spec->Validate(); !st.ok()) return st.error().WithContext(dir);
  }

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
      if (!e.is_regular_file() || IsHidden(e.path())) continue;
      // A stray file is refused rather than skipped: a folder that silently trains on less
      // than it holds is worse than one that names what it cannot read.
      if (!IsImageFileName(e.path().filename().string()))
        return Error(Errc::kFormat, e.path().string() +
                                        ": not a .png, .jpg or .jpeg image (image folders hold "
                                        "only images, one subfolder per class)");
      in_class.push_back(e.path().string());
    }
    if (ec) return Error(Errc::kIo, class_dir.string() + ": cannot list: " + ec.message());
    std::sort(in_class.begin(), in_class.end());
    for (auto& f : in_class) files.emplace_back(std::move(f), static_cast<int32_t>(k));
  }
  if (files.empty())
    return Error(Errc::kFormat,
                 dir + ": dataset is empty (no .png, .jpg or .jpeg files in class subfolders)");

  Dataset d;
  d.class_names = classes;
  // Without a spec the first image sets it: its own size and channels, values x / 255.
  InputSpec own;
  std::string first;
  for (const auto& [file, label] : files) {
    EDGELOOP_ASSIGN_OR_RETURN(Image img, DecodeImageFile(file));
    if (first.empty()) {
      first = file;
      if (spec) {
        own = *spec;
      } else {
        EDGELOOP_ASSIGN_OR_RETURN(own, InputSpec::ForShape({img.channels, img.height, img.width}));
      }
      d.sample_shape = own.Shape();
      d.x.reserve(files.size() * d.sample_numel());
    } else if (!spec && (img.width != own.width || img.height != own.height ||
                         img.channels != own.channels)) {
      return Error(Errc::kMismatch,
                   file + ": image is " + ShapeText(img.channels, img.height, img.width) + " but " +
                       first + " is " + ShapeText(own.channels, own.height, own.width) +
                       "; give an input spec to convert every image (e.g. --input-size " +
                       std::to_string(own.height) + "x" + std::to_string(own.width) +
                       " --channels " + std::to_string(std::max(own.channels, img.channels)) +
                       ")");
    }
    auto x = Preprocess(img, own);
    if (!x.ok()) return x.error().WithContext(file);
    d.x.insert(d.x.end(), x->begin(), x->end());
    d.y.push_back(label);
  }
  d.source = "images:" + dir;
  d.hash = ComputeHash(d);
  return d;
}

}  // namespace edgeloop::data
