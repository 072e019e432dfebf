// Sources: where the agent's samples come from. A real camera or sensor driver implements
// Source too: produce one Sample per call, with a stable id.
//   ReplaySource            a dataset (IDX, CSV, image folder: the data::LoadDatasetFiles
//                           specs, every LoadDataset spec but server snapshots) replayed at
//                           a set rate, optionally through a corruption (the device's own
//                           camera domain), with its labels
//   WatchedDirectorySource  new .png, .jpg/.jpeg (gray or RGB, any size) and .csv files in a
//                           folder; images are converted to the model's input spec by the
//                           one preprocessing routine (data/preprocess.hpp) that training
//                           used, and labelled by their name (NAME.label-K.jpg: class K).
//                           Writers should create files elsewhere and rename them in, so no
//                           half file is read. A file that cannot be read is reported once
//                           and skipped
//   JsonLinesSource         one JSON object per line on a stream (stdin):
//                           {"id": "...", "shape": [1,28,28], "data": [...], "label": 3}
// Not thread-safe; one reader per source.
#pragma once

#include <chrono>
#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "data/corruptions.hpp"
#include "data/dataset.hpp"
#include "data/preprocess.hpp"

namespace edgeloop::edge {

struct Sample {
  std::string id;
  std::vector<int64_t> shape;  // without the batch dimension
  std::vector<float> data;
  std::optional<int32_t> label;
};

class Source {
 public:
  virtual ~Source() = default;
  // The next sample; std::nullopt when the source is exhausted (a watched folder never is:
  // it waits until a file appears or `wait` has passed, then returns nullopt).
  virtual Result<std::optional<Sample>> Next(std::chrono::milliseconds wait) = 0;
  virtual std::string Describe() const = 0;
  // True once Next() will never return a sample again (a replay without loop at its end,
  // stdin at end of file); a nullopt from Next() alone may only mean "nothing yet".
  virtual bool Exhausted() const { return false; }
  // The model's input spec (from its ONNX metadata), set again after a model update. Sources
  // that decode images convert them to it; without one an image keeps its own size and
  // channels. A replay source converts its dataset once, when it is opened.
  virtual void SetInputSpec(const std::optional<data::InputSpec>& spec) { (void)spec; }
};

struct ReplayOptions {
  double rate_hz = 0;  // 0: as fast as the caller asks
  bool loop = false;
  std::optional<data::Corruption> corruption;
  int severity = 3;
  uint64_t seed = 1;
  std::string device_id = "device";      // prefix of the sample ids
  std::optional<data::InputSpec> input;  // image datasets are converted to it when opened
};

// Pixel images (every value a multiple of 1/255, as IDX files and PNGs load) are held as one
// byte per pixel, a quarter of their float size, and corrupted one sample at a time as they
// are replayed: the samples are exactly those of data::Corrupt(dataset, ...), without holding
// a float copy of the whole dataset. Anything else is held as it came.
class ReplaySource : public Source {
 public:
  static Result<std::unique_ptr<ReplaySource>> Open(const std::string& spec, ReplayOptions options);
  ReplaySource(data::Dataset dataset, ReplayOptions options);
  Result<std::optional<Sample>> Next(std::chrono::milliseconds wait) override;
  std::string Describe() const override;
  bool Exhausted() const override { return !opt_.loop && index_ >= data_.size(); }
  // Bytes held for the samples' values (what replaying a large dataset costs in memory).
  size_t HeldBytes() const { return data_.x.size() * sizeof(float) + pixels_.size(); }

 private:
  data::Dataset data_;           // labels, shape, names; x is empty when pixels_ holds them
  std::vector<uint8_t> pixels_;  // round(x * 255), for pixel images
  ReplayOptions opt_;
  size_t index_ = 0;
  uint64_t emitted_ = 0;
  std::chrono::steady_clock::time_point start_;
};

class WatchedDirectorySource : public Source {
 public:
  // Files already in the folder are processed too; delete_after_read keeps a long-running
  // device's folder (and this source's memory of seen files) from growing.
  WatchedDirectorySource(std::string dir, bool delete_after_read,
                         std::chrono::milliseconds poll = std::chrono::milliseconds(200));
  Result<std::optional<Sample>> Next(std::chrono::milliseconds wait) override;
  std::string Describe() const override { return "watch:" + dir_; }
  void SetInputSpec(const std::optional<data::InputSpec>& spec) override { spec_ = spec; }

 private:
  Status Scan();
  std::string dir_;
  std::optional<data::InputSpec> spec_;
  bool delete_;
  std::chrono::milliseconds poll_;
  std::set<std::string> seen_;
  std::vector<Sample> pending_;  // samples of files read, in order, consumed from the front
  size_t pending_pos_ = 0;
};

class JsonLinesSource : public Source {
 public:
  explicit JsonLinesSource(std::istream& in, size_t max_line_bytes = 16 << 20)
      : in_(in), max_line_(max_line_bytes) {}
  Result<std::optional<Sample>> Next(std::chrono::milliseconds wait) override;
  std::string Describe() const override { return "jsonl:stdin"; }
  bool Exhausted() const override { return in_.eof(); }

 private:
  std::istream& in_;
  size_t max_line_;
  uint64_t line_no_ = 0;
};

// The label a frame's file name carries: "frame-17.label-3.jpg" is class index 3 (of the
// model's classes, as replayed labels are); a name without ".label-" has none. A tag that is
// not a class index is an error naming the file.
Result<std::optional<int32_t>> LabelFromFileName(const std::string& name);
// Decodes a PNG or JPEG file and converts it to the spec (data::Preprocess); without a
// spec, the image as it is: shape {c, h, w}, values x / 255. The id is the file name.
Result<Sample> ReadImageSample(const std::string& path, const data::InputSpec* spec);
// Writes a {1, h, w} sample in [0, 1] as an 8-bit grayscale PNG (a camera driver's capture,
// or test input for a watched folder); written beside the target and renamed into place.
Status WritePngSample(const std::string& path, const Sample& sample);
// Parses one JSON line (see JsonLinesSource). Checks shape against data before allocating.
Result<Sample> ParseJsonSample(const std::string& line);

}  // namespace edgeloop::edge
