// Updater: safe model updates with two slots on disk (slot-a, slot-b) and a state file
// (state.json, replaced atomically: write temp, fsync, rename, fsync dir) that records the
// active slot and the phase of the update in flight:
//
//   idle ─► downloading ─► staged ─► probation ─► committed
//                │            │          └──────► rolled_back
//                └────────────┴─ refused (hash, length) ─► idle
//
// Every phase change is persisted before anything that depends on it, so a kill -9 at any
// point restarts into a working model: the active slot only changes by one atomic state
// write after the new model is complete and fsynced. On restart, a download resumes from
// its partial file, and an update found in probation is rolled back (an unproven model that
// was running when the process died is not trusted). A rolled-back version is not retried.
//
// The health check is a callable, so the runtime plugs in: it must load the model and run
// the golden inputs of the metadata. The probation window is fed by RecordInference().
// Every phase change is passed to the reporter (the agent forwards it to the cloud).
//
// Metadata is the fleet's signed TUF-style document (common/update_metadata.hpp), verified
// against the targets role of the device's trusted root (SetRoot(), root_trust.hpp), or, when
// no root was set, against the Ed25519 public key pinned at enrollment (PEM). It must name
// this device or its group (accepted_targets): a validly signed document for another target
// is a mix-and-match attack. Freshness is judged by trusted_time when given: while that is
// unknown no update is accepted (kUnavailable) and the installed model stays.
//
// Thread safety: not thread-safe; the agent drives it from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "common/root_metadata.hpp"
#include "common/update_metadata.hpp"

namespace edgeloop::edge {

// Where artifacts come from. FileFetcher serves a local folder (by artifact name); the
// HTTPS fetcher of the cloud client (cloud_client.hpp) fetches by sha256 with Range.
class ArtifactFetcher {
 public:
  virtual ~ArtifactFetcher() = default;
  // Streams the artifact from byte `offset` on into sink, stopping with an error past
  // max_bytes in total (the endless-data defence). Errors: kMismatch when the source sends
  // more than max_bytes; kIo / kUnavailable for a transport failure (resumable).
  virtual Status Fetch(const UpdateTarget& target, uint64_t offset, uint64_t max_bytes,
                       const std::function<Status(std::string_view)>& sink) = 0;
  // The whole target reconstructed from a zstd delta against the installed model (sha256
  // `installed_sha256`, bytes `installed`), verified against the target's sha256 and length;
  // nullopt when this source has no deltas or the delta path failed (the caller then
  // downloads the full artifact). *bytes_transferred gets what crossed the wire.
  virtual std::optional<std::string> FetchDelta(const UpdateTarget& target,
                                                std::string_view installed,
                                                const std::string& installed_sha256,
                                                uint64_t* bytes_transferred) {
    return std::nullopt;
  }
};

class FileFetcher : public ArtifactFetcher {
 public:
  explicit FileFetcher(std::string dir, size_t chunk_bytes = 64 << 10)
      : dir_(std::move(dir)), chunk_(chunk_bytes) {}
  Status Fetch(const UpdateTarget& target, uint64_t offset, uint64_t max_bytes,
               const std::function<Status(std::string_view)>& sink) override;

 private:
  std::string dir_;
  size_t chunk_;
};

enum class UpdatePhase { kIdle, kDownloading, kStaged, kProbation, kCommitted, kRolledBack };
const char* UpdatePhaseName(UpdatePhase p);

struct UpdateEvent {
  UpdatePhase phase;
  uint64_t version;           // the metadata version the event is about (0: unparseable)
  std::string reason;         // empty for a plain phase change; "refused: ..." for a refusal
  std::string model_version;  // the registry version of that model, when known
};

struct ProbationPolicy {
  uint64_t samples = 50;         // inferences in the window
  double max_error_rate = 0.05;  // errors / samples
  double max_latency_ms = 1000;  // mean latency over the window
};

struct UpdaterOptions {
  std::string update_public_key_pem;  // pinned at enrollment
  uint64_t max_artifact_bytes = 256ull << 20;
  ProbationPolicy probation;
  // Loads the model at `model_path` and checks the golden cases; an error rejects it.
  std::function<Status(const std::string& model_path, const UpdateMetadata&)> health_check;
  std::function<void(const UpdateEvent&)> reporter;
  std::function<int64_t()> clock;  // unix seconds; defaults to the system clock
  // When set, replaces `clock`: nullopt means "time not known yet" (device_clock.hpp).
  std::function<std::optional<int64_t>()> trusted_time;
  // deployment_target values this device accepts (its id, "group:<g>"); empty: any.
  std::vector<std::string> accepted_targets;
};

struct SlotInfo {
  std::string slot;  // "a" or "b"
  uint64_t version = 0;
  std::string sha256;
  std::string model_version;
};

class Updater {
 public:
  // Opens root (creating it) and recovers from whatever a crash left. If no model was ever
  // installed, call Bootstrap() before anything else.
  static Result<std::unique_ptr<Updater>> Open(const std::string& root, UpdaterOptions options,
                                               std::shared_ptr<ArtifactFetcher> fetcher);

  // Installs the factory model (the one shipped with the device) into slot a as committed.
  // version 0 lets any signed metadata replace it.
  Status Bootstrap(const std::string& model_bytes, uint64_t version, const std::string& metadata,
                   const std::string& model_version = "factory");
  bool installed() const { return !active_.slot.empty(); }

  // Handles one offer of the deployment: verifies, downloads (resuming), stages, switches and
  // runs the immediate health check. Returns the refusal reason as an error; "no update" is
  // success. After success the update is in probation until RecordInference() ends it.
  Status Offer(const std::string& metadata_document);
  // The root whose targets role signs update metadata from now on (after each root update).
  void SetRoot(const RootMetadata& root) { trusted_root_ = root; }
  // Feeds the probation window; commits or rolls back when the window is complete.
  Status RecordInference(bool error, double latency_ms);

  UpdatePhase phase() const { return phase_; }
  const SlotInfo& active() const { return active_; }
  std::string ActiveModelPath() const;
  std::string SlotModelPath(const std::string& slot) const;

 private:
  Updater(std::string root, UpdaterOptions options, std::shared_ptr<ArtifactFetcher> fetcher);
  Status Load();
  Status Persist();
  Status SetPhase(UpdatePhase p, const SlotInfo& about, const std::string& reason);
  Status Download(const UpdateMetadata& m, const std::string& slot);
  Status Rollback(const std::string& reason);
  Status Refuse(const SlotInfo& about, const Error& e);
  std::string InactiveSlot() const { return active_.slot == "a" ? "b" : "a"; }
  std::string SlotDir(const std::string& slot) const { return root_ + "/slot-" + slot; }

  std::string root_;
  UpdaterOptions opt_;
  std::shared_ptr<ArtifactFetcher> fetcher_;
  UpdatePhase phase_ = UpdatePhase::kIdle;
  SlotInfo active_;
  SlotInfo previous_;  // the fallback during probation
  SlotInfo target_;    // the update in flight (downloading, staged)
  std::vector<uint64_t> rejected_versions_;
  std::optional<RootMetadata> trusted_root_;
  uint64_t probation_count_ = 0;
  uint64_t probation_errors_ = 0;
  double probation_latency_sum_ = 0;
};

}  // namespace edgeloop::edge
