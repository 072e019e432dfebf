#include "edge/sampler.hpp"

#include <algorithm>
#include <cmath>

namespace edgeloop::edge {

Result<SamplingPolicy> ParseSamplingPolicy(const std::string& name) {
  if (name == "all") return SamplingPolicy::kAll;
  if (name == "uniform") return SamplingPolicy::kUniform;
  if (name == "uncertainty") return SamplingPolicy::kUncertainty;
  return Error(Errc::kInvalidArgument,
               "unknown sampling policy \"" + name + "\" (all, uniform, uncertainty)");
}

double NormalisedEntropy(const std::vector<float>& probs) {
  if (probs.size() < 2) return 0;
  double h = 0;
  for (float p : probs)
    if (p > 0) h -= p * std::log(static_cast<double>(p));
  return h / std::log(static_cast<double>(probs.size()));
}

Sampler::Sampler(SamplerConfig config)
    : cfg_(config), rng_(config.seed), tokens_(config.burst_bytes) {}

SampleDecision Sampler::Decide(const std::vector<float>& probs, bool labelled, size_t bytes,
                               double now_s, bool drifting) {
  ++stats_.seen;
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  SampleDecision d;
  const bool switched = drifting && cfg_.on_drift.has_value();
  if (switched) ++stats_.seen_drifting;
  const SamplingPolicy policy = switched ? *cfg_.on_drift : cfg_.policy;
  const double rate = switched ? cfg_.on_drift_rate : cfg_.rate;
  switch (policy) {
    case SamplingPolicy::kAll:
      d = {true, switched ? "drift_all" : "all"};
      break;
    case SamplingPolicy::kUniform:
      d = u01(rng_) < rate ? SampleDecision{true, switched ? "drift_uniform" : "uniform"}
                           : SampleDecision{false, "not_selected"};
      break;
    case SamplingPolicy::kUncertainty: {
      float top = probs.empty() ? 0.f : *std::max_element(probs.begin(), probs.end());
      if (top < cfg_.confidence_below) {
        d = {true, switched ? "drift_low_confidence" : "low_confidence"};
      } else if (NormalisedEntropy(probs) > cfg_.entropy_above) {
        d = {true, switched ? "drift_high_entropy" : "high_entropy"};
      } else if (u01(rng_) < cfg_.random_fraction) {
        d = {true, switched ? "drift_random" : "random"};
      } else {
        d = {false, "not_selected"};
      }
      break;
    }
  }
  if (!d.upload && labelled) d = {true, "labelled"};
  if (!d.upload) return d;
  ++stats_.selected;
  if (cfg_.budget_bytes_per_s > 0) {
    if (last_s_ >= 0 && now_s > last_s_)
      tokens_ = std::min(cfg_.burst_bytes, tokens_ + (now_s - last_s_) * cfg_.budget_bytes_per_s);
    last_s_ = std::max(last_s_, now_s);
    if (tokens_ < static_cast<double>(bytes)) {
      ++stats_.over_budget;
      return {false, "over_budget"};
    }
    tokens_ -= static_cast<double>(bytes);
  }
  ++stats_.uploaded;
  stats_.uploaded_bytes += bytes;
  return d;
}

}  // namespace edgeloop::edge
