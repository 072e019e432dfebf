#include "edge/updater.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "edge/test_util.hpp"
#include "edge/updater_test_repo.hpp"

namespace edgeloop::edge {
namespace {

using testing::ModelBytes;
using testing::PublishVersion;
using testing::ScratchDir;
using testing::TestKeys;

constexpr int64_t kFarFuture = 4102444800;  // 2100-01-01

class UpdaterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::tie(priv_, pub_) = TestKeys();
    std::filesystem::create_directories(repo_);
  }

  std::unique_ptr<Updater> Open(std::function<Status(const std::string&, const UpdateMetadata&)>
                                    health = testing::CheckTestModel,
                                std::function<void(UpdaterOptions&)> adjust = nullptr) {
    UpdaterOptions opt;
    opt.update_public_key_pem = pub_;
    opt.probation.samples = 10;
    opt.probation.max_error_rate = 0.2;
    opt.probation.max_latency_ms = 50;
    opt.health_check = std::move(health);
    opt.reporter = [this](const UpdateEvent& e) { events_.push_back(e); };
    opt.clock = [] { return int64_t{1'800'000'000}; };
    if (adjust) adjust(opt);
    auto u = Updater::Open(root_.path(), opt, std::make_shared<FileFetcher>(repo_, 1000));
    EXPECT_TRUE(u.ok()) << u.error().message;
    if (!u.ok()) return nullptr;
    if (!(*u)->installed()) {
      EXPECT_TRUE((*u)->Bootstrap(ModelBytes(1), 1, "{}").ok());
    }
    return std::move(*u);
  }

  std::string Publish(uint64_t v, int64_t expires = kFarFuture) {
    return PublishVersion(repo_, v, priv_, expires);
  }

  std::string ActiveBytes(const Updater& u) {
    auto b = ReadFile(u.ActiveModelPath());
    return b.ok() ? *b : "";
  }

  bool Reported(const std::string& needle) {
    for (const auto& e : events_)
      if (e.reason.find(needle) != std::string::npos) return true;
    return false;
  }

  ScratchDir root_{"updater"};
  ScratchDir repo_dir_{"repo"};
  std::string repo_ = repo_dir_.path();
  std::string priv_, pub_;
  std::vector<UpdateEvent> events_;
};

TEST_F(UpdaterTest, InstallsVerifiedUpdateAndCommitsAfterProbation) {
  auto u = Open();
  ASSERT_TRUE(u);
  Status offered = u->Offer(Publish(2));
  ASSERT_TRUE(offered.ok()) << offered.error().message;
  EXPECT_EQ(u->phase(), UpdatePhase::kProbation);
  EXPECT_EQ(u->active().version, 2u);
  EXPECT_EQ(u->active().slot, "b");
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(u->RecordInference(false, 5).ok());
  EXPECT_EQ(u->phase(), UpdatePhase::kCommitted);
  EXPECT_EQ(ActiveBytes(*u), ModelBytes(2));
  std::vector<UpdatePhase> phases;
  for (const auto& e : events_) phases.push_back(e.phase);
  EXPECT_EQ(phases, (std::vector<UpdatePhase>{UpdatePhase::kCommitted, UpdatePhase::kDownloading,
                                              UpdatePhase::kStaged, UpdatePhase::kProbation,
                                              UpdatePhase::kCommitted}));
  // A restart keeps the committed model.
  u.reset();
  auto again = Open();
  EXPECT_EQ(again->active().version, 2u);
  EXPECT_EQ(again->phase(), UpdatePhase::kCommitted);
}

TEST_F(UpdaterTest, RefusesTamperedArtifact) {
  auto u = Open();
  std::string doc = Publish(2);
  {
    std::fstream f(repo_ + "/model-v2.onnx", std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(5000);
    f.put('!');
  }
  Status st = u->Offer(doc);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kMismatch);
  EXPECT_NE(st.error().message.find("tampered"), std::string::npos) << st.error().message;
  EXPECT_TRUE(Reported("refused"));
  EXPECT_EQ(u->active().version, 1u);
  EXPECT_EQ(ActiveBytes(*u), ModelBytes(1));
  EXPECT_FALSE(std::filesystem::exists(u->SlotModelPath("b") + ".part"));
}

TEST_F(UpdaterTest, RefusesArtifactLongerThanMetadataSays) {
  auto u = Open();
  std::string doc = Publish(2);
  std::ofstream(repo_ + "/model-v2.onnx", std::ios::binary | std::ios::app) << "extra";
  Status st = u->Offer(doc);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kMismatch) << st.error().message;
  EXPECT_NE(st.error().message.find("longer than the metadata"), std::string::npos);
  EXPECT_EQ(u->active().version, 1u);
}

TEST_F(UpdaterTest, RefusesWrongSignature) {
  auto u = Open();
  auto other = TestKeys();
  Status st = u->Offer(PublishVersion(repo_, 2, other.first, kFarFuture));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kPermission);
  EXPECT_NE(st.error().message.find("signature"), std::string::npos);
  EXPECT_TRUE(Reported("signature"));
  // A signed document whose content was changed afterwards fails the same way.
  std::string doc = Publish(2);
  const std::string field = "\"version\": 2";
  auto pos = doc.find(field);
  ASSERT_NE(pos, std::string::npos);
  doc.replace(pos, field.size(), "\"version\": 3");
  st = u->Offer(doc);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kPermission);
  EXPECT_EQ(u->active().version, 1u);
}

