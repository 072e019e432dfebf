// The device's trusted root metadata (common/root_metadata.hpp) and how it moves forward.
//
// The root is pinned at enrollment (identity/root.json), or, for a device enrolled before the
// root role, is root version 1 made from the pinned update key (identity/update.pub). Update()
// walks the server's newer roots one version at a time, N -> N+1 -> ..., each accepted only
// when signed by a threshold of the trusted root's keys and of its own (TUF 5.3), and each
// persisted (write temp, fsync, rename) before the next is asked for, so a device offline
// through several rotations catches up and a crash keeps what it had accepted. A refused root
// leaves the trusted one in place and is reported as an error.
//
// Thread safety: not thread-safe; the agent's main loop owns it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "common/root_metadata.hpp"

namespace edgeloop::edge {

class TrustedRoot {
 public:
  // root_json: the stored root (empty: none); update_public_key_pem: the pinned key.
  static Result<TrustedRoot> Load(const std::string& identity_dir, const std::string& root_json,
                                  const std::string& update_public_key_pem);

  const RootMetadata& root() const { return root_; }

  // Walks from the trusted version up to `newest` (the server's newest, GET /v1/root), asking
  // fetch(version) for each one in turn (nullopt: the server has none). At most max_steps
  // versions per call. Returns how many versions were accepted; an error names the version
  // refused (the trusted root stays the last one accepted).
  using Fetch = std::function<Result<std::optional<std::string>>(uint64_t version)>;
  Result<uint64_t> Update(uint64_t newest, const Fetch& fetch, int max_steps = 16);

 private:
  std::string path_;
  RootMetadata root_;
};

}  // namespace edgeloop::edge
