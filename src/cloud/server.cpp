#include "cloud/server.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include "cloud/artifact_delta.hpp"
#include "cloud/migrations.hpp"
#ifdef EDGELOOP_HAS_MQTT
#include "cloud/mqtt_ingest.hpp"
#endif
#include "cloud/server_impl.hpp"
#include "common/crypto.hpp"
#include "common/file.hpp"
#include "common/hash.hpp"
#include "common/log.hpp"
#include "common/mqtt_protocol.hpp"
#include "common/update_metadata.hpp"
#include "common/url.hpp"

namespace edgeloop::cloud {
namespace {

// Loads a PEM certificate or key into the SSL context.
bool ConfigureTls(SSL_CTX& ctx, const FleetKeys& keys) {
  auto bio_of = [](const std::string& pem) {
    return std::unique_ptr<BIO, decltype(&BIO_free)>(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  };
  auto cert_bio = bio_of(keys.server_tls.cert_pem);
  auto key_bio = bio_of(keys.server_tls.key_pem);
  auto ca_bio = bio_of(keys.ca.cert_pem);
  X509* cert = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
  X509* ca = PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr);
  bool ok = cert && key && ca && SSL_CTX_use_certificate(&ctx, cert) == 1 &&
            SSL_CTX_use_PrivateKey(&ctx, key) == 1 &&
            X509_STORE_add_cert(SSL_CTX_get_cert_store(&ctx), ca) == 1 &&
            SSL_CTX_add_client_CA(&ctx, ca) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  X509_free(ca);
  if (!ok) return false;
  SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // A client certificate is requested from everyone and, when sent, must chain to the fleet
  // CA (or the handshake fails). It is optional at the TLS layer because operators and
  // enrolling devices have none; device endpoints require it in DeviceIdentity().
  SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, nullptr);
  // With peer verification on, OpenSSL refuses to resume a session (alert "internal error")
  // unless a session id context is set. Clients that resume — HAProxy's TLS health checks,
  // curl — would see every other handshake fail, and a load balancer would mark a healthy
  // replica down. A resumed session carries its verified client certificate, and every
  // device request still checks it against the device table.
  static constexpr unsigned char kSessionContext[] = "edgeloop-server";
  if (SSL_CTX_set_session_id_context(&ctx, kSessionContext, sizeof(kSessionContext) - 1) != 1)
    return false;
  return true;
}

}  // namespace

void Server::Impl::HandleEnroll(const http::Request& req, http::Response& res) {
  auto body = JsonBody(req, res);
  if (!body) return;
  std::string token = JsonString(*body, "token");
  std::string csr = JsonString(*body, "csr");
  std::string device = JsonString(*body, "device_id");
  if (token.empty() || csr.empty()) return SendError(res, 400, "enroll needs token and csr");
  std::string cert_pem, group;
  const std::string token_hash = Sha256Hex(token);
  Status st = db->Transaction([&]() -> Status {
    EDGELOOP_ASSIGN_OR_RETURN(EnrollmentTokenRow t, fleet->GetEnrollmentToken(token_hash));
    if (t.used) return Error(Errc::kPermission, "enrollment token already used");
    if (t.expires_ms < NowMs()) return Error(Errc::kPermission, "enrollment token expired");
    if (!t.device_id.empty()) {
      if (!device.empty() && device != t.device_id)
        return Error(Errc::kPermission, "enrollment token is for device " + t.device_id);
      device = t.device_id;
    }
    group = t.group;
    if (!IsName(device))
      return Error(Errc::kInvalidArgument, "device_id must be 1-128 of [A-Za-z0-9._-]");
    if (device == mqtt::kIngestIdentity)
      return Error(Errc::kInvalidArgument, std::string("device_id ") + mqtt::kIngestIdentity +
                                               " is reserved for the MQTT ingest workers");
    uint64_t serial = 0;
    int64_t not_after_ms = 0;
    EDGELOOP_ASSIGN_OR_RETURN(cert_pem,
                              IssueDeviceCertificate(csr, device, &serial, &not_after_ms));
    EDGELOOP_RETURN_IF_ERROR(fleet->MarkEnrollmentTokenUsed(token_hash));
    EDGELOOP_RETURN_IF_ERROR(fleet->ReplaceDevice({device, group, serial, false, NowMs()}));
    return trust->RecordEnrollment(device, serial, not_after_ms);
  });
  if (!st.ok()) return SendError(res, st.error());
  // The root metadata the device pins (api_trust.cpp); agents from before it use the key.
  Json answer = {{"device_id", device},
                 {"group", group},
                 {"certificate", cert_pem},
                 {"ca_certificate", keys.ca.cert_pem},
                 {"update_public_key", SigningPublicKey()}};
  auto newest = trust->NewestRootVersion();
  auto root =
      newest.ok() ? trust->Root(*newest) : Result<std::optional<std::string>>(newest.error());
  if (root.ok() && *root) answer["root"] = **root;
  res.set_content(answer.dump(), "application/json");
}

