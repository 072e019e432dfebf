// Drift monitor. A reference profile, built on the training data and shipped with the model
// as JSON, holds one histogram per monitored quantity (per-sample input mean and standard
// deviation, top-class confidence, ...). The monitor keeps a sliding window of live values
// per quantity and scores it against the reference:
//   PSI = sum_i (live_i - ref_i) * ln(live_i / ref_i)  over bins (proportions, floored at 1e-4)
//   KS  = max_i |CDF_live(i) - CDF_ref(i)|              over bin edges (binned two-sample KS)
// An alarm per quantity is raised when PSI exceeds `psi_raise` and cleared only when it falls
// below `psi_clear` (hysteresis, so a score hovering at the threshold does not flap); no
// score is given before `min_samples` live values. Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace edgeloop::edge {

struct FeatureProfile {
  std::vector<double> edges;        // ascending, size bins + 1; outer bins are open-ended
  std::vector<double> proportions;  // size bins, sums to 1
};

struct ReferenceProfile {
  std::map<std::string, FeatureProfile> features;

  // {"features": {"confidence": {"edges": [...], "proportions": [...]}, ...}}
  static Result<ReferenceProfile> FromJson(const std::string& text);
  std::string ToJson() const;
};

// A profile of `values` with `bins` equal-frequency bins (quantile edges), so every bin of
// the reference holds data.
FeatureProfile BuildFeatureProfile(std::vector<double> values, int bins = 10);
size_t BinOf(const FeatureProfile& p, double v);

double Psi(const std::vector<double>& ref, const std::vector<double>& live);
double KsBinned(const std::vector<double>& ref, const std::vector<double>& live);

struct DriftConfig {
  size_t window = 1000;
  size_t min_samples = 200;
  double psi_raise = 0.25;
  double psi_clear = 0.1;
};

struct DriftScore {
  double psi = 0;
  double ks = 0;
  size_t samples = 0;
  bool alarm = false;
};

class DriftMonitor {
 public:
  DriftMonitor(ReferenceProfile reference, DriftConfig config);
  // Adds a live value of a quantity; names not in the reference are ignored.
  void Add(const std::string& feature, double value);
  // Current scores per quantity with enough samples; updates the alarms.
  std::map<std::string, DriftScore> Scores();
  bool AnyAlarm() const;

  // Re-baselining after a model update: the next `samples` values of each quantity become
  // the new reference (the new model was trained for the inputs the device sees now), then
  // scoring resumes against it, on full windows only. No scores and no alarms until then.
  void Rebaseline(size_t samples);
  bool rebaselining() const { return learn_target_ > 0; }
  const ReferenceProfile& reference() const { return ref_; }

 private:
  ReferenceProfile ref_;
  size_t learn_target_ = 0;
  std::map<std::string, std::vector<double>> learning_;
  DriftConfig cfg_;
  std::map<std::string, std::deque<size_t>> window_;  // bin index per live value
  std::map<std::string, bool> alarm_;
  size_t min_samples_;  // cfg_.min_samples, or a full window once the reference was re-learned
};

}  // namespace edgeloop::edge
