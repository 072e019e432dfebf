// Small helpers shared by the benchmark programs: machine description and JSON output.
#pragma once

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace edgeloop::bench {

// CPU model, core count, memory, compiler, commit, build type and compiler flags, and the
// date and time of the run (UTC), for the JSON header.
nlohmann::json MachineInfo();
// Writes JSON (pretty) to path, creating parent folders; exits with a message on failure.
void WriteJson(const std::string& path, const nlohmann::json& j);

// Peak resident set size of this process (VmHWM), in bytes.
size_t PeakRssBytes();
// n floats of a fixed pattern in [0, 1): the same input for every engine.
std::vector<float> Pattern(size_t n);
// The p-quantile (0..1) of v.
// The standard output of a shell command (empty when it cannot run).
std::string Capture(const std::string& cmd);
double Percentile(std::vector<double> v, double p);

// Times an engine the same way for all: fn(batch) runs one inference. Reports the time from
// load_start to the first result, batch-1 latency p50/p99 over `runs` (after 50 warm-up
// runs), batch-64 throughput over `batch_runs`, and peak RSS.
template <typename Fn>
nlohmann::json TimeEngine(std::chrono::steady_clock::time_point load_start, int runs,
                          int batch_runs, Fn&& fn) {
  using Clock = std::chrono::steady_clock;
  fn(1);
  double first_ms = std::chrono::duration<double, std::milli>(Clock::now() - load_start).count();
  for (int i = 0; i < std::min(50, runs); ++i) fn(1);
  std::vector<double> lat;
  for (int i = 0; i < runs; ++i) {
    auto s = Clock::now();
    fn(1);
    lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
  }
  fn(64);
  auto s = Clock::now();
  for (int i = 0; i < batch_runs; ++i) fn(64);
  double secs = std::chrono::duration<double>(Clock::now() - s).count();
  return {{"first_result_ms", first_ms},
          {"p50_us", Percentile(lat, 0.5)},
          {"p99_us", Percentile(lat, 0.99)},
          {"runs", runs},
          {"batch64_per_s", 64.0 * batch_runs / secs},
          {"peak_rss_bytes", PeakRssBytes()}};
}

}  // namespace edgeloop::bench
