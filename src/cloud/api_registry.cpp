// Route module: models, versions, stages, model cards.
//
// A model version is immutable once registered: its artifacts (sha256 of uploaded ONNX files,
// one per variant such as fp32 and int8) and lineage (parent version, dataset snapshot,
// hyperparameters, code version, metrics) never change; only its stage moves. Stage changes
// are kept in model_stage_history, and at most one version per model is in production.
#include <algorithm>
#include <ctime>

#include <unistd.h>

#include "cloud/server_impl.hpp"
#include "common/file.hpp"

namespace edgeloop::cloud {
namespace {

const char* const kStages[] = {"candidate", "staging", "production", "archived"};

bool IsStage(const std::string& s) {
  return std::find(std::begin(kStages), std::end(kStages), s) != std::end(kStages);
}

bool IsName(const std::string& s) {
  return !s.empty() && s.size() <= 128 &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
             std::string::npos;
}

bool IsSha256(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string IsoTime(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

constexpr const char* kVersionColumns =
    "model, version, stage, artifacts, parent, dataset_snapshot, hyperparameters, code_version, "
    "metrics, created_ms";

Json VersionJson(const Row& r) {
  return Json{{"model", r[0]},
              {"version", std::stoll(r[1])},
              {"stage", r[2]},
              {"artifacts", Json::parse(r[3])},
              {"parent", r[4]},
              {"dataset_snapshot", r[5]},
              {"hyperparameters", Json::parse(r[6])},
              {"code_version", r[7]},
              {"metrics", Json::parse(r[8])},
              {"created_ms", std::stoll(r[9])}};
}

std::string CellText(const Json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// A two-column Markdown table of a JSON object, or "none".
std::string MarkdownTable(const char* key, const char* value, const Json& obj) {
  if (!obj.is_object() || obj.empty()) return "none\n";
  std::string out = std::string("| ") + key + " | " + value + " |\n| --- | --- |\n";
  for (const auto& [k, v] : obj.items()) out += "| " + k + " | " + CellText(v) + " |\n";
  return out;
}

std::string CardMarkdown(const Json& card) {
  std::string md = "# Model card: " + card["model"].get<std::string>() + " version " +
                   std::to_string(card["version"].get<int64_t>()) + "\n\n";
  md += "- Stage: " + card["stage"].get<std::string>() + "\n";
  md += "- Created: " + card["created"].get<std::string>() + "\n";
  md += "- Code version: " + card["lineage"]["code_version"].get<std::string>() + "\n";
  std::string parent = card["lineage"]["parent"];
  md +=
      "- Parent: " + (parent.empty() ? std::string("none (trained from scratch)") : parent) + "\n";
  const Json& ds = card["lineage"]["dataset_snapshot"];
  if (ds.is_object()) {
    md += "- Dataset snapshot: " + ds["id"].get<std::string>();
    if (ds.contains("samples"))
      md += " (" + std::to_string(ds["samples"].get<uint64_t>()) + " samples; train " +
            CellText(ds["splits"]["train"]) + ", val " + CellText(ds["splits"]["val"]) + ", test " +
            CellText(ds["splits"]["test"]) + ")";
    md += "\n";
  } else {
    md += "- Dataset snapshot: none recorded\n";
  }
  md += "\n## Artifacts\n\n| variant | sha256 | bytes |\n| --- | --- | ---: |\n";
  for (const auto& [name, a] : card["artifacts"].items())
    md += "| " + name + " | " + a["sha256"].get<std::string>() + " | " + CellText(a["length"]) +
          " |\n";
  md += "\n## Metrics\n\n" + MarkdownTable("metric", "value", card["metrics"]);
  md += "\n## Hyperparameters\n\n" +
        MarkdownTable("name", "value", card["lineage"]["hyperparameters"]);
  md += "\n## Stage history\n\n| time | from | to |\n| --- | --- | --- |\n";
  for (const auto& h : card["stage_history"])
    md += "| " + h["time"].get<std::string>() + " | " + h["from"].get<std::string>() + " | " +
          h["to"].get<std::string>() + " |\n";
  return md;
}

Result<int64_t> ParseVersion(const std::string& text) {
  if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos)
    return Error(Errc::kInvalidArgument, "version must be a positive integer, not '" + text + "'");
  return std::stoll(text);
}

}  // namespace

// Called inside a transaction: appends one stage change to the model's history.
static Status RecordStageChange(Database& db, const std::string& model, int64_t version,
                                const std::string& from, const std::string& to) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto n,
      db.Query("SELECT COALESCE(MAX(n), 0) FROM model_stage_history WHERE model = ?", {model}));
  return db.Exec(
      "INSERT INTO model_stage_history (model, n, version, from_stage, to_stage, changed_ms) "
      "VALUES (?, ?, ?, ?, ?, ?)",
      {model, std::to_string(std::stoll(n.at(0).at(0)) + 1), std::to_string(version), from, to,
       std::to_string(NowMs())});
}

Result<int64_t> Server::Impl::RegisterModelVersion(const ModelVersionSpec& spec) {
  if (!IsName(spec.model))
    return Error(Errc::kInvalidArgument, "model name must be 1-128 of [A-Za-z0-9._-]");
  if (!spec.artifacts.is_object() || spec.artifacts.empty())
    return Error(Errc::kInvalidArgument,
                 "artifacts must map variant names to sha256, e.g. {\"fp32\": \"<sha256>\"}");
  for (const auto& [name, sha] : spec.artifacts.items()) {
    if (!IsName(name) || !sha.is_string() || !IsSha256(sha.get<std::string>()))
      return Error(Errc::kInvalidArgument, "artifact '" + name + "' must be a lowercase sha256");
    if (::access((options.data_dir + "/artifacts/" + sha.get<std::string>()).c_str(), R_OK) != 0)
      return Error(Errc::kInvalidArgument, "artifact '" + name + "' (" + sha.get<std::string>() +
                                               ") was not uploaded to /v1/artifacts");
  }
  if (!spec.hyperparameters.is_object() || !spec.metrics.is_object())
    return Error(Errc::kInvalidArgument, "hyperparameters and metrics must be JSON objects");
  // A reference to something unknown is a bad request (400), not a missing resource (404).
  if (!spec.dataset_snapshot.empty() && !GetSnapshot(spec.dataset_snapshot).ok())
    return Error(Errc::kInvalidArgument, "no dataset snapshot " + spec.dataset_snapshot);
  if (!spec.parent.empty()) {
    size_t colon = spec.parent.rfind(':');
    if (colon == std::string::npos)
      return Error(Errc::kInvalidArgument, "parent must be <model>:<version>");
    EDGELOOP_ASSIGN_OR_RETURN(int64_t pv, ParseVersion(spec.parent.substr(colon + 1)));
    auto parent = GetModelVersion(spec.parent.substr(0, colon), std::to_string(pv));
    if (!parent.ok())
      return Error(Errc::kInvalidArgument, "parent " + spec.parent + ": " + parent.error().message);
  }
  int64_t version = 0;
  Status st = db->Transaction([&]() -> Status {
    EDGELOOP_ASSIGN_OR_RETURN(auto m,
                              db->Query("SELECT 1 FROM models WHERE name = ?", {spec.model}));
    if (m.empty())
      EDGELOOP_RETURN_IF_ERROR(db->Exec("INSERT INTO models (name, created_ms) VALUES (?, ?)",
                                        {spec.model, std::to_string(NowMs())}));
    EDGELOOP_ASSIGN_OR_RETURN(
        auto rows, db->Query("SELECT COALESCE(MAX(version), 0) FROM model_versions WHERE model = ?",
                             {spec.model}));
    version = std::stoll(rows.at(0).at(0)) + 1;
    EDGELOOP_RETURN_IF_ERROR(
        db->Exec(std::string("INSERT INTO model_versions (") + kVersionColumns +
                     ") VALUES (?, ?, 'candidate', ?, ?, ?, ?, ?, ?, ?)",
                 {spec.model, std::to_string(version), spec.artifacts.dump(), spec.parent,
                  spec.dataset_snapshot, spec.hyperparameters.dump(), spec.code_version,
                  spec.metrics.dump(), std::to_string(NowMs())}));
    return RecordStageChange(*db, spec.model, version, "", "candidate");
  });
  if (!st.ok()) return st.error();
  return version;
}

Result<Json> Server::Impl::GetModelVersion(const std::string& model,
                                           const std::string& version_or_stage) {
  EDGELOOP_ASSIGN_OR_RETURN(auto m, db->Query("SELECT 1 FROM models WHERE name = ?", {model}));
  if (m.empty()) return Error(Errc::kNotFound, "no model " + model);
  std::string sql =
      std::string("SELECT ") + kVersionColumns + " FROM model_versions WHERE model = ?";
  std::vector<std::string> params = {model};
  if (IsStage(version_or_stage)) {
    sql += " AND stage = ?";
    params.push_back(version_or_stage);
  } else if (version_or_stage != "latest") {
    EDGELOOP_ASSIGN_OR_RETURN(int64_t v, ParseVersion(version_or_stage));
    sql += " AND version = ?";
    params.push_back(std::to_string(v));
  }
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, db->Query(sql + " ORDER BY version DESC LIMIT 1", params));
  if (rows.empty())
    return Error(Errc::kNotFound, "model " + model + " has no version " + version_or_stage);
  return VersionJson(rows[0]);
}

