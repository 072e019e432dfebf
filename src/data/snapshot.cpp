// Dataset snapshots read straight from the server's data folder: the manifest names each
// sample's place in a sample-store segment, so training needs neither the server nor HTTP.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "common/file.hpp"
#include "common/sample_record.hpp"
#include "data/dataset.hpp"

namespace edgeloop::data {
namespace {

// Owns the segment files opened while loading one snapshot.
class SegmentFiles {
 public:
  explicit SegmentFiles(std::string dir) : dir_(std::move(dir)) {}
  ~SegmentFiles() {
    for (auto& [segment, fd] : fds_) ::close(fd);
  }
  SegmentFiles(const SegmentFiles&) = delete;
  SegmentFiles& operator=(const SegmentFiles&) = delete;

  Result<wire::Sample> Read(int segment, uint64_t pos, uint32_t length) {
    std::string path = SampleSegmentPath(dir_, segment);
    auto it = fds_.find(segment);
    if (it == fds_.end()) {
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return Error(Errc::kNotFound, path + ": cannot open sample segment");
      it = fds_.emplace(segment, fd).first;
    }
    return ReadSampleRecord(it->second, pos, length, path);
  }

 private:
  std::string dir_;
  std::map<int, int> fds_;
};

// 1x28x28, HxW and a flat vector of a square number of values that the sender declared as
// 784 values all become single-channel images; other 1-D tensors stay feature vectors.
std::vector<int64_t> SampleShape(const wire::Tensor& t) {
  std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
  if (shape.empty()) shape = {TensorValueCount(t)};
  if (shape.size() == 1 && shape[0] == 784) return {1, 28, 28};
  if (shape.size() == 2) return {1, shape[0], shape[1]};
  return shape;
}

}  // namespace

Result<Dataset> LoadSnapshot(const std::string& dir, const std::string& split) {
  if (!split.empty() && split != "train" && split != "val" && split != "test")
    return Error(Errc::kInvalidArgument,
                 dir + ": unknown split '" + split + "' (expected train, val or test)");
  const std::string manifest_path = dir + "/manifest.json";
  EDGELOOP_ASSIGN_OR_RETURN(std::string text, ReadFile(manifest_path));
  auto m = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded() || !m.is_object() || !m.contains("samples") || !m["samples"].is_array())
    return Error(Errc::kFormat, manifest_path + ": not a dataset snapshot manifest");
  // The snapshot lives at <data>/datasets/<id>; the segments at <data>/samples.
  std::filesystem::path data_dir = std::filesystem::path(dir).lexically_normal();
  if (!data_dir.has_filename()) data_dir = data_dir.parent_path();
  SegmentFiles segments((data_dir.parent_path().parent_path() / "samples").string());

  Dataset d;
  int32_t max_label = -1;
  try {
    for (const auto& row : m["samples"]) {
      // [device, sequence, label, split, segment, pos, length]
      if (!row.is_array() || row.size() != 7)
        return Error(Errc::kFormat, manifest_path + ": malformed sample row");
      if (!split.empty() && row[3].get<std::string>() != split) continue;
      const std::string where =
          "sample " + row[0].get<std::string>() + "/" + std::to_string(row[1].get<uint64_t>());
      auto s = segments.Read(row[4].get<int>(), row[5].get<uint64_t>(), row[6].get<uint32_t>());
      if (!s.ok()) return s.error().WithContext(manifest_path + ": " + where);
      auto shape = SampleShape(s->tensor());
      if (d.sample_shape.empty()) {
        d.sample_shape = shape;
      } else if (shape != d.sample_shape) {
        return Error(Errc::kMismatch, manifest_path + ": " + where +
                                          " has a tensor shape unlike the first sample's");
      }
      // Either wire form (float values, or pixels from agents that send bytes) reads as floats.
      int64_t numel = 1;
      for (int64_t dim : shape) numel *= dim;
      if (TensorValueCount(s->tensor()) != numel)
        return Error(Errc::kFormat, manifest_path + ": " + where +
                                        " has a tensor whose values do not match its shape");
      const std::vector<float> values = TensorValues(s->tensor());
      d.x.insert(d.x.end(), values.begin(), values.end());
      int32_t label = row[2].get<int32_t>();
      d.y.push_back(label);
      max_label = std::max(max_label, label);
    }
    if (m.contains("class_names") && m["class_names"].is_array() && !m["class_names"].empty())
      d.class_names = m["class_names"].get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    return Error(Errc::kFormat, manifest_path + ": " + e.what());
  }
  if (d.y.empty())
    return Error(Errc::kFormat, manifest_path + ": dataset is empty" +
                                    (split.empty() ? std::string() : " (split " + split + ")"));
  if (d.class_names.empty())
    for (int32_t k = 0; k <= max_label; ++k) d.class_names.push_back(std::to_string(k));
  if (max_label >= static_cast<int32_t>(d.class_names.size()))
    return Error(Errc::kMismatch, manifest_path + ": label " + std::to_string(max_label) +
                                      " is outside the snapshot's class names");
  d.source = "snapshot:" + dir + (split.empty() ? "" : ":" + split);
  d.hash = ComputeHash(d);
  return d;
}

}  // namespace edgeloop::data
