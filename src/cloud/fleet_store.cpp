#include "cloud/fleet_store.hpp"

#include <nlohmann/json.hpp>

namespace edgeloop::cloud {
namespace {

// A REAL as the SQL text it is stored as (JSON's shortest round-trip form).
std::string Text(double v) {
  return nlohmann::json(v).dump();
}

std::string Text(int64_t v) {
  return std::to_string(v);
}

// A column that may be empty (LEFT JOIN, or a field not reported) as a number, 0 when empty.
Result<int64_t> IntOrZero(const std::string& text, const std::string& what) {
  if (text.empty()) return int64_t{0};
  return ColumnInt64(text, what);
}

Result<double> DoubleOrZero(const std::string& text, const std::string& what) {
  if (text.empty()) return 0.0;
  return ColumnDouble(text, what);
}

Result<std::optional<double>> OptionalDouble(const std::string& text, const std::string& what) {
  if (text.empty()) return std::optional<double>();
  EDGELOOP_ASSIGN_OR_RETURN(double v, ColumnDouble(text, what));
  return std::optional<double>(v);
}

Result<std::vector<std::string>> FirstColumn(const std::vector<Row>& rows) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.at(0));
  return out;
}

constexpr char kStatusColumns[] =
    "s.model_version, s.update_phase, s.last_seen_ms, s.accuracy, s.labelled, s.error_rate, "
    "s.latency_p50_ms, s.latency_p95_ms, s.drift_score, s.drift_alarm, s.telemetry";

// Reads kStatusColumns from r starting at column `at`.
Status ReadStatus(const Row& r, size_t at, DeviceStatus& d) {
  const std::string where = "device " + d.device_id + " status ";
  d.model_version = r.at(at);
  d.update_phase = r.at(at + 1);
  EDGELOOP_ASSIGN_OR_RETURN(d.last_seen_ms, IntOrZero(r.at(at + 2), where + "last_seen_ms"));
  EDGELOOP_ASSIGN_OR_RETURN(d.accuracy, OptionalDouble(r.at(at + 3), where + "accuracy"));
  EDGELOOP_ASSIGN_OR_RETURN(d.labelled, IntOrZero(r.at(at + 4), where + "labelled"));
  EDGELOOP_ASSIGN_OR_RETURN(d.error_rate, DoubleOrZero(r.at(at + 5), where + "error_rate"));
  EDGELOOP_ASSIGN_OR_RETURN(d.latency_p50_ms, DoubleOrZero(r.at(at + 6), where + "latency_p50_ms"));
  EDGELOOP_ASSIGN_OR_RETURN(d.latency_p95_ms, DoubleOrZero(r.at(at + 7), where + "latency_p95_ms"));
  EDGELOOP_ASSIGN_OR_RETURN(d.drift_score, DoubleOrZero(r.at(at + 8), where + "drift_score"));
  d.drift_alarm = !r.at(at + 9).empty() && r.at(at + 9) != "0";
  d.telemetry = r.at(at + 10);
  return Status::Ok();
}

Result<UpdateEventRecord> ReadEvent(const Row& r) {
  UpdateEventRecord e;
  e.device_id = r.at(1);
  const std::string where = "update event of " + e.device_id + " ";
  EDGELOOP_ASSIGN_OR_RETURN(e.id, ColumnInt64(r.at(0), where + "id"));
  EDGELOOP_ASSIGN_OR_RETURN(e.ts_ms, ColumnInt64(r.at(2), where + "ts_ms"));
  e.phase = r.at(3);
  EDGELOOP_ASSIGN_OR_RETURN(e.metadata_version, ColumnUint64(r.at(4), where + "metadata_version"));
  e.model_version = r.at(5);
  e.reason = r.at(6);
  return e;
}

constexpr char kEventColumns[] =
    "id, device_id, ts_ms, phase, metadata_version, model_version, reason";

}  // namespace

// Devices.

Result<std::vector<DeviceRow>> FleetStore::Devices() {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT device_id, grp, serial, revoked, enrolled_ms FROM devices ORDER BY 1"));
  std::vector<DeviceRow> out;
  for (const auto& r : rows) {
    DeviceRow d;
    d.device_id = r.at(0);
    d.group = r.at(1);
    EDGELOOP_ASSIGN_OR_RETURN(d.serial, ColumnUint64(r.at(2), "device " + d.device_id + " serial"));
    d.revoked = r.at(3) != "0";
    EDGELOOP_ASSIGN_OR_RETURN(d.enrolled_ms,
                              ColumnInt64(r.at(4), "device " + d.device_id + " enrolled_ms"));
    out.push_back(std::move(d));
  }
  return out;
}

