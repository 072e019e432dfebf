// Pipeline specs, quality gates, the rollout controller and the pipeline runner with a
// stand-in host and worker: no server.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cloud/pipeline.hpp"
#include "cloud/pipeline_runner.hpp"
#include "cloud/rollout.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "common/worker_protocol.hpp"

namespace edgeloop::cloud {
namespace {

const char* kSpec = R"(
name: retrain
trigger: {new_labelled_samples: 400, drift_alarm: true}
dataset: {labelled_only: true, split: {train: 0.8, val: 0.1, test: 0.1, seed: 3}}
train: {parent: fashion-cnn@production, strategy: full, epochs: 6, lr: 0.002, nproc: 2}
evaluate:
  sets: [{name: heldout, data: "fashion-mnist:test"}]
  robustness: true
gates: ["accuracy >= champion + 0.01", "latency_p95_us <= 2000", "heldout.accuracy > 0.8"]
package: {int8: true}
register: {stage: staging}
rollout: {canary: 1, waves: ["50%", "100%"]}
)";

TEST(PipelineSpec, ParsesEverySection) {
  auto p = ParsePipeline(kSpec, "retrain.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->name, "retrain");
  EXPECT_EQ(p->trigger.new_labelled_samples, 400);
  EXPECT_TRUE(p->trigger.drift_alarm);
  EXPECT_EQ(p->train.parent, "fashion-cnn@production");
  EXPECT_EQ(p->train.epochs, 6);
  EXPECT_DOUBLE_EQ(p->train.lr, 0.002);
  EXPECT_EQ(p->train.nproc, 2);
  EXPECT_EQ(p->dataset["split"]["seed"], 3);
  ASSERT_EQ(p->evaluate.sets.size(), 1u);
  EXPECT_EQ(p->evaluate.sets[0].data, "fashion-mnist:test");
  EXPECT_TRUE(p->evaluate.robustness);
  ASSERT_EQ(p->gates.size(), 3u);
  EXPECT_TRUE(p->gates[0].vs_champion);
  EXPECT_DOUBLE_EQ(p->gates[0].value, 0.01);
  EXPECT_EQ(p->gates[2].op, ">");
  EXPECT_EQ(p->register_model, "fashion-cnn");  // from the parent
  EXPECT_EQ(p->register_stage, "staging");
  EXPECT_EQ(p->rollout["canary"], 1);
}

TEST(PipelineSpec, RefusesMistakesNamingTheKey) {
  struct Case {
    const char* yaml;
    const char* expect;
  } cases[] = {
      {"name: x\ntrain: {parent: m@production, epochz: 3}", "train.epochz: unknown key"},
      {"name: x\ntrain: {parent: m@production, epochs: many}", "train.epochs: expected an integer"},
      {"name: x\ntrain: {parent: m@production, epochs: 0}", "train.epochs: 0 is outside"},
      {"name: x\ntrain: {strategy: full}", "train.parent: finetune needs a parent"},
      {"name: x\ntrain: {parent: m@p, nproc: 0}", "train.nproc: 0 is outside"},
      {"name: x\ntrain: {parent: m@p, nproc: 2, batch_size: 63}",
       "train.batch_size: is the global batch and must be a multiple of nproc (2)"},
      {"name: x\ntrain: {parent: m@production, strategy: most}", "train.strategy"},
      {"name: x\ntrain: {parent: m@p}\ngates: [\"accuracy ~ 3\"]", "gates[0]"},
      {"name: x\ntrain: {parent: m@p}\ngates: [\"accuracy >= champion * 2\"]", "gates[0]"},
      {"name: x\ntrain: {parent: m@p}\nextra: 1", "extra: unknown key"},
      {"name: x\ntrian: {parent: m@p}", "trian: unknown key"},
      {"name: Bad Name\ntrain: {parent: m@p}", "name: required"},
      {"name: x\ntrain: {parent: m@p}\nregister: {stage: production}", "register.stage"},
      {"name: x\ntrain: [1, 2", "line"},
      {"- just\n- a list", "expected a mapping"},
  };
  for (const auto& c : cases) {
    auto p = ParsePipeline(c.yaml, "p.yaml");
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_NE(p.error().message.find(c.expect), std::string::npos)
        << c.yaml << " -> " << p.error().message;
    EXPECT_EQ(p.error().message.rfind("p.yaml", 0), 0u) << p.error().message;
  }
}

TEST(Gates, JudgeAgainstChampionAndConstants) {
  std::map<std::string, double> challenger = {{"accuracy", 0.85}, {"latency_p95_us", 900}};
  std::map<std::string, double> champion = {{"accuracy", 0.84}, {"latency_p95_us", 800}};
  auto g = ParseGate("accuracy >= champion + 0.01");
  ASSERT_TRUE(g.ok());
  auto r = EvaluateGate(*g, challenger, &champion);
  EXPECT_TRUE(r.passed);
  EXPECT_NEAR(r.threshold, 0.85, 1e-12);
  challenger["accuracy"] = 0.8499;
  EXPECT_FALSE(EvaluateGate(*g, challenger, &champion).passed);
  // No champion yet: a relative gate passes and says why.
  r = EvaluateGate(*g, challenger, nullptr);
  EXPECT_TRUE(r.passed);
  EXPECT_FALSE(r.detail.empty());
  auto lat = ParseGate("latency_p95_us <= champion - 50");
  ASSERT_TRUE(lat.ok());
  EXPECT_FALSE(EvaluateGate(*lat, challenger, &champion).passed);  // 900 > 750
  auto c = ParseGate("latency_p95_us < 1000");
  EXPECT_TRUE(EvaluateGate(*c, challenger, nullptr).passed);
  // A metric the candidate lacks fails the gate instead of passing silently.
  auto missing = ParseGate("mean_corruption_accuracy >= 0.7");
  r = EvaluateGate(*missing, challenger, &champion);
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.detail.find("mean_corruption_accuracy"), std::string::npos);
}

RolloutSpec Spec(int n) {
  RolloutSpec s;
  s.model = "m";
  s.model_version = "m:2";
  s.artifact_sha256 = std::string(64, 'b');
  s.previous_model_version = "m:1";
  s.previous_sha256 = std::string(64, 'a');
  for (int i = 0; i < n; ++i) s.devices.push_back("dev-" + std::to_string(i));
  s.canary = "1";
  s.waves = {"50%", "100%"};
  s.criteria.window_seconds = 10;
  s.criteria.stage_timeout_seconds = 100;
  s.criteria.min_labelled = 10;
  return s;
}

TEST(Rollout, PlansCanaryThenWavesCoveringEveryDeviceOnce) {
  auto stages = PlanStages(Spec(10));
  ASSERT_TRUE(stages.ok());
  ASSERT_EQ(stages->size(), 3u);
  EXPECT_EQ((*stages)[0].size(), 1u);
  EXPECT_EQ((*stages)[1].size(), 4u);  // up to 50%
  EXPECT_EQ((*stages)[2].size(), 5u);
  RolloutSpec s = Spec(3);
  s.canary = "34%";
  s.waves = {"100%"};
  stages = PlanStages(s);
  ASSERT_TRUE(stages.ok());
  EXPECT_EQ((*stages)[0].size(), 2u);  // ceil(1.02)
  EXPECT_EQ((*stages)[1].size(), 1u);
  s.canary = "lots";
  EXPECT_FALSE(PlanStages(s).ok());
  s = Spec(0);
  EXPECT_FALSE(PlanStages(s).ok());
}

std::map<std::string, DeviceState> Fleet(int n, const std::string& version, double accuracy) {
  std::map<std::string, DeviceState> f;
  for (int i = 0; i < n; ++i) {
    DeviceState d;
    d.device_id = "dev-" + std::to_string(i);
    d.model_version = version;
    d.update_phase = "committed";
    d.update_model_version = version;
    d.telemetry_model_version = version;
    d.accuracy = accuracy;
    d.labelled = 100;
    d.latency_p95_ms = 1;
    f[d.device_id] = d;
  }
  return f;
}

// A device that committed `version` (its event received at `commit_ms`) and reported a
// telemetry period with it at `telemetry_ms`.
void RunsWithTelemetry(DeviceState* d, const std::string& version, int64_t commit_ms,
                       int64_t telemetry_ms) {
  d->model_version = d->telemetry_model_version = version;
  d->update_ms = commit_ms;
  d->telemetry_ms = telemetry_ms;
}

TEST(Rollout, PromotesAfterEveryStagePasses) {
  auto c = RolloutController::Create(Spec(4), 0);
  ASSERT_TRUE(c.ok());
  auto fleet = Fleet(4, "m:1", 0.3);
  auto a = c->Tick(1000, fleet);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, RolloutAction::kDeploy);
  EXPECT_EQ(a[0].devices, std::vector<std::string>{"dev-0"});
  EXPECT_TRUE(c->Tick(2000, fleet).empty());  // canary not updated yet
  RunsWithTelemetry(&fleet["dev-0"], "m:2", 2500, 2500);
  fleet["dev-0"].accuracy = 0.8;
  EXPECT_TRUE(c->Tick(3000, fleet).empty());   // updated: the window starts
  EXPECT_TRUE(c->Tick(12000, fleet).empty());  // 9 s observed of 10
  a = c->Tick(13000, fleet);                   // canary passes, wave 1 starts
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, RolloutAction::kDeploy);
  EXPECT_EQ(a[0].devices, std::vector<std::string>{"dev-1"});
  RunsWithTelemetry(&fleet["dev-1"], "m:2", 13500, 13600);
  c->Tick(14000, fleet);
  a = c->Tick(25000, fleet);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].devices, (std::vector<std::string>{"dev-2", "dev-3"}));
  RunsWithTelemetry(&fleet["dev-2"], "m:2", 25500, 25600);
  RunsWithTelemetry(&fleet["dev-3"], "m:2", 25500, 25500);
  c->Tick(26000, fleet);
  a = c->Tick(40000, fleet);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, RolloutAction::kPromote);
  EXPECT_EQ(c->status(), "completed");
  EXPECT_TRUE(c->finished());
  // The state survives a round trip (the server persists it between ticks).
  auto back = RolloutController::FromJson(c->ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->status(), "completed");
}

