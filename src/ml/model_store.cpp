#include "ml/model_store.hpp"

#include "common/version.hpp"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "common/file.hpp"
#include "common/hash.hpp"

namespace edgeloop::ml {
namespace fs = std::filesystem;

nlohmann::json Lineage::ToJson() const {
  nlohmann::json parent = nullptr;
  if (!parent_name.empty())
    parent = {{"name", parent_name}, {"version", parent_version}, {"hash", parent_hash}};
  return {{"parent", parent},
          {"dataset",
           {{"hash", dataset_hash}, {"source", dataset_source}, {"samples", dataset_samples}}},
          {"strategy", strategy},
          {"hyperparameters", hyperparameters},
          {"code_version", code_version},
          {"seed", seed},
          {"created_at", created_at}};
}

Lineage Lineage::FromJson(const nlohmann::json& j) {
  Lineage l;
  if (j.contains("parent") && j["parent"].is_object()) {
    l.parent_name = j["parent"].value("name", "");
    l.parent_version = j["parent"].value("version", "");
    l.parent_hash = j["parent"].value("hash", "");
  }
  if (j.contains("dataset")) {
    l.dataset_hash = j["dataset"].value("hash", "");
    l.dataset_source = j["dataset"].value("source", "");
    l.dataset_samples = j["dataset"].value("samples", int64_t{0});
  }
  l.strategy = j.value("strategy", "");
  l.hyperparameters = j.value("hyperparameters", nlohmann::json::object());
  l.code_version = j.value("code_version", "");
  l.seed = j.value("seed", uint64_t{0});
  l.created_at = j.value("created_at", "");
  return l;
}

std::string ModelInfo::ModelHash() const {
  nlohmann::json j = {{"spec", spec.ToJson()},
                      {"class_names", class_names},
                      {"lineage", lineage.ToJson()},
                      {"weights_sha256", weights_sha256}};
  return Sha256Hex(j.dump());
}

std::optional<data::InputSpec> ModelInfo::ImageInputSpec() const {
  if (input_spec) return input_spec;
  auto derived = data::InputSpec::ForShape(spec.input_shape);
  if (!derived.ok()) return std::nullopt;
  return *derived;
}

// "input_spec" is what a device converts camera images to before the graph (read by the
// edge side from the ONNX metadata); mean and std beside it are the normalisation the
// graph itself applies, kept for readers of earlier exports.
nlohmann::json ModelInfo::PreprocessingJson() const {
  auto image = ImageInputSpec();
  return {{"input", image ? "float32 pixels, (x / 255 - input_spec.mean) / input_spec.std, "
                            "layout [N,C,H,W]"
                          : "float32 raw feature values, layout [N,F]"},
          {"input_spec", image ? image->ToJson() : nlohmann::json(nullptr)},
          {"normalization", "inside the model: (x - mean) / std"},
          {"mean", spec.input_mean},
          {"std", spec.input_std}};
}

nlohmann::json ModelInfo::ToJson() const {
  return {{"format", "edgeloop-model/1"},
          {"name", name},
          {"version", version},
          {"hash", ModelHash()},
          {"spec", spec.ToJson()},
          {"class_names", class_names},
          {"preprocessing", PreprocessingJson()},
          {"lineage", lineage.ToJson()},
          {"metrics", metrics},
          {"training", training},
          {"weights_sha256", weights_sha256}};
}

Result<ModelInfo> ModelInfo::FromJson(const nlohmann::json& j) {
  if (j.value("format", "") != "edgeloop-model/1")
    return Error(Errc::kFormat, "not an edgeloop model (format is not edgeloop-model/1)");
  ModelInfo m;
  try {
    m.name = j.at("name").get<std::string>();
    m.version = j.at("version").get<std::string>();
    EDGELOOP_ASSIGN_OR_RETURN(m.spec, ModelSpec::FromJson(j.at("spec")));
    m.class_names = j.at("class_names").get<std::vector<std::string>>();
    m.lineage = Lineage::FromJson(j.value("lineage", nlohmann::json::object()));
    m.metrics = j.value("metrics", nlohmann::json::object());
    m.training = j.value("training", nlohmann::json::object());
    m.weights_sha256 = j.value("weights_sha256", "");
    // Models saved before input specs were recorded derive theirs from spec.input_shape.
    const auto& pre = j.value("preprocessing", nlohmann::json::object());
    if (pre.is_object() && pre.contains("input_spec") && !pre["input_spec"].is_null()) {
      auto input = data::InputSpec::FromJson(pre["input_spec"]);
      if (!input.ok()) return input.error().WithContext("model.json: preprocessing");
      m.input_spec = *input;
    }
  } catch (const std::exception& e) {
    return Error(Errc::kFormat, std::string("model.json: ") + e.what());
  }
  if (static_cast<int64_t>(m.class_names.size()) != m.spec.num_classes)
    return Error(Errc::kFormat, "model.json: class_names does not match num_classes");
  if (m.input_spec && m.input_spec->Shape() != m.spec.input_shape)
    return Error(Errc::kFormat, "model.json: preprocessing.input_spec does not match spec.input_shape");
  return m;
}

Status SaveModel(const std::string& dir, ModelInfo info, Classifier& model) {
  fs::path target = fs::absolute(dir);
  fs::path tmp = target.string() + ".partial";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  EDGELOOP_RETURN_IF_ERROR(MakeDirs(tmp.string()));
  std::string weights = (tmp / "weights.pt").string();
  try {
    std::ostringstream buf;
    torch::save(model, buf);
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(weights, buf.str()));
    info.weights_sha256 = Sha256Hex(buf.str());
  } catch (const std::exception& e) {
    fs::remove_all(tmp, ec);
    return Error(Errc::kIo, dir + ": cannot save weights: " + e.what());
  }
  if (info.spec.arch == "onnx") {
    // An imported model's structure is its graph; weights.pt holds the current weights.
    if (!info.spec.onnx_graph) {
      fs::remove_all(tmp, ec);
      return Error(Errc::kInternal, dir + ": an imported model without its graph");
    }
    info.spec.onnx_graph_sha256 = Sha256Hex(*info.spec.onnx_graph);
    if (Status gs = WriteFileAtomic((tmp / "graph.onnx").string(), *info.spec.onnx_graph);
        !gs.ok()) {
      fs::remove_all(tmp, ec);
      return gs.error().WithContext(dir);
    }
  }
  Status st = WriteFileAtomic((tmp / "model.json").string(), info.ToJson().dump(2) + "\n");
  if (!st.ok()) {
    fs::remove_all(tmp, ec);
    return st.error().WithContext(dir);
  }
  // Replace the old model only once the new one is complete on disk.
  if (fs::exists(target)) {
    fs::path old = target.string() + ".old";
    fs::remove_all(old, ec);
    fs::rename(target, old, ec);
    if (ec) return Error(Errc::kIo, dir + ": cannot move the old model aside: " + ec.message());
    fs::rename(tmp, target, ec);
    fs::remove_all(old);
  } else {
    fs::rename(tmp, target, ec);
  }
  if (ec) return Error(Errc::kIo, dir + ": cannot move the model into place: " + ec.message());
  return FsyncDirectory(target.parent_path().string());
}

