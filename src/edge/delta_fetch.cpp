#include "edge/delta_fetch.hpp"

#include "common/delta.hpp"
#include "common/hash.hpp"

namespace edgeloop::edge {
namespace {

// "" when bytes are the target, else what is wrong with them.
std::string Mismatch(std::string_view bytes, const std::string& sha256, uint64_t length) {
  if (bytes.size() != length)
    return "length " + std::to_string(bytes.size()) + " != " + std::to_string(length);
  std::string got = Sha256Hex(bytes);
  return got == sha256 ? "" : "sha256 " + got + " != " + sha256;
}

// The delta attempt: the verified target, or an error saying why not.
Result<std::string> TryDelta(std::string_view installed, const std::string& installed_sha256,
                             const std::string& target_sha256, uint64_t target_length,
                             const ArtifactFetchFn& fetch, DeltaFetchOutcome* outcome) {
  EDGELOOP_ASSIGN_OR_RETURN(FetchedArtifact got, fetch(installed_sha256));
  outcome->bytes_transferred += got.body.size();
  std::string result;
  if (got.delta_from.empty()) {
    result = std::move(got.body);  // the server sent the full artifact
  } else if (got.delta_from != installed_sha256) {
    return Error(Errc::kMismatch, "delta made against " + got.delta_from + ", not the installed " +
                                      installed_sha256);
  } else {
    EDGELOOP_ASSIGN_OR_RETURN(result, ApplyDelta(installed, got.body, target_length));
    outcome->used_delta = true;
  }
  std::string bad = Mismatch(result, target_sha256, target_length);
  if (!bad.empty()) return Error(Errc::kMismatch, "reconstructed artifact: " + bad);
  return result;
}

}  // namespace

Result<DeltaFetchOutcome> FetchWithDelta(std::string_view installed,
                                         const std::string& target_sha256, uint64_t target_length,
                                         const ArtifactFetchFn& fetch) {
  DeltaFetchOutcome outcome;
  std::string installed_sha256 = installed.empty() ? "" : Sha256Hex(installed);
  if (!installed.empty() && installed_sha256 != target_sha256) {
    auto delta =
        TryDelta(installed, installed_sha256, target_sha256, target_length, fetch, &outcome);
    if (delta.ok()) {
      outcome.artifact = std::move(*delta);
      return outcome;
    }
    outcome.used_delta = false;
    outcome.fallback_reason = delta.error().message;
  }
  EDGELOOP_ASSIGN_OR_RETURN(FetchedArtifact full, fetch(""));
  outcome.bytes_transferred += full.body.size();
  std::string bad = Mismatch(full.body, target_sha256, target_length);
  if (!bad.empty()) return Error(Errc::kMismatch, "downloaded artifact: " + bad);
  outcome.artifact = std::move(full.body);
  return outcome;
}

}  // namespace edgeloop::edge
