// Telemetry: what the agent reports periodically, kept compact (histograms as count arrays
// over fixed edges). Collects per-inference latency and confidence, input statistics, accuracy
// on labelled samples; the agent sets spool depth and drops, model version and drift scores
// before taking a snapshot; CPU (getrusage) and RSS (/proc/self/status) are read at snapshot
// time. Thread-safe (one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "edge/drift.hpp"

namespace edgeloop::edge {

// Counts over fixed ascending edges: bin i holds edges[i-1] <= v < edges[i]; bin 0 is below
// edges[0], the last bin at or above edges.back().
class Histogram {
 public:
  explicit Histogram(std::vector<double> edges);
  void Add(double v);
  const std::vector<double>& edges() const { return edges_; }
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t total() const { return total_; }
  // Approximate quantile: linear within the bin where it falls (bin 0 from 0, the open top
  // bin as its lower edge); 0 when empty.
  double Quantile(double q) const;
  void Reset();

 private:
  std::vector<double> edges_;
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
};

struct ProcessUsage {
  double cpu_user_s = 0, cpu_system_s = 0;
  uint64_t rss_kb = 0, peak_rss_kb = 0;
};
ProcessUsage ReadProcessUsage();

class Telemetry {
 public:
  Telemetry();
  // One inference: latency, top-class confidence, the input's mean and standard deviation,
  // and when the sample was labelled, whether the prediction was right.
  void RecordInference(double latency_ms, double confidence, double input_mean, double input_std,
                       std::optional<bool> correct);
  // An inference that failed (the model could not run the sample): counts toward error_rate.
  void RecordError();
  // A change of model starts a new period: what was recorded with the previous model is
  // dropped, so a snapshot that names a model holds that model's inferences only (a rollout
  // judges the new model on them).
  void SetModelVersion(const std::string& version);
  // Lifetime bytes sent to and received from the cloud (uploads; model downloads).
  void SetTransfer(uint64_t bytes_up, uint64_t bytes_down);
  // Lifetime model-update bytes: what crossed the wire (deltas or full artifacts) and what
  // full downloads of the same updates would have moved.
  void SetModelTransfer(uint64_t moved, uint64_t full_equivalent);
  void SetSpool(uint64_t depth_records, uint64_t depth_bytes, uint64_t dropped);
  void SetDrift(const std::map<std::string, DriftScore>& scores);
  // The device's credentials ("credentials" in the snapshot): its certificate's expiry, the
  // renewal attempts that failed since the last success and the last error, the trusted root
  // version, and how far the local clock is from the server's signed time (null: unknown).
  struct Credentials {
    int64_t cert_not_after_ms = 0;
    uint64_t renewal_failures = 0;
    std::string renewal_error;
    uint64_t root_version = 0;
    std::optional<int64_t> clock_skew_s;
  };
  void SetCredentials(const Credentials& c);
  // A compact JSON snapshot of the period since the last one; the period's histograms and
  // counters are reset (gauges and lifetime totals are kept).
  std::string SnapshotJson(int64_t unix_time);

 private:
  void ResetPeriod();  // mu_ held

  std::mutex mu_;
  Histogram latency_ms_;
  Histogram confidence_;
  uint64_t inferences_ = 0, labelled_ = 0, correct_ = 0, lifetime_inferences_ = 0;
  double input_mean_sum_ = 0, input_std_sum_ = 0;
  double input_mean_min_ = 0, input_mean_max_ = 0;
  std::string model_version_;
  uint64_t errors_ = 0, bytes_up_ = 0, bytes_down_ = 0, model_bytes_ = 0, model_bytes_full_ = 0;
  uint64_t spool_records_ = 0, spool_bytes_ = 0, spool_dropped_ = 0;
  std::map<std::string, DriftScore> drift_;
  std::optional<Credentials> credentials_;
};

}  // namespace edgeloop::edge
