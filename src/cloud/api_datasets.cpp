// Route module: dataset snapshots and exports.
//
// A snapshot is an immutable manifest of sample references (device, sequence, label at
// snapshot time, split) plus each sample's place in the segments, written once under
// <data>/datasets/<id>/manifest.json. Its id is the sha256 of the canonical content (class
// names and the sample rows without their places), so the same filter on the same data gives
// the same id. Training reads it directly: data::LoadDataset("snapshot:<dir>[:split]").
#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include "cloud/server_impl.hpp"
#include "common/file.hpp"
#include "data/dataset.hpp"
#include "data/random.hpp"

namespace edgeloop::cloud {
namespace {

const char* const kSplits[] = {"train", "val", "test"};

int LabelSourceCode(const Json& v) {
  if (v.is_number_integer()) return v.get<int>();
  if (!v.is_string()) return -1;
  const std::string s = v.get<std::string>();
  if (s == "unspecified") return wire::LABEL_SOURCE_UNSPECIFIED;
  if (s == "human") return wire::LABEL_SOURCE_HUMAN;
  if (s == "device") return wire::LABEL_SOURCE_DEVICE;
  if (s == "model") return wire::LABEL_SOURCE_MODEL;
  return -1;
}

// Checks a snapshot spec and returns it with every field present, so equal filters written
// differently (missing vs default fields) describe the same snapshot.
Result<Json> NormalizeSpec(const Json& in) {
  static const std::set<std::string> kKeys = {"devices",       "groups", "from_ms",
                                              "to_ms",         "labels", "label_sources",
                                              "labelled_only", "split",  "class_names"};
  if (!in.is_object()) return Error(Errc::kInvalidArgument, "snapshot spec must be an object");
  for (const auto& [key, value] : in.items())
    if (!kKeys.count(key))
      return Error(Errc::kInvalidArgument, "unknown snapshot field '" + key + "'");
  Json out;
  for (const char* key : {"devices", "groups", "class_names"}) {
    Json list = in.value(key, Json::array());
    if (!list.is_array() ||
        !std::all_of(list.begin(), list.end(), [](const Json& v) { return v.is_string(); }))
      return Error(Errc::kInvalidArgument, std::string(key) + " must be a list of strings");
    if (std::string(key) != "class_names") std::sort(list.begin(), list.end());
    out[key] = list;
  }
  Json labels = in.value("labels", Json::array());
  if (!labels.is_array() || !std::all_of(labels.begin(), labels.end(),
                                         [](const Json& v) { return v.is_number_integer(); }))
    return Error(Errc::kInvalidArgument, "labels must be a list of integers");
  std::sort(labels.begin(), labels.end());
  out["labels"] = labels;
  Json sources = Json::array();
  for (const auto& v : in.value("label_sources", Json::array())) {
    int code = LabelSourceCode(v);
    if (code < 0 || code > 3)
      return Error(Errc::kInvalidArgument,
                   "label_sources are human, device, model or unspecified, not " + v.dump());
    sources.push_back(code);
  }
  std::sort(sources.begin(), sources.end());
  out["label_sources"] = sources;
  for (const char* key : {"from_ms", "to_ms"}) {
    auto it = in.find(key);
    if (it != in.end() && !it->is_number_integer() && !it->is_null())
      return Error(Errc::kInvalidArgument, std::string(key) + " must be an integer (Unix ms)");
    out[key] = it == in.end() ? Json() : *it;
  }
  auto lo = in.find("labelled_only");
  if (lo != in.end() && !lo->is_boolean())
    return Error(Errc::kInvalidArgument, "labelled_only must be true or false");
  out["labelled_only"] = lo != in.end() && lo->get<bool>();
  Json split = in.value("split", Json{{"train", 1.0}});
  if (!split.is_object()) return Error(Errc::kInvalidArgument, "split must be an object");
  double sum = 0;
  Json norm_split;
  for (const char* name : kSplits) {
    Json f = split.value(name, Json(0.0));
    if (!f.is_number() || f.get<double>() < 0 || f.get<double>() > 1)
      return Error(Errc::kInvalidArgument, std::string("split.") + name + " must be in [0, 1]");
    norm_split[name] = f.get<double>();
    sum += f.get<double>();
  }
  if (std::fabs(sum - 1.0) > 1e-6)
    return Error(Errc::kInvalidArgument, "split fractions must add up to 1");
  Json seed = split.value("seed", Json(0));
  if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<int64_t>() >= 0))
    return Error(Errc::kInvalidArgument, "split.seed must be a non-negative integer");
  norm_split["seed"] = seed.get<uint64_t>();
  out["split"] = norm_split;
  return out;
}

