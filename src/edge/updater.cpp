#include "edge/updater.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/file.hpp"
#include "common/hash.hpp"

namespace edgeloop::edge {
namespace {

using Json = nlohmann::json;

Json SlotJson(const SlotInfo& s) {
  return {{"slot", s.slot},
          {"version", s.version},
          {"sha256", s.sha256},
          {"model_version", s.model_version}};
}

SlotInfo SlotFromJson(const Json& j) {
  SlotInfo s;
  if (!j.is_object()) return s;
  s.slot = j.value("slot", "");
  s.version = j.value("version", uint64_t{0});
  s.sha256 = j.value("sha256", "");
  s.model_version = j.value("model_version", "");
  return s;
}

bool ModelIntact(const std::string& path, const std::string& sha256) {
  auto h = Sha256File(path);
  return h.ok() && *h == sha256;
}

}  // namespace

const char* UpdatePhaseName(UpdatePhase p) {
  switch (p) {
    case UpdatePhase::kIdle:
      return "idle";
    case UpdatePhase::kDownloading:
      return "downloading";
    case UpdatePhase::kStaged:
      return "staged";
    case UpdatePhase::kProbation:
      return "probation";
    case UpdatePhase::kCommitted:
      return "committed";
    case UpdatePhase::kRolledBack:
      return "rolled_back";
  }
  return "unknown";
}

static Result<UpdatePhase> ParsePhase(const std::string& s) {
  for (auto p : {UpdatePhase::kIdle, UpdatePhase::kDownloading, UpdatePhase::kStaged,
                 UpdatePhase::kProbation, UpdatePhase::kCommitted, UpdatePhase::kRolledBack})
    if (s == UpdatePhaseName(p)) return p;
  return Error(Errc::kFormat, "unknown update phase \"" + s + "\"");
}

Status FileFetcher::Fetch(const UpdateTarget& target, uint64_t offset, uint64_t max_bytes,
                          const std::function<Status(std::string_view)>& sink) {
  if (target.artifact_name.empty() || target.artifact_name.find('/') != std::string::npos ||
      target.artifact_name[0] == '.')
    return Error(Errc::kInvalidArgument,
                 "artifact name \"" + target.artifact_name + "\" is not a plain file name");
  std::string path = dir_ + "/" + target.artifact_name;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error(Errc::kNotFound, path + ": " + std::strerror(errno));
  std::string buf(chunk_, '\0');
  uint64_t sent = 0;
  Status st;
  for (;;) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(offset + sent));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st = Error(Errc::kIo, path + ": read: " + std::strerror(errno));
      break;
    }
    if (n == 0) break;
    if (sent + static_cast<uint64_t>(n) > max_bytes) {
      st = Error(Errc::kMismatch,
                 path + ": artifact is longer than the metadata says (endless data refused)");
      break;
    }
    st = sink(std::string_view(buf.data(), static_cast<size_t>(n)));
    if (!st.ok()) break;
    sent += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return st;
}

Updater::Updater(std::string root, UpdaterOptions options, std::shared_ptr<ArtifactFetcher> fetcher)
    : root_(std::move(root)), opt_(std::move(options)), fetcher_(std::move(fetcher)) {
  if (!opt_.clock)
    opt_.clock = [] {
      return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
    };
}

Result<std::unique_ptr<Updater>> Updater::Open(const std::string& root, UpdaterOptions options,
                                               std::shared_ptr<ArtifactFetcher> fetcher) {
  EDGELOOP_RETURN_IF_ERROR(MakeDirs(root));
  std::unique_ptr<Updater> u(new Updater(root, std::move(options), std::move(fetcher)));
  Status st = u->Load();
  if (!st.ok()) return st.error().WithContext("updater " + root);
  return u;
}

std::string Updater::SlotModelPath(const std::string& slot) const {
  return SlotDir(slot) + "/model.onnx";
}
std::string Updater::ActiveModelPath() const {
  return SlotModelPath(active_.slot);
}

