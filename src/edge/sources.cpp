#include "edge/sources.hpp"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string_view>
#include <thread>

#include "common/pixel.hpp"
#include "data/image.hpp"
#include "data/random.hpp"

namespace edgeloop::edge {

namespace fs = std::filesystem;

Result<std::unique_ptr<ReplaySource>> ReplaySource::Open(const std::string& spec,
                                                         ReplayOptions options) {
  // Images go to the model's input spec; feature rows are given to the model as they are.
  auto d = data::LoadDatasetFiles(spec, options.input ? &*options.input : nullptr);
  if (!d.ok()) return d.error().WithContext("replay source");
  if (d->size() == 0)
    return Error(Errc::kInvalidArgument, "replay source " + spec + ": empty dataset");
  return std::make_unique<ReplaySource>(std::move(*d), options);
}

namespace {

// One byte per value when every value is k / 255.0f for an integer k in [0, 255] (what the
// IDX and PNG loaders produce), so that the bytes give the same floats back; empty otherwise.
std::vector<uint8_t> BytePixels(const data::Dataset& d) {
  if (!d.is_image()) return {};
  std::vector<uint8_t> px(d.x.size());
  if (!ToPixels(d.x.data(), d.x.size(), px.data())) return {};
  return px;
}

}  // namespace

ReplaySource::ReplaySource(data::Dataset dataset, ReplayOptions options)
    : opt_(std::move(options)), start_(std::chrono::steady_clock::now()) {
  pixels_ = BytePixels(dataset);
  if (!pixels_.empty()) {
    dataset.x = std::vector<float>();  // releases the float copy
    data_ = std::move(dataset);
  } else {
    data_ = opt_.corruption ? data::Corrupt(dataset, *opt_.corruption, opt_.severity, opt_.seed)
                            : std::move(dataset);
  }
}

std::string ReplaySource::Describe() const {
  std::string s = "replay:" + data_.source;
  if (!pixels_.empty() && opt_.corruption)  // otherwise the source names it already
    s += " (corrupted: " + data::CorruptionName(*opt_.corruption) + ", severity " +
         std::to_string(std::clamp(opt_.severity, 1, 5)) + ")";
  if (opt_.rate_hz > 0) s += "@" + std::to_string(opt_.rate_hz) + "Hz";
  return s;
}

Result<std::optional<Sample>> ReplaySource::Next(std::chrono::milliseconds wait) {
  if (index_ >= data_.size()) {
    if (!opt_.loop) return std::optional<Sample>();
    index_ = 0;
  }
  if (opt_.rate_hz > 0) {
    // Paced against the start time, not the previous call, so slow consumers do not drift.
    auto due =
        start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                     std::chrono::duration<double>(static_cast<double>(emitted_) / opt_.rate_hz));
    auto now = std::chrono::steady_clock::now();
    if (due > now + wait) {
      std::this_thread::sleep_for(wait);
      return std::optional<Sample>();
    }
    std::this_thread::sleep_until(due);
  }
  Sample s;
  s.id = opt_.device_id + "-" + std::to_string(emitted_);
  s.shape = data_.sample_shape;
  const size_t numel = data_.sample_numel();
  if (pixels_.empty()) {
    s.data.assign(data_.sample(index_), data_.sample(index_) + numel);
  } else {
    const uint8_t* px = pixels_.data() + index_ * numel;
    s.data.resize(numel);
    for (size_t i = 0; i < numel; ++i) s.data[i] = static_cast<float>(px[i]) / 255.0f;
    if (opt_.corruption) {
      // The stream data::Corrupt gives sample index_ (see corruptions.cpp).
      std::mt19937_64 rng(data::detail::MixSeed(opt_.seed, index_));
      data::ApplyCorruption(
          *opt_.corruption, opt_.severity, s.data.data(), static_cast<int>(data_.sample_shape[0]),
          static_cast<int>(data_.sample_shape[1]), static_cast<int>(data_.sample_shape[2]), rng);
    }
  }
  if (data_.y[index_] >= 0) s.label = data_.y[index_];
  ++index_;
  ++emitted_;
  return std::optional<Sample>(std::move(s));
}