Status Server::Impl::SetStage(const std::string& model, int64_t version, const std::string& stage) {
  if (!IsStage(stage))
    return Error(Errc::kInvalidArgument,
                 "stage must be candidate, staging, production or archived, not '" + stage + "'");
  return db->Transaction([&]() -> Status {
    EDGELOOP_ASSIGN_OR_RETURN(Json current, GetModelVersion(model, std::to_string(version)));
    const std::string from = current["stage"];
    if (from == stage) return Status::Ok();
    if (stage == "production") {
      EDGELOOP_ASSIGN_OR_RETURN(
          auto prod, db->Query("SELECT version FROM model_versions WHERE model = ? AND stage = "
                               "'production'",
                               {model}));
      for (const auto& r : prod) {
        EDGELOOP_RETURN_IF_ERROR(
            db->Exec("UPDATE model_versions SET stage = 'archived' WHERE model = ? AND version = ?",
                     {model, r[0]}));
        EDGELOOP_RETURN_IF_ERROR(
            RecordStageChange(*db, model, std::stoll(r[0]), "production", "archived"));
      }
    }
    EDGELOOP_RETURN_IF_ERROR(
        db->Exec("UPDATE model_versions SET stage = ? WHERE model = ? AND version = ?",
                 {stage, model, std::to_string(version)}));
    return RecordStageChange(*db, model, version, from, stage);
  });
}