Status Updater::Persist() {
  Json j;
  j["phase"] = UpdatePhaseName(phase_);
  j["active"] = SlotJson(active_);
  j["previous"] = SlotJson(previous_);
  j["target"] = SlotJson(target_);
  j["rejected_versions"] = rejected_versions_;
  return WriteFileAtomic(root_ + "/state.json", j.dump(2) + "\n");
}

Status Updater::SetPhase(UpdatePhase p, const SlotInfo& about, const std::string& reason) {
  phase_ = p;
  EDGELOOP_RETURN_IF_ERROR(Persist());
  if (opt_.reporter) opt_.reporter({p, about.version, reason, about.model_version});
  return Status::Ok();
}

Status Updater::Load() {
  auto text = ReadFile(root_ + "/state.json", 1 << 20);
  if (!text.ok()) return text.error().code == Errc::kNotFound ? Status::Ok() : Status(text.error());
  Json j = Json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error(Errc::kFormat, root_ + "/state.json: not a JSON object");
  EDGELOOP_ASSIGN_OR_RETURN(phase_, ParsePhase(j.value("phase", "")));
  active_ = SlotFromJson(j["active"]);
  previous_ = SlotFromJson(j["previous"]);
  target_ = SlotFromJson(j["target"]);
  if (j.contains("rejected_versions") && j["rejected_versions"].is_array())
    rejected_versions_ = j["rejected_versions"].get<std::vector<uint64_t>>();
  if (active_.slot != "a" && active_.slot != "b")
    return Error(Errc::kFormat, root_ + "/state.json: no active slot");

  if (phase_ == UpdatePhase::kProbation)
    EDGELOOP_RETURN_IF_ERROR(Rollback("restarted during probation"));
  if (!ModelIntact(ActiveModelPath(), active_.sha256)) {
    // Should not happen (the active slot is written before it becomes active); if storage
    // damaged it, the other slot is the last resort.
    if (!previous_.slot.empty() && ModelIntact(SlotModelPath(previous_.slot), previous_.sha256))
      return Rollback("active model damaged on disk");
    return Error(Errc::kInternal, ActiveModelPath() + ": active model missing or damaged");
  }
  return Status::Ok();
}

Status Updater::Bootstrap(const std::string& model_bytes, uint64_t version,
                          const std::string& metadata, const std::string& model_version) {
  if (installed()) return Error(Errc::kInvalidArgument, "a model is already installed");
  EDGELOOP_RETURN_IF_ERROR(MakeDirs(SlotDir("a")));
  EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(SlotDir("a") + "/metadata.json", metadata));
  EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(SlotModelPath("a"), model_bytes));
  active_ = {"a", version, Sha256Hex(model_bytes), model_version};
  return SetPhase(UpdatePhase::kCommitted, active_, "factory model installed");
}

Status Updater::Refuse(const SlotInfo& about, const Error& e) {
  if (opt_.reporter)
    opt_.reporter(
        {UpdatePhase::kIdle, about.version, "refused: " + e.message, about.model_version});
  return e;
}

