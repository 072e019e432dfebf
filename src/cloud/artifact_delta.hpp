// Deltas between stored artifacts, for model updates that travel as a zstd patch against the
// version a device has installed (common/delta.hpp). Computed once per (from, to) pair and
// cached under <data>/artifacts/deltas/<from>-<to>; the cache keeps the delta even when it is
// not smaller, so that answer is cached too. Thread-safe: concurrent computations of the
// same pair write the same bytes atomically.
#pragma once

#include <optional>
#include <string>

namespace edgeloop::cloud {

// 64 lower-case hex digits: how artifacts are named (and the only names used in paths).
bool IsSha256Hex(const std::string& s);

// The delta turning artifact `from` into `to` (`to_bytes` is its content), or nullopt when a
// delta does not pay or cannot be had: `from` is not stored, is `to` itself, the delta is not
// smaller than the full artifact, or the cache cannot be read or written. The caller then
// serves the full artifact; nothing here is an error a device should see.
std::optional<std::string> ArtifactDelta(const std::string& artifacts_dir,
                                         const std::string& from_sha256,
                                         const std::string& to_sha256, const std::string& to_bytes);

}  // namespace edgeloop::cloud
