#include "edge/spool.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "edge/spool_test_payload.hpp"
#include "edge/test_util.hpp"

namespace edgeloop::edge {
namespace {

using testing::ScratchDir;

std::vector<SpoolRecord> All(const Spool& s) {
  auto r = s.Peek(1u << 30, size_t{1} << 40);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : std::vector<SpoolRecord>{};
}

std::vector<std::string> Segments(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().rfind("seg-", 0) == 0) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(SpoolTest, AppendsPeeksAndAcksInOrder) {
  ScratchDir dir("spool");
  auto s = Spool::Open(dir.path());
  ASSERT_TRUE(s.ok()) << s.error().message;
  for (uint64_t i = 1; i <= 5; ++i) {
    auto seq = (*s)->Append(TestPayload(i), i == 2);
    ASSERT_TRUE(seq.ok());
    EXPECT_EQ(*seq, i);
  }
  auto batch = (*s)->Peek(3, 1 << 20);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->size(), 3u);
  EXPECT_EQ((*batch)[1].seq, 2u);
  EXPECT_TRUE((*batch)[1].labelled);
  EXPECT_FALSE((*batch)[0].labelled);
  EXPECT_EQ((*batch)[2].payload, TestPayload(3));
  ASSERT_TRUE((*s)->Ack(3).ok());
  auto rest = All(**s);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].seq, 4u);
  EXPECT_EQ((*s)->Stats().depth_records, 2u);
  EXPECT_FALSE((*s)->Ack(99).ok());
}

TEST(SpoolTest, PeekRespectsByteBudgetButReturnsAtLeastOne) {
  ScratchDir dir("spool");
  auto s = Spool::Open(dir.path());
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Append(std::string(100, 'x')).ok());
  ASSERT_TRUE((*s)->Append(std::string(100, 'y')).ok());
  auto one = (*s)->Peek(10, 10);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
  auto two = (*s)->Peek(10, 200);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 2u);
}

TEST(SpoolTest, ReopenKeepsRecordsAndSequenceNumbersNeverRepeat) {
  ScratchDir dir("spool");
  SpoolOptions opt;
  opt.segment_bytes = 256;
  {
    auto s = Spool::Open(dir.path(), opt);
    ASSERT_TRUE(s.ok());
    for (uint64_t i = 1; i <= 20; ++i) ASSERT_TRUE((*s)->Append(TestPayload(i)).ok());
    ASSERT_TRUE((*s)->Ack(20).ok());
  }
  EXPECT_EQ(Segments(dir.path()).size(), 1u);  // acknowledged segments were deleted
  auto s = Spool::Open(dir.path(), opt);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(All(**s).empty());
  auto seq = (*s)->Append(TestPayload(21));
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 21u);
}

TEST(SpoolTest, TruncatesTornTailOnOpen) {
  ScratchDir dir("spool");
  {
    auto s = Spool::Open(dir.path());
    ASSERT_TRUE(s.ok());
    for (uint64_t i = 1; i <= 4; ++i) ASSERT_TRUE((*s)->Append(TestPayload(i)).ok());
  }
  auto segs = Segments(dir.path());
  ASSERT_EQ(segs.size(), 1u);
  auto before = std::filesystem::file_size(segs[0]);
  {
    // Half a frame, as a power cut in the middle of a write leaves it.
    std::ofstream f(segs[0], std::ios::binary | std::ios::app);
    f.write("\x30\x00\x00\x00\x12\x34", 6);
  }
  auto s = Spool::Open(dir.path());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Stats().truncated_bytes, 6u);
  EXPECT_EQ(std::filesystem::file_size(segs[0]), before);
  auto recs = All(**s);
  ASSERT_EQ(recs.size(), 4u);
  auto seq = (*s)->Append(TestPayload(5));
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 5u);
}