// A snapshot's sample: where it is stored and the split it is given.
struct SampleRef : SampleLocation {
  const char* split = "train";
};

// The filter of a normalized spec.
SampleFilter FilterOf(const Json& spec) {
  SampleFilter f;
  f.devices = spec["devices"].get<std::vector<std::string>>();
  f.groups = spec["groups"].get<std::vector<std::string>>();
  f.labels = spec["labels"].get<std::vector<int64_t>>();
  f.label_sources = spec["label_sources"].get<std::vector<int64_t>>();
  if (spec["from_ms"].is_number_integer()) f.from_ms = spec["from_ms"].get<int64_t>();
  if (spec["to_ms"].is_number_integer()) f.to_ms = spec["to_ms"].get<int64_t>();
  f.labelled_only = spec["labelled_only"].get<bool>();
  return f;
}

Result<std::vector<SampleRef>> SelectSamples(SampleStore& store, const Json& spec) {
  EDGELOOP_ASSIGN_OR_RETURN(auto found, store.Select(FilterOf(spec)));
  std::vector<SampleRef> out;
  out.reserve(found.size());
  for (auto& s : found) out.push_back({std::move(s)});
  return out;
}

// Seeded shuffle, then exact counts per split (rounded; test takes the remainder).
void AssignSplits(std::vector<SampleRef>& samples, const Json& split) {
  std::vector<size_t> order(samples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(split["seed"].get<uint64_t>());
  data::detail::Shuffle(order, rng);
  const double n = static_cast<double>(samples.size());
  const size_t n_train = static_cast<size_t>(std::llround(n * split["train"].get<double>()));
  const size_t n_val = std::min(samples.size() - std::min(n_train, samples.size()),
                                static_cast<size_t>(std::llround(n * split["val"].get<double>())));
  for (size_t k = 0; k < order.size(); ++k)
    samples[order[k]].split = k < n_train ? "train" : k < n_train + n_val ? "val" : "test";
}

Json Summarize(const std::vector<SampleRef>& samples) {
  Json splits = {{"train", 0}, {"val", 0}, {"test", 0}};
  Json labels = Json::object(), devices = Json::object();
  for (const auto& s : samples) {
    splits[s.split] = splits[s.split].get<uint64_t>() + 1;
    std::string label = std::to_string(s.label);
    labels[label] = labels.value(label, uint64_t{0}) + 1;
    devices[s.device] = devices.value(s.device, uint64_t{0}) + 1;
  }
  return Json{
      {"samples", samples.size()}, {"splits", splits}, {"labels", labels}, {"devices", devices}};
}

}  // namespace

