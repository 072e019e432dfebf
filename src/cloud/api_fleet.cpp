// Route module: telemetry, update events, fleet view.
//
//   POST /v1/telemetry          device (mTLS): a telemetry snapshot (JSON, src/edge/telemetry)
//   POST /v1/events             device (mTLS): an update state change
//   GET  /v1/fleet              read: every device with model version, status, last seen,
//                               accuracy, drift
//   GET  /v1/fleet/models       read: per model version, the devices running it
//   GET  /v1/fleet/events       read: update events (?device=ID, ?limit=N)
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

std::string Text(double v) {
  Json j = v;
  return j.dump();
}

int64_t ToInt(const std::string& s) {
  return s.empty() ? 0 : std::stoll(s);
}
double ToDouble(const std::string& s) {
  return s.empty() ? 0.0 : std::stod(s);
}

const std::set<std::string> kPhases = {"idle",      "downloading", "staged",
                                       "probation", "committed",   "rolled_back"};

}  // namespace

namespace {

// Creates the device's status row when it has none (inside a transaction).
Status EnsureStatusRow(Database& db, const std::string& device) {
  EDGELOOP_ASSIGN_OR_RETURN(auto rows,
                            db.Query("SELECT 1 FROM device_status WHERE device_id = ?", {device}));
  if (!rows.empty()) return Status::Ok();
  return db.Exec(
      "INSERT INTO device_status (device_id, model_version, update_phase, last_seen_ms, "
      "accuracy, labelled, error_rate, latency_p50_ms, latency_p95_ms, drift_score, drift_alarm, "
      "telemetry) VALUES (?, '', '', 0, '', 0, 0, 0, 0, 0, 0, '')",
      {device});
}

}  // namespace