TEST(Rollout, RollsBackWhenCanaryAccuracyDrops) {
  auto c = RolloutController::Create(Spec(3), 0);
  auto fleet = Fleet(3, "m:1", 0.8);
  c->Tick(0, fleet);
  RunsWithTelemetry(&fleet["dev-0"], "m:2", 900, 950);
  fleet["dev-0"].accuracy = 0.5;
  c->Tick(1000, fleet);
  auto a = c->Tick(20000, fleet);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].kind, RolloutAction::kRevert);
  EXPECT_EQ(a[0].devices, std::vector<std::string>{"dev-0"});
  EXPECT_EQ(a[1].kind, RolloutAction::kRolledBack);
  EXPECT_NE(a[1].reason.find("accuracy"), std::string::npos);
  EXPECT_EQ(c->status(), "rolled_back");
  EXPECT_TRUE(c->Tick(30000, fleet).empty());  // finished: nothing more
}

TEST(Rollout, JudgesTheCanaryOnlyOnTelemetryFromTheNewModel) {
  // The canary has committed m:2, but its newest telemetry is still the previous model's
  // (good) figures: the stage waits for a period of m:2 instead of passing on them.
  auto c = RolloutController::Create(Spec(3), 0);
  auto fleet = Fleet(3, "m:1", 0.8);
  c->Tick(0, fleet);
  DeviceState& canary = fleet["dev-0"];
  canary.model_version = "m:2";  // its committed event, at 900
  canary.update_ms = 900;
  canary.telemetry_ms = 500;                   // the last period, of m:1
  EXPECT_TRUE(c->Tick(1000, fleet).empty());   // updated: the window starts
  EXPECT_TRUE(c->Tick(30000, fleet).empty());  // window over, no m:2 telemetry: waits
  EXPECT_EQ(c->status(), "running");
  EXPECT_EQ(c->ToJson()["stage"], 0);
  // A period that names m:2 but arrived before the commit does not count either.
  RunsWithTelemetry(&canary, "m:2", 900, 800);
  EXPECT_TRUE(c->Tick(31000, fleet).empty());
  EXPECT_EQ(c->status(), "running");
  // The first period of m:2 after the commit shows the drop, and the stage fails on it.
  RunsWithTelemetry(&canary, "m:2", 900, 32000);
  canary.accuracy = 0.5;
  auto a = c->Tick(33000, fleet);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].kind, RolloutAction::kRevert);
  EXPECT_NE(a[1].reason.find("accuracy"), std::string::npos);

  // A canary that never sends telemetry from the new model fails the stage at its timeout.
  auto quiet = RolloutController::Create(Spec(3), 0);
  fleet = Fleet(3, "m:1", 0.8);
  quiet->Tick(0, fleet);
  fleet["dev-0"].model_version = "m:2";
  fleet["dev-0"].update_ms = 900;
  quiet->Tick(1000, fleet);
  EXPECT_TRUE(quiet->Tick(100000, fleet).empty());  // 99 s of 100 after the update
  a = quiet->Tick(102000, fleet);
  ASSERT_FALSE(a.empty());
  EXPECT_NE(a.back().reason.find("sent no telemetry from m:2"), std::string::npos)
      << a.back().reason;
  EXPECT_EQ(quiet->status(), "rolled_back");
}

