// Fetching a model update as a delta against the installed model, with the full download as
// the fallback. The caller supplies the transport (an HTTP GET of
// /v1/artifacts/{sha}?delta_from={installed}); this module decides what to ask for, applies
// the delta and verifies the result against the signed metadata's sha256 and length, so a
// corrupt delta, a delta for another base or a server without deltas all end in either the
// verified target or an error, never in unverified bytes. Thread-safe if `fetch` is.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace edgeloop::edge {

// What the server answered: the body, and the base its delta was made against
// (X-Edgeloop-Delta-From), empty for a full artifact.
struct FetchedArtifact {
  std::string body;
  std::string delta_from;
};

// fetch(delta_from): GET the target; delta_from is the installed sha256, or empty to ask for
// the full artifact.
using ArtifactFetchFn = std::function<Result<FetchedArtifact>(const std::string& delta_from)>;

struct DeltaFetchOutcome {
  std::string artifact;            // the verified target bytes
  bool used_delta = false;         // true when the delta path produced them
  uint64_t bytes_transferred = 0;  // bodies received, all attempts
  std::string fallback_reason;     // why the delta path was abandoned ("" when it was not)
};

// Reconstructs the target (sha256 `target_sha256`, `target_length` bytes). Tries a delta
// against `installed` when there is an installed model, falls back to the full artifact on
// any failure. Errors: the full download's own error, or kMismatch when it does not verify.
Result<DeltaFetchOutcome> FetchWithDelta(std::string_view installed,
                                         const std::string& target_sha256, uint64_t target_length,
                                         const ArtifactFetchFn& fetch);

}  // namespace edgeloop::edge
