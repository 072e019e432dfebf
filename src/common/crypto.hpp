// Keys, signatures and certificates (OpenSSL), shared by the server and the edge agent.
//
// Update signing uses Ed25519: a private key as PKCS#8 PEM, signatures as 64 raw bytes.
// The fleet certificate authority and the TLS certificates use ECDSA P-256, which every TLS
// client (curl, browsers, cpp-httplib) accepts. All inputs are PEM text; every function
// returns an error value for malformed input, never throws. Thread-safe: no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::crypto {

// Ed25519 (update signing).
Result<std::string> GenerateEd25519KeyPem();
Result<std::string> Ed25519PublicKeyPem(const std::string& private_key_pem);
Result<std::string> Ed25519Sign(const std::string& private_key_pem, std::string_view message);
// Ok only when signature is a valid Ed25519 signature of message under the public key.
Status Ed25519Verify(const std::string& public_key_pem, std::string_view message,
                     std::string_view signature);
// A stable identifier of a public key: sha256 (hex) of its DER encoding.
Result<std::string> KeyId(const std::string& public_key_pem);

// A random secret of `bytes` bytes, hex-encoded (tokens).
std::string RandomHex(size_t bytes);

std::string Base64Encode(std::string_view data);
Result<std::string> Base64Decode(std::string_view text);

// X.509.
struct KeyAndCertificate {
  std::string key_pem;
  std::string cert_pem;
};

// ECDSA P-256 private key (device and server TLS keys).
Result<std::string> GenerateTlsKeyPem();
// A self-signed CA certificate (basicConstraints CA:TRUE, keyCertSign).
Result<KeyAndCertificate> CreateCertificateAuthority(const std::string& common_name, int days);
// A certificate signing request for key_pem with the given subject common name.
Result<std::string> CreateCsr(const std::string& key_pem, const std::string& common_name);
// Verifies the CSR's self-signature and issues a client certificate. The subject is set to
// common_name by the issuer; whatever the CSR asked for is ignored, so a device cannot choose
// its own identity.
Result<std::string> SignClientCsr(const KeyAndCertificate& ca, const std::string& csr_pem,
                                  const std::string& common_name, uint64_t serial, int days);
// The same, valid for lifetime_seconds (from 5 minutes before now, for clock skew).
Result<std::string> SignClientCsrFor(const KeyAndCertificate& ca, const std::string& csr_pem,
                                     const std::string& common_name, uint64_t serial,
                                     int64_t lifetime_seconds);

// What a CSR asks for, after its self-signature and its key were checked. Keys accepted for
// device certificates: ECDSA P-256 or P-384, RSA of at least 2048 bits, Ed25519. Errors:
// kFormat (not a CSR), kPermission (self-signature), kInvalidArgument (a weak or unsupported
// key, named: "RSA key of 1024 bits", "EC curve secp256k1").
struct CsrInfo {
  std::string common_name;  // empty when the subject has none
  std::string key_type;     // "EC P-256", "RSA 2048", "Ed25519"
};
Result<CsrInfo> InspectCsr(const std::string& csr_pem);
// A TLS server certificate signed by the CA, valid for the given DNS names and IP addresses.
Result<KeyAndCertificate> IssueServerCertificate(const KeyAndCertificate& ca,
                                                 const std::vector<std::string>& dns_names,
                                                 const std::vector<std::string>& ips, int days);

struct CertificateInfo {
  std::string common_name;
  uint64_t serial = 0;
  int64_t not_before_unix = 0;
  int64_t not_after_unix = 0;
};
Result<CertificateInfo> ParseCertificate(const std::string& cert_pem);
// Ok when cert_pem was issued by ca_cert_pem (signature check only).
Status VerifyIssuedBy(const std::string& cert_pem, const std::string& ca_cert_pem);

}  // namespace edgeloop::crypto
