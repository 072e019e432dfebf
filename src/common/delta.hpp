// Binary deltas between two versions of an artifact (a model update against the installed
// model), in zstd's reference-prefix ("patch-from") mode: the target is compressed with the
// base as a prefix the matcher may reference, long-distance matching on, and a window that
// covers base and target. The delta is one standard zstd frame with the content size and a
// content checksum, so `zstd -d --patch-from=base` applies it too.
//
// Correctness of the result is the caller's job: apply a delta only to the base it was made
// against, and verify the result against the sha256 and length in the signed update metadata
// before using it. The frame checksum catches most wrong-base applications as an error; the
// sha256 check catches the rest. Functions are thread-safe (no shared state).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace edgeloop {

// Largest base + target a delta handles: the zstd window is at most 2 GiB (windowLog 31).
inline constexpr size_t kMaxDeltaSpan = size_t{1} << 31;

// Compresses target against base. level is a zstd level (1..19; 19 is what an update server
// affords once per pair). Errors: kInvalidArgument for a bad level, kResourceExhausted when
// base + target exceed kMaxDeltaSpan, kInternal when zstd fails.
Result<std::string> CreateDelta(std::string_view base, std::string_view target, int level = 19);

// Reconstructs the target from base and a delta made by CreateDelta. Refuses (kResourceExhausted)
// a frame that declares more than max_output bytes before allocating anything, and reports
// kFormat for a corrupt or truncated delta, a frame without a content size, or a checksum
// mismatch (typically the wrong base).
Result<std::string> ApplyDelta(std::string_view base, std::string_view delta, size_t max_output);

}  // namespace edgeloop