void Server::Impl::HandleDeviceLabels(const http::Request& req, http::Response& res) {
  auto device = DeviceIdentity(req, res);
  if (!device) return;
  wire::LabelBatch batch;
  if (!batch.ParseFromString(req.body)) return SendError(res, 400, "body is not a LabelBatch");
  uint64_t updated = 0, unknown = 0;
  for (const auto& l : batch.labels()) {
    if (!l.device_id().empty() && l.device_id() != *device)
      return SendError(res, 403, "device " + *device + " cannot label samples of " + l.device_id());
    Status st = store->SetLabel(*device, l.sequence(), l.label(), l.label_source());
    if (st.ok())
      ++updated;
    else if (st.error().code == Errc::kNotFound)
      ++unknown;
    else
      return SendError(res, 500, st.error().message);
  }
  res.set_content(Json{{"updated", updated}, {"unknown", unknown}}.dump(), "application/json");
}

Result<std::string> Server::Impl::Deploy(UpdateMetadata m, int64_t ttl_seconds) {
  auto artifact = ReadFile(options.data_dir + "/artifacts/" + m.target.sha256);
  if (m.target.sha256.size() != 64 || !artifact.ok())
    return Error(Errc::kInvalidArgument, "sha256 must name an uploaded artifact");
  if (ttl_seconds <= 0) return Error(Errc::kInvalidArgument, "ttl_seconds must be positive");
  m.target.length = artifact->size();
  m.expires_unix = NowMs() / 1000 + ttl_seconds;
  std::string doc;
  Status st = db->Transaction([&]() -> Status {
    EDGELOOP_ASSIGN_OR_RETURN(uint64_t current, fleet->DeploymentVersion(m.deployment_target));
    m.version = current + 1;
    EDGELOOP_ASSIGN_OR_RETURN(doc, SignUpdateMetadata(m, SigningKey()));
    return fleet->PutDeployment(m.deployment_target, m.version, doc);
  });
  if (!st.ok()) return st.error();
  if (mqtt_ingest) {
    std::lock_guard<std::mutex> lock(push_mu);
    push_pending.insert(m.deployment_target);
  }
  return doc;
}

void Server::Impl::FlushDeploymentPushes() {
#ifdef EDGELOOP_HAS_MQTT
  if (!mqtt_ingest || mqtt_ingest->connected_workers() == 0) return;  // kept for later
  std::set<std::string> targets;
  {
    std::lock_guard<std::mutex> lock(push_mu);
    targets.swap(push_pending);
  }
  for (const auto& t : targets) {
    if (PushDeployment(t)) continue;
    std::lock_guard<std::mutex> lock(push_mu);
    push_pending.insert(t);
  }
#endif
}

bool Server::Impl::PushDeployment(const std::string& target) {
#ifdef EDGELOOP_HAS_MQTT
  if (!mqtt_ingest) return true;
  const bool group = target.rfind("group:", 0) == 0;
  std::vector<std::string> devices = {target};
  if (group) {
    auto members = fleet->ResolveTarget(target);
    if (!members.ok()) {
      BackgroundFailure("update_push", members.error(), {"target", target});
      return false;
    }
    devices = std::move(*members);
  }
  auto group_doc = group ? fleet->Deployment(target)
                         : Result<std::optional<std::string>>(std::optional<std::string>());
  if (!group_doc.ok()) {
    BackgroundFailure("update_push", group_doc.error(), {"target", target});
    return false;
  }
  uint64_t pushed = 0, failed = 0;
  std::string first_error;
  for (const auto& d : devices) {
    // A device's own deployment comes before its group's (as GET /v1/deployments answers).
    auto own = fleet->Deployment(d);
    if (!own.ok()) {
      BackgroundFailure("update_push", own.error(), {"device", d});
      return false;
    }
    if (group && *own) continue;
    const std::optional<std::string>& doc = group ? *group_doc : *own;
    if (!doc) continue;
    Status sent = mqtt_ingest->Publish(mqtt::UpdateTopic(d), *doc, /*retain=*/true);
    metrics.CountUpdatePush(sent.ok());
    if (sent.ok()) {
      ++pushed;
    } else {
      ++failed;
      if (first_error.empty()) first_error = sent.error().message;
    }
  }
  if (failed > 0)
    log::Warn("update_push_failed",
              {{"target", target},
               {"pushed", pushed},
               {"failed", failed},
               {"error", first_error},
               {"hint",
                "pushed again once an ingest worker is connected; devices also poll "
                "GET /v1/deployments at update.poll_s"}});
  else
    log::Info("update_pushed", {{"target", target}, {"devices", pushed}});
  return failed == 0;
#else
  (void)target;
  return true;
#endif
}

