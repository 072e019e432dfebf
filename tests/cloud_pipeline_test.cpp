// Pipelines (src/cloud/api_pipelines.cpp) and staged rollouts (src/cloud/api_rollouts.cpp)
// over the real HTTPS API, on SQLite and PostgreSQL: pipeline specs refused with the offending key,
// runs queued and executed one at a time, a worker that dies of SIGSEGV failing its step and not
// the server; a canary then a wave judged on what devices report over mTLS, promotion to
// production, rollback to the previous production model, pause, resume and abort.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <ctime>
#include <optional>
#include <thread>

#include "cloud_test_util.hpp"
#include "common/update_metadata.hpp"
#include "database_param.hpp"

namespace edgeloop::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Stands in for the edgeloop worker: says what it was asked to do, then dies of SIGSEGV.
constexpr char kCrashingWorker[] = R"(#!/bin/sh
ulimit -c 0
echo "worker args: $*"
echo "worker $1 starting"
sleep 0.5
kill -SEGV $$
)";

// Polls until done() or the limit; true when done() held.
template <typename Pred>
bool WaitUntil(Pred done, milliseconds limit = seconds(30)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return done();
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Every test runs on SQLite and on a real PostgreSQL (tests/database_param.hpp).
class LoopApiTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    cloud::ServerOptions options;
    options.worker_executable = bin_.path() + "/worker.sh";
    ASSERT_TRUE(WriteFileAtomic(options.worker_executable, kCrashingWorker, 0755).ok());
    options.background_interval_ms = 100;
    if (GetParam() == "postgresql") options.db_url = FreshPostgresUrl();
    f_ = std::make_unique<CloudFixture>(options);
    admin_ = f_->server().admin_token();
  }

  httplib::Result Post(const std::string& path, const std::string& body,
                       const std::string& token = "") {
    return f_->Post(path, body, token.empty() ? admin_ : token);
  }
  Json PostOk(const std::string& path, const Json& body, int want = 200) {
    return f_->PostOk(path, body, want);
  }
  httplib::Result Get(const std::string& path, const std::string& token = "") {
    return f_->Get(path, token.empty() ? admin_ : token);
  }
  Json GetOk(const std::string& path) { return f_->GetOk(path); }

  std::string Token(const std::string& scope) {
    return PostOk("/v1/tokens", {{"scope", scope}})["token"];
  }
  // The status, after checking that the body is the JSON error shape.
  int ErrorStatus(const httplib::Result& res) {
    if (!res) return -1;
    Json body = Json::parse(res->body, nullptr, false);
    EXPECT_TRUE(body.is_object() && body["error"]["status"] == res->status &&
                body["error"]["message"].is_string())
        << res->body;
    return res->status;
  }
  std::string ErrorMessage(const httplib::Result& res) {
    if (!res) return "";
    Json body = Json::parse(res->body, nullptr, false);
    return body.is_object() && body["error"]["message"].is_string()
               ? body["error"]["message"].get<std::string>()
               : "";
  }

  // Versions 1..count of model clf, each with its own fp32 artifact (sha_[n]); version 1 in
  // production.
  // Uploads an artifact and returns its sha256 (empty, with a test failure, when refused).
  std::string UploadArtifact(const std::string& bytes) {
    auto up =
        f_->Client()->Post("/v1/artifacts", f_->Bearer(admin_), bytes, "application/octet-stream");
    EXPECT_TRUE(up && up->status == 200);
    return up && up->status == 200 ? Json::parse(up->body)["sha256"].get<std::string>()
                                   : std::string();
  }
  void RegisterVersions(int count) {
    sha_.assign(1, "");
    for (int n = 1; n <= count; ++n) {
      sha_.push_back(UploadArtifact("onnx bytes of clf version " + std::to_string(n)));
      ASSERT_FALSE(sha_.back().empty());
      Json v = PostOk("/v1/models/clf/versions", {{"artifacts", {{"fp32", sha_.back()}}}}, 201);
      ASSERT_EQ(v["version"], n);
    }
    PostOk("/v1/models/clf/versions/1/stage", {{"stage", "production"}});
  }
  std::string Stage(int version) {
    return GetOk("/v1/models/clf/versions/" + std::to_string(version))["stage"];
  }

  // count labelled 28x28 samples from the device, labels 0..2, sequence numbers from first,
  // taken at ts_ms (+1 per sample; 1000, in 1970, by default).
  void IngestLabelled(const DeviceCredentials& dev, int count, int first = 0,
                      int64_t ts_ms = 1000) {
    wire::SampleBatch batch;
    for (int i = first; i < first + count; ++i) {
      auto* s = batch.add_samples();
      s->set_device_id(dev.device_id);
      s->set_sequence(static_cast<uint64_t>(i));
      s->set_timestamp_ms(ts_ms + i);
      s->mutable_tensor()->add_shape(784);
      for (int k = 0; k < 784; ++k)
        s->mutable_tensor()->add_values(static_cast<float>((k + 7 * i) % 256) / 255.0f);
      s->set_has_label(true);
      s->set_label(i % 3);
      s->set_label_source(wire::LABEL_SOURCE_HUMAN);
    }
    auto res = PostBatch(*f_->Client(&dev), batch);
    ASSERT_TRUE(res && res->status == 200);
  }

  Json Run(const std::string& id) { return GetOk("/v1/runs/" + id); }
  static bool Finished(const Json& run) {
    return run.is_object() && run["status"] != "queued" && run["status"] != "running";
  }

  // Enrolls cam-1..cam-count in group "line".
  std::vector<DeviceCredentials> EnrollLine(int count) {
    std::vector<DeviceCredentials> out;
    for (int i = 1; i <= count; ++i) out.push_back(f_->Enroll("cam-" + std::to_string(i), "line"));
    return out;
  }

  static Json Criteria() {
    return {{"window_seconds", 1}, {"stage_timeout_seconds", 30}, {"min_labelled", 1}};
  }
  std::string StartRollout(int version, Json criteria = Criteria()) {
    Json body = {{"model", "clf"}, {"version", version}, {"target", "group:line"},
                 {"canary", "1"},  {"waves", {"100%"}},  {"criteria", criteria}};
    Json out = PostOk("/v1/rollouts", body, 201);
    return out.value("id", "");
  }
  Json Rollout(const std::string& id) { return GetOk("/v1/rollouts/" + id); }
  bool WaitForRollout(const std::string& id, const std::string& status) {
    return WaitUntil([&] { return Rollout(id)["status"] == status; });
  }
  httplib::Result Command(const std::string& id, const std::string& command,
                          const std::string& token = "") {
    return Post("/v1/rollouts/" + id + "/" + command, "", token);
  }

  // The signed update metadata a device reads for target (its own id by default), verified
  // against the fleet's signing key; nullopt when there is none (404).
  std::optional<UpdateMetadata> Deployment(const DeviceCredentials& dev,
                                           const std::string& target = "") {
    auto res =
        f_->Client(&dev)->Get("/v1/deployments/" + (target.empty() ? dev.device_id : target));
    if (!res) {
      ADD_FAILURE() << "no answer";
      return std::nullopt;
    }
    if (res->status == 404) return std::nullopt;
    EXPECT_EQ(res->status, 200) << res->body;
    auto m = VerifyUpdateMetadata(res->body, f_->server().signing_public_key_pem(),
                                  static_cast<int64_t>(std::time(nullptr)), 0);
    EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
    if (!m.ok()) return std::nullopt;
    return *m;
  }
  bool WaitForArtifact(const DeviceCredentials& dev, const std::string& sha) {
    return WaitUntil([&] {
      auto m = Deployment(dev);
      return m && m->target.sha256 == sha;
    });
  }

  // What a device's updater and telemetry say over mTLS.
  void Event(const DeviceCredentials& dev, const std::string& phase,
             const std::string& model_version, const std::string& reason = "") {
    Json body = {{"phase", phase}, {"model_version", model_version}, {"reason", reason}};
    auto res = f_->Client(&dev)->Post("/v1/events", body.dump(), "application/json");
    ASSERT_TRUE(res && res->status == 200) << (res ? res->body : "no answer");
  }
  void Telemetry(const DeviceCredentials& dev, const std::string& model_version, double accuracy,
                 int labelled) {
    Json body = {{"t", 1},
                 {"model_version", model_version},
                 {"n", 100},
                 {"labelled", labelled},
                 {"accuracy", accuracy},
                 {"error_rate", 0.0},
                 {"latency_ms", {{"p50", 1.0}, {"p95", 2.0}}}};
    auto res = f_->Client(&dev)->Post("/v1/telemetry", body.dump(), "application/json");
    ASSERT_TRUE(res && res->status == 200) << (res ? res->body : "no answer");
  }
  // A device installs model_version, commits it and reports healthy telemetry with it.
  void Commit(const DeviceCredentials& dev, const std::string& model_version,
              double accuracy = 0.9) {
    Event(dev, "committed", model_version);
    Telemetry(dev, model_version, accuracy, 50);
  }

  TempDir bin_;  // the worker script; outlives the server
  std::unique_ptr<CloudFixture> f_;
  std::string admin_;
  std::vector<std::string> sha_;  // sha_[n]: the fp32 artifact of clf version n
};

