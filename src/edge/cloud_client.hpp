// The device's side of the cloud API (docs/api.md), over HTTPS with mutual TLS (cpp-httplib
// and OpenSSL). Depends on src/common only, never on the server code.
//
// Identity: on first start the agent generates an ECDSA P-256 key, sends a CSR with the
// enrollment token to POST /v1/enroll and stores what it receives in <state>/identity/:
//
//   device.key   the private key (0600; written before the request, reused if it is retried)
//   device.crt   the client certificate issued by the fleet CA
//   ca.crt       the fleet CA (pins the server's certificate from then on)
//   update.pub   the Ed25519 update-signing public key (pins the update metadata)
//   root.json    the newest trusted root metadata (root_trust.hpp); absent for a device
//                enrolled before the root role, which then trusts update.pub as root 1
//   identity.json {"device_id", "group"}; written last, so its presence means "enrolled"
//
// Later starts load these files and never enroll again. A certificate renewal writes
// device.key.new, then device.crt.new, then renames them over device.key and device.crt;
// LoadIdentity() finishes a renewal that a crash interrupted between the renames (a
// device.crt.new present means both new files were complete).
//
// The server's certificate is checked against the pinned fleet CA without its validity
// dates: a device whose clock is years off must still reach its server, and freshness comes
// from the signed server time (GET /v1/time) instead.
//
// Thread safety: a CloudClient holds one keep-alive connection; calls are serialized by its
// mutex. The agent uses one client for uploads and another for everything else.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "edge/delta_fetch.hpp"
#include "edge/updater.hpp"
#include "edge/uploader.hpp"

namespace httplib {
class SSLClient;
}

namespace edgeloop::edge {

struct DeviceIdentity {
  std::string device_id;
  std::string group;
  std::string key_file, cert_file, ca_file;  // paths (cpp-httplib reads files)
  std::string update_public_key_pem;
  std::string root_json;  // identity/root.json, empty when the device never received one
  std::string identity_dir;
};

struct RenewedCertificate {
  std::string certificate_pem;
  int64_t not_after_ms = 0;
  int64_t previous_valid_until_ms = 0;
};

struct EnrollOptions {
  std::string server_url;  // https://host:port
  std::string state_dir;   // identity goes to <state_dir>/identity
  std::string device_id;   // may be empty when the token names the device
  std::string token;       // single-use enrollment token
  std::string ca_file;     // the fleet CA to trust for the enrollment call
};

// Loads the stored identity, or enrolls when there is none. Errors: kInvalidArgument when
// enrollment is needed but no token or CA is configured; kPermission when the server refuses
// the token; kIo when the server cannot be reached.
Result<DeviceIdentity> LoadOrEnroll(const EnrollOptions& options);
// The stored identity only (kNotFound when the device never enrolled).
Result<DeviceIdentity> LoadIdentity(const std::string& state_dir);

// What the server's status (over HTTPS, or in an MQTT refusal) means for the device:
// kPermission (401, 403), kNotFound (404), kInvalidArgument (400, 413), else kIo: try again.
Errc ErrcForStatus(int status);

class CloudClient {
 public:
  CloudClient(const std::string& server_url, DeviceIdentity identity,
              std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~CloudClient();

  const DeviceIdentity& identity() const { return id_; }

  // POST /v1/ingest: the records (serialized wire::Sample payloads) as one zstd-compressed
  // SampleBatch, device id and sequence filled in. Returns the last sequence number once the
  // server answered 200 (it stores a batch whole, duplicates counted and skipped).
  Result<uint64_t> Ingest(const UploadBatch& batch);
  // POST /v1/telemetry with a telemetry snapshot (JSON).
  Status PostTelemetry(const std::string& snapshot_json);
  // POST /v1/events: one update state change.
  Status PostEvent(const UpdateEvent& event, int64_t ts_ms);
  // GET /v1/deployments/<device id>, then /v1/deployments/group:<group>. nullopt: nothing is
  // deployed to this device.
  Result<std::optional<std::string>> FetchDeployment();
  // GET /v1/artifacts/<sha256> from byte `offset` (HTTP Range); see ArtifactFetcher.
  Status FetchArtifact(const std::string& sha256, uint64_t offset, uint64_t max_bytes,
                       const std::function<Status(std::string_view)>& sink);

  // GET /v1/artifacts/<sha256>?delta_from=<installed>: the whole body, a zstd delta when the
  // server sent one (FetchedArtifact::delta_from set), else the full artifact.
  Result<FetchedArtifact> FetchArtifactWhole(const std::string& sha256,
                                             const std::string& delta_from, uint64_t max_bytes);

  // POST /v1/renew with a CSR for a new key; authenticated by the current certificate.
  Result<RenewedCertificate> RenewCertificate(const std::string& csr_pem);
  // GET /v1/root/<version>: nullopt when the server has no such version (404). Answers are
  // read up to kMaxRootBytes (endless data refused).
  Result<std::optional<std::string>> FetchRoot(uint64_t version);
  // GET /v1/root: the version of the server's newest root (0 when it has none: an older
  // server, which the device then treats as having no newer root).
  Result<uint64_t> FetchNewestRootVersion();
  // GET /v1/time?nonce=<nonce>: the signed time document (root_metadata.hpp).
  Result<std::string> FetchSignedTime(const std::string& nonce);
  // Reopens the connection with the identity files as they are now (after a renewal).
  void ReloadCredentials();

  uint64_t bytes_up() const { return bytes_up_; }
  uint64_t bytes_down() const { return bytes_down_; }

 private:
  Status PostJson(const std::string& path, const std::string& body);
  std::string host_;
  int port_ = 443;
  DeviceIdentity id_;
  std::chrono::milliseconds timeout_{10000};
  std::mutex mu_;
  std::unique_ptr<httplib::SSLClient> http_;
  std::atomic<uint64_t> bytes_up_{0}, bytes_down_{0};
};

// The uploader's transport: Ingest() of a CloudClient.
class CloudUploadTransport : public UploadTransport {
 public:
  explicit CloudUploadTransport(std::shared_ptr<CloudClient> client) : client_(std::move(client)) {}
  Result<uint64_t> Send(const UploadBatch& batch) override { return client_->Ingest(batch); }

 private:
  std::shared_ptr<CloudClient> client_;
};

// The updater's fetcher: artifacts by sha256 from the server, resumed with Range.
class CloudArtifactFetcher : public ArtifactFetcher {
 public:
  explicit CloudArtifactFetcher(std::shared_ptr<CloudClient> client) : client_(std::move(client)) {}
  Status Fetch(const UpdateTarget& target, uint64_t offset, uint64_t max_bytes,
               const std::function<Status(std::string_view)>& sink) override;
  std::optional<std::string> FetchDelta(const UpdateTarget& target, std::string_view installed,
                                        const std::string& installed_sha256,
                                        uint64_t* bytes_transferred) override;
  // Lifetime model bytes moved, and what full downloads of the same updates would have moved.
  uint64_t bytes_moved() const { return moved_; }
  uint64_t bytes_full_equivalent() const { return full_equivalent_; }

 private:
  std::shared_ptr<CloudClient> client_;
  std::atomic<uint64_t> moved_{0}, full_equivalent_{0};
};

}  // namespace edgeloop::edge
