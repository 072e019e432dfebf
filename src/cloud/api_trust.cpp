// Route module: the fleet's credentials over time (docs/api.md, "Credentials and update
// keys").
//   POST /v1/renew           a device renews its certificate with a CSR, authenticated by the
//                            certificate it holds; the old serial stays valid for the grace
//   GET  /v1/root[/<N>]      the newest root metadata, or version N (public, as in TUF)
//   POST /v1/root            an operator publishes root N+1 (signed offline, checked here as a
//                            device would check it); a new targets role switches the signing key
//   POST /v1/keys/targets    the server makes (or shows) the pending targets key for a rotation
//   GET  /v1/time?nonce=hex  the server's time, signed with the targets key, for devices
//                            without a reliable clock
// Each refusal is a 4xx with a JSON body, a log line and edgeloop_trust_events_total.
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include "cloud/server_impl.hpp"
#include "common/crypto.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "common/root_metadata.hpp"

namespace edgeloop::cloud {
namespace {

// The serial of the client certificate the request came with (DeviceIdentity checked it).
uint64_t PresentedSerial(const http::Request& req) {
  std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(req.ssl), X509_free);
  uint64_t serial = 0;
  if (cert) ASN1_INTEGER_get_uint64(&serial, X509_get0_serialNumber(cert.get()));
  return serial;
}

bool IsHex(const std::string& s) {
  return s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The update metadata document re-signed with key_pem (same "signed" part, same version).
Result<std::string> Resign(const std::string& document, const std::string& key_pem) {
  Json doc = Json::parse(document, nullptr, false);
  if (!doc.is_object() || !doc.contains("signed"))
    return Error(Errc::kFormat, "stored deployment is not signed metadata");
  const std::string canonical = doc["signed"].dump();
  EDGELOOP_ASSIGN_OR_RETURN(std::string sig, crypto::Ed25519Sign(key_pem, canonical));
  EDGELOOP_ASSIGN_OR_RETURN(std::string pub, crypto::Ed25519PublicKeyPem(key_pem));
  EDGELOOP_ASSIGN_OR_RETURN(std::string id, crypto::KeyId(pub));
  doc["signatures"] = Json::array({{{"keyid", id}, {"sig", crypto::Base64Encode(sig)}}});
  return doc.dump(2);
}

}  // namespace

Result<std::string> Server::Impl::IssueDeviceCertificate(const std::string& csr,
                                                         const std::string& device,
                                                         uint64_t* serial, int64_t* not_after_ms) {
  *serial = RandomCertificateSerial();
  EDGELOOP_ASSIGN_OR_RETURN(
      std::string pem,
      crypto::SignClientCsrFor(keys.ca, csr, device, *serial,
                               static_cast<int64_t>(options.device_cert_lifetime_s)));
  EDGELOOP_ASSIGN_OR_RETURN(crypto::CertificateInfo info, crypto::ParseCertificate(pem));
  *not_after_ms = info.not_after_unix * 1000;
  return pem;
}

Status Server::Impl::EnsureRootMetadata() {
  EDGELOOP_ASSIGN_OR_RETURN(uint64_t newest, trust->NewestRootVersion());
  if (newest == 0) {
    EDGELOOP_ASSIGN_OR_RETURN(RootMetadata v1, ImplicitRoot(keys.signing_public_key_pem));
    v1.expires_unix = NowMs() / 1000 + 3650 * 86400;  // as long as the fleet CA
    EDGELOOP_ASSIGN_OR_RETURN(std::string doc, SignRootMetadata(v1, {keys.signing_key_pem}));
    Status put = trust->PutRoot(1, doc, NowMs());
    if (!put.ok() && put.error().code != Errc::kMismatch) return put;  // kMismatch: a replica
    log::Info("root_metadata_created", {{"version", 1},
                                        {"hint",
                                         "root keys are the update key; move them offline with "
                                         "`edgeloop keys rotate-root`"}});
    return Status::Ok();
  }
  EDGELOOP_ASSIGN_OR_RETURN(auto doc, trust->Root(newest));
  EDGELOOP_ASSIGN_OR_RETURN(RootMetadata root, ParseRootMetadata(doc.value_or("")));
  EDGELOOP_ASSIGN_OR_RETURN(std::string id, crypto::KeyId(keys.signing_public_key_pem));
  if (std::find(root.targets.keyids.begin(), root.targets.keyids.end(), id) ==
      root.targets.keyids.end())
    log::Warn("signing_key_not_in_root",
              {{"keyid", id},
               {"root_version", static_cast<uint64_t>(root.version)},
               {"hint",
                "devices refuse update metadata signed by this key; publish a root that "
                "lists it (edgeloop keys rotate-targets) or start with the key root "
                "lists"}});
  return Status::Ok();
}

void Server::Impl::TrustRoutes() {
  auto& s = *http;
  auto refuse = [this](http::Response& res, const char* event, int status,
                       const std::string& message, log::Field who) {
    metrics.CountTrustEvent(event, "refused");
    log::Warn(std::string(event) + "_refused", {who, {"status", status}, {"error", message}});
    SendError(res, status, message);
  };

  s.Post("/v1/renew", [this, refuse](const http::Request& req, http::Response& res) {
    auto device = DeviceIdentity(req, res);
    if (!device) {
      // Answered already (revoked, unknown, no certificate); counted and logged here.
      metrics.CountTrustEvent("renewal", "refused");
      log::Warn("renewal_refused", {{"status", res.status}, {"error", "certificate not valid"}});
      return;
    }
    auto body = JsonBody(req, res);
    if (!body) return refuse(res, "renewal", 400, "renewal needs a JSON body", {"device", *device});
    const std::string csr = JsonString(*body, "csr");
    if (csr.empty()) return refuse(res, "renewal", 400, "renewal needs csr", {"device", *device});
    auto info = crypto::InspectCsr(csr);
    if (!info.ok())
      return refuse(res, "renewal", HttpStatus(info.error().code) == 403 ? 403 : 400,
                    "CSR refused: " + info.error().message, {"device", *device});
    if (info->common_name != *device)
      return refuse(res, "renewal", 403,
                    "CSR is for device '" + info->common_name + "', the certificate presented is " +
                        *device + "'s",
                    {"device", *device});
    uint64_t serial = 0;
    int64_t not_after_ms = 0;
    auto cert = IssueDeviceCertificate(csr, *device, &serial, &not_after_ms);
    if (!cert.ok()) return refuse(res, "renewal", 400, cert.error().message, {"device", *device});
    const uint64_t presented = PresentedSerial(req);
    const int64_t grace_until = NowMs() + static_cast<int64_t>(options.cert_grace_s) * 1000;
    Status st = trust->RecordRenewal(*device, presented, serial, not_after_ms, grace_until);
    if (!st.ok()) return SendError(res, st.error());
    metrics.CountTrustEvent("renewal", "ok");
    log::Info("certificate_renewed", {{"device", *device},
                                      {"serial", serial},
                                      {"previous_serial", presented},
                                      {"key", info->key_type},
                                      {"not_after_ms", not_after_ms},
                                      {"previous_valid_until_ms", grace_until}});
    SendJson(res, Json{{"device_id", *device},
                       {"certificate", *cert},
                       {"not_after_ms", not_after_ms},
                       {"previous_valid_until_ms", grace_until}});
  });

  s.Get("/v1/root", [this](const http::Request&, http::Response& res) {
    auto newest = trust->NewestRootVersion();
    if (!newest.ok()) return SendError(res, newest.error());
    auto doc = trust->Root(*newest);
    if (!doc.ok()) return SendError(res, doc.error());
    if (!*doc) return SendError(res, 404, "no root metadata yet");
    res.set_content(**doc, "application/json");
  });
  s.Get(R"(/v1/root/([0-9]{1,12}))", [this](const http::Request& req, http::Response& res) {
    auto doc = trust->Root(std::stoull(req.matches[1].str()));
    if (!doc.ok()) return SendError(res, doc.error());
    if (!*doc) return SendError(res, 404, "no root metadata version " + req.matches[1].str());
    res.set_content(**doc, "application/json");
  });

  s.Post("/v1/keys/targets", [this](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "admin")) return;
    const std::string path = options.data_dir + "/targets-pending.key";
    auto pem = ReadFile(path, 64 << 10);
    if (!pem.ok()) {
      auto fresh = crypto::GenerateEd25519KeyPem();
      if (!fresh.ok()) return SendError(res, fresh.error());
      Status st = WriteFileAtomic(path, *fresh, 0600);
      if (!st.ok()) return SendError(res, st.error());
      pem = *fresh;
    }
    auto pub = crypto::Ed25519PublicKeyPem(*pem);
    if (!pub.ok()) return SendError(res, pub.error().WithContext(path));
    auto id = crypto::KeyId(*pub);
    if (!id.ok()) return SendError(res, id.error());
    SendJson(res, Json{{"keyid", *id}, {"public_key", *pub}});
  });

  s.Post("/v1/root", [this, refuse](const http::Request& req, http::Response& res) {
    if (!RequireScope(req, res, "admin")) return;
    const log::Field who{"who", "operator"};
    auto newest = trust->NewestRootVersion();
    if (!newest.ok()) return SendError(res, newest.error());
    auto trusted_doc = trust->Root(*newest);
    if (!trusted_doc.ok()) return SendError(res, trusted_doc.error());
    auto trusted = ParseRootMetadata(trusted_doc->value_or(""));
    if (!trusted.ok()) return SendError(res, 500, "stored root: " + trusted.error().message);
    auto next = VerifyNextRoot(*trusted, req.body);
    if (!next.ok()) return refuse(res, "root", 400, "root refused: " + next.error().message, who);
    if (Status fresh = CheckRootFresh(*next, NowMs() / 1000); !fresh.ok())
      return refuse(res, "root", 400, "root refused: " + fresh.error().message, who);
    if (next->targets.threshold != 1)
      return refuse(res, "root", 400,
                    "root refused: the server signs update metadata with one key, so the targets "
                    "threshold must be 1",
                    who);
    // The targets key: the one in use, or the pending one POST /v1/keys/targets made.
    auto listed = [&](const std::string& pub) {
      auto id = crypto::KeyId(pub);
      return id.ok() && std::find(next->targets.keyids.begin(), next->targets.keyids.end(), *id) !=
                            next->targets.keyids.end();
    };
    std::string new_key;
    if (!listed(SigningPublicKey())) {
      auto pending = ReadFile(options.data_dir + "/targets-pending.key", 64 << 10);
      auto pending_pub = pending.ok() ? crypto::Ed25519PublicKeyPem(*pending)
                                      : Result<std::string>(pending.error());
      if (!pending_pub.ok() || !listed(*pending_pub))
        return refuse(res, "root", 400,
                      "root refused: the server holds no private key of its targets role (make "
                      "one with POST /v1/keys/targets: edgeloop keys rotate-targets)",
                      who);
      new_key = *pending;
    }
    Status put = trust->PutRoot(next->version, req.body, NowMs());
    if (!put.ok()) return refuse(res, "root", 409, put.error().message, who);
    uint64_t resigned = 0;
    if (!new_key.empty()) {
      const std::string key_path = options.signing_key_file.empty()
                                       ? options.data_dir + "/update.key"
                                       : options.signing_key_file;
      const std::string retired =
          options.data_dir + "/update.key.retired-root" + std::to_string(trusted->version);
      Status st = WriteFileAtomic(retired, SigningKey(), 0600);
      if (st.ok()) st = WriteFileAtomic(key_path, new_key, 0600);
      auto pub = crypto::Ed25519PublicKeyPem(new_key);
      if (st.ok() && pub.ok()) st = WriteFileAtomic(options.data_dir + "/update.pub", *pub, 0644);
      if (!st.ok()) return SendError(res, st.error().WithContext("switching the targets key"));
      {
        std::lock_guard<std::mutex> lock(signing_mu);
        keys.signing_key_pem = new_key;
        keys.signing_public_key_pem = *pub;
      }
      ::unlink((options.data_dir + "/targets-pending.key").c_str());
      // Every current deployment, re-signed by the new key (same version: nothing new to
      // install), so devices that moved to the new root still verify what they run.
      auto all = trust->Deployments();
      if (!all.ok()) return SendError(res, all.error());
      for (const auto& [target, doc] : *all) {
        auto signed_doc = Resign(doc, new_key);
        if (!signed_doc.ok()) {
          BackgroundFailure("resign_deployment", signed_doc.error(), {"target", target});
          continue;
        }
        if (Status replaced = trust->ReplaceDeploymentDocument(target, *signed_doc);
            !replaced.ok()) {
          BackgroundFailure("resign_deployment", replaced.error(), {"target", target});
          continue;
        }
        ++resigned;
        if (mqtt_ingest) {
          std::lock_guard<std::mutex> lock(push_mu);
          push_pending.insert(target);
        }
      }
      FlushDeploymentPushes();
    }
    metrics.CountTrustEvent("root", "ok");
    log::Info("root_published", {{"version", static_cast<uint64_t>(next->version)},
                                 {"targets_key_changed", new_key.empty() ? "no" : "yes"},
                                 {"deployments_resigned", resigned}});
    SendJson(res, Json{{"version", next->version},
                       {"expires", next->expires_unix},
                       {"targets_key_changed", !new_key.empty()},
                       {"deployments_resigned", resigned}});
  });

  s.Get("/v1/time", [this, refuse](const http::Request& req, http::Response& res) {
    const std::string nonce = req.get_param_value("nonce");
    if (nonce.size() < 8 || nonce.size() > 64 || !IsHex(nonce))
      return refuse(res, "time", 400, "nonce must be 8-64 lower-case hex characters",
                    {"client", req.remote_addr});
    auto doc = SignServerTime(NowMs() / 1000, nonce, SigningKey());
    if (!doc.ok()) return SendError(res, doc.error());
    res.set_content(*doc, "application/json");
  });
}

}  // namespace edgeloop::cloud