using PipelineApiTest = LoopApiTest;
using RolloutApiTest = LoopApiTest;

TEST_P(PipelineApiTest, BadSpecsAreRefusedNamingTheKey) {
  struct Case {
    std::string body;
    const char* names;
  } cases[] = {
      {"name: retrain\ntrain: [1, 2", "line"},
      {"name: retrain\ntrain: {parent: clf@production}\nrollot: {canary: 1}",
       "rollot: unknown key"},
      {"name: retrain\ntrain: {parent: clf@production, epoch: 3}", "train.epoch: unknown key"},
      {"name: retrain\ntrain: {parent: clf@production}\ngates: [\"accuracy >> 0.9\"]", "gates[0]"},
      {Json{{"yaml",
             "name: retrain\ntrain: {parent: clf@production}\n"
             "gates: [\"latency_p95_us <= 2000\", \"accuracy >= champion * 2\"]"}}
           .dump(),
       "gates[1]"},
  };
  for (const auto& c : cases) {
    auto res = Post("/v1/pipelines", c.body);
    EXPECT_EQ(ErrorStatus(res), 400) << c.body;
    EXPECT_TRUE(Contains(ErrorMessage(res), c.names)) << c.body << " -> " << ErrorMessage(res);
  }
  // A valid spec still needs the write scope.
  EXPECT_EQ(ErrorStatus(Post("/v1/pipelines", kRetrainPipeline, Token("read"))), 403);
  EXPECT_EQ(
      ErrorStatus(f_->Client()->Post("/v1/pipelines", kRetrainPipeline, "application/x-yaml")),
      401);
  EXPECT_EQ(GetOk("/v1/pipelines")["pipelines"].size(), 0u);
}