TEST(SpoolTest, NeverReturnsACorruptRecord) {
  ScratchDir dir("spool");
  {
    auto s = Spool::Open(dir.path());
    ASSERT_TRUE(s.ok());
    for (uint64_t i = 1; i <= 6; ++i) ASSERT_TRUE((*s)->Append(TestPayload(i)).ok());
  }
  auto seg = Segments(dir.path())[0];
  // Flip one payload byte inside record 4.
  size_t off = 0;
  for (uint64_t i = 1; i < 4; ++i) off += 20 + TestPayload(i).size();
  {
    std::fstream f(seg, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(off + 20 + 3));
    f.put('#');
  }
  auto s = Spool::Open(dir.path());
  ASSERT_TRUE(s.ok());
  auto recs = All(**s);
  ASSERT_EQ(recs.size(), 3u);
  for (const auto& r : recs) EXPECT_EQ(r.payload, TestPayload(r.seq));
  EXPECT_GT((*s)->Stats().truncated_bytes, 0u);
}

TEST(SpoolTest, DropsOldestSegmentWhenFullAndCountsPersistently) {
  ScratchDir dir("spool");
  SpoolOptions opt;
  opt.segment_bytes = 200;
  opt.max_bytes = 1000;
  uint64_t dropped = 0;
  {
    auto s = Spool::Open(dir.path(), opt);
    ASSERT_TRUE(s.ok());
    for (int i = 0; i < 100; ++i) ASSERT_TRUE((*s)->Append(std::string(30, 'r')).ok());
    SpoolStats st = (*s)->Stats();
    dropped = st.dropped_records;
    EXPECT_GT(dropped, 0u);
    // What is left is the newest records, contiguous, and within the bound.
    EXPECT_EQ(st.depth_records + dropped, 100u);
    auto recs = All(**s);
    ASSERT_FALSE(recs.empty());
    EXPECT_EQ(recs.back().seq, 100u);
    EXPECT_EQ(recs.front().seq, dropped + 1);
    uint64_t total = 0;
    for (const auto& p : Segments(dir.path())) total += std::filesystem::file_size(p);
    EXPECT_LE(total, opt.max_bytes);
  }
  auto s = Spool::Open(dir.path(), opt);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Stats().dropped_records, dropped);
}

TEST(SpoolTest, RejectNewPolicyRefusesAndCounts) {
  ScratchDir dir("spool");
  SpoolOptions opt;
  opt.max_bytes = 200;
  opt.drop = DropPolicy::kRejectNew;
  auto s = Spool::Open(dir.path(), opt);
  ASSERT_TRUE(s.ok());
  int stored = 0;
  Error last;
  for (int i = 0; i < 10; ++i) {
    auto r = (*s)->Append(std::string(30, 'r'));
    if (r.ok()) {
      ++stored;
    } else {
      last = r.error();
    }
  }
  EXPECT_EQ(stored, 4);  // 4 * (20 + 30) = 200
  EXPECT_EQ(last.code, Errc::kResourceExhausted);
  EXPECT_EQ((*s)->Stats().dropped_records, 6u);
  EXPECT_EQ(All(**s).front().seq, 1u);
}

TEST(SpoolTest, DiskFullIsAClearErrorAndRecoversWhenSpaceReturns) {
  // Injected fault: the write stores part of the frame and then fails with ENOSPC, as a full
  // disk does. Used because a real small filesystem needs mount privileges (see the next test).
  ScratchDir dir("spool");
  bool full = false;
  SpoolOptions opt;
  opt.write_fn = [&full](int fd, const void* buf, size_t n) -> ssize_t {
    if (!full) return ::write(fd, buf, n);
    if (n > 5) return ::write(fd, buf, 5);
    errno = ENOSPC;
    return -1;
  };
  auto s = Spool::Open(dir.path(), opt);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Append(TestPayload(1)).ok());
  full = true;
  auto r = (*s)->Append(TestPayload(2));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kResourceExhausted);
  EXPECT_NE(r.error().message.find("disk full"), std::string::npos) << r.error().message;
  full = false;
  auto r2 = (*s)->Append(TestPayload(2));
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(*r2, 2u);
  s = Result<std::unique_ptr<Spool>>(Error());
  auto again = Spool::Open(dir.path(), opt);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->Stats().truncated_bytes, 0u);  // no half frame was left behind
  auto recs = All(**again);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[1].payload, TestPayload(2));
}