// The matched route pattern as a metrics label: each group becomes ":id"
// ("/v1/devices/([A-Za-z0-9._-]+)/labels" → "/v1/devices/:id/labels"). Requests that
// matched no route share one label, so a client cannot make a series per path it invents.
std::string RouteLabel(const std::string& pattern) {
  if (pattern.empty()) return "unmatched";
  std::string out;
  int depth = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      if (depth == 0) out += pattern[i + 1];
      ++i;
    } else if (c == '(') {
      if (depth++ == 0) out += ":id";
    } else if (c == ')') {
      depth = std::max(0, depth - 1);
    } else if (depth == 0) {
      out += c;
    }
  }
  return out;
}

// Gauges read from the database at scrape time: devices, runs and rollouts by status.
std::string Server::Impl::ScrapeGauges() {
  std::string out;
  auto emit = [&](const char* name, const char* help,
                  const Result<std::vector<std::pair<std::string, int64_t>>>& by) {
    if (!by.ok()) return BackgroundFailure("metrics_scrape", by.error());
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n";
    for (const auto& [status, n] : *by)
      out += std::string(name) + "{status=\"" + status + "\"} " + std::to_string(n) + "\n";
  };
  emit("edgeloop_pipeline_runs", "Pipeline runs by status (queued is the queue depth).",
       pipelines->CountByStatus());
  emit("edgeloop_rollouts", "Rollouts by status.", rollouts->CountByStatus());
  out +=
      "# HELP edgeloop_leader 1 while this replica holds the leader lease and does the "
      "background work (triggers, runs, rollout ticks).\n"
      "# TYPE edgeloop_leader gauge\nedgeloop_leader{replica=\"" +
      replica_id + "\"} " + (leader ? "1" : "0") + "\n";
  // The listener: connections held and requests being handled now, and since the start the
  // connections refused at accept and closed for missing a deadline.
  const http::ListenerStats conn = http->stats();
  out +=
      "# HELP edgeloop_http_connections Connections open now.\n"
      "# TYPE edgeloop_http_connections gauge\nedgeloop_http_connections " +
      std::to_string(conn.open) + "\n";
  out +=
      "# HELP edgeloop_http_in_flight Requests being handled now.\n"
      "# TYPE edgeloop_http_in_flight gauge\nedgeloop_http_in_flight " +
      std::to_string(conn.in_flight) + "\n";
  out +=
      "# HELP edgeloop_http_connections_refused_total Connections closed at accept (limits).\n"
      "# TYPE edgeloop_http_connections_refused_total counter\n"
      "edgeloop_http_connections_refused_total " +
      std::to_string(conn.refused) + "\n";
  out +=
      "# HELP edgeloop_http_connections_timed_out_total Connections closed at a deadline.\n"
      "# TYPE edgeloop_http_connections_timed_out_total counter\n"
      "edgeloop_http_connections_timed_out_total " +
      std::to_string(conn.timed_out) + "\n";
#ifdef EDGELOOP_HAS_MQTT
  if (mqtt_ingest)
    out +=
        "# HELP edgeloop_mqtt_ingest_workers_connected Ingest workers connected to the broker.\n"
        "# TYPE edgeloop_mqtt_ingest_workers_connected gauge\n"
        "edgeloop_mqtt_ingest_workers_connected " +
        std::to_string(mqtt_ingest->connected_workers()) +
        "\n"
        "# HELP edgeloop_mqtt_ingest_queued Messages taken from the broker, waiting for a "
        "handler.\n"
        "# TYPE edgeloop_mqtt_ingest_queued gauge\n"
        "edgeloop_mqtt_ingest_queued " +
        std::to_string(mqtt_ingest->queued()) +
        "\n"
        "# HELP edgeloop_mqtt_acks_published_total Acks handed to the broker connection.\n"
        "# TYPE edgeloop_mqtt_acks_published_total counter\n"
        "edgeloop_mqtt_acks_published_total " +
        std::to_string(mqtt_ingest->acks_published()) + "\n";
#endif
  auto devices = fleet->Fleet();
  if (devices.ok()) {
    std::map<std::string, int64_t> by;
    for (const auto& d : *devices)
      ++by[d.revoked ? "revoked" : d.model_version.empty() ? "enrolled" : "reporting"];
    out += "# HELP edgeloop_devices Devices by status.\n# TYPE edgeloop_devices gauge\n";
    for (const auto& [k, n] : by)
      out += "edgeloop_devices{status=\"" + k + "\"} " + std::to_string(n) + "\n";
  }
  return out;
}