TEST_P(PipelineApiTest, StoredPipelineIsListedAndManualRunsAreQueued) {
  Json stored = PostOk("/v1/pipelines", {{"yaml", kRetrainPipeline}});
  EXPECT_EQ(stored["name"], "retrain");
  EXPECT_EQ(stored["gates"], 1);
  auto write = Token("write");
  auto again = Post("/v1/pipelines", kRetrainPipeline, write);  // replaced, not duplicated
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200) << again->body;
  Json list = GetOk("/v1/pipelines")["pipelines"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "retrain");
  EXPECT_EQ(list[0]["yaml"], kRetrainPipeline);

  auto queued = Post("/v1/pipelines/retrain/runs", "", write);
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->status, 202) << queued->body;
  Json q = Json::parse(queued->body);
  EXPECT_EQ(q["status"], "queued");
  const std::string id = q["id"];
  EXPECT_EQ(ErrorStatus(Post("/v1/pipelines/retrain/runs", "", Token("read"))), 403);
  auto unknown = Post("/v1/pipelines/nope/runs", "");
  EXPECT_EQ(ErrorStatus(unknown), 404);
  EXPECT_TRUE(Contains(ErrorMessage(unknown), "nope"));
  EXPECT_EQ(ErrorStatus(Get("/v1/runs/run-0-none")), 404);

  Json runs = GetOk("/v1/runs?pipeline=retrain")["runs"];
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["id"], id);
  EXPECT_EQ(runs[0]["trigger"], "manual");
  // Nothing was ingested: the run stops at the snapshot, before any worker.
  Json run;
  ASSERT_TRUE(WaitUntil([&] { return Finished(run = Run(id)); })) << run.dump();
  EXPECT_EQ(run["status"], "failed");
  EXPECT_EQ(run["result"]["failed_step"], "snapshot");
  EXPECT_TRUE(Contains(run["result"]["reason"], "matches no samples")) << run["result"]["reason"];
  EXPECT_FALSE(run["finished_ms"].is_null());
}

