// Staged rollouts: a canary (N devices or a percentage) then waves, each judged on device
// telemetry before the next begins; automatic promotion when the last wave passes, automatic
// rollback (the previous model re-deployed to every device the rollout touched) when a stage
// fails. The controller is pure logic: it reads device states and returns actions, and its
// whole state is JSON, so the server persists it after every tick and a restarted server
// carries on where it was.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::cloud {

// What a device last reported (telemetry and update events).
struct DeviceState {
  std::string device_id;
  std::string model_version;  // the model it runs
  std::string update_phase;   // idle, downloading, staged, probation, committed, rolled_back...
  std::string update_model_version;  // the model the last update event was about
  int64_t last_seen_ms = 0;
  int64_t update_ms = 0;  // when the server received its latest update event (0: none)
  // Its newest telemetry period: when the server received it (0: none recently) and the model
  // it reported. A stage judges a device only on a period of the new model received after its
  // latest update event (the commit); the figures below are that period's.
  int64_t telemetry_ms = 0;
  std::string telemetry_model_version;
  double accuracy = -1;  // on labelled samples with its current model; < 0: unknown
  int64_t labelled = 0;
  double error_rate = 0;
  double latency_p95_ms = 0;
};

struct RolloutCriteria {
  double window_seconds = 20;  // observe each stage this long after its last device updated
  // A device that has not updated by then fails the stage, and so does one that has sent no
  // telemetry from the new model since its commit this long after the stage's last device
  // updated.
  double stage_timeout_seconds = 300;
  double max_error_rate = 0.05;
  double max_latency_p95_ms = 50;
  double min_accuracy_delta = -0.02;  // accuracy after - before, per device with labels
  int64_t min_labelled = 20;          // labelled samples needed to judge accuracy
};

struct RolloutSpec {
  std::string model;          // registry model name
  std::string model_version;  // "<model>:<n>", as devices report it
  std::string artifact_sha256, artifact_name = "model.onnx";
  std::string previous_model_version, previous_sha256;  // what rollback re-deploys
  std::vector<std::string> devices;                     // the target, resolved to device ids
  std::string canary = "1";                             // "N" devices or "P%"
  std::vector<std::string> waves = {"100%"};  // cumulative shares of the target after the canary
  RolloutCriteria criteria;
};

// Parses the rollout section of a pipeline or an API body (target resolution is the
// caller's): {canary, waves, criteria: {...}}. Unknown keys are refused.
Status ParseRolloutOptions(const nlohmann::json& j, RolloutSpec* spec);

// Splits the devices into stages: canary first, then each wave up to its cumulative share.
// Empty stages are dropped; every device appears exactly once.
Result<std::vector<std::vector<std::string>>> PlanStages(const RolloutSpec& spec);

struct RolloutAction {
  enum Kind { kDeploy, kRevert, kPromote, kRolledBack } kind;
  std::vector<std::string> devices;  // kDeploy: new model; kRevert: previous model
  std::string reason;
};

class RolloutController {
 public:
  // A new rollout, status "running", stage 0 not yet started.
  static Result<RolloutController> Create(const RolloutSpec& spec, int64_t now_ms);
  // Back from persisted state.
  static Result<RolloutController> FromJson(const nlohmann::json& state);
  nlohmann::json ToJson() const { return state_; }

  // Advances by what the devices report. Returns the actions to carry out now.
  std::vector<RolloutAction> Tick(int64_t now_ms, const std::map<std::string, DeviceState>& fleet);

  Status Pause(int64_t now_ms);
  Status Resume(int64_t now_ms);
  // Stops the rollout and reverts the devices that got the new model.
  std::vector<RolloutAction> Abort(int64_t now_ms, const std::string& why);

  std::string status() const { return state_.value("status", ""); }
  bool finished() const;

 private:
  void Event(int64_t now_ms, const std::string& kind, const std::string& detail);
  std::vector<RolloutAction> Fail(int64_t now_ms, const std::string& why, const char* status);
  nlohmann::json state_;
};

}  // namespace edgeloop::cloud