Result<SnapshotInfo> Server::Impl::CreateSnapshot(const Json& raw_spec) {
  EDGELOOP_ASSIGN_OR_RETURN(Json spec, NormalizeSpec(raw_spec));
  EDGELOOP_ASSIGN_OR_RETURN(auto samples, SelectSamples(*store, spec));
  if (samples.empty()) return Error(Errc::kInvalidArgument, "the filter matches no samples");
  AssignSplits(samples, spec["split"]);
  Json content_rows = Json::array(), rows = Json::array();
  for (const auto& s : samples) {
    content_rows.push_back({s.device, s.seq, s.label, s.split});
    rows.push_back({s.device, s.seq, s.label, s.split, s.segment, s.pos, s.length});
  }
  SnapshotInfo info;
  info.id = Sha256Hex(Json{{"class_names", spec["class_names"]}, {"samples", content_rows}}.dump());
  info.dir = options.data_dir + "/datasets/" + info.id;
  info.summary = Summarize(samples);
  info.summary["id"] = info.id;
  info.summary["spec"] = spec;
  info.summary["dataset"] = "snapshot:" + info.dir;
  const std::string manifest = info.dir + "/manifest.json";
  if (!ReadFile(manifest, 64).ok()) {
    EDGELOOP_RETURN_IF_ERROR(MakeDirs(info.dir));
    Json m = {{"format", "edgeloop-snapshot-1"},
              {"id", info.id},
              {"spec", spec},
              {"class_names", spec["class_names"]},
              {"columns", {"device", "sequence", "label", "split", "segment", "pos", "length"}},
              {"samples", rows}};
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(manifest, m.dump()));
  }
  EDGELOOP_ASSIGN_OR_RETURN(SnapshotRow stored,
                            store->InsertSnapshot({info.id, NowMs(), info.summary}, &info.created));
  info.summary = stored.summary;
  return info;
}

Result<int64_t> Server::Impl::CountLabelled(const Json& raw_spec) {
  EDGELOOP_ASSIGN_OR_RETURN(Json spec, NormalizeSpec(raw_spec));
  spec["labelled_only"] = true;
  return store->CountMatching(FilterOf(spec));
}

Result<Json> Server::Impl::GetSnapshot(const std::string& id) {
  EDGELOOP_ASSIGN_OR_RETURN(SnapshotRow row, store->GetSnapshot(id));
  return row.summary;
}

void Server::Impl::DatasetRoutes() {
  auto& s = *http;
  s.Post("/v1/datasets/snapshots", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "write")) return;
    auto body = JsonBody(req, res);
    if (!body) return;
    auto info = CreateSnapshot(*body);
    if (!info.ok()) return SendError(res, info.error());
    Json out = info->summary;
    out["created"] = info->created;
    SendJson(res, out, info->created ? 201 : 200);
  });
  s.Get("/v1/datasets/snapshots", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    auto rows = store->ListSnapshots();
    if (!rows.ok()) return SendError(res, rows.error());
    Json list = Json::array();
    for (const auto& r : *rows)
      list.push_back({{"id", r.id},
                      {"created_ms", r.created_ms},
                      {"samples", r.summary["samples"]},
                      {"splits", r.summary["splits"]}});
    SendJson(res, Json{{"snapshots", list}});
  });
  s.Get(R"(/v1/datasets/snapshots/([0-9a-f]{64}))",
        [this](const http::Request& req, http::Response& res) {
          if (!RequireScope(req, res, "read")) return;
          auto summary = GetSnapshot(req.matches[1]);
          if (!summary.ok()) return SendError(res, summary.error());
          SendJson(res, *summary);
        });
  // ?format=csv, or ?format=idx&part=images|labels; &split=train|val|test for one split.
  s.Get(R"(/v1/datasets/snapshots/([0-9a-f]{64})/export)",
        [this](const http::Request& req, http::Response& res) {
          if (!RequireScope(req, res, "read")) return;
          std::string id = req.matches[1];
          std::string format = req.get_param_value("format");
          std::string part = req.get_param_value("part");
          std::string split = req.get_param_value("split");
          if (format != "csv" && !(format == "idx" && (part == "images" || part == "labels")))
            return SendError(res, 400, "format must be csv, or idx with part=images|labels");
          auto known = GetSnapshot(id);
          if (!known.ok()) return SendError(res, known.error());
          auto d = data::LoadSnapshot(options.data_dir + "/datasets/" + id, split);
          if (!d.ok()) return SendError(res, d.error());
          if (format == "csv") {
            auto text = data::EncodeCsv(*d);
            if (!text.ok()) return SendError(res, 400, text.error().message);
            return res.set_content(std::move(*text), "text/csv");
          }
          std::string images, labels;
          Status st = data::EncodeIdx(*d, &images, &labels);
          if (!st.ok()) return SendError(res, 400, st.error().message);
          res.set_content(part == "images" ? std::move(images) : std::move(labels),
                          "application/octet-stream");
        });
}

}  // namespace edgeloop::cloud
