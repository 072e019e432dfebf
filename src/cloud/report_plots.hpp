// Internals of the HTML report (report.cpp): tolerant accessors for the report JSON and the
// five plots. A field that is missing or of the wrong type reads as empty (NaN, "", []), so a
// partial report still renders. Include only from src/cloud/report*.cpp.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace edgeloop::cloud::report {

using Json = nlohmann::json;

// j[key] when j is an object holding an array there, else an empty array.
const Json& Arr(const Json& j, const char* key);
// j[key] when it is an object, else an empty object.
const Json& Obj(const Json& j, const char* key);
// j[key] as a number, NaN when missing or not a number.
double Num(const Json& j, const char* key);
// j[key] as a string ("" when missing; numbers and booleans are printed).
std::string Str(const Json& j, const char* key);

// What every plot shares: the devices in a stable order with their colours, and the time
// range of the run (so the time plots line up one under another).
struct ReportView {
  const Json* root = nullptr;
  std::vector<std::string> devices;
  std::map<std::string, size_t> device_index;
  double t_lo = 0, t_hi = 1;

  explicit ReportView(const Json& report);
  const std::string& DeviceColor(const std::string& device) const;
  // Events of one kind, in time order.
  std::vector<const Json*> Events(const std::string& kind) const;
};

std::string AccuracyPlot(const ReportView& v);
std::string RolloutTimeline(const ReportView& v);
std::string LatencyPlot(const ReportView& v);
std::string BytesPlot(const ReportView& v);
// The pipeline runs: a stacked bar of step durations per run, then each run's gates as a table.
std::string RunsSection(const ReportView& v);

}  // namespace edgeloop::cloud::report