TEST_F(UpdaterTest, RefusesExpiredMetadata) {
  auto u = Open();
  Status st = u->Offer(Publish(2, 1'700'000'000));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("expired"), std::string::npos) << st.error().message;
  EXPECT_TRUE(Reported("expired"));
  EXPECT_EQ(u->active().version, 1u);
}

TEST_F(UpdaterTest, RefusesMetadataForAnotherTargetMixAndMatch) {
  auto u = Open(testing::CheckTestModel, [](UpdaterOptions& o) {
    o.accepted_targets = {"someone-else", "group:others"};
  });
  Status st = u->Offer(Publish(2));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("mix-and-match"), std::string::npos) << st.error().message;
  EXPECT_TRUE(Reported("mix-and-match"));
  EXPECT_EQ(u->active().version, 1u);
}

TEST_F(UpdaterTest, WaitsWhileTheTimeIsUnknownAndKeepsTheInstalledModel) {
  std::optional<int64_t> now;
  auto u = Open(testing::CheckTestModel,
                [&now](UpdaterOptions& o) { o.trusted_time = [&now] { return now; }; });
  Status st = u->Offer(Publish(2));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kUnavailable);
  EXPECT_TRUE(events_.size() == 1u) << "only the factory install; no refusal reported";
  EXPECT_EQ(u->active().version, 1u);
  now = 1'800'000'000;  // the server's signed time arrived
  EXPECT_TRUE(u->Offer(Publish(2)).ok());
  EXPECT_EQ(u->active().version, 2u);
}

TEST_F(UpdaterTest, VerifiesAgainstTheTrustedRootsTargetsRole) {
  auto u = Open();
  auto other = testing::TestKeys();
  u->SetRoot(*ImplicitRoot(other.second));  // a root whose targets key is not ours
  Status st = u->Offer(Publish(2));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("targets role"), std::string::npos) << st.error().message;
  EXPECT_EQ(u->active().version, 1u);
  u->SetRoot(*ImplicitRoot(pub_));
  EXPECT_TRUE(u->Offer(Publish(2)).ok());
}

