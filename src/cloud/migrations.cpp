#include "cloud/migrations.hpp"

#include <chrono>

namespace edgeloop::cloud {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status ExecAll(Database& db, const std::vector<std::string>& statements) {
  for (const auto& sql : statements) EDGELOOP_RETURN_IF_ERROR(db.Exec(sql));
  return Status::Ok();
}

// Version 1 is the schema as it stood when migrations began. Its statements keep IF NOT
// EXISTS so that a database created before then adopts version 1 as it is.
Status InitialSchema(Database& db) {
  const bool pg = db.Dialect() == "postgresql";
  const std::string id_column =
      pg ? "id BIGSERIAL PRIMARY KEY" : "id INTEGER PRIMARY KEY AUTOINCREMENT";
  return ExecAll(
      db,
      {
          // Fleet identity and operator access.
          "CREATE TABLE IF NOT EXISTS devices (device_id TEXT PRIMARY KEY, grp TEXT NOT NULL, "
          "serial TEXT NOT NULL, revoked INTEGER NOT NULL, enrolled_ms BIGINT NOT NULL)",
          "CREATE TABLE IF NOT EXISTS operator_tokens (token_hash TEXT PRIMARY KEY, scope TEXT "
          "NOT NULL, created_ms BIGINT NOT NULL)",
          "CREATE TABLE IF NOT EXISTS deployments (target TEXT PRIMARY KEY, version BIGINT NOT "
          "NULL, metadata TEXT NOT NULL)",
          "CREATE TABLE IF NOT EXISTS enrollment_tokens (token_hash TEXT PRIMARY KEY, device_id "
          "TEXT NOT NULL, grp TEXT NOT NULL, expires_ms BIGINT NOT NULL, used INTEGER NOT NULL)",
          // The sample index over the segment files.
          "CREATE TABLE IF NOT EXISTS samples (device_id TEXT NOT NULL, seq BIGINT NOT NULL, "
          "ts_ms BIGINT NOT NULL, label INTEGER NOT NULL, label_source INTEGER NOT NULL, "
          "segment INTEGER NOT NULL, pos BIGINT NOT NULL, length INTEGER NOT NULL, "
          "PRIMARY KEY (device_id, seq))",
          // Model registry.
          "CREATE TABLE IF NOT EXISTS models (name TEXT PRIMARY KEY, created_ms BIGINT NOT NULL)",
          "CREATE TABLE IF NOT EXISTS model_versions (model TEXT NOT NULL, version BIGINT NOT "
          "NULL, stage TEXT NOT NULL, artifacts TEXT NOT NULL, parent TEXT NOT NULL, "
          "dataset_snapshot TEXT NOT NULL, hyperparameters TEXT NOT NULL, code_version TEXT NOT "
          "NULL, metrics TEXT NOT NULL, created_ms BIGINT NOT NULL, PRIMARY KEY (model, "
          "version))",
          "CREATE TABLE IF NOT EXISTS model_stage_history (model TEXT NOT NULL, n BIGINT NOT "
          "NULL, version BIGINT NOT NULL, from_stage TEXT NOT NULL, to_stage TEXT NOT NULL, "
          "changed_ms BIGINT NOT NULL, PRIMARY KEY (model, n))",
          // Dataset snapshots.
          "CREATE TABLE IF NOT EXISTS snapshots (id TEXT PRIMARY KEY, created_ms BIGINT NOT "
          "NULL, summary TEXT NOT NULL)",
          // Fleet state: latest status, update events, telemetry history, labels.
          "CREATE TABLE IF NOT EXISTS device_status (device_id TEXT PRIMARY KEY, model_version "
          "TEXT NOT NULL, update_phase TEXT NOT NULL, last_seen_ms BIGINT NOT NULL, accuracy "
          "TEXT NOT NULL, labelled BIGINT NOT NULL, error_rate DOUBLE PRECISION NOT NULL, "
          "latency_p50_ms DOUBLE PRECISION NOT NULL, latency_p95_ms DOUBLE PRECISION NOT NULL, "
          "drift_score DOUBLE PRECISION NOT NULL, drift_alarm INTEGER NOT NULL, telemetry TEXT "
          "NOT NULL)",
          "CREATE TABLE IF NOT EXISTS update_events (" + id_column +
              ", device_id TEXT NOT NULL, ts_ms BIGINT NOT NULL, phase TEXT NOT NULL, "
              "metadata_version BIGINT NOT NULL, model_version TEXT NOT NULL, reason TEXT NOT "
              "NULL)",
          "CREATE INDEX IF NOT EXISTS update_events_device ON update_events (device_id, id)",
          "CREATE TABLE IF NOT EXISTS telemetry_history (device_id TEXT NOT NULL, ts_ms BIGINT "
          "NOT NULL, model_version TEXT NOT NULL, accuracy TEXT NOT NULL, latency_p50_ms DOUBLE "
          "PRECISION NOT NULL, samples BIGINT NOT NULL, bytes_up BIGINT NOT NULL, bytes_down "
          "BIGINT NOT NULL, drift_score DOUBLE PRECISION NOT NULL)",
          "CREATE INDEX IF NOT EXISTS telemetry_history_device ON telemetry_history (device_id, "
          "ts_ms)",
          "CREATE TABLE IF NOT EXISTS device_labels (device_id TEXT NOT NULL, label TEXT NOT "
          "NULL, PRIMARY KEY (device_id, label))",
          // Pipelines and their runs; rollouts.
          "CREATE TABLE IF NOT EXISTS pipelines (name TEXT PRIMARY KEY, spec TEXT NOT NULL, "
          "created_ms BIGINT NOT NULL, last_run_ms BIGINT NOT NULL, labelled_seen BIGINT NOT "
          "NULL)",
          "CREATE TABLE IF NOT EXISTS pipeline_runs (id TEXT PRIMARY KEY, pipeline TEXT NOT "
          "NULL, trigger TEXT NOT NULL, status TEXT NOT NULL, created_ms BIGINT NOT NULL, "
          "finished_ms TEXT NOT NULL, result TEXT NOT NULL)",
          "CREATE TABLE IF NOT EXISTS rollouts (id TEXT PRIMARY KEY, model TEXT NOT NULL, "
          "version BIGINT NOT NULL, status TEXT NOT NULL, state TEXT NOT NULL, created_ms "
          "BIGINT NOT NULL, updated_ms BIGINT NOT NULL)",
      });
}

// Adds a column unless the table has it already (a database from before migrations, or one
// whose version rows were lost): asked without a failing statement, because on PostgreSQL
// one would abort the transaction.
Status AddColumnIfMissing(Database& db, const std::string& table, const std::string& column,
                          const std::string& type) {
  const std::string probe =
      db.Dialect() == "postgresql"
          ? "SELECT 1 FROM information_schema.columns WHERE table_name = ? AND column_name = ?"
          : "SELECT 1 FROM pragma_table_info(?) WHERE name = ?";
  EDGELOOP_ASSIGN_OR_RETURN(auto found, db.Query(probe, {table, column}));
  if (!found.empty()) return Status::Ok();
  return db.Exec("ALTER TABLE " + table + " ADD COLUMN " + column + " " + type);
}

// The labelled samples behind each telemetry period's accuracy (the rollout controller
// weighs periods by it). Databases from before migrations may have the column already.
Status TelemetryLabelled(Database& db) {
  return AddColumnIfMissing(db, "telemetry_history", "labelled", "BIGINT NOT NULL DEFAULT 0");
}

// One row that /v1/ready rewrites to prove that the database takes writes.
Status ReadinessRow(Database& db) {
  return ExecAll(db, {"CREATE TABLE IF NOT EXISTS readiness (id INTEGER PRIMARY KEY, "
                      "checked_ms BIGINT NOT NULL)",
                      "INSERT INTO readiness (id, checked_ms) SELECT 1, 0 WHERE NOT EXISTS "
                      "(SELECT 1 FROM readiness WHERE id = 1)"});
}

// When each device's drift alarm was raised (0: no alarm): a drift run waits for labelled
// samples from after it, not for samples it already had before the drift began.
Status DriftSince(Database& db) {
  return db.Exec("ALTER TABLE device_status ADD COLUMN drift_since_ms BIGINT NOT NULL DEFAULT 0");
}

// Segment files are numbered by the database, not by each process: several servers on one
// database and one data folder each append to segments of their own. The table starts with
// every segment the index already names; a store allocates MAX + 1 (skipping files on disk).
Status SampleSegments(Database& db) {
  return ExecAll(db, {"CREATE TABLE IF NOT EXISTS sample_segments (segment INTEGER PRIMARY KEY, "
                      "owner TEXT NOT NULL, opened_ms BIGINT NOT NULL)",
                      "INSERT INTO sample_segments (segment, owner, opened_ms) SELECT DISTINCT "
                      "segment, 'indexed before migration 5', 0 FROM samples"});
}

// What the dashboard's device page plots over time besides accuracy, p50 latency and drift:
// p95 latency, the drift alarm and the device's spool (depth and records dropped).
Status TelemetryHistoryDashboard(Database& db) {
  for (const char* column :
       {"latency_p95_ms DOUBLE PRECISION", "drift_alarm BIGINT", "spool_records BIGINT",
        "spool_bytes BIGINT", "spool_dropped BIGINT"}) {
    const std::string c = column;
    const size_t space = c.find(' ');
    EDGELOOP_RETURN_IF_ERROR(AddColumnIfMissing(db, "telemetry_history", c.substr(0, space),
                                                c.substr(space + 1) + " NOT NULL DEFAULT 0"));
  }
  return Status::Ok();
}

// Device certificate renewal (the serial a renewal replaced stays valid until a grace
// deadline) and the root metadata chain of the update keys (trust_store.hpp).
Status DeviceTrust(Database& db) {
  return ExecAll(db, {"CREATE TABLE IF NOT EXISTS device_certificates (device_id TEXT PRIMARY "
                      "KEY, serial TEXT NOT NULL, not_after_ms BIGINT NOT NULL, previous_serial "
                      "TEXT NOT NULL, previous_valid_until_ms BIGINT NOT NULL)",
                      "CREATE TABLE IF NOT EXISTS root_metadata (version BIGINT PRIMARY KEY, "
                      "document TEXT NOT NULL, created_ms BIGINT NOT NULL)"});
}

Result<int64_t> CurrentVersion(Database& db) {
  EDGELOOP_ASSIGN_OR_RETURN(auto rows,
                            db.Query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
  return ColumnInt64(rows.at(0).at(0), "schema_migrations' newest version");
}

}  // namespace

const std::vector<Migration>& SchemaMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "initial schema", InitialSchema},
      {2, "telemetry_history.labelled", TelemetryLabelled},
      {3, "readiness row", ReadinessRow},
      {4, "device_status.drift_since_ms", DriftSince},
      {5, "sample_segments", SampleSegments},
      {6, "telemetry_history: p95, alarm, spool", TelemetryHistoryDashboard},
      {7, "device_certificates, root_metadata", DeviceTrust},
  };
  return kMigrations;
}