void Server::Impl::FleetRoutes() {
  auto& s = *http;
  s.Post("/v1/telemetry", [this](const http::Request& req, http::Response& res) {
    auto device = DeviceIdentity(req, res);
    if (!device) return;
    auto body = JsonBody(req, res);
    if (!body) return;
    auto mv = body->find("model_version");
    if (mv == body->end() || !mv->is_string())
      return SendError(res, 400, "telemetry needs model_version (a string)");
    std::string accuracy;
    if (body->contains("accuracy") && (*body)["accuracy"].is_number())
      accuracy = Text((*body)["accuracy"].get<double>());
    double drift = 0;
    bool alarm = false;
    if (body->contains("drift") && (*body)["drift"].is_object())
      for (const auto& [name, score] : (*body)["drift"].items()) {
        if (!score.is_object()) continue;
        drift = std::max(drift, Number(score, "psi"));
        alarm = alarm || score.value("alarm", false);
      }
    double p50 = 0, p95 = 0;
    if (body->contains("latency_ms") && (*body)["latency_ms"].is_object()) {
      p50 = Number((*body)["latency_ms"], "p50");
      p95 = Number((*body)["latency_ms"], "p95");
    }
    const std::string now = std::to_string(NowMs());
    const std::string model_version = mv->get<std::string>();
    Status st = db->Transaction([&]() -> Status {
      EDGELOOP_RETURN_IF_ERROR(EnsureStatusRow(*db, *device));
      EDGELOOP_RETURN_IF_ERROR(db->Exec(
          "UPDATE device_status SET model_version = ?, last_seen_ms = ?, accuracy = ?, labelled "
          "= ?, error_rate = ?, latency_p50_ms = ?, latency_p95_ms = ?, drift_score = ?, "
          "drift_alarm = ?, telemetry = ?, drift_since_ms = CASE WHEN ? = 0 THEN 0 WHEN "
          "drift_alarm = 0 OR drift_since_ms = 0 THEN ? ELSE drift_since_ms END WHERE device_id "
          "= ?",
          {model_version, now, accuracy,
           std::to_string(static_cast<int64_t>(Number(*body, "labelled"))),
           Text(Number(*body, "error_rate")), Text(p50), Text(p95), Text(drift), alarm ? "1" : "0",
           body->dump(), alarm ? "1" : "0", now, *device}));
      return db->Exec(
          "INSERT INTO telemetry_history (device_id, ts_ms, model_version, accuracy, "
          "latency_p50_ms, samples, labelled, bytes_up, bytes_down, drift_score) VALUES (?, ?, "
          "?, ?, ?, ?, ?, ?, ?, ?)",
          {*device, now, model_version, accuracy, Text(p50),
           std::to_string(static_cast<int64_t>(Number(*body, "n"))),
           std::to_string(static_cast<int64_t>(Number(*body, "labelled"))),
           std::to_string(static_cast<int64_t>(Number(*body, "bytes_up"))),
           std::to_string(static_cast<int64_t>(Number(*body, "bytes_down"))), Text(drift)});
    });
    if (!st.ok()) return SendError(res, st.error());
    res.set_content(R"({"stored":true})", "application/json");
  });

  s.Post("/v1/events", [this](const http::Request& req, http::Response& res) {
    auto device = DeviceIdentity(req, res);
    if (!device) return;
    auto body = JsonBody(req, res);
    if (!body) return;
    std::string phase = JsonString(*body, "phase");
    if (!kPhases.count(phase))
      return SendError(res, 400,
                       "event phase must be one of idle, downloading, staged, "
                       "probation, committed, rolled_back");
    auto version = body->find("version");
    if (version != body->end() && !version->is_number_unsigned())
      return SendError(res, 400, "event version must be a non-negative integer");
    uint64_t metadata_version = version == body->end() ? 0 : version->get<uint64_t>();
    std::string model_version = JsonString(*body, "model_version");
    std::string reason = JsonString(*body, "reason").substr(0, 2000);
    // What the fleet view shows: a refusal is its own status; the running model changes when
    // an update enters probation or commits (a rollback's event names the rejected model).
    std::string status = reason.rfind("refused", 0) == 0 ? "refused" : phase;
    const std::string now = std::to_string(NowMs());
    Status st = db->Transaction([&]() -> Status {
      EDGELOOP_RETURN_IF_ERROR(db->Exec(
          "INSERT INTO update_events (device_id, ts_ms, phase, metadata_version, model_version, "
          "reason) VALUES (?, ?, ?, ?, ?, ?)",
          {*device, now, phase, std::to_string(metadata_version), model_version, reason}));
      EDGELOOP_RETURN_IF_ERROR(EnsureStatusRow(*db, *device));
      EDGELOOP_RETURN_IF_ERROR(db->Exec(
          "UPDATE device_status SET update_phase = ?, last_seen_ms = ? WHERE device_id = ?",
          {status, now, *device}));
      if ((phase == "probation" || phase == "committed") && !model_version.empty())
        return db->Exec("UPDATE device_status SET model_version = ? WHERE device_id = ?",
                        {model_version, *device});
      return Status::Ok();
    });
    if (!st.ok()) return SendError(res, st.error());
    res.set_content(R"({"stored":true})", "application/json");
  });

  s.Get("/v1/fleet", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    auto fleet = FleetStatus();
    if (!fleet.ok()) return SendError(res, fleet.error());
    Json out = Json::array();
    for (const auto& d : *fleet) {
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
                     {"labels", DeviceLabels(d.device_id)}});
      // Transfer counters as the device last reported them (cumulative since it started).
      Json tel = Json::parse(d.telemetry, nullptr, false);
      if (tel.is_object())
        for (const char* k : {"bytes_up", "bytes_down", "model_bytes", "model_bytes_full"})
          if (tel.contains(k) && tel[k].is_number()) out.back()[k] = tel[k];
    }
    res.set_content(Json{{"devices", out}}.dump(), "application/json");
  });

  // Labels of a device: PUT replaces them all ({"labels": ["site-a", "rev-2"]}).
  s.Put(R"(/v1/devices/([A-Za-z0-9._-]+)/labels)", [this](const http::Request& req,
                                                          http::Response& res) {
    if (!RequireScope(req, res, "admin")) return;
    auto body = JsonBody(req, res);
    if (!body) return;
    std::string device = req.matches[1];
    auto labels = body->find("labels");
    if (labels == body->end() || !labels->is_array())
      return SendError(res, 400, "labels must be a list of names");
    std::vector<std::string> names;
    for (const auto& l : *labels) {
      if (!l.is_string() || l.get<std::string>().empty() || l.get<std::string>().size() > 64 ||
          l.get<std::string>().find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                                                 "VWXYZ0123456789._-") != std::string::npos)
        return SendError(res, 400, "a label is 1-64 of [A-Za-z0-9._-]");
      names.push_back(l.get<std::string>());
    }
    Status st = db->Transaction([&]() -> Status {
      EDGELOOP_ASSIGN_OR_RETURN(auto known,
                                db->Query("SELECT 1 FROM devices WHERE device_id = ?", {device}));
      if (known.empty()) return Error(Errc::kNotFound, "no device " + device);
      EDGELOOP_RETURN_IF_ERROR(db->Exec("DELETE FROM device_labels WHERE device_id = ?", {device}));
      for (const auto& n : std::set<std::string>(names.begin(), names.end()))
        EDGELOOP_RETURN_IF_ERROR(
            db->Exec("INSERT INTO device_labels (device_id, label) VALUES (?, ?)", {device, n}));
      return Status::Ok();
    });
    if (!st.ok()) return SendError(res, st.error());
    SendJson(res, {{"device_id", device}, {"labels", DeviceLabels(device)}});
  });

  s.Get("/v1/fleet/models", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    auto fleet = FleetStatus();
    if (!fleet.ok()) return SendError(res, fleet.error());
    std::map<std::string, std::vector<std::string>> by_model;
    for (const auto& d : *fleet)
      if (!d.model_version.empty() && !d.revoked) by_model[d.model_version].push_back(d.device_id);
    Json out = Json::array();
    for (const auto& [model, devices] : by_model)
      out.push_back({{"model_version", model}, {"devices", devices}, {"count", devices.size()}});
    res.set_content(Json{{"models", out}}.dump(), "application/json");
  });

  s.Get("/v1/fleet/events", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    size_t limit = 1000;
    if (req.has_param("limit")) {
      try {
        limit = std::clamp<size_t>(std::stoul(req.get_param_value("limit")), 1, 100000);
      } catch (const std::exception&) {
        return SendError(res, 400, "limit must be a positive integer");
      }
    }
    auto events = UpdateEvents(req.get_param_value("device"), limit);
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

Json Server::Impl::DeviceLabels(const std::string& device) {
  Json out = Json::array();
  auto rows =
      db->Query("SELECT label FROM device_labels WHERE device_id = ? ORDER BY label", {device});
  if (rows.ok())
    for (const auto& r : *rows) out.push_back(r[0]);
  return out;
}

Result<std::vector<DeviceStatus>> Server::Impl::FleetStatus() {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows,
      db->Query("SELECT d.device_id, d.grp, d.revoked, s.model_version, s.update_phase, "
                "s.last_seen_ms, s.accuracy, s.labelled, s.error_rate, s.latency_p50_ms, "
                "s.latency_p95_ms, s.drift_score, s.drift_alarm, s.telemetry FROM devices d LEFT "
                "JOIN device_status s ON s.device_id = d.device_id ORDER BY d.device_id"));
  std::vector<DeviceStatus> out;
  for (const auto& r : rows) {
    DeviceStatus d;
    d.device_id = r[0];
    d.group = r[1];
    d.revoked = r[2] != "0";
    d.model_version = r[3];
    d.update_phase = r[4];
    d.last_seen_ms = ToInt(r[5]);
    if (!r[6].empty()) d.accuracy = ToDouble(r[6]);
    d.labelled = ToInt(r[7]);
    d.error_rate = ToDouble(r[8]);
    d.latency_p50_ms = ToDouble(r[9]);
    d.latency_p95_ms = ToDouble(r[10]);
    d.drift_score = ToDouble(r[11]);
    d.drift_alarm = !r[12].empty() && r[12] != "0";
    d.telemetry = r[13];
    out.push_back(std::move(d));
  }
  return out;
}

Result<std::vector<UpdateEventRecord>> Server::Impl::UpdateEvents(const std::string& device_id,
                                                                  size_t limit) {
  std::string sql =
      "SELECT id, device_id, ts_ms, phase, metadata_version, model_version, reason FROM "
      "update_events";
  std::vector<std::string> params;
  if (!device_id.empty()) {
    sql += " WHERE device_id = ?";
    params.push_back(device_id);
  }
  sql += " ORDER BY id LIMIT " + std::to_string(limit);
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, db->Query(sql, params));
  std::vector<UpdateEventRecord> out;
  for (const auto& r : rows)
    out.push_back(
        {ToInt(r[0]), r[1], ToInt(r[2]), r[3], std::stoull(r[4].empty() ? "0" : r[4]), r[5], r[6]});
  return out;
}

}  // namespace edgeloop::cloud