Status Updater::Download(const UpdateMetadata& m, const std::string& slot) {
  std::string dir = SlotDir(slot);
  EDGELOOP_RETURN_IF_ERROR(MakeDirs(dir));
  std::string final_path = SlotModelPath(slot);
  std::string part = final_path + ".part";
  const UpdateTarget& t = m.target;
  if (ModelIntact(final_path, t.sha256)) return Status::Ok();  // done before a crash
  std::error_code ec;
  std::filesystem::remove(final_path, ec);  // the old fallback model; the active one is safe

  // A delta against the installed model first, unless a full download is already under way.
  if (!std::filesystem::exists(part, ec) && installed() && !active_.sha256.empty()) {
    auto current = ReadFile(ActiveModelPath(), opt_.max_artifact_bytes);
    uint64_t moved = 0;
    std::optional<std::string> whole;
    if (current.ok()) whole = fetcher_->FetchDelta(t, *current, active_.sha256, &moved);
    if (whole && whole->size() == t.length && Sha256Hex(*whole) == t.sha256) {
      EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(final_path, *whole));
      return FsyncDirectory(dir);
    }
  }

  for (int attempt = 0; attempt < 2; ++attempt) {
    uint64_t offset = std::filesystem::exists(part, ec) ? std::filesystem::file_size(part, ec) : 0;
    if (offset > t.length) {
      std::filesystem::remove(part, ec);
      offset = 0;
    }
    int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return Error(Errc::kIo, part + ": " + std::strerror(errno));
    uint64_t have = offset;
    Status st =
        fetcher_->Fetch(t, offset, t.length - offset, [&](std::string_view chunk) -> Status {
          if (have + chunk.size() > t.length)
            return Error(Errc::kMismatch, "artifact is longer than the metadata says");
          size_t off = 0;
          while (off < chunk.size()) {
            ssize_t n = ::write(fd, chunk.data() + off, chunk.size() - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0)
              return Error(errno == ENOSPC ? Errc::kResourceExhausted : Errc::kIo,
                           part + ": write: " + std::strerror(errno));
            off += static_cast<size_t>(n);
          }
          have += chunk.size();
          return Status::Ok();
        });
    bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (!st.ok()) {
      // A length violation (kMismatch) discards the partial file; network errors and a full
      // disk keep it, to resume when the connection or the space is back.
      if (st.error().code == Errc::kMismatch) std::filesystem::remove(part, ec);
      return st;
    }
    if (!synced) return Error(Errc::kIo, part + ": fsync failed");
    if (have != t.length) {
      std::filesystem::remove(part, ec);
      return Error(Errc::kMismatch, "artifact is " + std::to_string(have) +
                                        " bytes, the metadata says " + std::to_string(t.length));
    }
    EDGELOOP_ASSIGN_OR_RETURN(std::string hash, Sha256File(part));
    if (hash != t.sha256) {
      std::filesystem::remove(part, ec);
      if (offset > 0) continue;  // a resumed partial file may hold stale bytes: fetch it whole
      return Error(Errc::kMismatch, "artifact sha256 " + hash + " does not match the metadata (" +
                                        t.sha256 + "): tampered or corrupt");
    }
    if (::rename(part.c_str(), final_path.c_str()) != 0)
      return Error(Errc::kIo, final_path + ": rename: " + std::strerror(errno));
    return FsyncDirectory(dir);
  }
  return Error(Errc::kMismatch, "artifact does not match the metadata after a fresh download");
}

