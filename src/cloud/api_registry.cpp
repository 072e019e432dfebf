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

}  // namespace

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
    EDGELOOP_ASSIGN_OR_RETURN(int64_t pv, ParseModelVersion(spec.parent.substr(colon + 1)));
    auto parent = GetModelVersion(spec.parent.substr(0, colon), std::to_string(pv));
    if (!parent.ok())
      return Error(Errc::kInvalidArgument, "parent " + spec.parent + ": " + parent.error().message);
  }
  ModelVersionRow row;
  row.model = spec.model;
  row.artifacts = spec.artifacts;
  row.parent = spec.parent;
  row.dataset_snapshot = spec.dataset_snapshot;
  row.hyperparameters = spec.hyperparameters;
  row.code_version = spec.code_version;
  row.metrics = spec.metrics;
  return registry->Register(row, NowMs());
}

Result<Json> Server::Impl::GetModelVersion(const std::string& model,
                                           const std::string& version_or_stage) {
  EDGELOOP_ASSIGN_OR_RETURN(ModelVersionRow v, registry->Find(model, version_or_stage));
  return v.ToJson();
}

Status Server::Impl::SetStage(const std::string& model, int64_t version, const std::string& stage) {
  return registry->SetStage(model, version, stage, NowMs());
}

Result<Json> Server::Impl::ModelCard(const std::string& model,
                                     const std::string& version_or_stage) {
  EDGELOOP_ASSIGN_OR_RETURN(ModelVersionRow v, registry->Find(model, version_or_stage));
  Json artifacts = Json::object();
  for (const auto& [name, sha] : v.artifacts.items()) {
    auto bytes = ReadFile(options.data_dir + "/artifacts/" + sha.get<std::string>());
    artifacts[name] = {{"sha256", sha}, {"length", bytes.ok() ? Json(bytes->size()) : Json()}};
  }
  Json snapshot;
  if (!v.dataset_snapshot.empty()) {
    auto s = GetSnapshot(v.dataset_snapshot);
    snapshot = s.ok() ? Json{{"id", v.dataset_snapshot},
                             {"samples", (*s)["samples"]},
                             {"splits", (*s)["splits"]},
                             {"labels", (*s)["labels"]}}
                      : Json{{"id", v.dataset_snapshot}};
  }
  EDGELOOP_ASSIGN_OR_RETURN(auto changes, registry->History(model, v.version));
  Json history = Json::array();
  for (const auto& c : changes)
    history.push_back({{"from", c.from}, {"to", c.to}, {"time", IsoTime(c.changed_ms)}});
  return Json{{"model", model},
              {"version", v.version},
              {"stage", v.stage},
              {"created", IsoTime(v.created_ms)},
              {"artifacts", artifacts},
              {"lineage",
               {{"parent", v.parent},
                {"dataset_snapshot", snapshot},
                {"hyperparameters", v.hyperparameters},
                {"code_version", v.code_version}}},
              {"metrics", v.metrics},
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
    auto models = registry->Models();
    if (!models.ok()) return SendError(res, models.error());
    Json list = Json::array();
    for (const auto& m : *models)
      list.push_back(
          {{"name", m.name},
           {"created_ms", m.created_ms},
           {"latest_version", m.latest_version},
           {"production_version", m.production_version ? Json(*m.production_version) : Json()}});
    SendJson(res, Json{{"models", list}});
  });
  s.Get(R"(/v1/models/([A-Za-z0-9._-]+))", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    std::string model = req.matches[1];
    auto rows = registry->Versions(model);
    if (!rows.ok()) return SendError(res, rows.error());
    Json versions = Json::array();
    for (const auto& v : *rows) versions.push_back(v.ToJson());
    SendJson(res, Json{{"name", model}, {"versions", versions}});
  });
  s.Get(R"(/v1/models/([A-Za-z0-9._-]+)/history)", [this](const http::Request& req,
                                                          http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    std::string model = req.matches[1];
    auto changes = registry->History(model);
    if (!changes.ok()) return SendError(res, changes.error());
    if (changes->empty()) return SendError(res, 404, "no model " + model);
    Json list = Json::array();
    for (const auto& c : *changes)
      list.push_back(
          {{"version", c.version}, {"from", c.from}, {"to", c.to}, {"changed_ms", c.changed_ms}});
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