TEST(Rollout, RollsBackWhenADeviceRefusesOrTimesOut) {
  auto c = RolloutController::Create(Spec(2), 0);
  auto fleet = Fleet(2, "m:1", 0.8);
  c->Tick(0, fleet);
  fleet["dev-0"].update_phase = "rolled_back";
  fleet["dev-0"].update_model_version = "m:2";
  auto a = c->Tick(1000, fleet);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a[0].kind, RolloutAction::kRevert);
  EXPECT_EQ(c->status(), "rolled_back");

  auto t = RolloutController::Create(Spec(2), 0);
  fleet = Fleet(2, "m:1", 0.8);
  t->Tick(0, fleet);
  EXPECT_TRUE(t->Tick(50000, fleet).empty());
  a = t->Tick(101000, fleet);
  ASSERT_FALSE(a.empty());
  EXPECT_NE(a.back().reason.find("did not run m:2"), std::string::npos);
}

TEST(Rollout, PauseResumeAbort) {
  auto c = RolloutController::Create(Spec(2), 0);
  auto fleet = Fleet(2, "m:1", 0.8);
  c->Tick(0, fleet);
  ASSERT_TRUE(c->Pause(1).ok());
  EXPECT_FALSE(c->Pause(2).ok());
  fleet["dev-0"].model_version = "m:2";
  EXPECT_TRUE(c->Tick(100000, fleet).empty());  // paused: no timeout, no progress
  ASSERT_TRUE(c->Resume(3).ok());
  auto a = c->Abort(4, "");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].kind, RolloutAction::kRevert);
  EXPECT_EQ(c->status(), "aborted");
  EXPECT_TRUE(c->Abort(5, "").empty());
}

