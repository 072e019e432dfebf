#include "edge/drift.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace edgeloop::edge {

Result<ReferenceProfile> ReferenceProfile::FromJson(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("features") || !j["features"].is_object())
    return Error(Errc::kFormat, "reference profile: expected {\"features\": {...}}");
  ReferenceProfile p;
  for (const auto& [name, f] : j["features"].items()) {
    FeatureProfile fp;
    try {
      fp.edges = f.at("edges").get<std::vector<double>>();
      fp.proportions = f.at("proportions").get<std::vector<double>>();
    } catch (const std::exception& e) {
      return Error(Errc::kFormat, "reference profile, feature " + name + ": " + e.what());
    }
    if (fp.proportions.empty() || fp.edges.size() != fp.proportions.size() + 1 ||
        !std::is_sorted(fp.edges.begin(), fp.edges.end()))
      return Error(Errc::kFormat, "reference profile, feature " + name +
                                      ": needs ascending edges, one more than proportions");
    double sum = 0;
    for (double v : fp.proportions) {
      if (v < 0)
        return Error(Errc::kFormat, "reference profile, feature " + name + ": negative proportion");
      sum += v;
    }
    if (std::abs(sum - 1.0) > 1e-3)
      return Error(Errc::kFormat, "reference profile, feature " + name + ": proportions sum to " +
                                      std::to_string(sum) + ", not 1");
    p.features[name] = std::move(fp);
  }
  return p;
}

std::string ReferenceProfile::ToJson() const {
  nlohmann::json j;
  j["features"] = nlohmann::json::object();
  for (const auto& [name, f] : features)
    j["features"][name] = {{"edges", f.edges}, {"proportions", f.proportions}};
  return j.dump();
}

FeatureProfile BuildFeatureProfile(std::vector<double> values, int bins) {
  FeatureProfile p;
  if (values.empty() || bins < 1) return p;
  std::sort(values.begin(), values.end());
  p.edges.push_back(values.front());
  for (int b = 1; b < bins; ++b) {
    double e = values[values.size() * static_cast<size_t>(b) / static_cast<size_t>(bins)];
    if (e > p.edges.back()) p.edges.push_back(e);
  }
  if (values.back() > p.edges.back() || p.edges.size() == 1) p.edges.push_back(values.back());
  p.proportions.assign(p.edges.size() - 1, 0.0);
  for (double v : values) p.proportions[BinOf(p, v)] += 1.0;
  for (double& v : p.proportions) v /= static_cast<double>(values.size());
  return p;
}

size_t BinOf(const FeatureProfile& p, double v) {
  // Interior edges split the bins; values outside the reference range go to the outer bins.
  auto it = std::upper_bound(p.edges.begin() + 1, p.edges.end() - 1, v);
  return static_cast<size_t>(it - (p.edges.begin() + 1));
}

double Psi(const std::vector<double>& ref, const std::vector<double>& live) {
  constexpr double kFloor = 1e-4;
  double psi = 0;
  for (size_t i = 0; i < ref.size() && i < live.size(); ++i) {
    double r = std::max(ref[i], kFloor), l = std::max(live[i], kFloor);
    psi += (l - r) * std::log(l / r);
  }
  return psi;
}

double KsBinned(const std::vector<double>& ref, const std::vector<double>& live) {
  double cr = 0, cl = 0, ks = 0;
  for (size_t i = 0; i < ref.size() && i < live.size(); ++i) {
    cr += ref[i];
    cl += live[i];
    ks = std::max(ks, std::abs(cr - cl));
  }
  return ks;
}

DriftMonitor::DriftMonitor(ReferenceProfile reference, DriftConfig config)
    : ref_(std::move(reference)), cfg_(config), min_samples_(config.min_samples) {}

void DriftMonitor::Rebaseline(size_t samples) {
  learn_target_ = std::max<size_t>(samples, 10);
  learning_.clear();
  window_.clear();
  alarm_.clear();
}

void DriftMonitor::Add(const std::string& feature, double value) {
  auto it = ref_.features.find(feature);
  if (it == ref_.features.end()) return;
  if (learn_target_ > 0) {
    auto& values = learning_[feature];
    values.push_back(value);
    bool done = learning_.size() == ref_.features.size();
    for (const auto& [name, v] : learning_) done = done && v.size() >= learn_target_;
    if (!done) return;
    for (auto& [name, v] : learning_) {
      int bins = static_cast<int>(ref_.features[name].proportions.size());
      ref_.features[name] = BuildFeatureProfile(std::move(v), std::max(bins, 2));
    }
    learning_.clear();
    learn_target_ = 0;
    // A reference learned from one window is itself a small sample: scored against windows
    // of only min_samples values, its noise alone crosses the raise threshold now and then.
    // Full windows only from here on.
    min_samples_ = std::max(cfg_.min_samples, cfg_.window);
    return;
  }
  auto& w = window_[feature];
  w.push_back(BinOf(it->second, value));
  while (w.size() > cfg_.window) w.pop_front();
}

std::map<std::string, DriftScore> DriftMonitor::Scores() {
  std::map<std::string, DriftScore> out;
  if (learn_target_ > 0) return out;
  for (const auto& [name, w] : window_) {
    if (w.size() < min_samples_) continue;
    const auto& ref = ref_.features.at(name).proportions;
    std::vector<double> live(ref.size(), 0.0);
    for (size_t b : w) live[b] += 1.0;
    for (double& v : live) v /= static_cast<double>(w.size());
    DriftScore s;
    s.psi = Psi(ref, live);
    s.ks = KsBinned(ref, live);
    s.samples = w.size();
    bool& alarm = alarm_[name];
    if (!alarm && s.psi > cfg_.psi_raise) alarm = true;
    if (alarm && s.psi < cfg_.psi_clear) alarm = false;
    s.alarm = alarm;
    out[name] = s;
  }
  return out;
}

bool DriftMonitor::AnyAlarm() const {
  for (const auto& [name, a] : alarm_)
    if (a) return true;
  return false;
}

}  // namespace edgeloop::edge
