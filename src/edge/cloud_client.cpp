#include "edge/cloud_client.hpp"

#include <httplib.h>
#include <openssl/ssl.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/crypto.hpp"
#include "common/file.hpp"
#include "common/root_metadata.hpp"
#include "common/url.hpp"
#include "edge/batch_wire.hpp"

namespace edgeloop::edge {
namespace {

using Json = nlohmann::json;

std::string IdentityDir(const std::string& state_dir) {
  return state_dir + "/identity";
}

// The server's error message from its JSON error body, or the status alone.
std::string ServerMessage(const httplib::Result& res) {
  if (!res) return "cannot reach the server: " + httplib::to_string(res.error());
  Json j = Json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  std::string msg;
  if (j.is_object() && j.contains("error") && j["error"].is_object())
    msg = j["error"].value("message", "");
  return "HTTP " + std::to_string(res->status) + (msg.empty() ? "" : ": " + msg);
}

Error RequestError(const std::string& what, const httplib::Result& res) {
  return Error(res ? ErrcForStatus(res->status) : Errc::kIo, what + ": " + ServerMessage(res));
}

std::unique_ptr<httplib::SSLClient> MakeClient(const std::string& host, int port,
                                               const DeviceIdentity* id, const std::string& ca_file,
                                               std::chrono::milliseconds timeout) {
  auto c = id ? std::make_unique<httplib::SSLClient>(host, port, id->cert_file, id->key_file)
              : std::make_unique<httplib::SSLClient>(host, port);
  c->set_ca_cert_path(ca_file);
  c->enable_server_certificate_verification(true);
  // The chain to the pinned CA is checked, its dates are not (see the header): a device with
  // no reliable clock must still reach the server that tells it the time.
  X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(c->ssl_context()), X509_V_FLAG_NO_CHECK_TIME);
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout).count();
  c->set_connection_timeout(secs > 0 ? secs : 1);
  c->set_read_timeout(secs > 0 ? secs : 1);
  c->set_write_timeout(secs > 0 ? secs : 1);
  c->set_keep_alive(true);
  // A request goes out in two writes (headers, then body): on a kept-alive connection Nagle's
  // algorithm holds the body back until the server's delayed ACK of the headers (40 ms).
  c->set_tcp_nodelay(true);
  return c;
}

}  // namespace

Errc ErrcForStatus(int status) {
  if (status == 401 || status == 403) return Errc::kPermission;
  if (status == 404) return Errc::kNotFound;
  if (status == 400 || status == 413) return Errc::kInvalidArgument;
  return Errc::kIo;  // 429, 5xx, no answer: try again later
}

Result<DeviceIdentity> LoadIdentity(const std::string& state_dir) {
  const std::string dir = IdentityDir(state_dir);
  // A renewal interrupted between its renames: device.crt.new exists only once both new
  // files were written, so finish it (the key first, if it was not moved yet).
  if (ReadFile(dir + "/device.crt.new", 64 << 10).ok()) {
    if (ReadFile(dir + "/device.key.new", 64 << 10).ok())
      std::rename((dir + "/device.key.new").c_str(), (dir + "/device.key").c_str());
    std::rename((dir + "/device.crt.new").c_str(), (dir + "/device.crt").c_str());
    (void)FsyncDirectory(dir);
  }
  auto text = ReadFile(dir + "/identity.json", 64 << 10);
  if (!text.ok()) return text.error();
  Json j = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("device_id"))
    return Error(Errc::kFormat, dir + "/identity.json: not an identity");
  DeviceIdentity id;
  id.device_id = j.value("device_id", "");
  id.group = j.value("group", "");
  id.key_file = dir + "/device.key";
  id.cert_file = dir + "/device.crt";
  id.ca_file = dir + "/ca.crt";
  EDGELOOP_ASSIGN_OR_RETURN(id.update_public_key_pem, ReadFile(dir + "/update.pub", 64 << 10));
  id.identity_dir = dir;
  if (auto root = ReadFile(dir + "/root.json", kMaxRootBytes); root.ok()) id.root_json = *root;
  for (const auto& f : {id.key_file, id.cert_file, id.ca_file})
    if (!ReadFile(f, 64 << 10).ok()) return Error(Errc::kNotFound, f + ": identity file missing");
  return id;
}

