// Route module: telemetry, update events, fleet view.
//
//   POST /v1/telemetry          device (mTLS): a telemetry snapshot (JSON, src/edge/telemetry)
//   POST /v1/events             device (mTLS): an update state change
//   GET  /v1/fleet              read: every device with model version, status, last seen,
//                               accuracy, drift
//   GET  /v1/fleet/models       read: per model version, the devices running it
//   GET  /v1/fleet/events       read: update events (?device=ID, ?limit=N)
//   GET  /v1/fleet/devices/{id}/telemetry
//                               read: one device's telemetry periods over time (?since_ms=,
//                               ?limit=), what the dashboard's device page plots
//
// Tables: device_status (latest state per device; its column names are read by the rollout
// controller), update_events (every state change) and telemetry_history (one row per
// snapshot, for plots).
#include <algorithm>
#include <set>

#include "cloud/server_impl.hpp"

namespace edgeloop::cloud {
namespace {

double Number(const Json& j, const char* key) {
  auto it = j.find(key);
  return (it != j.end() && it->is_number()) ? it->get<double>() : 0.0;
}

int64_t Count(const Json& j, const char* key) {
  return static_cast<int64_t>(Number(j, key));
}

const std::set<std::string> kPhases = {"idle",      "downloading", "staged",
                                       "probation", "committed",   "rolled_back"};

}  // namespace

Status Server::Impl::RecordTelemetry(const std::string& device, const Json& body) {
  auto mv = body.find("model_version");
  if (mv == body.end() || !mv->is_string())
    return Error(Errc::kInvalidArgument, "telemetry needs model_version (a string)");
  TelemetryRecord t;
  t.device_id = device;
  t.ts_ms = NowMs();
  t.model_version = mv->get<std::string>();
  if (body.contains("accuracy") && body["accuracy"].is_number())
    t.accuracy = body["accuracy"].get<double>();
  if (body.contains("drift") && body["drift"].is_object())
    for (const auto& [name, score] : body["drift"].items()) {
      if (!score.is_object()) continue;
      t.drift_score = std::max(t.drift_score, Number(score, "psi"));
      t.drift_alarm = t.drift_alarm || score.value("alarm", false);
    }
  if (body.contains("latency_ms") && body["latency_ms"].is_object()) {
    t.latency_p50_ms = Number(body["latency_ms"], "p50");
    t.latency_p95_ms = Number(body["latency_ms"], "p95");
  }
  t.samples = Count(body, "n");
  t.labelled = Count(body, "labelled");
  t.bytes_up = Count(body, "bytes_up");
  t.bytes_down = Count(body, "bytes_down");
  t.error_rate = Number(body, "error_rate");
  if (body.contains("spool") && body["spool"].is_object()) {
    t.spool_records = Count(body["spool"], "records");
    t.spool_bytes = Count(body["spool"], "bytes");
    t.spool_dropped = Count(body["spool"], "dropped");
  }
  t.document = body.dump();
  return fleet->RecordTelemetry(t);
}

Status Server::Impl::RecordUpdateEvent(const std::string& device, const Json& body) {
  std::string phase = JsonString(body, "phase");
  if (!kPhases.count(phase))
    return Error(Errc::kInvalidArgument,
                 "event phase must be one of idle, downloading, staged, "
                 "probation, committed, rolled_back");
  auto version = body.find("version");
  if (version != body.end() && !version->is_number_unsigned())
    return Error(Errc::kInvalidArgument, "event version must be a non-negative integer");
  uint64_t metadata_version = version == body.end() ? 0 : version->get<uint64_t>();
  std::string model_version = JsonString(body, "model_version");
  std::string reason = JsonString(body, "reason").substr(0, 2000);
  // What the fleet view shows: a refusal is its own status; the running model changes when
  // an update enters probation or commits (a rollback's event names the rejected model).
  std::string status = reason.rfind("refused", 0) == 0 ? "refused" : phase;
  return fleet->RecordUpdateEvent(
      {0, device, NowMs(), phase, metadata_version, model_version, reason}, status);
}

void Server::Impl::FleetRoutes() {
  auto& s = *http;
  s.Post("/v1/telemetry", [this](const http::Request& req, http::Response& res) {
    auto device = DeviceIdentity(req, res);
    if (!device) return;
    auto body = JsonBody(req, res);
    if (!body) return;
    Status st = RecordTelemetry(*device, *body);
    if (!st.ok()) return SendError(res, st.error());
    res.set_content(R"({"stored":true})", "application/json");
  });

  s.Post("/v1/events", [this](const http::Request& req, http::Response& res) {
    auto device = DeviceIdentity(req, res);
    if (!device) return;
    auto body = JsonBody(req, res);
    if (!body) return;
    Status st = RecordUpdateEvent(*device, *body);
    if (!st.ok()) return SendError(res, st.error());
    res.set_content(R"({"stored":true})", "application/json");
  });

  s.Get("/v1/fleet", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    auto devices = fleet->Fleet();
    if (!devices.ok()) return SendError(res, devices.error());
    Json out = Json::array();
    for (const auto& d : *devices) {
      auto labels = fleet->Labels(d.device_id);
      if (!labels.ok()) return SendError(res, labels.error());
      std::string status = d.revoked                ? "revoked"
                           : d.last_seen_ms == 0    ? "never_seen"
                           : d.update_phase.empty() ? "running"
                                                    : d.update_phase;
      out.push_back({{"device_id", d.device_id},
                     {"group", d.group},
                     {"model_version", d.model_version},
                     {"status", status},
                     {"last_seen_ms", d.last_seen_ms},
                     {"accuracy", d.accuracy ? Json(*d.accuracy) : Json(nullptr)},
                     {"labelled", d.labelled},
                     {"error_rate", d.error_rate},
                     {"latency_p50_ms", d.latency_p50_ms},
                     {"latency_p95_ms", d.latency_p95_ms},
                     {"drift_score", d.drift_score},
                     {"drift_alarm", d.drift_alarm},
                     {"labels", *labels}});
      // Transfer counters as the device last reported them (cumulative since it started).
      Json tel = Json::parse(d.telemetry, nullptr, false);
      if (tel.is_object())
        for (const char* k : {"bytes_up", "bytes_down", "model_bytes", "model_bytes_full"})
          if (tel.contains(k) && tel[k].is_number()) out.back()[k] = tel[k];
      if (tel.is_object() && tel.contains("spool") && tel["spool"].is_object())
        out.back()["spool"] = {{"records", Count(tel["spool"], "records")},
                               {"bytes", Count(tel["spool"], "bytes")},
                               {"dropped", Count(tel["spool"], "dropped")}};
      // The device's credentials as it last reported them: certificate expiry, renewal
      // failures since the last success, trusted root version, clock skew (null: unknown).
      if (tel.is_object() && tel.contains("credentials") && tel["credentials"].is_object()) {
        const Json& c = tel["credentials"];
        const Json& error = c.contains("renewal_error") ? c["renewal_error"] : Json();
        const Json& skew = c.contains("clock_skew_s") ? c["clock_skew_s"] : Json();
        out.back()["credentials"] = {
            {"cert_not_after_ms", Count(c, "cert_not_after_ms")},
            {"renewal_failures", Count(c, "renewal_failures")},
            {"renewal_error", error.is_string() ? error.get<std::string>().substr(0, 512) : ""},
            {"root_version", Count(c, "root_version")},
            {"clock_skew_s", skew.is_number_integer() ? skew : Json(nullptr)}};
      }
    }
    res.set_content(Json{{"devices", out}}.dump(), "application/json");
  });

