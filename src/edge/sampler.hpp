// Sampler: decides which inferred samples are uploaded for labelling and retraining.
//   all          every sample
//   uniform      each sample with probability `rate`
//   uncertainty  samples the model is unsure about (top confidence below a threshold, or
//                normalised entropy above one) plus a random `random_fraction` of the rest,
//                so the cloud still sees the easy cases and can measure drift on them
// While the drift monitor's alarm is up, an optional second policy (`on_drift`, with its
// own uniform rate) takes over: under a large shift the model is unsure about nearly
// everything and its least confident samples are the most atypical, so a uniform share
// teaches more per byte (bench/sampling_bench, docs/edge.md).
// Labelled samples are always candidates (they are what retraining needs most). Whatever the
// policy picks passes a token bucket of `budget_bytes_per_s` (0 = unlimited) with a burst of
// `burst_bytes`; samples over budget are counted and skipped.
// Deterministic for a seed. Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::edge {

enum class SamplingPolicy { kAll, kUniform, kUncertainty };
Result<SamplingPolicy> ParseSamplingPolicy(const std::string& name);

struct SamplerConfig {
  SamplingPolicy policy = SamplingPolicy::kUncertainty;
  double rate = 0.1;              // uniform
  double confidence_below = 0.6;  // uncertainty: top probability under this
  double entropy_above = 0.8;     // uncertainty: entropy / log(classes) over this
  double random_fraction = 0.02;  // uncertainty: share of the confident ones kept too
  std::optional<SamplingPolicy> on_drift = std::nullopt;  // while drifting (none: no switch)
  double on_drift_rate = 0.1;                             // its uniform rate
  double budget_bytes_per_s = 0;                          // 0: no budget
  double burst_bytes = 1 << 20;
  uint64_t seed = 1;
};

struct SampleDecision {
  bool upload = false;
  const char* reason = "";  // "all", "uniform", "low_confidence", "high_entropy", "random",
                            // "labelled", "not_selected", "over_budget"; "drift_all",
                            // "drift_uniform" ... when the on_drift policy picked it
};

struct SamplerStats {
  uint64_t seen = 0, selected = 0, uploaded = 0, over_budget = 0, uploaded_bytes = 0;
  uint64_t seen_drifting = 0;  // decided by the on_drift policy
};

// Normalised entropy of a probability vector in [0, 1] (1 = uniform over the classes).
double NormalisedEntropy(const std::vector<float>& probs);

class Sampler {
 public:
  explicit Sampler(SamplerConfig config);
  // probs: the model's class probabilities; bytes: the upload size; now_s: a monotonic clock;
  // drifting: the drift monitor's alarm is up.
  SampleDecision Decide(const std::vector<float>& probs, bool labelled, size_t bytes, double now_s,
                        bool drifting = false);
  const SamplerStats& stats() const { return stats_; }

 private:
  SamplerConfig cfg_;
  std::mt19937_64 rng_;
  double tokens_;
  double last_s_ = -1;
  SamplerStats stats_;
};

}  // namespace edgeloop::edge