// Every answered request is counted; 4xx and 5xx are logged with who asked (the device's
// certificate name or a short hash of the bearer token) and the error message.
void Server::Impl::OnRequestDone(const http::Request& req, const http::Response& res,
                                 const std::string& route, double seconds) {
  metrics.ObserveRequest(req.method, route, res.status, seconds);
  if (res.status < 400) return;
  std::string who;
  if (req.ssl != nullptr) {
    std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(req.ssl), X509_free);
    if (cert) who = "device:" + CertificateCommonName(cert.get()).value_or("");
  }
  const std::string auth = req.get_header_value("Authorization");
  if (who.empty() && auth.rfind("Bearer ", 0) == 0)
    who = "token:" + Sha256Hex(auth.substr(7)).substr(0, 12);
  Json body = Json::parse(res.body, nullptr, false);
  std::string message;
  if (body.is_object() && body.contains("error") && body["error"].is_object())
    message = body["error"].value("message", "");
  log::Write(res.status >= 500 ? log::Level::kError : log::Level::kWarn, "http_error",
             {{"method", req.method},
              {"path", req.path},
              {"status", res.status},
              {"client", req.remote_addr},
              {"who", who.empty() ? "anonymous" : who},
              {"error", message}});
}

// What the HTTP layer refused before any route ran, in words a client can act on.
std::string Server::Impl::TransportErrorText(const http::Request& req, int status,
                                             const std::string& allowed) const {
  const bool sends_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
  switch (status) {
    case 400:
      if (sends_body && !req.has_header("Content-Length") &&
          req.get_header_value("Transfer-Encoding").find("chunked") == std::string::npos)
        return req.method + " " + req.path +
               " has no body: send one with a Content-Length (for example -d '{}')";
      return "malformed HTTP request";
    case 404:
      return "no route for " + req.method + " " + req.path;
    case 405:
      return req.method + " is not allowed on " + req.path + "; it takes " + allowed;
    case 413:
      return "request body larger than the server's limit of " +
             std::to_string(options.max_body_bytes) + " bytes (max_body_bytes)";
    case 431:
      return "request line and headers larger than the server's limit of " +
             std::to_string(options.connections.max_header_bytes) + " bytes (max_header_bytes)";
    case 500:
      return "internal error in " + req.method + " " + req.path + " (the server log has it)";
    default:
      return "HTTP status " + std::to_string(status);
  }
}

