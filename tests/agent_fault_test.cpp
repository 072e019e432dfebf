// Fault tests of the edge agent with real processes on loopback: `edgeloop server` and
// `edgeloop-agent` children, real TLS, SIGKILL for real.
//   (a) the server is killed and restarted during upload: every sample the agent produced is
//       at the server exactly once;
//   (b) the agent is killed at random moments, updates in flight included: every restart runs
//       a working model and carries on;
//   (c) tampered artifact, wrong signature, expired metadata, an older version: refused, the
//       model in use kept, and each refusal visible in the server's update events.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <random>

#include "agent_test_util.hpp"
#include "cloud/database.hpp"
#include "common/crypto.hpp"
#include "edge/updater.hpp"
#include "server_process.hpp"

namespace edgeloop::testing {
namespace {

using Json = nlohmann::json;

class AgentFault : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = FreeLoopbackPort();
    server_ = std::make_unique<ServerProcess>(data_, port_);
    ASSERT_TRUE(server_->WaitReady());
    ASSERT_TRUE(WriteFileAtomic(factory_, LinearModelOnnx(0)).ok());
  }

  std::string WriteConfig(const std::string& device, const std::string& source,
                          const std::string& extra) {
    std::string path = dir_.path() + "/" + device + ".yaml";
    Operator op(port_, data_);
    (void)WriteFileAtomic(
        path, AgentYaml(device, dir_.path() + "/" + device, port_, op.EnrollmentToken(device),
                        data_ + "/ca.crt", factory_, source, extra));
    return path;
  }

  void RestartServer(std::vector<std::string> extra = {}) {
    server_->Kill(SIGKILL);
    server_ = std::make_unique<ServerProcess>(data_, port_, std::move(extra));
    ASSERT_TRUE(server_->WaitReady());
  }

  TempDir dir_;
  std::string data_ = dir_.path() + "/server";
  std::string factory_ = dir_.path() + "/factory.onnx";
  int port_ = 0;
  std::unique_ptr<ServerProcess> server_;
  const std::string agent_bin_ = EDGELOOP_AGENT_BINARY;
};

TEST_F(AgentFault, ServerKilledDuringUploadEverySampleArrivesExactlyOnce) {
  constexpr int kSamples = 1500;
  WriteCsvDataset(dir_.path() + "/data.csv", kSamples);
  std::string config = WriteConfig(
      "up-1", "source: {kind: replay, dataset: " + dir_.path() + "/data.csv, rate_hz: 300}\n",
      "sampling: {policy: all}\nupload: {batch_records: 25, base_delay_ms: 20, "
      "max_delay_ms: 300}\ntelemetry: {interval_s: 0.5}\nupdate: {poll_s: 1}\n");
  const std::string log = dir_.path() + "/up-1.log";
  AgentProcess agent(agent_bin_, config, log);
  Operator op(port_, data_);
  // Kill the server three times while the agent produces and uploads (progress-driven).
  for (uint64_t threshold : {200u, 600u, 1000u}) {
    ASSERT_TRUE(WaitFor([&] { return op.SampleCount("up-1") >= threshold; }, 60))
        << "stuck below " << threshold << "\n"
        << *ReadFile(log);
    RestartServer();
  }
  ASSERT_TRUE(WaitFor([&] { return op.SampleCount("up-1") >= kSamples; }, 60)) << *ReadFile(log);
  // Stopped with SIGTERM: the agent exits cleanly.
  int status = agent.Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << *ReadFile(log);
  EXPECT_EQ(op.SampleCount("up-1"), static_cast<uint64_t>(kSamples));
  // By sequence: each of 1..kSamples stored once, none else.
  server_->Kill(SIGKILL);
  auto db = cloud::OpenDatabase("sqlite:" + data_ + "/edgeloop.db");
  ASSERT_TRUE(db.ok());
  auto rows = (*db)->Query(
      "SELECT COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM samples WHERE device_id = ?",
      {"up-1"});
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->at(0), (cloud::Row{std::to_string(kSamples), std::to_string(kSamples), "1",
                                     std::to_string(kSamples)}));
  auto labelled =
      (*db)->Query("SELECT COUNT(*) FROM samples WHERE device_id = ? AND label >= 0", {"up-1"});
  ASSERT_TRUE(labelled.ok());
  EXPECT_EQ(labelled->at(0).at(0), std::to_string(kSamples));  // replayed labels arrived
  std::printf("server kill test: %d samples, 3 server kills, each stored once\n", kSamples);
}

