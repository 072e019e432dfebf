// Executes one pipeline run, step by step: snapshot → train → export → evaluate (candidate
// and champion on the same data) → gates → package → register → rollout. Training,
// evaluation, export and quantization run as worker processes (the `edgeloop` executable), so
// a crash there fails the step, never the server. Each step's output goes to its own log file
// in the run folder; the host records each step as it changes.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cloud/pipeline.hpp"
#include "common/result.hpp"

namespace edgeloop::cloud {

struct StepRecord {
  std::string name;
  std::string status = "pending";  // pending, running, succeeded, failed, skipped
  double duration_s = 0;
  std::string detail;
  std::string log;  // path of the step's log file
};

struct RunResult {
  std::string status = "running";  // succeeded, rejected (a gate failed), failed
  std::string failed_step;
  std::string reason;
  std::vector<StepRecord> steps;
  std::vector<GateResult> gates;
  std::map<std::string, double> metrics, champion_metrics;
  std::string snapshot_id;
  std::string model_version;  // "<model>:<n>" when registered
  std::string rollout_id;
  std::map<std::string, std::string> artifacts;  // variant (fp32, int8, ...) → stored sha256
  nlohmann::json ToJson() const;
};

// What a run needs from the server: snapshots, the registry, artifacts, rollouts.
class PipelineHost {
 public:
  virtual ~PipelineHost() = default;
  // Creates (or finds) the snapshot: {"id", "dir" (for the snapshot: data spec), "counts"}.
  virtual Result<nlohmann::json> CreateSnapshot(const nlohmann::json& spec) = 0;
  // A model reference "<model>@<stage>" or "<model>:<n>" → {"model", "version" (n),
  // "name" ("<model>:<n>"), "training_dir", "artifacts": {"fp32": sha, ...}}; kNotFound if none.
  virtual Result<nlohmann::json> ResolveModel(const std::string& ref) = 0;
  virtual Result<std::string> StoreArtifact(const std::string& path) = 0;  // → sha256
  // Registers a new version; returns {"model", "version", "name"}.
  virtual Result<nlohmann::json> RegisterVersion(const std::string& model,
                                                 const nlohmann::json& version,
                                                 const std::string& stage) = 0;
  // Starts a rollout of a registered version; returns its id.
  virtual Result<std::string> StartRollout(const nlohmann::json& rollout_spec,
                                           const std::string& model, int64_t version) = 0;
  // Called whenever a step changes state (the server persists it).
  virtual void OnProgress(const RunResult& run) = 0;
};

struct RunContext {
  std::string run_id;
  std::string work_dir;    // the run's folder: models, logs, evaluation reports
  std::string executable;  // the edgeloop binary that runs the worker steps
  std::string models_dir;  // where trained model folders are kept (registered versions)
  std::string trigger;     // manual, new_labelled_samples, drift_alarm, schedule
  int threads = 0;         // for training (0: all cores)
  const std::atomic<bool>* cancel = nullptr;
};

RunResult RunPipeline(const PipelineSpec& spec, const RunContext& ctx, PipelineHost& host);

}  // namespace edgeloop::cloud