void Server::Impl::Routes() {
  auto& s = *http;
  s.SetErrorBody([this](const http::Request& req, http::Response& res) {
    SendError(res, res.status, TransportErrorText(req, res.status, res.get_header_value("Allow")));
  });
  s.SetOnDone([this](const http::Request& req, const http::Response& res,
                     const std::string& pattern,
                     double seconds) { OnRequestDone(req, res, RouteLabel(pattern), seconds); });
  // Liveness: the process answers. Readiness: the database takes a write and the data
  // folder takes an fsynced file, so a load balancer stops sending work to a replica that
  // cannot store it.
  // It also names the replica and whether it holds the leader lease (does background work).
  s.Get("/v1/health", [this](const http::Request&, http::Response& res) {
    SendJson(res, Json{{"status", "ok"}, {"replica", replica_id}, {"leader", leader.load()}});
  });
  s.Get("/v1/ready", [this](const http::Request&, http::Response& res) {
    Json problems = Json::array();
    if (Status st =
            db->Exec("UPDATE readiness SET checked_ms = ? WHERE id = 1", {std::to_string(NowMs())});
        !st.ok())
      problems.push_back("database: " + st.error().message);
    if (Status st = WriteFileAtomic(options.data_dir + "/.ready-check", std::to_string(NowMs()));
        !st.ok())
      problems.push_back("data folder: " + st.error().message);
    if (problems.empty()) return SendJson(res, Json{{"status", "ready"}});
    SendJson(res, Json{{"status", "not ready"}, {"problems", problems}}, 503);
  });
  s.Get("/v1/metrics", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    res.set_content(metrics.Exposition(ScrapeGauges()), "text/plain; version=0.0.4");
  });
  s.Post("/v1/enroll",
         [this](const http::Request& req, http::Response& res) { HandleEnroll(req, res); });
  s.Post("/v1/ingest",
         [this](const http::Request& req, http::Response& res) { HandleIngest(req, res); });
  s.Post("/v1/labels",
         [this](const http::Request& req, http::Response& res) { HandleDeviceLabels(req, res); });
  s.Post("/v1/tokens", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "admin")) return;
    auto body = JsonBody(req, res);
    if (!body) return;
    std::string scope = JsonString(*body, "scope");
    if (ScopeRank(scope) == 0) return SendError(res, 400, "scope must be read, write or admin");
    std::string token = crypto::RandomHex(24);
    Status st = fleet->InsertOperatorToken(Sha256Hex(token), scope, NowMs());
    if (!st.ok()) return SendError(res, st.error());
    res.set_content(Json{{"token", token}, {"scope", scope}}.dump(), "application/json");
  });
  // The scope of the caller's own token: what the dashboard enables (its buttons for admin
  // actions stay disabled below admin; the server checks every action regardless).
  s.Get("/v1/tokens/self", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    auto scope = fleet->OperatorScope(Sha256Hex(req.get_header_value("Authorization").substr(7)));
    if (!scope.ok()) return SendError(res, scope.error());
    SendJson(res, Json{{"scope", scope->value_or("")}});
  });
  s.Post("/v1/enrollment-tokens", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "admin")) return;
    auto body = JsonBody(req, res);
    if (!body) return;
    std::string device = JsonString(*body, "device_id");
    std::string group = JsonString(*body, "group");
    // Both end up in routes (/v1/deployments/group:NAME) and MQTT topics: refused here, not
    // found later as a device that can never get its group's updates. Empty: any device, no
    // group.
    if (!device.empty() && !IsName(device))
      return SendError(res, 400, "device_id must be up to 128 of [A-Za-z0-9._-]");
    if (!group.empty() && !IsName(group, 64))
      return SendError(res, 400, "group must be up to 64 of [A-Za-z0-9._-]");
    int64_t ttl = body->value("ttl_seconds", int64_t{3600});
    if (ttl <= 0 || ttl > 30 * 86400) return SendError(res, 400, "ttl_seconds must be 1..2592000");
    std::string token = crypto::RandomHex(24);
    int64_t expires = NowMs() + ttl * 1000;
    Status st = fleet->InsertEnrollmentToken({Sha256Hex(token), device, group, expires, false});
    if (!st.ok()) return SendError(res, st.error());
    res.set_content(Json{{"token", token}, {"expires_ms", expires}}.dump(), "application/json");
  });
  s.Get("/v1/devices", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    auto devices = fleet->Devices();
    if (!devices.ok()) return SendError(res, devices.error());
    Json out = Json::array();
    for (const auto& d : *devices) {
      // The certificate's expiry (0: enrolled before it was recorded), for "expires in N days".
      auto cert = trust->Certificate(d.device_id);
      int64_t not_after_ms = cert.ok() && *cert ? (*cert)->not_after_ms : 0;
      out.push_back({{"device_id", d.device_id},
                     {"group", d.group},
                     {"revoked", d.revoked},
                     {"enrolled_ms", d.enrolled_ms},
                     {"cert_not_after_ms", not_after_ms}});
    }
    res.set_content(Json{{"devices", out}}.dump(), "application/json");
  });
  s.Post(R"(/v1/devices/([A-Za-z0-9._-]+)/revoke)", [this](const http::Request& req,
                                                           http::Response& res) {
    if (!RequireScope(req, res, "admin")) return;
    std::string device = req.matches[1];
    Status st = fleet->Revoke(device);
    if (!st.ok()) return SendError(res, st.error());
    res.set_content(Json{{"device_id", device}, {"revoked", true}}.dump(), "application/json");
  });
  // Artifacts are content-addressed (sha256); GET honours HTTP Range so downloads resume.
  s.Post("/v1/artifacts", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "write")) return;
    std::string sha = Sha256Hex(req.body);
    std::string dir = options.data_dir + "/artifacts";
    Status st = MakeDirs(dir);
    if (st.ok()) st = WriteFileAtomic(dir + "/" + sha, req.body);
    if (!st.ok()) return SendError(res, st.error());
    res.set_content(Json{{"sha256", sha}, {"length", req.body.size()}}.dump(), "application/json");
  });
  s.Get(R"(/v1/artifacts/([0-9a-f]{64}))", [this](const http::Request& req, http::Response& res) {
    if (req.has_header("Authorization")) {
      if (!RequireScope(req, res, "read")) return;
    } else if (!DeviceIdentity(req, res)) {
      return;
    }
    std::string sha = req.matches[1];
    auto data = ReadFile(options.data_dir + "/artifacts/" + sha);
    if (!data.ok()) return SendError(res, 404, "no artifact " + sha);
    // ?delta_from=<installed sha256>: a zstd patch against it when that is smaller. The
    // device verifies the patched result against the signed metadata's hash and length.
    std::string from = req.get_param_value("delta_from");
    if (!from.empty() && !IsSha256Hex(from))
      return SendError(res, 400, "delta_from must be a lower-case hex sha256");
    auto delta = ArtifactDelta(options.data_dir + "/artifacts", from, sha, *data);
    if (delta) {
      res.set_header("X-Edgeloop-Delta-From", from);
      res.set_header("X-Edgeloop-Target-Sha256", sha);
      res.set_header("X-Edgeloop-Target-Length", std::to_string(data->size()));
      return res.set_content(std::move(*delta), "application/zstd");
    }
    res.set_content(std::move(*data), "application/octet-stream");
  });
  // Signed update metadata per deployment target: a device id or "group:<name>". The
  // metadata version only ever grows, so a device can refuse rollbacks.
  s.Post(R"(/v1/deployments/([A-Za-z0-9._:-]+))",
         [this](const http::Request& req, http::Response& res) {
           if (!RequireScope(req, res, "admin")) return;
           auto body = JsonBody(req, res);
           if (!body) return;
           UpdateMetadata m;
           m.deployment_target = req.matches[1];
           m.target.artifact_name = JsonString(*body, "name");
           m.target.model_version = JsonString(*body, "model_version");
           m.target.sha256 = JsonString(*body, "sha256");
           if (body->contains("golden")) {
             auto golden = GoldenCasesFromJson((*body)["golden"].dump());
             if (!golden.ok()) return SendError(res, golden.error());
             m.golden = std::move(*golden);
           }
           auto doc = Deploy(m, body->value("ttl_seconds", int64_t{7 * 86400}));
           if (!doc.ok()) return SendError(res, doc.error());
           FlushDeploymentPushes();
           res.set_content(*doc, "application/json");
         });
  s.Get(R"(/v1/deployments/([A-Za-z0-9._:-]+))",
        [this](const http::Request& req, http::Response& res) {
          std::string target = req.matches[1];
          if (req.has_header("Authorization")) {
            if (!RequireScope(req, res, "read")) return;
          } else {
            auto device = DeviceIdentity(req, res);
            if (!device) return;
            // A device reads its own deployment and its group's, nobody else's.
            auto row = fleet->GetDevice(*device);
            bool own = target == *device ||
                       (row.ok() && !row->group.empty() && target == "group:" + row->group);
            if (!own) return SendError(res, 403, "device " + *device + " cannot read " + target);
          }
          auto doc = fleet->Deployment(target);
          if (!doc.ok()) return SendError(res, doc.error());
          if (!*doc) return SendError(res, 404, "no deployment for " + target);
          res.set_content(**doc, "application/json");
        });
  s.Get("/v1/samples/counts", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "read")) return;
    std::string by = req.has_param("by") ? req.get_param_value("by") : "device";
    auto counts = store->Count(by);
    if (!counts.ok()) return SendError(res, counts.error());
    Json out = Json::object();
    uint64_t total = 0;
    for (const auto& c : *counts) {
      out[c.key] = c.count;
      total += c.count;
    }
    res.set_content(Json{{"by", by}, {"counts", out}, {"total", total}}.dump(), "application/json");
  });
  s.Post("/v1/samples/label", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "write")) return;
    auto body = JsonBody(req, res);
    if (!body) return;
    auto seq = body->find("sequence");
    auto label = body->find("label");
    if (seq == body->end() || !seq->is_number_unsigned() || label == body->end() ||
        !label->is_number_integer())
      return SendError(res, 400, "label needs device_id, sequence and label");
    Status st = store->SetLabel(JsonString(*body, "device_id"), seq->get<uint64_t>(),
                                label->get<int32_t>(), wire::LABEL_SOURCE_HUMAN);
    if (!st.ok()) return SendError(res, st.error());
    res.set_content(R"({"updated":1})", "application/json");
  });
  TrustRoutes();
  RegistryRoutes();
  DatasetRoutes();
  FleetRoutes();
  PipelineRoutes();
  RolloutRoutes();
  DashboardRoutes();
}

