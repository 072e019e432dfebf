// Pipeline specs, quality gates and the rollout controller: pure logic, no server.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cloud/pipeline.hpp"
#include "cloud/rollout.hpp"
#include "common/process.hpp"

namespace edgeloop::cloud {
namespace {

const char* kSpec = R"(
name: retrain
trigger: {new_labelled_samples: 400, drift_alarm: true}
dataset: {labelled_only: true, split: {train: 0.8, val: 0.1, test: 0.1, seed: 3}}
train: {parent: fashion-cnn@production, strategy: full, epochs: 6, lr: 0.002}
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
    d.accuracy = accuracy;
    d.labelled = 100;
    d.latency_p95_ms = 1;
    f[d.device_id] = d;
  }
  return f;
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
  fleet["dev-0"].model_version = "m:2";
  fleet["dev-0"].accuracy = 0.8;
  EXPECT_TRUE(c->Tick(3000, fleet).empty());   // updated: the window starts
  EXPECT_TRUE(c->Tick(12000, fleet).empty());  // 9 s observed of 10
  a = c->Tick(13000, fleet);                   // canary passes, wave 1 starts
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, RolloutAction::kDeploy);
  EXPECT_EQ(a[0].devices, std::vector<std::string>{"dev-1"});
  fleet["dev-1"].model_version = "m:2";
  c->Tick(14000, fleet);
  a = c->Tick(25000, fleet);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].devices, (std::vector<std::string>{"dev-2", "dev-3"}));
  fleet["dev-2"].model_version = fleet["dev-3"].model_version = "m:2";
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
  fleet["dev-0"].model_version = "m:2";
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
