// Internals of the server shared by its route modules (server.cpp holds enrollment, ingest,
// tokens, devices, artifacts and deployments; api_*.cpp the later modules). Not installed;
// include only from src/cloud.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "cloud/database.hpp"
#include "cloud/fleet_keys.hpp"
#include "cloud/fleet_store.hpp"
#include "cloud/leader_lease.hpp"
#include "cloud/metrics.hpp"
#include "cloud/pipeline.hpp"
#include "cloud/pipeline_store.hpp"
#include "cloud/registry_store.hpp"
#include "cloud/rollout.hpp"
#include "cloud/rollout_store.hpp"
#include "cloud/sample_store.hpp"
#include "cloud/server.hpp"
#include "cloud/trust_store.hpp"
#include "common/bounded_parse.hpp"
#include "common/hash.hpp"
#include "common/log.hpp"
#include "common/mqtt_protocol.hpp"
#include "common/update_metadata.hpp"

namespace edgeloop::cloud {

using Json = nlohmann::json;

// A name that goes into routes, topics and file names: 1 to `most` of [A-Za-z0-9._-] (device
// ids, groups, labels, model and artifact names).
inline bool IsName(std::string_view s, size_t most = 128) {
  return !s.empty() && s.size() <= most &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
             std::string_view::npos;
}

inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline void SendError(http::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(Json{{"error", {{"status", status}, {"message", message}}}}.dump(),
                  "application/json");
}

inline int HttpStatus(Errc code) {
  switch (code) {
    case Errc::kInvalidArgument:
    case Errc::kFormat:
    case Errc::kMismatch:
      return 400;
    case Errc::kNotFound:
      return 404;
    case Errc::kPermission:
      return 403;
    case Errc::kResourceExhausted:
      return 413;
    case Errc::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

inline void SendError(http::Response& res, const Error& e) {
  SendError(res, HttpStatus(e.code), e.message);
}

// The subject's common name (a device certificate's device id), or nullopt when it has none.
inline std::optional<std::string> CertificateCommonName(X509* cert) {
  X509_NAME* name = X509_get_subject_name(cert);
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return std::nullopt;
  ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)),
                     static_cast<size_t>(ASN1_STRING_length(cn)));
}

inline int ScopeRank(const std::string& scope) {
  if (scope == "read") return 1;
  if (scope == "write") return 2;
  if (scope == "admin") return 3;
  return 0;
}

// Parses a JSON object body; answers 400 and returns nullopt when it is not one.
inline std::optional<Json> JsonBody(const http::Request& req, http::Response& res) {
  if (req.body.empty()) {
    SendError(res, 400, "request has no body: send a JSON object (\"{}\" for no fields)");
    return std::nullopt;
  }
  auto body = ParseJsonBounded(req.body, "request body");
  if (!body.ok()) {
    SendError(res, 400, body.error().message);
    return std::nullopt;
  }
  if (!body->is_object()) {
    SendError(res, 400, "request body is not a JSON object");
    return std::nullopt;
  }
  return std::move(*body);
}

inline void SendJson(http::Response& res, const Json& body, int status = 200) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

inline std::string JsonString(const Json& j, const char* key) {
  auto it = j.find(key);
  return (it != j.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

// A token bucket per device: rate limits batches, not bytes (bytes are capped per batch).
class RateLimiter {
 public:
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}
  bool Allow(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = std::chrono::steady_clock::now();
    auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst_, now});
    Bucket& b = it->second;
    if (!fresh) {
      double dt = std::chrono::duration<double>(now - b.last).count();
      b.tokens = std::min(burst_, b.tokens + dt * rate_);
      b.last = now;
    }
    if (b.tokens < 1.0) return false;
    b.tokens -= 1.0;
    return true;
  }

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  double rate_, burst_;
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

// A dataset snapshot as the pipeline module sees it (see api_datasets.cpp).
struct SnapshotInfo {
  std::string id;        // sha256 of the canonical manifest content
  std::string dir;       // <data>/datasets/<id>; data::LoadDataset("snapshot:" + dir) reads it
  bool created = false;  // false: the same content existed already
  Json summary;          // what GET /v1/datasets/snapshots/{id} answers
};