Result<int64_t> Migrate(Database& db) {
  EDGELOOP_RETURN_IF_ERROR(
      db.Exec("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name "
              "TEXT NOT NULL, applied_ms BIGINT NOT NULL)"));
  const auto& all = SchemaMigrations();
  const int64_t newest = all.back().version;
  for (const auto& m : all) {
    Status st = db.Transaction([&]() -> Status {
      // Replicas starting together take turns; each re-reads the version under the lock.
      if (db.Dialect() == "postgresql")
        EDGELOOP_RETURN_IF_ERROR(db.Exec("SELECT pg_advisory_xact_lock(7202612)"));
      EDGELOOP_ASSIGN_OR_RETURN(int64_t current, CurrentVersion(db));
      if (current > newest)
        return Error(Errc::kMismatch, "the database is at schema version " +
                                          std::to_string(current) + ", newer than this server (" +
                                          std::to_string(newest) + "): run a newer edgeloop");
      if (current >= m.version) return Status::Ok();
      if (Status applied = m.apply(db); !applied.ok())
        return applied.error().WithContext("schema migration " + std::to_string(m.version) + " (" +
                                           m.name + ")");
      return db.Exec("INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)",
                     {std::to_string(m.version), m.name, std::to_string(NowMs())});
    });
    EDGELOOP_RETURN_IF_ERROR(st);
  }
  return CurrentVersion(db);
}

Result<std::vector<int64_t>> AppliedMigrations(Database& db) {
  EDGELOOP_ASSIGN_OR_RETURN(auto rows,
                            db.Query("SELECT version FROM schema_migrations ORDER BY version"));
  std::vector<int64_t> out;
  for (const auto& r : rows) {
    EDGELOOP_ASSIGN_OR_RETURN(int64_t v, ColumnInt64(r.at(0), "schema_migrations.version"));
    out.push_back(v);
  }
  return out;
}

}  // namespace edgeloop::cloud
