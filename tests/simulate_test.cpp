// `edgeloop simulate` against real processes on loopback: `edgeloop server` (and a Mosquitto
// broker configured by `edgeloop mqtt-config` for the MQTT run), 50 virtual devices for about
// 20 s over each transport. What the simulator reports acknowledged must be in the server's
// database exactly once, device by device; a second run reuses the cached identities and
// continues the sequence numbers; targets other than loopback are refused before anything
// is sent.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cloud/database.hpp"
#include "common/file.hpp"
#include "mqtt_broker.hpp"
#include "server_process.hpp"

namespace edgeloop::testing {
namespace {

class SimulateFleet : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    env_ = new Env;
    ASSERT_EQ(env_->broker.Configure(), "");
    ASSERT_TRUE(env_->broker.Start()) << env_->broker.log();
    env_->server = std::make_unique<ServerProcess>(
        env_->data, env_->port, std::vector<std::string>{"--mqtt-broker", env_->broker.address()});
    ASSERT_TRUE(env_->server->WaitReady());
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }

  struct Env {
    TempDir dir;
    std::string data = dir.path() + "/server";
    BrokerProcess broker{data, dir.path() + "/broker"};
    int port = FreeLoopbackPort();
    std::unique_ptr<ServerProcess> server;
  };

  // Runs the simulator; returns its exit code, output (stdout and stderr) and JSON summary.
  struct Run {
    Outcome outcome;
    nlohmann::json summary;
  };
  Run RunSimulator(const std::string& transport, const std::string& prefix,
                   const std::string& args) {
    const std::string json = env_->dir.path() + "/" + prefix + ".json";
    std::remove(json.c_str());
    Run r;
    r.outcome = RunCommand("'" + std::string(EDGELOOP_CLI_BINARY) + "' simulate --transport " +
                           transport + " --server https://127.0.0.1:" + std::to_string(env_->port) +
                           " --broker " + env_->broker.address() + " --data '" + env_->data +
                           "' --state '" + env_->dir.path() + "/state' --prefix " + prefix +
                           " --json '" + json + "' " + args + " 2>&1");
    auto text = ReadFile(json);
    if (text.ok()) r.summary = nlohmann::json::parse(*text, nullptr, false);
    return r;
  }

  // Per device of the prefix: rows stored, distinct sequence numbers.
  std::map<std::string, std::pair<uint64_t, uint64_t>> Stored(const std::string& prefix) {
    std::map<std::string, std::pair<uint64_t, uint64_t>> out;
    auto db = cloud::OpenDatabase("sqlite:" + env_->data + "/edgeloop.db");
    EXPECT_TRUE(db.ok());
    if (!db.ok()) return out;
    auto rows = (*db)->Query(
        "SELECT device_id, COUNT(*), COUNT(DISTINCT seq) FROM samples WHERE device_id LIKE ? "
        "GROUP BY device_id",
        {prefix + "-%"});
    EXPECT_TRUE(rows.ok());
    if (!rows.ok()) return out;
    for (const auto& row : *rows) out[row.at(0)] = {std::stoull(row.at(1)), std::stoull(row.at(2))};
    return out;
  }

  // 50 devices, a batch of 16 every 2 s for 20 s: every acked sample stored exactly once.
  void FiftyDevicesForTwentySeconds(const std::string& transport) {
    const std::string prefix = "sim" + transport;
    Run r = RunSimulator(transport, prefix,
                         "--devices 50 --interval 2 --batch 16 --duration 20 --ramp 2 --drain 20");
    ASSERT_EQ(r.outcome.exit_code, 0) << r.outcome.output;
    ASSERT_TRUE(r.summary.is_object()) << r.outcome.output;
    const nlohmann::json& s = r.summary;
    EXPECT_EQ(s["errors"], 0) << s.dump(2);
    EXPECT_EQ(s["verify"]["missing"], 0) << s.dump(2);
    EXPECT_EQ(s["verify"]["stored_not_acked"], 0) << s.dump(2);
    EXPECT_EQ(s["verify"]["queued_unacked"], 0) << s.dump(2);
    // Ten intervals of one batch each per device (the first at its connect), all acked.
    const uint64_t batches = s["batches_acked"], samples = s["samples_acked"];
    EXPECT_GE(batches, 50u * 9) << s.dump(2);
    EXPECT_LE(batches, 50u * 11) << s.dump(2);
    EXPECT_EQ(samples, batches * 16) << s.dump(2);
    EXPECT_EQ(s["verify"]["acked"], samples);
    auto stored = Stored(prefix);
    ASSERT_EQ(stored.size(), 50u);
    uint64_t total = 0;
    for (const auto& [device, counts] : stored) {
      EXPECT_EQ(counts.first, counts.second) << device << " has a sample stored twice";
      total += counts.first;
    }
    EXPECT_EQ(total, samples) << "the database holds other samples than the acked ones";
    EXPECT_GT(s["ack_p99_ms"].get<double>(), 0.0);

    // Again: no enrollment, the sequence numbers go on, still each sample once.
    Run again = RunSimulator(
        transport, prefix, "--devices 50 --interval 1 --batch 4 --duration 3 --ramp 1 --drain 20");
    ASSERT_EQ(again.outcome.exit_code, 0) << again.outcome.output;
    EXPECT_EQ(again.outcome.output.find("enrolling"), std::string::npos) << again.outcome.output;
    EXPECT_EQ(again.summary["verify"]["missing"], 0) << again.summary.dump(2);
    uint64_t total_again = 0;
    for (const auto& [device, counts] : Stored(prefix)) {
      EXPECT_EQ(counts.first, counts.second) << device;
      total_again += counts.first;
    }
    EXPECT_EQ(total_again, samples + again.summary["samples_acked"].get<uint64_t>());
  }

  static Env* env_;
};

SimulateFleet::Env* SimulateFleet::env_ = nullptr;

TEST_F(SimulateFleet, FiftyDevicesOverHttpsStoreEveryAckedSampleOnce) {
  FiftyDevicesForTwentySeconds("https");
}

TEST_F(SimulateFleet, FiftyDevicesOverMqttStoreEveryAckedSampleOnce) {
  FiftyDevicesForTwentySeconds("mqtt");
}

TEST(SimulateTargets, RefusesEveryHostButLoopback) {
  const std::string bin = "'" + std::string(EDGELOOP_CLI_BINARY) + "' simulate --devices 1 ";
  TempDir dir;
  for (const std::string& args :
       {std::string("--server https://10.0.0.7:8443"), std::string("--server https://example.com"),
        std::string("--server https://[2001:db8::1]:8443"),
        std::string("--transport mqtt --server https://127.0.0.1:1 --broker 192.168.1.5:8883"),
        std::string(
            "--transport mqtt --server https://127.0.0.1:1 --broker broker.example:8883")}) {
    Outcome o = RunCommand(bin + args + " --state '" + dir.path() + "/state' 2>&1");
    EXPECT_EQ(o.exit_code, 2) << args << "\n" << o.output;
    EXPECT_NE(o.output.find("only targets loopback"), std::string::npos) << args << "\n"
                                                                         << o.output;
  }
  // Nothing was enrolled or written for the refused runs.
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/state"));
}

}  // namespace
}  // namespace edgeloop::testing
