// The dashboard in a real browser (CTest label `browser`): a real `edgeloop server`, three real
// `edgeloop-agent` processes enrolled and reporting, a registered model with two versions, a
// dataset snapshot and a pipeline run; then web/test/dashboard.test.mjs drives Debian's
// Chromium through the dashboard with playwright-core (npm, web/package-lock.json): sign-in,
// the fleet, a device's charts, a rollout started, paused, resumed and aborted from the page,
// a read-only token's disabled buttons and the server's 403, and a device whose group, labels
// and reported model version hold script payloads that must not run. Screenshots at 1280 and
// 390 px go to <build>/tests/browser-test/.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "agent_test_util.hpp"
#include "cloud/database.hpp"
#include "common/free_port.hpp"
#include "common/process.hpp"
#include "server_process.hpp"

namespace edgeloop::testing {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

// Payloads that would run if any page put device data into markup.
constexpr char kScriptVersion[] =
    "<script>window.__xss='model_version'</script><img src=x onerror=\"window.__xss='img'\">";
constexpr char kImgGroup[] = "<img src=x onerror=\"window.__xss='group'\">";
constexpr char kScriptLabel[] = "<script>window.__xss='label'</script>";
constexpr char kImgLabel[] = "<img src=x onerror=\"window.__xss='label-img'\">";

std::string YamlQuoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// An operator POST answered 200 or 201 (registrations and snapshots answer 201); its JSON, or
// {"error": ...}.
Json PostCreated(const Operator& op, const std::string& path, const Json& body) {
  auto res = op.Client()->Post(path, op.Bearer(), body.dump(), "application/json");
  if (!res) return {{"error", "no answer"}};
  if (res->status != 200 && res->status != 201) return {{"error", res->body}};
  return Json::parse(res->body, nullptr, false);
}

class Browser : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string web = std::string(EDGELOOP_TEST_SOURCE_DIR) + "/web";
    if (!fs::exists(web + "/node_modules/playwright-core/package.json"))
      GTEST_FAIL()
          << "playwright-core is not installed in web/node_modules: run scripts/web-install";
    port_ = FreeLoopbackPort();
    server_ = std::make_unique<ServerProcess>(data_, port_);
    ASSERT_TRUE(server_->WaitReady());
    ASSERT_TRUE(WriteFileAtomic(factory_, LinearModelOnnx(1)).ok());
    WriteCsvDataset(dir_.path() + "/data.csv", 600);
  }

  // An enrolment token for device in group.
  std::string Token(const std::string& device, const std::string& group) {
    Operator op(port_, data_);
    return op.Post("/v1/enrollment-tokens", Json{{"device_id", device}, {"group", group}}.dump())
        .value("token", "");
  }

  void StartAgent(const std::string& device, const std::string& group,
                  const std::string& model_version) {
    const std::string state = dir_.path() + "/" + device;
    const std::string config = state + ".yaml";
    std::string yaml =
        "device: {id: " + device + ", data_dir: " + state + "}\n" +
        "server: {url: https://127.0.0.1:" + std::to_string(port_) +
        ", enrollment_token: " + Token(device, group) + ", ca_file: " + data_ + "/ca.crt}\n" +
        "model: {path: " + factory_ + ", version: " + YamlQuoted(model_version) + "}\n" +
        "source: {kind: replay, dataset: " + dir_.path() + "/data.csv, rate_hz: 40, loop: true}\n" +
        "sampling: {policy: uniform, rate: 0.5}\n" +
        "upload: {batch_records: 20, base_delay_ms: 50, max_delay_ms: 500}\n" +
        "telemetry: {interval_s: 0.5}\n" + "update: {poll_s: 0.5, probation_samples: 20}\n";
    ASSERT_TRUE(WriteFileAtomic(config, yaml).ok());
    agents_.push_back(
        std::make_unique<AgentProcess>(std::string(EDGELOOP_AGENT_BINARY), config, state + ".log"));
  }

  TempDir dir_;
  std::string data_ = dir_.path() + "/server";
  std::string factory_ = dir_.path() + "/factory.onnx";
  int port_ = 0;
  std::unique_ptr<ServerProcess> server_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
};

