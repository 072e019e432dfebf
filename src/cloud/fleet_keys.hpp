// The fleet's long-lived secrets in the data folder: the certificate authority that issues
// device certificates, the server's TLS certificate, and the Ed25519 update-signing key.
// Created on first start (private keys with mode 0600) unless supplied as PEM files.
#pragma once

#include <string>

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

}  // namespace edgeloop::cloud
