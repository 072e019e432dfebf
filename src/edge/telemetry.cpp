#include "edge/telemetry.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace edgeloop::edge {

Histogram::Histogram(std::vector<double> edges)
    : edges_(std::move(edges)), counts_(edges_.size() + 1, 0) {}

void Histogram::Add(double v) {
  auto it = std::upper_bound(edges_.begin(), edges_.end(), v);
  ++counts_[static_cast<size_t>(it - edges_.begin())];
  ++total_;
}

double Histogram::Quantile(double q) const {
  if (total_ == 0) return 0;
  double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(total_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] == 0) continue;
    if (static_cast<double>(seen + counts_[i]) > rank || i + 1 == counts_.size()) {
      if (i == edges_.size()) return edges_.back();  // the open-ended top bin
      double lo = i == 0 ? std::min(0.0, edges_[0]) : edges_[i - 1], hi = edges_[i];
      double frac = (rank - static_cast<double>(seen)) / static_cast<double>(counts_[i]);
      return lo + std::clamp(frac, 0.0, 1.0) * (hi - lo);
    }
    seen += counts_[i];
  }
  return edges_.back();
}

void Histogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = 0;
}

ProcessUsage ReadProcessUsage() {
  ProcessUsage u;
  struct rusage ru {};
  if (::getrusage(RUSAGE_SELF, &ru) == 0) {
    u.cpu_user_s = static_cast<double>(ru.ru_utime.tv_sec) + ru.ru_utime.tv_usec / 1e6;
    u.cpu_system_s = static_cast<double>(ru.ru_stime.tv_sec) + ru.ru_stime.tv_usec / 1e6;
  }
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    std::istringstream in(line);
    std::string key;
    uint64_t kb = 0;
    in >> key >> kb;
    if (key == "VmRSS:") u.rss_kb = kb;
    if (key == "VmHWM:") u.peak_rss_kb = kb;
  }
  return u;
}

Telemetry::Telemetry()
    : latency_ms_({0.02, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.32, 0.4, 0.5,
                   0.65, 0.8, 1, 1.3, 1.6, 2, 2.5, 3.2, 4, 5, 6.5, 8, 10, 13, 16, 20, 25, 32, 40,
                   50, 100, 200, 500, 1000}),
      confidence_({0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99}) {}

void Telemetry::RecordInference(double latency_ms, double confidence, double input_mean,
                                double input_std, std::optional<bool> correct) {
  std::lock_guard<std::mutex> lock(mu_);
  latency_ms_.Add(latency_ms);
  confidence_.Add(confidence);
  if (inferences_ == 0) {
    input_mean_min_ = input_mean_max_ = input_mean;
  } else {
    input_mean_min_ = std::min(input_mean_min_, input_mean);
    input_mean_max_ = std::max(input_mean_max_, input_mean);
  }
  ++inferences_;
  ++lifetime_inferences_;
  input_mean_sum_ += input_mean;
  input_std_sum_ += input_std;
  if (correct) {
    ++labelled_;
    correct_ += *correct ? 1 : 0;
  }
}

void Telemetry::RecordError() {
  std::lock_guard<std::mutex> lock(mu_);
  ++errors_;
}

void Telemetry::SetModelVersion(const std::string& version) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!model_version_.empty() && version != model_version_) ResetPeriod();
  model_version_ = version;
}

void Telemetry::ResetPeriod() {
  latency_ms_.Reset();
  confidence_.Reset();
  inferences_ = labelled_ = correct_ = errors_ = 0;
  input_mean_sum_ = input_std_sum_ = 0;
}

void Telemetry::SetTransfer(uint64_t bytes_up, uint64_t bytes_down) {
  std::lock_guard<std::mutex> lock(mu_);
  bytes_up_ = bytes_up;
  bytes_down_ = bytes_down;
}

void Telemetry::SetModelTransfer(uint64_t moved, uint64_t full_equivalent) {
  std::lock_guard<std::mutex> lock(mu_);
  model_bytes_ = moved;
  model_bytes_full_ = full_equivalent;
}

void Telemetry::SetCredentials(const Credentials& c) {
  std::lock_guard<std::mutex> lock(mu_);
  credentials_ = c;
}

void Telemetry::SetSpool(uint64_t depth_records, uint64_t depth_bytes, uint64_t dropped) {
  std::lock_guard<std::mutex> lock(mu_);
  spool_records_ = depth_records;
  spool_bytes_ = depth_bytes;
  spool_dropped_ = dropped;
}

void Telemetry::SetDrift(const std::map<std::string, DriftScore>& scores) {
  std::lock_guard<std::mutex> lock(mu_);
  drift_ = scores;
}

std::string Telemetry::SnapshotJson(int64_t unix_time) {
  ProcessUsage usage = ReadProcessUsage();
  std::lock_guard<std::mutex> lock(mu_);
  nlohmann::json j;
  j["t"] = unix_time;
  j["model_version"] = model_version_;
  j["n"] = inferences_;
  j["n_total"] = lifetime_inferences_;
  j["latency_ms"] = {{"edges", latency_ms_.edges()},
                     {"counts", latency_ms_.counts()},
                     {"p50", latency_ms_.Quantile(0.5)},
                     {"p95", latency_ms_.Quantile(0.95)}};
  j["confidence"] = {{"edges", confidence_.edges()}, {"counts", confidence_.counts()}};
  double n = static_cast<double>(std::max<uint64_t>(inferences_, 1));
  j["input"] = {{"mean", input_mean_sum_ / n},
                {"std", input_std_sum_ / n},
                {"mean_min", input_mean_min_},
                {"mean_max", input_mean_max_}};
  j["errors"] = errors_;
  j["error_rate"] = static_cast<double>(errors_) /
                    static_cast<double>(std::max<uint64_t>(inferences_ + errors_, 1));
  j["bytes_up"] = bytes_up_;
  j["bytes_down"] = bytes_down_;
  j["model_bytes"] = model_bytes_;
  j["model_bytes_full"] = model_bytes_full_;
  j["labelled"] = labelled_;
  if (labelled_ > 0) j["accuracy"] = static_cast<double>(correct_) / static_cast<double>(labelled_);
  j["spool"] = {{"records", spool_records_}, {"bytes", spool_bytes_}, {"dropped", spool_dropped_}};
  if (credentials_) {
    const Credentials& c = *credentials_;
    j["credentials"] = {{"cert_not_after_ms", c.cert_not_after_ms},
                        {"renewal_failures", c.renewal_failures},
                        {"renewal_error", c.renewal_error},
                        {"root_version", c.root_version},
                        {"clock_skew_s", c.clock_skew_s ? nlohmann::json(*c.clock_skew_s)
                                                        : nlohmann::json(nullptr)}};
  }
  j["drift"] = nlohmann::json::object();
  for (const auto& [name, s] : drift_)
    j["drift"][name] = {{"psi", s.psi}, {"ks", s.ks}, {"n", s.samples}, {"alarm", s.alarm}};
  j["cpu_s"] = usage.cpu_user_s + usage.cpu_system_s;
  j["rss_kb"] = usage.rss_kb;
  j["peak_rss_kb"] = usage.peak_rss_kb;

  ResetPeriod();
  return j.dump();
}

}  // namespace edgeloop::edge
