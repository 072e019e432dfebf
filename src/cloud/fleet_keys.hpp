// The fleet's long-lived secrets in the data folder: the certificate authority that issues
// device certificates, the server's TLS certificate, and the Ed25519 update-signing key.
// Created on first start (private keys with mode 0600) unless supplied as PEM files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/crypto.hpp"
#include "common/result.hpp"

namespace edgeloop::cloud {

struct FleetKeys {
  crypto::KeyAndCertificate ca;
  crypto::KeyAndCertificate server_tls;
  std::string signing_key_pem;
  std::string signing_public_key_pem;
};

// Empty *_file arguments mean "use or create the file in data_dir".
Result<FleetKeys> LoadOrCreateFleetKeys(const std::string& data_dir, const std::string& host,
                                        const std::string& ca_cert_file,
                                        const std::string& ca_key_file,
                                        const std::string& signing_key_file);

// A TLS server certificate from the fleet CA for localhost, 127.0.0.1 and `hosts` (names or
// IP addresses; wildcard listen addresses such as 0.0.0.0 are skipped): the server's own,
// and the MQTT broker's (`edgeloop mqtt-config`).
Result<crypto::KeyAndCertificate> IssueTlsServerCertificate(const crypto::KeyAndCertificate& ca,
                                                            const std::vector<std::string>& hosts);

// A fresh key and a client certificate for `common_name` from the fleet CA, with a random
// serial: the MQTT ingest workers' identity (mqtt::kIngestIdentity).
Result<crypto::KeyAndCertificate> IssueClientCertificate(const crypto::KeyAndCertificate& ca,
                                                         const std::string& common_name);

// A random certificate serial: 62 bits, positive both as a signed BIGINT (the device table)
// and as an ASN.1 INTEGER.
uint64_t RandomCertificateSerial();

}  // namespace edgeloop::cloud