TEST_P(PipelineApiTest, WorkerCrashFailsItsStepAndTheServerKeepsServing) {
  IngestLabelled(f_->Enroll("cam-1"), 20);
  RegisterVersions(1);
  PostOk("/v1/pipelines", {{"yaml", kRetrainPipeline}});
  auto queued = Post("/v1/pipelines/retrain/runs", "");
  ASSERT_TRUE(queued && queued->status == 202);
  const std::string id = Json::parse(queued->body)["id"];
  Json run;
  ASSERT_TRUE(WaitUntil([&] { return Finished(run = Run(id)); }, seconds(60))) << run.dump();

  EXPECT_EQ(run["status"], "failed");
  const Json& result = run["result"];
  EXPECT_EQ(result["failed_step"], "train");
  const std::string reason = result["reason"];
  EXPECT_TRUE(Contains(reason, "killed by signal " + std::to_string(SIGSEGV))) << reason;
  EXPECT_TRUE(Contains(reason, "worker finetune starting")) << reason;  // the log's last line
  ASSERT_EQ(result["steps"].size(), 8u);
  EXPECT_EQ(result["steps"][0]["name"], "snapshot");
  EXPECT_EQ(result["steps"][0]["status"], "succeeded");
  EXPECT_TRUE(Contains(result["steps"][0]["detail"], "16 train, 4 test"))
      << result["steps"][0]["detail"];
  EXPECT_EQ(result["steps"][1]["status"], "failed");
  for (size_t i = 2; i < 8; ++i) EXPECT_EQ(result["steps"][i]["status"], "skipped") << i;
  // The snapshot is the one the same spec (seed 1 included) gives over the API.
  Json same = PostOk("/v1/datasets/snapshots",
                     {{"labelled_only", true},
                      {"split", {{"train", 0.8}, {"val", 0.0}, {"test", 0.2}, {"seed", 1}}}});
  EXPECT_EQ(same["created"], false);
  EXPECT_EQ(same["id"], result["snapshot_id"]);

  // The server is alive and nothing was registered.
  auto health = f_->Client()->Get("/v1/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(GetOk("/v1/models/clf")["versions"].size(), 1u);
  auto log = Get("/v1/runs/" + id + "/logs/train");
  ASSERT_TRUE(log);
  EXPECT_EQ(log->status, 200);
  EXPECT_TRUE(Contains(log->body, "worker finetune starting")) << log->body;
  // The log shows what ran: the command and its request. clf version 1 has only its ONNX
  // file: that file is the parent the worker imports.
  EXPECT_TRUE(Contains(log->body, "worker args: finetune --request ")) << log->body;
  EXPECT_TRUE(Contains(log->body, "\"kind\": \"finetune\"")) << log->body;
  EXPECT_TRUE(Contains(log->body, "/artifacts/" + sha_[1] + "\"")) << log->body;
  EXPECT_EQ(ErrorStatus(Get("/v1/runs/" + id + "/logs/export")), 404);  // never ran
}

TEST_P(PipelineApiTest, TheRunsSnapshotNamesTheParentsClasses) {
  // Devices label with class indices of the model they run; the snapshot of their samples
  // records those classes by the parent's names, read from its training checkpoint.
  IngestLabelled(f_->Enroll("cam-1"), 20);
  const Json names = {"cat", "dog", "fox"};
  std::string onnx = UploadArtifact("onnx bytes of clf"),
              meta = UploadArtifact(Json{{"class_names", names}}.dump()),
              weights = UploadArtifact("weights of clf");
  PostOk("/v1/models/clf/versions",
         {{"artifacts", {{"fp32", onnx}, {"torch_meta", meta}, {"torch_weights", weights}}}}, 201);
  PostOk("/v1/models/clf/versions/1/stage", {{"stage", "production"}});
  PostOk("/v1/pipelines", {{"yaml", kRetrainPipeline}});
  auto queued = Post("/v1/pipelines/retrain/runs", "");
  ASSERT_TRUE(queued && queued->status == 202);
  const std::string id = Json::parse(queued->body)["id"];
  Json run;
  ASSERT_TRUE(WaitUntil([&] { return Finished(run = Run(id)); }, seconds(60))) << run.dump();
  EXPECT_EQ(run["result"]["failed_step"], "train");  // the crashing worker
  const std::string snapshot = run["result"]["snapshot_id"];
  ASSERT_FALSE(snapshot.empty()) << run.dump();
  Json snap = GetOk("/v1/datasets/snapshots/" + snapshot);
  EXPECT_EQ(snap["spec"]["class_names"], names) << snap.dump();
  // Not the snapshot of the same filter without names: the names are part of its identity.
  Json unnamed = PostOk("/v1/datasets/snapshots",
                        {{"labelled_only", true},
                         {"split", {{"train", 0.8}, {"val", 0.0}, {"test", 0.2}, {"seed", 1}}}},
                        201);
  EXPECT_EQ(unnamed["created"], true);
  EXPECT_NE(unnamed["id"], snapshot);
}

TEST_P(PipelineApiTest, OnePipelineRunsOneRunAtATime) {
  IngestLabelled(f_->Enroll("cam-1"), 20);
  RegisterVersions(1);
  PostOk("/v1/pipelines", {{"yaml", kRetrainPipeline}});
  PostOk("/v1/pipelines/retrain/runs", Json::object(), 202);
  PostOk("/v1/pipelines/retrain/runs", Json::object(), 202);
  int max_running = 0;
  bool one_waited = false;  // seen: one run running while the other was still queued
  bool both_ended = WaitUntil(
      [&] {
        Json runs = GetOk("/v1/runs?pipeline=retrain")["runs"];
        int running = 0, queued = 0, ended = 0;
        for (const auto& r : runs) {
          running += r["status"] == "running";
          queued += r["status"] == "queued";
          ended += Finished(r);
        }
        max_running = std::max(max_running, running);
        one_waited = one_waited || (running == 1 && queued == 1);
        return runs.size() == 2 && ended == 2;
      },
      seconds(60));
  ASSERT_TRUE(both_ended);
  EXPECT_EQ(max_running, 1);
  EXPECT_TRUE(one_waited);
  for (const auto& r : GetOk("/v1/runs?pipeline=retrain")["runs"]) {
    EXPECT_EQ(r["status"], "failed");
    EXPECT_EQ(r["result"]["failed_step"], "train");
  }
}

// The runs of pipeline "retrain" with their triggers, oldest first.
std::vector<std::string> Triggers(const Json& runs) {
  std::vector<std::string> out;
  for (const auto& r : runs) out.push_back(r["trigger"]);
  return out;
}

TEST_P(PipelineApiTest, NewLabelledSamplesFireARunOnlyFromThePipelinesGroup) {
  auto line = f_->Enroll("cam-1", "line");
  auto other = f_->Enroll("cam-2", "other");
  RegisterVersions(1);
  IngestLabelled(line, 50);  // before the pipeline exists: not new to it
  PostOk(
      "/v1/pipelines",
      {{"yaml",
        "name: retrain\ntrigger: {new_labelled_samples: 30}\n"
        "dataset: {labelled_only: true, groups: [line], split: {train: 0.8, test: 0.2}}\n"
        "train: {parent: clf@production, strategy: head, epochs: 1}\nregister: {model: clf}\n"}});
  auto runs = [&] { return Triggers(GetOk("/v1/runs?pipeline=retrain")["runs"]); };
  IngestLabelled(other, 40);     // another group's samples are not this pipeline's data
  IngestLabelled(line, 20, 50);  // 20 of 30
  std::this_thread::sleep_for(milliseconds(1500));  // 15 trigger checks
  EXPECT_TRUE(runs().empty());
  EXPECT_EQ(GetOk("/v1/pipelines")["pipelines"][0]["labelled_seen"], 50);

  IngestLabelled(line, 10, 70);  // 30 of 30
  ASSERT_TRUE(WaitUntil([&] { return !runs().empty(); }));
  EXPECT_EQ(runs(), std::vector<std::string>{"new_labelled_samples"});
  EXPECT_EQ(GetOk("/v1/pipelines")["pipelines"][0]["labelled_seen"], 80);
  // The count starts again from the run: nothing new, nothing fires.
  ASSERT_TRUE(WaitUntil([&] { return Finished(GetOk("/v1/runs?pipeline=retrain")["runs"][0]); },
                        seconds(60)));
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_EQ(runs().size(), 1u);
}

// A drift alarm retrains on the new domain: the labelled samples it waits for are those taken
// after the alarm was raised, not the ones the device had uploaded before.
TEST_P(PipelineApiTest, ADriftRunWaitsForLabelledSamplesFromAfterTheAlarm) {
  auto dev = f_->Enroll("cam-1", "line");
  RegisterVersions(1);
  PostOk(
      "/v1/pipelines",
      {{"yaml",
        "name: retrain\ntrigger: {drift_alarm: true, min_labelled_samples: 10}\n"
        "dataset: {labelled_only: true, split: {train: 0.8, test: 0.2}}\n"
        "train: {parent: clf@production, strategy: head, epochs: 1}\nregister: {model: clf}\n"}});
  IngestLabelled(dev, 40);  // taken long before any alarm
  Json alarm = {{"t", 1},
                {"model_version", "clf:1"},
                {"n", 100},
                {"drift", {{"confidence", {{"psi", 0.6}, {"alarm", true}}}}}};
  auto sent = f_->Client(&dev)->Post("/v1/telemetry", alarm.dump(), "application/json");
  ASSERT_TRUE(sent && sent->status == 200);
  auto runs = [&] { return Triggers(GetOk("/v1/runs?pipeline=retrain")["runs"]); };
  std::this_thread::sleep_for(milliseconds(1500));  // 15 trigger checks
  EXPECT_TRUE(runs().empty()) << "40 labelled samples, none from after the alarm";
  const int64_t now_ms =
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  IngestLabelled(dev, 10, 40, now_ms + 1000);
  ASSERT_TRUE(WaitUntil([&] { return !runs().empty(); }));
  EXPECT_EQ(runs(), std::vector<std::string>{"drift_alarm:cam-1 on clf:1"});
}

TEST_P(PipelineApiTest, ScheduleFiresOnceThereIsSomethingNewToLearnFrom) {
  auto dev = f_->Enroll("cam-1", "line");
  RegisterVersions(1);
  PostOk(
      "/v1/pipelines",
      {{"yaml",
        "name: retrain\ntrigger: {schedule_seconds: 1, min_labelled_samples: 10}\n"
        "dataset: {labelled_only: true, split: {train: 0.8, test: 0.2}}\n"
        "train: {parent: clf@production, strategy: head, epochs: 1}\nregister: {model: clf}\n"}});
  auto runs = [&] { return Triggers(GetOk("/v1/runs?pipeline=retrain")["runs"]); };
  IngestLabelled(dev, 5);
  std::this_thread::sleep_for(milliseconds(2500));  // two periods, too little new data
  EXPECT_TRUE(runs().empty());
  IngestLabelled(dev, 5, 5);
  ASSERT_TRUE(WaitUntil([&] { return !runs().empty(); }));
  EXPECT_EQ(runs(), std::vector<std::string>{"schedule"});
}

TEST_P(RolloutApiTest, BadRequestsAreRefusedWithJsonErrors) {
  EnrollLine(1);
  RegisterVersions(2);
  const Json ok = {{"model", "clf"}, {"version", 2}, {"target", "group:line"}};
  EXPECT_EQ(ErrorStatus(Post("/v1/rollouts", ok.dump(), Token("write"))), 403);
  EXPECT_EQ(ErrorStatus(Post("/v1/rollouts", ok.dump(), Token("read"))), 403);
  EXPECT_EQ(ErrorStatus(f_->Client()->Post("/v1/rollouts", ok.dump(), "application/json")), 401);
  EXPECT_EQ(ErrorStatus(Post("/v1/rollouts", "{not json")), 400);
  EXPECT_EQ(ErrorStatus(Post("/v1/rollouts", Json{{"model", "clf"}}.dump())), 400);
  EXPECT_EQ(ErrorStatus(Post("/v1/rollouts", Json{{"model", "clf"}, {"version", "2"}}.dump())),
            400);
  EXPECT_EQ(ErrorStatus(Post("/v1/rollouts", Json{{"version", 2}}.dump())), 400);
  EXPECT_EQ(ErrorStatus(Post("/v1/rollouts", Json{{"model", "nope"}, {"version", 1}}.dump())), 404);
  EXPECT_EQ(ErrorStatus(Post("/v1/rollouts", Json{{"model", "clf"}, {"version", 9}}.dump())), 404);
  Json empty_group = ok;
  empty_group["target"] = "group:nobody";
  EXPECT_EQ(ErrorStatus(Post("/v1/rollouts", empty_group.dump())), 404);
  Json typo = ok;
  typo["canery"] = 1;
  auto res = Post("/v1/rollouts", typo.dump());
  EXPECT_EQ(ErrorStatus(res), 400);
  EXPECT_TRUE(Contains(ErrorMessage(res), "canery")) << ErrorMessage(res);
  Json bad_criteria = ok;
  bad_criteria["criteria"] = {{"window", 1}};
  res = Post("/v1/rollouts", bad_criteria.dump());
  EXPECT_EQ(ErrorStatus(res), 400);
  EXPECT_TRUE(Contains(ErrorMessage(res), "criteria.window")) << ErrorMessage(res);
  Json int8 = ok;
  int8["variant"] = "int8";
  res = Post("/v1/rollouts", int8.dump());
  EXPECT_EQ(ErrorStatus(res), 400);
  EXPECT_TRUE(Contains(ErrorMessage(res), "int8")) << ErrorMessage(res);
  EXPECT_EQ(ErrorStatus(Get("/v1/rollouts/ro-none")), 404);
  EXPECT_EQ(ErrorStatus(Command("ro-none", "pause")), 404);
  // Nothing started, nothing moved.
  EXPECT_EQ(GetOk("/v1/rollouts")["rollouts"].size(), 0u);
  EXPECT_EQ(Stage(2), "candidate");
}

TEST_P(RolloutApiTest, CanaryFirstThenTheWaveThenProduction) {
  auto devs = EnrollLine(3);
  RegisterVersions(2);
  const std::string id = StartRollout(2);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Stage(2), "staging");

  // Only the canary (the first device in order) is given version 2.
  ASSERT_TRUE(WaitForArtifact(devs[0], sha_[2]));
  auto canary = Deployment(devs[0]);
  ASSERT_TRUE(canary);
  EXPECT_EQ(canary->deployment_target, "cam-1");
  EXPECT_EQ(canary->target.model_version, "clf:2");
  EXPECT_FALSE(Deployment(devs[1]));
  EXPECT_FALSE(Deployment(devs[2]));
  EXPECT_FALSE(Deployment(devs[1], "group:line"));
  Json state = Rollout(id);
  EXPECT_EQ(state["status"], "running");
  ASSERT_EQ(state["stages"].size(), 2u);
  EXPECT_EQ(state["stages"][0]["devices"], Json::array({"cam-1"}));
  EXPECT_EQ(state["stages"][1]["devices"], Json::array({"cam-2", "cam-3"}));
  EXPECT_EQ(state["previous_model_version"], "clf:1");

  // The canary commits and reports healthy: the wave gets version 2.
  Commit(devs[0], "clf:2");
  ASSERT_TRUE(WaitForArtifact(devs[1], sha_[2]));
  ASSERT_TRUE(WaitForArtifact(devs[2], sha_[2]));
  state = Rollout(id);
  EXPECT_EQ(state["stages"][0]["result"], "passed");
  EXPECT_EQ(state["stage"], 1);
  EXPECT_EQ(state["status"], "running");  // the wave has not reported yet
  EXPECT_EQ(Stage(2), "staging");

  Commit(devs[1], "clf:2");
  Commit(devs[2], "clf:2");
  ASSERT_TRUE(WaitForRollout(id, "completed")) << Rollout(id).dump();
  state = Rollout(id);
  EXPECT_EQ(state["stages"][1]["result"], "passed");
  EXPECT_EQ(Stage(2), "production");
  EXPECT_EQ(Stage(1), "archived");
  // New devices of the group get version 2 too.
  auto group = Deployment(devs[0], "group:line");
  ASSERT_TRUE(group);
  EXPECT_EQ(group->target.sha256, sha_[2]);
  Json all = GetOk("/v1/rollouts")["rollouts"];
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0]["status"], "completed");
  EXPECT_EQ(all[0]["version"], 2);
}

