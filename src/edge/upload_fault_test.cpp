// Real processes on loopback: an uploader child drains a spool of 3000 records over HTTP to
// an ingest server child while both are killed with SIGKILL and restarted at random moments.
// In the end the server holds every record exactly once.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>

#include "common/free_port.hpp"
#include "edge/spool.hpp"
#include "edge/test_util.hpp"

namespace edgeloop::edge {
namespace {

using testing::Child;
using testing::HelperPath;
using testing::ScratchDir;

TEST(UploadFaultTest, ServerAndAgentKilledDuringUploadNothingLostNothingDuplicated) {
  ScratchDir dir("upload-fault");
  std::string spool_dir = dir / "spool", ledger = dir / "server.log";
  const uint64_t kRecords = 3000;
  {
    SpoolOptions opt;
    opt.fsync = FsyncPolicy::kNever;  // prefill speed; the file contents are what matters
    opt.segment_bytes = 16 << 10;
    auto s = Spool::Open(spool_dir, opt);
    ASSERT_TRUE(s.ok());
    for (uint64_t i = 1; i <= kRecords; ++i)
      ASSERT_TRUE((*s)->Append("sample-" + std::to_string(i), i % 5 == 0).ok());
  }
  int port = FreeLoopbackPort();
  ASSERT_GT(port, 0);
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  std::vector<std::string> server_argv = {HelperPath("ingest_test_server"), std::to_string(port),
                                          ledger};
  std::vector<std::string> agent_argv = {HelperPath("upload_child"), spool_dir, url};

  auto start_server = [&] {
    auto c = std::make_unique<Child>(server_argv);
    EXPECT_EQ(c->ReadLine(), "ready");
    return c;
  };
  auto server = start_server();
  auto agent = std::make_unique<Child>(agent_argv);
  std::mt19937 rng(4242);
  int server_kills = 0, agent_kills = 0;
  for (int k = 0; k < 40; ++k) {
    ::usleep(std::uniform_int_distribution<int>(2000, 30000)(rng));
    if (rng() % 2 == 0) {
      server->Kill();
      ++server_kills;
      ::usleep(std::uniform_int_distribution<int>(0, 20000)(rng));  // an outage
      server = start_server();
    } else {
      agent->Kill();
      ++agent_kills;
      agent = std::make_unique<Child>(agent_argv);
    }
  }
  size_t before_drain = 0;
  {
    std::ifstream partial(ledger);
    std::string l;
    while (std::getline(partial, l)) ++before_drain;
  }
  EXPECT_EQ(agent->Wait(), 0);  // drains what is left, then exits
  server->Kill();

  std::map<uint64_t, int> seen;
  std::ifstream in(ledger);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) ++seen[std::stoull(line)];
  EXPECT_EQ(seen.size(), kRecords);
  for (uint64_t i = 1; i <= kRecords; ++i) EXPECT_EQ(seen[i], 1) << "record " << i;
  std::printf(
      "upload fault test: %d server kills, %d agent kills, %zu of %zu records stored "
      "when the faults ended, %zu delivered exactly once\n",
      server_kills, agent_kills, before_drain, static_cast<size_t>(kRecords), seen.size());
}

}  // namespace
}  // namespace edgeloop::edge