TEST(Process, ReportsExitCodesSignalsAndTimeouts) {
  auto ok = RunProcess({"sh", "-c", "exit 3"}, {});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->exit_code, 3);
  RunOptions slow;
  slow.timeout = std::chrono::seconds(1);
  auto t = RunProcess({"sleep", "30"}, slow);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->timed_out);
  EXPECT_NE(t->Describe().find("timed out"), std::string::npos);
  auto k = RunProcess({"sh", "-c", "kill -9 $$"}, {});
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->signal, 9);
  auto missing = RunProcess({"/nonexistent/program"}, {});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->exit_code, 127);
}

}  // namespace
}  // namespace edgeloop::cloud

namespace edgeloop::cloud {
namespace {

TEST(PipelineSpec, ShippedExampleParses) {
  std::string path =
      std::string(std::getenv("EDGELOOP_SOURCE_DIR")) + "/examples/pipelines/retrain.yaml";
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  auto p = ParsePipeline(text.str(), path);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->gates.size(), 3u);
  RolloutSpec r;
  ASSERT_TRUE(ParseRolloutOptions(p->rollout, &r).ok());
  EXPECT_EQ(r.waves.size(), 2u);
  EXPECT_DOUBLE_EQ(r.criteria.window_seconds, 30);
}

}  // namespace
}  // namespace edgeloop::cloud

