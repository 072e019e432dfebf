// IDX writer (the reader is idx.cpp): exports and tests write datasets as IDX files. Training
// side only, in edgeloop_data; the agent reads IDX but never writes it.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "common/file.hpp"
#include "data/dataset.hpp"

namespace edgeloop::data {
namespace {

constexpr unsigned char kUbyte = 0x08;

void AppendBe32(std::string& b, uint32_t v) {
  b.push_back(static_cast<char>(v >> 24));
  b.push_back(static_cast<char>(v >> 16));
  b.push_back(static_cast<char>(v >> 8));
  b.push_back(static_cast<char>(v));
}

}  // namespace

Status WriteIdx(const Dataset& d, const std::string& images_path, const std::string& labels_path) {
  // Encoded (and so validated) first, so that a refusal leaves no file behind.
  std::string img, lab;
  Status st = EncodeIdx(d, &img, &lab);
  if (!st.ok()) return st.error().WithContext(images_path);
  EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(images_path, img));
  return WriteFileAtomic(labels_path, lab);
}

Status EncodeIdx(const Dataset& d, std::string* images, std::string* labels) {
  if (!d.is_image() || d.sample_shape[0] != 1)
    return Error(Errc::kUnsupported, "IDX holds single-channel images only");
  constexpr uint64_t kMax = std::numeric_limits<uint32_t>::max();
  const uint64_t h = static_cast<uint64_t>(d.sample_shape[1]);
  const uint64_t w = static_cast<uint64_t>(d.sample_shape[2]);
  if (d.size() > kMax || h > kMax || w > kMax)
    return Error(Errc::kUnsupported, "dataset too large for IDX");
  if (d.x.size() != d.size() * d.sample_numel())
    return Error(Errc::kInternal, "dataset has inconsistent sizes");
  for (size_t i = 0; i < d.size(); ++i) {
    if (d.y[i] < 0 || d.y[i] > 255)
      return Error(Errc::kUnsupported, "label " + std::to_string(d.y[i]) + " of sample " +
                                           std::to_string(i) +
                                           " does not fit an IDX unsigned byte");
  }
  std::string& img = *images;
  img.clear();
  img.reserve(16 + d.x.size());
  img.append({0, 0, static_cast<char>(kUbyte), 3});
  AppendBe32(img, static_cast<uint32_t>(d.size()));
  AppendBe32(img, static_cast<uint32_t>(h));
  AppendBe32(img, static_cast<uint32_t>(w));
  for (float v : d.x) {
    float c = std::isnan(v) ? 0.0f : std::fmin(1.0f, std::fmax(0.0f, v));
    img.push_back(static_cast<char>(static_cast<unsigned char>(std::lround(c * 255.0f))));
  }
  std::string& lab = *labels;
  lab.clear();
  lab.reserve(8 + d.size());
  lab.append({0, 0, static_cast<char>(kUbyte), 1});
  AppendBe32(lab, static_cast<uint32_t>(d.size()));
  for (int32_t y : d.y) lab.push_back(static_cast<char>(static_cast<unsigned char>(y)));
  return Status::Ok();
}

}  // namespace edgeloop::data