Status Updater::Offer(const std::string& metadata_document) {
  if (!installed()) return Error(Errc::kInvalidArgument, "no model installed: bootstrap first");
  // Not reported as a refusal: nothing is wrong with the metadata, the device only waits.
  const std::optional<int64_t> now =
      opt_.trusted_time ? opt_.trusted_time() : std::optional<int64_t>(opt_.clock());
  if (!now)
    return Error(Errc::kUnavailable,
                 "time not known yet (no signed server time): the installed model stays, "
                 "updates wait");
  auto verified =
      trusted_root_
          ? VerifyTargetsWithRoot(metadata_document, *trusted_root_, *now, active_.version)
          : VerifyUpdateMetadata(metadata_document, opt_.update_public_key_pem, *now,
                                 active_.version);
  if (!verified.ok()) return Refuse({}, verified.error());
  const UpdateMetadata& m = *verified;
  SlotInfo offered{InactiveSlot(), m.version, m.target.sha256, m.target.model_version};
  if (!opt_.accepted_targets.empty() &&
      std::find(opt_.accepted_targets.begin(), opt_.accepted_targets.end(), m.deployment_target) ==
          opt_.accepted_targets.end())
    return Refuse(offered, Error(Errc::kPermission, "metadata is for " + m.deployment_target +
                                                        ", not this device or its group "
                                                        "(mix-and-match refused)"));
  if (m.version == active_.version) return Status::Ok();       // already running it
  if (phase_ == UpdatePhase::kProbation) return Status::Ok();  // one update at a time
  if (m.target.length > opt_.max_artifact_bytes)
    return Refuse(offered,
                  Error(Errc::kResourceExhausted, "artifact of " + std::to_string(m.target.length) +
                                                      " bytes exceeds the limit of " +
                                                      std::to_string(opt_.max_artifact_bytes)));
  if (std::find(rejected_versions_.begin(), rejected_versions_.end(), m.version) !=
      rejected_versions_.end())
    return Refuse(offered, Error(Errc::kPermission, "version " + std::to_string(m.version) +
                                                        " was rolled back before"));

  std::string slot = offered.slot;
  bool same_target = target_.version == m.version && target_.sha256 == m.target.sha256;
  if (!(same_target && phase_ == UpdatePhase::kStaged)) {
    if (!same_target || phase_ != UpdatePhase::kDownloading) {
      std::error_code ec;
      if (!same_target) std::filesystem::remove(SlotModelPath(slot) + ".part", ec);
      target_ = offered;
      EDGELOOP_RETURN_IF_ERROR(SetPhase(UpdatePhase::kDownloading, offered, ""));
    }
    Status st = Download(m, slot);
    if (!st.ok()) {
      if (st.error().code == Errc::kMismatch) {
        target_ = {};
        EDGELOOP_RETURN_IF_ERROR(SetPhase(UpdatePhase::kIdle, offered, st.error().message));
        return Refuse(offered, st.error());
      }
      // Transient (network down, disk full): the partial download stays and resumes on the
      // next offer; the state stays "downloading" and the active model is untouched.
      if (opt_.reporter)
        opt_.reporter({UpdatePhase::kDownloading, m.version, "paused: " + st.error().message,
                       m.target.model_version});
      return st;
    }
    EDGELOOP_RETURN_IF_ERROR(WriteFileAtomic(SlotDir(slot) + "/metadata.json", metadata_document));
    EDGELOOP_RETURN_IF_ERROR(SetPhase(UpdatePhase::kStaged, offered, ""));
  }

  // The switch: one atomic state write makes the new slot active, the old one the fallback.
  previous_ = active_;
  active_ = target_;
  target_ = {};
  probation_count_ = probation_errors_ = 0;
  probation_latency_sum_ = 0;
  EDGELOOP_RETURN_IF_ERROR(SetPhase(UpdatePhase::kProbation, active_, ""));
  if (opt_.health_check) {
    Status health = opt_.health_check(ActiveModelPath(), m);
    if (!health.ok()) {
      EDGELOOP_RETURN_IF_ERROR(Rollback("health check failed: " + health.error().message));
      return Error(Errc::kMismatch, "version " + std::to_string(m.version) +
                                        " failed its health check: " + health.error().message);
    }
  }
  if (opt_.probation.samples == 0) return SetPhase(UpdatePhase::kCommitted, active_, "");
  return Status::Ok();
}

Status Updater::Rollback(const std::string& reason) {
  SlotInfo bad = active_;
  if (previous_.slot.empty()) return Error(Errc::kInternal, "no previous model to roll back to");
  if (std::find(rejected_versions_.begin(), rejected_versions_.end(), bad.version) ==
      rejected_versions_.end())
    rejected_versions_.push_back(bad.version);
  active_ = previous_;
  previous_ = {};
  return SetPhase(UpdatePhase::kRolledBack, bad, reason);
}

Status Updater::RecordInference(bool error, double latency_ms) {
  if (phase_ != UpdatePhase::kProbation) return Status::Ok();
  ++probation_count_;
  if (error) ++probation_errors_;
  probation_latency_sum_ += latency_ms;
  if (probation_count_ < opt_.probation.samples) return Status::Ok();
  double error_rate =
      static_cast<double>(probation_errors_) / static_cast<double>(probation_count_);
  double mean_latency = probation_latency_sum_ / static_cast<double>(probation_count_);
  if (error_rate > opt_.probation.max_error_rate)
    return Rollback("error rate " + std::to_string(error_rate) + " over the probation bound " +
                    std::to_string(opt_.probation.max_error_rate));
  if (mean_latency > opt_.probation.max_latency_ms)
    return Rollback("mean latency " + std::to_string(mean_latency) + " ms over the bound " +
                    std::to_string(opt_.probation.max_latency_ms) + " ms");
  return SetPhase(UpdatePhase::kCommitted, active_, "");
}

}  // namespace edgeloop::edge
