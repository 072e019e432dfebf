#include "data/dataset.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/hash.hpp"
#include "data/preprocess.hpp"

namespace edgeloop::data {

// The hash feeds raw float and int bytes to sha256; it is defined over little-endian bytes so
// the same data hashes the same everywhere. Every target we build for is little-endian.
static_assert(std::endian::native == std::endian::little, "ComputeHash assumes little-endian");

const std::vector<std::string> kFashionMnistClasses = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

size_t Dataset::sample_numel() const {
  size_t n = 1;
  for (int64_t d : sample_shape) n *= static_cast<size_t>(d < 0 ? 0 : d);
  return sample_shape.empty() ? 0 : n;
}

Dataset Dataset::Subset(const std::vector<size_t>& indices) const {
  Dataset out;
  out.sample_shape = sample_shape;
  out.class_names = class_names;
  out.source = source;
  const size_t numel = sample_numel();
  out.x.reserve(indices.size() * numel);
  out.y.reserve(indices.size());
  for (size_t i : indices) {
    if (i >= size()) {
      // A caller bug, not bad input: fail loudly rather than return a silently smaller set.
      std::fprintf(stderr, "Dataset::Subset: index %zu out of range (size %zu)\n", i, size());
      std::abort();
    }
    out.x.insert(out.x.end(), sample(i), sample(i) + numel);
    out.y.push_back(y[i]);
  }
  out.hash = ComputeHash(out);
  return out;
}

namespace {
void UpdateU64(Sha256& h, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
  h.Update(b, sizeof(b));
}
}  // namespace

std::string ComputeHash(const Dataset& d) {
  Sha256 h;
  // Every field is length-prefixed so that different splits of the same bytes cannot collide.
  UpdateU64(h, d.sample_shape.size());
  for (int64_t s : d.sample_shape) UpdateU64(h, static_cast<uint64_t>(s));
  UpdateU64(h, d.class_names.size());
  for (const auto& name : d.class_names) {
    UpdateU64(h, name.size());
    h.Update(name);
  }
  UpdateU64(h, d.x.size());
  h.Update(d.x.data(), d.x.size() * sizeof(float));
  UpdateU64(h, d.y.size());
  h.Update(d.y.data(), d.y.size() * sizeof(int32_t));
  return h.HexDigest();
}

namespace {

namespace fs = std::filesystem;

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool IsFile(const std::string& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// PREFIX-images-idx3-ubyte[.gz] and its labels file; the uncompressed name wins if both exist.
Result<std::pair<std::string, std::string>> IdxPairForPrefix(const std::string& prefix) {
  std::string images, labels;
  for (const char* ext : {"", ".gz"}) {
    if (images.empty() && IsFile(prefix + "-images-idx3-ubyte" + ext))
      images = prefix + "-images-idx3-ubyte" + ext;
    if (labels.empty() && IsFile(prefix + "-labels-idx1-ubyte" + ext))
      labels = prefix + "-labels-idx1-ubyte" + ext;
  }
  if (images.empty())
    return Error(Errc::kNotFound, prefix + "-images-idx3-ubyte[.gz]: no such file");
  if (labels.empty())
    return Error(Errc::kNotFound, prefix + "-labels-idx1-ubyte[.gz]: no such file");
  return std::make_pair(images, labels);
}

// The prefixes of the IDX image files in a folder ("train", "t10k", ...), sorted.
std::vector<std::string> IdxPrefixesIn(const std::string& dir) {
  std::vector<std::string> prefixes;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    for (const char* suffix : {"-images-idx3-ubyte", "-images-idx3-ubyte.gz"}) {
      if (EndsWith(name, suffix)) {
        std::string p = name.substr(0, name.size() - std::strlen(suffix));
        if (std::find(prefixes.begin(), prefixes.end(), p) == prefixes.end()) prefixes.push_back(p);
      }
    }
  }
  std::sort(prefixes.begin(), prefixes.end());
  return prefixes;
}

// Picks the split's files from an IDX folder: "train" -> train-*, "test" -> t10k-* or test-*;
// without a split, train-* if present, else the only pair in the folder.
Result<Dataset> LoadIdxFolder(const std::string& dir, const std::string& split,
                              const std::vector<std::string>& class_names) {
  auto prefixes = IdxPrefixesIn(dir);
  auto has = [&](const std::string& p) {
    return std::find(prefixes.begin(), prefixes.end(), p) != prefixes.end();
  };
  std::string prefix;
  if (split == "train" || (split.empty() && has("train"))) {
    prefix = "train";
  } else if (split == "test") {
    prefix = has("test") ? "test" : "t10k";
  } else if (split.empty() && prefixes.size() == 1) {
    prefix = prefixes[0];
  } else if (split.empty()) {
    return Error(Errc::kInvalidArgument,
                 dir + ": holds several IDX datasets; name one with " + dir + ":train or :test");
  } else {
    return Error(Errc::kInvalidArgument,
                 dir + ": unknown split '" + split + "' (expected train or test)");
  }
  EDGELOOP_ASSIGN_OR_RETURN(auto files, IdxPairForPrefix((fs::path(dir) / prefix).string()));
  return LoadIdx(files.first, files.second, class_names);
}

std::string FashionMnistDir() {
  const char* env = std::getenv("EDGELOOP_FASHION_MNIST_DIR");
  return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

}  // namespace

Result<Dataset> ConvertToInputSpec(Dataset d, const InputSpec& input) {
  if (!d.is_image())
    return Error(Errc::kInvalidArgument,
                 d.source + ": an input spec applies to image datasets, this one holds features");
  EDGELOOP_RETURN_IF_ERROR(input.Validate());
  const bool same_shape = d.sample_shape == input.Shape();
  if (same_shape && input.IdentityNormalization()) return d;
  const size_t numel = d.sample_numel();
  const int c = static_cast<int>(d.sample_shape[0]), h = static_cast<int>(d.sample_shape[1]),
            w = static_cast<int>(d.sample_shape[2]);
  if (c != 1 && c != 3)
    return Error(Errc::kUnsupported, d.source + ": samples have " + std::to_string(c) +
                                         " channels; an input spec converts 1 or 3");
  std::vector<uint8_t> bytes(numel);
  std::vector<float> x;
  x.reserve(d.size() * static_cast<size_t>(input.channels) * input.height * input.width);
  for (size_t i = 0; i < d.size(); ++i) {
    if (!ToPixels(d.sample(i), numel, bytes.data()))
      return Error(Errc::kUnsupported, d.source + ": sample " + std::to_string(i) +
                                           " is not 8-bit pixels (k / 255), so it cannot be "
                                           "converted to the input spec");
    EDGELOOP_ASSIGN_OR_RETURN(auto v, Preprocess(ImageFromChw(bytes.data(), c, h, w), input));
    x.insert(x.end(), v.begin(), v.end());
  }
  d.x = std::move(x);
  d.sample_shape = input.Shape();
  d.hash = ComputeHash(d);
  return d;
}

namespace {

// LoadDatasetFiles without the conversion of non-folder datasets; *converted tells whether the
// loader applied the input spec itself.
Result<Dataset> LoadAsStored(const std::string& spec, const InputSpec* input, bool* converted) {
  if (spec.empty()) return Error(Errc::kInvalidArgument, "empty dataset spec");
  if (spec == "fashion-mnist" || spec.rfind("fashion-mnist:", 0) == 0) {
    std::string split = spec == "fashion-mnist" ? "train" : spec.substr(14);
    if (split != "train" && split != "test")
      return Error(Errc::kInvalidArgument, spec + ": unknown split '" + split +
                                               "' (expected fashion-mnist:train or :test)");
    const std::string dir = FashionMnistDir();
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
      return Error(Errc::kNotFound, dir +
                                        ": Fashion-MNIST folder not found (install the "
                                        "dataset-fashion-mnist package or set "
                                        "EDGELOOP_FASHION_MNIST_DIR)");
    EDGELOOP_ASSIGN_OR_RETURN(Dataset d, LoadIdxFolder(dir, split, kFashionMnistClasses));
    d.source = "fashion-mnist:" + split;
    return d;
  }
  if (spec.rfind("idx:", 0) == 0) {
    std::string rest = spec.substr(4);
    size_t comma = rest.find(',');
    if (comma != std::string::npos) return LoadIdx(rest.substr(0, comma), rest.substr(comma + 1));
    EDGELOOP_ASSIGN_OR_RETURN(auto files, IdxPairForPrefix(rest));
    return LoadIdx(files.first, files.second);
  }
  if (spec.rfind("snapshot:", 0) == 0)
    return Error(Errc::kUnsupported,
                 spec +
                     ": a dataset snapshot lives in a server's data folder and is read by "
                     "training, not replayed from files; `edgeloop datasets export` writes "
                     "it as IDX or CSV");
  if (spec.rfind("csv:", 0) == 0) return LoadCsv(spec.substr(4));
  if (spec.rfind("images:", 0) == 0) {
    *converted = true;
    return LoadImageFolder(spec.substr(7), input);
  }
  if (EndsWith(spec, ".csv")) return LoadCsv(spec);

  std::error_code ec;
  if (fs::is_directory(spec, ec)) {
    if (!IdxPrefixesIn(spec).empty()) return LoadIdxFolder(spec, "", {});
    *converted = true;
    return LoadImageFolder(spec, input);
  }
  // DIR:train / DIR:test for a folder of IDX files.
  size_t colon = spec.rfind(':');
  if (colon != std::string::npos && fs::is_directory(spec.substr(0, colon), ec))
    return LoadIdxFolder(spec.substr(0, colon), spec.substr(colon + 1), {});
  if (fs::exists(spec, ec))
    return Error(Errc::kInvalidArgument,
                 spec +
                     ": cannot tell the dataset format; use idx:IMAGES,LABELS, csv:FILE or "
                     "images:DIR");
  return Error(Errc::kNotFound, spec + ": no such file or directory");
}

}  // namespace

Result<Dataset> LoadDatasetFiles(const std::string& spec, const InputSpec* input) {
  bool converted = false;
  EDGELOOP_ASSIGN_OR_RETURN(Dataset d, LoadAsStored(spec, input, &converted));
  // An input spec describes images; feature rows are given to a model as they are.
  if (!input || converted || !d.is_image()) return d;
  return ConvertToInputSpec(std::move(d), *input);
}

}  // namespace edgeloop::data