Result<DeviceIdentity> LoadOrEnroll(const EnrollOptions& o) {
  auto existing = LoadIdentity(o.state_dir);
  if (existing.ok() || existing.error().code != Errc::kNotFound) return existing;
  if (o.token.empty())
    return Error(Errc::kInvalidArgument,
                 "not enrolled yet and no server.enrollment_token in the configuration");
  if (o.ca_file.empty())
    return Error(Errc::kInvalidArgument,
                 "not enrolled yet and no server.ca_file (the fleet CA) in the configuration");
  EDGELOOP_ASSIGN_OR_RETURN(ServerUrl url, ParseServerUrl(o.server_url));
  const std::string dir = IdentityDir(o.state_dir);
  EDGELOOP_RETURN_IF_ERROR(MakeDirs(dir));
  // The key is kept from an interrupted attempt: it never left the device.
  auto key = ReadFile(dir + "/device.key", 64 << 10);
  if (!key.ok()) {
    EDGELOOP_ASSIGN_OR_RETURN(std::string fresh, crypto::GenerateTlsKeyPem());
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(dir + "/device.key", fresh, 0600));
    key = fresh;
  }
  EDGELOOP_ASSIGN_OR_RETURN(std::string csr,
                            crypto::CreateCsr(*key, o.device_id.empty() ? "device" : o.device_id));
  Json body = {{"token", o.token}, {"csr", csr}};
  if (!o.device_id.empty()) body["device_id"] = o.device_id;
  auto client = MakeClient(url.host, url.port, nullptr, o.ca_file, std::chrono::seconds(30));
  auto res = client->Post("/v1/enroll", body.dump(), "application/json");
  if (!res || res->status != 200) return RequestError("enrollment at " + o.server_url, res);
  Json a = Json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (!a.is_object()) return Error(Errc::kFormat, "enrollment answer is not JSON");
  for (const char* k : {"device_id", "certificate", "ca_certificate", "update_public_key"})
    if (!a.contains(k) || !a[k].is_string())
      return Error(Errc::kFormat, std::string("enrollment answer lacks ") + k);
  EDGELOOP_RETURN_IF_ERROR(
      WriteFileAtomic(dir + "/device.crt", a["certificate"].get<std::string>()));
  EDGELOOP_RETURN_IF_ERROR(
      WriteFileAtomic(dir + "/ca.crt", a["ca_certificate"].get<std::string>()));
  EDGELOOP_RETURN_IF_ERROR(
      WriteFileAtomic(dir + "/update.pub", a["update_public_key"].get<std::string>()));
  // The root the device pins from now on; it must parse (its signatures are the server's).
  if (a.contains("root") && a["root"].is_string()) {
    auto root = ParseRootMetadata(a["root"].get<std::string>());
    if (!root.ok()) return root.error().WithContext("enrollment answer's root");
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(dir + "/root.json", a["root"].get<std::string>()));
  }
  EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(
      dir + "/identity.json",
      Json{{"device_id", a["device_id"]}, {"group", a.value("group", "")}}.dump() + "\n"));
  return LoadIdentity(o.state_dir);
}

CloudClient::CloudClient(const std::string& server_url, DeviceIdentity identity,
                         std::chrono::milliseconds timeout)
    : id_(std::move(identity)) {
  // The URL was checked when the configuration was read; a bad one fails every call.
  if (auto url = ParseServerUrl(server_url); url.ok()) {
    host_ = url->host;
    port_ = url->port;
  }
  timeout_ = timeout;
  http_ = MakeClient(host_, port_, &id_, id_.ca_file, timeout);
}

CloudClient::~CloudClient() = default;

void CloudClient::ReloadCredentials() {
  std::lock_guard<std::mutex> lock(mu_);
  http_ = MakeClient(host_, port_, &id_, id_.ca_file, timeout_);
}

Result<RenewedCertificate> CloudClient::RenewCertificate(const std::string& csr_pem) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string body = Json{{"csr", csr_pem}}.dump();
  auto res = http_->Post("/v1/renew", body, "application/json");
  bytes_up_ += body.size();
  if (!res || res->status != 200) return RequestError("certificate renewal", res);
  bytes_down_ += res->body.size();
  Json a = Json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (!a.is_object() || !a.contains("certificate") || !a["certificate"].is_string())
    return Error(Errc::kFormat, "renewal answer lacks the certificate");
  RenewedCertificate out;
  out.certificate_pem = a["certificate"];
  out.not_after_ms = a.value("not_after_ms", int64_t{0});
  out.previous_valid_until_ms = a.value("previous_valid_until_ms", int64_t{0});
  return out;
}