  // Labels of a device: PUT replaces them all ({"labels": ["site-a", "rev-2"]}).
  s.Put(R"(/v1/devices/([A-Za-z0-9._-]+)/labels)",
        [this](const http::Request& req, http::Response& res) {
          if (!RequireScope(req, res, "admin")) return;
          auto body = JsonBody(req, res);
          if (!body) return;
          std::string device = req.matches[1];
          auto labels = body->find("labels");
          if (labels == body->end() || !labels->is_array())
            return SendError(res, 400, "labels must be a list of names");
          std::vector<std::string> names;
          for (const auto& l : *labels) {
            if (!l.is_string() || !IsName(l.get<std::string>(), 64))
              return SendError(res, 400, "a label is 1-64 of [A-Za-z0-9._-]");
            names.push_back(l.get<std::string>());
          }
          Status st = fleet->SetLabels(device, std::set<std::string>(names.begin(), names.end()));
          if (!st.ok()) return SendError(res, st.error());
          auto stored = fleet->Labels(device);
          if (!stored.ok()) return SendError(res, stored.error());
          SendJson(res, {{"device_id", device}, {"labels", *stored}});
        });

  s.Get("/v1/fleet/models", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    auto devices = fleet->Fleet();
    if (!devices.ok()) return SendError(res, devices.error());
    std::map<std::string, std::vector<std::string>> by_model;
    for (const auto& d : *devices)
      if (!d.model_version.empty() && !d.revoked) by_model[d.model_version].push_back(d.device_id);
    Json out = Json::array();
    for (const auto& [model, devices] : by_model)
      out.push_back({{"model_version", model}, {"devices", devices}, {"count", devices.size()}});
    res.set_content(Json{{"models", out}}.dump(), "application/json");
  });

  s.Get(R"(/v1/fleet/devices/([A-Za-z0-9._-]+)/telemetry)",
        [this](const http::Request& req, http::Response& res) {
          if (!RequireScope(req, res, "read")) return;
          const std::string device = req.matches[1];
          int64_t since = 0, limit = 2000;
          if (req.has_param("since_ms")) {
            auto n = ColumnInt64(req.get_param_value("since_ms"), "since_ms");
            if (!n.ok() || *n < 0)
              return SendError(res, 400, "since_ms must be a non-negative integer");
            since = *n;
          }
          if (req.has_param("limit")) {
            auto n = ColumnInt64(req.get_param_value("limit"), "limit");
            if (!n.ok() || *n < 1) return SendError(res, 400, "limit must be a positive integer");
            limit = std::min<int64_t>(*n, 20000);
          }
          if (auto known = fleet->GetDevice(device); !known.ok())
            return SendError(res, known.error());
          auto rows = fleet->TelemetryHistory(device, since, static_cast<size_t>(limit));
          if (!rows.ok()) return SendError(res, rows.error());
          Json points = Json::array();
          for (const auto& h : *rows)
            points.push_back({{"ts_ms", h.ts_ms},
                              {"model_version", h.model_version},
                              {"accuracy", h.accuracy ? Json(*h.accuracy) : Json(nullptr)},
                              {"samples", h.samples},
                              {"labelled", h.labelled},
                              {"latency_p50_ms", h.latency_p50_ms},
                              {"latency_p95_ms", h.latency_p95_ms},
                              {"drift_score", h.drift_score},
                              {"drift_alarm", h.drift_alarm},
                              {"bytes_up", h.bytes_up},
                              {"bytes_down", h.bytes_down},
                              {"spool_records", h.spool_records},
                              {"spool_bytes", h.spool_bytes},
                              {"spool_dropped", h.spool_dropped}});
          SendJson(res, {{"device_id", device}, {"points", points}});
        });

  s.Get("/v1/fleet/events", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    int64_t limit = 1000;
    if (req.has_param("limit")) {
      auto n = ColumnInt64(req.get_param_value("limit"), "limit");
      if (!n.ok() || *n < 1) return SendError(res, 400, "limit must be a positive integer");
      limit = std::min<int64_t>(*n, 100000);
    }
    auto events = fleet->UpdateEvents(req.get_param_value("device"), static_cast<size_t>(limit));
    if (!events.ok()) return SendError(res, events.error());
    Json out = Json::array();
    for (const auto& e : *events)
      out.push_back({{"id", e.id},
                     {"device_id", e.device_id},
                     {"ts_ms", e.ts_ms},
                     {"phase", e.phase},
                     {"metadata_version", e.metadata_version},
                     {"model_version", e.model_version},
                     {"reason", e.reason}});
    res.set_content(Json{{"events", out}}.dump(), "application/json");
  });
}

}  // namespace edgeloop::cloud
