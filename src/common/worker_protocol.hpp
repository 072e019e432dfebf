// What a pipeline's worker processes (`edgeloop eval`, `edgeloop infer`) report back to the
// server, as one versioned schema that both sides compile: the worker writes these
// documents with ToJson, the pipeline runner reads them with the Parse functions, which
// refuse a missing or mistyped field and a different protocol version instead of reading a
// default. A change to a report bumps kWorkerProtocol.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.hpp"

namespace edgeloop::worker {

inline constexpr int kWorkerProtocol = 1;

// `edgeloop eval --json`: the model's metrics on one dataset, and the corruption suite's mean
// accuracy when it ran. Every report carries accuracy, macro_precision, macro_recall,
// macro_f1 and ece.
struct EvalReport {
  std::map<std::string, double> metrics;
  std::optional<double> mean_corruption_accuracy;
};

// `edgeloop infer --json`: batch-1 latency on the edge runtime, in microseconds.
struct LatencyReport {
  double p50_us = 0, p95_us = 0, p99_us = 0;
};

// The field that marks a document as a worker report of this protocol; the writers add it to
// the documents they print.
inline void Stamp(nlohmann::json& j) {
  j["protocol"] = kWorkerProtocol;
}

// Errors: kFormat naming origin and the field, kMismatch for another protocol version.
Result<EvalReport> ParseEvalReport(const std::string& text, const std::string& origin);
Result<LatencyReport> ParseLatencyReport(const std::string& text, const std::string& origin);

}  // namespace edgeloop::worker