Status Server::Impl::StartMqttIngest() {
  if (options.mqtt_broker.empty()) return Status::Ok();
#ifdef EDGELOOP_HAS_MQTT
  MqttIngestOptions mo;
  EDGELOOP_ASSIGN_OR_RETURN(mo.broker, ParseHostPort(options.mqtt_broker, "--mqtt-broker"));
  mo.ca_file = options.ca_cert_file.empty() ? options.data_dir + "/ca.crt" : options.ca_cert_file;
  mo.cert_file = options.mqtt_cert_file;
  mo.key_file = options.mqtt_key_file;
  if (mo.cert_file.empty() != mo.key_file.empty())
    return Error(Errc::kInvalidArgument, "--mqtt-cert and --mqtt-key go together");
  if (mo.cert_file.empty()) {
    // Reissued at every start, like the HTTPS certificate: it follows the CA.
    EDGELOOP_ASSIGN_OR_RETURN(auto pair, IssueClientCertificate(keys.ca, mqtt::kIngestIdentity));
    mo.cert_file = options.data_dir + "/mqtt-ingest.crt";
    mo.key_file = options.data_dir + "/mqtt-ingest.key";
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(mo.key_file, pair.key_pem, 0600));
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(mo.cert_file, pair.cert_pem, 0644));
  }
  mo.workers = options.mqtt_workers;
  mo.handler_threads = options.mqtt_handlers;
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  mo.client_id_prefix = std::string(mqtt::kIngestIdentity) + "-" + host + "-" +
                        std::to_string(getpid()) + "-" + crypto::RandomHex(3);
  auto samples = [this](const std::string& device, std::string_view body) {
    IngestOutcome o = IngestFromBroker(device, body);
    mqtt::Ack ack;
    if (o.status == 200) {
      ack.acked_through = o.last_seq;
      ack.accepted = o.accepted;
      ack.duplicates = o.duplicates;
    } else {
      ack.error = o.message;
      ack.status = o.status;
    }
    return ack;
  };
  auto control = [this](const std::string& device, const std::string& leaf, std::string_view body) {
    return ControlFromBroker(device, leaf, body);
  };
  auto ingest = MqttIngest::Start(mo, samples, control);
  if (!ingest.ok()) return ingest.error();
  mqtt_ingest = std::move(*ingest);
  log::Info("mqtt_ingest",
            {{"broker", mo.broker.ToString()}, {"workers", mo.workers}, {"cert", mo.cert_file}});
  return Status::Ok();