TEST_F(UpdaterTest, RefusesRollbackToOlderVersion) {
  auto u = Open();
  ASSERT_TRUE(u->Offer(Publish(3)).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(u->RecordInference(false, 1).ok());
  Status st = u->Offer(Publish(2));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("older than"), std::string::npos) << st.error().message;
  EXPECT_TRUE(Reported("rollback"));
  EXPECT_EQ(u->active().version, 3u);
}

TEST_F(UpdaterTest, RollsBackWhenHealthCheckFails) {
  auto u = Open([](const std::string&, const UpdateMetadata& m) -> Status {
    if (m.version == 2) return Error(Errc::kMismatch, "golden output differs");
    return Status::Ok();
  });
  Status st = u->Offer(Publish(2));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(u->phase(), UpdatePhase::kRolledBack);
  EXPECT_EQ(u->active().version, 1u);
  EXPECT_EQ(ActiveBytes(*u), ModelBytes(1));
  EXPECT_TRUE(Reported("golden output differs"));
  // The same version is not tried again.
  st = u->Offer(Publish(2));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("rolled back before"), std::string::npos);
}

TEST_F(UpdaterTest, RollsBackWhenProbationErrorRateOrLatencyIsOutOfBounds) {
  auto u = Open();
  ASSERT_TRUE(u->Offer(Publish(2)).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(u->RecordInference(i < 3, 1).ok());
  EXPECT_EQ(u->phase(), UpdatePhase::kRolledBack);
  EXPECT_EQ(u->active().version, 1u);
  EXPECT_TRUE(Reported("error rate"));

  ASSERT_TRUE(u->Offer(Publish(3)).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(u->RecordInference(false, 500).ok());
  EXPECT_EQ(u->phase(), UpdatePhase::kRolledBack);
  EXPECT_EQ(u->active().version, 1u);
  EXPECT_TRUE(Reported("latency"));
}

// A transport that breaks after a given number of bytes, as a dropped connection does.
class CutConnectionFetcher : public ArtifactFetcher {
 public:
  uint64_t cut_after = 0;  // 0: never
  uint64_t first_offset_seen = UINT64_MAX;
  explicit CutConnectionFetcher(const std::string& repo) : inner_(repo, 1000) {}
  Status Fetch(const UpdateTarget& target, uint64_t offset, uint64_t max_bytes,
               const std::function<Status(std::string_view)>& sink) override {
    if (first_offset_seen == UINT64_MAX || offset > 0) first_offset_seen = offset;
    uint64_t sent = 0;
    return inner_.Fetch(target, offset, max_bytes, [&](std::string_view chunk) -> Status {
      if (cut_after > 0 && sent + chunk.size() > cut_after)
        return Error(Errc::kIo, "connection reset");
      sent += chunk.size();
      return sink(chunk);
    });
  }

 private:
  FileFetcher inner_;
};

// A source with deltas: FetchDelta answers with `delta_answer` (the real target when empty),
// and counts both kinds of requests.
class DeltaSourceFetcher : public ArtifactFetcher {
 public:
  explicit DeltaSourceFetcher(const std::string& repo) : repo_(repo), inner_(repo, 1000) {}
  std::optional<std::string> delta_answer;
  std::string installed_seen;
  int delta_calls = 0, full_calls = 0;
  Status Fetch(const UpdateTarget& target, uint64_t offset, uint64_t max_bytes,
               const std::function<Status(std::string_view)>& sink) override {
    ++full_calls;
    return inner_.Fetch(target, offset, max_bytes, sink);
  }
  std::optional<std::string> FetchDelta(const UpdateTarget& target, std::string_view installed,
                                        const std::string& installed_sha256,
                                        uint64_t* bytes_transferred) override {
    ++delta_calls;
    installed_seen = std::string(installed);
    *bytes_transferred = 100;
    if (delta_answer) return delta_answer;
    auto bytes = ReadFile(repo_ + "/" + target.artifact_name);
    return bytes.ok() ? std::optional<std::string>(*bytes) : std::nullopt;
  }

 private:
  std::string repo_;
  FileFetcher inner_;
};

TEST_F(UpdaterTest, TakesADeltaAgainstTheInstalledModelAndFallsBackWhenItIsWrong) {
  UpdaterOptions opt;
  opt.update_public_key_pem = pub_;
  opt.probation.samples = 0;
  opt.health_check = testing::CheckTestModel;
  opt.clock = [] { return int64_t{1'800'000'000}; };
  auto fetcher = std::make_shared<DeltaSourceFetcher>(repo_);
  auto u = Updater::Open(root_.path(), opt, fetcher);
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE((*u)->Bootstrap(ModelBytes(1), 1, "{}").ok());
  // The delta path reconstructs the target: no full download.
  ASSERT_TRUE((*u)->Offer(Publish(2)).ok());
  EXPECT_EQ(fetcher->delta_calls, 1);
  EXPECT_EQ(fetcher->full_calls, 0);
  EXPECT_EQ(fetcher->installed_seen, ModelBytes(1));  // patched against what is installed
  EXPECT_EQ(ActiveBytes(**u), ModelBytes(2));
  // A delta whose result does not match the signed hash is never installed: the full
  // download takes over.
  fetcher->delta_answer = ModelBytes(1);
  ASSERT_TRUE((*u)->Offer(Publish(3)).ok());
  EXPECT_EQ(fetcher->delta_calls, 2);
  EXPECT_GE(fetcher->full_calls, 1);
  EXPECT_EQ(ActiveBytes(**u), ModelBytes(3));
  EXPECT_EQ((*u)->phase(), UpdatePhase::kCommitted);
}

TEST_F(UpdaterTest, ResumesAnInterruptedDownloadAcrossRestarts) {
  auto fetcher = std::make_shared<CutConnectionFetcher>(repo_);
  fetcher->cut_after = 30000;
  std::string doc = Publish(2);
  UpdaterOptions opt;
  opt.update_public_key_pem = pub_;
  opt.probation.samples = 0;
  opt.health_check = testing::CheckTestModel;
  opt.clock = [] { return int64_t{1'800'000'000}; };
  {
    auto u = Updater::Open(root_.path(), opt, fetcher);
    ASSERT_TRUE(u.ok());
    ASSERT_TRUE((*u)->Bootstrap(ModelBytes(1), 1, "{}").ok());
    Status st = (*u)->Offer(doc);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ((*u)->phase(), UpdatePhase::kDownloading);
    EXPECT_EQ((*u)->active().version, 1u);
  }
  fetcher->cut_after = 0;
  auto u = Updater::Open(root_.path(), opt, fetcher);
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE((*u)->Offer(doc).ok());
  EXPECT_EQ(fetcher->first_offset_seen, 30000u);  // resumed, not restarted
  EXPECT_EQ((*u)->phase(), UpdatePhase::kCommitted);
  EXPECT_EQ(ActiveBytes(**u), ModelBytes(2));
}

TEST_F(UpdaterTest, RestartDuringProbationRollsBack) {
  {
    auto u = Open();
    ASSERT_TRUE(u->Offer(Publish(2)).ok());
    ASSERT_EQ(u->phase(), UpdatePhase::kProbation);
  }
  auto u = Open();
  EXPECT_EQ(u->phase(), UpdatePhase::kRolledBack);
  EXPECT_EQ(u->active().version, 1u);
  EXPECT_EQ(ActiveBytes(*u), ModelBytes(1));
}

TEST_F(UpdaterTest, DiskFullDuringDownloadIsClearKeepsTheModelAndRecovers) {
  ScratchDir small("updater-tmpfs");
  if (::mount("tmpfs", small.path().c_str(), "tmpfs", 0, "size=320k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{small.path()};
  UpdaterOptions opt;
  opt.update_public_key_pem = pub_;
  opt.probation.samples = 0;
  opt.health_check = testing::CheckTestModel;
  opt.reporter = [this](const UpdateEvent& e) { events_.push_back(e); };
  std::string root = small / "agent";
  auto u = Updater::Open(root, opt, std::make_shared<FileFetcher>(repo_, 4096));
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE((*u)->Bootstrap(ModelBytes(1), 1, "{}").ok());  // 96 KiB
  std::string filler = small / "filler";
  std::ofstream(filler, std::ios::binary) << std::string(150 << 10, 'f');
  Status st = (*u)->Offer(Publish(2));  // another 96 KiB does not fit
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kResourceExhausted) << st.error().message;
  EXPECT_NE(st.error().message.find("No space left"), std::string::npos) << st.error().message;
  EXPECT_TRUE(Reported("paused"));
  EXPECT_EQ((*u)->active().version, 1u);
  EXPECT_EQ(ActiveBytes(**u), ModelBytes(1));
  u = Result<std::unique_ptr<Updater>>(Error());
  // The state on disk is intact: a restart still runs version 1.
  auto again = Updater::Open(root, opt, std::make_shared<FileFetcher>(repo_, 4096));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ((*again)->active().version, 1u);
  std::filesystem::remove(filler);  // space returns
  ASSERT_TRUE((*again)->Offer(Publish(2)).ok());
  EXPECT_EQ((*again)->active().version, 2u);
  EXPECT_EQ(ActiveBytes(**again), ModelBytes(2));
}

// Real processes: the child runs update after update (with a bad version every tenth) and is
// killed with SIGKILL at random moments, 120 times. After every kill the updater reopens into
// an intact model of a version never below the last one the child reported committed.
TEST_F(UpdaterTest, SurvivesRandomKillsDuringUpdates) {
  std::string child_bin = testing::HelperPath("updater_crash_child");
  ASSERT_TRUE(std::filesystem::exists(child_bin));
  std::mt19937 rng(777);
  uint64_t committed = 1;
  const int kKills = 120;
  for (int k = 0; k < kKills; ++k) {
    testing::Child child({child_bin, root_.path(), repo_, priv_, pub_});
    ASSERT_TRUE(child.started());
    std::string first;
    if (k % 10 == 9) {
      // Every tenth round waits for a commit before the kill, so the run makes progress
      // however slow the machine is (no assumption about timing).
      while ((first = child.ReadLine()).rfind("C ", 0) != 0 && !first.empty()) {
      }
      first += "\n";
    } else {
      ::usleep(std::uniform_int_distribution<int>(2000, 40000)(rng));
    }
    child.Kill();
    std::istringstream out(first + child.ReadAll());
    std::string line;
    while (std::getline(out, line)) {
      if (out.eof()) break;
      unsigned long long v = 0;
      if (std::sscanf(line.c_str(), "C %llu", &v) == 1)
        committed = std::max<uint64_t>(committed, v);
    }
    UpdaterOptions opt;
    opt.update_public_key_pem = pub_;
    auto u = Updater::Open(root_.path(), opt, std::make_shared<FileFetcher>(repo_));
    if (!u.ok() && u.error().code == Errc::kNotFound) continue;
    ASSERT_TRUE(u.ok()) << "kill " << k << ": " << u.error().message;
    if (!(*u)->installed()) continue;  // killed before the factory install finished
    EXPECT_NE((*u)->phase(), UpdatePhase::kProbation);
    EXPECT_GE((*u)->active().version, committed) << "kill " << k;
    EXPECT_NE((*u)->active().version % 10, 0u) << "a bad version is active after kill " << k;
    EXPECT_EQ(ActiveBytes(**u), ModelBytes((*u)->active().version)) << "kill " << k;
  }
  EXPECT_GE(committed, 12u);  // at least one commit per waiting round
  std::printf("updater crash test: %d kills, reached version %llu\n", kKills,
              static_cast<unsigned long long>(committed));
}

}  // namespace
}  // namespace edgeloop::edge