TEST(SpoolTest, DiskFullOnARealSmallFilesystem) {
  ScratchDir dir("spool-tmpfs");
  if (::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, "size=256k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{dir.path()};
  std::string spool_dir = dir / "spool";
  std::string filler = dir / "filler";
  SpoolOptions opt;
  opt.max_bytes = 1ull << 30;  // the filesystem, not the spool bound, is the limit
  opt.segment_bytes = 16 << 10;
  uint64_t last_ok = 0;
  Error err;
  {
    auto s = Spool::Open(spool_dir, opt);
    ASSERT_TRUE(s.ok());
    std::ofstream(filler, std::ios::binary) << std::string(128 << 10, 'f');
    for (uint64_t i = 1; i < 100000; ++i) {
      auto r = (*s)->Append(TestPayload(i));
      if (!r.ok()) {
        err = r.error();
        break;
      }
      last_ok = *r;
    }
    EXPECT_EQ(err.code, Errc::kResourceExhausted) << err.message;
    EXPECT_GT(last_ok, 0u);
    std::filesystem::remove(filler);  // space returns
    auto r = (*s)->Append(TestPayload(last_ok + 1));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, last_ok + 1);
  }
  auto s = Spool::Open(spool_dir, opt);
  ASSERT_TRUE(s.ok());
  auto recs = All(**s);
  ASSERT_EQ(recs.size(), last_ok + 1);
  for (size_t i = 0; i < recs.size(); ++i) {
    EXPECT_EQ(recs[i].seq, i + 1);
    EXPECT_EQ(recs[i].payload, TestPayload(i + 1));
  }
}

// Real processes: a child appends (fsync per record) and is killed with SIGKILL at random
// moments, 150 times. After each kill, every record the child reported durable is present
// exactly once, in order, undamaged, and every acknowledged record stays acknowledged.
TEST(SpoolCrashTest, SurvivesRandomKillsWithoutLossDuplicationOrCorruption) {
  ScratchDir dir("spool-crash");
  std::string child_bin = testing::HelperPath("spool_crash_child");
  ASSERT_TRUE(std::filesystem::exists(child_bin)) << child_bin;
  std::mt19937 rng(12345);
  uint64_t reported = 0, reported_ack = 0;
  uint64_t truncated_total = 0;
  const int kKills = 150;
  for (int k = 0; k < kKills; ++k) {
    testing::Child child({child_bin, dir.path()});
    ASSERT_TRUE(child.started());
    std::string first;
    if (k % 10 == 9) {
      // Every tenth round waits for a durable append before the kill, so the run makes
      // progress however slow the machine is (no assumption about timing).
      first = child.ReadLine() + "\n";
    } else {
      ::usleep(std::uniform_int_distribution<int>(1000, 25000)(rng));
    }
    child.Kill();
    std::istringstream out(first + child.ReadAll());
    std::string line;
    while (std::getline(out, line)) {
      if (out.eof()) break;  // a line cut by the kill
      unsigned long long v = 0;
      char kind = 0;
      if (std::sscanf(line.c_str(), "%c %llu", &kind, &v) != 2) continue;
      if (kind == 'A') reported = std::max<uint64_t>(reported, v);
      if (kind == 'K') reported_ack = std::max<uint64_t>(reported_ack, v);
    }
    auto s = Spool::Open(dir.path());
    ASSERT_TRUE(s.ok()) << s.error().message;
    SpoolStats st = (*s)->Stats();
    truncated_total += st.truncated_bytes;
    EXPECT_GE(st.acked_seq, reported_ack) << "kill " << k;
    EXPECT_EQ(st.dropped_records, 0u);
    auto recs = All(**s);
    uint64_t expect = st.acked_seq + 1;
    for (const auto& r : recs) {
      ASSERT_EQ(r.seq, expect) << "kill " << k;
      ASSERT_EQ(r.payload, TestPayload(r.seq)) << "kill " << k;
      ASSERT_EQ(r.labelled, r.seq % 3 == 0);
      ++expect;
    }
    EXPECT_GE(expect - 1, reported) << "a record reported durable is missing after kill " << k;
  }
  EXPECT_GE(reported, 15u);  // at least one durable append per waiting round
  std::printf("spool crash test: %d kills, %llu records appended, %llu torn bytes cut\n", kKills,
              static_cast<unsigned long long>(reported),
              static_cast<unsigned long long>(truncated_total));
}

}  // namespace
}  // namespace edgeloop::edge