Result<DeviceRow> FleetStore::GetDevice(const std::string& device_id) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT device_id, grp, serial, revoked, enrolled_ms FROM devices WHERE "
                           "device_id = ?",
                           {device_id}));
  if (rows.empty()) return Error(Errc::kNotFound, "no device " + device_id);
  DeviceRow d;
  d.device_id = rows[0].at(0);
  d.group = rows[0].at(1);
  EDGELOOP_ASSIGN_OR_RETURN(d.serial,
                            ColumnUint64(rows[0].at(2), "device " + device_id + " serial"));
  d.revoked = rows[0].at(3) != "0";
  EDGELOOP_ASSIGN_OR_RETURN(d.enrolled_ms,
                            ColumnInt64(rows[0].at(4), "device " + device_id + " enrolled_ms"));
  return d;
}

Status FleetStore::ReplaceDevice(const DeviceRow& row) {
  return db_.Transaction([&]() -> Status {
    EDGELOOP_RETURN_IF_ERROR(db_.Exec("DELETE FROM devices WHERE device_id = ?", {row.device_id}));
    return db_.Exec(
        "INSERT INTO devices (device_id, grp, serial, revoked, enrolled_ms) VALUES (?, ?, ?, ?, ?)",
        {row.device_id, row.group, std::to_string(row.serial), row.revoked ? "1" : "0",
         Text(row.enrolled_ms)});
  });
}

Status FleetStore::Revoke(const std::string& device_id) {
  return db_.Transaction([&]() -> Status {
    EDGELOOP_RETURN_IF_ERROR(GetDevice(device_id));
    return db_.Exec("UPDATE devices SET revoked = 1 WHERE device_id = ?", {device_id});
  });
}

Result<bool> FleetStore::CertificateValid(const std::string& device_id, uint64_t serial) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT 1 FROM devices WHERE device_id = ? AND serial = ? AND revoked = 0",
                {device_id, std::to_string(serial)}));
  return !rows.empty();
}

Result<std::vector<std::string>> FleetStore::ResolveTarget(const std::string& target) {
  Result<std::vector<Row>> rows = std::vector<Row>{};
  if (target == "all") {
    rows = db_.Query("SELECT device_id FROM devices WHERE revoked = 0 ORDER BY 1");
  } else if (target.rfind("label:", 0) == 0) {
    rows = db_.Query(
        "SELECT d.device_id FROM devices d JOIN device_labels l ON l.device_id = d.device_id "
        "WHERE d.revoked = 0 AND l.label = ? ORDER BY 1",
        {target.substr(6)});
  } else if (target.rfind("group:", 0) == 0) {
    rows = db_.Query("SELECT device_id FROM devices WHERE revoked = 0 AND grp = ? ORDER BY 1",
                     {target.substr(6)});
  } else {
    rows = db_.Query("SELECT device_id FROM devices WHERE revoked = 0 AND device_id = ?", {target});
  }
  if (!rows.ok()) return rows.error();
  return FirstColumn(*rows);
}

// Deployments.

Result<std::optional<std::string>> FleetStore::Deployment(const std::string& target) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT metadata FROM deployments WHERE target = ?", {target}));
  if (rows.empty()) return std::optional<std::string>();
  return std::optional<std::string>(rows[0].at(0));
}

Result<uint64_t> FleetStore::DeploymentVersion(const std::string& target) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT version FROM deployments WHERE target = ?", {target}));
  if (rows.empty()) return uint64_t{0};
  return ColumnUint64(rows[0].at(0), "deployment version of " + target);
}

Status FleetStore::PutDeployment(const std::string& target, uint64_t version,
                                 const std::string& document) {
  return db_.Transaction([&]() -> Status {
    EDGELOOP_RETURN_IF_ERROR(db_.Exec("DELETE FROM deployments WHERE target = ?", {target}));
    return db_.Exec("INSERT INTO deployments (target, version, metadata) VALUES (?, ?, ?)",
                    {target, std::to_string(version), document});
  });
}

// Labels.

Result<std::vector<std::string>> FleetStore::Labels(const std::string& device_id) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT label FROM device_labels WHERE device_id = ? ORDER BY label", {device_id}));
  return FirstColumn(rows);
}