Result<std::optional<int32_t>> LabelFromFileName(const std::string& name) {
  static constexpr std::string_view kTag = ".label-";
  const std::string stem = fs::path(name).stem().string();
  const size_t at = stem.rfind(kTag);
  if (at == std::string::npos) return std::optional<int32_t>();
  const std::string digits = stem.substr(at + kTag.size());
  // Class indices, not arbitrary numbers: at most 6 digits keeps the parse in range.
  if (digits.empty() || digits.size() > 6 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return Error(Errc::kFormat, name +
                                    ": the label in the file name must be a class index "
                                    "(NAME.label-K.jpg), got \"" +
                                    digits + "\"");
  return std::optional<int32_t>(std::stoi(digits));
}

Result<Sample> ReadImageSample(const std::string& path, const data::InputSpec* spec) {
  EDGELOOP_ASSIGN_OR_RETURN(data::Image img, data::DecodeImageFile(path));
  data::InputSpec own;
  if (!spec) {
    EDGELOOP_ASSIGN_OR_RETURN(own,
                              data::InputSpec::ForShape({img.channels, img.height, img.width}));
    spec = &own;
  }
  auto x = data::Preprocess(img, *spec);
  if (!x.ok()) return x.error().WithContext(path);
  Sample s;
  s.id = fs::path(path).filename().string();
  s.shape = spec->Shape();
  s.data = std::move(*x);
  return s;
}

Status WritePngSample(const std::string& path, const Sample& sample) {
  if (sample.shape.size() != 3 || sample.shape[0] != 1 || sample.shape[1] <= 0 ||
      sample.shape[2] <= 0 ||
      sample.data.size() != static_cast<size_t>(sample.shape[1] * sample.shape[2]))
    return Error(Errc::kInvalidArgument, path + ": a PNG needs a {1, h, w} sample");
  png_image img;
  std::memset(&img, 0, sizeof(img));
  img.version = PNG_IMAGE_VERSION;
  img.height = static_cast<png_uint_32>(sample.shape[1]);
  img.width = static_cast<png_uint_32>(sample.shape[2]);
  img.format = PNG_FORMAT_GRAY;
  std::vector<unsigned char> px;
  px.reserve(sample.data.size());
  for (float v : sample.data)
    px.push_back(static_cast<unsigned char>(std::clamp(v, 0.0f, 1.0f) * 255.0f + 0.5f));
  // A name outside the watched extensions, so a watcher never reads the half-written file.
  std::string tmp = path + ".partial";
  if (!png_image_write_to_file(&img, tmp.c_str(), 0, px.data(), 0, nullptr))
    return Error(Errc::kIo, path + ": PNG write failed: " + img.message);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Error(Errc::kIo, path + ": rename: " + ec.message());
  return Status::Ok();
}

WatchedDirectorySource::WatchedDirectorySource(std::string dir, bool delete_after_read,
                                               std::chrono::milliseconds poll)
    : dir_(std::move(dir)), delete_(delete_after_read), poll_(poll) {}

Status WatchedDirectorySource::Scan() {
  std::error_code ec;
  std::vector<fs::path> fresh;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename().string();
    std::string ext = e.path().extension().string();
    if (name.empty() || name[0] == '.' || !e.is_regular_file(ec)) continue;
    if (ext != ".csv" && !data::IsImageFileName(name)) continue;
    if (seen_.count(name)) continue;
    fresh.push_back(e.path());
  }
  if (ec) return Error(Errc::kIo, dir_ + ": cannot list: " + ec.message());
  std::sort(fresh.begin(), fresh.end());
  for (const auto& p : fresh) {
    std::string name = p.filename().string();
    if (p.extension() != ".csv") {
      auto label = LabelFromFileName(name);
      auto s = label.ok() ? ReadImageSample(p.string(), spec_ ? &*spec_ : nullptr)
                          : Result<Sample>(label.error());
      if (!s.ok()) {
        // Reported once and then passed over, so one bad file does not stop the files after it.
        seen_.insert(name);
        return s.error();
      }
      s->label = *label;
      pending_.push_back(std::move(*s));
    } else {
      auto d = data::LoadCsv(p.string());
      if (!d.ok()) {
        seen_.insert(name);
        return d.error();
      }
      for (size_t i = 0; i < d->size(); ++i) {
        Sample s;
        s.id = name + "#" + std::to_string(i);
        s.shape = d->sample_shape;
        s.data.assign(d->sample(i), d->sample(i) + d->sample_numel());
        if (d->y[i] >= 0) s.label = d->y[i];
        pending_.push_back(std::move(s));
      }
    }
    if (delete_) {
      fs::remove(p, ec);
    } else {
      seen_.insert(name);
    }
  }
  return Status::Ok();
}

