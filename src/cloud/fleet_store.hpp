// The fleet's tables behind one interface: enrolled devices and their labels, deployments,
// enrollment and operator tokens, each device's latest reported state (device_status), its
// telemetry history and its update events. Rows come back as structs; a column that does not parse
// is an error naming the device, never an exception. Route modules, the rollout controller and the
// drift trigger read the fleet only through this store.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cloud/database.hpp"

namespace edgeloop::cloud {

struct DeviceRow {
  std::string device_id;
  std::string group;
  uint64_t serial = 0;  // of its current certificate
  bool revoked = false;
  int64_t enrolled_ms = 0;
};

struct EnrollmentTokenRow {
  std::string token_hash;  // sha256 of the token; the token itself is never stored
  std::string device_id;   // "" when any device id may enrol with it
  std::string group;
  int64_t expires_ms = 0;
  bool used = false;
};

// Per-device latest state, written from telemetry and update events; read by the fleet view
// and the rollout controller.
struct DeviceStatus {
  std::string device_id;
  std::string group;
  bool revoked = false;
  std::string model_version;       // the model the device last reported running
  std::string update_phase;        // last update event: idle, downloading, ..., refused
  int64_t last_seen_ms = 0;        // 0: never reported
  std::optional<double> accuracy;  // on labelled samples of the last telemetry period
  int64_t labelled = 0;
  double error_rate = 0, latency_p50_ms = 0, latency_p95_ms = 0;
  double drift_score = 0;  // the largest PSI over the drift features
  bool drift_alarm = false;
  std::string telemetry;  // the last snapshot (JSON)
};

// One telemetry snapshot as the store records it (the route has validated the document).
struct TelemetryRecord {
  std::string device_id;
  int64_t ts_ms = 0;
  std::string model_version;
  std::optional<double> accuracy;
  int64_t samples = 0, labelled = 0, bytes_up = 0, bytes_down = 0;
  double error_rate = 0, latency_p50_ms = 0, latency_p95_ms = 0;
  double drift_score = 0;
  bool drift_alarm = false;
  // The device's spool: records and bytes waiting for upload, records dropped when it was full.
  int64_t spool_records = 0, spool_bytes = 0, spool_dropped = 0;
  std::string document;  // the snapshot as sent (JSON)
};

// One row of telemetry_history, as the dashboard plots it (GET /v1/fleet/devices/{id}/telemetry).
struct TelemetryHistoryRow {
  int64_t ts_ms = 0;
  std::string model_version;
  std::optional<double> accuracy;
  int64_t samples = 0, labelled = 0, bytes_up = 0, bytes_down = 0;
  double latency_p50_ms = 0, latency_p95_ms = 0, drift_score = 0;
  bool drift_alarm = false;
  int64_t spool_records = 0, spool_bytes = 0, spool_dropped = 0;
};

// One row of update_events.
struct UpdateEventRecord {
  int64_t id = 0;
  std::string device_id;
  int64_t ts_ms = 0;
  std::string phase;
  uint64_t metadata_version = 0;
  std::string model_version;
  std::string reason;
};

// A telemetry period of the history, for the rollout controller's accuracy window.
struct TelemetryPoint {
  std::string device_id;
  int64_t ts_ms = 0;  // when the server received it
  std::string model_version;
  std::optional<double> accuracy;
  int64_t labelled = 0;
};

// A device whose drift alarm is up.
struct DriftAlarm {
  std::string device_id;
  std::string model_version;
  int64_t since_ms = 0;  // when the alarm went up (0: not known)
};

class FleetStore {
 public:
  explicit FleetStore(Database& db) : db_(db) {}

  // Devices. Get: kNotFound naming the id. Replace: the device's row after an enrollment (a
  // re-enrolled device gets a new serial, which retires its old certificate).
  Result<std::vector<DeviceRow>> Devices();
  Result<DeviceRow> GetDevice(const std::string& device_id);
  Status ReplaceDevice(const DeviceRow& row);
  Status Revoke(const std::string& device_id);  // kNotFound
  // True when the device is enrolled, not revoked, and `serial` is its current certificate.
  Result<bool> CertificateValid(const std::string& device_id, uint64_t serial);
  // Unrevoked devices of a rollout target: "all", "group:<g>", "label:<l>", or a device id.
  Result<std::vector<std::string>> ResolveTarget(const std::string& target);

  // Deployments: the signed update metadata a target (a device id or "group:<g>") is given.
  // DeploymentVersion: the version of its current document, 0 when it has none.
  Result<std::optional<std::string>> Deployment(const std::string& target);
  Result<uint64_t> DeploymentVersion(const std::string& target);
  Status PutDeployment(const std::string& target, uint64_t version, const std::string& document);

  // Labels: sorted; SetLabels replaces them all (kNotFound for an unknown device).
  Result<std::vector<std::string>> Labels(const std::string& device_id);
  Status SetLabels(const std::string& device_id, const std::set<std::string>& labels);

  // Enrollment tokens: Get is kPermission "unknown enrollment token" when there is none.
  Status InsertEnrollmentToken(const EnrollmentTokenRow& row);
  Result<EnrollmentTokenRow> GetEnrollmentToken(const std::string& token_hash);
  Status MarkEnrollmentTokenUsed(const std::string& token_hash);

  // Operator tokens: the scope of a token (by hash), nullopt when unknown.
  Status InsertOperatorToken(const std::string& token_hash, const std::string& scope,
                             int64_t created_ms);
  Result<std::optional<std::string>> OperatorScope(const std::string& token_hash);

  // Reported state. RecordTelemetry updates device_status and appends to the history in one
  // transaction; RecordUpdateEvent appends the event and sets the device's phase (`status`,
  // which is "refused" for a refusal) and, when the update entered probation or committed,
  // its running model.
  Status RecordTelemetry(const TelemetryRecord& t);
  Status RecordUpdateEvent(const UpdateEventRecord& e, const std::string& status);
  // Every enrolled device with its latest status (devices that never reported included).
  Result<std::vector<DeviceStatus>> Fleet();
  // Every device's status row, reported or not enrolled any more (the controller's view).
  Result<std::vector<DeviceStatus>> StatusRows();
  // Telemetry periods since `since_ms`, oldest first.
  Result<std::vector<TelemetryPoint>> TelemetrySince(int64_t since_ms);
  // One device's telemetry periods with ts_ms > since_ms, oldest first: the newest `limit`.
  Result<std::vector<TelemetryHistoryRow>> TelemetryHistory(const std::string& device_id,
                                                            int64_t since_ms, size_t limit);
  // Update events, oldest first; all devices when device_id is empty.
  Result<std::vector<UpdateEventRecord>> UpdateEvents(const std::string& device_id,
                                                      size_t limit = 1000);
  // The newest update event of each device.
  Result<std::vector<UpdateEventRecord>> LatestUpdateEvents();
  // Devices with a drift alarm seen after `seen_after_ms`, by device id; only those running
  // `model_version` when it is not empty.
  Result<std::vector<DriftAlarm>> DriftAlarms(int64_t seen_after_ms,
                                              const std::string& model_version);

 private:
  Status EnsureStatusRow(const std::string& device_id);
  Database& db_;
};

}  // namespace edgeloop::cloud
