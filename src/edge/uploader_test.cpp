#include "edge/uploader.hpp"

#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "edge/spool_test_payload.hpp"
#include "edge/test_util.hpp"

namespace edgeloop::edge {
namespace {

using testing::ScratchDir;

// The receiving side as the cloud implements it: stores each (device, seq) once and answers
// with the highest contiguous sequence number stored. Outages are forced by the test: the
// server can be down (nothing stored), or store the batch and lose the answer.
class DedupServerTransport : public UploadTransport {
 public:
  bool down = false;
  bool lose_answer = false;
  size_t store_at_most = SIZE_MAX;  // a server that stores only a prefix of a batch
  std::map<uint64_t, std::string> stored;
  uint64_t duplicates_received = 0;

  Result<uint64_t> Send(const UploadBatch& batch) override {
    if (down) return Error(Errc::kIo, "connection refused");
    size_t n = 0;
    for (const auto& r : batch.records) {
      if (n++ >= store_at_most) break;
      if (!stored.emplace(r.seq, r.payload).second) ++duplicates_received;
    }
    if (lose_answer) return Error(Errc::kIo, "connection reset before the answer");
    uint64_t through = 0;
    while (stored.count(through + 1)) ++through;
    return through;
  }
};

class UploaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Spool::Open(dir_.path());
    ASSERT_TRUE(s.ok());
    spool_ = std::move(*s);
    server_ = std::make_shared<DedupServerTransport>();
  }
  void Append(uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t seq = spool_->Stats().next_seq;
      ASSERT_TRUE(spool_->Append(TestPayload(seq)).ok());
    }
  }
  UploaderOptions Options() {
    UploaderOptions o;
    o.device_id = "dev-1";
    o.max_records = 7;
    o.base_delay = std::chrono::milliseconds(100);
    o.max_delay = std::chrono::milliseconds(2000);
    return o;
  }
  void ExpectServerHasExactly(uint64_t n) {
    ASSERT_EQ(server_->stored.size(), n);
    for (const auto& [seq, payload] : server_->stored) EXPECT_EQ(payload, TestPayload(seq));
    EXPECT_EQ(spool_->Stats().depth_records, 0u);
  }

  ScratchDir dir_{"uploader"};
  std::unique_ptr<Spool> spool_;
  std::shared_ptr<DedupServerTransport> server_;
};

TEST_F(UploaderTest, DeliversEverythingInBatches) {
  Append(30);
  Uploader up(*spool_, server_, Options());
  size_t total = 0;
  for (int i = 0; i < 10; ++i) {
    auto r = up.Step();
    ASSERT_TRUE(r.ok());
    EXPECT_LE(*r, 7u);
    total += *r;
  }
  EXPECT_EQ(total, 30u);
  ExpectServerHasExactly(30);
  EXPECT_EQ(up.NextDelay().count(), -1);  // idle
}

TEST_F(UploaderTest, BacksOffExponentiallyWithJitterAndResumesAfterTheOutage) {
  Append(20);
  Uploader up(*spool_, server_, Options());
  server_->down = true;
  std::vector<int64_t> delays;
  for (int i = 0; i < 8; ++i) {
    EXPECT_FALSE(up.Step().ok());
    delays.push_back(up.NextDelay().count());
  }
  // Each wait lies in [0, min(max, base * 2^n)]; the ceiling grows, so later waits can be
  // longer than any early one could be, and the jitter makes them differ.
  for (size_t n = 0; n < delays.size(); ++n) {
    int64_t cap = std::min<int64_t>(2000, 100LL << (n + 1));
    EXPECT_GE(delays[n], 0);
    EXPECT_LE(delays[n], cap);
  }
  EXPECT_GT(*std::max_element(delays.begin() + 4, delays.end()), 200);
  EXPECT_EQ(spool_->Stats().depth_records, 20u);  // nothing left the spool during the outage
  server_->down = false;
  while (spool_->Stats().depth_records > 0) ASSERT_TRUE(up.Step().ok());
  EXPECT_EQ(up.stats().consecutive_failures, 0u);
  ExpectServerHasExactly(20);
}

TEST_F(UploaderTest, LostAnswersAndPartialStoresNeitherLoseNorDuplicate) {
  Append(40);
  Uploader up(*spool_, server_, Options());
  server_->lose_answer = true;  // stored, but the device never hears it: it must resend
  EXPECT_FALSE(up.Step().ok());
  EXPECT_EQ(spool_->Stats().depth_records, 40u);
  server_->lose_answer = false;
  server_->store_at_most = 3;  // the server takes only part of each batch
  for (int i = 0; i < 40 && spool_->Stats().depth_records > 0; ++i) ASSERT_TRUE(up.Step().ok());
  server_->store_at_most = SIZE_MAX;
  while (spool_->Stats().depth_records > 0) ASSERT_TRUE(up.Step().ok());
  ExpectServerHasExactly(40);
  EXPECT_GT(server_->duplicates_received, 0u);  // resends happened and were absorbed
}

TEST_F(UploaderTest, ResumesFromTheSpoolAfterARestart) {
  Append(10);
  {
    Uploader up(*spool_, server_, Options());
    ASSERT_TRUE(up.Step().ok());  // 7 delivered
  }
  spool_.reset();
  auto s = Spool::Open(dir_.path());
  ASSERT_TRUE(s.ok());
  spool_ = std::move(*s);
  EXPECT_EQ(spool_->Stats().depth_records, 3u);
  Uploader up(*spool_, server_, Options());
  ASSERT_TRUE(up.Step().ok());
  ExpectServerHasExactly(10);
  EXPECT_EQ(server_->duplicates_received, 0u);
}

TEST_F(UploaderTest, RunDrainsInTheBackgroundUntilStopped) {
  Uploader up(*spool_, server_, Options());
  std::thread t([&] { up.Run(std::chrono::milliseconds(20)); });
  Append(25);
  up.Wake();
  for (int i = 0; i < 500 && spool_->Stats().depth_records > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  up.Stop();
  t.join();  // the server's records are read only after the uploader thread is gone
  ExpectServerHasExactly(25);
}

}  // namespace
}  // namespace edgeloop::edge