Result<std::optional<std::string>> CloudClient::FetchRoot(uint64_t version) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string body;
  int status = 0;
  bool too_long = false;
  auto res = http_->Get(
      "/v1/root/" + std::to_string(version), httplib::Headers{},
      [&](const httplib::Response& r) {
        status = r.status;
        return true;
      },
      [&](const char* data, size_t len) {
        if (body.size() + len > kMaxRootBytes) {
          too_long = true;
          return false;
        }
        body.append(data, len);
        return true;
      });
  bytes_down_ += body.size();
  if (too_long)
    return Error(Errc::kFormat, "root metadata " + std::to_string(version) +
                                    " larger than 64 KiB (endless data refused)");
  if (!res) return RequestError("root metadata", res);
  if (status == 404) return std::optional<std::string>();
  if (status != 200)
    return Error(ErrcForStatus(status), "root metadata: HTTP " + std::to_string(status));
  return std::optional<std::string>(std::move(body));
}

Result<uint64_t> CloudClient::FetchNewestRootVersion() {
  std::string doc;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto res = http_->Get("/v1/root");
    if (res && res->status == 404) return uint64_t{0};
    if (!res || res->status != 200) return RequestError("root metadata", res);
    if (res->body.size() > kMaxRootBytes)
      return Error(Errc::kFormat, "root metadata larger than 64 KiB (endless data refused)");
    bytes_down_ += res->body.size();
    doc = std::move(res->body);
  }
  // Only its version is used here; each version is verified as it is walked to.
  Json j = Json::parse(doc, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("signed") || !j["signed"].is_object() ||
      !j["signed"].contains("version") || !j["signed"]["version"].is_number_unsigned())
    return Error(Errc::kFormat, "GET /v1/root: not root metadata");
  return j["signed"]["version"].get<uint64_t>();
}

Result<std::string> CloudClient::FetchSignedTime(const std::string& nonce) {
  std::lock_guard<std::mutex> lock(mu_);
  auto res = http_->Get("/v1/time?nonce=" + nonce);
  if (!res || res->status != 200) return RequestError("signed time", res);
  if (res->body.size() > 64 * 1024) return Error(Errc::kFormat, "signed time larger than 64 KiB");
  bytes_down_ += res->body.size();
  return res->body;
}

Result<uint64_t> CloudClient::Ingest(const UploadBatch& batch) {
  EDGELOOP_ASSIGN_OR_RETURN(std::string body, EncodeUploadBatch(batch, id_.device_id));
  std::lock_guard<std::mutex> lock(mu_);
  auto res = http_->Post("/v1/ingest", body, "application/octet-stream");
  bytes_up_ += body.size();
  if (!res || res->status != 200) return RequestError("ingest", res);
  return batch.records.back().seq;
}

Status CloudClient::PostJson(const std::string& path, const std::string& body) {
  std::lock_guard<std::mutex> lock(mu_);
  auto res = http_->Post(path, body, "application/json");
  bytes_up_ += body.size();
  if (!res || res->status != 200) return RequestError("POST " + path, res);
  return Status::Ok();
}

Status CloudClient::PostTelemetry(const std::string& snapshot_json) {
  return PostJson("/v1/telemetry", snapshot_json);
}

Status CloudClient::PostEvent(const UpdateEvent& e, int64_t ts_ms) {
  return PostJson("/v1/events", Json{{"phase", UpdatePhaseName(e.phase)},
                                     {"version", e.version},
                                     {"model_version", e.model_version},
                                     {"reason", e.reason},
                                     {"ts_ms", ts_ms}}
                                    .dump());
}

