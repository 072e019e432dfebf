#include "cloud/fleet_keys.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "common/file.hpp"

namespace edgeloop::cloud {
namespace {

bool Exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

// Reads path, or when it is missing creates it with make() and writes it with mode.
template <typename Make>
Result<std::string> ReadOrCreate(const std::string& path, int mode, Make make) {
  if (Exists(path)) return ReadFile(path, 1 << 20);
  EDGELOOP_ASSIGN_OR_RETURN(std::string pem, make());
  EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(path, pem, mode));
  return pem;
}

}  // namespace

Result<FleetKeys> LoadOrCreateFleetKeys(const std::string& data_dir, const std::string& host,
                                        const std::string& ca_cert_file,
                                        const std::string& ca_key_file,
                                        const std::string& signing_key_file) {
  FleetKeys keys;
  if (!ca_cert_file.empty() || !ca_key_file.empty()) {
    if (ca_cert_file.empty() || ca_key_file.empty())
      return Error(Errc::kInvalidArgument, "a supplied CA needs both its certificate and key");
    EDGELOOP_ASSIGN_OR_RETURN(keys.ca.cert_pem, ReadFile(ca_cert_file, 1 << 20));
    EDGELOOP_ASSIGN_OR_RETURN(keys.ca.key_pem, ReadFile(ca_key_file, 1 << 20));
  } else if (Exists(data_dir + "/ca.key")) {
    EDGELOOP_ASSIGN_OR_RETURN(keys.ca.cert_pem, ReadFile(data_dir + "/ca.crt", 1 << 20));
    EDGELOOP_ASSIGN_OR_RETURN(keys.ca.key_pem, ReadFile(data_dir + "/ca.key", 1 << 20));
  } else {
    EDGELOOP_ASSIGN_OR_RETURN(keys.ca,
                              crypto::CreateCertificateAuthority("edgeloop fleet CA", 3650));
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(data_dir + "/ca.key", keys.ca.key_pem, 0600));
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(data_dir + "/ca.crt", keys.ca.cert_pem, 0644));
  }
  std::string sign_path = signing_key_file.empty() ? data_dir + "/update.key" : signing_key_file;
  if (!signing_key_file.empty() && !Exists(signing_key_file))
    return Error(Errc::kNotFound, "signing key " + signing_key_file + " does not exist");
  EDGELOOP_ASSIGN_OR_RETURN(keys.signing_key_pem,
                            ReadOrCreate(sign_path, 0600, crypto::GenerateEd25519KeyPem));
  auto pub = crypto::Ed25519PublicKeyPem(keys.signing_key_pem);
  if (!pub.ok()) return pub.error().WithContext("update-signing key " + sign_path);
  keys.signing_public_key_pem = std::move(*pub);
  EDGELOOP_RETURN_IF_ERROR(
      WriteFileAtomic(data_dir + "/update.pub", keys.signing_public_key_pem, 0644));
  // The TLS certificate is reissued on every start: cheap, and it follows CA and host changes.
  const std::string cert_name = ca_cert_file.empty() ? data_dir + "/ca.crt" : ca_cert_file;
  const std::string key_name = ca_key_file.empty() ? data_dir + "/ca.key" : ca_key_file;
  auto tls = IssueTlsServerCertificate(keys.ca, {host});
  if (!tls.ok()) return tls.error().WithContext("the fleet CA " + cert_name + ", " + key_name);
  keys.server_tls = std::move(*tls);
  // A supplied certificate and key that are not one pair would issue certificates nobody can
  // verify: every device's handshake would fail. Refuse them here, by name.
  if (!crypto::VerifyIssuedBy(keys.server_tls.cert_pem, keys.ca.cert_pem).ok())
    return Error(Errc::kMismatch,
                 "the CA key " + key_name + " does not belong to the CA certificate " + cert_name);
  return keys;
}

Result<crypto::KeyAndCertificate> IssueTlsServerCertificate(const crypto::KeyAndCertificate& ca,
                                                            const std::vector<std::string>& hosts) {
  std::vector<std::string> dns{"localhost"}, ips{"127.0.0.1"};
  for (const std::string& host : hosts) {
    if (host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]") continue;
    bool is_ip = host.find_first_not_of("0123456789.:") == std::string::npos;
    auto& list = is_ip ? ips : dns;
    if (std::find(list.begin(), list.end(), host) == list.end()) list.push_back(host);
  }
  return crypto::IssueServerCertificate(ca, dns, ips, 825);
}

uint64_t RandomCertificateSerial() {
  const std::string hex = crypto::RandomHex(8);
  uint64_t serial = 0;
  std::from_chars(hex.data(), hex.data() + hex.size(), serial, 16);
  return serial >> 2;
}

Result<crypto::KeyAndCertificate> IssueClientCertificate(const crypto::KeyAndCertificate& ca,
                                                         const std::string& common_name) {
  crypto::KeyAndCertificate out;
  EDGELOOP_ASSIGN_OR_RETURN(out.key_pem, crypto::GenerateTlsKeyPem());
  EDGELOOP_ASSIGN_OR_RETURN(std::string csr, crypto::CreateCsr(out.key_pem, common_name));
  EDGELOOP_ASSIGN_OR_RETURN(
      out.cert_pem, crypto::SignClientCsr(ca, csr, common_name, RandomCertificateSerial(), 825));
  return out;
}

}  // namespace edgeloop::cloud