Result<LoadedModel> LoadModel(const std::string& dir) {
  fs::path p(dir);
  if (!fs::is_directory(p))
    return Error(Errc::kNotFound,
                 dir + ": not a model directory (expected model.json and weights.pt)");
  EDGELOOP_ASSIGN_OR_RETURN(std::string text, ReadFile((p / "model.json").string(), 16 << 20));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return Error(Errc::kFormat, (p / "model.json").string() + ": invalid JSON");
  auto info = ModelInfo::FromJson(j);
  if (!info.ok()) return info.error().WithContext((p / "model.json").string());
  EDGELOOP_ASSIGN_OR_RETURN(std::string weights, ReadFile((p / "weights.pt").string()));
  if (!info->weights_sha256.empty() && Sha256Hex(weights) != info->weights_sha256)
    return Error(Errc::kMismatch, (p / "weights.pt").string() +
                                      ": sha256 does not match model.json (corrupted or replaced)");
  if (info->spec.arch == "onnx") {
    const std::string graph_path = (p / "graph.onnx").string();
    EDGELOOP_ASSIGN_OR_RETURN(std::string graph, ReadFile(graph_path, size_t{1} << 30));
    if (Sha256Hex(graph) != info->spec.onnx_graph_sha256)
      return Error(Errc::kMismatch,
                   graph_path + ": sha256 does not match model.json (corrupted or replaced)");
    info->spec.onnx_graph = std::make_shared<const std::string>(std::move(graph));
  }
  LoadedModel out{std::move(*info), Classifier(nullptr)};
  try {
    // An imported graph is checked as it is built; a bad one throws.
    out.model = Classifier(out.info.spec);
  } catch (const std::exception& e) {
    return Error(Errc::kFormat, dir + ": cannot build the model: " + e.what());
  }
  try {
    std::istringstream in(weights);
    torch::load(out.model, in);
  } catch (const std::exception& e) {
    return Error(Errc::kFormat, (p / "weights.pt").string() + ": cannot load weights: " + e.what());
  }
  out.model->eval();
  return out;
}

std::string NowIso8601() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string CodeVersion() {
  return CodeVersionString();
}

}  // namespace edgeloop::ml
