// Signed update metadata, TUF-style: what the cloud offers a device, signed with Ed25519 by a
// key the device pins at enrollment. This is the agent's minimal format until the shared wire
// and signing code of src/common lands; only ParseAndVerify() and SignMetadata() know it.
//
//   {"signed": {"type": "model", "version": 7, "expires": <unix seconds>,
//               "artifact": {"url": "...", "length": 123, "sha256": "<hex>"},
//               "golden": [{"input": [..], "output": [..], "tolerance": 1e-3}]},
//    "signatures": [{"keyid": "<sha256 of the public key, hex>", "sig": "<hex>"}]}
//
// The signature covers the compact JSON serialisation of "signed" with sorted keys.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::edge {

struct GoldenCase {
  std::vector<float> input;
  std::vector<float> output;
  double tolerance = 1e-3;
};

struct UpdateMetadata {
  uint64_t version = 0;
  int64_t expires = 0;  // unix seconds
  std::string url;
  uint64_t length = 0;
  std::string sha256;
  std::vector<GoldenCase> golden;
  std::string raw;  // the verified document, stored beside the model
};

struct VerifyPolicy {
  std::string root_public_key_hex;  // pinned raw Ed25519 public key (32 bytes, hex)
  uint64_t installed_version = 0;   // a lower version is refused (rollback attack)
  int64_t now = 0;                  // unix seconds; metadata past "expires" is refused
  uint64_t max_artifact_bytes = 256ull << 20;
};

// Checks, in this order, and refuses with a reason naming the failed check: structure
// (kFormat), signature by the pinned key (kPermission), expiry (kPermission), version not
// lower than installed (kPermission), artifact length within bounds (kResourceExhausted).
Result<UpdateMetadata> ParseAndVerify(const std::string& document, const VerifyPolicy& policy);

// Signs a "signed" JSON object (as text) with a raw Ed25519 private key (32 bytes, hex) and
// returns the full document. For the cloud side and for tests.
Result<std::string> SignMetadata(const std::string& signed_json,
                                 const std::string& private_key_hex);

// A fresh Ed25519 key pair as {private hex, public hex}.
Result<std::pair<std::string, std::string>> GenerateEd25519KeyPair();

}  // namespace edgeloop::edge
