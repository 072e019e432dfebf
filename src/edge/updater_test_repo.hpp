// A local update repository for the updater tests: model artifacts whose bytes are a function
// of their version, and metadata signed with a test key. The health check accepts a model
// whose content is exactly the one of its version (as "loads and reproduces the golden
// outputs" would).
#pragma once

#include <cstdint>
#include <string>

#include "common/file.hpp"
#include "common/hash.hpp"
#include "edge/update_metadata.hpp"
#include "edge/updater.hpp"

namespace edgeloop::edge::testing {

inline std::string ModelBytes(uint64_t version, size_t size = 96 << 10) {
  std::string s = "MODEL v" + std::to_string(version) + "\n";
  while (s.size() < size) s += static_cast<char>('A' + (s.size() * 31 + version) % 26);
  return s;
}

inline std::string SignedJson(uint64_t version, int64_t expires, const std::string& url,
                              uint64_t length, const std::string& sha256) {
  return "{\"type\":\"model\",\"version\":" + std::to_string(version) +
         ",\"expires\":" + std::to_string(expires) + ",\"artifact\":{\"url\":\"" + url +
         "\",\"length\":" + std::to_string(length) + ",\"sha256\":\"" + sha256 +
         "\"},\"golden\":[{\"input\":[1,2],\"output\":[" + std::to_string(version) + "]}]}";
}

// Writes repo/model-v<version>.onnx (if missing) and returns signed metadata for it.
inline std::string PublishVersion(const std::string& repo, uint64_t version,
                                  const std::string& private_key_hex, int64_t expires) {
  std::string bytes = ModelBytes(version);
  std::string path = repo + "/model-v" + std::to_string(version) + ".onnx";
  auto existing = ReadFile(path);
  if (!existing.ok() || *existing != bytes) (void)WriteFileAtomic(path, bytes);
  auto doc =
      SignMetadata(SignedJson(version, expires, "file://" + path, bytes.size(), Sha256Hex(bytes)),
                   private_key_hex);
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

}  // namespace edgeloop::edge::testing