#else
  return Error(Errc::kInvalidArgument,
               "--mqtt-broker: this server was built without MQTT (EDGELOOP_WITH_MQTT=OFF)");
#endif
}

Result<std::unique_ptr<Server>> Server::Create(const ServerOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  EDGELOOP_RETURN_IF_ERROR(MakeDirs(options.data_dir));
  if (options.replica_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    impl->replica_id = std::string(host) + ":" + std::to_string(getpid());
  } else if (options.replica_id.size() > 128 ||
             options.replica_id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST"
                                                  "UVWXYZ0123456789._:-") != std::string::npos) {
    return Error(Errc::kInvalidArgument,
                 "--replica-id must be 1-128 of [A-Za-z0-9._:-], got '" + options.replica_id + "'");
  } else {
    impl->replica_id = options.replica_id;
  }
  std::string url =
      options.db_url.empty() ? "sqlite:" + options.data_dir + "/edgeloop.db" : options.db_url;
  const bool shared_database =
      url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
  // SQLite: one server per data folder. PostgreSQL: replicas may share the folder (samples,
  // artifacts, keys); the database and the leader lease keep them apart.
  if (!shared_database) {
    EDGELOOP_ASSIGN_OR_RETURN(FileLock folder, LockDataFolder(options.data_dir));
    impl->folder_lock.emplace(std::move(folder));
  }
  // Replicas started together on one folder create the CA, the signing key and the admin
  // token once: the first under this lock creates them, the others read them.
  std::optional<FileLock> keys_lock;
  {
    EDGELOOP_ASSIGN_OR_RETURN(FileLock held,
                              FileLock::Acquire(options.data_dir + "/keys.lock", true));
    keys_lock.emplace(std::move(held));
  }
  EDGELOOP_ASSIGN_OR_RETURN(
      impl->keys, LoadOrCreateFleetKeys(options.data_dir, options.host, options.ca_cert_file,
                                        options.ca_key_file, options.signing_key_file));
  EDGELOOP_ASSIGN_OR_RETURN(impl->db, OpenDatabase(url));
  EDGELOOP_ASSIGN_OR_RETURN(int64_t schema, Migrate(*impl->db));
  log::Info("schema", {{"version", schema}, {"database", impl->db->Dialect()}});
  if (impl->db->Dialect() == "postgresql") {
    EDGELOOP_ASSIGN_OR_RETURN(
        impl->lease, OpenPostgresLease(url, kBackgroundLeaseKey,
                                       std::max(2000, 2 * options.background_interval_ms)));
  } else {
    impl->lease = SoleServerLease();
  }
  log::Info("replica",
            {{"replica", impl->replica_id},
             {"database", impl->db->Dialect()},
             {"lease", impl->db->Dialect() == "postgresql" ? "postgresql advisory lock"
                                                           : "sole server of the data folder"}});
  impl->rollouts = std::make_unique<RolloutStore>(*impl->db);
  impl->fleet = std::make_unique<FleetStore>(*impl->db);
  impl->trust = std::make_unique<TrustStore>(*impl->db);
  EDGELOOP_RETURN_IF_ERROR(impl->EnsureRootMetadata());
  impl->registry = std::make_unique<RegistryStore>(*impl->db);
  impl->pipelines = std::make_unique<PipelineStore>(*impl->db);
  EDGELOOP_ASSIGN_OR_RETURN(impl->store,
                            SampleStore::Open(*impl->db, options.data_dir + "/samples"));
  // The first admin token, readable only by the server's user.
  const std::string token_path = options.data_dir + "/admin.token";
  auto existing = ReadFile(token_path, 4096);
  if (existing.ok()) {
    impl->admin_token = *existing;
  } else {
    impl->admin_token = crypto::RandomHex(24);
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(token_path, impl->admin_token, 0600));
  }
  // Registered idempotently, so a PostgreSQL database shared by replicas holds it once.
  EDGELOOP_ASSIGN_OR_RETURN(auto admin_scope,
                            impl->fleet->OperatorScope(Sha256Hex(impl->admin_token)));
  if (!admin_scope)
    EDGELOOP_RETURN_IF_ERROR(
        impl->fleet->InsertOperatorToken(Sha256Hex(impl->admin_token), "admin", NowMs()));
  keys_lock.reset();  // the keys and the admin token exist now
  const FleetKeys& keys = impl->keys;
  impl->http =
      std::make_unique<http::Listener>(options.connections, options.max_body_bytes,
                                       [&keys](SSL_CTX& ctx) { return ConfigureTls(ctx, keys); });
  impl->Routes();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  Stop();
}

