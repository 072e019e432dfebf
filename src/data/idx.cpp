// IDX reader (the writer is idx_write.cpp). The header is validated against the file's real
// size before any sample memory is allocated, so a corrupt or hostile header cannot make us
// allocate gigabytes.
#include <cstdint>
#include <cstdio>
#include <string>

#include "common/file.hpp"
#include "data/dataset.hpp"

namespace edgeloop::data {
namespace {

constexpr unsigned char kUbyte = 0x08;

struct IdxHeader {
  std::vector<uint64_t> dims;
  size_t data_offset = 0;
  uint64_t numel = 0;
};

uint32_t ReadBe32(const std::string& b, size_t off) {
  return (uint32_t{static_cast<unsigned char>(b[off])} << 24) |
         (uint32_t{static_cast<unsigned char>(b[off + 1])} << 16) |
         (uint32_t{static_cast<unsigned char>(b[off + 2])} << 8) |
         uint32_t{static_cast<unsigned char>(b[off + 3])};
}

// Parses the magic and dimensions; checks the dimension count and that the product of the
// dimensions neither overflows nor exceeds the bytes actually present.
Result<IdxHeader> ParseHeader(const std::string& path, const std::string& bytes, size_t want_dims,
                              const char* what) {
  if (bytes.size() < 4)
    return Error(Errc::kFormat,
                 path + ": not an IDX file: only " + std::to_string(bytes.size()) + " bytes");
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  if (b[0] != 0 || b[1] != 0)
    return Error(Errc::kFormat, path + ": not an IDX file: bad magic number");
  if (b[2] != kUbyte) {
    char type[8];
    std::snprintf(type, sizeof(type), "0x%02x", b[2]);
    return Error(Errc::kUnsupported, path + ": IDX element type " + type +
                                         " is not supported (only unsigned bytes, 0x08)");
  }
  if (b[3] != want_dims)
    return Error(Errc::kFormat, path + ": expected an IDX " + what + " file with " +
                                    std::to_string(want_dims) + " dimension(s), found " +
                                    std::to_string(static_cast<int>(b[3])));
  IdxHeader h;
  h.data_offset = 4 + 4 * want_dims;
  if (bytes.size() < h.data_offset)
    return Error(Errc::kFormat, path + ": truncated: IDX header needs " +
                                    std::to_string(h.data_offset) + " bytes, file holds " +
                                    std::to_string(bytes.size()));
  h.numel = 1;
  for (size_t i = 0; i < want_dims; ++i) {
    uint64_t d = ReadBe32(bytes, 4 + 4 * i);
    h.dims.push_back(d);
    // Three 32-bit dims can overflow 64 bits; saturate, the size check then refuses it.
    if (__builtin_mul_overflow(h.numel, d, &h.numel)) h.numel = UINT64_MAX;
  }
  return h;
}

}  // namespace

Result<Dataset> LoadIdx(const std::string& images_path, const std::string& labels_path) {
  return LoadIdx(images_path, labels_path, {});
}

Result<Dataset> LoadIdx(const std::string& images_path, const std::string& labels_path,
                        const std::vector<std::string>& class_names) {
  EDGELOOP_ASSIGN_OR_RETURN(std::string img, ReadMaybeGzipFile(images_path));
  EDGELOOP_ASSIGN_OR_RETURN(IdxHeader ih, ParseHeader(images_path, img, 3, "images"));
  const uint64_t n = ih.dims[0], h = ih.dims[1], w = ih.dims[2];
  const std::string shape_text =
      std::to_string(n) + " images of " + std::to_string(h) + "x" + std::to_string(w);
  if (ih.numel > img.size() - ih.data_offset)
    return Error(Errc::kFormat, images_path + ": truncated: header says " + shape_text +
                                    ", file holds " + std::to_string(img.size()) + " bytes");
  if (ih.numel < img.size() - ih.data_offset)
    return Error(Errc::kFormat, images_path + ": " +
                                    std::to_string(img.size() - ih.data_offset - ih.numel) +
                                    " unexpected bytes after " + shape_text);
  if (n > 0 && (h == 0 || w == 0))
    return Error(Errc::kFormat, images_path + ": images have zero size (" + shape_text + ")");

  EDGELOOP_ASSIGN_OR_RETURN(std::string lab, ReadMaybeGzipFile(labels_path));
  EDGELOOP_ASSIGN_OR_RETURN(IdxHeader lh, ParseHeader(labels_path, lab, 1, "labels"));
  const uint64_t nl = lh.dims[0];
  if (nl > lab.size() - lh.data_offset)
    return Error(Errc::kFormat, labels_path + ": truncated: header says " + std::to_string(nl) +
                                    " labels, file holds " + std::to_string(lab.size()) + " bytes");
  if (nl < lab.size() - lh.data_offset)
    return Error(Errc::kFormat, labels_path + ": " +
                                    std::to_string(lab.size() - lh.data_offset - nl) +
                                    " unexpected bytes after " + std::to_string(nl) + " labels");
  if (nl != n)
    return Error(Errc::kMismatch, labels_path + ": holds " + std::to_string(nl) + " labels but " +
                                      images_path + " holds " + std::to_string(n) + " images");
  if (n == 0) return Error(Errc::kFormat, images_path + ": dataset is empty (0 images)");

  Dataset d;
  d.sample_shape = {1, static_cast<int64_t>(h), static_cast<int64_t>(w)};
  d.y.resize(n);
  int max_label = -1;
  for (uint64_t i = 0; i < n; ++i) {
    int label = static_cast<unsigned char>(lab[lh.data_offset + i]);
    if (!class_names.empty() && static_cast<size_t>(label) >= class_names.size())
      return Error(Errc::kFormat, labels_path + ": label " + std::to_string(label) + " of sample " +
                                      std::to_string(i) + " is outside the " +
                                      std::to_string(class_names.size()) + " known classes");
    d.y[i] = label;
    if (label > max_label) max_label = label;
  }
  if (class_names.empty()) {
    for (int k = 0; k <= max_label; ++k) d.class_names.push_back(std::to_string(k));
  } else {
    d.class_names = class_names;
  }
  d.x.resize(ih.numel);
  const auto* px = reinterpret_cast<const unsigned char*>(img.data()) + ih.data_offset;
  for (uint64_t i = 0; i < ih.numel; ++i) d.x[i] = static_cast<float>(px[i]) / 255.0f;
  d.source = "idx:" + images_path + "," + labels_path;
  d.hash = ComputeHash(d);
  return d;
}

}  // namespace edgeloop::data