TEST_F(Browser, DashboardInChromium) {
  Operator op(port_, data_);
  // The model the devices start on (clf:1, production) and a challenger (clf:2, its child).
  auto v1 = op.Post("/v1/artifacts", LinearModelOnnx(1), "application/octet-stream");
  auto v2 = op.Post("/v1/artifacts", LinearModelOnnx(2), "application/octet-stream");
  ASSERT_FALSE(v1.contains("error") || v2.contains("error")) << v1.dump() << v2.dump();
  auto r1 = PostCreated(op, "/v1/models/clf/versions",
                        {{"artifacts", {{"fp32", v1["sha256"]}}},
                         {"code_version", "browser-test"},
                         {"hyperparameters", {{"arch", "linear"}, {"epochs", 3}}},
                         {"metrics", {{"accuracy", 0.91}, {"f1", 0.90}, {"latency_p95_ms", 0.2}}}});
  ASSERT_FALSE(r1.contains("error")) << r1.dump();
  ASSERT_FALSE(
      op.Post("/v1/models/clf/versions/1/stage", R"({"stage":"production"})").contains("error"));

  StartAgent("dev-1", "line-a", "clf:1");
  StartAgent("dev-2", "line-a", "clf:1");
  StartAgent("xss-1", "line-x", kScriptVersion);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto fleet = op.Get("/v1/fleet");
        if (!fleet.contains("devices")) return false;
        int seen = 0;
        for (const auto& d : fleet["devices"]) seen += d.value("last_seen_ms", int64_t{0}) > 0;
        return seen == 3 && op.SampleCount("dev-1") >= 20 && op.SampleCount("dev-2") >= 20;
      },
      60))
      << op.Get("/v1/fleet").dump();
  // Labels go through PUT /v1/devices/{id}/labels and groups through enrollment tokens, both of
  // which allow only [A-Za-z0-9._-]: the payloads are written to the tables directly, as a
  // store holding anything would have them.
  {
    auto put = op.Client()->Put("/v1/devices/dev-1/labels", op.Bearer(),
                                R"({"labels":["site-a","rev-2"]})", "application/json");
    ASSERT_TRUE(put && put->status == 200) << (put ? put->body : "no answer");
    auto db = cloud::OpenDatabase("sqlite:" + data_ + "/edgeloop.db");
    ASSERT_TRUE(db.ok()) << db.error().message;
    ASSERT_TRUE(
        (*db)->Exec("UPDATE devices SET grp = ? WHERE device_id = ?", {kImgGroup, "xss-1"}).ok());
    for (const char* label : {kScriptLabel, kImgLabel})
      ASSERT_TRUE(
          (*db)
              ->Exec("INSERT INTO device_labels (device_id, label) VALUES (?, ?)", {"xss-1", label})
              .ok());
  }

  // A dataset snapshot of what the devices uploaded, recorded as clf:2's lineage.
  auto snapshot =
      PostCreated(op, "/v1/datasets/snapshots",
                  {{"labelled_only", true},
                   {"split", {{"train", 0.8}, {"val", 0.1}, {"test", 0.1}, {"seed", 7}}}});
  ASSERT_TRUE(snapshot.contains("id")) << snapshot.dump();
  auto r2 = PostCreated(op, "/v1/models/clf/versions",
                        {{"artifacts", {{"fp32", v2["sha256"]}}},
                         {"parent", "clf:1"},
                         {"dataset_snapshot", snapshot["id"]},
                         {"code_version", "browser-test"},
                         {"hyperparameters", {{"strategy", "head"}, {"epochs", 1}}},
                         {"metrics", {{"accuracy", 0.93}, {"f1", 0.92}, {"latency_p95_ms", 0.2}}}});
  ASSERT_FALSE(r2.contains("error")) << r2.dump();
  // A pipeline run for the Runs page; whatever it ends as, its steps, logs and gates show.
  auto pipeline = op.Post("/v1/pipelines", Json{{"yaml", R"(name: retrain
dataset: {labelled_only: true, split: {train: 0.8, val: 0.0, test: 0.2, seed: 1}}
train: {parent: clf@production, strategy: full, epochs: 1}
gates: ["accuracy >= 0.0"]
register: {model: clf-retrained}
)"}}.dump());
  ASSERT_FALSE(pipeline.contains("error")) << pipeline.dump();
  ASSERT_TRUE(op.Client()->Post("/v1/pipelines/retrain/runs", op.Bearer(), "", "application/json"));

  const std::string read_token =
      op.Post("/v1/tokens", R"({"scope":"read"})").value("token", std::string());
  ASSERT_FALSE(read_token.empty());
  const std::string out = std::string(EDGELOOP_TEST_BINARY_DIR) + "/tests/browser-test";
  fs::remove_all(out);
  fs::create_directories(out);
  Json config = {{"base", "https://127.0.0.1:" + std::to_string(port_)},
                 {"admin_token", *ReadFile(data_ + "/admin.token")},
                 {"read_token", read_token},
                 {"devices", {"dev-1", "dev-2", "xss-1"}},
                 {"xss_device", "xss-1"},
                 {"payloads", {kScriptVersion, kImgGroup, kScriptLabel, kImgLabel}},
                 {"model", "clf"},
                 {"rollout_version", 2},
                 {"rollout_target", "group:line-a"},
                 {"out", out}};
  ASSERT_TRUE(WriteFileAtomic(out + "/config.json", config.dump(2)).ok());

  RunOptions run;
  run.log_path = out + "/browser.log";
  run.timeout = std::chrono::seconds(140);
  run.cwd = std::string(EDGELOOP_TEST_SOURCE_DIR) + "/web";
  run.env = {"EDGELOOP_BROWSER_CONFIG=" + out + "/config.json"};
  auto result =
      RunProcess({"node", "--test", "--test-reporter=spec", "test/dashboard.test.mjs"}, run);
  ASSERT_TRUE(result.ok()) << result.error().message;
  auto log = ReadFile(run.log_path);
  std::printf("%s\n", log.ok() ? log->c_str() : "(no log)");
  EXPECT_EQ(result->exit_code, 0) << result->Describe();
  for (const char* shot : {"fleet-1280.png", "fleet-390.png", "device-1280.png", "device-390.png",
                           "rollout-1280.png", "models-1280.png"})
    EXPECT_TRUE(fs::exists(out + "/" + shot)) << shot;
  for (auto& a : agents_) EXPECT_TRUE(a->Alive()) << "an agent died";
}

}  // namespace
}  // namespace edgeloop::testing
