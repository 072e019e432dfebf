// Executes one pipeline run, step by step: snapshot → train → export → evaluate (candidate
// and champion on the same data) → gates → package → register → rollout. Training,
// evaluation, export and quantization run as worker processes (the `edgeloop` executable), so
// a crash there fails the step, never the server. Each worker gets a versioned request
// (common/worker_protocol.hpp), written to a file in the run folder and named with
// `--request`; its report comes back the same way. Each step's log file in the run folder
// holds the commands it ran, their requests and the workers' output; the host records each
// step as it changes.
#pragma once

#include <atomic>
#include <cstdint>
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

// A dataset snapshot made for a run.
struct SnapshotRef {
  std::string id;   // content hash
  std::string dir;  // data::LoadDataset("snapshot:" + dir + ":train") reads a split
  int64_t train = 0, val = 0, test = 0;  // samples per split
};

// A registered model version, resolved from "<model>@<stage>" or "<model>:<n>".
struct ModelRef {
  std::string model;
  int64_t version = 0;
  std::string name;          // "<model>:<version>"
  std::string training_dir;  // its training checkpoint (model.json, weights.pt); "" when none
  std::string onnx_path;     // its fp32 ONNX file; "" when none
  std::map<std::string, std::string> artifacts;  // variant (fp32, torch_meta, ...) → sha256
};

// What a run registers: the artifacts, their lineage and the evaluation that let them pass.
struct NewVersion {
  std::map<std::string, std::string> artifacts;  // variant → sha256 (StoreArtifact)
  std::string parent;                            // "<model>:<n>"; "" when trained from scratch
  std::string dataset_snapshot;
  std::string code_version;
  nlohmann::json hyperparameters = nlohmann::json::object();
  std::map<std::string, double> metrics;
  std::vector<GateResult> gates;
  std::string pipeline, run;
};

struct RegisteredVersion {
  std::string model;
  int64_t version = 0;
  std::string name;  // "<model>:<version>"
};

// What a run needs from the server: snapshots, the registry, artifacts, rollouts. Called from
// the run's thread only.
class PipelineHost {
 public:
  virtual ~PipelineHost() = default;
  // Creates (or finds) the snapshot of a data spec.
  virtual Result<SnapshotRef> CreateSnapshot(const nlohmann::json& spec) = 0;
  // kNotFound when the model or version does not exist.
  virtual Result<ModelRef> ResolveModel(const std::string& ref) = 0;
  virtual Result<std::string> StoreArtifact(const std::string& path) = 0;  // → sha256
  virtual Result<RegisteredVersion> RegisterVersion(const std::string& model,
                                                    const NewVersion& version,
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