Result<Json> Server::Impl::ModelCard(const std::string& model,
                                     const std::string& version_or_stage) {
  EDGELOOP_ASSIGN_OR_RETURN(Json v, GetModelVersion(model, version_or_stage));
  Json artifacts = Json::object();
  for (const auto& [name, sha] : v["artifacts"].items()) {
    auto bytes = ReadFile(options.data_dir + "/artifacts/" + sha.get<std::string>());
    artifacts[name] = {{"sha256", sha}, {"length", bytes.ok() ? Json(bytes->size()) : Json()}};
  }
  Json snapshot;
  if (!v["dataset_snapshot"].get<std::string>().empty()) {
    auto s = GetSnapshot(v["dataset_snapshot"]);
    snapshot = s.ok() ? Json{{"id", v["dataset_snapshot"]},
                             {"samples", (*s)["samples"]},
                             {"splits", (*s)["splits"]},
                             {"labels", (*s)["labels"]}}
                      : Json{{"id", v["dataset_snapshot"]}};
  }
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows, db->Query("SELECT from_stage, to_stage, changed_ms FROM model_stage_history "
                           "WHERE model = ? AND version = ? ORDER BY n",
                           {model, std::to_string(v["version"].get<int64_t>())}));
  Json history = Json::array();
  for (const auto& r : rows)
    history.push_back({{"from", r[0]}, {"to", r[1]}, {"time", IsoTime(std::stoll(r[2]))}});
  return Json{{"model", model},
              {"version", v["version"]},
              {"stage", v["stage"]},
              {"created", IsoTime(v["created_ms"].get<int64_t>())},
              {"artifacts", artifacts},
              {"lineage",
               {{"parent", v["parent"]},
                {"dataset_snapshot", snapshot},
                {"hyperparameters", v["hyperparameters"]},
                {"code_version", v["code_version"]}}},
              {"metrics", v["metrics"]},
              {"stage_history", history}};
}

