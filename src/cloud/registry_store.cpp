#include "cloud/registry_store.hpp"

#include <algorithm>
#include <iterator>

namespace edgeloop::cloud {
namespace {

const char* const kStages[] = {"candidate", "staging", "production", "archived"};

constexpr char kVersionColumns[] =
    "model, version, stage, artifacts, parent, dataset_snapshot, hyperparameters, code_version, "
    "metrics, created_ms";

Result<nlohmann::json> ObjectColumn(const std::string& text, const std::string& what) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return Error(Errc::kFormat, what + " is not a JSON object");
  return j;
}

Result<ModelVersionRow> ReadVersion(const Row& r) {
  if (r.size() != 10) return Error(Errc::kInternal, "model_versions: expected 10 columns");
  ModelVersionRow v;
  v.model = r[0];
  const std::string where = "model " + v.model + " version " + r[1];
  EDGELOOP_ASSIGN_OR_RETURN(v.version, ColumnInt64(r[1], where));
  v.stage = r[2];
  EDGELOOP_ASSIGN_OR_RETURN(v.artifacts, ObjectColumn(r[3], where + " artifacts"));
  v.parent = r[4];
  v.dataset_snapshot = r[5];
  EDGELOOP_ASSIGN_OR_RETURN(v.hyperparameters, ObjectColumn(r[6], where + " hyperparameters"));
  v.code_version = r[7];
  EDGELOOP_ASSIGN_OR_RETURN(v.metrics, ObjectColumn(r[8], where + " metrics"));
  EDGELOOP_ASSIGN_OR_RETURN(v.created_ms, ColumnInt64(r[9], where + " created_ms"));
  return v;
}

}  // namespace

bool IsStage(const std::string& s) {
  return std::find(std::begin(kStages), std::end(kStages), s) != std::end(kStages);
}

Result<int64_t> ParseModelVersion(const std::string& text) {
  auto v = ColumnInt64(text, "version");
  if (text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos || !v.ok() ||
      *v < 0)
    return Error(Errc::kInvalidArgument, "version must be a positive integer, not '" + text + "'");
  return *v;
}

std::string ModelVersionRow::Artifact(const std::string& variant) const {
  auto it = artifacts.find(variant);
  return it != artifacts.end() && it->is_string() ? it->get<std::string>() : std::string();
}

nlohmann::json ModelVersionRow::ToJson() const {
  return {{"model", model},
          {"version", version},
          {"stage", stage},
          {"artifacts", artifacts},
          {"parent", parent},
          {"dataset_snapshot", dataset_snapshot},
          {"hyperparameters", hyperparameters},
          {"code_version", code_version},
          {"metrics", metrics},
          {"created_ms", created_ms}};
}

Status RegistryStore::RecordStageChange(const std::string& model, int64_t version,
                                        const std::string& from, const std::string& to,
                                        int64_t now_ms) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT COALESCE(MAX(n), 0) FROM model_stage_history WHERE model = ?", {model}));
  EDGELOOP_ASSIGN_OR_RETURN(int64_t n, ColumnInt64(rows.at(0).at(0), "stage history of " + model));
  return db_.Exec(
      "INSERT INTO model_stage_history (model, n, version, from_stage, to_stage, changed_ms) "
      "VALUES (?, ?, ?, ?, ?, ?)",
      {model, std::to_string(n + 1), std::to_string(version), from, to, std::to_string(now_ms)});
}

Result<int64_t> RegistryStore::Register(const ModelVersionRow& row, int64_t now_ms) {
  int64_t version = 0;
  Status st = db_.Transaction([&]() -> Status {
    EDGELOOP_ASSIGN_OR_RETURN(auto m,
                              db_.Query("SELECT 1 FROM models WHERE name = ?", {row.model}));
    if (m.empty())
      EDGELOOP_RETURN_IF_ERROR(db_.Exec("INSERT INTO models (name, created_ms) VALUES (?, ?)",
                                        {row.model, std::to_string(now_ms)}));
    EDGELOOP_ASSIGN_OR_RETURN(
        auto rows, db_.Query("SELECT COALESCE(MAX(version), 0) FROM model_versions WHERE model = ?",
                             {row.model}));
    EDGELOOP_ASSIGN_OR_RETURN(int64_t last,
                              ColumnInt64(rows.at(0).at(0), "newest version of " + row.model));
    version = last + 1;
    EDGELOOP_RETURN_IF_ERROR(
        db_.Exec(std::string("INSERT INTO model_versions (") + kVersionColumns +
                     ") VALUES (?, ?, 'candidate', ?, ?, ?, ?, ?, ?, ?)",
                 {row.model, std::to_string(version), row.artifacts.dump(), row.parent,
                  row.dataset_snapshot, row.hyperparameters.dump(), row.code_version,
                  row.metrics.dump(), std::to_string(now_ms)}));
    return RecordStageChange(row.model, version, "", "candidate", now_ms);
  });
  if (!st.ok()) return st.error();
  return version;
}

