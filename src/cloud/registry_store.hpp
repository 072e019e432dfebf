// The model registry's tables behind one interface: models, their versions (immutable once
// registered: artifacts and lineage never change, only the stage moves) and the history of
// stage changes. Rows come back as structs; a column that does not parse is an error naming
// the version, never an exception.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cloud/database.hpp"

namespace edgeloop::cloud {

struct ModelVersionRow {
  std::string model;
  int64_t version = 0;
  std::string stage = "candidate";  // candidate, staging, production, archived
  // variant ("fp32", "int8", ...) → sha256 of the uploaded artifact
  nlohmann::json artifacts = nlohmann::json::object();
  std::string parent;  // "<model>:<version>", "" when trained from scratch
  std::string dataset_snapshot;
  nlohmann::json hyperparameters = nlohmann::json::object();
  std::string code_version;
  nlohmann::json metrics = nlohmann::json::object();
  int64_t created_ms = 0;

  std::string Name() const { return model + ":" + std::to_string(version); }
  // The variant's sha256, "" when the version has no such artifact.
  std::string Artifact(const std::string& variant) const;
  // What GET /v1/models/{m}/versions/{v} answers.
  nlohmann::json ToJson() const;
};

struct ModelSummary {
  std::string name;
  int64_t created_ms = 0;
  int64_t latest_version = 0;
  std::optional<int64_t> production_version;
};

struct StageChange {
  int64_t version = 0;
  std::string from, to;  // from is "" for the registration
  int64_t changed_ms = 0;
};

bool IsStage(const std::string& s);
// "<n>" as a version number: kInvalidArgument unless a positive integer.
Result<int64_t> ParseModelVersion(const std::string& text);

class RegistryStore {
 public:
  explicit RegistryStore(Database& db) : db_(db) {}

  // Creates the model when it is new and the next version of it as "candidate" (version and
  // created_ms of `row` are ignored), with its first stage change; returns the version.
  Result<int64_t> Register(const ModelVersionRow& row, int64_t now_ms);
  // version_or_stage: a number, "latest", or a stage (its newest version). kNotFound for an
  // unknown model or version; kInvalidArgument for a reference that is none of these.
  Result<ModelVersionRow> Find(const std::string& model, const std::string& version_or_stage);
  // Every version of the model, oldest first; kNotFound when the model has none.
  Result<std::vector<ModelVersionRow>> Versions(const std::string& model);
  Result<std::vector<ModelSummary>> Models();
  // Moves a version to `stage`; to production, the model's production version is archived in
  // the same transaction. Both changes are recorded.
  Status SetStage(const std::string& model, int64_t version, const std::string& stage,
                  int64_t now_ms);
  // Stage changes of the model, oldest first (of one version when `version` is set).
  Result<std::vector<StageChange>> History(const std::string& model,
                                           std::optional<int64_t> version = std::nullopt);

 private:
  Status RecordStageChange(const std::string& model, int64_t version, const std::string& from,
                           const std::string& to, int64_t now_ms);
  Database& db_;
};

}  // namespace edgeloop::cloud