namespace edgeloop::cloud {
namespace {

namespace fs = std::filesystem;

// Stands in for the edgeloop worker: `<kind> --request FILE`, writes what that kind writes
// (reports of the current protocol) at the request's "out". The requests the runner writes
// are checked by the real parsers in the test, not here.
std::string FakeWorker() {
  std::string script = R"sh(#!/bin/sh
[ "$2" = "--request" ] && [ -f "$3" ] || { echo "usage: KIND --request FILE"; exit 2; }
request="$3"
field() { sed -n "s/^  \"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" "$request"; }
out=$(field out)
echo "worker $1 writing $out"
case "$1" in
  train|finetune) mkdir -p "$out" && echo '{}' > "$out/model.json" && echo w > "$out/weights.pt" ;;
  export|quantize) echo onnx > "$out" ;;
  eval) accuracy=0.9; case "$(field model)" in *champion*) accuracy=0.8 ;; esac
    echo "{\"protocol\": PROTOCOL, \"metrics\": {\"accuracy\": $accuracy, \"macro_precision\": 0.9, \"macro_recall\": 0.9, \"macro_f1\": 0.9, \"ece\": 0.05}, \"robustness\": {\"mean_corruption_accuracy\": 0.7}}" > "$out" ;;
  infer) echo '{"protocol": PROTOCOL, "latency_us": {"p50": 50, "p95": 80, "p99": 90}}' > "$out" ;;
  *) echo "unknown kind $1"; exit 2 ;;
esac
)sh";
  for (size_t at; (at = script.find("PROTOCOL")) != std::string::npos;)
    script.replace(at, 8, std::to_string(worker::kWorkerProtocol));
  return script;
}

const char* kRunnerSpec = R"(
name: retrain
dataset: {labelled_only: true}
train: {parent: clf@production, strategy: last-k, k: 2, epochs: 3, lr: 0.002, seed: 5, nproc: 2}
evaluate:
  sets: [{name: shifted, data: "fashion-mnist:test", corrupt: blur, severity: 4}]
  robustness: true
gates: ["accuracy >= champion + 0.05", "latency_p95_us <= 2000"]
package: {int8: true, calib_samples: 50}
register: {stage: staging}
rollout: {canary: 1, waves: ["100%"]}
)";

// The server's side of a run, in memory: clf:1 in production with a training checkpoint.
class FakeHost : public PipelineHost {
 public:
  explicit FakeHost(std::string parent_dir) : parent_dir_(std::move(parent_dir)) {}

  Result<SnapshotRef> CreateSnapshot(const nlohmann::json& spec) override {
    snapshot_spec = spec;
    return SnapshotRef{"0123456789abcdef0123", "/data/datasets/0123", 8, 0, 2};
  }
  Result<ModelRef> ResolveModel(const std::string& ref) override {
    if (ref != "clf@production") return Error(Errc::kNotFound, "no model " + ref);
    return ModelRef{"clf", 1, "clf:1", parent_dir_, "", {{"fp32", "f00d"}}};
  }
  Result<std::string> StoreArtifact(const std::string& path) override {
    if (!fs::exists(path)) return Error(Errc::kNotFound, path + ": no such file");
    return "sha-" + fs::path(path).filename().string();
  }
  Result<RegisteredVersion> RegisterVersion(const std::string& model, const NewVersion& version,
                                            const std::string& stage) override {
    registered = version;
    registered_stage = stage;
    return RegisteredVersion{model, 2, model + ":2"};
  }
  Result<std::string> StartRollout(const nlohmann::json&, const std::string& model,
                                   int64_t version) override {
    rollout = model + ":" + std::to_string(version);
    return std::string("ro-1");
  }
  void OnProgress(const RunResult&) override { ++progress; }

  nlohmann::json snapshot_spec;
  NewVersion registered;
  std::string registered_stage, rollout;
  int progress = 0;