Result<ModelVersionRow> RegistryStore::Find(const std::string& model,
                                            const std::string& version_or_stage) {
  EDGELOOP_ASSIGN_OR_RETURN(auto m, db_.Query("SELECT 1 FROM models WHERE name = ?", {model}));
  if (m.empty()) return Error(Errc::kNotFound, "no model " + model);
  std::string sql =
      std::string("SELECT ") + kVersionColumns + " FROM model_versions WHERE model = ?";
  std::vector<std::string> params = {model};
  if (IsStage(version_or_stage)) {
    sql += " AND stage = ?";
    params.push_back(version_or_stage);
  } else if (version_or_stage != "latest") {
    EDGELOOP_ASSIGN_OR_RETURN(int64_t v, ParseModelVersion(version_or_stage));
    sql += " AND version = ?";
    params.push_back(std::to_string(v));
  }
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, db_.Query(sql + " ORDER BY version DESC LIMIT 1", params));
  if (rows.empty())
    return Error(Errc::kNotFound, "model " + model + " has no version " + version_or_stage);
  return ReadVersion(rows[0]);
}

Result<std::vector<ModelVersionRow>> RegistryStore::Versions(const std::string& model) {
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, db_.Query(std::string("SELECT ") + kVersionColumns +
                                                     " FROM model_versions WHERE model = ? "
                                                     "ORDER BY version",
                                                 {model}));
  if (rows.empty()) return Error(Errc::kNotFound, "no model " + model);
  std::vector<ModelVersionRow> out;
  for (const auto& r : rows) {
    EDGELOOP_ASSIGN_OR_RETURN(ModelVersionRow v, ReadVersion(r));
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::vector<ModelSummary>> RegistryStore::Models() {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT m.name, m.created_ms, COALESCE(MAX(v.version), 0), "
                           "COALESCE(MAX(CASE WHEN v.stage = 'production' THEN v.version END), 0) "
                           "FROM models m LEFT JOIN model_versions v ON v.model = m.name "
                           "GROUP BY m.name, m.created_ms ORDER BY m.name"));
  std::vector<ModelSummary> out;
  for (const auto& r : rows) {
    ModelSummary m;
    m.name = r.at(0);
    EDGELOOP_ASSIGN_OR_RETURN(m.created_ms,
                              ColumnInt64(r.at(1), "model " + m.name + " created_ms"));
    EDGELOOP_ASSIGN_OR_RETURN(m.latest_version,
                              ColumnInt64(r.at(2), "model " + m.name + " newest version"));
    EDGELOOP_ASSIGN_OR_RETURN(int64_t prod,
                              ColumnInt64(r.at(3), "model " + m.name + " production version"));
    if (prod > 0) m.production_version = prod;
    out.push_back(std::move(m));
  }
  return out;
}

Status RegistryStore::SetStage(const std::string& model, int64_t version, const std::string& stage,
                               int64_t now_ms) {
  if (!IsStage(stage))
    return Error(Errc::kInvalidArgument,
                 "stage must be candidate, staging, production or archived, not '" + stage + "'");
  return db_.Transaction([&]() -> Status {
    EDGELOOP_ASSIGN_OR_RETURN(ModelVersionRow current, Find(model, std::to_string(version)));
    if (current.stage == stage) return Status::Ok();
    if (stage == "production") {
      EDGELOOP_ASSIGN_OR_RETURN(
          auto prod, db_.Query("SELECT version FROM model_versions WHERE model = ? AND stage = "
                               "'production'",
                               {model}));
      for (const auto& r : prod) {
        EDGELOOP_ASSIGN_OR_RETURN(int64_t old,
                                  ColumnInt64(r.at(0), "production version of " + model));
        EDGELOOP_RETURN_IF_ERROR(
            db_.Exec("UPDATE model_versions SET stage = 'archived' WHERE model = ? AND version = ?",
                     {model, std::to_string(old)}));
        EDGELOOP_RETURN_IF_ERROR(RecordStageChange(model, old, "production", "archived", now_ms));
      }
    }
    EDGELOOP_RETURN_IF_ERROR(
        db_.Exec("UPDATE model_versions SET stage = ? WHERE model = ? AND version = ?",
                 {stage, model, std::to_string(version)}));
    return RecordStageChange(model, version, current.stage, stage, now_ms);
  });
}

Result<std::vector<StageChange>> RegistryStore::History(const std::string& model,
                                                        std::optional<int64_t> version) {
  std::string sql =
      "SELECT version, from_stage, to_stage, changed_ms FROM model_stage_history WHERE model = ?";
  std::vector<std::string> params = {model};
  if (version) {
    sql += " AND version = ?";
    params.push_back(std::to_string(*version));
  }
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, db_.Query(sql + " ORDER BY n", params));
  std::vector<StageChange> out;
  for (const auto& r : rows) {
    StageChange c;
    EDGELOOP_ASSIGN_OR_RETURN(c.version, ColumnInt64(r.at(0), "stage history of " + model));
    c.from = r.at(1);
    c.to = r.at(2);
    EDGELOOP_ASSIGN_OR_RETURN(c.changed_ms, ColumnInt64(r.at(3), "stage history of " + model));
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace edgeloop::cloud
