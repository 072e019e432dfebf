// kill -9 of `edgeloop server`, then a restart on the same data folder and database, on
// SQLite and on a real PostgreSQL: during sustained ingest (every acked sample is present
// once), during a pipeline run (the run fails with a reason, its worker dies with the server,
// the pipeline runs again), and during a staged rollout (it carries on from its persisted
// state; every device is on the old or the new version, never anything else).
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
#include "rollout_devices.hpp"
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

// Enrolls device id (in group) with a server process over HTTPS: an enrollment token from
// the admin, a key and CSR made here, the certificate written beside the key in dir.
DeviceCredentials EnrollDevice(int port, const std::string& data, const std::string& dir,
                               const std::string& id, const std::string& group = "default") {
  const std::string ca_file = data + "/ca.crt";
  httplib::Headers bearer{{"Authorization", "Bearer " + *ReadFile(data + "/admin.token")}};
  auto tok = Connect(port, ca_file, nullptr)
                 ->Post("/v1/enrollment-tokens", bearer,
                        Json{{"device_id", id}, {"group", group}}.dump(), "application/json");
  EXPECT_TRUE(tok && tok->status == 200);
  if (!tok || tok->status != 200) return {};
  auto key = crypto::GenerateTlsKeyPem();
  auto res = Connect(port, ca_file, nullptr)
                 ->Post("/v1/enroll",
                        Json{{"token", Json::parse(tok->body)["token"]},
                             {"csr", *crypto::CreateCsr(*key, id)}}
                            .dump(),
                        "application/json");
  EXPECT_TRUE(res && res->status == 200);
  if (!res || res->status != 200) return {};
  DeviceCredentials cred{id, dir + "/" + id + ".crt", dir + "/" + id + ".key"};
  EXPECT_TRUE(
      WriteFileAtomic(cred.cert_file, Json::parse(res->body)["certificate"].get<std::string>())
          .ok());
  EXPECT_TRUE(WriteFileAtomic(cred.key_file, *key, 0600).ok());
  return cred;
}

TEST_P(CloudCrash, KillNineDuringIngestLosesNoAckedSampleAndDuplicatesNone) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  int port = FreeLoopbackPort();
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
  for (int d = 0; d < kDevices; ++d)
    devices.push_back(EnrollDevice(port, data, dir.path(), "dev-" + std::to_string(d)));
  ASSERT_FALSE(HasFailure());

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

// A pipeline run whose worker is still busy when the server is killed.
constexpr char kBusyWorker[] = R"(#!/bin/sh
echo $$ > "$(dirname "$0")/worker.pid"
echo "worker $1 starting"
while true; do sleep 0.1; done
)";

// A server process with the admin's requests as one-liners.
class Operated {
 public:
  Operated(const std::string& data, int port, std::vector<std::string> args)
      : data_(data), port_(port), args_(std::move(args)) {
    Start();
  }
  void Start() {
    server_ = std::make_unique<ServerProcess>(data_, port_, args_);
    ASSERT_TRUE(server_->WaitReady());
  }
  void KillNine() { server_->Kill(SIGKILL); }
  httplib::Result Post(const std::string& path, const std::string& body,
                       const std::string& type = "application/json") {
    return Connect(port_, data_ + "/ca.crt", nullptr)->Post(path, Bearer(), body, type);
  }
  Json PostOk(const std::string& path, const Json& body, int want) {
    auto res = Post(path, body.dump());
    EXPECT_TRUE(res && res->status == want) << path << ": " << (res ? res->body : "no answer");
    return res && res->status == want ? Json::parse(res->body) : Json();
  }
  Json GetOk(const std::string& path) {
    auto res = Connect(port_, data_ + "/ca.crt", nullptr)->Get(path, Bearer());
    return res && res->status == 200 ? Json::parse(res->body, nullptr, false) : Json();
  }
  std::string Upload(const std::string& bytes) {
    auto res = Post("/v1/artifacts", bytes, "application/octet-stream");
    EXPECT_TRUE(res && res->status == 200);
    return res && res->status == 200 ? Json::parse(res->body)["sha256"].get<std::string>() : "";
  }
  // Version n of clf for each artifact; version 1 in production. Returns the shas by version.
  std::vector<std::string> RegisterVersions(int count) {
    std::vector<std::string> sha(1);
    for (int n = 1; n <= count; ++n) {
      sha.push_back(Upload("onnx bytes of clf version " + std::to_string(n)));
      PostOk("/v1/models/clf/versions", {{"artifacts", {{"fp32", sha.back()}}}}, 201);
    }
    PostOk("/v1/models/clf/versions/1/stage", {{"stage", "production"}}, 200);
    return sha;
  }

 private:
  httplib::Headers Bearer() const {
    return {{"Authorization", "Bearer " + *ReadFile(data_ + "/admin.token")}};
  }
  std::string data_;
  int port_;
  std::vector<std::string> args_;
  std::unique_ptr<ServerProcess> server_;
};

template <typename Pred>
bool WaitUntil(Pred done, double seconds = 60) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    usleep(50'000);
  }
  return done();
}

std::vector<std::string> DatabaseArgs(const std::string& param) {
  if (param == "postgresql") return {"--db", FreshPostgresUrl()};
  return {};
}