Result<FetchedArtifact> CloudClient::FetchArtifactWhole(const std::string& sha256,
                                                        const std::string& delta_from,
                                                        uint64_t max_bytes) {
  std::string path = "/v1/artifacts/" + sha256;
  if (!delta_from.empty()) path += "?delta_from=" + delta_from;
  int status = 0;
  FetchedArtifact out;
  bool too_long = false;
  std::lock_guard<std::mutex> lock(mu_);
  auto res = http_->Get(
      path, httplib::Headers{},
      [&](const httplib::Response& r) {
        status = r.status;
        out.delta_from = r.get_header_value("X-Edgeloop-Delta-From");
        return status == 200;
      },
      [&](const char* data, size_t len) {
        if (out.body.size() + len > max_bytes) {
          too_long = true;
          return false;
        }
        out.body.append(data, len);
        bytes_down_ += len;
        return true;
      });
  if (too_long) return Error(Errc::kMismatch, "artifact " + sha256 + " is longer than allowed");
  if (status == 404) return Error(Errc::kIo, "artifact " + sha256 + " not on the server yet");
  if (!res) return RequestError("artifact " + sha256, res);
  if (status != 200)
    return Error(Errc::kIo, "artifact " + sha256 + ": HTTP " + std::to_string(status));
  return out;
}

Status CloudArtifactFetcher::Fetch(const UpdateTarget& target, uint64_t offset, uint64_t max_bytes,
                                   const std::function<Status(std::string_view)>& sink) {
  return client_->FetchArtifact(target.sha256, offset, max_bytes,
                                [&](std::string_view chunk) -> Status {
                                  moved_ += chunk.size();
                                  full_equivalent_ += chunk.size();
                                  return sink(chunk);
                                });
}

std::optional<std::string> CloudArtifactFetcher::FetchDelta(const UpdateTarget& target,
                                                            std::string_view installed,
                                                            const std::string& installed_sha256,
                                                            uint64_t* bytes_transferred) {
  // Only the delta attempt here: on any failure the updater falls back to the resumable full
  // download, so FetchWithDelta's own full fallback is not asked for.
  auto outcome = FetchWithDelta(
      installed, target.sha256, target.length,
      [&](const std::string& from) -> Result<FetchedArtifact> {
        if (from.empty()) return Error(Errc::kUnavailable, "no delta: full download instead");
        return client_->FetchArtifactWhole(target.sha256, installed_sha256, target.length + 4096);
      });
  if (!outcome.ok()) return std::nullopt;  // (a server without a smaller delta sends it whole)
  *bytes_transferred = outcome->bytes_transferred;
  moved_ += outcome->bytes_transferred;
  full_equivalent_ += target.length;
  return std::move(outcome->artifact);
}

Result<std::optional<std::string>> CloudClient::FetchDeployment() {
  std::vector<std::string> targets = {id_.device_id};
  if (!id_.group.empty()) targets.push_back("group:" + id_.group);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& t : targets) {
    auto res = http_->Get("/v1/deployments/" + t);
    if (res && res->status == 404) continue;
    if (!res || res->status != 200) return RequestError("deployment " + t, res);
    bytes_down_ += res->body.size();
    return std::optional<std::string>(res->body);
  }
  return std::optional<std::string>();
}

Status CloudClient::FetchArtifact(const std::string& sha256, uint64_t offset, uint64_t max_bytes,
                                  const std::function<Status(std::string_view)>& sink) {
  httplib::Headers headers;
  if (offset > 0) headers.emplace("Range", "bytes=" + std::to_string(offset) + "-");
  int status = 0;
  uint64_t received = 0;
  Status failure;
  std::lock_guard<std::mutex> lock(mu_);
  auto res = http_->Get(
      "/v1/artifacts/" + sha256, headers,
      [&](const httplib::Response& r) {
        status = r.status;
        // A server that ignores the range would send the file from its start.
        return offset > 0 ? status == 206 : status == 200;
      },
      [&](const char* data, size_t len) {
        if (received + len > max_bytes) {
          failure = Error(Errc::kMismatch,
                          "artifact is longer than the metadata says (endless data refused)");
          return false;
        }
        received += len;
        bytes_down_ += len;
        failure = sink(std::string_view(data, len));
        return failure.ok();
      });
  if (!failure.ok()) return failure;
  if (status == 404) return Error(Errc::kIo, "artifact " + sha256 + " not on the server yet");
  if (!res) return RequestError("artifact " + sha256, res);
  if (status != 200 && status != 206)
    return Error(Errc::kIo, "artifact " + sha256 + ": HTTP " + std::to_string(status));
  return Status::Ok();
}

}  // namespace edgeloop::edge
