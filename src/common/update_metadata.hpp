// TUF-style signed update metadata: what a deployment target (a device or a group) should
// run, signed by the fleet's Ed25519 update key.
//
// Wire form (JSON): {"signed": {...}, "signatures": [{"keyid": hex, "sig": base64}]}. The
// signature covers the canonical serialization of "signed" (nlohmann::json dump: keys sorted,
// no whitespace). "signed" holds _type, deployment_target, version, expires, target {name,
// model_version, sha256, length} and, when the model ships health checks, golden [...]. The
// verifier defends against tampering (signature, sha256), rollback (version below the last trusted
// one), freeze (expiry) and endless data (length limit).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace edgeloop {

struct UpdateTarget {
  std::string artifact_name;  // e.g. "classifier.onnx"
  std::string model_version;  // registry version of the model
  std::string sha256;         // hex of the artifact bytes
  uint64_t length = 0;        // bytes
};

// A health check shipped with a model: feeding `input` (shaped `shape`, or the model's
// declared input with batch 1 when empty) must give `output` within `tolerance` (absolute,
// per value). Signed with the rest, so a device can trust what "healthy" means.
struct GoldenCase {
  std::vector<int64_t> shape;
  std::vector<float> input;
  std::vector<float> output;
  double tolerance = 1e-3;
};

struct UpdateMetadata {
  std::string deployment_target;  // device id or "group:<name>"
  uint64_t version = 0;           // metadata version; never decreases per target
  int64_t expires_unix = 0;       // seconds since the epoch
  UpdateTarget target;
  std::vector<GoldenCase> golden;  // optional; "golden" is omitted from the JSON when empty
};

// Golden cases from JSON: [{"shape"?: [..], "input": [..], "output": [..], "tolerance"?: x}].
// Errors (kFormat) name the case and field.
Result<std::vector<GoldenCase>> GoldenCasesFromJson(const std::string& json_text);

// Serializes and signs; the private key is Ed25519 PKCS#8 PEM.
Result<std::string> SignUpdateMetadata(const UpdateMetadata& meta,
                                       const std::string& private_key_pem);

// Parses and checks signed metadata. Errors: kFormat (malformed), kPermission (no valid
// signature by public_key_pem, expired, or version < min_version: a rollback).
Result<UpdateMetadata> VerifyUpdateMetadata(const std::string& json_text,
                                            const std::string& public_key_pem, int64_t now_unix,
                                            uint64_t min_version);

// The same checks with the signature check supplied: `signatures_ok` gets the canonical
// "signed" text and the "signatures" array (as JSON text) and says whether enough valid
// signatures are there (root_metadata.hpp counts a role's threshold this way).
using SignatureCheck =
    std::function<Status(const std::string& canonical, const std::string& signatures_json)>;
Result<UpdateMetadata> VerifyUpdateMetadataWith(const std::string& json_text,
                                                const SignatureCheck& signatures_ok,
                                                int64_t now_unix, uint64_t min_version);

}  // namespace edgeloop