TEST_P(RolloutApiTest, ALabelTargetsOnlyTheDevicesCarryingIt) {
  auto devs = EnrollLine(3);
  RegisterVersions(2);
  auto put = [&](const std::string& device, const Json& labels) {
    return f_->Client()->Put("/v1/devices/" + device + "/labels", f_->Bearer(admin_),
                             Json{{"labels", labels}}.dump(), "application/json");
  };
  auto res = put("cam-2", {"site-b", "rev-2"});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(Json::parse(res->body)["labels"], Json::array({"rev-2", "site-b"}));
  ASSERT_EQ(put("cam-3", {"site-b"})->status, 200);
  EXPECT_EQ(ErrorStatus(put("cam-9", {"site-b"})), 404);
  EXPECT_EQ(ErrorStatus(put("cam-1", {"no spaces"})), 400);
  for (const auto& d : GetOk("/v1/fleet")["devices"])
    if (d["device_id"] == "cam-1") {
      EXPECT_EQ(d["labels"], Json::array());
    }

  Json body = {{"model", "clf"}, {"version", 2},      {"target", "label:site-b"},
               {"canary", "1"},  {"waves", {"100%"}}, {"criteria", Criteria()}};
  std::string id = PostOk("/v1/rollouts", body, 201).value("id", "");
  ASSERT_FALSE(id.empty());
  Json state = Rollout(id);
  EXPECT_EQ(state["stages"][0]["devices"], Json::array({"cam-2"}));
  EXPECT_EQ(state["stages"][1]["devices"], Json::array({"cam-3"}));
  ASSERT_TRUE(WaitForArtifact(devs[1], sha_[2]));
  EXPECT_FALSE(Deployment(devs[0]));  // cam-1 does not carry the label
  body["target"] = "label:nowhere";
  EXPECT_EQ(ErrorStatus(Post("/v1/rollouts", body.dump())), 404);
}