void Server::Impl::RegistryRoutes() {
  auto& s = *http;
  auto send = [](http::Response& res, const Result<Json>& r) {
    if (!r.ok()) return SendError(res, r.error());
    SendJson(res, *r);
  };
  s.Get("/v1/models", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    auto rows = db->Query(
        "SELECT m.name, m.created_ms, COALESCE(MAX(v.version), 0), "
        "COALESCE(MAX(CASE WHEN v.stage = 'production' THEN v.version END), 0) "
        "FROM models m LEFT JOIN model_versions v ON v.model = m.name "
        "GROUP BY m.name, m.created_ms ORDER BY m.name");
    if (!rows.ok()) return SendError(res, rows.error());
    Json list = Json::array();
    for (const auto& r : *rows) {
      int64_t prod = std::stoll(r[3]);
      list.push_back({{"name", r[0]},
                      {"created_ms", std::stoll(r[1])},
                      {"latest_version", std::stoll(r[2])},
                      {"production_version", prod > 0 ? Json(prod) : Json()}});
    }
    SendJson(res, Json{{"models", list}});
  });
  s.Get(R"(/v1/models/([A-Za-z0-9._-]+))",
        [this](const http::Request& req, http::Response& res) {
          if (!RequireScope(req, res, "read")) return;
          std::string model = req.matches[1];
          auto rows = db->Query(std::string("SELECT ") + kVersionColumns +
                                    " FROM model_versions WHERE model = ? ORDER BY version",
                                {model});
          if (!rows.ok()) return SendError(res, rows.error());
          if (rows->empty()) return SendError(res, 404, "no model " + model);
          Json versions = Json::array();
          for (const auto& r : *rows) versions.push_back(VersionJson(r));
          SendJson(res, Json{{"name", model}, {"versions", versions}});
        });
  s.Get(R"(/v1/models/([A-Za-z0-9._-]+)/history)",
        [this](const http::Request& req, http::Response& res) {
          if (!RequireScope(req, res, "read")) return;
          std::string model = req.matches[1];
          auto rows = db->Query(
              "SELECT version, from_stage, to_stage, changed_ms FROM model_stage_history WHERE "
              "model = ? ORDER BY n",
              {model});
          if (!rows.ok()) return SendError(res, rows.error());
          if (rows->empty()) return SendError(res, 404, "no model " + model);
          Json list = Json::array();
          for (const auto& r : *rows)
            list.push_back({{"version", std::stoll(r[0])},
                            {"from", r[1]},
                            {"to", r[2]},
                            {"changed_ms", std::stoll(r[3])}});
          SendJson(res, Json{{"model", model}, {"history", list}});
        });
  s.Post(R"(/v1/models/([A-Za-z0-9._-]+)/versions)",
         [this](const http::Request& req, http::Response& res) {
           if (!RequireScope(req, res, "write")) return;
           auto body = JsonBody(req, res);
           if (!body) return;
           ModelVersionSpec spec;
           spec.model = req.matches[1];
           spec.artifacts = body->value("artifacts", Json());
           spec.parent = JsonString(*body, "parent");
           spec.dataset_snapshot = JsonString(*body, "dataset_snapshot");
           spec.code_version = JsonString(*body, "code_version");
           spec.hyperparameters = body->value("hyperparameters", Json::object());
           spec.metrics = body->value("metrics", Json::object());
           auto version = RegisterModelVersion(spec);
           if (!version.ok()) return SendError(res, version.error());
           auto created = GetModelVersion(spec.model, std::to_string(*version));
           if (!created.ok()) return SendError(res, created.error());
           SendJson(res, *created, 201);
         });
  s.Get(R"(/v1/models/([A-Za-z0-9._-]+)/versions/([A-Za-z0-9]+))",
        [this, send](const http::Request& req, http::Response& res) {
          if (!RequireScope(req, res, "read")) return;
          send(res, GetModelVersion(req.matches[1], req.matches[2]));
        });
  auto immutable = [](const http::Request&, http::Response& res) {
    SendError(res, 405, "model versions are immutable; register a new version instead");
  };
  s.Put(R"(/v1/models/([A-Za-z0-9._-]+)/versions/([A-Za-z0-9]+))", immutable);
  s.Patch(R"(/v1/models/([A-Za-z0-9._-]+)/versions/([A-Za-z0-9]+))", immutable);
  s.Delete(R"(/v1/models/([A-Za-z0-9._-]+)/versions/([A-Za-z0-9]+))", immutable);
  // Stage changes decide what devices may be given, so they take the admin scope, like
  // deployments.
  s.Post(R"(/v1/models/([A-Za-z0-9._-]+)/versions/([A-Za-z0-9]+)/stage)",
         [this, send](const http::Request& req, http::Response& res) {
           if (!RequireScope(req, res, "admin")) return;
           auto body = JsonBody(req, res);
           if (!body) return;
           auto current = GetModelVersion(req.matches[1], req.matches[2]);
           if (!current.ok()) return SendError(res, current.error());
           int64_t version = (*current)["version"];
           Status st = SetStage(req.matches[1], version, JsonString(*body, "stage"));
           if (!st.ok()) return SendError(res, st.error());
           send(res, GetModelVersion(req.matches[1], std::to_string(version)));
         });
  s.Get(R"(/v1/models/([A-Za-z0-9._-]+)/versions/([A-Za-z0-9]+)/card)",
        [this](const http::Request& req, http::Response& res) {
          if (!RequireScope(req, res, "read")) return;
          std::string format = req.has_param("format") ? req.get_param_value("format") : "json";
          if (format != "json" && format != "md")
            return SendError(res, 400, "format must be json or md");
          auto card = ModelCard(req.matches[1], req.matches[2]);
          if (!card.ok()) return SendError(res, card.error());
          if (format == "md") return res.set_content(CardMarkdown(*card), "text/markdown");
          SendJson(res, *card);
        });
}

}  // namespace edgeloop::cloud