 private:
  std::string parent_dir_;
};

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            ("edgeloop_runner_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    ASSERT_TRUE(MakeDirs(dir_ + "/parent").ok());
    ASSERT_TRUE(
        WriteFileAtomic(dir_ + "/parent/model.json", R"({"class_names": ["cat", "dog"]})").ok());
    ctx_.run_id = "run-1";
    ctx_.work_dir = dir_ + "/run";
    ctx_.executable = dir_ + "/worker.sh";
    ctx_.threads = 1;
  }
  void TearDown() override { fs::remove_all(dir_); }

  RunResult Run(const std::string& worker, FakeHost& host) {
    EXPECT_TRUE(WriteFileAtomic(ctx_.executable, worker, 0755).ok());
    auto spec = ParsePipeline(kRunnerSpec, "retrain.yaml");
    EXPECT_TRUE(spec.ok()) << spec.error().message;
    return RunPipeline(*spec, ctx_, host);
  }

  // The request files of the run, in the order they were written.
  std::vector<std::string> Requests() const {
    std::vector<std::pair<int, std::string>> found;
    for (const auto& e : fs::directory_iterator(ctx_.work_dir)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("request-", 0) == 0) found.push_back({std::stoi(name.substr(8)), name});
    }
    std::sort(found.begin(), found.end());
    std::vector<std::string> out;
    for (const auto& f : found) out.push_back(ctx_.work_dir + "/" + f.second);
    return out;
  }

  std::string dir_;
  RunContext ctx_;
};

