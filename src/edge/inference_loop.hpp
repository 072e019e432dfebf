// The agent's per-sample pipeline: classify with the current model, then feed telemetry, the
// drift monitor and the updater's probation window, and let the sampler decide whether the
// sample goes into the spool for upload.
//
// The model is behind Classifier so that the runtime's Session plugs in (and a device
// vendor's accelerator could). Not thread-safe: one loop per inference thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "edge/drift.hpp"
#include "edge/sampler.hpp"
#include "edge/sources.hpp"
#include "edge/spool.hpp"
#include "edge/telemetry.hpp"
#include "edge/updater.hpp"

namespace edgeloop::edge {

class Classifier {
 public:
  virtual ~Classifier() = default;
  // Class probabilities for one sample (non-negative, summing to 1).
  virtual Result<std::vector<float>> Classify(const Sample& sample) = 0;
};

// Softmax of logits, for classifiers whose model ends in a linear layer.
std::vector<float> Softmax(const std::vector<float>& logits);

struct InputStats {
  double mean = 0, std = 0;
};
InputStats ComputeInputStats(const std::vector<float>& data);

// The reference profile of a model: input mean, input std and confidence over samples the
// model was trained or validated on (drift features "input_mean", "input_std", "confidence").
Result<ReferenceProfile> BuildReferenceProfile(Classifier& model,
                                               const std::vector<Sample>& samples, int bins = 10);

struct SampleOutcome {
  int32_t prediction = -1;
  float confidence = 0;
  double latency_ms = 0;
  bool uploaded = false;
  std::string reason;  // the sampler's reason
  uint64_t spool_seq = 0;
};

// The record stored in the spool for upload: a serialized wire::Sample
// (common/proto/edgeloop_wire.proto) with tensor, label (label source "device": replayed
// datasets and device rules carry them), prediction, confidence, model version, timestamp
// and metadata {"id", "reason"}. device_id and sequence stay empty: the uploader fills them
// from the spool record, whose sequence number is the sample's identity at the server.
std::string EncodeUploadRecord(const Sample& s, const SampleOutcome& o,
                               const std::string& model_version);

struct InferenceLoopParts {
  Classifier* model = nullptr;     // required
  Spool* spool = nullptr;          // required
  Sampler* sampler = nullptr;      // required
  Telemetry* telemetry = nullptr;  // optional
  DriftMonitor* drift = nullptr;   // optional
  Updater* updater = nullptr;      // optional: fed the probation window
  std::string model_version;
};

class InferenceLoop {
 public:
  explicit InferenceLoop(InferenceLoopParts parts);
  // now_s: monotonic seconds (for the sampler's budget). A classifier error is returned after
  // it was counted against the probation window; a spool error (disk full) is returned too,
  // with the inference itself already accounted for.
  Result<SampleOutcome> Process(const Sample& sample, double now_s);
  // Swaps the model after an update or a rollback (the caller owns it).
  void SetModel(Classifier* model, std::string model_version) {
    p_.model = model;
    p_.model_version = std::move(model_version);
  }

 private:
  InferenceLoopParts p_;
};

}  // namespace edgeloop::edge
