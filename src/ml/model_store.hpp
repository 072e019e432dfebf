// A trained model on disk is a directory:
//   model.json   spec, class names, preprocessing, lineage, metrics (format "edgeloop-model/1")
//   weights.pt   libtorch parameters and buffers
//   graph.onnx   an imported model's graph (arch "onnx", ml/onnx_import.hpp), checked by sha256
// SaveModel writes into a temporary sibling directory and renames it into place, so a failed
// save never leaves a partial model behind.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "data/preprocess.hpp"
#include "ml/model.hpp"

namespace edgeloop::ml {

struct Lineage {
  std::string parent_name;  // empty for a model trained from scratch
  std::string parent_version;
  std::string parent_hash;
  std::string dataset_hash;
  std::string dataset_source;
  int64_t dataset_samples = 0;
  std::string strategy;  // "scratch", "head", "last-k", "full"
  nlohmann::json hyperparameters = nlohmann::json::object();
  std::string code_version;
  uint64_t seed = 0;
  std::string created_at;  // ISO 8601, UTC

  nlohmann::json ToJson() const;
  static Lineage FromJson(const nlohmann::json& j);
};

struct ModelInfo {
  std::string name = "model";
  std::string version = "1";
  ModelSpec spec;
  std::vector<std::string> class_names;
  Lineage lineage;
  nlohmann::json metrics = nlohmann::json::object();   // validation metrics at save time
  nlohmann::json training = nlohmann::json::object();  // epochs, wall time, samples/s
  std::string weights_sha256;                          // filled by SaveModel
  // Image models: what images are converted to (data::Preprocess) before the graph; unset
  // means the default for spec.input_shape (stretch, values x / 255). Recorded in model.json
  // and in the ONNX metadata as preprocessing.input_spec.
  std::optional<data::InputSpec> input_spec;
  // input_spec, or the default for an image input shape; nullopt for feature models.
  std::optional<data::InputSpec> ImageInputSpec() const;
  nlohmann::json PreprocessingJson() const;
  // sha256 over the lineage, spec, class names and weights hash: identifies the model exactly.
  std::string ModelHash() const;
  nlohmann::json ToJson() const;
  static Result<ModelInfo> FromJson(const nlohmann::json& j);
};

struct LoadedModel {
  ModelInfo info;
  Classifier model{nullptr};
};

Status SaveModel(const std::string& dir, ModelInfo info, Classifier& model);
Result<LoadedModel> LoadModel(const std::string& dir);

std::string NowIso8601();
std::string CodeVersion();

}  // namespace edgeloop::ml
