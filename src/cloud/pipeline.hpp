// Retraining pipelines: a YAML spec (triggers, dataset snapshot, train or fine-tune,
// evaluation, quality gates, packaging, registration, rollout), parsed and checked here; the
// run itself is executed by RunPipeline() step by step, each heavy step in a worker process.
//
// Example (examples/pipelines/retrain.yaml):
//
//   name: retrain
//   trigger: {new_labelled_samples: 4000, drift_alarm: true, min_labelled_samples: 400}
//   dataset: {labelled_only: true, groups: [demo], split: {train: 0.8, val: 0.1, test: 0.1}}
//   train: {parent: fashion-cnn@production, strategy: full, epochs: 6}
//   evaluate: {sets: [{name: heldout, data: "fashion-mnist:test"}], robustness: true}
//   gates: ["accuracy >= champion + 0.01", "latency_p95_us <= 2000"]
//   package: {int8: true}
//   register: {model: fashion-cnn, stage: staging}
//   rollout: {target: "group:demo", canary: 1, waves: ["50%", "100%"]}
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::cloud {

struct TriggerSpec {
  int64_t new_labelled_samples = 0;  // fire when this many new labelled samples arrived (0: off)
  bool drift_alarm = false;          // fire on a device's drift alarm
  int64_t schedule_seconds = 0;      // fire periodically (0: off)
  // The drift and schedule triggers wait until at least this many new labelled samples
  // arrived since the last run (there must be something to learn from).
  int64_t min_labelled_samples = 0;
  // A person can always start a run (CLI or API).
};

struct TrainSpec {
  std::string mode = "finetune";  // finetune | train
  std::string parent;             // "<model>@<stage>" or "<model>:<version>" (finetune)
  std::string strategy = "full";  // head | last-k | full
  int k = 1;
  int epochs = 8;
  int batch_size = 64;
  double lr = 1e-3;
  double backbone_lr_scale = 0.1;
  int patience = 4;
  int min_epoch_samples = 2048;
  uint64_t seed = 0;
  int nproc = 1;  // data-parallel training processes on the server's host (batch_size is global)
};

struct EvalSet {
  std::string name;  // metrics appear as "<name>.accuracy", ...
  std::string data;  // a dataset spec (fashion-mnist:test, a CSV, ...)
  std::string corrupt;
  int severity = 0;
};

struct EvaluateSpec {
  std::vector<EvalSet> sets;  // extra held-out sets; the snapshot's test split is always used
  bool robustness = false;    // the corruption suite on the snapshot's test split
  bool latency = true;        // batch-1 latency on the edge runtime
  int latency_samples = 300;
};

// "<metric> <op> <number>" or "<metric> <op> champion [+|- <number>]", op in >=, <=, >, <.
struct Gate {
  std::string text;
  std::string metric;
  std::string op;
  bool vs_champion = false;
  double value = 0;  // the number, or the offset from the champion
};

struct GateResult {
  std::string expr;
  double value = 0;      // the challenger's metric
  double threshold = 0;  // what it was compared with
  bool passed = false;
  std::string detail;  // why it failed when a metric was missing
};

struct PipelineSpec {
  std::string name;
  TriggerSpec trigger;
  nlohmann::json dataset;  // snapshot spec (filter and split), passed to the snapshot step
  TrainSpec train;
  EvaluateSpec evaluate;
  std::vector<Gate> gates;
  bool package_int8 = true;
  int calib_samples = 500;
  std::string register_model;  // registry model name (default: the parent's)
  std::string register_stage = "candidate";
  nlohmann::json rollout;  // null: no automatic rollout
  std::string source;      // the YAML text as given
};

// Parses and checks a pipeline. Errors name the origin (file name) and the offending key.
Result<PipelineSpec> ParsePipeline(const std::string& yaml_text, const std::string& origin);

Result<Gate> ParseGate(const std::string& text);

// Judges a gate; champion may be null (no champion yet: a champion-relative gate passes).
GateResult EvaluateGate(const Gate& gate, const std::map<std::string, double>& challenger,
                        const std::map<std::string, double>* champion);

}  // namespace edgeloop::cloud