Status FleetStore::SetLabels(const std::string& device_id, const std::set<std::string>& labels) {
  return db_.Transaction([&]() -> Status {
    EDGELOOP_RETURN_IF_ERROR(GetDevice(device_id));
    EDGELOOP_RETURN_IF_ERROR(
        db_.Exec("DELETE FROM device_labels WHERE device_id = ?", {device_id}));
    for (const auto& label : labels)
      EDGELOOP_RETURN_IF_ERROR(db_.Exec(
          "INSERT INTO device_labels (device_id, label) VALUES (?, ?)", {device_id, label}));
    return Status::Ok();
  });
}

// Tokens.

Status FleetStore::InsertEnrollmentToken(const EnrollmentTokenRow& row) {
  return db_.Exec(
      "INSERT INTO enrollment_tokens (token_hash, device_id, grp, expires_ms, used) VALUES (?, ?, "
      "?, ?, ?)",
      {row.token_hash, row.device_id, row.group, Text(row.expires_ms), row.used ? "1" : "0"});
}

Result<EnrollmentTokenRow> FleetStore::GetEnrollmentToken(const std::string& token_hash) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT device_id, grp, expires_ms, used FROM enrollment_tokens WHERE "
                           "token_hash = ?",
                           {token_hash}));
  if (rows.empty()) return Error(Errc::kPermission, "unknown enrollment token");
  EnrollmentTokenRow t;
  t.token_hash = token_hash;
  t.device_id = rows[0].at(0);
  t.group = rows[0].at(1);
  EDGELOOP_ASSIGN_OR_RETURN(t.expires_ms, ColumnInt64(rows[0].at(2), "enrollment token expiry"));
  t.used = rows[0].at(3) != "0";
  return t;
}

Status FleetStore::MarkEnrollmentTokenUsed(const std::string& token_hash) {
  return db_.Exec("UPDATE enrollment_tokens SET used = 1 WHERE token_hash = ?", {token_hash});
}

Status FleetStore::InsertOperatorToken(const std::string& token_hash, const std::string& scope,
                                       int64_t created_ms) {
  return db_.Exec("INSERT INTO operator_tokens (token_hash, scope, created_ms) VALUES (?, ?, ?)",
                  {token_hash, scope, Text(created_ms)});
}

Result<std::optional<std::string>> FleetStore::OperatorScope(const std::string& token_hash) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT scope FROM operator_tokens WHERE token_hash = ?", {token_hash}));
  if (rows.empty()) return std::optional<std::string>();
  return std::optional<std::string>(rows[0].at(0));
}

// Reported state.

Status FleetStore::EnsureStatusRow(const std::string& device_id) {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT 1 FROM device_status WHERE device_id = ?", {device_id}));
  if (!rows.empty()) return Status::Ok();
  return db_.Exec(
      "INSERT INTO device_status (device_id, model_version, update_phase, last_seen_ms, "
      "accuracy, labelled, error_rate, latency_p50_ms, latency_p95_ms, drift_score, drift_alarm, "
      "telemetry) VALUES (?, '', '', 0, '', 0, 0, 0, 0, 0, 0, '')",
      {device_id});
}

Status FleetStore::RecordTelemetry(const TelemetryRecord& t) {
  const std::string accuracy = t.accuracy ? Text(*t.accuracy) : std::string();
  const std::string now = Text(t.ts_ms);
  const char* alarm = t.drift_alarm ? "1" : "0";
  return db_.Transaction([&]() -> Status {
    EDGELOOP_RETURN_IF_ERROR(EnsureStatusRow(t.device_id));
    // drift_since_ms: when the alarm went up; kept while it stays up, cleared when it drops.
    EDGELOOP_RETURN_IF_ERROR(db_.Exec(
        "UPDATE device_status SET model_version = ?, last_seen_ms = ?, accuracy = ?, labelled "
        "= ?, error_rate = ?, latency_p50_ms = ?, latency_p95_ms = ?, drift_score = ?, "
        "drift_alarm = ?, telemetry = ?, drift_since_ms = CASE WHEN ? = 0 THEN 0 WHEN "
        "drift_alarm = 0 OR drift_since_ms = 0 THEN ? ELSE drift_since_ms END WHERE device_id "
        "= ?",
        {t.model_version, now, accuracy, Text(t.labelled), Text(t.error_rate),
         Text(t.latency_p50_ms), Text(t.latency_p95_ms), Text(t.drift_score), alarm, t.document,
         alarm, now, t.device_id}));
    return db_.Exec(
        "INSERT INTO telemetry_history (device_id, ts_ms, model_version, accuracy, "
        "latency_p50_ms, samples, labelled, bytes_up, bytes_down, drift_score, latency_p95_ms, "
        "drift_alarm, spool_records, spool_bytes, spool_dropped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?, ?, ?, ?, ?)",
        {t.device_id, now, t.model_version, accuracy, Text(t.latency_p50_ms), Text(t.samples),
         Text(t.labelled), Text(t.bytes_up), Text(t.bytes_down), Text(t.drift_score),
         Text(t.latency_p95_ms), alarm, Text(t.spool_records), Text(t.spool_bytes),
         Text(t.spool_dropped)});
  });
}

