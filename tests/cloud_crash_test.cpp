// kill -9 of `edgeloop server` during sustained ingest from several devices, then a restart
// on the same data folder: every acked sample is present, and none is stored twice. On SQLite
// and on a real PostgreSQL.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "cloud_test_util.hpp"
#include "database_param.hpp"
#include "server_process.hpp"

namespace edgeloop::testing {
namespace {

using Json = nlohmann::json;

std::unique_ptr<httplib::SSLClient> Connect(int port, const std::string& ca_file,
                                            const DeviceCredentials* device) {
  auto c = device ? std::make_unique<httplib::SSLClient>("127.0.0.1", port, device->cert_file,
                                                         device->key_file)
                  : std::make_unique<httplib::SSLClient>("127.0.0.1", port);
  c->set_ca_cert_path(ca_file);
  c->enable_server_certificate_verification(true);
  return c;
}

using CloudCrash = DatabaseTest;

TEST_P(CloudCrash, KillNineDuringIngestLosesNoAckedSampleAndDuplicatesNone) {
  // Requests to the killed server write to dead sockets; that must fail, not kill the test.
  signal(SIGPIPE, SIG_IGN);
  TempDir dir;
  const std::string data = dir.path() + "/data";
  int port = FreePort();
  // The metadata database: SQLite in the data folder, or the shared PostgreSQL.
  std::vector<std::string> db;
  if (GetParam() == "postgresql") db = {"--db", DatabaseUrl()};
  auto server = std::make_unique<ServerProcess>(data, port, db);
  ASSERT_TRUE(server->WaitReady());
  const std::string ca_file = data + "/ca.crt";
  std::string admin = *ReadFile(data + "/admin.token");
  httplib::Headers bearer{{"Authorization", "Bearer " + admin}};

  constexpr int kDevices = 4;
  constexpr int kBatch = 25;
  std::vector<DeviceCredentials> devices;
  for (int d = 0; d < kDevices; ++d) {
    std::string id = "dev-" + std::to_string(d);
    auto tok = Connect(port, ca_file, nullptr)
                   ->Post("/v1/enrollment-tokens", bearer, Json{{"device_id", id}}.dump(),
                          "application/json");
    ASSERT_EQ(tok->status, 200);
    auto key = crypto::GenerateTlsKeyPem();
    auto res = Connect(port, ca_file, nullptr)
                   ->Post("/v1/enroll",
                          Json{{"token", Json::parse(tok->body)["token"]},
                               {"csr", *crypto::CreateCsr(*key, id)}}
                              .dump(),
                          "application/json");
    ASSERT_EQ(res->status, 200);
    DeviceCredentials cred{id, dir.path() + "/" + id + ".crt", dir.path() + "/" + id + ".key"};
    ASSERT_TRUE(
        WriteFileAtomic(cred.cert_file, Json::parse(res->body)["certificate"].get<std::string>())
            .ok());
    ASSERT_TRUE(WriteFileAtomic(cred.key_file, *key, 0600).ok());
    devices.push_back(cred);
  }

  // Each device sends consecutive batches until a request fails (the server is gone).
  std::atomic<int> acked_batches{0};
  std::vector<int> acked(kDevices, 0), sent(kDevices, 0);
  std::vector<std::thread> threads;
  for (int d = 0; d < kDevices; ++d) {
    threads.emplace_back([&, d] {
      auto client = Connect(port, ca_file, &devices[d]);
      for (int b = 0; b < 100000; ++b) {
        sent[d] = b + 1;
        auto res = PostBatch(
            *client, MakeBatch(devices[d].device_id, static_cast<uint64_t>(b) * kBatch, kBatch));
        if (!res || res->status != 200) return;
        acked[d] = b + 1;
        ++acked_batches;
      }
    });
  }
  // Kill once ingest is well under way (a count of acks, not a time).
  while (acked_batches.load() < 40) usleep(1000);
  server->Kill(SIGKILL);
  for (auto& t : threads) t.join();

  server = std::make_unique<ServerProcess>(data, port, db);
  ASSERT_TRUE(server->WaitReady());
  auto counts = Connect(port, ca_file, nullptr)->Get("/v1/samples/counts?by=device", bearer);
  ASSERT_EQ(counts->status, 200);
  Json c = Json::parse(counts->body)["counts"];
  for (int d = 0; d < kDevices; ++d) {
    const std::string& id = devices[d].device_id;
    uint64_t stored = c.value(id, uint64_t{0});
    // Every acked batch is there; at most the one in flight was stored without its ack.
    EXPECT_GE(stored, static_cast<uint64_t>(acked[d]) * kBatch) << id;
    EXPECT_LE(stored, static_cast<uint64_t>(sent[d]) * kBatch) << id;
    // Re-sending everything acked stores nothing new: each sample is present exactly once.
    auto client = Connect(port, ca_file, &devices[d]);
    for (int b = 0; b < acked[d]; ++b) {
      auto res = PostBatch(*client, MakeBatch(id, static_cast<uint64_t>(b) * kBatch, kBatch));
      ASSERT_TRUE(res);
      ASSERT_EQ(res->status, 200) << res->body;
      ASSERT_EQ(Json::parse(res->body)["accepted"], 0) << id << " batch " << b;
      ASSERT_EQ(Json::parse(res->body)["duplicates"], kBatch);
    }
  }
  EXPECT_GT(acked_batches.load(), 0);
}

EDGELOOP_BOTH_DATABASES(CloudCrash);

}  // namespace
}  // namespace edgeloop::testing
