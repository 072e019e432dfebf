#include "cloud/artifact_delta.hpp"

#include "common/delta.hpp"
#include "common/file.hpp"

namespace edgeloop::cloud {

bool IsSha256Hex(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::optional<std::string> ArtifactDelta(const std::string& artifacts_dir,
                                         const std::string& from_sha256,
                                         const std::string& to_sha256,
                                         const std::string& to_bytes) {
  // An empty or malformed `from` (no delta asked for) and `to` itself need no delta.
  if (from_sha256 == to_sha256 || !IsSha256Hex(from_sha256)) return std::nullopt;
  std::string dir = artifacts_dir + "/deltas";
  std::string cached = dir + "/" + from_sha256 + "-" + to_sha256;
  std::string delta;
  if (auto hit = ReadFile(cached, to_bytes.size() + (size_t{1} << 20)); hit.ok()) {
    delta = std::move(*hit);
  } else {
    auto base = ReadFile(artifacts_dir + "/" + from_sha256);
    if (!base.ok()) return std::nullopt;  // not stored: full download
    auto made = CreateDelta(*base, to_bytes, 19);
    if (!made.ok()) return std::nullopt;
    delta = std::move(*made);
    // The cache is an optimisation: a failed write costs a recomputation next time.
    if (MakeDirs(dir).ok()) (void)WriteFileAtomic(cached, delta);
  }
  if (delta.size() >= to_bytes.size()) return std::nullopt;
  return delta;
}

}  // namespace edgeloop::cloud