Status FleetStore::RecordUpdateEvent(const UpdateEventRecord& e, const std::string& status) {
  return db_.Transaction([&]() -> Status {
    EDGELOOP_RETURN_IF_ERROR(db_.Exec(
        "INSERT INTO update_events (device_id, ts_ms, phase, metadata_version, model_version, "
        "reason) VALUES (?, ?, ?, ?, ?, ?)",
        {e.device_id, Text(e.ts_ms), e.phase, std::to_string(e.metadata_version), e.model_version,
         e.reason}));
    EDGELOOP_RETURN_IF_ERROR(EnsureStatusRow(e.device_id));
    EDGELOOP_RETURN_IF_ERROR(
        db_.Exec("UPDATE device_status SET update_phase = ?, last_seen_ms = ? WHERE device_id = ?",
                 {status, Text(e.ts_ms), e.device_id}));
    if ((e.phase == "probation" || e.phase == "committed") && !e.model_version.empty())
      return db_.Exec("UPDATE device_status SET model_version = ? WHERE device_id = ?",
                      {e.model_version, e.device_id});
    return Status::Ok();
  });
}

Result<std::vector<DeviceStatus>> FleetStore::Fleet() {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT d.device_id, d.grp, d.revoked, " + std::string(kStatusColumns) +
                           " FROM devices d LEFT JOIN device_status s ON s.device_id = "
                           "d.device_id ORDER BY d.device_id"));
  std::vector<DeviceStatus> out;
  for (const auto& r : rows) {
    DeviceStatus d;
    d.device_id = r.at(0);
    d.group = r.at(1);
    d.revoked = r.at(2) != "0";
    EDGELOOP_RETURN_IF_ERROR(ReadStatus(r, 3, d));
    out.push_back(std::move(d));
  }
  return out;
}

Result<std::vector<DeviceStatus>> FleetStore::StatusRows() {
  EDGELOOP_ASSIGN_OR_RETURN(auto rows,
                            db_.Query("SELECT s.device_id, " + std::string(kStatusColumns) +
                                      " FROM device_status s ORDER BY s.device_id"));
  std::vector<DeviceStatus> out;
  for (const auto& r : rows) {
    DeviceStatus d;
    d.device_id = r.at(0);
    EDGELOOP_RETURN_IF_ERROR(ReadStatus(r, 1, d));
    out.push_back(std::move(d));
  }
  return out;
}