// What a new model version records (see api_registry.cpp). artifacts maps a variant name
// ("fp32", "int8") to the sha256 of an uploaded artifact; parent is "<model>:<version>".
struct ModelVersionSpec {
  std::string model;
  Json artifacts = Json::object();
  std::string parent, dataset_snapshot, code_version;
  Json hyperparameters = Json::object();
  Json metrics = Json::object();
};

// What ingest made of one batch, over HTTPS or MQTT.
struct IngestOutcome {
  int status = 200;     // HTTP-like: 200 stored; 400, 403, 413, 429 refused; 500 not stored
  std::string message;  // why, when status is not 200
  uint64_t accepted = 0, duplicates = 0;
  uint64_t last_seq = 0;  // the batch's highest sequence number (status 200)
};

class MqttIngest;

struct Server::Impl {
  ServerOptions options;
  FleetKeys keys;
  std::string admin_token;
  std::unique_ptr<Database> db;
  std::unique_ptr<SampleStore> store;
  std::unique_ptr<RolloutStore> rollouts;
  std::unique_ptr<FleetStore> fleet;
  std::unique_ptr<TrustStore> trust;  // certificates over time, root metadata
  // The targets (update-signing) key may be replaced while the server runs
  // (POST /v1/root with a new targets role): read it through SigningKey().
  mutable std::mutex signing_mu;
  std::string SigningKey() const {
    std::lock_guard<std::mutex> lock(signing_mu);
    return keys.signing_key_pem;
  }
  std::string SigningPublicKey() const {
    std::lock_guard<std::mutex> lock(signing_mu);
    return keys.signing_public_key_pem;
  }
  std::unique_ptr<RegistryStore> registry;
  std::unique_ptr<PipelineStore> pipelines;
  std::unique_ptr<http::Listener> http;
  // Run() waits here until Stop().
  std::mutex run_mu;
  std::condition_variable run_cv;
  bool stopped = false;
  int port = 0;
  RateLimiter limiter;
  // Background work: pipeline triggers and runs, rollout ticks (api_pipelines.cpp). Only
  // the replica holding the lease does it (leader_lease.hpp): `leader` turns true once the
  // lease is held and the runs of the previous leader are recovered, false when it is lost.
  // run_cancel stops a run in progress (at Stop, or when the lease is lost).
  std::atomic<bool> stopping{false};
  std::atomic<bool> leader{false};
  std::atomic<bool> run_cancel{false};
  std::string replica_id;  // options.replica_id, or hostname:pid
  std::unique_ptr<LeaderLease> lease;
  std::string lease_error;  // the last reason the lease could not be polled (lease thread)
  std::optional<FileLock> folder_lock;  // SQLite: this server owns the data folder
  std::vector<std::thread> workers;
  // Serialises this replica's rollout ticks and operator commands; across replicas the
  // rollout row is locked in the transaction (RolloutStore::GetForUpdate).
  std::mutex rollout_mu;
  ServerMetrics metrics;
  // Ingest workers on the MQTT broker (options.mqtt_broker), started by Server::Start. A
  // shared_ptr: its deleter comes from mqtt_ingest.cpp, which only an MQTT build compiles.
  std::shared_ptr<MqttIngest> mqtt_ingest;

  explicit Impl(const ServerOptions& o)
      : options(o), limiter(o.device_batches_per_second, o.device_burst) {}

  // True when the bearer token carries at least `scope`; otherwise answers 401/403.
  bool RequireScope(const http::Request& req, http::Response& res, const std::string& scope) {
    std::string auth = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (auth.rfind(prefix, 0) != 0) {
      SendError(res, 401, "missing bearer token");
      return false;
    }
    auto granted = fleet->OperatorScope(Sha256Hex(auth.substr(prefix.size())));
    if (!granted.ok()) {
      SendError(res, granted.error());
      return false;
    }
    if (!*granted) {
      SendError(res, 401, "unknown bearer token");
      return false;
    }
    if (ScopeRank(**granted) < ScopeRank(scope)) {
      SendError(res, 403, "token lacks the '" + scope + "' scope");
      return false;
    }
    return true;
  }