TEST_F(RunnerTest, EveryWorkerGetsAVersionedRequestItsCommandAccepts) {
  FakeHost host(dir_ + "/parent");
  RunResult run = Run(FakeWorker(), host);
  ASSERT_EQ(run.status, "succeeded") << run.failed_step << ": " << run.reason;

  // The host's typed answers reached the run.
  EXPECT_EQ(host.snapshot_spec["class_names"], nlohmann::json({"cat", "dog"}));
  EXPECT_EQ(run.snapshot_id, "0123456789abcdef0123");
  EXPECT_EQ(run.steps[0].detail, "snapshot 0123456789ab: 8 train, 2 test");
  EXPECT_EQ(run.steps[1].detail, "fine-tuned clf:1 (last-k)");
  EXPECT_EQ(run.model_version, "clf:2");
  EXPECT_EQ(host.rollout, "clf:2");
  EXPECT_EQ(run.rollout_id, "ro-1");
  EXPECT_DOUBLE_EQ(run.metrics["accuracy"], 0.9);
  EXPECT_DOUBLE_EQ(run.champion_metrics["accuracy"], 0.8);
  EXPECT_DOUBLE_EQ(run.metrics["latency_p95_us"], 80);
  EXPECT_DOUBLE_EQ(run.metrics["mean_corruption_accuracy"], 0.7);
  const NewVersion& v = host.registered;
  EXPECT_EQ(v.parent, "clf:1");
  EXPECT_EQ(v.dataset_snapshot, run.snapshot_id);
  EXPECT_EQ(v.pipeline, "retrain");
  EXPECT_EQ(v.run, "run-1");
  EXPECT_EQ(host.registered_stage, "staging");
  EXPECT_EQ(v.artifacts.at("fp32"), "sha-model.onnx");
  EXPECT_EQ(v.artifacts.at("int8"), "sha-model.int8.onnx");
  EXPECT_EQ(v.artifacts.at("torch_weights"), "sha-weights.pt");
  ASSERT_EQ(v.gates.size(), 2u);
  EXPECT_TRUE(v.gates[0].passed && v.gates[1].passed);
  EXPECT_EQ(v.hyperparameters["k"], 2);

  // Each request parses with its command's parser and says what the pipeline asked for:
  // fine-tune, export candidate and champion, evaluate both on the test split and the extra
  // set, three rounds of latency for each, quantize.
  const std::vector<std::string> files = Requests();
  std::vector<std::string> kinds;
  for (const auto& f : files) {
    auto text = ReadFile(f);
    ASSERT_TRUE(text.ok());
    kinds.push_back(nlohmann::json::parse(*text)["kind"]);
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"finetune", "export", "export", "eval", "eval", "eval",
                                             "eval", "infer", "infer", "infer", "infer", "infer",
                                             "infer", "quantize"}));
  ASSERT_EQ(files.size(), 14u);
  auto ft = worker::ReadRequest(files[0], worker::ParseFinetuneRequest);
  ASSERT_TRUE(ft.ok()) << ft.error().message;
  EXPECT_EQ(ft->parent, dir_ + "/parent");  // the training checkpoint, not the ONNX file
  EXPECT_EQ(ft->strategy, "last-k");
  EXPECT_EQ(ft->k, 2);
  EXPECT_EQ(ft->training.data, "snapshot:/data/datasets/0123:train");
  EXPECT_EQ(ft->training.out, ctx_.work_dir + "/model");
  EXPECT_EQ(ft->training.epochs, 3);
  EXPECT_DOUBLE_EQ(ft->training.lr, 0.002);
  EXPECT_EQ(ft->training.seed, 5u);
  EXPECT_EQ(ft->training.nproc, 2);  // the step runs data-parallel in 2 processes
  EXPECT_EQ(ft->training.threads, 1);
  auto champion = worker::ReadRequest(files[2], worker::ParseExportRequest);
  ASSERT_TRUE(champion.ok()) << champion.error().message;
  EXPECT_EQ(champion->model, dir_ + "/parent");
  auto test = worker::ReadRequest(files[3], worker::ParseEvalRequest);
  auto shifted = worker::ReadRequest(files[4], worker::ParseEvalRequest);
  ASSERT_TRUE(test.ok() && shifted.ok());
  EXPECT_EQ(test->data, "snapshot:/data/datasets/0123:test");
  EXPECT_TRUE(test->robustness);
  EXPECT_EQ(test->corrupt, "");
  EXPECT_EQ(shifted->data, "fashion-mnist:test");
  EXPECT_EQ(shifted->corrupt, "blur");
  EXPECT_EQ(shifted->severity, 4);
  EXPECT_FALSE(shifted->robustness);
  auto latency = worker::ReadRequest(files[7], worker::ParseInferRequest);
  ASSERT_TRUE(latency.ok()) << latency.error().message;
  EXPECT_EQ(latency->limit, 300);
  EXPECT_EQ(latency->warmup, 20);
  auto quantize = worker::ReadRequest(files[13], worker::ParseQuantizeRequest);
  ASSERT_TRUE(quantize.ok()) << quantize.error().message;
  EXPECT_EQ(quantize->samples, 50);
  EXPECT_EQ(quantize->calib, "snapshot:/data/datasets/0123:train");

  // The step's log shows what ran: the command, its request, then the worker's output.
  auto log = ReadFile(run.steps[1].log);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->rfind("$ " + ctx_.executable + " finetune --request " + files[0] + "\n", 0), 0u)
      << *log;
  EXPECT_NE(log->find("\"strategy\": \"last-k\""), std::string::npos) << *log;
  EXPECT_NE(log->find("worker finetune writing " + ctx_.work_dir + "/model"), std::string::npos)
      << *log;
}

TEST_F(RunnerTest, AWorkerThatRefusesItsRequestFailsTheStepInItsOwnWords) {
  FakeHost host(dir_ + "/parent");
  RunResult run = Run(R"(#!/bin/sh
echo "edgeloop $1: error: $3: the request speaks protocol 9, this worker 2"
exit 2
)",
                      host);
  EXPECT_EQ(run.status, "failed");
  EXPECT_EQ(run.failed_step, "train");
  EXPECT_NE(run.reason.find("worker finetune exit 2: edgeloop finetune: error: "),
            std::string::npos)
      << run.reason;
  EXPECT_NE(run.reason.find("speaks protocol 9"), std::string::npos) << run.reason;

  // A worker that says nothing: the reason is its exit, not a line of the request.
  fs::remove_all(ctx_.work_dir);
  run = Run("#!/bin/sh\nexit 1\n", host);
  EXPECT_EQ(run.failed_step, "train");
  EXPECT_EQ(run.reason.rfind("worker finetune exit 1 (log ", 0), 0u) << run.reason;
}

}  // namespace
}  // namespace edgeloop::cloud