Result<std::vector<TelemetryPoint>> FleetStore::TelemetrySince(int64_t since_ms) {
  EDGELOOP_ASSIGN_OR_RETURN(auto rows,
                            db_.Query("SELECT device_id, model_version, accuracy, labelled, ts_ms FROM "
                                      "telemetry_history WHERE ts_ms > ? ORDER BY ts_ms",
                                      {Text(since_ms)}));
  std::vector<TelemetryPoint> out;
  for (const auto& r : rows) {
    TelemetryPoint p;
    p.device_id = r.at(0);
    p.model_version = r.at(1);
    const std::string where = "telemetry of " + p.device_id + " ";
    EDGELOOP_ASSIGN_OR_RETURN(p.accuracy, OptionalDouble(r.at(2), where + "accuracy"));
    EDGELOOP_ASSIGN_OR_RETURN(p.labelled, IntOrZero(r.at(3), where + "labelled"));
    EDGELOOP_ASSIGN_OR_RETURN(p.ts_ms, IntOrZero(r.at(4), where + "time"));
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::vector<TelemetryHistoryRow>> FleetStore::TelemetryHistory(const std::string& device_id,
                                                                      int64_t since_ms,
                                                                      size_t limit) {
  // The newest `limit` periods, read newest first and turned around.
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT ts_ms, model_version, accuracy, samples, labelled, bytes_up, bytes_down, "
                "latency_p50_ms, latency_p95_ms, drift_score, drift_alarm, spool_records, "
                "spool_bytes, spool_dropped FROM telemetry_history WHERE device_id = ? AND ts_ms "
                "> ? ORDER BY ts_ms DESC LIMIT " +
                    std::to_string(limit),
                {device_id, Text(since_ms)}));
  std::vector<TelemetryHistoryRow> out;
  out.reserve(rows.size());
  for (auto r = rows.rbegin(); r != rows.rend(); ++r) {
    TelemetryHistoryRow h;
    const std::string where = "telemetry of " + device_id + " ";
    EDGELOOP_ASSIGN_OR_RETURN(h.ts_ms, IntOrZero(r->at(0), where + "ts_ms"));
    h.model_version = r->at(1);
    EDGELOOP_ASSIGN_OR_RETURN(h.accuracy, OptionalDouble(r->at(2), where + "accuracy"));
    EDGELOOP_ASSIGN_OR_RETURN(h.samples, IntOrZero(r->at(3), where + "samples"));
    EDGELOOP_ASSIGN_OR_RETURN(h.labelled, IntOrZero(r->at(4), where + "labelled"));
    EDGELOOP_ASSIGN_OR_RETURN(h.bytes_up, IntOrZero(r->at(5), where + "bytes_up"));
    EDGELOOP_ASSIGN_OR_RETURN(h.bytes_down, IntOrZero(r->at(6), where + "bytes_down"));
    EDGELOOP_ASSIGN_OR_RETURN(h.latency_p50_ms, DoubleOrZero(r->at(7), where + "latency_p50_ms"));
    EDGELOOP_ASSIGN_OR_RETURN(h.latency_p95_ms, DoubleOrZero(r->at(8), where + "latency_p95_ms"));
    EDGELOOP_ASSIGN_OR_RETURN(h.drift_score, DoubleOrZero(r->at(9), where + "drift_score"));
    EDGELOOP_ASSIGN_OR_RETURN(int64_t alarm, IntOrZero(r->at(10), where + "drift_alarm"));
    h.drift_alarm = alarm != 0;
    EDGELOOP_ASSIGN_OR_RETURN(h.spool_records, IntOrZero(r->at(11), where + "spool_records"));
    EDGELOOP_ASSIGN_OR_RETURN(h.spool_bytes, IntOrZero(r->at(12), where + "spool_bytes"));
    EDGELOOP_ASSIGN_OR_RETURN(h.spool_dropped, IntOrZero(r->at(13), where + "spool_dropped"));
    out.push_back(std::move(h));
  }
  return out;
}

Result<std::vector<UpdateEventRecord>> FleetStore::UpdateEvents(const std::string& device_id,
                                                                size_t limit) {
  std::string sql = "SELECT " + std::string(kEventColumns) + " FROM update_events";
  std::vector<std::string> params;
  if (!device_id.empty()) {
    sql += " WHERE device_id = ?";
    params.push_back(device_id);
  }
  sql += " ORDER BY id LIMIT " + std::to_string(limit);
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, db_.Query(sql, params));
  std::vector<UpdateEventRecord> out;
  for (const auto& r : rows) {
    EDGELOOP_ASSIGN_OR_RETURN(UpdateEventRecord e, ReadEvent(r));
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<UpdateEventRecord>> FleetStore::LatestUpdateEvents() {
  EDGELOOP_ASSIGN_OR_RETURN(
      auto rows,
      db_.Query("SELECT e.id, e.device_id, e.ts_ms, e.phase, e.metadata_version, e.model_version, "
                "e.reason FROM update_events e JOIN (SELECT device_id, MAX(id) AS id FROM "
                "update_events GROUP BY device_id) l ON e.id = l.id ORDER BY e.device_id"));
  std::vector<UpdateEventRecord> out;
  for (const auto& r : rows) {
    EDGELOOP_ASSIGN_OR_RETURN(UpdateEventRecord e, ReadEvent(r));
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<DriftAlarm>> FleetStore::DriftAlarms(int64_t seen_after_ms,
                                                        const std::string& model_version) {
  std::string sql =
      "SELECT device_id, model_version, drift_since_ms FROM device_status WHERE drift_alarm = 1 "
      "AND last_seen_ms > ?";
  std::vector<std::string> params = {Text(seen_after_ms)};
  if (!model_version.empty()) {
    sql += " AND model_version = ?";
    params.push_back(model_version);
  }
  EDGELOOP_ASSIGN_OR_RETURN(auto rows, db_.Query(sql + " ORDER BY device_id", params));
  std::vector<DriftAlarm> out;
  for (const auto& r : rows) {
    DriftAlarm a;
    a.device_id = r.at(0);
    a.model_version = r.at(1);
    EDGELOOP_ASSIGN_OR_RETURN(a.since_ms,
                              IntOrZero(r.at(2), "device " + a.device_id + " drift_since_ms"));
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace edgeloop::cloud
