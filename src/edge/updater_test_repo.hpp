// A local update repository for the updater tests: model artifacts whose bytes are a function
// of their version, and the common signed metadata (src/common/update_metadata.hpp) signed
// with a test key. The health check accepts a model whose content is exactly the one of its
// version (as "loads and reproduces the golden outputs" would).
#pragma once

#include <cstdint>
#include <string>

#include "common/crypto.hpp"
#include "common/file.hpp"
#include "common/hash.hpp"
#include "common/update_metadata.hpp"
#include "edge/updater.hpp"

namespace edgeloop::edge::testing {

inline std::string ModelBytes(uint64_t version, size_t size = 96 << 10) {
  std::string s = "MODEL v" + std::to_string(version) + "\n";
  while (s.size() < size) s += static_cast<char>('A' + (s.size() * 31 + version) % 26);
  return s;
}

inline std::string ArtifactName(uint64_t version) {
  return "model-v" + std::to_string(version) + ".onnx";
}

// Metadata for version `version` of the test model, with one golden case whose expected
// output is the version (CheckTestModel reads it).
inline UpdateMetadata TestMetadata(uint64_t version, int64_t expires) {
  std::string bytes = ModelBytes(version);
  UpdateMetadata m;
  m.deployment_target = "dev-1";
  m.version = version;
  m.expires_unix = expires;
  m.target = {ArtifactName(version), "m" + std::to_string(version), Sha256Hex(bytes), bytes.size()};
  m.golden.push_back({{}, {1, 2}, {static_cast<float>(version)}, 1e-3});
  return m;
}

// Writes repo/model-v<version>.onnx (if missing) and returns signed metadata for it.
inline std::string PublishVersion(const std::string& repo, uint64_t version,
                                  const std::string& private_key_pem, int64_t expires) {
  std::string path = repo + "/" + ArtifactName(version);
  std::string bytes = ModelBytes(version);
  auto existing = ReadFile(path);
  if (!existing.ok() || *existing != bytes) (void)WriteFileAtomic(path, bytes);
  auto doc = SignUpdateMetadata(TestMetadata(version, expires), private_key_pem);
  return doc.ok() ? *doc : std::string();
}

// The check a runtime would do: the model "loads" (is the model of some version) and its
// "output" on the golden input is the version the metadata's golden case expects.
inline Status CheckTestModel(const std::string& path, const UpdateMetadata& m) {
  auto bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.error();
  if (m.golden.empty() || m.golden[0].output.empty()) return Error(Errc::kFormat, "no golden case");
  auto expected = static_cast<uint64_t>(m.golden[0].output[0]);
  if (*bytes != ModelBytes(expected)) return Error(Errc::kMismatch, "golden output differs");
  return Status::Ok();
}

// A fresh Ed25519 key pair as PEM {private, public}.
inline std::pair<std::string, std::string> TestKeys() {
  auto priv = crypto::GenerateEd25519KeyPem();
  auto pub = crypto::Ed25519PublicKeyPem(*priv);
  return {*priv, *pub};
}

}  // namespace edgeloop::edge::testing
