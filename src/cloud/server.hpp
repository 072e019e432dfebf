// The cloud control plane: one HTTPS server process over a Database and a data folder.
//
// Devices authenticate with client certificates issued by the fleet CA at enrollment; every
// device call checks the certificate's serial against the device table, so a revocation takes
// effect on the next request. Operators authenticate with bearer tokens that carry scopes
// (read < write < admin). See docs/cloud.md for the security model and docs/api.md for the
// endpoints.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cloud/http_server.hpp"
#include "common/result.hpp"

namespace edgeloop::cloud {

struct ServerOptions {
  std::string data_dir = "edgeloop-data";
  std::string db_url;  // empty: SQLite at <data_dir>/edgeloop.db
  std::string host = "127.0.0.1";
  int port = 8443;  // 0: any free port (see Server::port())
  // Supply the fleet CA and update-signing key as PEM files instead of generating them.
  std::string ca_cert_file, ca_key_file, signing_key_file;
  // Device certificates: issued (at enrollment and renewal) for this long; after a renewal the
  // certificate it replaced stays valid for cert_grace_s more, so uploads in flight are kept.
  size_t device_cert_lifetime_s = 825 * 86400;
  size_t cert_grace_s = 7 * 86400;
  // Limits (each answered with a 4xx and a JSON error body).
  size_t max_body_bytes = 8u << 20;           // compressed request body: 413
  size_t max_decompressed_bytes = 64u << 20;  // a batch after zstd: 413
  size_t max_batch_samples = 4096;            // samples per batch: 413
  uint64_t max_tensor_elements = 1u << 20;    // per sample: 400
  double device_batches_per_second = 200;     // token bucket per device: 429
  double device_burst = 400;
  // The executable that runs pipeline steps (train, export, evaluate, quantize) as worker
  // processes; empty: this process's own executable (the edgeloop CLI).
  std::string worker_executable;
  // Pipeline triggers and rollouts are checked this often; replicas that do not hold the
  // leader lease poll it this often too (docs/scale-out.md, "Replicas").
  int background_interval_ms = 1000;
  // This replica's name in logs, metrics and /v1/health; empty: hostname:pid.
  std::string replica_id;
  // Connections: handler threads, deadlines and connection limits (http_server.hpp).
  http::ListenerOptions connections;
  // Stop() answers requests already being read or handled for up to this long.
  int shutdown_deadline_ms = 10000;
  // MQTT ingest (docs/scale-out.md): "host:port" of the broker; empty: none. The workers
  // connect as mqtt::kIngestIdentity with mqtt_cert/mqtt_key, or, when those are empty, with
  // a certificate issued from the fleet CA at every start (<data_dir>/mqtt-ingest.crt and
  // .key). The broker's certificate must come from the fleet CA (edgeloop mqtt-config).
  std::string mqtt_broker;
  std::string mqtt_cert_file, mqtt_key_file;
  int mqtt_workers = 4;
  // Samples messages stored at once. Each waits for the sample store's group commit, so this
  // bounds how many batches share one fsync (docs/scale-out.md, "Group commit").
  int mqtt_handlers = 32;
};

class Server {
 public:
  // Opens (or on first start creates) the data folder, database, CA and signing key.
  static Result<std::unique_ptr<Server>> Create(const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and serves on a background thread; returns once the socket is listening.
  Status Start();
  // Serves on the calling thread until Stop() (from another thread or a signal handler).
  Status Run();
  // Stops the background work, stops accepting, answers in-flight requests (for up to
  // shutdown_deadline_ms) and closes every connection. False when requests were cut off.
  bool Stop();
  int port() const;

  // PEM of the fleet CA certificate (clients pin it) and of the update-signing public key.
  const std::string& ca_cert_pem() const;
  const std::string& signing_public_key_pem() const;
  // The admin operator token created on first start (also in <data_dir>/admin.token).
  const std::string& admin_token() const;

  // Internals (server_impl.hpp), shared by the server's route modules only.
  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeloop::cloud