TEST_P(CloudCrash, KillNineDuringAPipelineRunFailsTheRunWithAReasonAndKillsItsWorker) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  const std::string worker = dir.path() + "/worker.sh";
  ASSERT_TRUE(WriteFileAtomic(worker, kBusyWorker, 0755).ok());
  std::vector<std::string> args = DatabaseArgs(GetParam());
  for (std::string a : {"--worker-executable", worker.c_str(), "--background-interval-ms", "100"})
    args.push_back(a);
  const int port = FreeLoopbackPort();
  Operated op(data, port, args);
  auto dev = EnrollDevice(port, data, dir.path(), "cam-1");
  wire::SampleBatch batch = MakeBatch("cam-1", 0, 20, 784);
  for (int i = 0; i < batch.samples_size(); ++i) {
    batch.mutable_samples(i)->set_has_label(true);
    batch.mutable_samples(i)->set_label(i % 3);
    batch.mutable_samples(i)->set_label_source(wire::LABEL_SOURCE_HUMAN);
  }
  auto ingested = PostBatch(*Connect(port, data + "/ca.crt", &dev), batch);
  ASSERT_TRUE(ingested && ingested->status == 200);
  op.RegisterVersions(1);
  op.PostOk("/v1/pipelines", {{"yaml", kRetrainPipeline}}, 200);
  Json queued = op.PostOk("/v1/pipelines/retrain/runs", Json::object(), 202);
  const std::string id = queued.value("id", "");
  ASSERT_FALSE(id.empty());
  // Killed while the train step's worker is running.
  ASSERT_TRUE(WaitUntil([&] { return access((dir.path() + "/worker.pid").c_str(), F_OK) == 0; }));
  const pid_t worker_pid = std::stoi(*ReadFile(dir.path() + "/worker.pid"));
  op.KillNine();
  EXPECT_TRUE(WaitUntil([&] { return kill(worker_pid, 0) != 0; }, 10))
      << "the worker outlived the server";

  op.Start();
  Json run = op.GetOk("/v1/runs/" + id);
  EXPECT_EQ(run["status"], "failed") << run.dump();
  EXPECT_EQ(run["result"]["failed_step"], "train");
  EXPECT_NE(run["result"].value("reason", "").find("server stopped during the run"),
            std::string::npos)
      << run.dump();
  for (const auto& step : run["result"]["steps"])
    EXPECT_TRUE(step["status"] == "succeeded" || step["status"] == "failed" ||
                step["status"] == "skipped")
        << step.dump();
  // The pipeline is free: a new run is queued and taken up.
  unlink((dir.path() + "/worker.pid").c_str());
  Json again = op.PostOk("/v1/pipelines/retrain/runs", Json::object(), 202);
  ASSERT_TRUE(again.contains("id"));
  EXPECT_TRUE(WaitUntil([&] { return access((dir.path() + "/worker.pid").c_str(), F_OK) == 0; }))
      << "the second run never reached its worker";
  op.KillNine();
}

// Three devices in a line; clf 2 rolls out (canary, then the rest) while the server is killed
// -9 three times. The devices act as their updaters would: install what they are given,
// commit, report healthy telemetry.
TEST_P(CloudCrash, KillNineDuringARolloutCarriesOnFromItsPersistedState) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  std::vector<std::string> args = DatabaseArgs(GetParam());
  for (std::string a : {"--background-interval-ms", "100"}) args.push_back(a);
  const int port = FreeLoopbackPort();
  Operated op(data, port, args);
  std::vector<DeviceCredentials> devs;
  for (int i = 1; i <= 3; ++i)
    devs.push_back(EnrollDevice(port, data, dir.path(), "cam-" + std::to_string(i), "line"));
  ASSERT_FALSE(HasFailure());
  const std::vector<std::string> sha = op.RegisterVersions(2);
  const std::string public_key = *ReadFile(data + "/update.pub");
  Json rollout = op.PostOk(
      "/v1/rollouts",
      {{"model", "clf"},
       {"version", 2},
       {"target", "group:line"},
       {"canary", "1"},
       {"waves", {"100%"}},
       {"criteria", {{"window_seconds", 1}, {"stage_timeout_seconds", 120}, {"min_labelled", 1}}}},
      201);
  const std::string id = rollout.value("id", "");
  ASSERT_FALSE(id.empty());

  // The devices update as their updaters would; any other artifact than version 1 or 2 is a
  // device left between versions.
  RolloutDevices devices(
      devs, [&](const DeviceCredentials& d) { return Connect(port, data + "/ca.crt", &d); },
      public_key, sha[1], sha[2], "clf:2", 50);
  // Killed before the canary commits, after it committed, and after the wave was given
  // version 2 (the server answers again each time from what it had stored).
  auto stage_of = [&] { return op.GetOk("/v1/rollouts/" + id).value("stage", -1); };
  op.KillNine();
  op.Start();
  EXPECT_TRUE(WaitUntil([&] { return devices.committed() >= 1; }))
      << "the canary never got version 2";
  op.KillNine();
  op.Start();
  EXPECT_TRUE(WaitUntil([&] { return stage_of() == 1; })) << op.GetOk("/v1/rollouts/" + id).dump();
  op.KillNine();
  op.Start();
  EXPECT_TRUE(WaitUntil([&] { return op.GetOk("/v1/rollouts/" + id)["status"] == "completed"; }))
      << op.GetOk("/v1/rollouts/" + id).dump();
  devices.Stop();
  EXPECT_EQ(devices.strays(), 0) << "a device was given something other than version 1 or 2";
  EXPECT_EQ(devices.committed(), 3);
  EXPECT_EQ(op.GetOk("/v1/models/clf/versions/2")["stage"], "production");
  EXPECT_EQ(op.GetOk("/v1/models/clf/versions/1")["stage"], "archived");
  Json state = op.GetOk("/v1/rollouts/" + id);
  for (const auto& stage : state["stages"]) EXPECT_EQ(stage["result"], "passed") << state.dump();
}

EDGELOOP_BOTH_DATABASES(CloudCrash);

}  // namespace
}  // namespace edgeloop::testing