TEST_P(RolloutApiTest, CanaryRollbackArchivesTheVersionAndRedeploysProduction) {
  auto devs = EnrollLine(3);
  RegisterVersions(3);
  PostOk("/v1/models/clf/versions/2/stage", {{"stage", "production"}});
  const std::string id = StartRollout(3);
  ASSERT_TRUE(WaitForArtifact(devs[0], sha_[3]));
  const uint64_t v3_metadata = Deployment(devs[0])->version;

  Event(devs[0], "rolled_back", "clf:3", "golden check failed");
  ASSERT_TRUE(WaitForRollout(id, "rolled_back")) << Rollout(id).dump();
  Json state = Rollout(id);
  EXPECT_EQ(state["stages"][0]["result"], "failed");
  EXPECT_EQ(state["stages"][1]["started_ms"], -1);  // the wave never began
  EXPECT_TRUE(Contains(state["events"].back()["detail"], "cam-1")) << state["events"].dump();
  EXPECT_EQ(Stage(3), "archived");
  EXPECT_EQ(Stage(2), "production");
  // The canary is pointed back at the production model with a newer metadata version.
  auto back = Deployment(devs[0]);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->target.sha256, sha_[2]);
  EXPECT_EQ(back->target.model_version, "clf:2");
  EXPECT_GT(back->version, v3_metadata);
  EXPECT_FALSE(Deployment(devs[1]));
  EXPECT_FALSE(Deployment(devs[2]));
}