Result<std::optional<Sample>> WatchedDirectorySource::Next(std::chrono::milliseconds wait) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    if (pending_pos_ < pending_.size()) {
      Sample s = std::move(pending_[pending_pos_++]);
      if (pending_pos_ == pending_.size()) {
        pending_.clear();
        pending_pos_ = 0;
      }
      return std::optional<Sample>(std::move(s));
    }
    Status st = Scan();
    if (!st.ok()) return st.error().WithContext("watched folder");
    if (!pending_.empty()) continue;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::optional<Sample>();
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(poll_, deadline - now));
  }
}

Result<Sample> ParseJsonSample(const std::string& line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error(Errc::kFormat, "not a JSON object");
  if (!j.contains("shape") || !j["shape"].is_array() || !j.contains("data") ||
      !j["data"].is_array())
    return Error(Errc::kFormat, "needs \"shape\" and \"data\" arrays");
  Sample s;
  int64_t numel = 1;
  for (const auto& d : j["shape"]) {
    if (!d.is_number_integer() || d.get<int64_t>() <= 0 || d.get<int64_t>() > (1 << 24))
      return Error(Errc::kFormat, "shape entries must be positive integers");
    s.shape.push_back(d.get<int64_t>());
    numel *= s.shape.back();
    if (numel > (1 << 24)) return Error(Errc::kResourceExhausted, "sample too large");
  }
  if (j["data"].size() != static_cast<size_t>(numel))
    return Error(Errc::kMismatch, "data has " + std::to_string(j["data"].size()) +
                                      " values, shape says " + std::to_string(numel));
  s.data.reserve(static_cast<size_t>(numel));
  for (const auto& v : j["data"]) {
    if (!v.is_number()) return Error(Errc::kFormat, "data values must be numbers");
    s.data.push_back(v.get<float>());
  }
  if (j.contains("id") && j["id"].is_string()) s.id = j["id"].get<std::string>();
  if (j.contains("label") && j["label"].is_number_integer()) s.label = j["label"].get<int32_t>();
  return s;
}

Result<std::optional<Sample>> JsonLinesSource::Next(std::chrono::milliseconds) {
  std::string line;
  while (true) {
    line.clear();
    // Bounded read: a line longer than the limit is refused, not buffered whole.
    int c;
    while ((c = in_.get()) != EOF && c != '\n') {
      if (line.size() >= max_line_) {
        in_.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
        ++line_no_;
        return Error(Errc::kResourceExhausted, "stdin line " + std::to_string(line_no_) +
                                                   ": longer than " + std::to_string(max_line_) +
                                                   " bytes");
      }
      line.push_back(static_cast<char>(c));
    }
    if (c == EOF && line.empty()) return std::optional<Sample>();
    ++line_no_;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto s = ParseJsonSample(line);
    if (!s.ok()) return s.error().WithContext("stdin line " + std::to_string(line_no_));
    if (s->id.empty()) s->id = "stdin-" + std::to_string(line_no_);
    return std::optional<Sample>(std::move(*s));
  }
}

}  // namespace edgeloop::edge