Status Server::Start() {
  auto& im = *impl_;
  EDGELOOP_RETURN_IF_ERROR(im.http->Bind(im.options.host, im.options.port));
  im.port = im.http->port();
  im.http->Start();
  im.StartWorkers();
  return im.StartMqttIngest();
}

Status Server::Run() {
  EDGELOOP_RETURN_IF_ERROR(Start());
  std::unique_lock<std::mutex> lock(impl_->run_mu);
  impl_->run_cv.wait(lock, [this] { return impl_->stopped; });
  return Status::Ok();
}

bool Server::Stop() {
  if (!impl_) return true;
  impl_->mqtt_ingest.reset();  // no new batches; the one in hand is stored and acked first
  impl_->StopWorkers();
  const bool clean = impl_->http->Stop(impl_->options.shutdown_deadline_ms);
  {
    std::lock_guard<std::mutex> lock(impl_->run_mu);
    impl_->stopped = true;
  }
  impl_->run_cv.notify_all();
  return clean;
}

int Server::port() const {
  return impl_->port;
}
const std::string& Server::ca_cert_pem() const {
  return impl_->keys.ca.cert_pem;
}
const std::string& Server::signing_public_key_pem() const {
  return impl_->keys.signing_public_key_pem;
}
const std::string& Server::admin_token() const {
  return impl_->admin_token;
}

}  // namespace edgeloop::cloud