TEST_P(RolloutApiTest, CanaryAccuracyDropRollsBack) {
  auto devs = EnrollLine(2);
  RegisterVersions(3);
  PostOk("/v1/models/clf/versions/2/stage", {{"stage", "production"}});
  Telemetry(devs[0], "clf:2", 0.9, 50);  // the canary's baseline
  Json criteria = Criteria();
  criteria["min_labelled"] = 20;
  const std::string id = StartRollout(3, criteria);
  ASSERT_TRUE(WaitForArtifact(devs[0], sha_[3]));
  EXPECT_DOUBLE_EQ(Rollout(id)["baseline"]["cam-1"].get<double>(), 0.9);

  Commit(devs[0], "clf:3", 0.5);
  ASSERT_TRUE(WaitForRollout(id, "rolled_back")) << Rollout(id).dump();
  Json state = Rollout(id);
  const std::string why = state["events"].back()["detail"];
  EXPECT_TRUE(Contains(why, "cam-1") && Contains(why, "accuracy")) << why;
  EXPECT_EQ(Stage(3), "archived");
  auto back = Deployment(devs[0]);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->target.sha256, sha_[2]);
  EXPECT_FALSE(Deployment(devs[1]));
}

TEST_P(RolloutApiTest, PauseResumeAndAbortAreReflectedInTheRollout) {
  auto devs = EnrollLine(2);
  RegisterVersions(2);
  const std::string id = StartRollout(2);
  ASSERT_TRUE(WaitForArtifact(devs[0], sha_[2]));

  EXPECT_EQ(ErrorStatus(Command(id, "pause", Token("write"))), 403);
  auto paused = Command(id, "pause");
  ASSERT_TRUE(paused && paused->status == 200) << (paused ? paused->body : "");
  EXPECT_EQ(Json::parse(paused->body)["status"], "paused");
  EXPECT_EQ(Rollout(id)["status"], "paused");
  EXPECT_EQ(ErrorStatus(Command(id, "pause")), 400);
  // A paused rollout does not look at what its devices report.
  Commit(devs[0], "clf:2");
  std::this_thread::sleep_for(milliseconds(600));
  Json state = Rollout(id);
  EXPECT_EQ(state["status"], "paused");
  EXPECT_EQ(state["stages"][0]["updated_ms"], -1);
  EXPECT_FALSE(Deployment(devs[1]));

  auto resumed = Command(id, "resume");
  ASSERT_TRUE(resumed && resumed->status == 200) << (resumed ? resumed->body : "");
  EXPECT_EQ(Rollout(id)["status"], "running");
  EXPECT_EQ(ErrorStatus(Command(id, "resume")), 400);
  ASSERT_TRUE(WaitForArtifact(devs[1], sha_[2]));  // it carries on: the wave started

  auto aborted = Command(id, "abort");
  ASSERT_TRUE(aborted && aborted->status == 200) << (aborted ? aborted->body : "");
  state = Rollout(id);
  EXPECT_EQ(state["status"], "aborted");
  EXPECT_EQ(state["events"].back()["kind"], "aborted");
  EXPECT_EQ(Stage(2), "archived");
  EXPECT_EQ(Stage(1), "production");
  // Every device the rollout touched is pointed back at version 1.
  for (const auto& d : devs) {
    auto m = Deployment(d);
    ASSERT_TRUE(m) << d.device_id;
    EXPECT_EQ(m->target.sha256, sha_[1]) << d.device_id;
  }
  auto again = Command(id, "abort");
  EXPECT_EQ(ErrorStatus(again), 400);
  EXPECT_TRUE(Contains(ErrorMessage(again), "aborted")) << ErrorMessage(again);
  EXPECT_EQ(ErrorStatus(Command(id, "resume")), 400);
  EXPECT_EQ(Rollout(id)["status"], "aborted");
}

EDGELOOP_BOTH_DATABASES(PipelineApiTest);
EDGELOOP_BOTH_DATABASES(RolloutApiTest);

}  // namespace
}  // namespace edgeloop::testing