  // The enrolled, unrevoked device behind the request's client certificate.
  std::optional<std::string> DeviceIdentity(const http::Request& req, http::Response& res) {
    if (req.ssl == nullptr) {
      SendError(res, 401, "client certificate required");
      return std::nullopt;
    }
    std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(req.ssl), X509_free);
    if (!cert || SSL_get_verify_result(req.ssl) != X509_V_OK) {
      SendError(res, 401, "client certificate required");
      return std::nullopt;
    }
    auto common_name = CertificateCommonName(cert.get());
    uint64_t serial = 0;
    if (!common_name || ASN1_INTEGER_get_uint64(&serial, X509_get0_serialNumber(cert.get())) != 1) {
      SendError(res, 401, "client certificate has no device identity");
      return std::nullopt;
    }
    const std::string& device = *common_name;
    // Checked on every request, so a revocation (or a re-enrollment, which issues a new
    // serial) takes effect at once.
    auto valid = trust->CertificateValid(device, serial, NowMs());
    if (!valid.ok()) {
      SendError(res, valid.error());
      return std::nullopt;
    }
    if (!*valid) {
      SendError(res, 403, "certificate revoked or device unknown");
      return std::nullopt;
    }
    return device;
  }

  // allowed: the methods the path takes (the 405's Allow header).
  std::string TransportErrorText(const http::Request& req, int status,
                                 const std::string& allowed) const;
  void OnRequestDone(const http::Request& req, const http::Response& res, const std::string& route,
                     double seconds);
  std::string ScrapeGauges();
  void Routes();
  // Signs and stores update metadata for m.deployment_target (a device id or
  // "group:<name>"): fills in length (from the stored artifact), expiry and the next version.
  // Returns the signed document. Used by the deployments route and by rollouts.
  Result<std::string> Deploy(UpdateMetadata m, int64_t ttl_seconds);
  // Route modules, one file each, adding their routes (the tables are in migrations.cpp).
  // Model registry, callable in-process by other modules. Versions count 1, 2, 3... per model
  // and never change once created; a new version starts as "candidate". SetStage to
  // "production" archives the model's previous production version in the same transaction.
  // version_or_stage: a number, "latest", or a stage (its newest version). Errors: kNotFound
  // for an unknown model or version, kInvalidArgument for a bad spec or stage.
  Result<int64_t> RegisterModelVersion(const ModelVersionSpec& spec);
  Status SetStage(const std::string& model, int64_t version, const std::string& stage);
  Result<Json> GetModelVersion(const std::string& model, const std::string& version_or_stage);
  Result<Json> ModelCard(const std::string& model, const std::string& version_or_stage);
  // Dataset snapshots: spec as in POST /v1/datasets/snapshots (docs/api.md). The same spec on
  // the same data gives the same id; the manifest is written once.
  Result<SnapshotInfo> CreateSnapshot(const Json& spec);
  Result<Json> GetSnapshot(const std::string& id);
  // Labelled samples matching a snapshot spec's filter (its split and labelled_only aside);
  // what a pipeline's new-labelled-samples trigger counts.
  Result<int64_t> CountLabelled(const Json& spec);
  void RegistryRoutes();  // api_registry.cpp: models, versions, stages, model cards
  void DatasetRoutes();   // api_datasets.cpp: dataset snapshots and exports
  void FleetRoutes();     // api_fleet.cpp: telemetry, update events, fleet view
  void TrustRoutes();     // api_trust.cpp: certificate renewal, root metadata, signed time
  // Root version 1 (the targets key as root and targets role) when the database has none.
  Status EnsureRootMetadata();
  // A new certificate for `device` from the CSR (lifetime from the options); *serial and
  // *not_after_ms receive the serial and expiry.
  Result<std::string> IssueDeviceCertificate(const std::string& csr, const std::string& device,
                                             uint64_t* serial, int64_t* not_after_ms);
  // A telemetry snapshot or an update event (the JSON of POST /v1/telemetry, /v1/events) from
  // an authenticated device, over HTTPS or MQTT. kInvalidArgument names what is wrong.
  Status RecordTelemetry(const std::string& device, const Json& body);
  Status RecordUpdateEvent(const std::string& device, const Json& body);
  // Over MQTT: a telemetry or events message (leaf) from the broker, for a device that must
  // be enrolled and not revoked; an event's ack (nullopt for telemetry).
  std::optional<mqtt::Ack> ControlFromBroker(const std::string& device, const std::string& leaf,
                                             std::string_view payload);
  // Pushes target's current update metadata (a device, or "group:<g>": each of its devices
  // without a deployment of its own) as the retained message on each device's update topic.
  // Without MQTT a no-op. False when a publish or a read failed (logged and counted): the
  // caller keeps the target to push again.
  bool PushDeployment(const std::string& target);
  // Deploy() notes its target here; the pushes go out after the caller's transaction
  // committed (FlushDeploymentPushes: the deployments route, rollout ticks and commands), so a
  // device is never pushed metadata that a rolled-back transaction took back. A push that
  // failed (no ingest worker connected) stays here and goes out again from the lease thread,
  // every background interval, once a worker is connected.
  std::mutex push_mu;
  std::set<std::string> push_pending;
  void FlushDeploymentPushes();
  // When this replica takes the leader lease (at start on SQLite): runs left "running" by a
  // leader that died are failed, naming the step. Only the leader executes runs, so every
  // run found running then was the previous leader's.
  Status RecoverInterruptedRuns();
  void PipelineRoutes();  // api_pipelines.cpp: pipelines and runs
  void RolloutRoutes();   // api_rollouts.cpp: staged rollouts
  // dashboard.cpp: the web dashboard's files at /ui/
  void DashboardRoutes();
  // Pipelines: queue a run (one runs at a time per pipeline, the rest wait), fire triggers,
  // execute the oldest queued run (its heavy steps in worker processes).
  Result<std::string> QueueRun(const std::string& pipeline, const std::string& trigger);
  void CheckTriggers();
  std::string DriftTrigger(const PipelineSpec& spec, int64_t last_run_ms);
  void ExecuteQueuedRun();
  void StartWorkers();
  void StopWorkers();
  // One poll of the leader lease (lease thread): on taking it, recovers the runs left
  // "running" by the previous leader, then starts background work; on losing it, stops it.
  void PollLease();
  // Background failures are logged (event=background_failure, where=...) and counted in
  // edgeloop_background_errors_total; Guarded runs one round of a loop so that nothing it
  // throws ends the process.
  void BackgroundFailure(const char* where, const Error& e, log::Field context = {"detail", ""});
  void Guarded(const char* where, const std::function<void()>& fn);
  // Rollouts: target ("all", "group:<g>", a device id) to enrolled devices; the fleet's
  // reported state; a new rollout of a registered version (body: target, variant, canary,
  // waves, criteria) → its id; one controller step for every running rollout; operator
  // commands pause, resume, abort.
  Result<std::vector<std::string>> ResolveTarget(const std::string& target);
  Result<std::map<std::string, DeviceState>> FleetStates();
  Result<std::string> StartRollout(const Json& body, const std::string& model, int64_t version);
  Status ApplyRolloutActions(const RolloutRow& row, const Json& state,
                             const std::vector<RolloutAction>& actions);
  void TickRollouts();
  Result<Json> RolloutCommand(const std::string& id, const std::string& command);
  void HandleEnroll(const http::Request& req, http::Response& res);
  // ingest.cpp. IngestBatch: the checks (rate, sizes, zstd frame, SampleBatch, the samples'
  // device, tensor shapes) and the durable write, for a device already authenticated.
  // IngestFromBroker: a batch taken from the MQTT broker for `device`, refused when the device
  // is unknown or revoked.
  IngestOutcome IngestBatch(const std::string& device, std::string_view body);
  IngestOutcome IngestFromBroker(const std::string& device, std::string_view body);
  void HandleIngest(const http::Request& req, http::Response& res);
  // Issues the ingest workers' certificate (unless options give one) and starts them.
  Status StartMqttIngest();
  void HandleDeviceLabels(const http::Request& req, http::Response& res);
};

}  // namespace edgeloop::cloud
