// The loop, end to end, with real processes: a shortened `edgeloop demo` (two devices, small
// data) must close the loop: a new model version trained from data the devices uploaded,
// passing the gates, reaching every device, with accuracy on the shifted domains up. Then a
// deliberately bad training recipe must be stopped (by the gates or the canary), leaving the
// fleet on the old version. Both phases run in one test so they share the cached base model.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/file.hpp"
#include "common/process.hpp"

namespace edgeloop {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

std::string Binary() {
  return EDGELOOP_CLI_BINARY;
}

struct DemoRun {
  ProcessResult result;
  Json report;
  std::string log;
};

// `edgeloop demo` shortened (2 devices, 1 base epoch, 400 samples); `settings` override
// those defaults, flag by flag.
DemoRun RunDemo(const std::string& root, const std::string& scenario,
                const std::map<std::string, std::string>& settings = {}) {
  DemoRun run;
  std::string dir = root + "/" + scenario;
  RunOptions o;
  run.log = root + "/" + scenario + ".log";
  o.log_path = run.log;
  o.timeout = std::chrono::seconds(900);
  std::map<std::string, std::string> flags = {{"--dir", dir + "/run"},
                                              {"--report", dir + "/report"},
                                              {"--cache", root + "/cache"},
                                              {"--devices", "2"},
                                              {"--rate", "25"},
                                              {"--base-epochs", "1"},
                                              {"--trigger-samples", "400"},
                                              {"--finetune-epochs", "4"},
                                              {"--scenario", scenario},
                                              {"--timeout", "600"},
                                              // A budget no load on a CI machine reaches: the
                                              // test is about the loop, not this machine's speed.
                                              {"--latency-budget-us", "200000"}};
  for (const auto& [k, v] : settings) flags[k] = v;
  std::vector<std::string> argv = {Binary(), "demo"};
  for (const auto& [k, v] : flags) argv.insert(argv.end(), {k, v});
  auto r = RunProcess(argv, o);
  EXPECT_TRUE(r.ok());
  if (r.ok()) run.result = *r;
  auto text = ReadFile(dir + "/report/report.json");
  if (text.ok()) run.report = Json::parse(*text, nullptr, false);
  return run;
}

TEST(Loop, ClosesThenStopsABadModel) {
  std::string root = EDGELOOP_LOOP_DIR;
  std::error_code ec;
  fs::remove_all(root + "/good", ec);
  fs::remove_all(root + "/bad", ec);
  fs::create_directories(root, ec);

  // Phase 1: the loop closes, with the devices on the MQTT device plane (Mosquitto): samples,
  // telemetry and update events through the broker, update metadata pushed by it.
  DemoRun good = RunDemo(root, "good", {{"--transport", "mqtt"}});
  ASSERT_EQ(good.result.exit_code, 0) << good.result.Describe() << ", see " << good.log;
  ASSERT_TRUE(good.report.is_object()) << "no report.json, see " << good.log;
  const Json& rep = good.report;
  std::string fresh = rep["summary"]["new_model_version"];
  ASSERT_FALSE(fresh.empty()) << "no rollout completed";
  // Trained from what the devices uploaded: the run read a snapshot of their samples.
  bool trained = false;
  for (const auto& run : rep["runs"]) {
    if (run["status"] != "succeeded" || run["model_version"] != fresh) continue;
    trained = true;
    std::set<std::string> steps;
    for (const auto& s : run["steps"])
      if (s["status"] == "succeeded") steps.insert(s["name"]);
    for (const char* s : {"snapshot", "train", "evaluate", "gates", "register", "rollout"})
      EXPECT_TRUE(steps.count(s)) << s;
    ASSERT_FALSE(run["gates"].empty());
    bool robustness_gate = false;
    for (const auto& g : run["gates"]) {
      EXPECT_TRUE(g["passed"].get<bool>()) << g.dump();
      robustness_gate = robustness_gate || g["expr"] == "mean_corruption_accuracy >= champion";
    }
    // The corruption suite ran for challenger and champion, and a gate judged it.
    EXPECT_TRUE(robustness_gate);
    EXPECT_TRUE(run["metrics"].contains("mean_corruption_accuracy")) << run["metrics"].dump();
    EXPECT_TRUE(run["champion_metrics"].contains("mean_corruption_accuracy"));
  }
  EXPECT_TRUE(trained) << "no succeeded run produced " << fresh;
  // Reached every device, and accuracy on each shifted domain rose.
  ASSERT_EQ(rep["devices"].size(), 2u);
  for (const auto& d : rep["devices"]) {
    EXPECT_EQ(d["model_version_after"], fresh) << d.dump();
    ASSERT_TRUE(d["accuracy_before"].is_number() && d["accuracy_after"].is_number()) << d.dump();
    EXPECT_GT(d["accuracy_after"].get<double>(), d["accuracy_before"].get<double>() + 0.05)
        << d.dump();
    // The update travelled as a delta against the installed model, smaller than the model.
    ASSERT_TRUE(d["bytes_down_delta"].is_number() && d["bytes_down_full"].is_number()) << d.dump();
    EXPECT_GT(d["bytes_down_delta"].get<int64_t>(), 0) << d.dump();
    EXPECT_LT(d["bytes_down_delta"].get<int64_t>(), d["bytes_down_full"].get<int64_t>())
        << d.dump();
  }
  EXPECT_TRUE(fs::exists(root + "/good/report/index.html"));
  // Everything the devices sent went through the broker, and updates came pushed.
  EXPECT_EQ(rep["summary"].value("transport", ""), "mqtt");
  const Json& mqtt = rep["summary"]["mqtt"];
  EXPECT_GT(mqtt.value("edgeloop_mqtt_ingest_messages_total{status=\"200\"}", 0.0), 10)
      << mqtt.dump();
  EXPECT_GT(
      mqtt.value("edgeloop_mqtt_control_messages_total{topic=\"telemetry\",status=\"200\"}", 0.0),
      2)
      << mqtt.dump();
  EXPECT_GE(
      mqtt.value("edgeloop_mqtt_control_messages_total{topic=\"events\",status=\"200\"}", 0.0),
      2 * 3)
      << mqtt.dump();  // each device: downloading, staged, probation, committed
  EXPECT_GE(mqtt.value("edgeloop_update_pushes_total{result=\"ok\"}", 0.0), 2) << mqtt.dump();

  // Phase 2: a bad model never reaches the fleet beyond the canary, and the fleet ends on
  // the model it had.
  DemoRun bad = RunDemo(root, "bad");
  ASSERT_EQ(bad.result.exit_code, 0) << bad.result.Describe() << ", see " << bad.log;
  ASSERT_TRUE(bad.report.is_object());
  bool stopped = false;
  for (const auto& run : bad.report["runs"])
    if (run["status"] == "rejected") stopped = true;
  for (const auto& ro : bad.report["rollouts"])
    if (ro["status"] == "rolled_back") stopped = true;
  EXPECT_TRUE(stopped) << "neither the gates nor the canary stopped the bad model";
  for (const auto& d : bad.report["devices"])
    EXPECT_EQ(d["model_version_after"], d["model_version_before"]) << d.dump();
}

// The loop on colour: devices watch folders of 64x64 RGB JPEG frames from their own cameras,
// the base model is a MobileNetV2, and the fine-tune on their uploads reaches every device
// with accuracy up on each camera. Shortened: a small base model, two devices.
TEST(Loop, ClosesOnCameraFrames) {
  std::string root = EDGELOOP_LOOP_DIR;
  std::error_code ec;
  fs::remove_all(root + "/camera", ec);
  fs::create_directories(root, ec);
  DemoRun cam = RunDemo(root, "camera",
                        {{"--base-samples", "2000"},
                         {"--base-epochs", "2"},
                         {"--finetune-epochs", "2"},
                         {"--trigger-samples", "300"}});
  ASSERT_EQ(cam.result.exit_code, 0) << cam.result.Describe() << ", see " << cam.log;
  ASSERT_TRUE(cam.report.is_object()) << "no report.json, see " << cam.log;
  const Json& rep = cam.report;
  std::string fresh = rep["summary"]["new_model_version"];
  ASSERT_EQ(fresh, "camera-mnv2:2") << rep["summary"].dump();
  bool judged_on_frames = false;
  for (const auto& run : rep["runs"]) {
    if (run["model_version"] != fresh) continue;
    // The gates saw the frame folders of the clean camera and of each device's camera.
    for (const char* set : {"clean.accuracy", "tungsten.accuracy", "bluehaze.accuracy"})
      EXPECT_TRUE(run["metrics"].contains(set)) << set << " " << run["metrics"].dump();
    judged_on_frames = run["metrics"].contains("clean.accuracy");
  }
  EXPECT_TRUE(judged_on_frames);
  ASSERT_EQ(rep["devices"].size(), 2u);
  std::set<std::string> cameras;
  for (const auto& d : rep["devices"]) {
    cameras.insert(d["domain"].get<std::string>());
    EXPECT_EQ(d["model_version_after"], fresh) << d.dump();
    ASSERT_TRUE(d["accuracy_before"].is_number() && d["accuracy_after"].is_number()) << d.dump();
    EXPECT_GT(d["accuracy_after"].get<double>(), d["accuracy_before"].get<double>() + 0.05)
        << d.dump();
    // Frames went up: the device read its camera's JPEG files and uploaded them.
    ASSERT_TRUE(d["bytes_up"].is_number()) << d.dump();
    EXPECT_GT(d["bytes_up"].get<int64_t>(), 0);
  }
  EXPECT_EQ(cameras, (std::set<std::string>{"tungsten", "bluehaze"}));
  // The devices' frame folders were consumed (delete_after_read): no backlog of thousands.
  for (const char* dev : {"dev-1", "dev-2"}) {
    size_t left = 0;
    for (const auto& e : fs::directory_iterator(root + "/camera/run/" + dev + "/frames")) {
      (void)e;
      ++left;
    }
    EXPECT_LT(left, 200u) << dev;
  }
}

}  // namespace
}  // namespace edgeloop
