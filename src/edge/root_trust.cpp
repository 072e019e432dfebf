#include "edge/root_trust.hpp"

#include "common/file.hpp"

namespace edgeloop::edge {

Result<TrustedRoot> TrustedRoot::Load(const std::string& identity_dir, const std::string& root_json,
                                      const std::string& update_public_key_pem) {
  TrustedRoot t;
  t.path_ = identity_dir + "/root.json";
  if (root_json.empty()) {
    EDGELOOP_ASSIGN_OR_RETURN(t.root_, ImplicitRoot(update_public_key_pem));
    return t;
  }
  auto root = ParseRootMetadata(root_json);
  if (!root.ok()) return root.error().WithContext(t.path_);
  t.root_ = std::move(*root);
  return t;
}

Result<uint64_t> TrustedRoot::Update(uint64_t newest, const Fetch& fetch, int max_steps) {
  uint64_t accepted = 0;
  for (int step = 0; step < max_steps && root_.version < newest; ++step) {
    const uint64_t want = root_.version + 1;
    EDGELOOP_ASSIGN_OR_RETURN(std::optional<std::string> doc, fetch(want));
    if (!doc)
      return Error(Errc::kNotFound, "the server announced root version " + std::to_string(newest) +
                                        " but has no version " + std::to_string(want));
    auto next = VerifyNextRoot(root_, *doc);
    if (!next.ok()) return next.error().WithContext("root version " + std::to_string(want));
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(path_, *doc));
    root_ = std::move(*next);
    ++accepted;
  }
  return accepted;
}

}  // namespace edgeloop::edge