// Reads the updater's phase from state.json (what the kill interrupted).
std::string PhaseOnDisk(const std::string& models_dir) {
  auto text = ReadFile(models_dir + "/state.json");
  if (!text.ok()) return "none";
  auto j = Json::parse(*text, nullptr, false);
  return j.is_object() ? j.value("phase", "?") : "?";
}

TEST_F(AgentFault, AgentKilledAtRandomAlwaysRestartsIntoAWorkingModel) {
  WriteCsvDataset(dir_.path() + "/data.csv", 300);
  std::string config = WriteConfig(
      "kill-1",
      "source: {kind: replay, dataset: " + dir_.path() + "/data.csv, rate_hz: 400, loop: true}\n",
      "sampling: {policy: uniform, rate: 0.1}\nupload: {base_delay_ms: 20, max_delay_ms: 200}\n"
      "telemetry: {interval_s: 0.3}\nupdate: {poll_s: 0.05, probation_samples: 40}\n");
  const std::string state = dir_.path() + "/kill-1";
  const std::string log = dir_.path() + "/kill-1.log";
  Operator op(port_, data_);
  // The first start enrolls; later starts reuse the identity.
  {
    AgentProcess first(agent_bin_, config, log);
    ASSERT_TRUE(WaitFor([&] { return CountInFile(log, "inferring with model") >= 1; }, 60))
        << *ReadFile(log);
    first.Kill(SIGKILL);
  }
  const std::string pub = *ReadFile(state + "/identity/update.pub");

  // A publisher keeps deploying new versions (1 MiB artifacts, every fifth one with a golden
  // case it fails) while the agent is killed at random moments.
  std::atomic<bool> done{false};
  std::atomic<int> published{0};
  std::thread publisher([&] {
    for (int v = 1; !done; ++v) {
      std::string bytes = LinearModelOnnx(v, 1 << 20);
      std::string path = dir_.path() + "/pub.onnx";
      (void)WriteFileAtomic(path, bytes);
      auto doc = op.Deploy("kill-1", bytes, "m" + std::to_string(v), GoldenFor(path, v % 5 == 0));
      if (!doc.contains("error")) ++published;
      for (int i = 0; i < 15 && !done; ++i) usleep(20'000);
    }
  });

  std::mt19937 rng(2024);
  std::map<std::string, int> phases;
  const int kKills = 60;
  int kills = 0;
  for (; kills < kKills; ++kills) {
    size_t before = CountInFile(log, "inferring with model");
    AgentProcess agent(agent_bin_, config, log);
    // Carries on: within this run it infers with a model (a progress condition, not a time).
    ASSERT_TRUE(WaitFor([&] { return CountInFile(log, "inferring with model") > before; }, 60))
        << "kill " << kills << ": no inference after restart\n"
        << *ReadFile(log);
    usleep(std::uniform_int_distribution<int>(0, 600'000)(rng));
    agent.Kill(SIGKILL);
    ++phases[PhaseOnDisk(state + "/models")];
    // The state left behind reopens into an intact model that loads and infers.
    edge::UpdaterOptions opt;
    opt.update_public_key_pem = pub;
    auto u = edge::Updater::Open(state + "/models", opt, nullptr);
    ASSERT_TRUE(u.ok()) << "kill " << kills << ": " << u.error().message;
    ASSERT_TRUE((*u)->installed()) << "kill " << kills << ": no model installed";
    auto model = edge::RuntimeClassifier::Load((*u)->ActiveModelPath());
    ASSERT_TRUE(model.ok()) << "kill " << kills << ": " << model.error().message;
    auto out = (*model)->RunRaw({}, {0.9f, 0.1f, 0.1f, 0.1f});
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->size(), static_cast<size_t>(kClasses));
    // Version 0 is the factory model; every fifth published version fails its golden case.
    uint64_t active = (*u)->active().version;
    EXPECT_TRUE(active == 0 || active % 5 != 0)
        << "failing version " << active << " active after kill " << kills;
  }
  done = true;
  publisher.join();
  std::string seen;
  for (const auto& [p, n] : phases) seen += " " + p + "=" + std::to_string(n);
  std::printf("agent kill test: %d kills survived, %d versions published; phase at kill:%s\n",
              kills, published.load(), seen.c_str());
  EXPECT_EQ(CountInFile(log, "edgeloop-agent: device kill-1"), static_cast<size_t>(kKills + 1));
}

// True when one of the device's events is a refusal whose reason contains needle.
bool RefusalReported(const Operator& op, const std::string& device, const std::string& needle) {
  for (const auto& e : op.Events(device)) {
    std::string reason = e.value("reason", "");
    if (reason.rfind("refused", 0) == 0 && reason.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST_F(AgentFault, RefusesBadUpdatesAndReportsEachRefusal) {
  WriteCsvDataset(dir_.path() + "/data.csv", 200);
  const std::string source =
      "source: {kind: replay, dataset: " + dir_.path() + "/data.csv, rate_hz: 200, loop: true}\n";
  std::string config = WriteConfig("ref-1", source,
                                   "update: {poll_s: 0.1, probation_samples: 20}\n"
                                   "telemetry: {interval_s: 0.2}\n");
  const std::string log = dir_.path() + "/ref-1.log";
  Operator op(port_, data_);
  auto agent = std::make_unique<AgentProcess>(agent_bin_, config, log);
  auto committed = [&](const std::string& mv) {
    for (const auto& e : op.Events("ref-1"))
      if (e["phase"] == "committed" && e["model_version"] == mv) return true;
    return false;
  };
  auto deploy_good = [&](int v, int64_t ttl = 3600) {
    std::string bytes = LinearModelOnnx(v);
    std::string path = dir_.path() + "/m.onnx";
    EXPECT_TRUE(WriteFileAtomic(path, bytes).ok());
    return op.Deploy("ref-1", bytes, "m" + std::to_string(v), GoldenFor(path), ttl);
  };
  Json first = deploy_good(1);
  ASSERT_FALSE(first.contains("error")) << first.dump();
  ASSERT_TRUE(WaitFor([&] { return committed("m1"); }, 60)) << *ReadFile(log);
  ASSERT_FALSE(deploy_good(2).contains("error"));
  ASSERT_TRUE(WaitFor([&] { return committed("m2"); }, 60)) << *ReadFile(log);

  // Tampered artifact: the stored bytes change after upload (same length).
  {
    std::string bytes = LinearModelOnnx(3);
    std::string path = dir_.path() + "/m3.onnx";
    ASSERT_TRUE(WriteFileAtomic(path, bytes).ok());
    Json art = op.Post("/v1/artifacts", bytes, "application/octet-stream");
    std::string stored = data_ + "/artifacts/" + art["sha256"].get<std::string>();
    std::string tampered = bytes;
    tampered[tampered.size() / 2] ^= 0x20;
    ASSERT_TRUE(WriteFileAtomic(stored, tampered).ok());
    Json doc = op.Post("/v1/deployments/ref-1", Json{{"name", "model.onnx"},
                                                     {"model_version", "m3"},
                                                     {"sha256", art["sha256"]},
                                                     {"golden", GoldenFor(path)}}
                                                    .dump());
    ASSERT_FALSE(doc.contains("error")) << doc.dump();
    ASSERT_TRUE(WaitFor([&] { return RefusalReported(op, "ref-1", "tampered"); }, 60))
        << *ReadFile(log);
  }

  // Expired metadata: deployed with a one-second lifetime while the agent is stopped.
  ASSERT_EQ(agent->Kill(SIGTERM), 0) << *ReadFile(log);
  ASSERT_FALSE(deploy_good(4, 1).contains("error"));
  sleep(2);
  agent = std::make_unique<AgentProcess>(agent_bin_, config, log);
  ASSERT_TRUE(WaitFor([&] { return RefusalReported(op, "ref-1", "expired"); }, 60))
      << *ReadFile(log);

  // An older version: the server's database is set back to the first metadata (a replay).
  server_->Kill(SIGKILL);
  {
    auto db = cloud::OpenDatabase("sqlite:" + data_ + "/edgeloop.db");
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->Exec("UPDATE deployments SET metadata = ?, version = 1 WHERE target = ?",
                           {first.dump(2), "ref-1"})
                    .ok());
  }
  RestartServer();
  ASSERT_TRUE(WaitFor([&] { return RefusalReported(op, "ref-1", "rollback"); }, 60))
      << *ReadFile(log);

  // Wrong signature: the server now signs with a key the device never pinned.
  const std::string other_key = dir_.path() + "/other.key";
  ASSERT_TRUE(WriteFileAtomic(other_key, *crypto::GenerateEd25519KeyPem(), 0600).ok());
  RestartServer({"--signing-key", other_key});
  ASSERT_FALSE(deploy_good(5).contains("error"));
  ASSERT_TRUE(WaitFor([&] { return RefusalReported(op, "ref-1", "signature"); }, 60))
      << *ReadFile(log);

  // Through all of it the device kept running version m2.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto fleet = op.Get("/v1/fleet");
        return fleet.contains("devices") && fleet["devices"].size() == 1 &&
               fleet["devices"][0]["model_version"] == "m2";
      },
      30));
  EXPECT_GT(CountInFile(log, "inferring with model m2"), 0u);
  agent->Kill(SIGTERM);
}

}  // namespace
}  // namespace edgeloop::testing
